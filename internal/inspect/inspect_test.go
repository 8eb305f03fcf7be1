package inspect

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// seedHub puts the images of the Docker Hub tests into the registry.
func seedHub(t *testing.T, e *env) {
	t.Helper()
	for _, repo := range []string{"library/alpine:latest", "verifiedco/tool:latest", "someone/tool:latest", "acme/app:latest"} {
		e.reg.Push(t, "registry-1.docker.io", repo)
	}
	e.reg.Push(t, "pull.test", "app:v1")
}

func TestDockerHubImageRules(t *testing.T) {
	e := newEnv(t)
	seedHub(t, e)
	ctx := ctxFor(t, 2*time.Minute)
	const restricted = "organization acme allows only official images and its own namespaces (acme)"

	for _, tc := range []struct {
		name, ref string
		tr        http.RoundTripper
		want      string // empty: allowed; else the exact denial
		rule      string
		category  policy.Category
	}{
		{"official", "alpine", e.alice(), "", "imageAccess.officialImages", policy.CategoryOfficial},
		{"official, namespaced", "docker.io/library/alpine:latest", e.alice(), "", "imageAccess.officialImages", policy.CategoryOfficial},
		{"org namespace", "acme/app", e.alice(), "", "imageAccess.orgNamespaces", policy.CategoryOrg},
		{"verified publisher", "verifiedco/tool", e.alice(),
			"image docker.io/verifiedco/tool is a verified publisher image; " + restricted, "imageAccess.verifiedPublisherImages", policy.CategoryVerifiedPublisher},
		{"community", "someone/tool", e.alice(),
			"image docker.io/someone/tool is a community image; " + restricted, "imageAccess.communityImages", policy.CategoryCommunity},
		{"community, owner", "someone/tool", e.olivia(), "", "ownerBypass", policy.CategoryCommunity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.decisions.all())
			err := pull(ctx, tc.ref, tc.tr)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("pull %s: %v", tc.ref, err)
				}
			} else if got := denial(t, err); got != tc.want {
				t.Fatalf("pull %s denied with\n %q\nwant\n %q", tc.ref, got, tc.want)
			}
			ref, _ := name.ParseReference(tc.ref)
			image := "docker.io/" + ref.Context().RepositoryStr()
			var found bool
			for _, d := range e.decisions.all()[before:] {
				if d.Image != image || d.Action != "pull" {
					continue
				}
				found = true
				if d.Rule != tc.rule || d.Category != string(tc.category) || d.Allowed != (tc.want == "") || d.Org != org || d.Gateway != "inspect-test" {
					t.Errorf("recorded %+v, want rule %s, category %s", d, tc.rule, tc.category)
				}
				if !d.Allowed && d.Reason != tc.want {
					t.Errorf("recorded reason %q, want %q", d.Reason, tc.want)
				}
			}
			if !found {
				t.Errorf("no pull decision recorded for %s", image)
			}
		})
	}

	t.Run("denied pulls never reach the registry", func(t *testing.T) {
		hits := e.reg.Hits("index.docker.io")
		if err := pull(ctx, "someone/tool", e.alice()); err == nil {
			t.Fatal("pull of someone/tool succeeded")
		}
		if n := e.reg.Hits("index.docker.io") - hits; n != 1 {
			// Only the /v2/ ping goes through.
			t.Errorf("the registry received %d requests for a denied pull, want the /v2/ ping only", n)
		}
	})

	t.Run("blob digests are recorded", func(t *testing.T) {
		digests := map[string]bool{}
		for _, d := range e.decisions.all() {
			if d.Image == "docker.io/library/alpine" && strings.HasPrefix(d.Digest, "sha256:") && d.Action == "pull" {
				digests[d.Digest] = true
			}
		}
		// The config and the layer, for each of the two pulls' image.
		if len(digests) < 2 {
			t.Errorf("records name %d digests of library/alpine, want its config and layer", len(digests))
		}
	})
}

