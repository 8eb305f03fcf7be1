package e2e

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/registrytest"
	"github.com/regward/regward/internal/store"
)

const (
	org = "acme"
	// The reason dockerd, skopeo and podman must show for an unauthenticated
	// client (DESIGN.md "Enforcement").
	signInReason = "sign in to your organization: run `regward login`"
)

// deniedReason is DESIGN.md's reason phrase for a denied CONNECT.
func deniedReason(hostport string) string {
	return "registry " + hostport + " is not allowed by organization " + org +
		"; ask an owner to add it to the allowed registries"
}

// swapPolicy is a PolicySource whose policy a test replaces while clients
// run, as Save & Apply does through the control plane.
type swapPolicy struct {
	mu      sync.RWMutex
	c       *policy.Compiled
	version int64
}

func (s *swapPolicy) Policy(_ context.Context, o string) (*policy.Compiled, int64, error) {
	if o != org {
		return nil, 0, fmt.Errorf("no policy for organization %q", o)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.c == nil {
		return nil, 0, errors.New("no policy yet")
	}
	return s.c, s.version, nil
}

// allow applies a policy whose registry allowlist is Docker Hub plus hosts.
func (s *swapPolicy) allow(t *testing.T, hosts ...string) {
	t.Helper()
	p := policy.Default(org)
	p.RegistryAccess.Enabled = true
	p.RegistryAccess.Registries = []policy.Registry{{Host: policy.DockerHubGroup}}
	for _, h := range hosts {
		p.RegistryAccess.Registries = append(p.RegistryAccess.Registries, policy.Registry{Host: h})
	}
	c, err := policy.Compile(p, policy.Catalog{})
	if err != nil {
		t.Fatalf("compile policy allowing %v: %v", hosts, err)
	}
	s.mu.Lock()
	s.c = c
	s.version++
	s.mu.Unlock()
}

// tableAuth authenticates from a fixed user/token table.
type tableAuth map[string]struct {
	token string
	id    gateway.Identity
}

func (a tableAuth) Authenticate(_ context.Context, username, token string) (gateway.Identity, error) {
	e, ok := a[username]
	if !ok || subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) != 1 {
		return gateway.Identity{}, gateway.ErrUnauthenticated
	}
	return e.id, nil
}

// decisionLog records every decision the gateway reports.
type decisionLog struct {
	mu sync.Mutex
	ds []store.DecisionRecord
}

func (l *decisionLog) Record(d store.DecisionRecord) {
	l.mu.Lock()
	l.ds = append(l.ds, d)
	l.mu.Unlock()
}

// find returns the recorded decisions for a host and outcome.
func (l *decisionLog) find(host string, allowed bool) []store.DecisionRecord {
	return l.where(allowed, func(d store.DecisionRecord) bool { return d.Host == host })
}

// findImage returns the recorded decisions for an image and outcome.
func (l *decisionLog) findImage(image string, allowed bool) []store.DecisionRecord {
	return l.where(allowed, func(d store.DecisionRecord) bool { return d.Image == image })
}

func (l *decisionLog) where(allowed bool, match func(store.DecisionRecord) bool) []store.DecisionRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []store.DecisionRecord
	for _, d := range l.ds {
		if d.Allowed == allowed && match(d) {
			out = append(out, d)
		}
	}
	return out
}

// lockedBuffer collects the gateway's log; it is shown when a test fails
// (logging to t.Log directly would race with the end of the test).
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

// env is one gateway in front of one registry that answers for
// allowed.test and denied.test, with alice (member) and olivia (owner) of
// acme as its users.
type env struct {
	reg       *registrytest.Registry
	policies  *swapPolicy
	decisions *decisionLog
	addr      string // the gateway's 127.0.0.1:PORT
	tokens    map[string]string
}

func (e *env) allowed() string { return e.reg.HostPort("allowed.test") }
func (e *env) denied() string  { return e.reg.HostPort("denied.test") }

// proxyURL is http://USER:TOKEN@GATEWAY for a user of the table, or with a
// made-up token when token is not empty.
func (e *env) proxyURL(user, token string) string {
	if token == "" {
		token = e.tokens[user]
	}
	u := url.URL{Scheme: "http", User: url.UserPassword(user, token), Host: e.addr}
	return u.String()
}

func startEnv(t *testing.T) *env {
	t.Helper()
	reg := registrytest.Start(t, "allowed.test", "denied.test")
	reg.Push(t, "allowed.test", "app:v1")
	e := &env{
		reg:       reg,
		policies:  &swapPolicy{},
		decisions: &decisionLog{},
		tokens:    map[string]string{"alice": "rw_alice_e2e_token", "olivia": "rw_olivia_e2e_token"},
	}
	e.policies.allow(t, "allowed.test")
	logs := &lockedBuffer{}
	gw, err := gateway.New(gateway.Config{
		Auth: tableAuth{
			"alice":  {e.tokens["alice"], gateway.Identity{User: "alice", Org: org}},
			"olivia": {e.tokens["olivia"], gateway.Identity{User: "olivia", Org: org, Owner: true}},
		},
		Policies:  e.policies,
		Decisions: e.decisions,
		// The made-up names exist only here: clients send CONNECT with the
		// name and the gateway alone knows where it is.
		Resolve:    map[string]string{"allowed.test": reg.Addr, "denied.test": reg.Addr},
		LogAllowed: true,
		Name:       "e2e",
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("gateway Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				t.Errorf("gateway Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("gateway Serve did not return after Shutdown")
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return e
}

// eventually retries f until it returns nil or 5 s pass: DESIGN.md allows a
// policy change about a second to reach a gateway.
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
		time.Sleep(200 * time.Millisecond)
	}
}

// wantDenied checks a client's output for a refusal with the exact reason.
func wantDenied(out string, err error, reason string) error {
	if err == nil {
		return fmt.Errorf("succeeded, want refused with %q; output:\n%s", reason, out)
	}
	if !strings.Contains(out, reason) {
		return fmt.Errorf("refused (%v) but the output lacks %q:\n%s", err, reason, out)
	}
	return nil
}

// wantAllowed checks that a client command succeeded.
func wantAllowed(out string, err error) error {
	if err != nil {
		return fmt.Errorf("%v; output:\n%s", err, out)
	}
	return nil
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
