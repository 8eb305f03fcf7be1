package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

const testOrg = "acme"

// testCA issues the certificates of the made-up origin names.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gateway test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// staticPolicies is a PolicySource with fixed compiled policies; err, when
// set, is returned for every org instead.
type staticPolicies struct {
	mu      sync.Mutex
	byOrg   map[string]*policy.Compiled
	version int64
	err     error
}

func (s *staticPolicies) Policy(_ context.Context, org string) (*policy.Compiled, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, 0, s.err
	}
	c, ok := s.byOrg[org]
	if !ok {
		return nil, 0, fmt.Errorf("no policy for %s", org)
	}
	return c, s.version, nil
}

func (s *staticPolicies) set(org string, c *policy.Compiled) {
	s.mu.Lock()
	s.byOrg[org] = c
	s.mu.Unlock()
}

func (s *staticPolicies) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// compileAllowing builds org's policy allowing exactly hosts.
func compileAllowing(t testing.TB, org string, hosts ...string) *policy.Compiled {
	t.Helper()
	p := policy.Default(org)
	p.RegistryAccess.Registries = nil
	for _, h := range hosts {
		p.RegistryAccess.Registries = append(p.RegistryAccess.Registries, policy.Registry{Host: h})
	}
	c, err := policy.Compile(p, policy.Catalog{})
	if err != nil {
		t.Fatalf("compile policy allowing %v: %v", hosts, err)
	}
	return c
}

// tableAuth knows a few users and their tokens.
type tableAuth map[string]struct {
	token string
	id    Identity
}

func (a tableAuth) Authenticate(_ context.Context, user, token string) (Identity, error) {
	e, ok := a[user]
	if !ok || e.token != token {
		return Identity{}, ErrUnauthenticated
	}
	return e.id, nil
}

// sink collects decisions.
type sink struct {
	mu sync.Mutex
	ds []store.DecisionRecord
}

func (s *sink) Record(d store.DecisionRecord) {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
}

func (s *sink) all() []store.DecisionRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.DecisionRecord(nil), s.ds...)
}

// waitFor polls f for up to 5 s.
func waitFor(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer collects log output safely across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// env is a gateway in front of a TLS origin answering for allowed.test,
// denied.test and other.test, and a plain-HTTP origin for plain.test and
// plain-denied.test. alice is a member of acme, olivia an owner.
type env struct {
	t        testing.TB
	ca       *testCA
	gw       *Gateway
	addr     string // gateway 127.0.0.1:PORT
	tlsPort  string
	httpPort string
	origin   *httptest.Server
	plain    *httptest.Server
	policies *staticPolicies
	sink     *sink
	reg      *prometheus.Registry
	served   chan error
	logs     *syncBuffer

	mu        sync.Mutex
	plainReq  []*http.Request // requests the plain origin saw
	plainBody []string
	clients   []*http.Client
}

const (
	aliceToken  = "rw_alice_token"
	oliviaToken = "rw_olivia_token"
)

// newEnv starts an env; tweak adjusts the gateway's Config first.
func newEnv(t testing.TB, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t, ca: newTestCA(t), sink: &sink{}, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	e.origin = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.Host)
	}))
	e.origin.TLS = &tls.Config{Certificates: []tls.Certificate{e.ca.issue(t, "allowed.test", "denied.test", "other.test", "127.0.0.1")}}
	e.origin.Config.ErrorLog = log.New(io.Discard, "", 0)
	e.origin.StartTLS()
	t.Cleanup(e.origin.Close)
	e.plain = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.plainReq = append(e.plainReq, r)
		e.plainBody = append(e.plainBody, string(body))
		e.mu.Unlock()
		w.Header().Set("Connection", "X-Origin-Hop")
		w.Header().Set("X-Origin-Hop", "must not reach the client")
		w.Header().Set("X-Origin", "yes")
		fmt.Fprintf(w, "plain %s %s %s", r.Method, r.Host, r.URL.RequestURI())
	}))
	t.Cleanup(e.plain.Close)
	_, e.tlsPort, _ = net.SplitHostPort(e.origin.Listener.Addr().String())
	_, e.httpPort, _ = net.SplitHostPort(e.plain.Listener.Addr().String())

	e.policies = &staticPolicies{version: 3, byOrg: map[string]*policy.Compiled{
		testOrg: compileAllowing(t, testOrg, "allowed.test", "other.test", "plain.test", "127.0.0.1", "inspect.test"),
	}}
	originAddr := e.origin.Listener.Addr().String()
	plainAddr := e.plain.Listener.Addr().String()
	cfg := Config{
		Auth: tableAuth{
			"alice":  {aliceToken, Identity{User: "alice", Org: testOrg}},
			"olivia": {oliviaToken, Identity{User: "olivia", Org: testOrg, Owner: true}},
		},
		Policies:   e.policies,
		Decisions:  e.sink,
		LogAllowed: true,
		Resolve: map[string]string{
			"allowed.test":      originAddr,
			"denied.test":       originAddr,
			"other.test":        originAddr,
			"inspect.test":      originAddr,
			"plain.test":        plainAddr,
			"plain-denied.test": plainAddr,
		},
		Name:       "gw-test",
		Registerer: e.reg,
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	gw, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.gw = gw
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.served = make(chan error, 1)
	go func() { e.served <- gw.Serve(ln) }()
	t.Cleanup(func() {
		e.mu.Lock()
		for _, c := range e.clients {
			c.CloseIdleConnections()
		}
		e.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-e.served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Shutdown")
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", e.logs.String())
		}
	})
	return e
}