func TestAllowlistAppliesToOpenConnections(t *testing.T) {
	e := newEnv(t)
	seedHub(t, e)
	ctx := ctxFor(t, time.Minute)
	tr := e.alice()
	var conns int
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused {
			conns++
		}
	}}
	ctx = httptrace.WithClientTrace(ctx, trace)
	if err := pull(ctx, "someone/tool", tr); err == nil {
		t.Fatal("community image pulled before it was allowlisted")
	}
	p := basePolicy()
	p.ImageAccess.RepositoryAllowlist = []string{"someone/tool"}
	e.policies.set(t, p)
	start := time.Now()
	// The very next request, on the connection the client kept, is
	// decided with the new policy.
	if err := pull(ctx, "someone/tool", tr); err != nil {
		t.Fatalf("pull after allowlisting: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("pull after the change took %v", d)
	}
	if conns != 1 {
		t.Errorf("the client opened %d connections; the test wants one kept alive", conns)
	}
	if ds := e.decisions.find("index.docker.io", "docker.io/someone/tool", true); len(ds) == 0 || ds[0].Rule != "imageAccess.repositoryAllowlist" {
		t.Errorf("allowlisted pull recorded as %+v", ds)
	}
}

func TestRedirects(t *testing.T) {
	e := newEnv(t)
	ctx := ctxFor(t, time.Minute)
	for _, repo := range []string{"redirect-allowed", "redirect-denied"} {
		img, err := registryImage()
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference("mirror.test/" + repo + ":v1")
		if err := remote.Write(ref, img, remote.WithTransport(e.mirror.transport())); err != nil {
			t.Fatal(err)
		}
	}
	if err := pull(ctx, "mirror.test/redirect-allowed:v1", e.alice()); err != nil {
		t.Fatalf("pull with a redirect to an allowed CDN: %v", err)
	}
	err := pull(ctx, "mirror.test/redirect-denied:v1", e.alice())
	cdn := fmt.Sprintf("cdn.denied.test:%d", e.mirror.srv.Listener.Addr().(*net.TCPAddr).Port)
	want := "registry " + cdn + " is not allowed by organization acme: image mirror.test/redirect-denied redirects its downloads there; add " + cdn + " to the allowed registries too"
	if got := denial(t, err); got != want {
		t.Fatalf("pull with a redirect to a denied CDN: %q, want %q", got, want)
	}
	ds := e.decisions.find("cdn.denied.test", "mirror.test/redirect-denied", false)
	if len(ds) != 1 || ds[0].Rule != "registryAccess" || ds[0].Reason != want || !strings.HasPrefix(ds[0].Digest, "sha256:") {
		t.Errorf("redirect denial recorded as %+v", ds)
	}
	for _, d := range e.decisions.all() {
		if strings.Contains(fmt.Sprint(d), "s3cr3t") {
			t.Errorf("a record holds the redirect's signature: %+v", d)
		}
	}
	if strings.Contains(e.logs.String(), "s3cr3t") {
		t.Errorf("the log holds the redirect's signature")
	}
}

