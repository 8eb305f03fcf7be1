package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regward/regward/internal/pgtest"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

type change struct {
	org     string
	version int64
}

// watcher runs WatchPolicies on s and exposes what it reports.
type watcher struct {
	changes chan change
	resyncs chan struct{}
	done    chan error
	cancel  context.CancelFunc
}

func watch(t *testing.T, s *Store) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{changes: make(chan change, 100), resyncs: make(chan struct{}, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- s.WatchPolicies(ctx,
			func(org string, v int64) { w.changes <- change{org, v} },
			func() { w.resyncs <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			t.Error("WatchPolicies did not return after its context ended")
		}
	})
	return w
}

func (w *watcher) waitResync(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-w.resyncs:
	case err := <-w.done:
		t.Fatalf("WatchPolicies returned: %v", err)
	case <-time.After(within):
		t.Fatalf("no resync within %v", within)
	}
}

// want waits for one report; since is when the change began, for the log.
func (w *watcher) want(t *testing.T, want change, since time.Time, within time.Duration) {
	t.Helper()
	select {
	case got := <-w.changes:
		if got != want {
			t.Fatalf("watcher reported %+v, want %+v", got, want)
		}
		t.Logf("%s:%d reported %v after the apply began", got.org, got.version, time.Since(since))
	case err := <-w.done:
		t.Fatalf("WatchPolicies returned: %v", err)
	case <-time.After(within):
		t.Fatalf("%+v not reported within %v", want, within)
	}
}

// apply makes a change and returns when it began.
func apply(t *testing.T, s *Store, org string, expect int64) time.Time {
	t.Helper()
	start := time.Now()
	if _, err := s.ApplyPolicy(context.Background(), org, policy.Policy{Org: org}, expect,
		store.Activity{Kind: store.KindPolicyApply, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	return start
}

func TestWatchPolicies(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	replicaA, replicaB := openDSN(t, dsn), openDSN(t, dsn)
	defer replicaA.Close()
	defer replicaB.Close()
	for _, org := range []string{"acme", "beta"} {
		if err := replicaB.CreateOrg(ctx, org, policy.Policy{Org: org}, store.Activity{}); err != nil {
			t.Fatal(err)
		}
	}
	w := watch(t, replicaA)
	// The first resync comes once LISTEN is in place: from then on nothing is missed.
	w.waitResync(t, 5*time.Second)

	w.want(t, change{"acme", 2}, apply(t, replicaB, "acme", 1), time.Second)

	// A change that fails is never announced: the next report is the next
	// committed version.
	if _, err := replicaB.ApplyPolicy(ctx, "acme", policy.Policy{Org: "acme"}, 1, store.Activity{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale apply: %v, want ErrConflict", err)
	}
	w.want(t, change{"acme", 3}, apply(t, replicaB, "acme", 2), time.Second)

	// A server-wide catalog change announces every org's new version.
	if _, err := replicaB.SetCatalog(ctx, store.ServerScope, policy.Catalog{VerifiedPublishers: []string{"x"}}, store.Activity{}); err != nil {
		t.Fatal(err)
	}
	got := map[change]bool{}
	for range 2 {
		select {
		case c := <-w.changes:
			got[c] = true
		case <-time.After(time.Second):
			t.Fatalf("catalog change: only %v reported within 1s", got)
		}
	}
	if !got[change{"acme", 4}] || !got[change{"beta", 2}] {
		t.Errorf("catalog change reported %v, want acme:4 and beta:2", got)
	}

	// Kill the watcher's LISTEN connection from the server side.
	var killed bool
	err := replicaB.pool.QueryRow(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+notifyChannel+`'`).Scan(&killed)
	if err != nil || !killed {
		t.Fatalf("terminate the LISTEN connection: %v, %v", killed, err)
	}
	// A change while the watcher is away is not announced to it; the resync
	// after reconnecting is how the caller catches up.
	killedAt := time.Now()
	apply(t, replicaB, "beta", 2)
	w.waitResync(t, 10*time.Second)
	t.Logf("listening again %v after the kill", time.Since(killedAt))
	select {
	case c := <-w.changes:
		if c != (change{"beta", 3}) {
			t.Fatalf("after reconnecting: %+v reported, want none or beta:3", c)
		}
	default:
	}
	w.want(t, change{"acme", 5}, apply(t, replicaB, "acme", 4), time.Second)
}

// TestWatchKeepAlive shortens the keep-alive so waits time out and ping
// repeatedly; notifications must still arrive on the same connection.
func TestWatchKeepAlive(t *testing.T) {
	old := keepAlive
	keepAlive = 50 * time.Millisecond
	t.Cleanup(func() { keepAlive = old })
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := openDSN(t, dsn)
	defer s.Close()
	if err := s.CreateOrg(ctx, "acme", policy.Policy{Org: "acme"}, store.Activity{}); err != nil {
		t.Fatal(err)
	}
	w := watch(t, s)
	w.waitResync(t, 5*time.Second)
	for v := int64(1); v <= 5; v++ {
		time.Sleep(120 * time.Millisecond) // two keep-alive timeouts
		w.want(t, change{"acme", v + 1}, apply(t, s, "acme", v), time.Second)
	}
	select {
	case <-w.resyncs:
		t.Error("the watcher reconnected: a keep-alive timeout broke its connection")
	default:
	}
}

// TestWatchStopsOnClose: closing the store ends its watchers.
func TestWatchStopsOnClose(t *testing.T) {
	s := openDSN(t, pgtest.DSN(t))
	done := make(chan error, 1)
	resynced := make(chan struct{}, 1)
	go func() {
		done <- s.WatchPolicies(context.Background(), func(string, int64) {}, func() { resynced <- struct{}{} })
	}()
	select {
	case <-resynced:
	case <-time.After(5 * time.Second):
		t.Fatal("watcher never listened")
	}
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("WatchPolicies after Close returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchPolicies did not return after Close")
	}
}
