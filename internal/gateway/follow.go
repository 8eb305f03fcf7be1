package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regward/regward/internal/policy"
)

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	ControlPlanes []string // base URLs of control-plane replicas, tried in turn
	Token         string   // a gateway token
	// CacheDir keeps the last snapshot of each org (mode 0600) so that a
	// restarted gateway enforces it until TTL; "": no cache.
	CacheDir string
	// TTL is how long a snapshot is enforced after the control plane last
	// confirmed it; past it Policy fails (closed). 0: 24 h.
	TTL        time.Duration
	HTTPClient *http.Client // nil: a client of its own
	Logger     *slog.Logger
	// OnVersion is told of every snapshot installed (from the control
	// plane or the cache).
	OnVersion func(org string, v int64)
	// PollWait is the long-poll wait asked of the control plane; 0: 30 s.
	PollWait time.Duration
	// FirstWait bounds how long Policy waits for an org's first snapshot;
	// 0: 5 s.
	FirstWait time.Duration
	// MaxOrgs bounds the orgs followed at once; 0: 10,000.
	MaxOrgs int
	// Now is the clock for TTL checks; nil: time.Now.
	Now func() time.Time
}

// Follower is a PolicySource for gateways that run apart from the control
// plane. It long-polls the snapshot endpoint of each org it was asked about,
// so that Save & Apply reaches it at once, and keeps the compiled snapshot
// of each.
type Follower struct {
	cfg   FollowerConfig
	cp    *cpClient
	log   *slog.Logger
	cache *snapshotCache

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	orgs   map[string]*followed
	closed bool
}

// followed is the state of one org.
type followed struct {
	org       string
	snap      atomic.Pointer[snapshot]
	confirmed atomic.Int64 // unix nanos: when the control plane last vouched for snap
	lastErr   atomic.Pointer[string]
	cachedAt  atomic.Int64  // unix nanos: the confirmation time in the cache file
	started   bool          // guarded by Follower.mu
	firstDone chan struct{} // closed after the first attempt to fetch
	firstOnce sync.Once
}

func (o *followed) fetchedOnce() {
	o.firstOnce.Do(func() { close(o.firstDone) })
}

// snapshot is one compiled policy version and the document it came from
// (kept to refresh the cache).
type snapshot struct {
	compiled *policy.Compiled
	version  int64
	doc      snapshotDoc
}

// snapshotDoc is the control plane's snapshot answer.
type snapshotDoc struct {
	Org     string          `json:"org"`
	Version int64           `json:"version"`
	Policy  json.RawMessage `json:"policy"`
	Catalog policy.Catalog  `json:"catalog"`
}

// NewFollower checks cfg and loads the snapshot cache. Orgs are followed
// from their first Policy call, and the cached ones from Run.
func NewFollower(cfg FollowerConfig) (*Follower, error) {
	cp, err := newCPClient(cfg.ControlPlanes, cfg.Token, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("policy follower: %w", err)
	}
	cfg.TTL = orDefault(cfg.TTL, 24*time.Hour)
	cfg.PollWait = orDefault(cfg.PollWait, 30*time.Second)
	cfg.FirstWait = orDefault(cfg.FirstWait, 5*time.Second)
	cfg.MaxOrgs = orDefault(cfg.MaxOrgs, 10000)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TTL < 0 || cfg.PollWait < 0 || cfg.FirstWait < 0 || cfg.MaxOrgs < 0 {
		return nil, errors.New("policy follower: durations and limits must not be negative")
	}
	f := &Follower{cfg: cfg, cp: cp, log: cfg.Logger, orgs: make(map[string]*followed)}
	if f.log == nil {
		f.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if cfg.CacheDir != "" {
		f.cache, err = openSnapshotCache(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("policy follower: %w", err)
		}
		for _, e := range f.cache.load(f.log) {
			o := newFollowed(e.doc.Org)
			if err := f.install(o, e.doc, e.fetched, true); err != nil {
				f.log.Warn("cached policy snapshot not usable", "org", e.doc.Org, "err", err)
				continue
			}
			f.orgs[o.org] = o
		}
	}
	return f, nil
}

func newFollowed(org string) *followed {
	return &followed{org: org, firstDone: make(chan struct{})}
}

// Run follows the orgs of the cache (others start on first use) until ctx
// ends, then stops like Close.
func (f *Follower) Run(ctx context.Context) error {
	f.mu.Lock()
	for _, o := range f.orgs {
		f.startLocked(o)
	}
	f.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-f.ctx.Done():
	}
	return f.Close()
}