func TestMalformedRequestsAreRefused(t *testing.T) {
	e := newEnv(t)
	seedHub(t, e)
	for _, tc := range []struct {
		name, method, target, host string
		status                     int
		code                       string
	}{
		{"dot segments", "GET", "/v2/library/../someone/tool/manifests/latest", "", 400, "NAME_INVALID"},
		{"encoded slash", "GET", "/v2/someone%2Ftool/manifests/latest", "", 400, "NAME_INVALID"},
		{"uppercase", "GET", "/v2/Someone/tool/manifests/latest", "", 400, "NAME_INVALID"},
		{"bad digest", "GET", "/v2/library/alpine/blobs/sha256:abc", "", 400, "NAME_INVALID"},
		{"method", "POST", "/v2/library/alpine/manifests/latest", "", 400, "UNSUPPORTED"},
		{"encoded v2", "GET", "/%76%32/someone/tool/manifests/latest", "", 400, "NAME_INVALID"},
		{"path parameter", "GET", "/v2;x=1/someone/tool/manifests/latest", "", 400, "NAME_INVALID"},
		{"uppercase V2", "GET", "/V2/someone/tool/manifests/latest", "", 400, "NAME_INVALID"},
		{"dot segments before v2", "GET", "/x/../v2/someone/tool/manifests/latest", "", 400, "NAME_INVALID"},
		{"other host", "GET", "/v2/someone/tool/manifests/latest", "evil.test", 421, "DENIED"},
		{"absolute form, other host", "GET", "https://evil.test/v2/library/alpine/manifests/latest", "registry-1.docker.io", 421, "DENIED"},
		{"trace", "TRACE", "/", "", 405, "UNSUPPORTED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits := e.reg.Hits("registry-1.docker.io") + e.reg.Hits("evil.test")
			tc1 := e.tlsTunnel(t, "alice", aliceToken, "registry-1.docker.io:443", "registry-1.docker.io", "http/1.1")
			host := tc.host
			if host == "" {
				host = "registry-1.docker.io"
			}
			fmt.Fprintf(tc1, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", tc.method, tc.target, host)
			resp, err := http.ReadResponse(bufio.NewReader(tc1), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Errors []struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("%s: body is not an OCI error: %v", resp.Status, err)
			}
			if resp.StatusCode != tc.status || len(body.Errors) != 1 || body.Errors[0].Code != tc.code {
				t.Fatalf("answered %s %+v, want %d %s", resp.Status, body, tc.status, tc.code)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
			if n := e.reg.Hits("registry-1.docker.io") + e.reg.Hits("evil.test") - hits; n != 0 {
				t.Errorf("the refused request reached the registry (%d requests)", n)
			}
		})
	}
	t.Run("base, catalog and other paths pass", func(t *testing.T) {
		c := &http.Client{Transport: e.alice()}
		for path, want := range map[string]int{"/v2/": 200, "/v2/_catalog": 200, "/token?service=x": 404} {
			resp, err := c.Get("https://registry-1.docker.io" + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s: %s, want %d from the registry", path, resp.Status, want)
			}
		}
		if v := e.metric(t, "regward_gateway_inspected_requests_total", "result", "invalid"); v < 12 {
			t.Errorf("invalid requests counted %v, want at least 12", v)
		}
	})
}

func TestServerNameMustMatch(t *testing.T) {
	e := newEnv(t)
	c := e.tunnel(t, "alice", aliceToken, "registry-1.docker.io:443")
	tc := tls.Client(c, &tls.Config{ServerName: "evil.test", RootCAs: x509PoolOf(e.ca.Certificate())})
	if err := tc.Handshake(); err == nil {
		t.Fatal("a ClientHello naming evil.test was served in the tunnel to registry-1.docker.io")
	}
	var ds []store.DecisionRecord
	eventually(t, "the refusal is recorded", func() bool {
		ds = e.decisions.find("registry-1.docker.io", "", false)
		return len(ds) > 0
	})
	if len(ds) != 1 || ds[0].Rule != ruleTunnelServerName ||
		ds[0].Reason != "TLS server name evil.test does not match the CONNECT host registry-1.docker.io; domain fronting is not allowed" {
		t.Fatalf("recorded %+v", ds)
	}
	if v := e.metric(t, "regward_gateway_inspect_handshakes_total", "result", "refused"); v != 1 {
		t.Errorf("refused handshakes %v, want 1", v)
	}
}

func TestProtocolsAndKeepAlive(t *testing.T) {
	e := newEnv(t)
	seedHub(t, e)
	for _, tc := range []struct {
		name  string
		h2    bool
		proto int
	}{{"HTTP/2", true, 2}, {"HTTP/1.1", false, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			handshakes := e.metric(t, "regward_gateway_inspect_handshakes_total", "result", "ok")
			tr := e.clientTransport("alice", aliceToken, tc.h2)
			c := &http.Client{Transport: tr}
			for i := range 5 {
				resp, err := c.Get("https://registry-1.docker.io/v2/library/alpine/manifests/latest")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.ProtoMajor != tc.proto {
					t.Fatalf("request %d: %s over HTTP/%d, want 200 over HTTP/%d", i, resp.Status, resp.ProtoMajor, tc.proto)
				}
				if resp.Header.Get("Docker-Content-Digest") == "" {
					t.Errorf("the registry's headers did not come through: %v", resp.Header)
				}
			}
			if n := e.metric(t, "regward_gateway_inspect_handshakes_total", "result", "ok") - handshakes; n != 1 {
				t.Errorf("%v TLS handshakes for 5 requests on a kept-alive connection, want 1", n)
			}
			if err := pull(ctxFor(t, time.Minute), "alpine", tr); err != nil {
				t.Errorf("pull over %s: %v", tc.name, err)
			}
		})
	}
}

