package gateway

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regward/regward/internal/policy"
)

func newTestFollower(t *testing.T, cfg FollowerConfig) *Follower {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = gatewayToken
	}
	f, err := NewFollower(cfg)
	if err != nil {
		t.Fatalf("NewFollower: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func allows(t *testing.T, c *policy.Compiled, host string) bool {
	t.Helper()
	return c.Decide(policy.Request{Host: host, Port: 443}).Allowed
}

func TestFollowerLongPoll(t *testing.T) {
	cp := newFakeCP(t)
	cp.apply(testOrg, "a.test")
	var mu sync.Mutex
	var seen []int64
	f := newTestFollower(t, FollowerConfig{
		ControlPlanes: []string{cp.srv.URL},
		OnVersion: func(org string, v int64) {
			mu.Lock()
			seen = append(seen, v)
			mu.Unlock()
		},
	})
	ctx := context.Background()
	c, v, err := f.Policy(ctx, testOrg)
	if err != nil || v != 1 || !allows(t, c, "a.test") || allows(t, c, "b.test") {
		t.Fatalf("first policy: v%d %v", v, err)
	}
	// The catalog of the snapshot is compiled in.
	if got := c.Classify("bitnami/redis"); got != policy.CategoryVerifiedPublisher {
		t.Errorf("catalog not applied: bitnami is %s", got)
	}
	waitFor(t, "the long-poll to wait", func() bool { return cp.waiting.Load() == 1 })
	applied := time.Now()
	cp.apply(testOrg, "b.test")
	var lag time.Duration
	waitFor(t, "version 2", func() bool {
		_, v, _ := f.Policy(ctx, testOrg)
		lag = time.Since(applied)
		return v == 2
	})
	if lag > time.Second {
		t.Fatalf("change enforced after %v, want under 1 s", lag)
	}
	t.Logf("policy change reached the follower in %v", lag)
	c, _, _ = f.Policy(ctx, testOrg)
	if allows(t, c, "a.test") || !allows(t, c, "b.test") {
		t.Fatal("version 2 not what was applied")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != 1 || seen[1] != 2 {
		t.Fatalf("OnVersion saw %v", seen)
	}
}

func TestFollowerFailover(t *testing.T) {
	cp := newFakeCP(t)
	cp.apply(testOrg, "a.test")
	broken := newFakeCP(t)
	broken.down.Store(true)
	f := newTestFollower(t, FollowerConfig{ControlPlanes: []string{deadURL(t), broken.srv.URL, cp.srv.URL}})
	_, v, err := f.Policy(context.Background(), testOrg)
	if err != nil || v != 1 {
		t.Fatalf("through failover: v%d %v", v, err)
	}
	if broken.requests.Load() == 0 {
		t.Error("the 503 replica was never tried")
	}
	// Long-polls stay on the replica that answered.
	waitFor(t, "the long-poll", func() bool { return cp.waiting.Load() == 1 })
	before := broken.requests.Load()
	cp.apply(testOrg, "b.test")
	waitFor(t, "version 2", func() bool { _, v, _ := f.Policy(context.Background(), testOrg); return v == 2 })
	if broken.requests.Load() != before {
		t.Error("follower went back to the failing replica while the good one answered")
	}
}

func TestFollowerCacheAndTTL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	clock := &fakeClock{t: time.Now()}
	cp := newFakeCP(t)
	cp.apply(testOrg, "a.test")
	f := newTestFollower(t, FollowerConfig{ControlPlanes: []string{cp.srv.URL}, CacheDir: dir, Now: clock.Now})
	if _, _, err := f.Policy(context.Background(), testOrg); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(filepath.Join(dir, testOrg+".json"))
	if err != nil {
		t.Fatalf("snapshot not cached: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v, want 0600", fi.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// Restart with every control plane gone: the cache is enforced...
	dead := deadURL(t)
	clock.Add(23 * time.Hour)
	f2 := newTestFollower(t, FollowerConfig{ControlPlanes: []string{dead}, CacheDir: dir, Now: clock.Now})
	go f2.Run(context.Background())
	start := time.Now()
	c, v, err := f2.Policy(context.Background(), testOrg)
	if err != nil || v != 1 || !allows(t, c, "a.test") {
		t.Fatalf("from the cache: v%d %v", v, err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("a cached policy took %v", took)
	}
	// ...until the TTL since the last confirmation runs out.
	clock.Add(2 * time.Hour)
	_, _, err = f2.Policy(context.Background(), testOrg)
	if err == nil || !strings.HasPrefix(err.Error(), "policy for organization acme expired: ") {
		t.Fatalf("past the TTL: %v", err)
	}
	// An org never seen is unknown, quickly, with the reason.
	start = time.Now()
	_, _, err = f2.Policy(context.Background(), "other")
	if err == nil || !strings.HasPrefix(err.Error(), "policy for organization other is unknown: ") || !strings.Contains(err.Error(), "no control plane answered") {
		t.Fatalf("unknown org with the control plane down: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("unknown org took %v", took)
	}
	// A corrupt cache file is skipped, not fatal.
	os.WriteFile(filepath.Join(dir, "broken.json"), []byte("{"), 0o600)
	newTestFollower(t, FollowerConfig{ControlPlanes: []string{dead}, CacheDir: dir})
}

// A 304 at the end of a quiet long-poll counts as a confirmation: a policy
// that does not change for a day is not expired.
func TestFollowerNotModifiedConfirms(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	cp := newFakeCP(t)
	cp.apply(testOrg, "a.test")
	f := newTestFollower(t, FollowerConfig{ControlPlanes: []string{cp.srv.URL}, PollWait: 50 * time.Millisecond, Now: clock.Now, CacheDir: t.TempDir()})
	if _, _, err := f.Policy(context.Background(), testOrg); err != nil {
		t.Fatal(err)
	}
	clock.Add(20 * time.Hour)
	n := cp.polls.Load()
	waitFor(t, "two more polls", func() bool { return cp.polls.Load() >= n+2 })
	clock.Add(20 * time.Hour)
	if _, _, err := f.Policy(context.Background(), testOrg); err != nil {
		t.Fatalf("40 h after the fetch, confirmed 20 h ago: %v", err)
	}
}

func TestFollowerErrors(t *testing.T) {
	cp := newFakeCP(t)
	cp.apply(testOrg, "a.test")
	f := newTestFollower(t, FollowerConfig{ControlPlanes: []string{cp.srv.URL}})
	if _, _, err := f.Policy(context.Background(), testOrg); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.Policy(context.Background(), "nope")
	if err == nil || err.Error() != "policy for organization nope is unknown: the control plane knows no organization nope" {
		t.Fatalf("unknown org: %v", err)
	}
	_, _, err = f.Policy(context.Background(), "../etc")
	if err == nil || !strings.Contains(err.Error(), "not an organization name") {
		t.Fatalf("bad org name: %v", err)
	}
	bad := newTestFollower(t, FollowerConfig{ControlPlanes: []string{cp.srv.URL}, Token: "rw_wrong"})
	_, _, err = bad.Policy(context.Background(), testOrg)
	if err == nil || !strings.Contains(err.Error(), "invalid token") {
		t.Fatalf("bad gateway token: %v", err)
	}
	// After Close, known orgs are still answered and new ones fail at once.
	f.Close()
	if _, v, err := f.Policy(context.Background(), testOrg); err != nil || v != 1 {
		t.Fatalf("known org after Close: v%d %v", v, err)
	}
	start := time.Now()
	if _, _, err := f.Policy(context.Background(), "newcomer"); err == nil || time.Since(start) > time.Second {
		t.Fatalf("new org after Close: %v after %v", err, time.Since(start))
	}
	for _, cfg := range []FollowerConfig{
		{Token: gatewayToken},
		{ControlPlanes: []string{cp.srv.URL}},
		{ControlPlanes: []string{"ftp://x"}, Token: gatewayToken},
		{ControlPlanes: []string{"http://u:p@x"}, Token: gatewayToken},
	} {
		if _, err := NewFollower(cfg); err == nil {
			t.Errorf("NewFollower(%+v) accepted it", cfg)
		}
	}
}

// A policy the gateway cannot compile is not installed; the previous one
// stays in force.
func TestFollowerKeepsPolicyOnBadSnapshot(t *testing.T) {
	cp := newFakeCP(t)
	cp.apply(testOrg, "a.test")
	f := newTestFollower(t, FollowerConfig{ControlPlanes: []string{cp.srv.URL}})
	if _, _, err := f.Policy(context.Background(), testOrg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the long-poll", func() bool { return cp.waiting.Load() == 1 })
	cp.apply(testOrg, "*") // refused by Compile: a bare wildcard
	waitFor(t, "the bad snapshot to be fetched", func() bool { return cp.polls.Load() >= 2 && cp.waiting.Load() == 1 })
	c, v, err := f.Policy(context.Background(), testOrg)
	if err != nil || v != 1 || !allows(t, c, "a.test") {
		t.Fatalf("after a bad snapshot: v%d %v", v, err)
	}
	cp.apply(testOrg, "b.test")
	waitFor(t, "version 3", func() bool { _, v, _ := f.Policy(context.Background(), testOrg); return v == 3 })
}

// End to end: a standalone gateway follows the control plane, and Save &
// Apply reaches the next CONNECT within a second.
func TestGatewayFollowsControlPlane(t *testing.T) {
	cp := newFakeCP(t)
	cp.apply(testOrg, "allowed.test")
	f := newTestFollower(t, FollowerConfig{ControlPlanes: []string{cp.srv.URL}})
	e := newEnv(t, func(c *Config) { c.Policies = f })
	client := e.client("alice", aliceToken)
	if _, err := e.get(client, e.tlsURL("allowed.test")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.get(client, e.tlsURL("other.test")); err == nil {
		t.Fatal("other.test allowed before the change")
	}
	waitFor(t, "the long-poll", func() bool { return cp.waiting.Load() == 1 })
	applied := time.Now()
	cp.apply(testOrg, "allowed.test", "other.test")
	waitFor(t, "the change", func() bool {
		_, err := e.get(client, e.tlsURL("other.test"))
		return err == nil
	})
	if lag := time.Since(applied); lag > time.Second {
		t.Fatalf("change enforced after %v", lag)
	}
	if v := metricValue(t, e.gw.m.version.WithLabelValues(testOrg)); v != 2 {
		t.Errorf("policy version gauge %v", v)
	}
	// The control plane going away does not stop enforcement.
	cp.down.Store(true)
	if _, err := e.get(client, e.tlsURL("other.test")); err != nil {
		t.Fatalf("with the control plane down: %v", err)
	}
	if _, err := e.get(client, e.tlsURL("denied.test")); err == nil || !errors.Is(err, err) || !strings.Contains(err.Error(), "is not allowed by organization acme") {
		t.Fatalf("denied.test with the control plane down: %v", err)
	}
}
