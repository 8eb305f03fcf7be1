package agent

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/regward/regward/internal/client"
	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/policy"
)

// follower is the gateway's Follower for the signed-in org, with the
// user's personal token (members read their org's snapshot) and the
// snapshot directory `regward login` writes to.
type follower struct {
	f       *gateway.Follower
	org     string
	server  string
	cache   client.SnapshotCache
	version atomic.Int64
	cancel  context.CancelFunc
	done    chan struct{}
}

type followStatus struct {
	version   int64
	fetchedAt time.Time // when the control plane last confirmed it (from the cache)
	err       error     // why the policy is not enforced, when it is not
}

// startFollower starts following s.Org. It does not wait for the control
// plane: the cached snapshot, or a refusal that says the policy is not
// known yet, serves meanwhile.
func (a *Agent) startFollower(ctx context.Context, s client.Session) (*follower, error) {
	dir, err := a.cfg.Cache.Dir(s.Server, s.Org)
	if err != nil {
		return nil, err
	}
	fl := &follower{org: s.Org, server: s.Server, cache: a.cfg.Cache, done: make(chan struct{})}
	f, err := gateway.NewFollower(gateway.FollowerConfig{
		ControlPlanes: []string{s.Server},
		Token:         s.Token,
		CacheDir:      dir,
		TTL:           a.cfg.TTL,
		// Each answer confirms the snapshot: a short TTL needs answers
		// well within it, or the policy would lapse with the control
		// plane up.
		PollWait:   min(30*time.Second, max(a.cfg.TTL/4, time.Second)),
		HTTPClient: a.cfg.HTTP,
		Logger:     a.log.With("component", "follower"),
		OnVersion:  func(_ string, v int64) { fl.version.Store(v) },
	})
	if err != nil {
		return nil, fmt.Errorf("follow the policy of %s: %w", s.Org, err)
	}
	fl.f = f
	ctx, fl.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		defer close(fl.done)
		_ = f.Run(ctx)
	}()
	// Follow now rather than at the first client's request.
	go func() { _, _, _ = f.Policy(ctx, s.Org) }()
	return fl, nil
}

// Policy implements gateway.PolicySource for the signed-in org only.
func (fl *follower) Policy(ctx context.Context, org string) (*policy.Compiled, int64, error) {
	if org != fl.org {
		return nil, 0, fmt.Errorf("policy for organization %s is unknown: this agent enforces %s", org, fl.org)
	}
	return fl.f.Policy(ctx, org)
}

func (fl *follower) status(ctx context.Context) followStatus {
	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	var st followStatus
	_, st.version, st.err = fl.f.Policy(ctx, fl.org)
	if st.err != nil {
		st.version = fl.version.Load()
	}
	if cs, err := fl.cache.Load(fl.server, fl.org); err == nil && cs.Snapshot.Version == st.version {
		st.fetchedAt = cs.FetchedAt
	}
	return st
}

func (fl *follower) stop() {
	fl.cancel()
	<-fl.done
}

// expired reports whether a policy error is the TTL running out.
func expired(err error) bool {
	return err != nil && strings.Contains(err.Error(), " expired: ")
}
