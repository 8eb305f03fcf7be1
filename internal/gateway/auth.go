package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"
)

// Identity is who a proxy client is.
type Identity struct {
	User  string
	Org   string
	Owner bool
}

// ErrUnauthenticated is what an Authenticator returns (possibly wrapped)
// for a wrong, revoked or unknown credential. Other errors mean the
// credential could not be checked.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator checks a proxy client's user name and access token.
type Authenticator interface {
	Authenticate(ctx context.Context, username, token string) (Identity, error)
}

// proxyCredentials reads the Basic credential of a request's
// Proxy-Authorization fields. present is false when there is none; ok is
// false for one that cannot be read, including several at once, which
// could mean different things to different proxies.
func proxyCredentials(values []string) (user, token string, present, ok bool) {
	if len(values) == 0 {
		return "", "", false, false
	}
	if len(values) > 1 {
		return "", "", true, false
	}
	scheme, enc, found := strings.Cut(values[0], " ")
	if !found || !strings.EqualFold(scheme, "Basic") {
		return "", "", true, false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", "", true, false
	}
	user, token, found = strings.Cut(string(raw), ":")
	if !found || user == "" || token == "" {
		return "", "", true, false
	}
	return user, token, true, true
}

// CacheConfig tunes a CachingAuthenticator; zero values pick the defaults.
type CacheConfig struct {
	TTL         time.Duration // how long a good credential is trusted; 0: 30 s
	NegativeTTL time.Duration // how long a refusal is remembered; 0: 5 s
	// MaxStale is how long past TTL a good credential is still accepted
	// while the backend fails (the control plane restarting, say), so that
	// pulls in progress go on; 0: 5 min, negative: never.
	MaxStale   time.Duration
	MaxEntries int // 0: 10,000
	// Now is the clock; nil: time.Now. Tests set it.
	Now func() time.Time
}

// CachingAuthenticator remembers an Authenticator's answers for a short
// while, so that the dozens of connections of one pull do not each reach
// the database or the control plane, and merges concurrent checks of the
// same credential into one. Entries are keyed by a hash of user and token:
// the token itself is never kept.
type CachingAuthenticator struct {
	next Authenticator
	cfg  CacheConfig

	mu      sync.Mutex
	entries map[[32]byte]authEntry
	flights map[[32]byte]*authFlight
}

type authEntry struct {
	id         Identity
	bad        bool // ErrUnauthenticated
	expires    time.Time
	staleUntil time.Time
}

type authFlight struct {
	done chan struct{}
	id   Identity
	err  error
}

// backendTimeout bounds one check by the wrapped Authenticator, which runs
// on behalf of every client waiting for the same credential.
const backendTimeout = 10 * time.Second

// NewCachingAuthenticator wraps next.
func NewCachingAuthenticator(next Authenticator, cfg CacheConfig) *CachingAuthenticator {
	cfg.TTL = orDefault(cfg.TTL, 30*time.Second)
	cfg.NegativeTTL = orDefault(cfg.NegativeTTL, 5*time.Second)
	cfg.MaxStale = orDefault(cfg.MaxStale, 5*time.Minute)
	cfg.MaxEntries = orDefault(cfg.MaxEntries, 10000)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CachingAuthenticator{
		next:    next,
		cfg:     cfg,
		entries: make(map[[32]byte]authEntry),
		flights: make(map[[32]byte]*authFlight),
	}
}

func credentialKey(username, token string) [32]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(username)))])
	h.Write([]byte(username))
	h.Write([]byte(token))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// Authenticate implements Authenticator.
func (a *CachingAuthenticator) Authenticate(ctx context.Context, username, token string) (Identity, error) {
	key := credentialKey(username, token)
	now := a.cfg.Now()
	a.mu.Lock()
	e, cached := a.entries[key]
	if cached && now.Before(e.expires) {
		a.mu.Unlock()
		if e.bad {
			return Identity{}, ErrUnauthenticated
		}
		return e.id, nil
	}
	f := a.flights[key]
	if f == nil {
		f = &authFlight{done: make(chan struct{})}
		a.flights[key] = f
		a.mu.Unlock()
		a.check(ctx, key, f, username, token)
	} else {
		a.mu.Unlock()
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return Identity{}, ctx.Err()
	}
	if f.err != nil && !errors.Is(f.err, ErrUnauthenticated) && cached && !e.bad && now.Before(e.staleUntil) {
		return e.id, nil
	}
	return f.id, f.err
}

// check asks the wrapped Authenticator in the background: the clients
// waiting on f may give up, but the answer is still worth caching.
func (a *CachingAuthenticator) check(ctx context.Context, key [32]byte, f *authFlight, username, token string) {
	go func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backendTimeout)
		defer cancel()
		id, err := a.next.Authenticate(cctx, username, token)
		now := a.cfg.Now()
		a.mu.Lock()
		delete(a.flights, key)
		switch {
		case err == nil:
			stale := now.Add(a.cfg.TTL)
			if a.cfg.MaxStale > 0 {
				stale = stale.Add(a.cfg.MaxStale)
			}
			a.storeLocked(key, authEntry{id: id, expires: now.Add(a.cfg.TTL), staleUntil: stale}, now)
		case errors.Is(err, ErrUnauthenticated):
			a.storeLocked(key, authEntry{bad: true, expires: now.Add(a.cfg.NegativeTTL)}, now)
		default:
			// The backend failed: keep serving a still-stale-usable identity
			// without asking again for a little while, so that clients do
			// not each wait for a backend that is timing out.
			if old, ok := a.entries[key]; ok && !old.bad && now.Before(old.staleUntil) {
				old.expires = now.Add(a.cfg.NegativeTTL)
				a.entries[key] = old
			}
		}
		a.mu.Unlock()
		f.id, f.err = id, err
		close(f.done)
	}()
}

// storeLocked adds an entry, making room first: expired entries go, then
// arbitrary ones (map order), which bounds memory against credential spraying.
func (a *CachingAuthenticator) storeLocked(key [32]byte, e authEntry, now time.Time) {
	if _, ok := a.entries[key]; !ok && len(a.entries) >= a.cfg.MaxEntries {
		for k, old := range a.entries {
			if now.After(old.staleUntil) && now.After(old.expires) {
				delete(a.entries, k)
			}
		}
		for k := range a.entries {
			if len(a.entries) < a.cfg.MaxEntries {
				break
			}
			delete(a.entries, k)
		}
	}
	a.entries[key] = e
}

// Purge forgets every cached answer, e.g. after tokens were revoked.
func (a *CachingAuthenticator) Purge() {
	a.mu.Lock()
	clear(a.entries)
	a.mu.Unlock()
}

// Len returns the number of cached answers.
func (a *CachingAuthenticator) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.entries)
}
