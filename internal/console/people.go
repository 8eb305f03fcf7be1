package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/store"
)

type membersView struct {
	Members []controlplane.MemberInfo
	// Added is the member just added; its Password is the one-time password,
	// shown on this page only.
	Added    *controlplane.MemberInfo
	Username string
	Role     string
}

func (c *Console) handleMembers(w http.ResponseWriter, r *http.Request, s *session) {
	v := &view{}
	q := r.URL.Query()
	ms, err := c.srv.ListMembers(r.Context(), s.Principal, s.Org)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	// Confirmations are only shown when the list agrees with them, so a
	// crafted link cannot make the page claim something that did not happen.
	has := func(name string) (controlplane.MemberInfo, bool) {
		i := slices.IndexFunc(ms, func(m controlplane.MemberInfo) bool { return m.Username == name })
		if i < 0 {
			return controlplane.MemberInfo{}, false
		}
		return ms[i], true
	}
	if name := q.Get("updated"); name != "" {
		if m, ok := has(name); ok {
			v.Flash = fmt.Sprintf("%s is now %s.", m.Username, m.Role)
		}
	}
	if name := q.Get("removed"); name != "" {
		if _, ok := has(name); !ok {
			v.Flash = fmt.Sprintf("Removed %s; their tokens for %s no longer work.", name, s.Org)
		}
	}
	c.renderMembers(w, r, s, http.StatusOK, v, membersView{Members: ms, Role: string(store.RoleMember)})
}

func (c *Console) renderMembers(w http.ResponseWriter, r *http.Request, s *session, status int, v *view, mv membersView) {
	if mv.Members == nil {
		ms, err := c.srv.ListMembers(r.Context(), s.Principal, s.Org)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		mv.Members = ms
	}
	v.Title, v.Nav, v.S, v.Data = "Members", "members", s, mv
	c.render(w, r, status, "members", v)
}

// formProblem splits errors a form can show beside itself (bad input, a
// conflict) from those that end the request (forbidden, server errors).
func formProblem(err error) (*controlplane.Problem, bool) {
	var p *controlplane.Problem
	if errors.As(err, &p) && (p.Status == http.StatusBadRequest || p.Status == http.StatusConflict) {
		return p, true
	}
	return nil, false
}

