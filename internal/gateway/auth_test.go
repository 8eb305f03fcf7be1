package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingAuth counts backend calls; fail makes them fail as if the
// backend were down, and block holds them until released.
type countingAuth struct {
	next  Authenticator
	calls atomic.Int32
	fail  atomic.Bool
	block chan struct{}
}

func (a *countingAuth) Authenticate(ctx context.Context, u, tok string) (Identity, error) {
	a.calls.Add(1)
	if a.block != nil {
		select {
		case <-a.block:
		case <-ctx.Done():
			return Identity{}, ctx.Err()
		}
	}
	if a.fail.Load() {
		return Identity{}, errors.New("control plane unreachable")
	}
	return a.next.Authenticate(ctx, u, tok)
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCachingAuthenticator(t *testing.T) {
	backend := &countingAuth{next: tableAuth{"alice": {aliceToken, Identity{User: "alice", Org: testOrg}}}}
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	a := NewCachingAuthenticator(backend, CacheConfig{Now: clock.Now})
	ctx := context.Background()

	check := func(step, user, token string, wantErr error, wantCalls int32) {
		t.Helper()
		id, err := a.Authenticate(ctx, user, token)
		if !errors.Is(err, wantErr) || (wantErr == nil && id.User != user) {
			t.Fatalf("%s: %+v, %v; want err %v", step, id, err, wantErr)
		}
		if got := backend.calls.Load(); got != wantCalls {
			t.Fatalf("%s: backend called %d times, want %d", step, got, wantCalls)
		}
	}
	check("first", "alice", aliceToken, nil, 1)
	check("cached", "alice", aliceToken, nil, 1)
	clock.Add(29 * time.Second)
	check("still cached", "alice", aliceToken, nil, 1)
	clock.Add(2 * time.Second)
	check("expired", "alice", aliceToken, nil, 2)

	check("bad token", "alice", "rw_bad", ErrUnauthenticated, 3)
	check("bad token cached", "alice", "rw_bad", ErrUnauthenticated, 3)
	clock.Add(6 * time.Second)
	check("negative entry expired", "alice", "rw_bad", ErrUnauthenticated, 4)
	// The key covers the user: the same token under another name is
	// another credential.
	check("other user", "bob", aliceToken, ErrUnauthenticated, 5)

	// Backend down: a known identity is served stale for a while...
	clock.Add(31 * time.Second)
	backend.fail.Store(true)
	check("stale while down", "alice", aliceToken, nil, 6)
	check("stale, not asked again at once", "alice", aliceToken, nil, 6)
	// ...but not forever, and unknown credentials are not let through.
	clock.Add(6 * time.Minute)
	if _, err := a.Authenticate(ctx, "alice", aliceToken); err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("past MaxStale with the backend down: %v, want the backend's error", err)
	}
	if _, err := a.Authenticate(ctx, "carol", "rw_x"); err == nil || errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unknown credential with the backend down: %v", err)
	}
}

func TestCachingAuthenticatorMergesConcurrentChecks(t *testing.T) {
	backend := &countingAuth{next: tableAuth{"alice": {aliceToken, Identity{User: "alice", Org: testOrg}}}, block: make(chan struct{})}
	a := NewCachingAuthenticator(backend, CacheConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := a.Authenticate(context.Background(), "alice", aliceToken)
			if err == nil && id.Org != testOrg {
				err = fmt.Errorf("identity %+v", id)
			}
			errs <- err
		}()
	}
	waitFor(t, "the backend call", func() bool { return backend.calls.Load() == 1 })
	time.Sleep(20 * time.Millisecond) // let the others join the flight
	close(backend.block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := backend.calls.Load(); n != 1 {
		t.Fatalf("50 concurrent checks made %d backend calls", n)
	}
}

func TestCachingAuthenticatorBounded(t *testing.T) {
	backend := &countingAuth{next: tableAuth{}}
	a := NewCachingAuthenticator(backend, CacheConfig{MaxEntries: 100})
	for i := 0; i < 1000; i++ {
		a.Authenticate(context.Background(), "spray", fmt.Sprint("rw_", i))
	}
	if n := a.Len(); n > 100 {
		t.Fatalf("cache holds %d entries, bound is 100", n)
	}
	a.Purge()
	if n := a.Len(); n != 0 {
		t.Fatalf("after Purge: %d", n)
	}
}

func TestProxyCredentials(t *testing.T) {
	for _, c := range []struct {
		in            []string
		user, token   string
		present, good bool
	}{
		{nil, "", "", false, false},
		{[]string{basic("alice", "rw_x")}, "alice", "rw_x", true, true},
		{[]string{"basic " + basic("alice", "rw_x")[6:]}, "alice", "rw_x", true, true},
		{[]string{basic("alice", "rw:x")}, "alice", "rw:x", true, true}, // the token may hold a colon
		{[]string{basic("", "rw_x")}, "", "", true, false},
		{[]string{basic("alice", "")}, "", "", true, false},
		{[]string{"Bearer rw_x"}, "", "", true, false},
		{[]string{"Basic"}, "", "", true, false},
		{[]string{basic("a", "b"), basic("a", "b")}, "", "", true, false},
	} {
		u, tok, present, good := proxyCredentials(c.in)
		if u != c.user || tok != c.token || present != c.present || good != c.good {
			t.Errorf("%q: %q %q %v %v", c.in, u, tok, present, good)
		}
	}
}
