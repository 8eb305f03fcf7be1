package inspect

import (
	"bufio"
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/gwca"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/registrytest"
	"github.com/regward/regward/internal/store"
)

const (
	org         = "acme"
	aliceToken  = "rw_alice_inspect_token"  // a member
	oliviaToken = "rw_olivia_inspect_token" // an owner
)

// testCatalog puts verifiedco on the verified publisher list.
var testCatalog = policy.Catalog{VerifiedPublishers: []string{"verifiedco"}, SponsoredOSS: []string{"ossco"}}

// basePolicy is acme's policy in these tests: Docker Hub with official
// images allowed and the other categories restricted, acme's own
// namespace, pushes only there; a pull-only mirror and the CDN it may
// redirect to.
func basePolicy() policy.Policy {
	p := policy.Default(org)
	p.RegistryAccess.Registries = []policy.Registry{
		{Host: policy.DockerHubGroup},
		{Host: "pull.test", Access: policy.AccessPull},
		{Host: "mirror.test", Access: policy.AccessPull},
		{Host: "cdn.allowed.test"},
	}
	p.ImageAccess = policy.ImageAccess{
		Enabled:                 true,
		OfficialImages:          policy.Allowed,
		VerifiedPublisherImages: policy.Restricted,
		SponsoredOSSImages:      policy.Restricted,
		CommunityImages:         policy.Restricted,
		OrgNamespaces:           []string{"acme"},
		RepositoryAllowlist:     []string{},
	}
	p.NamespaceAccess.PushOnlyToOrgNamespaces = true
	return p
}

// swapPolicies is a PolicySource whose policy a test replaces while
// clients keep their connections, as Save & Apply does.
type swapPolicies struct {
	mu      sync.Mutex
	c       *policy.Compiled
	version int64
	err     error
}

func (s *swapPolicies) Policy(_ context.Context, o string) (*policy.Compiled, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, 0, s.err
	}
	if o != org {
		return nil, 0, fmt.Errorf("no policy for organization %q", o)
	}
	return s.c, s.version, nil
}

func (s *swapPolicies) set(t testing.TB, p policy.Policy) *policy.Compiled {
	t.Helper()
	c, err := policy.Compile(p, testCatalog)
	if err != nil {
		t.Fatalf("compile policy: %v", err)
	}
	s.mu.Lock()
	s.c, s.err = c, nil
	s.version++
	s.mu.Unlock()
	return c
}

func (s *swapPolicies) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

type tableAuth map[string]struct {
	token string
	id    gateway.Identity
}

func (a tableAuth) Authenticate(_ context.Context, user, token string) (gateway.Identity, error) {
	e, ok := a[user]
	if !ok || subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) != 1 {
		return gateway.Identity{}, gateway.ErrUnauthenticated
	}
	return e.id, nil
}

// decisionLog keeps the records the inspector and the gateway send.
type decisionLog struct {
	mu sync.Mutex
	ds []store.DecisionRecord
}

func (l *decisionLog) Record(d store.DecisionRecord) {
	l.mu.Lock()
	l.ds = append(l.ds, d)
	l.mu.Unlock()
}

// find returns the records about image (or, with image "", about host).
func (l *decisionLog) find(host, image string, allowed bool) []store.DecisionRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []store.DecisionRecord
	for _, d := range l.ds {
		if d.Host == host && d.Image == image && d.Allowed == allowed {
			out = append(out, d)
		}
	}
	return out
}

func (l *decisionLog) all() []store.DecisionRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]store.DecisionRecord(nil), l.ds...)
}

// lockedBuffer collects logs, shown when a test fails.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// upstream is a TLS server for made-up names with a handler of the
// test's choosing (a registry that redirects, a blob generator).
type upstream struct {
	srv    *httptest.Server
	ca     *registrytest.CA
	names  []string
	conns  atomic.Int64 // connections accepted
	closed atomic.Int64 // connections closed
}

func startUpstream(t testing.TB, h http.Handler, protos []string, names ...string) *upstream {
	t.Helper()
	ca, err := registrytest.NewCA("inspect test upstream CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(append(names, "127.0.0.1")...)
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ca: ca, names: names}
	u.srv = httptest.NewUnstartedServer(h)
	u.srv.EnableHTTP2 = true
	u.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos}
	u.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			u.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			u.closed.Add(1)
		}
	}
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) addr() string { return u.srv.Listener.Addr().String() }