func (c *Console) handleAddMember(w http.ResponseWriter, r *http.Request, s *session) {
	if err := parseForm(r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	mv := membersView{
		Username: strings.TrimSpace(r.PostFormValue("username")),
		Role:     r.PostFormValue("role"),
	}
	m, err := c.srv.AddMember(r.Context(), s.Principal, s.Org, mv.Username, store.Role(mv.Role), r.PostFormValue("password"))
	if err != nil {
		if p, ok := formProblem(err); ok {
			c.renderMembers(w, r, s, formAgain, &view{Error: "The member was not added: " + p.Detail}, mv)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("console: member added", "org", s.Org, "user", s.Username, "member", m.Username, "role", m.Role)
	v := &view{Flash: fmt.Sprintf("Added %s as %s.", m.Username, m.Role)}
	c.renderMembers(w, r, s, http.StatusOK, v, membersView{Added: &m, Role: string(store.RoleMember)})
}

func (c *Console) handleSetRole(w http.ResponseWriter, r *http.Request, s *session) {
	if err := parseForm(r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	name := r.PathValue("username")
	if err := c.srv.SetRole(r.Context(), s.Principal, s.Org, name, store.Role(r.PostFormValue("role"))); err != nil {
		if p, ok := formProblem(err); ok {
			c.renderMembers(w, r, s, formAgain, &view{Error: "The role was not changed: " + p.Detail}, membersView{Role: string(store.RoleMember)})
			return
		}
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/members?updated="+url.QueryEscape(name), http.StatusSeeOther)
}

func (c *Console) handleRemoveMember(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("username")
	if err := c.srv.RemoveMember(r.Context(), s.Principal, s.Org, name); err != nil {
		if p, ok := formProblem(err); ok {
			c.renderMembers(w, r, s, formAgain, &view{Error: "The member was not removed: " + p.Detail}, membersView{Role: string(store.RoleMember)})
			return
		}
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("console: member removed", "org", s.Org, "user", s.Username, "member", name)
	http.Redirect(w, r, "/members?removed="+url.QueryEscape(name), http.StatusSeeOther)
}

type tokenRow struct {
	controlplane.TokenInfo
	Status string // active, expired, revoked
}

type tokensView struct {
	Tokens  []tokenRow
	All     bool // the list holds every member's tokens (owners)
	Members []string
	Created *controlplane.NewToken
	Name    string
	User    string
	Expiry  string
	Expires []expiryChoice
}

type expiryChoice struct {
	Value, Label string
	TTL          time.Duration
}

var expiryChoices = []expiryChoice{
	{"never", "Never", 0},
	{"30d", "In 30 days", 30 * 24 * time.Hour},
	{"90d", "In 90 days", 90 * 24 * time.Hour},
	{"365d", "In a year", 365 * 24 * time.Hour},
}

// maxTokenName bounds a token's label.
const maxTokenName = 100

func (c *Console) handleTokens(w http.ResponseWriter, r *http.Request, s *session) {
	v := &view{}
	if id := r.URL.Query().Get("revoked"); id != "" {
		if t, err := c.st.GetToken(r.Context(), id); err == nil && t.Org == s.Org && t.RevokedAt != nil {
			v.Flash = fmt.Sprintf("Revoked token %s.", id)
		}
	}
	c.renderTokens(w, r, s, http.StatusOK, v, tokensView{User: s.Username, Expiry: "never"})
}

func (c *Console) renderTokens(w http.ResponseWriter, r *http.Request, s *session, status int, v *view, tv tokensView) {
	user := s.Username
	if s.Owner() {
		user = "" // owners see and manage every member's tokens
		tv.All = true
	}
	ts, err := c.st.ListTokens(r.Context(), s.Org, user, store.TokenPersonal)
	if err != nil {
		c.fail(w, r, s, fmt.Errorf("list tokens of org %q: %w", s.Org, err))
		return
	}
	now := time.Now()
	for _, t := range ts {
		row := tokenRow{TokenInfo: controlplane.TokenInfo{ID: t.ID, Kind: string(t.Kind), Username: t.Username, Org: t.Org,
			Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}, Status: "active"}
		switch {
		case t.RevokedAt != nil:
			row.Status = "revoked"
		case t.ExpiresAt != nil && now.After(*t.ExpiresAt):
			row.Status = "expired"
		}
		tv.Tokens = append(tv.Tokens, row)
	}
	ms, err := c.srv.ListMembers(r.Context(), s.Principal, s.Org)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	for _, m := range ms {
		tv.Members = append(tv.Members, m.Username)
	}
	tv.Expires = expiryChoices
	v.Title, v.Nav, v.S, v.Data = "Tokens", "tokens", s, tv
	c.render(w, r, status, "tokens", v)
}

// handleCreateToken issues a personal access token for a member of the
// org. Only owners may: the console is read-only for members, who get
// their own token with `regward login`.
func (c *Console) handleCreateToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Owner() {
		c.fail(w, r, s, forbidden(s.Org, "create tokens in the console; members get theirs with `regward login`"))
		return
	}
	if err := parseForm(r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	tv := tokensView{
		Name:   strings.TrimSpace(r.PostFormValue("name")),
		User:   r.PostFormValue("user"),
		Expiry: r.PostFormValue("expires"),
	}
	again := func(status int, msg string) {
		c.renderTokens(w, r, s, status, &view{Error: "The token was not created: " + msg}, tv)
	}
	if tv.User == "" {
		tv.User = s.Username
	}
	if utf8.RuneCountInString(tv.Name) > maxTokenName || !utf8.ValidString(tv.Name) {
		again(formAgain, fmt.Sprintf("the name must be valid text of at most %d characters", maxTokenName))
		return
	}
	i := slices.IndexFunc(expiryChoices, func(e expiryChoice) bool { return e.Value == tv.Expiry })
	if i < 0 {
		again(formAgain, fmt.Sprintf("expiry %q: choose one of the listed ones", tv.Expiry))
		return
	}
	if _, err := c.st.GetMember(r.Context(), s.Org, tv.User); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			again(formAgain, fmt.Sprintf("%s is not a member of %s", tv.User, s.Org))
			return
		}
		c.fail(w, r, s, fmt.Errorf("look up member %q: %w", tv.User, err))
		return
	}
	tok, err := c.srv.IssueToken(r.Context(), s.Username, tv.User, s.Org, store.TokenPersonal, tv.Name, expiryChoices[i].TTL)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("console: token created", "org", s.Org, "user", s.Username, "for", tv.User, "token_id", tok.ID)
	v := &view{Flash: fmt.Sprintf("Created token %s for %s.", tok.ID, tok.Username)}
	c.renderTokens(w, r, s, http.StatusOK, v, tokensView{Created: &tok, User: s.Username, Expiry: "never"})
}

func (c *Console) handleRevokeToken(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Owner() {
		c.fail(w, r, s, forbidden(s.Org, "revoke tokens in the console"))
		return
	}
	id := r.PathValue("id")
	t, err := c.st.GetToken(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.fail(w, r, s, fmt.Errorf("look up token %q: %w", id, err))
		return
	}
	if err != nil || t.Org != s.Org {
		c.fail(w, r, s, &controlplane.Problem{Status: http.StatusNotFound, Title: "Not Found", Detail: "token " + id + " not found"})
		return
	}
	if err := c.srv.RevokeToken(r.Context(), s.Principal, id); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("console: token revoked", "org", s.Org, "user", s.Username, "token_id", id)
	http.Redirect(w, r, "/tokens?revoked="+url.QueryEscape(id), http.StatusSeeOther)
}
