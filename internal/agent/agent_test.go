package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regward/regward/internal/client"
	"github.com/regward/regward/internal/policy"
)

const signInReason = "sign in to your organization: run `regward login`"

// env is an agent on 127.0.0.1:0 with its own session, cache and
// registry.json paths, and a TCP target that stands for an allowed
// registry (allowed.test and denied.test both resolve to it).
type env struct {
	t         *testing.T
	dir       string
	session   string
	regJSON   string
	cache     client.SnapshotCache
	server    string // a control plane nobody answers on
	target    string
	agent     *Agent
	stopped   chan error
	cancel    context.CancelFunc
	logs      *lockedBuffer
	ttl       time.Duration
	pollEvery time.Duration
	resolved  map[string]string
	roots     *x509.CertPool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		t: t, dir: dir,
		session:   filepath.Join(dir, "config", "session.json"),
		regJSON:   filepath.Join(dir, "registry.json"),
		cache:     client.SnapshotCache{Root: filepath.Join(dir, "cache")},
		server:    closedURL(t),
		logs:      &lockedBuffer{},
		ttl:       time.Hour,
		pollEvery: 100 * time.Millisecond,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = c.Read(make([]byte, 1))
			}()
		}
	}()
	e.target = ln.Addr().String()
	e.resolved = map[string]string{"allowed.test": e.target, "denied.test": e.target}
	return e
}

func closedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

