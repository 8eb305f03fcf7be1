package controlplane

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/regward/regward/internal/credential"
	"github.com/regward/regward/internal/store"
)

// Principal is who is calling, as proven by a token or password.
type Principal struct {
	Username    string
	Org         string // the org the token is scoped to; empty for gateway tokens
	Role        store.Role
	Kind        store.TokenKind
	TokenID     string
	ServerAdmin bool
}

// Owner reports whether the principal may change org's settings.
func (p Principal) Owner(org string) bool {
	return p.Kind != store.TokenGateway && p.Org == org && p.Role == store.RoleOwner
}

type principalKey struct{}

func principalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// tokenCacheTTL bounds how long a revoked token may still be accepted by
// another replica; revocation on this replica takes effect at once.
const tokenCacheTTL = 5 * time.Second

type cachedPrincipal struct {
	p       Principal
	expires time.Time
}

// tokenCache remembers verified tokens by a hash of the token string, so the
// many requests of a pull or a long-poll loop do not each hit the database.
type tokenCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cachedPrincipal
	used    map[string]time.Time // token ID -> last use, flushed in batches
}

func (c *tokenCache) get(key [32]byte, now time.Time) (Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.After(e.expires) {
		return Principal{}, false
	}
	c.touchLocked(e.p.TokenID, now)
	return e.p, true
}

func (c *tokenCache) put(key [32]byte, p Principal, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[[32]byte]cachedPrincipal)
	}
	if len(c.entries) > 100_000 {
		clear(c.entries) // crude bound; entries are cheap to rebuild
	}
	c.entries[key] = cachedPrincipal{p: p, expires: now.Add(tokenCacheTTL)}
	c.touchLocked(p.TokenID, now)
}

func (c *tokenCache) touchLocked(id string, now time.Time) {
	if c.used == nil {
		c.used = make(map[string]time.Time)
	}
	c.used[id] = now
}

func (c *tokenCache) forget(tokenID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.p.TokenID == tokenID {
			delete(c.entries, k)
		}
	}
}

// reset drops every cached principal, after a change that can alter many
// (a membership removed).
func (c *tokenCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
}

func (c *tokenCache) takeUsed() map[string]time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.used
	c.used = nil
	return u
}

var errBadToken = errors.New("the access token is not valid")

// AuthenticateToken verifies an access token and returns its principal.
func (s *Server) AuthenticateToken(ctx context.Context, token string) (Principal, error) {
	key := sha256.Sum256([]byte(token))
	now := s.now()
	if p, ok := s.tokens.get(key, now); ok {
		return p, nil
	}
	id, err := credential.TokenID(token)
	if err != nil {
		return Principal{}, errBadToken
	}
	t, err := s.store.GetToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, errBadToken
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up token: %w", err)
	}
	if !credential.TokenMatches(token, t.Hash) || t.RevokedAt != nil || (t.ExpiresAt != nil && now.After(*t.ExpiresAt)) {
		return Principal{}, errBadToken
	}
	p := Principal{Username: t.Username, Org: t.Org, Kind: t.Kind, TokenID: t.ID}
	u, err := s.store.GetUser(ctx, t.Username)
	if err != nil {
		return Principal{}, fmt.Errorf("look up token owner: %w", err)
	}
	p.ServerAdmin = u.ServerAdmin
	if t.Kind != store.TokenGateway {
		m, err := s.store.GetMember(ctx, t.Org, t.Username)
		if errors.Is(err, store.ErrNotFound) {
			return Principal{}, errBadToken // removed from the org: its tokens die with the membership
		}
		if err != nil {
			return Principal{}, fmt.Errorf("look up membership: %w", err)
		}
		p.Role = m.Role
	} else if !u.ServerAdmin {
		return Principal{}, errBadToken
	}
	s.tokens.put(key, p, now)
	return p, nil
}