func TestUpstreamReuseAndHTTP1Upstream(t *testing.T) {
	// An upstream that speaks HTTP/1.1 only, to an HTTP/2 client: the
	// inspector translates, and keeps its upstream connection alive.
	var got []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Proto+" "+r.Method+" "+r.URL.RequestURI()+" auth="+r.Header.Get("Authorization")+" proxy="+r.Header.Get("Proxy-Authorization"))
		w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
		w.WriteHeader(http.StatusOK)
	})
	up := startUpstream(t, h, []string{"http/1.1"}, "pull.test")
	e := newEnv(t, func(e *env, o *Options, g *gateway.Config) {
		g.Resolve["pull.test"] = up.addr()
		o.UpstreamRoots.AddCert(up.ca.Cert)
	})
	c := &http.Client{Transport: e.alice()}
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, "https://pull.test/v2/app/tags/list?n=10", nil)
		req.Header.Set("Authorization", "Bearer registry-token")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
			t.Fatalf("%s over HTTP/%d", resp.Status, resp.ProtoMajor)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("the inspector opened %d upstream connections for 3 requests, want 1", n)
	}
	want := "HTTP/1.1 GET /v2/app/tags/list?n=10 auth=Bearer registry-token proxy="
	if len(got) != 3 || got[0] != want {
		t.Fatalf("upstream saw %q, want %q", got, want)
	}
	if strings.Contains(e.logs.String(), "registry-token") {
		t.Error("the log holds the client's Authorization")
	}
}

// TestUpstreamClosesWithTheTunnel checks that the registry connection of
// a tunnel does not outlive it.
func TestUpstreamClosesWithTheTunnel(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), []string{"http/1.1"}, "pull.test")
	e := newEnv(t, func(e *env, o *Options, g *gateway.Config) {
		g.Resolve["pull.test"] = up.addr()
		o.UpstreamRoots.AddCert(up.ca.Cert)
	})
	tc := e.tlsTunnel(t, "alice", aliceToken, "pull.test:443", "pull.test", "http/1.1")
	if up.conns.Load() != 0 {
		t.Errorf("the registry was dialled before any request")
	}
	fmt.Fprintf(tc, "GET /v2/ HTTP/1.1\r\nHost: pull.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v2/: %v %v", resp, err)
	}
	tc.Close()
	eventually(t, "the registry connection closes with the tunnel", func() bool { return up.closed.Load() == 1 })
	if n := up.conns.Load(); n != 1 {
		t.Errorf("%d registry connections for one request", n)
	}
}