func (e *env) start() {
	e.t.Helper()
	a, err := New(Config{
		Listen: "127.0.0.1:0", SessionPath: e.session, RegistryJSON: e.regJSON, Cache: e.cache,
		TTL: e.ttl, Resolve: e.resolved, Poll: e.pollEvery, UpstreamRoots: e.roots,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		e.t.Fatalf("agent.New: %v", err)
	}
	e.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.stopped = cancel, make(chan error, 1)
	go func() { e.stopped <- a.Run(ctx) }()
	e.t.Cleanup(func() {
		e.stop()
		if e.t.Failed() {
			e.t.Logf("agent log:\n%s", e.logs.String())
		}
	})
	e.waitState(func(client.AgentState) bool { return true })
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.stopped:
		if err != nil {
			e.t.Errorf("agent Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		e.t.Errorf("agent did not stop")
	}
}

// waitState waits for the agent's state file.
func (e *env) waitState(ok func(client.AgentState) bool) client.AgentState {
	e.t.Helper()
	p, _ := client.AgentStatePath(e.session)
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := client.ReadAgentState(p)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("agent state file %s: %v", p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) signIn(org, role string) client.Session {
	e.t.Helper()
	s := client.Session{Server: e.server, Org: org, Username: "alice", Role: role, TokenID: "t1", Token: "rw_test_token_" + org, SignedIn: time.Now()}
	if err := client.SaveSession(e.session, s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) cachePolicy(org string, fetched time.Time, allow ...string) {
	e.t.Helper()
	p := policy.Default(org)
	p.RegistryAccess.Enabled = true
	p.RegistryAccess.Registries = nil
	for _, h := range allow {
		p.RegistryAccess.Registries = append(p.RegistryAccess.Registries, policy.Registry{Host: h})
	}
	cs := client.CachedSnapshot{FetchedAt: fetched, Snapshot: client.Snapshot{Org: org, Version: 4, Policy: p}}
	if err := e.cache.Save(e.server, cs); err != nil {
		e.t.Fatal(err)
	}
}

// connect sends CONNECT host:port through the agent and returns the status
// code and reason phrase.
func (e *env) connect(hostport string, cred string) (int, string) {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.agent.Addr().String(), 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "CONNECT " + hostport + " HTTP/1.1\r\nHost: " + hostport + "\r\n"
	if cred != "" {
		req += "Proxy-Authorization: Basic " + cred + "\r\n"
	}
	if _, err := fmt.Fprint(c, req+"\r\n"); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		e.t.Fatalf("CONNECT %s: %v", hostport, err)
	}
	resp.Body.Close()
	return resp.StatusCode, strings.TrimPrefix(resp.Status, fmt.Sprintf("%d ", resp.StatusCode))
}

// eventually retries f for up to 5 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) want(hostport string, status int, reason string) func() error {
	return func() error {
		got, why := e.connect(hostport, "")
		if got != status || !strings.Contains(why, reason) {
			return fmt.Errorf("CONNECT %s = %d %q, want %d with %q", hostport, got, why, status, reason)
		}
		return nil
	}
}

func TestSignedOutRefusesWithTheSignInReason(t *testing.T) {
	e := newEnv(t)
	e.start()
	if err := e.want("allowed.test:443", http.StatusProxyAuthRequired, signInReason)(); err != nil {
		t.Fatal(err)
	}
	r := e.agent.Report()
	if r.State != client.AgentSignedOut || !strings.Contains(r.Reason, "nobody is signed in") {
		t.Errorf("report: %+v", r)
	}
}

func TestCachedPolicyIsEnforcedWithoutTheControlPlane(t *testing.T) {
	e := newEnv(t)
	e.signIn("acme", "member")
	e.cachePolicy("acme", time.Now(), "allowed.test")
	e.start()

	if err := e.want(hostPort("allowed.test", e.target), http.StatusOK, "")(); err != nil {
		t.Fatal(err)
	}
	denied := hostPort("denied.test", e.target)
	if err := e.want(denied, http.StatusForbidden, "registry "+denied+" is not allowed by organization acme")(); err != nil {
		t.Fatal(err)
	}
	r := e.agent.Report()
	if r.State != client.AgentEnforcing || r.PolicyVersion != 4 || r.Org != "acme" || r.User != "alice" {
		t.Errorf("report: %+v", r)
	}
}

func TestExpiredPolicyDenies(t *testing.T) {
	e := newEnv(t)
	e.ttl = 3 * time.Second
	e.signIn("acme", "member")
	fetched := time.Now().Add(-1500 * time.Millisecond)
	e.cachePolicy("acme", fetched, "allowed.test")
	e.start()
	allowed := hostPort("allowed.test", e.target)
	if err := e.want(allowed, http.StatusOK, "")(); err != nil {
		t.Fatalf("within the TTL: %v", err)
	}
	time.Sleep(time.Until(fetched.Add(e.ttl + 100*time.Millisecond)))
	if err := e.want(allowed, http.StatusForbidden, "policy for organization acme expired")(); err != nil {
		t.Fatalf("past the TTL: %v", err)
	}
	if r := e.agent.Report(); r.State != client.AgentExpired || !strings.Contains(r.Reason, "expired") {
		t.Errorf("report: %+v", r)
	}
}

func TestRegistryJSONRefusesOtherOrgs(t *testing.T) {
	e := newEnv(t)
	if err := os.WriteFile(e.regJSON, []byte(`{"allowedOrgs":["beta"]}`), 0o444); err != nil {
		t.Fatal(err)
	}
	e.signIn("acme", "member")
	e.cachePolicy("acme", time.Now(), "allowed.test")
	e.start()
	allowed := hostPort("allowed.test", e.target)
	if err := e.want(allowed, http.StatusProxyAuthRequired, signInReason)(); err != nil {
		t.Fatal(err)
	}
	r := e.agent.Report()
	if r.State != client.AgentSignedOut || !strings.Contains(r.Reason, "this machine requires sign-in to one of: beta") || !r.Enforced {
		t.Errorf("report: %+v", r)
	}

	// The file changes to allow acme: the agent notices without being told.
	if err := os.Chmod(e.regJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.regJSON, []byte(`{"allowedOrgs":["acme","beta"]}`), 0o444); err != nil {
		t.Fatal(err)
	}
	eventually(t, "after registry.json allows acme", e.want(allowed, http.StatusOK, ""))

	// A malformed file refuses everything (never a guess).
	os.Chmod(e.regJSON, 0o644)
	if err := os.WriteFile(e.regJSON, []byte(`{"allowedOrgs":["Acme"]}`), 0o444); err != nil {
		t.Fatal(err)
	}
	eventually(t, "after registry.json broke", e.want(allowed, http.StatusProxyAuthRequired, signInReason))
	if r := e.agent.Report(); !strings.Contains(r.Reason, "registry.json is unusable") {
		t.Errorf("report: %+v", r)
	}
}

func TestSignInChangesApplyOnReload(t *testing.T) {
	e := newEnv(t)
	e.poll(time.Hour) // only the control endpoint may trigger the reload
	e.start()
	allowed := hostPort("allowed.test", e.target)
	if err := e.want(allowed, http.StatusProxyAuthRequired, signInReason)(); err != nil {
		t.Fatal(err)
	}
	e.signIn("acme", "owner")
	e.cachePolicy("acme", time.Now(), "allowed.test")

	ac, err := client.FindAgent(e.session)
	if err != nil || ac == nil {
		t.Fatalf("FindAgent: %v %v", ac, err)
	}
	r, err := ac.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.State != client.AgentEnforcing || r.Org != "acme" {
		t.Errorf("after reload: %+v", r)
	}
	if err := e.want(allowed, http.StatusOK, "")(); err != nil {
		t.Fatal(err)
	}

	// A wrong control key is refused.
	bad := &client.AgentControl{State: ac.State}
	bad.State.Key = strings.Repeat("0", len(ac.State.Key))
	if _, err := bad.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("status with a wrong key: %v", err)
	}

	// Sign-out: refused again.
	if err := client.RemoveSession(e.session); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.want(allowed, http.StatusProxyAuthRequired, signInReason)(); err != nil {
		t.Fatal(err)
	}
}

func TestSignedInUserMayAlsoSendItsCredential(t *testing.T) {
	e := newEnv(t)
	s := e.signIn("acme", "member")
	e.cachePolicy("acme", time.Now(), "allowed.test")
	e.start()
	allowed := hostPort("allowed.test", e.target)
	good := basic(s.Username, s.Token)
	if code, why := e.connect(allowed, good); code != http.StatusOK {
		t.Errorf("own credential: %d %s", code, why)
	}
	if code, why := e.connect(allowed, basic("bob", s.Token)); code != http.StatusProxyAuthRequired || why != signInReason {
		t.Errorf("another user's name: %d %s", code, why)
	}
}

func TestStateFileLifecycle(t *testing.T) {
	e := newEnv(t)
	e.start()
	st := e.waitState(func(client.AgentState) bool { return true })
	if st.PID != os.Getpid() || st.Listen != e.agent.Addr().String() || len(st.Key) != 64 {
		t.Errorf("state: %+v", st)
	}
	p, _ := client.AgentStatePath(e.session)
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v %v", fi, err)
	}

	// A second agent for the same sign-in is refused while the first runs.
	_, err = New(Config{Listen: "127.0.0.1:0", SessionPath: e.session, RegistryJSON: e.regJSON, Cache: e.cache})
	if err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Errorf("second agent: %v", err)
	}

	e.stop()
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after stop: %v", err)
	}
}

func TestListenOnLoopbackOnly(t *testing.T) {
	dir := t.TempDir()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:3128"} {
		_, err := New(Config{Listen: addr, SessionPath: filepath.Join(dir, "s.json")})
		if err == nil || !strings.Contains(err.Error(), "loopback only") {
			t.Errorf("--listen %s: %v", addr, err)
		}
	}
}

func (e *env) poll(d time.Duration) { e.pollEvery = d }

func hostPort(name, target string) string {
	_, port, _ := net.SplitHostPort(target)
	return net.JoinHostPort(name, port)
}

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// lockedBuffer collects the agent's log for a failing test.
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
