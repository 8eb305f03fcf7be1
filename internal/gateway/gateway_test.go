package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regward/regward/internal/store"
)

func TestConnectAllowed(t *testing.T) {
	e := newEnv(t, nil)
	body, err := e.get(e.client("alice", aliceToken), e.tlsURL("allowed.test"))
	if err != nil {
		t.Fatalf("GET through the gateway: %v", err)
	}
	if want := "hello from allowed.test:" + e.tlsPort; body != want {
		t.Fatalf("body %q, want %q", body, want)
	}
	got := e.decisions("allowed.test", true)
	want := []store.DecisionRecord{{
		Org: testOrg, User: "alice", Host: "allowed.test", Port: atoi(t, e.tlsPort), Method: "CONNECT",
		Rule: "registryAccess.registries[0]", Allowed: true,
		Reason:  "registry allowed.test:" + e.tlsPort + " is allowed by organization acme",
		Gateway: "gw-test",
	}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(store.DecisionRecord{}, "Time")); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
	if len(got) == 1 && time.Since(got[0].Time) > time.Minute {
		t.Errorf("decision time %v is not now", got[0].Time)
	}
	if v := metricValue(t, e.gw.m.version.WithLabelValues(testOrg)); v != 3 {
		t.Errorf("policy version gauge = %v, want 3", v)
	}
	if v := metricValue(t, e.gw.m.requests.WithLabelValues("connect")); v != 1 {
		t.Errorf("connect requests = %v, want 1", v)
	}
}

func atoi(t testing.TB, s string) int {
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The reason phrase is what Go clients (dockerd among them) print.
func TestConnectDeniedReasonPhrase(t *testing.T) {
	e := newEnv(t, nil)
	u := e.tlsURL("denied.test")
	_, err := e.get(e.client("alice", aliceToken), u)
	reason := "registry denied.test:" + e.tlsPort + " is not allowed by organization acme; ask an owner to add it to the allowed registries"
	want := fmt.Sprintf("Get %q: %s", u, reason)
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %s", err, want)
	}
	ds := e.decisions("denied.test", false)
	if len(ds) != 1 || ds[0].Rule != "registryAccess" || ds[0].Reason != reason || ds[0].User != "alice" || ds[0].Method != "CONNECT" {
		t.Fatalf("denial not recorded as expected: %+v", ds)
	}
	// The raw response: 403, the reason as phrase and body, and a close.
	resp, body := e.rawResponse("CONNECT denied.test:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n\r\n")
	if resp.StatusCode != http.StatusForbidden || resp.Status != "403 registry denied.test is not allowed by organization acme; ask an owner to add it to the allowed registries" {
		t.Fatalf("raw status %q", resp.Status)
	}
	if strings.TrimSpace(body) != strings.TrimPrefix(resp.Status, "403 ") || !resp.Close {
		t.Fatalf("body %q, close %v", body, resp.Close)
	}
	if v := metricValue(t, e.gw.m.decisions.WithLabelValues("denied")); v != 2 {
		t.Errorf("denied decisions = %v, want 2", v)
	}
	e.mustWork()
}

func TestProxyAuthRequired(t *testing.T) {
	e := newEnv(t, nil)
	const reason = "sign in to your organization: run `regward login`"
	u := e.tlsURL("allowed.test")
	for _, c := range []struct {
		name        string
		user, token string
	}{
		{"no credentials", "", ""},
		{"wrong token", "alice", "rw_wrong"},
		{"unknown user", "mallory", aliceToken},
		{"another user's token", "olivia", aliceToken},
	} {
		_, err := e.get(e.client(c.user, c.token), u)
		if want := fmt.Sprintf("Get %q: %s", u, reason); err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", c.name, err, want)
		}
	}
	for _, hdr := range []string{
		"",
		"Proxy-Authorization: Bearer " + aliceToken + "\r\n",
		"Proxy-Authorization: Basic !!!notbase64\r\n",
		"Proxy-Authorization: Basic YWxpY2U=\r\n", // "alice", no colon
		"Proxy-Authorization: " + basic("alice", aliceToken) + "\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n",
	} {
		resp, body := e.rawResponse("CONNECT allowed.test:443 HTTP/1.1\r\n" + hdr + "\r\n")
		if resp.StatusCode != http.StatusProxyAuthRequired || resp.Status != "407 "+reason {
			t.Errorf("header %q: status %q", hdr, resp.Status)
		}
		if got := resp.Header.Get("Proxy-Authenticate"); got != `Basic realm="regward"` {
			t.Errorf("header %q: Proxy-Authenticate %q", hdr, got)
		}
		if strings.TrimSpace(body) != reason {
			t.Errorf("header %q: body %q", hdr, body)
		}
	}
	// Plain HTTP is challenged the same way.
	resp, err := e.client("", "").Get(e.httpURL("plain.test") + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Status != "407 "+reason {
		t.Errorf("plain HTTP without credentials: %q", resp.Status)
	}
	if len(e.sink.all()) != 0 {
		t.Errorf("unauthenticated requests were decided: %+v", e.sink.all())
	}
	if v := metricValue(t, e.gw.m.authFailures); v != 10 {
		t.Errorf("auth failures = %v, want 10", v)
	}
	e.mustWork()
}