// Close stops following and waits for the long-polls to end. Policy keeps
// answering from the snapshots held, within their TTL.
func (f *Follower) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	return nil
}

func (f *Follower) startLocked(o *followed) {
	if f.closed {
		o.fetchedOnce() // nothing will fetch it: do not make Policy wait
		return
	}
	if o.started {
		return
	}
	o.started = true
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.follow(o)
	}()
}

// Policy implements PolicySource.
func (f *Follower) Policy(ctx context.Context, org string) (*policy.Compiled, int64, error) {
	if !policy.ValidOrgName(org) {
		return nil, 0, fmt.Errorf("policy for organization %q is unknown: not an organization name", org)
	}
	f.mu.RLock()
	o := f.orgs[org]
	started := o != nil && (o.started || f.closed)
	f.mu.RUnlock()
	if !started {
		var err error
		if o, err = f.startFollowing(org); err != nil {
			return nil, 0, err
		}
	}
	s := o.snap.Load()
	if s == nil {
		t := time.NewTimer(f.cfg.FirstWait)
		select {
		case <-o.firstDone:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if s = o.snap.Load(); s == nil {
			why := "no snapshot from the control plane yet"
			if e := o.lastErr.Load(); e != nil {
				why = *e
			}
			return nil, 0, fmt.Errorf("policy for organization %s is unknown: %s", org, why)
		}
	}
	age := f.cfg.Now().Sub(time.Unix(0, o.confirmed.Load()))
	if age > f.cfg.TTL {
		why := ""
		if e := o.lastErr.Load(); e != nil {
			why = " (" + *e + ")"
		}
		return nil, 0, fmt.Errorf("policy for organization %s expired: the control plane last confirmed version %d %s ago, and a gateway enforces a snapshot for at most %s without it%s",
			org, s.version, age.Round(time.Second), f.cfg.TTL, why)
	}
	return s.compiled, s.version, nil
}

func (f *Follower) startFollowing(org string) (*followed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.orgs[org]
	if o == nil {
		if len(f.orgs) >= f.cfg.MaxOrgs {
			return nil, fmt.Errorf("policy for organization %s is unknown: this gateway already follows %d organizations", org, f.cfg.MaxOrgs)
		}
		o = newFollowed(org)
		f.orgs[org] = o
	}
	f.startLocked(o)
	return o, nil
}

// follow long-polls one org's snapshot until the Follower closes. The first
// request asks for the current snapshot whatever the cache holds, so that a
// control plane whose versions went back (a restored database) is followed.
func (f *Follower) follow(o *followed) {
	defer o.fetchedOnce()
	var after int64
	backoff := time.Duration(0)
	first := true
	for f.ctx.Err() == nil {
		doc, cpVersion, err := f.fetch(o.org, after)
		switch {
		case err != nil:
			if f.ctx.Err() != nil {
				return
			}
			msg := err.Error()
			o.lastErr.Store(&msg)
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
			f.log.Warn("follow policy", "org", o.org, "err", err, "retry_in", backoff)
		case doc != nil:
			if err := f.install(o, *doc, f.cfg.Now(), false); err != nil {
				msg := err.Error()
				o.lastErr.Store(&msg)
				f.log.Error("policy snapshot not usable; keeping the previous one", "org", o.org, "version", doc.Version, "err", err)
			} else {
				o.lastErr.Store(nil)
				f.log.Info("policy snapshot installed", "org", o.org, "version", doc.Version)
			}
			// A snapshot that failed to compile is not asked for again: the
			// next one is.
			after, backoff = doc.Version, 0
		default: // 304: nothing newer
			now := f.cfg.Now()
			o.confirmed.Store(now.UnixNano())
			// The cache file learns of confirmations now and then, so that
			// a restart does not count the TTL from the last change.
			s := o.snap.Load()
			if s != nil && now.Sub(time.Unix(0, o.cachedAt.Load())) > f.cfg.TTL/24 {
				f.writeCache(o, s.doc, now)
			}
			if s != nil {
				// Without a snapshot the last error (a policy that did not
				// compile) is still why the org is unknown.
				o.lastErr.Store(nil)
			}
			backoff = 0
			if cpVersion < after {
				f.log.Warn("control plane holds an older policy version than this gateway; refetching", "org", o.org, "have", after, "control_plane", cpVersion)
				after = 0
			}
		}
		if first {
			first = false
			o.fetchedOnce()
		}
		if backoff > 0 {
			select {
			case <-time.After(backoff):
			case <-f.ctx.Done():
				return
			}
		}
	}
}

// fetch asks for a snapshot newer than after. A nil doc with a nil error
// is a 304; cpVersion is then the control plane's version from its ETag
// (or after when it sent none).
func (f *Follower) fetch(org string, after int64) (*snapshotDoc, int64, error) {
	wait := f.cfg.PollWait
	// Each replica gets wait plus a margin; the whole fetch may try them all.
	attempt := wait + pollTimeout
	ctx, cancel := context.WithTimeout(f.ctx, time.Duration(len(f.cp.bases))*attempt)
	defer cancel()
	path := "/api/v1/orgs/" + url.PathEscape(org) + "/snapshot?after=" + strconv.FormatInt(after, 10) + "&wait=" + wait.String()
	resp, err := f.cp.do(ctx, http.MethodGet, path, nil, attempt)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		v := after
		if e, err := strconv.ParseInt(strings.Trim(resp.Header.Get("ETag"), `"W/`), 10, 64); err == nil {
			v = e
		}
		return nil, v, nil
	case http.StatusNotFound:
		return nil, 0, fmt.Errorf("the control plane knows no organization %s", org)
	default:
		return nil, 0, problemError(resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSnapshotBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read snapshot of %s: %w", org, err)
	}
	if len(data) > maxSnapshotBytes {
		return nil, 0, fmt.Errorf("snapshot of %s is larger than %d bytes", org, maxSnapshotBytes)
	}
	var doc snapshotDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, 0, fmt.Errorf("decode snapshot of %s: %w", org, err)
	}
	if doc.Org != org || doc.Version <= 0 {
		return nil, 0, fmt.Errorf("snapshot for %s came back as organization %q version %d", org, doc.Org, doc.Version)
	}
	return &doc, doc.Version, nil
}

