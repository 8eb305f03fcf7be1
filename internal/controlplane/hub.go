package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// hub knows the latest policy version of each org, wakes long-polls when it
// changes, and keeps the compiled policy that the embedded gateway enforces.
// Versions only ever go up: a late or repeated notification is harmless.
type hub struct {
	mu   sync.Mutex
	orgs map[string]*orgState
}

type orgState struct {
	version  int64         // highest version known to be committed
	changed  chan struct{} // closed and replaced when version goes up
	compiled *policy.Compiled
	compVer  int64 // version of compiled

	view     *orgView      // encoded policy and snapshot of one version
	building chan struct{} // closed when the view being built is ready
}

// orgView is an org's policy and snapshot encoded once per version, so that
// many long-polls woken by one change cost one database read between them.
type orgView struct {
	version  int64
	snap     Snapshot // decoded, for compiling
	policy   []byte   // JSON of the policy document
	snapshot []byte   // JSON of the Snapshot
}

func (v *orgView) write(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("ETag", etag(v.version))
	_, _ = w.Write(body)
}

// currentView returns the encoded policy and snapshot of org at the latest
// version this replica knows of, reading the store at most once per version
// however many requests ask at the same moment.
func (s *Server) currentView(ctx context.Context, org string) (*orgView, error) {
	for {
		s.hub.mu.Lock()
		st := s.hub.stateLocked(org)
		if v := st.view; v != nil && v.version >= st.version {
			s.hub.mu.Unlock()
			return v, nil
		}
		if wait := st.building; wait != nil {
			s.hub.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		st.building = done
		s.hub.mu.Unlock()

		v, err := s.buildView(ctx, org)

		s.hub.mu.Lock()
		st.building = nil
		if err == nil && (st.view == nil || v.version >= st.view.version) {
			st.view = v
		}
		s.hub.mu.Unlock()
		close(done)
		if err != nil {
			return nil, err
		}
		s.hub.publish(org, v.version)
		return v, nil
	}
}

func (s *Server) buildView(ctx context.Context, org string) (*orgView, error) {
	snap, err := s.snapshot(ctx, org)
	if err != nil {
		return nil, err
	}
	pol, err := json.MarshalIndent(snap.Policy, "", "  ")
	if err != nil {
		return nil, err
	}
	all, err := json.Marshal(snap)
	if err != nil {
		return nil, err
	}
	return &orgView{version: snap.Version, snap: snap, policy: append(pol, '\n'), snapshot: append(all, '\n')}, nil
}

func (h *hub) stateLocked(org string) *orgState {
	if h.orgs == nil {
		h.orgs = make(map[string]*orgState)
	}
	st := h.orgs[org]
	if st == nil {
		st = &orgState{changed: make(chan struct{})}
		h.orgs[org] = st
	}
	return st
}

// publish records that org's policy is now at version (or later).
func (h *hub) publish(org string, version int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.stateLocked(org)
	if version <= st.version {
		return
	}
	st.version = version
	close(st.changed)
	st.changed = make(chan struct{})
}

// known returns the latest version of org this replica has seen (0: none
// yet). Orgs are never deleted, so a known version also proves the org exists.
func (h *hub) known(org string) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.orgs[org]; st != nil {
		return st.version
	}
	return 0
}

// watch returns a channel closed at the next version change of org. Taking
// it before reading the store closes the gap in which a change could be missed.
func (h *hub) watch(org string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stateLocked(org).changed
}

// compiledPolicy returns the compiled policy of org at its current version.
// It reads through currentView, so the store is read once per version for
// long-polls and the embedded gateway alike, however many ask at once.
func (s *Server) compiledPolicy(ctx context.Context, org string) (*policy.Compiled, int64, error) {
	s.hub.mu.Lock()
	st := s.hub.stateLocked(org)
	if st.compiled != nil && st.compVer >= st.version {
		c, v := st.compiled, st.compVer
		s.hub.mu.Unlock()
		return c, v, nil
	}
	s.hub.mu.Unlock()

	v, err := s.currentView(ctx, org)
	if err != nil {
		return nil, 0, err
	}
	c, err := policy.Compile(v.snap.Policy, v.snap.Catalog)
	if err != nil {
		return nil, 0, fmt.Errorf("compile policy of org %q version %d: %w", org, v.version, err)
	}
	s.hub.mu.Lock()
	if v.version >= st.compVer {
		st.compiled, st.compVer = c, v.version
	}
	s.hub.mu.Unlock()
	return c, v.version, nil
}

// Snapshot is what gateways enforce: an org's policy, its version, and the
// effective namespace catalog.
type Snapshot struct {
	Org     string         `json:"org"`
	Version int64          `json:"version"`
	Policy  policy.Policy  `json:"policy"`
	Catalog policy.Catalog `json:"catalog"`
}

func (s *Server) snapshot(ctx context.Context, org string) (Snapshot, error) {
	rec, err := s.store.GetPolicy(ctx, org)
	if err != nil {
		return Snapshot{}, fmt.Errorf("load policy of org %q: %w", org, err)
	}
	cat, err := s.effectiveCatalog(ctx, org)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Org: org, Version: rec.Version, Policy: rec.Policy, Catalog: cat}, nil
}

// effectiveCatalog is the server-wide lists plus the org's own additions.
func (s *Server) effectiveCatalog(ctx context.Context, org string) (policy.Catalog, error) {
	def, err := s.store.GetCatalog(ctx, store.ServerScope)
	if err != nil {
		return policy.Catalog{}, fmt.Errorf("load default catalog: %w", err)
	}
	own, err := s.store.GetCatalog(ctx, org)
	if err != nil {
		return policy.Catalog{}, fmt.Errorf("load catalog of org %q: %w", org, err)
	}
	return policy.Catalog{
		VerifiedPublishers: union(def.VerifiedPublishers, own.VerifiedPublishers),
		SponsoredOSS:       union(def.SponsoredOSS, own.SponsoredOSS),
	}, nil
}

func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	seen := make(map[string]bool, len(a)+len(b))
	for _, l := range [][]string{a, b} {
		for _, s := range l {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

// Policy implements the gateway's policy source for the embedded gateway.
func (s *Server) Policy(ctx context.Context, org string) (*policy.Compiled, int64, error) {
	return s.compiledPolicy(ctx, org)
}

// follow keeps the hub current with changes committed by other replicas.
func (s *Server) follow(ctx context.Context) {
	w, ok := s.store.(store.Watcher)
	if !ok {
		return // a single process: applies publish locally
	}
	resync := func() {
		vs, err := s.store.PolicyVersions(ctx)
		if err != nil {
			s.log.Warn("re-read policy versions after reconnect", "err", err)
			return
		}
		for org, v := range vs {
			s.hub.publish(org, v)
		}
	}
	// WatchPolicies calls resync after every LISTEN, the first one included,
	// so no change between the first read and the LISTEN is missed.
	if err := w.WatchPolicies(ctx, s.hub.publish, resync); err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		s.log.Error("policy watch stopped", "err", err)
	}
}
