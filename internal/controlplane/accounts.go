package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/regward/regward/internal/credential"
	"github.com/regward/regward/internal/store"
)

// usernamePattern: lowercase, as in most registries, so names never differ
// only by case.
var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// orgPattern matches what the policy package accepts for Policy.Org.
var orgPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// TokenInfo describes a token without its secret.
type TokenInfo struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Username   string     `json:"username"`
	Org        string     `json:"org,omitempty"`
	Name       string     `json:"name,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	RevokedAt  *time.Time `json:"revokedAt,omitempty"`
}

// NewToken is a created token: the only time its secret is shown.
type NewToken struct {
	TokenInfo
	Token string `json:"token"`
}

func tokenInfo(t store.Token) TokenInfo {
	return TokenInfo{ID: t.ID, Kind: string(t.Kind), Username: t.Username, Org: t.Org, Name: t.Name,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

// IssueToken creates a token of kind for username in org (empty org for a
// gateway token) and records it. actor is who asked.
func (s *Server) IssueToken(ctx context.Context, actor, username, org string, kind store.TokenKind, name string, ttl time.Duration) (NewToken, error) {
	tok, id, hash := credential.NewToken()
	now := s.now()
	t := store.Token{ID: id, Kind: kind, Username: username, Org: org, Name: name, Hash: hash, CreatedAt: now}
	if ttl > 0 {
		exp := now.Add(ttl)
		t.ExpiresAt = &exp
	}
	act := store.Activity{Org: org, Time: now, Actor: actor, Kind: store.KindTokenCreate, Target: id,
		Summary: fmt.Sprintf("%s token %s for %s", kind, id, username)}
	switch kind {
	case store.TokenSession:
		act.Kind, act.Summary = store.KindSignIn, "console sign-in"
	case store.TokenGateway:
		act = store.Activity{} // not tied to an org
	}
	if err := s.store.CreateToken(ctx, t, act); err != nil {
		return NewToken{}, fmt.Errorf("create token: %w", err)
	}
	return NewToken{TokenInfo: tokenInfo(t), Token: tok}, nil
}

type createTokenRequest struct {
	Org  string `json:"org"`
	Name string `json:"name"`
	Kind string `json:"kind"` // "" or "personal"; "gateway" for server admins
}

// handleCreateToken: password (Basic auth) -> personal access token.
func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	username, password, ok := r.BasicAuth()
	if !ok {
		writeError(w, errUnauthorized("sign in with Basic auth (username and password) to get a token"))
		return
	}
	var req createTokenRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	u, err := s.CheckPassword(r.Context(), username, password, clientAddr(r), req.Org)
	switch {
	case errors.Is(err, ErrRateLimited):
		w.Header().Set("Retry-After", "60")
		writeError(w, problem(http.StatusTooManyRequests, "rate-limited", err.Error()))
		return
	case errors.Is(err, ErrBadCredentials):
		writeError(w, errUnauthorized(err.Error()))
		return
	case err != nil:
		s.log.Error("check password", "err", err)
		writeError(w, err)
		return
	}
	var tok NewToken
	switch req.Kind {
	case "gateway":
		if !u.ServerAdmin {
			writeError(w, errForbidden("only a server admin can create gateway tokens"))
			return
		}
		if req.Org != "" {
			writeError(w, errBadRequest("a gateway token reads every org's policy: leave org empty"))
			return
		}
		tok, err = s.IssueToken(r.Context(), u.Username, u.Username, "", store.TokenGateway, req.Name, 0)
	case "", "personal":
		if req.Org == "" {
			writeError(w, errBadRequest(`name the organization: {"org":"..."}`))
			return
		}
		if _, err := s.store.GetMember(r.Context(), req.Org, u.Username); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				writeError(w, errForbidden(fmt.Sprintf("%s is not a member of organization %s", u.Username, req.Org)))
				return
			}
			writeError(w, err)
			return
		}
		tok, err = s.IssueToken(r.Context(), u.Username, u.Username, req.Org, store.TokenPersonal, req.Name, 0)
	default:
		writeError(w, errBadRequest(fmt.Sprintf("kind %q: use personal or gateway", req.Kind)))
		return
	}
	if err != nil {
		s.log.Error("issue token", "user", u.Username, "err", err)
		writeError(w, err)
		return
	}
	s.log.Info("token issued", "user", u.Username, "org", req.Org, "token_id", tok.ID, "kind", tok.Kind)
	writeJSON(w, http.StatusCreated, tok)
}

func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	user := p.Username
	if p.Owner(p.Org) && r.URL.Query().Get("all") == "true" {
		user = "" // owners see every token of their org
	}
	ts, err := s.store.ListTokens(r.Context(), p.Org, user, store.TokenPersonal)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]TokenInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenInfo(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// RevokeToken revokes a token: its owner, or an owner of its org, may.
func (s *Server) RevokeToken(ctx context.Context, who Principal, id string) error {
	t, err := s.store.GetToken(ctx, id)
	if err != nil {
		return s.storeErr(err, "token "+id)
	}
	if t.Username != who.Username && !(t.Org != "" && who.Owner(t.Org)) {
		return errNotFound("token " + id + " not found") // do not confirm others' token IDs
	}
	if t.RevokedAt != nil {
		return nil
	}
	now := s.now()
	act := store.Activity{Org: t.Org, Time: now, Actor: who.Username, Kind: store.KindTokenRevoke, Target: id,
		Summary: fmt.Sprintf("revoked %s token %s of %s", t.Kind, id, t.Username)}
	if err := s.store.RevokeToken(ctx, id, now, act); err != nil {
		return s.storeErr(err, "token "+id)
	}
	s.tokens.forget(id)
	return nil
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	if err := s.RevokeToken(r.Context(), p, r.PathValue("id")); err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{
		"username": p.Username, "org": p.Org, "role": p.Role, "kind": p.Kind,
		"tokenId": p.TokenID, "serverAdmin": p.ServerAdmin,
	})
}

type createOrgRequest struct {
	Name string `json:"name"`
}

// CreateOrg creates an org with the default policy; its creator becomes its
// first owner. Only server admins may.
func (s *Server) CreateOrg(ctx context.Context, who Principal, name string) error {
	if !who.ServerAdmin {
		return errForbidden("only a server admin can create organizations")
	}
	if !orgPattern.MatchString(name) {
		return errBadRequest(fmt.Sprintf("organization name %q: use 1-63 lowercase letters, digits, '-' or '_'", name))
	}
	if err := CreateOrgWithOwner(ctx, s.store, name, who.Username, who.Username, s.now()); err != nil {
		return s.storeErr(err, "organization "+name)
	}
	return nil
}

func (s *Server) handleCreateOrg(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	var req createOrgRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.CreateOrg(r.Context(), p, req.Name); err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"name": req.Name})
}
