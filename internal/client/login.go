package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// LoginOptions say where and as whom to sign in.
type LoginOptions struct {
	Server   string // control plane URL; "" for the saved session's
	Org      string // "" for the only org registry.json allows, or the saved session's
	Username string // "" for Ask.Username, or the saved session's
	// Ask supplies what the command line did not: the username and the
	// password. It is called only after every check that needs neither, so
	// that a refused sign-in never asks for a password.
	Ask LoginPrompter
	// RegistryJSON is the registry.json path ("" for the platform path or
	// REGWARD_REGISTRY_JSON).
	RegistryJSON string
	SessionPath  string // "" for SessionPath()
	Cache        SnapshotCache
	HTTP         *http.Client
	Now          func() time.Time
}

// LoginPrompter asks the user for what the flags did not give.
type LoginPrompter interface {
	Username() (string, error)
	Password(username string) (string, error)
}

// LoginResult is what a sign-in did, for the command to report.
type LoginResult struct {
	Session     Session
	Enforcement Enforcement
	// Policy is the snapshot fetched and cached at sign-in; PolicyErr says
	// why there is none.
	Policy    *CachedSnapshot
	PolicyErr error
	// Replaced is the previous sign-in's token ID, revoked on its server;
	// ReplaceErr says why that failed.
	Replaced   string
	ReplaceErr error
	// Agent is the running agent's state after it reloaded; AgentErr says
	// why it could not be told. Both are nil when no agent runs.
	Agent    *AgentReport
	AgentErr error
	Warnings []string
}

// RefusedError is a sign-in that registry.json or the control plane does
// not allow.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }

// Login signs in to one org: it checks registry.json, exchanges the
// password for a personal token, saves the session (0600), revokes the
// session it replaces, caches the org's policy and tells a running agent.
func Login(ctx context.Context, o LoginOptions) (LoginResult, error) {
	var res LoginResult
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	enf, err := LoadEnforcement(o.RegistryJSON)
	if err != nil {
		return res, err
	}
	res.Enforcement = enf
	res.Warnings = append(res.Warnings, enf.Warnings...)

	prev, err := LoadSession(o.SessionPath)
	hasPrev := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		res.Warnings = append(res.Warnings, err.Error()+" (it is replaced)")
	}

	server := strings.TrimRight(o.Server, "/")
	if server == "" && hasPrev {
		server = prev.Server
	}
	if server == "" {
		return res, errors.New("name the control plane: --server URL (or REGWARD_SERVER)")
	}
	if w, err := checkServerURL(server); err != nil {
		return res, err
	} else if w != "" {
		res.Warnings = append(res.Warnings, w)
	}

	org := o.Org
	switch {
	case org != "":
	case enf.Enforced && len(enf.AllowedOrgs) == 1:
		org = enf.AllowedOrgs[0]
	case hasPrev && enf.Allows(prev.Org):
		org = prev.Org
	case enf.Enforced:
		return res, fmt.Errorf("name the organization with --org; %s", enf.Refusal())
	default:
		return res, errors.New("name the organization with --org")
	}
	if !enf.Allows(org) {
		return res, &RefusedError{Msg: fmt.Sprintf("cannot sign in to organization %s: %s (%s)", org, enf.Refusal(), enf.Path)}
	}

	user := o.Username
	if user == "" && hasPrev && prev.Server == server {
		user = prev.Username
	}
	if user == "" {
		if o.Ask == nil {
			return res, errors.New("name the user with --username")
		}
		if user, err = o.Ask.Username(); err != nil {
			return res, err
		}
		if user = strings.TrimSpace(user); user == "" {
			return res, errors.New("no username given")
		}
	}
	if o.Ask == nil {
		return res, errors.New("no way to ask for the password: pass it on standard input with --password-stdin")
	}
	password, err := o.Ask.Password(user)
	if err != nil {
		return res, err
	}
	if password == "" {
		return res, errors.New("empty password")
	}

	api := &API{Server: server, HTTP: o.HTTP}
	tok, err := api.CreateToken(ctx, user, password, org, "", "regward login on "+hostname())
	if err != nil {
		var pe *ProblemError
		if errors.As(err, &pe) && (pe.Status == http.StatusUnauthorized || pe.Status == http.StatusForbidden) {
			return res, &RefusedError{Msg: "sign-in refused: " + pe.Detail}
		}
		return res, fmt.Errorf("sign in to %s: %w", server, err)
	}
	api.Token = tok.Token
	who, err := api.Whoami(ctx)
	if err != nil {
		_ = api.RevokeToken(context.WithoutCancel(ctx), tok.ID)
		return res, fmt.Errorf("check the new token: %w", err)
	}
	s := Session{Server: server, Org: tok.Org, Username: tok.Username, Role: who.Role, TokenID: tok.ID, Token: tok.Token, SignedIn: now().UTC()}
	if err := SaveSession(o.SessionPath, s); err != nil {
		_ = api.RevokeToken(context.WithoutCancel(ctx), tok.ID)
		return res, fmt.Errorf("save the sign-in: %w", err)
	}
	res.Session = s

	if hasPrev && prev.TokenID != "" && prev.TokenID != s.TokenID {
		res.Replaced = prev.TokenID
		old := &API{Server: prev.Server, Token: prev.Token, HTTP: o.HTTP}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := old.RevokeToken(rctx, prev.TokenID); err != nil && !isUnauthorized(err) {
			res.ReplaceErr = err
		}
		cancel()
	}

	snap, _, err := api.GetSnapshot(ctx, s.Org, 0, 0)
	if err == nil {
		cs := CachedSnapshot{FetchedAt: now().UTC(), Snapshot: snap}
		if err = o.Cache.Save(server, cs); err == nil {
			res.Policy = &cs
		}
	}
	res.PolicyErr = err

	res.Agent, res.AgentErr = notifyAgent(ctx, o.SessionPath, o.HTTP)
	return res, nil
}