// maxSnapshotBytes bounds a snapshot; 100,000 registry entries fit easily.
const maxSnapshotBytes = 64 << 20

// install compiles doc and makes it o's snapshot, confirmed at the time
// given. Snapshots from the control plane are also written to the cache.
func (f *Follower) install(o *followed, doc snapshotDoc, confirmed time.Time, fromCache bool) error {
	p, err := policy.Decode(doc.Policy)
	if err != nil {
		return fmt.Errorf("decode policy of %s version %d: %w", doc.Org, doc.Version, err)
	}
	if p.Org != "" && p.Org != doc.Org {
		return fmt.Errorf("snapshot of %s holds the policy of organization %q", doc.Org, p.Org)
	}
	p.Org = doc.Org
	c, err := policy.Compile(p, doc.Catalog)
	if err != nil {
		return err
	}
	o.snap.Store(&snapshot{compiled: c, version: doc.Version, doc: doc})
	o.confirmed.Store(confirmed.UnixNano())
	if fromCache {
		o.cachedAt.Store(confirmed.UnixNano())
	} else {
		f.writeCache(o, doc, confirmed)
	}
	if f.cfg.OnVersion != nil {
		f.cfg.OnVersion(doc.Org, doc.Version)
	}
	return nil
}

func (f *Follower) writeCache(o *followed, doc snapshotDoc, confirmed time.Time) {
	if f.cache == nil {
		return
	}
	if err := f.cache.store(doc, confirmed); err != nil {
		f.log.Warn("write policy snapshot cache", "org", doc.Org, "err", err)
		return
	}
	o.cachedAt.Store(confirmed.UnixNano())
}
