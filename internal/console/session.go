package console

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/store"
)

// CookieName is the session cookie; its value is a session token.
const CookieName = "regward_session"

// session is the signed-in user, in the one org their session is for.
type session struct {
	controlplane.Principal
	// Orgs are all the orgs the user belongs to, for switching.
	Orgs []string
}

// Owner reports whether the user may change the session's org.
func (s *session) Owner() bool { return s.Principal.Owner(s.Org) }

type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// currentSession returns the session of the request's cookie, or nil when
// there is none or it is no longer valid.
func (c *Console) currentSession(r *http.Request) (*session, error) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	p, err := c.srv.AuthenticateToken(r.Context(), ck.Value)
	if controlplane.IsBadToken(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check session: %w", err)
	}
	if p.Kind != store.TokenSession {
		return nil, nil // an access token pasted into the cookie is not a sign-in
	}
	ms, err := c.st.ListUserOrgs(r.Context(), p.Username)
	if err != nil {
		return nil, fmt.Errorf("list organizations of %s: %w", p.Username, err)
	}
	s := &session{Principal: p}
	for _, m := range ms {
		s.Orgs = append(s.Orgs, m.Org)
	}
	slices.Sort(s.Orgs)
	return s, nil
}

// withSession runs h for a signed-in user. Others are sent to sign in (a
// page) or refused (a form post, whose data cannot survive the detour).
func (c *Console) withSession(h sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := c.currentSession(r)
		if err != nil {
			c.fail(w, r, nil, err)
			return
		}
		if s == nil {
			c.clearCookie(w)
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.render(w, r, http.StatusUnauthorized, "signin", &view{Title: "Sign in",
				Error: "Your session has ended. Sign in again, then repeat your change.", Data: signInView{}})
			return
		}
		h(w, r, s)
	}
}

func (c *Console) setCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: token, Path: "/",
		MaxAge:   int(c.ttl.Seconds()),
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (c *Console) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}

type signInView struct {
	Username string
	Org      string
	Next     string
}

func (c *Console) handleSignInForm(w http.ResponseWriter, r *http.Request) {
	v := &view{Title: "Sign in", Data: signInView{Next: localPath(r.URL.Query().Get("next")), Org: r.URL.Query().Get("org")}}
	if r.URL.Query().Has("signedout") {
		v.Flash = "You are signed out."
	}
	c.render(w, r, http.StatusOK, "signin", v)
}

// handleSignIn checks the password (rate-limited, failures on record) and
// starts a new session: a fresh token each time, so a cookie planted before
// sign-in is never promoted.
func (c *Console) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if err := parseForm(r); err != nil {
		c.fail(w, r, nil, err)
		return
	}
	form := signInView{
		Username: strings.TrimSpace(r.PostFormValue("username")),
		Org:      strings.TrimSpace(r.PostFormValue("org")),
		Next:     localPath(r.PostFormValue("next")),
	}
	password := r.PostFormValue("password")
	again := func(status int, msg string) {
		c.render(w, r, status, "signin", &view{Title: "Sign in", Error: msg, Data: form})
	}
	if form.Username == "" || password == "" {
		again(formAgain, "Enter your username and password.")
		return
	}
	ctx := r.Context()
	u, err := c.srv.CheckPassword(ctx, form.Username, password, remoteHost(r), form.Org)
	switch {
	case errors.Is(err, controlplane.ErrRateLimited):
		w.Header().Set("Retry-After", "60")
		again(http.StatusTooManyRequests, "Too many sign-in attempts. Wait a minute and try again.")
		return
	case errors.Is(err, controlplane.ErrBadCredentials):
		again(formAgain, "Wrong username or password.")
		return
	case err != nil:
		c.fail(w, r, nil, err)
		return
	}
	ms, err := c.st.ListUserOrgs(ctx, u.Username)
	if err != nil {
		c.fail(w, r, nil, fmt.Errorf("list organizations of %s: %w", u.Username, err))
		return
	}
	orgs := make([]string, 0, len(ms))
	for _, m := range ms {
		orgs = append(orgs, m.Org)
	}
	slices.Sort(orgs)
	org := form.Org
	switch {
	case len(orgs) == 0:
		again(formAgain, "You are not a member of any organization yet. Ask an owner to add you.")
		return
	case org == "":
		org = orgs[0]
	case !slices.Contains(orgs, org):
		again(formAgain, fmt.Sprintf("You are not a member of organization %s.", org))
		return
	}
	c.revokeCookieSession(r)
	tok, err := c.srv.IssueToken(ctx, u.Username, u.Username, org, store.TokenSession, "console", c.ttl)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	c.setCookie(w, tok.Token)
	c.log.Info("console sign-in", "user", u.Username, "org", org, "token_id", tok.ID)
	next := form.Next
	if next == "" {
		next = "/registry"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// revokeCookieSession ends the session the request carries, if any.
func (c *Console) revokeCookieSession(r *http.Request) {
	s, err := c.currentSession(r)
	if err != nil || s == nil {
		return
	}
	if err := c.srv.RevokeToken(r.Context(), s.Principal, s.TokenID); err != nil {
		c.log.Warn("console: revoke previous session", "user", s.Username, "token_id", s.TokenID, "err", err)
	}
}

func (c *Console) handleSignOut(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.srv.RevokeToken(r.Context(), s.Principal, s.TokenID); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.clearCookie(w)
	c.log.Info("console sign-out", "user", s.Username, "org", s.Org)
	http.Redirect(w, r, "/signin?signedout=1", http.StatusSeeOther)
}

// handleSwitchOrg moves the user to another of their orgs: a new session
// for that org replaces the current one.
func (c *Console) handleSwitchOrg(w http.ResponseWriter, r *http.Request, s *session) {
	if err := parseForm(r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	org := r.PostFormValue("org")
	if !slices.Contains(s.Orgs, org) {
		c.fail(w, r, s, &controlplane.Problem{Status: http.StatusForbidden, Title: "Forbidden",
			Detail: fmt.Sprintf("you are not a member of organization %q", org)})
		return
	}
	if org == s.Org {
		http.Redirect(w, r, "/registry", http.StatusSeeOther)
		return
	}
	tok, err := c.srv.IssueToken(r.Context(), s.Username, s.Username, org, store.TokenSession, "console", c.ttl)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if err := c.srv.RevokeToken(r.Context(), s.Principal, s.TokenID); err != nil {
		c.log.Warn("console: revoke session after switching org", "user", s.Username, "token_id", s.TokenID, "err", err)
	}
	c.setCookie(w, tok.Token)
	http.Redirect(w, r, "/registry", http.StatusSeeOther)
}

// localPath accepts only a path on this site, so that ?next= cannot send a
// user elsewhere after sign-in.
func localPath(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return p
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