// transport reaches the upstream directly, for seeding it.
func (u *upstream) transport() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", u.addr())
		},
		TLSClientConfig: &tls.Config{RootCAs: u.ca.Pool()},
	}
}

// env is a gateway with the inspector in front of a registrytest registry
// answering as Docker Hub and as pull.test, and of a mirror (mirror.test)
// that redirects blob downloads to cdn.allowed.test or cdn.denied.test.
type env struct {
	gw        *gateway.Gateway
	in        *Inspector
	ca        *gwca.CA
	reg       *registrytest.Registry
	mirror    *upstream
	policies  *swapPolicies
	decisions *decisionLog
	reg2      *prometheus.Registry
	addr      string
	logs      *lockedBuffer
}

type envOption func(*env, *Options, *gateway.Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{policies: &swapPolicies{}, decisions: &decisionLog{}, logs: &lockedBuffer{}, reg2: prometheus.NewRegistry()}
	e.policies.set(t, basePolicy())
	e.reg = registrytest.Start(t, "registry-1.docker.io", "index.docker.io", "pull.test")
	e.mirror = startMirror(t)
	ca, err := gwca.LoadOrCreate(t.TempDir(), "inspect test gateway CA")
	if err != nil {
		t.Fatal(err)
	}
	e.ca = ca
	roots := x509.NewCertPool()
	roots.AddCert(e.reg.CA.Cert)
	roots.AddCert(e.mirror.ca.Cert)
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := Options{
		CA:            ca,
		UpstreamRoots: roots,
		Policies:      e.policies,
		Decisions:     e.decisions,
		LogAllowed:    true,
		Logger:        logger,
		Registerer:    e.reg2,
		Name:          "inspect-test",
	}
	gc := gateway.Config{
		Auth: tableAuth{
			"alice":  {aliceToken, gateway.Identity{User: "alice", Org: org}},
			"olivia": {oliviaToken, gateway.Identity{User: "olivia", Org: org, Owner: true}},
		},
		Policies:  e.policies,
		Decisions: e.decisions,
		Resolve: map[string]string{
			"registry-1.docker.io": e.reg.Addr,
			"index.docker.io":      e.reg.Addr,
			"pull.test":            e.reg.Addr,
			"mirror.test":          e.mirror.addr(),
			"cdn.allowed.test":     e.mirror.addr(),
			"cdn.denied.test":      e.mirror.addr(),
		},
		LogAllowed: true,
		Name:       "inspect-test",
		Logger:     logger,
	}
	for _, f := range opts {
		f(e, &o, &gc)
	}
	e.in, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	gc.Interceptor = e.in
	e.gw, err = gateway.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.gw.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.in.Drain()
		if err := e.gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway Shutdown after Drain: %v", err)
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("gateway Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", e.logs.String())
		}
	})
	return e
}

// startMirror runs mirror.test: a registry whose blobs of repositories
// named redirect-allowed and redirect-denied are answered with a redirect
// to cdn.allowed.test or cdn.denied.test, which serve them (same server).
func startMirror(t testing.TB) *upstream {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var u *upstream
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.Host, ":")
		if strings.HasPrefix(host, "cdn.") {
			// /blobs/REPO/DIGEST?sig=...: fetch it from the registry itself.
			rest := strings.TrimPrefix(r.URL.Path, "/blobs/")
			i := strings.LastIndexByte(rest, '/')
			if i < 0 {
				http.NotFound(w, r)
				return
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/v2/" + rest[:i] + "/blobs/" + rest[i+1:]
			r2.URL.RawQuery = ""
			reg.ServeHTTP(w, r2)
			return
		}
		for _, target := range []string{"allowed", "denied"} {
			prefix := "/v2/redirect-" + target + "/blobs/sha256:"
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, prefix) {
				dg := strings.TrimPrefix(r.URL.Path, "/v2/redirect-"+target+"/blobs/")
				to := "https://cdn." + target + ".test:" + strconv.Itoa(u.srv.Listener.Addr().(*net.TCPAddr).Port) +
					"/blobs/redirect-" + target + "/" + dg + "?sig=s3cr3t-signature"
				http.Redirect(w, r, to, http.StatusTemporaryRedirect)
				return
			}
		}
		reg.ServeHTTP(w, r)
	})
	u = startUpstream(t, h, []string{"h2", "http/1.1"}, "mirror.test", "cdn.allowed.test", "cdn.denied.test")
	return u
}