// notifyAgent tells a running agent that the session changed; no agent is
// (nil, nil).
func notifyAgent(ctx context.Context, sessionPath string, hc *http.Client) (*AgentReport, error) {
	ac, err := FindAgent(sessionPath)
	if ac == nil || err != nil {
		return nil, err
	}
	ac.HTTP = hc
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r, err := ac.Reload(ctx)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func isUnauthorized(err error) bool {
	var pe *ProblemError
	return errors.As(err, &pe) && pe.Status == http.StatusUnauthorized
}

// checkServerURL refuses what is not an http(s) base URL and warns when a
// password would cross the network in clear.
func checkServerURL(server string) (warning string, err error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("--server %q: want a URL such as https://regward.example.com", server)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--server %q: a base URL without credentials, query or fragment", server)
	}
	if u.Scheme == "http" && !IsLoopback(u.Hostname()) {
		return fmt.Sprintf("%s is plain HTTP: your password and token cross the network in clear; use https://", server), nil
	}
	return "", nil
}

// IsLoopback reports whether host is localhost or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "this machine"
	}
	return h
}

// LogoutResult is what a sign-out did.
type LogoutResult struct {
	Session Session
	// RevokeErr says why the token could not be revoked on the server; the
	// local sign-in is removed all the same.
	RevokeErr error
	Agent     *AgentReport
	AgentErr  error
}

// ErrNotSignedIn is returned when there is no saved sign-in.
var ErrNotSignedIn = errors.New("not signed in")

// Logout revokes the saved token on its server, deletes the session and
// the cached policy, and tells a running agent.
func Logout(ctx context.Context, sessionPath string, cache SnapshotCache, hc *http.Client) (LogoutResult, error) {
	var res LogoutResult
	s, err := LoadSession(sessionPath)
	if errors.Is(err, os.ErrNotExist) {
		return res, ErrNotSignedIn
	}
	if err != nil {
		// A damaged file still goes: it is what the user wants gone.
		if rerr := RemoveSession(sessionPath); rerr != nil {
			return res, rerr
		}
		res.RevokeErr = fmt.Errorf("the session file was damaged, so its token could not be revoked: %w", err)
		res.Agent, res.AgentErr = notifyAgent(ctx, sessionPath, hc)
		return res, nil
	}
	res.Session = s
	api := &API{Server: s.Server, Token: s.Token, HTTP: hc}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	if err := api.RevokeToken(rctx, s.TokenID); err != nil && !isUnauthorized(err) {
		res.RevokeErr = err
	}
	cancel()
	if err := RemoveSession(sessionPath); err != nil {
		return res, fmt.Errorf("delete the session: %w", err)
	}
	if err := cache.Remove(s.Server, s.Org); err != nil {
		return res, fmt.Errorf("delete the cached policy: %w", err)
	}
	res.Agent, res.AgentErr = notifyAgent(ctx, sessionPath, hc)
	return res, nil
}
