package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// StatusReport is what `regward status` shows.
type StatusReport struct {
	SignedIn bool      `json:"signedIn"`
	Server   string    `json:"server,omitempty"`
	User     string    `json:"user,omitempty"`
	Org      string    `json:"org,omitempty"`
	Role     string    `json:"role,omitempty"`
	Since    time.Time `json:"signedInAt,omitzero"`
	// Token is "valid", "rejected" (revoked, expired or membership gone)
	// or "unverified" (the server did not answer); TokenDetail says why.
	Token       string `json:"token,omitempty"`
	TokenDetail string `json:"tokenDetail,omitempty"`
	SessionErr  string `json:"sessionError,omitempty"`

	Policy *PolicyStatus `json:"policy,omitempty"`
	Agent  AgentStatus   `json:"agent"`

	RegistryJSON    Enforcement `json:"registryJSON"`
	RegistryJSONErr string      `json:"registryJSONError,omitempty"`
}

// PolicyStatus is the cached policy of the signed-in org.
type PolicyStatus struct {
	Version   int64     `json:"version"`
	FetchedAt time.Time `json:"fetchedAt"`
	AgeSecs   int64     `json:"ageSeconds"`
}

// AgentStatus says whether an agent runs and what it enforces.
type AgentStatus struct {
	Running bool         `json:"running"`
	Detail  string       `json:"detail,omitempty"`
	Report  *AgentReport `json:"report,omitempty"`
}

// StatusOptions locate what Status reads.
type StatusOptions struct {
	SessionPath  string
	RegistryJSON string
	Cache        SnapshotCache
	HTTP         *http.Client
	Now          func() time.Time
}

// Status gathers the sign-in, the cached policy, the agent and
// registry.json. It asks the server whether the token is still good, with a
// short timeout; nothing here fails the whole report.
func Status(ctx context.Context, o StatusOptions) StatusReport {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	var r StatusReport
	enf, err := LoadEnforcement(o.RegistryJSON)
	r.RegistryJSON = enf
	if err != nil {
		r.RegistryJSONErr = err.Error()
	}

	s, err := LoadSession(o.SessionPath)
	switch {
	case err == nil:
		r.SignedIn, r.Server, r.User, r.Org, r.Role, r.Since = true, s.Server, s.Username, s.Org, s.Role, s.SignedIn
		api := &API{Server: s.Server, Token: s.Token, HTTP: o.HTTP}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		who, werr := api.Whoami(wctx)
		cancel()
		switch {
		case werr == nil:
			r.Token = "valid"
			if who.Role != "" {
				r.Role = who.Role
			}
		case isUnauthorized(werr):
			r.Token, r.TokenDetail = "rejected", "the server no longer accepts this sign-in: run `regward login`"
		default:
			r.Token, r.TokenDetail = "unverified", werr.Error()
		}
		if cs, err := o.Cache.Load(s.Server, s.Org); err == nil {
			r.Policy = &PolicyStatus{Version: cs.Snapshot.Version, FetchedAt: cs.FetchedAt, AgeSecs: int64(now().Sub(cs.FetchedAt) / time.Second)}
		}
	case !errors.Is(err, os.ErrNotExist):
		r.SessionErr = err.Error()
	}

	ac, err := FindAgent(o.SessionPath)
	switch {
	case err != nil:
		r.Agent.Detail = err.Error()
	case ac == nil:
		r.Agent.Detail = "not running (start it with `regward agent`)"
	default:
		ac.HTTP = o.HTTP
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		rep, err := ac.Status(actx)
		cancel()
		if err != nil {
			r.Agent.Detail = "not running: " + err.Error()
		} else {
			r.Agent.Running, r.Agent.Report = true, &rep
		}
	}
	return r
}

// Render writes the report for people.
func (r StatusReport) Render(w io.Writer, now time.Time) {
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%-14s%s\n", k+":", fmt.Sprintf(format, args...)) }
	switch {
	case r.SignedIn:
		row("Server", "%s", r.Server)
		row("User", "%s", r.User)
		row("Organization", "%s", r.Org)
		row("Role", "%s", orDash(r.Role))
		row("Signed in", "%s (%s ago)", r.Since.Local().Format(time.RFC3339), Age(now.Sub(r.Since)))
		tok := r.Token
		if r.TokenDetail != "" {
			tok += " (" + r.TokenDetail + ")"
		}
		row("Token", "%s", tok)
		if r.Policy != nil {
			row("Policy", "version %d, fetched %s ago", r.Policy.Version, Age(now.Sub(r.Policy.FetchedAt)))
		} else {
			row("Policy", "none cached")
		}
	case r.SessionErr != "":
		row("Signed in", "no: %s", r.SessionErr)
	default:
		row("Signed in", "no (run `regward login`)")
	}
	if r.Agent.Running {
		a := r.Agent.Report
		line := fmt.Sprintf("running on %s (pid %d), %s", a.Listen, a.PID, a.State)
		switch {
		case a.State == AgentEnforcing:
			line += fmt.Sprintf(" policy version %d of %s for %s", a.PolicyVersion, a.Org, a.User)
		case a.Reason != "":
			line += ": " + a.Reason
		}
		if a.Upstream != "" {
			line += ", via gateway " + a.Upstream
		}
		row("Agent", "%s", line)
	} else {
		row("Agent", "%s", r.Agent.Detail)
	}
	switch {
	case r.RegistryJSONErr != "":
		row("Sign-in", "enforced, but registry.json is unusable: %s", r.RegistryJSONErr)
	case r.RegistryJSON.Enforced:
		row("Sign-in", "enforced by %s (allowed: %s)", r.RegistryJSON.Path, strings.Join(r.RegistryJSON.AllowedOrgs, ", "))
	default:
		row("Sign-in", "not enforced (no %s)", r.RegistryJSON.Path)
	}
	for _, warn := range r.RegistryJSON.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Age is a short, rounded duration for people: "45s", "12m", "3h5m", "2d4h".
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}