func TestAnonymous(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.AllowAnonymous = true
		c.AnonymousOrg = testOrg
	})
	body, err := e.get(e.client("", ""), e.tlsURL("allowed.test"))
	if err != nil || !strings.HasPrefix(body, "hello from allowed.test") {
		t.Fatalf("anonymous client: %q %v", body, err)
	}
	ds := e.decisions("allowed.test", true)
	if len(ds) != 1 || ds[0].Org != testOrg || ds[0].User != "" {
		t.Fatalf("anonymous decision: %+v", ds)
	}
	// Credentials that are sent must be right, even here.
	if _, err := e.get(e.client("alice", "rw_wrong"), e.tlsURL("allowed.test")); err == nil || !strings.Contains(err.Error(), "regward login") {
		t.Fatalf("wrong credentials in anonymous mode: %v", err)
	}
	if _, err := e.get(e.client("", ""), e.tlsURL("denied.test")); err == nil || !strings.Contains(err.Error(), "is not allowed by organization acme") {
		t.Fatalf("anonymous client to a denied host: %v", err)
	}
	if _, err := New(Config{Auth: tableAuth{}, Policies: e.policies, AllowAnonymous: true}); err == nil {
		t.Fatal("New accepted anonymous access without an org")
	}
}

func TestPolicyUnknownFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		err  error
		want string
	}{
		{errors.New("no snapshot yet"), "policy for organization acme is unknown: no snapshot yet"},
		{errors.New("policy for organization acme expired: last confirmed 25h ago"), "policy for organization acme expired: last confirmed 25h ago"},
		// A reason cannot smuggle a header into the response.
		{errors.New("boom\r\nX-Injected: 1\r\n\r\nHTTP/1.1 200 OK"), "policy for organization acme is unknown: boom  X-Injected: 1    HTTP/1.1 200 OK"},
	} {
		e.policies.setErr(c.err)
		resp, _ := e.rawResponse("CONNECT allowed.test:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n\r\n")
		if resp.StatusCode != http.StatusForbidden || resp.Status != "403 "+c.want {
			t.Errorf("policy error %q: status %q, want 403 %s", c.err, resp.Status, c.want)
		}
		if resp.Header.Get("X-Injected") != "" {
			t.Errorf("policy error %q injected a header", c.err)
		}
	}
	ds := e.decisions("allowed.test", false)
	if len(ds) != 3 || ds[0].Rule != "policy" {
		t.Fatalf("fail-closed denials: %+v", ds)
	}
}

func TestPlainHTTP(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client("alice", aliceToken)
	resp, err := c.Get(e.httpURL("plain.test") + "/v2/?q=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "plain GET plain.test:" + e.httpPort + " /v2/?q=1"; string(body) != want || resp.StatusCode != 200 {
		t.Fatalf("allowed plain GET: %s %q, want %q", resp.Status, body, want)
	}
	if resp.Header.Get("X-Origin") != "yes" || resp.Header.Get("X-Origin-Hop") != "" {
		t.Errorf("response headers not relayed right: %v", resp.Header)
	}
	e.mu.Lock()
	seen := e.plainReq[0]
	e.mu.Unlock()
	for _, h := range []string{"Proxy-Authorization", "Proxy-Connection"} {
		if seen.Header.Get(h) != "" {
			t.Errorf("origin received %s", h)
		}
	}

	// Denied: the same reason as for CONNECT, in the status line.
	u := e.httpURL("plain-denied.test") + "/x"
	resp, err = c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "403 registry plain-denied.test:" + e.httpPort + " is not allowed by organization acme; ask an owner to add it to the allowed registries"; resp.Status != want {
		t.Fatalf("denied plain GET: %q, want %q", resp.Status, want)
	}
	e.mu.Lock()
	n := len(e.plainReq)
	e.mu.Unlock()
	if n != 1 {
		t.Fatalf("the denied request reached the origin")
	}
	ds := e.decisions("plain-denied.test", false)
	if len(ds) != 1 || ds[0].Method != "GET" {
		t.Fatalf("plain denial: %+v", ds)
	}
}