// proxyURL is http://USER:TOKEN@GATEWAY.
func (e *env) proxyURL(user, token string) *url.URL {
	return &url.URL{Scheme: "http", User: url.UserPassword(user, token), Host: e.addr}
}

// clientTransport goes through the gateway as user and trusts the gateway
// CA and the mirror's CA (for the blind tunnel to its CDN). h2 chooses
// whether HTTP/2 is offered.
func (e *env) clientTransport(user, token string, h2 bool) *http.Transport {
	roots := x509.NewCertPool()
	roots.AddCert(e.ca.Certificate())
	roots.AddCert(e.mirror.ca.Cert)
	tr := &http.Transport{
		Proxy:              http.ProxyURL(e.proxyURL(user, token)),
		TLSClientConfig:    &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2:  h2,
		DisableCompression: true,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return tr
}

func (e *env) alice() *http.Transport  { return e.clientTransport("alice", aliceToken, true) }
func (e *env) olivia() *http.Transport { return e.clientTransport("olivia", oliviaToken, true) }

// pull fetches a whole image through tr, checking every blob's digest.
func pull(ctx context.Context, ref string, tr http.RoundTripper) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, remote.WithContext(ctx), remote.WithTransport(tr))
	if err != nil {
		return err
	}
	return readImage(img)
}

func readImage(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed() // verifies the digest as it reads
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// push writes a small random image through tr.
func push(ctx context.Context, ref string, tr http.RoundTripper) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := registrytest.RandomImage(2048)
	if err != nil {
		return err
	}
	return remote.Write(r, img, remote.WithContext(ctx), remote.WithTransport(tr))
}

// denial returns the DENIED message of a registry error, or fails.
func denial(t *testing.T, err error) string {
	t.Helper()
	var te *transport.Error
	if !errors.As(err, &te) {
		t.Fatalf("want a registry error, got %v", err)
	}
	if len(te.Errors) != 1 || te.Errors[0].Code != transport.DeniedErrorCode || te.StatusCode != http.StatusForbidden {
		t.Fatalf("want one DENIED error with status 403, got status %d: %v", te.StatusCode, err)
	}
	return te.Errors[0].Message
}

// tunnel opens a CONNECT tunnel through the gateway and returns the raw
// connection, for requests no well-behaved client sends.
func (e *env) tunnel(t *testing.T, user, token, target string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	cred := e.proxyURL(user, token).User
	pw, _ := cred.Password()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: target}, Host: target, Header: http.Header{}}
	req.SetBasicAuth(cred.Username(), pw)
	req.Header.Set("Proxy-Authorization", req.Header.Get("Authorization"))
	req.Header.Del("Authorization")
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT %s: %s", target, resp.Status)
	}
	if br.Buffered() > 0 {
		t.Fatalf("bytes after the CONNECT answer")
	}
	return c
}

// tlsTunnel is tunnel with a TLS client on it, trusting the gateway CA.
func (e *env) tlsTunnel(t *testing.T, user, token, target, serverName string, protos ...string) *tls.Conn {
	t.Helper()
	c := e.tunnel(t, user, token, target)
	roots := x509.NewCertPool()
	roots.AddCert(e.ca.Certificate())
	tc := tls.Client(c, &tls.Config{ServerName: serverName, RootCAs: roots, NextProtos: protos})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake in the tunnel to %s: %v", target, err)
	}
	return tc
}

// counter reads a counter or gauge of the inspector's registry.
func (e *env) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg2.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matchLabels(m, labels) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func matchLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == kv[i] && lp.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func x509PoolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func gatewayReq(host string, port uint16, c *policy.Compiled) gateway.TunnelRequest {
	return gateway.TunnelRequest{Identity: gateway.Identity{User: "alice", Org: org}, Host: host, Port: port, Policy: c}
}

func newTestCA(t testing.TB) (*gwca.CA, error) {
	return gwca.LoadOrCreate(t.TempDir(), "inspect test gateway CA")
}

func registryImage() (v1.Image, error) { return registrytest.RandomImage(1024) }