// client is an http.Client that goes through the gateway as user with
// token (no credentials when user is empty) and trusts the test CA.
func (e *env) client(user, token string) *http.Client {
	u := &url.URL{Scheme: "http", Host: e.addr}
	if user != "" {
		u.User = url.UserPassword(user, token)
	}
	c := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:           http.ProxyURL(u),
			TLSClientConfig: &tls.Config{RootCAs: e.ca.pool},
		},
	}
	e.mu.Lock()
	e.clients = append(e.clients, c)
	e.mu.Unlock()
	return c
}

func (e *env) tlsURL(host string) string  { return "https://" + net.JoinHostPort(host, e.tlsPort) + "/" }
func (e *env) httpURL(host string) string { return "http://" + net.JoinHostPort(host, e.httpPort) }

// get fetches url through the gateway and returns the body or the error.
func (e *env) get(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), nil
}

// mustWork checks that a good client still gets through.
func (e *env) mustWork() {
	e.t.Helper()
	body, err := e.get(e.client("alice", aliceToken), e.tlsURL("allowed.test"))
	if err != nil || !strings.HasPrefix(body, "hello from allowed.test") {
		e.t.Fatalf("good client after the test: body %q, err %v", body, err)
	}
}

// dial opens a raw connection to the gateway.
func (e *env) dial() net.Conn {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	e.t.Cleanup(func() { c.Close() })
	return c
}

// rawResponse sends raw to the gateway and returns the response to it.
func (e *env) rawResponse(raw string) (*http.Response, string) {
	e.t.Helper()
	c := e.dial()
	if _, err := io.WriteString(c, raw); err != nil {
		e.t.Fatalf("write: %v", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		e.t.Fatalf("read response to %q: %v", truncate(raw, 80), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// connectTunnel opens a CONNECT tunnel as alice and returns the connection
// after the 200.
func (e *env) connectTunnel(target string) net.Conn {
	e.t.Helper()
	c := e.dial()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", target, target, basic("alice", aliceToken))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		e.t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("CONNECT %s: %s", target, resp.Status)
	}
	if br.Buffered() != 0 {
		e.t.Fatalf("CONNECT %s: %d bytes after the 200", target, br.Buffered())
	}
	return c
}

func basic(user, token string) string {
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(user, token)
	return req.Header.Get("Authorization")
}

// clientHello returns the first TLS record(s) crypto/tls sends for
// serverName ("" sends none, as for an IP address).
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		cfg := &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""}
		tls.Client(a, cfg).Handshake()
	}()
	b.SetDeadline(time.Now().Add(5 * time.Second))
	raw, _, err := readClientHello(b)
	if err != nil {
		t.Fatalf("capture ClientHello: %v", err)
	}
	return raw
}

// findDecision returns the decisions for host with the given outcome.
func (e *env) decisions(host string, allowed bool) []store.DecisionRecord {
	var out []store.DecisionRecord
	for _, d := range e.sink.all() {
		if d.Host == host && d.Allowed == allowed {
			out = append(out, d)
		}
	}
	return out
}

// metricValue reads a counter or gauge.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatalf("read metric: %v", err)
	}
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither counter nor gauge", m.Desc())
	return 0
}
