package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regward/regward/internal/store"
)

func TestRemoteAuthenticator(t *testing.T) {
	cp := newFakeCP(t)
	cp.users["alice"] = cpUser{token: aliceToken, org: testOrg, role: "member"}
	cp.users["olivia"] = cpUser{token: oliviaToken, org: testOrg, role: "owner"}
	broken := newFakeCP(t)
	broken.down.Store(true)
	a, err := NewRemoteAuthenticator(RemoteConfig{ControlPlanes: []string{broken.srv.URL, cp.srv.URL}, Token: gatewayToken})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := a.Authenticate(ctx, "alice", aliceToken)
	if err != nil || id != (Identity{User: "alice", Org: testOrg}) {
		t.Fatalf("alice: %+v %v", id, err)
	}
	id, err = a.Authenticate(ctx, "olivia", oliviaToken)
	if err != nil || id != (Identity{User: "olivia", Org: testOrg, Owner: true}) {
		t.Fatalf("olivia: %+v %v", id, err)
	}
	if _, err := a.Authenticate(ctx, "alice", "rw_wrong"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("wrong token: %v", err)
	}
	cp.down.Store(true)
	_, err = a.Authenticate(ctx, "alice", aliceToken)
	if err == nil || errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "database unavailable") {
		t.Fatalf("every control plane down: %v, want an error that is not ErrUnauthenticated", err)
	}
}

// A standalone gateway end to end: remote authentication (cached), the
// follower, and decisions uploaded through a Batcher.
func TestStandaloneGateway(t *testing.T) {
	cp := newFakeCP(t)
	cp.apply(testOrg, "allowed.test")
	cp.users["alice"] = cpUser{token: aliceToken, org: testOrg, role: "member"}
	remote := RemoteConfig{ControlPlanes: []string{cp.srv.URL}, Token: gatewayToken}
	auth, err := NewRemoteAuthenticator(remote)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := NewRemoteDecisionWriter(remote)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBatcher(BatcherConfig{Flush: writer.WriteDecisions, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	f := newTestFollower(t, FollowerConfig{ControlPlanes: remote.ControlPlanes})
	e := newEnv(t, func(c *Config) {
		c.Auth = NewCachingAuthenticator(auth, CacheConfig{})
		c.Policies = f
		c.Decisions = b
	})
	client := e.client("alice", aliceToken)
	for i := 0; i < 3; i++ {
		if _, err := e.get(client, e.tlsURL("allowed.test")); err != nil {
			t.Fatal(err)
		}
		client.CloseIdleConnections() // a new tunnel, a new authentication
	}
	if _, err := e.get(client, e.tlsURL("denied.test")); err == nil {
		t.Fatal("denied.test allowed")
	}
	waitFor(t, "decisions to reach the control plane", func() bool {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		return len(cp.decisions) == 4
	})
	cp.mu.Lock()
	last := cp.decisions[3]
	cp.mu.Unlock()
	if last.Allowed || last.Host != "denied.test" || last.User != "alice" || last.Org != testOrg {
		t.Fatalf("uploaded denial %+v", last)
	}
}

func TestRemoteDecisionWriterSplits(t *testing.T) {
	cp := newFakeCP(t)
	w, err := NewRemoteDecisionWriter(RemoteConfig{ControlPlanes: []string{cp.srv.URL}, Token: gatewayToken})
	if err != nil {
		t.Fatal(err)
	}
	ds := make([]store.DecisionRecord, 12000)
	for i := range ds {
		ds[i] = store.DecisionRecord{Time: time.Unix(int64(i), 0).UTC(), Org: testOrg, Host: "h.test", Port: i, Rule: "r"}
	}
	if err := w.WriteDecisions(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	cp.mu.Lock()
	got := cp.decisions
	cp.mu.Unlock()
	if diff := cmp.Diff(ds, got); diff != "" {
		t.Fatalf("uploaded decisions differ:\n%s", diff)
	}
	if n := cp.requests.Load(); n != 3 {
		t.Fatalf("%d uploads, want 3 of at most 5000", n)
	}
	cp.down.Store(true)
	if err := w.WriteDecisions(context.Background(), ds[:1]); err == nil {
		t.Fatal("upload to a failing control plane succeeded")
	}
}