// Bodies (sized and chunked) are forwarded, and one client connection
// carries several requests.
func TestPlainHTTPBodiesAndKeepAlive(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	br := bufio.NewReader(c)
	auth := "Proxy-Authorization: " + basic("alice", aliceToken) + "\r\n"
	target := e.httpURL("plain.test")
	reqs := []string{
		"POST " + target + "/a HTTP/1.1\r\nHost: plain.test\r\n" + auth + "Content-Length: 5\r\n\r\nhello",
		"POST " + target + "/b HTTP/1.1\r\nHost: plain.test\r\n" + auth + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n",
		"GET " + target + "/c HTTP/1.1\r\nHost: evil.test\r\n" + auth + "Proxy-Connection: keep-alive\r\n\r\n",
	}
	wantBodies := []string{"hello", "abcde", ""}
	for i, r := range reqs {
		if _, err := io.WriteString(c, r); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("request %d: %s close=%v", i, resp.Status, resp.Close)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.plainBody) != 3 {
		t.Fatalf("origin saw %d requests", len(e.plainBody))
	}
	for i, want := range wantBodies {
		if e.plainBody[i] != want {
			t.Errorf("request %d: origin got body %q, want %q", i, e.plainBody[i], want)
		}
	}
	// The Host header cannot differ from the host that was decided.
	if h := e.plainReq[2].Host; h != "plain.test:"+e.httpPort {
		t.Errorf("origin saw Host %q", h)
	}
	if v := metricValue(t, e.gw.m.activeConns); v != 1 {
		t.Errorf("active connections = %v, want 1 (one kept-alive client)", v)
	}
}

func TestDomainFrontingRefused(t *testing.T) {
	e := newEnv(t, nil)
	target := "allowed.test:" + e.tlsPort
	for _, c := range []struct {
		sni    string
		reason string
	}{
		{"denied.test", "TLS server name denied.test does not match the CONNECT host allowed.test:" + e.tlsPort + "; domain fronting is not allowed"},
		{"other.test", "TLS server name other.test does not match the CONNECT host allowed.test:" + e.tlsPort + "; domain fronting is not allowed"},
		{"", "the TLS ClientHello in the tunnel to allowed.test:" + e.tlsPort + " names no server; it must name allowed.test"},
	} {
		conn := e.connectTunnel(target)
		tc := tls.Client(conn, &tls.Config{ServerName: c.sni, RootCAs: e.ca.pool, InsecureSkipVerify: c.sni == ""})
		if err := tc.Handshake(); err == nil {
			t.Errorf("SNI %q through a tunnel to allowed.test: handshake succeeded", c.sni)
		}
		ds := e.decisions("allowed.test", false)
		if len(ds) == 0 || ds[len(ds)-1].Reason != c.reason || ds[len(ds)-1].Rule != "tunnel.serverName" {
			t.Errorf("SNI %q: last denial %+v, want reason %q", c.sni, ds, c.reason)
		}
	}
	// Upper case and a trailing dot name the same host.
	conn := e.connectTunnel(target)
	tc := tls.Client(conn, &tls.Config{ServerName: "Allowed.Test.", RootCAs: e.ca.pool})
	if err := tc.Handshake(); err != nil {
		t.Errorf("SNI Allowed.Test.: %v", err)
	}
	e.mustWork()
}

func TestTunnelNeedsTLS(t *testing.T) {
	e := newEnv(t, nil)
	conn := e.connectTunnel("allowed.test:" + e.tlsPort)
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: denied.test\r\n\r\n")
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Fatalf("plain text through a tunnel got %d bytes back", n)
	}
	ds := e.decisions("allowed.test", false)
	if len(ds) != 1 || ds[0].Rule != "tunnel.tls" {
		t.Fatalf("non-TLS tunnel: %+v", ds)
	}
	e.mustWork()
}