func TestPolicyUnknownDenies(t *testing.T) {
	e := newEnv(t)
	seedHub(t, e)
	tr := e.alice()
	if err := pull(ctxFor(t, time.Minute), "alpine", tr); err != nil {
		t.Fatal(err)
	}
	e.policies.fail(errors.New("no snapshot since the control plane went away"))
	c := &http.Client{Transport: tr}
	resp, err := c.Get("https://index.docker.io/v2/library/alpine/manifests/latest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := `{"errors":[{"code":"DENIED","message":"policy for organization acme is unknown: no snapshot since the control plane went away"}]}` + "\n"
	if resp.StatusCode != 403 || string(b) != want {
		t.Fatalf("answered %s %s, want 403 %s", resp.Status, b, want)
	}
}

func TestUpstreamCertificateMustVerify(t *testing.T) {
	e := newEnv(t, func(e *env, o *Options, _ *gateway.Config) {
		o.UpstreamRoots = x509PoolOf(e.mirror.ca.Cert) // not the registry's CA
	})
	c := &http.Client{Transport: e.alice()}
	resp, err := c.Get("https://registry-1.docker.io/v2/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "the gateway cannot verify the certificate of registry-1.docker.io") {
		t.Fatalf("answered %s %s", resp.Status, b)
	}
	if v := e.metric(t, "regward_gateway_inspect_upstream_errors_total", "stage", "tls"); v != 1 {
		t.Errorf("upstream TLS errors %v, want 1", v)
	}
}

func TestInterceptChoosesInspectedHosts(t *testing.T) {
	e := newEnv(t)
	c, _ := policy.Compile(basePolicy(), testCatalog)
	off := basePolicy()
	off.ImageAccess.Enabled = false
	off.NamespaceAccess.PushOnlyToOrgNamespaces = false
	cOff, _ := policy.Compile(off, testCatalog)
	for _, tc := range []struct {
		host string
		port uint16
		c    *policy.Compiled
		want bool
	}{
		{"registry-1.docker.io", 443, c, true},
		{"index.docker.io", 443, c, true},
		{"auth.docker.io", 443, c, false},
		{"production.cloudflare.docker.com", 443, c, false},
		{"pull.test", 5000, c, true},
		{"cdn.allowed.test", 443, c, false},
		{"registry-1.docker.io", 443, cOff, false},
		{"pull.test", 443, cOff, true},
		{"registry-1.docker.io", 443, nil, false},
	} {
		req := gatewayReq(tc.host, tc.port, tc.c)
		if got := e.in.Intercept(req); got != tc.want {
			t.Errorf("Intercept(%s:%d) = %v, want %v", tc.host, tc.port, got, tc.want)
		}
	}
}

func TestNewChecksOptions(t *testing.T) {
	ca, err := newTestCA(t)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{{}, {CA: ca}, {Policies: &swapPolicies{}}, {CA: ca, Policies: &swapPolicies{}, IdleTimeout: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	if _, err := New(Options{CA: ca, Policies: &swapPolicies{}}); err != nil {
		t.Errorf("New with CA and Policies: %v", err)
	}
}

func TestShutdownEndsInspectedTunnels(t *testing.T) {
	e := newEnv(t)
	seedHub(t, e)
	tr := e.alice()
	if err := pull(ctxFor(t, time.Minute), "alpine", tr); err != nil {
		t.Fatal(err)
	}
	if v := e.metric(t, "regward_gateway_inspected_tunnels"); v != 1 {
		t.Fatalf("%v inspected tunnels open, want the client's kept-alive one", v)
	}
	t.Run("forced", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_ = e.gw.Shutdown(ctx)
		eventually(t, "the inspected tunnel ends with the gateway", func() bool {
			return e.metric(t, "regward_gateway_inspected_tunnels") == 0
		})
	})
}

func TestDrainClosesIdleTunnels(t *testing.T) {
	e := newEnv(t)
	seedHub(t, e)
	for _, h2 := range []bool{true, false} {
		if err := pull(ctxFor(t, time.Minute), "alpine", e.clientTransport("alice", aliceToken, h2)); err != nil {
			t.Fatal(err)
		}
	}
	if v := e.metric(t, "regward_gateway_inspected_tunnels"); v != 2 {
		t.Fatalf("%v inspected tunnels open, want the clients' two kept-alive ones", v)
	}
	start := time.Now()
	e.in.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.gw.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after Drain: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v with idle inspected tunnels drained", d)
	}
}

func TestDeniedHeadRequests(t *testing.T) {
	e := newEnv(t)
	seedHub(t, e)
	const reason = "image docker.io/someone/tool is a community image; organization acme allows only official images and its own namespaces (acme)"

	t.Run("manifest over HTTP/1.1: the reason is the status line's", func(t *testing.T) {
		tc := e.tlsTunnel(t, "alice", aliceToken, "registry-1.docker.io:443", "registry-1.docker.io", "http/1.1")
		fmt.Fprintf(tc, "HEAD /v2/someone/tool/manifests/latest HTTP/1.1\r\nHost: registry-1.docker.io\r\n\r\n")
		br := bufio.NewReader(tc)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodHead})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != "403 "+reason || resp.Header.Get("Content-Type") != "application/json" || !resp.Close {
			t.Fatalf("answered %q %v", resp.Status, resp.Header)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("the connection stayed open after the denial: %v", err)
		}
	})
	t.Run("manifest over HTTP/2", func(t *testing.T) {
		c := &http.Client{Transport: e.alice()}
		resp, err := c.Head("https://registry-1.docker.io/v2/someone/tool/manifests/latest")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.ProtoMajor != 2 {
			t.Fatalf("answered %s over HTTP/%d", resp.Status, resp.ProtoMajor)
		}
	})
	t.Run("blob: unknown, so that a push goes on to its upload", func(t *testing.T) {
		c := &http.Client{Transport: e.alice()}
		resp, err := c.Head("https://registry-1.docker.io/v2/someone/tool/blobs/sha256:" + strings.Repeat("0", 64))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("answered %s", resp.Status)
		}
		if ds := e.decisions.find("registry-1.docker.io", "docker.io/someone/tool", false); len(ds) < 3 {
			t.Errorf("%d denials recorded for three denied HEADs", len(ds))
		}
	})
}

func TestReasonPhrase(t *testing.T) {
	for in, want := range map[string]string{
		"image x is denied":      "image x is denied",
		"a\r\nSet-Cookie: x=1":   "a  Set-Cookie: x=1",
		"  \t ":                  "Forbidden",
		"bad \xff utf8":          "bad ? utf8",
		strings.Repeat("é", 600): strings.Repeat("é", 512),
		"tab\there":              "tab here",
	} {
		if got := reasonPhrase(in); got != want {
			t.Errorf("reasonPhrase(%q) = %q, want %q", in, got, want)
		}
	}
}