// flushTokenUse writes last-used times in one batch.
func (s *Server) flushTokenUse(ctx context.Context) {
	used := s.tokens.takeUsed()
	if len(used) == 0 {
		return
	}
	if err := s.store.TouchTokens(ctx, used); err != nil {
		s.log.Warn("record token use", "err", err, "tokens", len(used))
	}
}

// withToken authenticates a Bearer token and puts the principal in the context.
func (s *Server) withToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			writeError(w, errUnauthorized("send an access token: Authorization: Bearer rw_..."))
			return
		}
		p, err := s.AuthenticateToken(r.Context(), tok)
		if err != nil {
			if errors.Is(err, errBadToken) {
				writeError(w, errUnauthorized(err.Error()))
				return
			}
			s.log.Error("authenticate token", "err", err)
			writeError(w, err)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// loginLimiter slows password guessing per username and per client address.
type loginLimiter struct {
	mu      sync.Mutex
	byUser  map[string]*rate.Limiter
	byAddr  map[string]*rate.Limiter
	perUser rate.Limit
	perAddr rate.Limit
	burst   int
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{
		byUser:  make(map[string]*rate.Limiter),
		byAddr:  make(map[string]*rate.Limiter),
		perUser: rate.Every(6 * time.Second), // 10 a minute after the burst
		perAddr: rate.Every(2 * time.Second),
		burst:   10,
	}
}

// allow takes one attempt from both buckets; false means refuse with 429.
func (l *loginLimiter) allow(user, addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.byUser) > 50_000 {
		clear(l.byUser)
	}
	if len(l.byAddr) > 50_000 {
		clear(l.byAddr)
	}
	u := l.byUser[user]
	if u == nil {
		u = rate.NewLimiter(l.perUser, l.burst)
		l.byUser[user] = u
	}
	a := l.byAddr[addr]
	if a == nil {
		a = rate.NewLimiter(l.perAddr, l.burst*3)
		l.byAddr[addr] = a
	}
	return u.Allow() && a.Allow()
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ErrRateLimited is returned by CheckPassword when too many attempts came
// from this user name or client address.
var ErrRateLimited = errors.New("too many sign-in attempts; wait a minute and try again")

// ErrBadCredentials is the one answer for an unknown user or wrong password.
var ErrBadCredentials = errors.New("wrong username or password")

// CheckPassword verifies a username and password, rate-limited per user and
// per client address, and records failed attempts in the org's activity log
// when org is known.
func (s *Server) CheckPassword(ctx context.Context, username, password, addr, org string) (store.User, error) {
	if !s.limiter.allow(strings.ToLower(username), addr) {
		return store.User{}, ErrRateLimited
	}
	u, err := s.store.GetUser(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		// Spend the same work as a real check so timing does not tell
		// which user names exist.
		_ = credential.VerifyPassword(s.dummyHash, password)
		s.recordFailedSignIn(ctx, org, username, addr)
		return store.User{}, ErrBadCredentials
	}
	if err != nil {
		return store.User{}, fmt.Errorf("look up user: %w", err)
	}
	if err := credential.VerifyPassword(u.PasswordHash, password); err != nil {
		if !errors.Is(err, credential.ErrMismatch) {
			s.log.Error("verify password", "user", username, "err", err)
		}
		s.recordFailedSignIn(ctx, org, username, addr)
		return store.User{}, ErrBadCredentials
	}
	return u, nil
}

func (s *Server) recordFailedSignIn(ctx context.Context, org, username, addr string) {
	if org == "" {
		return
	}
	if _, err := s.store.GetOrg(ctx, org); err != nil {
		return
	}
	err := s.store.AppendActivity(ctx, store.Activity{
		Org: org, Time: s.now(), Actor: username, Kind: store.KindSignInFailed,
		Target: username, Summary: "failed sign-in from " + addr,
	})
	if err != nil {
		s.log.Warn("record failed sign-in", "err", err)
	}
}