// An IP-literal CONNECT is decided as the literal and may omit SNI.
func TestConnectIPLiteral(t *testing.T) {
	e := newEnv(t, nil)
	body, err := e.get(e.client("alice", aliceToken), "https://127.0.0.1:"+e.tlsPort+"/")
	if err != nil || body != "hello from 127.0.0.1:"+e.tlsPort {
		t.Fatalf("IP literal: %q %v", body, err)
	}
	// 127.0.0.2 is not listed: a literal matches only itself.
	_, err = e.get(e.client("alice", aliceToken), "https://127.0.0.2:"+e.tlsPort+"/")
	if err == nil || !strings.Contains(err.Error(), "registry 127.0.0.2:"+e.tlsPort+" is not allowed") {
		t.Fatalf("unlisted literal: %v", err)
	}
}

// The tunnel passes bytes unchanged both ways, the ClientHello first, and
// a half-close on one side reaches the other while the other way goes on.
func TestTunnelHalfCloseAndBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the client's half-close
		got <- b
		io.WriteString(c, "reply after EOF")
	}()
	e := newEnv(t, func(c *Config) { c.Resolve["echo.test"] = ln.Addr().String() })
	e.policies.set(testOrg, compileAllowing(t, testOrg, "echo.test"))
	conn := e.connectTunnel("echo.test:443")
	hello := clientHello(t, "echo.test")
	t.Logf("ClientHello of %d bytes", len(hello))
	payload := append(append([]byte{}, hello...), []byte("then some application data")...)
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	select {
	case b := <-got:
		if string(b) != string(payload) {
			t.Fatalf("origin received %d bytes, want the %d sent", len(b), len(payload))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("origin did not see the half-close")
	}
	reply, err := io.ReadAll(conn)
	if err != nil || string(reply) != "reply after EOF" {
		t.Fatalf("reply %q, err %v", reply, err)
	}
	waitFor(t, "tunnel to end", func() bool { return metricValue(t, e.gw.m.tunnels) == 0 })
	if up, down := metricValue(t, e.gw.m.bytesUp), metricValue(t, e.gw.m.bytesDown); int(up) != len(payload) || int(down) != len("reply after EOF") {
		t.Errorf("tunnel bytes up %v down %v, want %d and %d", up, down, len(payload), len("reply after EOF"))
	}
	waitFor(t, "connection to be released", func() bool { return metricValue(t, e.gw.m.activeConns) == 0 })
}

func TestNewRejectsBadConfig(t *testing.T) {
	p := &staticPolicies{}
	for name, cfg := range map[string]Config{
		"no auth":            {Policies: p},
		"no policies":        {Auth: tableAuth{}},
		"resolve to 0.0.0.0": {Auth: tableAuth{}, Policies: p, Resolve: map[string]string{"x.test": "0.0.0.0:1"}},
		"resolve to a name":  {Auth: tableAuth{}, Policies: p, Resolve: map[string]string{"x.test": "example.com:1"}},
		"resolve bad name":   {Auth: tableAuth{}, Policies: p, Resolve: map[string]string{"x..test": "127.0.0.1:1"}},
		"negative limit":     {Auth: tableAuth{}, Policies: p, MaxConns: -1},
		"anonymous, no org":  {Auth: tableAuth{}, Policies: p, AllowAnonymous: true},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestUpstreamRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	e := newEnv(t, func(c *Config) { c.Resolve["down.test"] = closedAddr })
	e.policies.set(testOrg, compileAllowing(t, testOrg, "down.test", "allowed.test", "unresolvable.invalid"))
	resp, _ := e.rawResponse("CONNECT down.test:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway || resp.Status != "502 cannot connect to down.test" {
		t.Fatalf("refused upstream: %q", resp.Status)
	}
	resp, _ = e.rawResponse("CONNECT unresolvable.invalid:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n\r\n")
	if resp.StatusCode != http.StatusBadGateway || !strings.HasPrefix(resp.Status, "502 cannot resolve unresolvable.invalid") {
		t.Fatalf("unresolvable upstream: %q", resp.Status)
	}
	e.mustWork()
}
