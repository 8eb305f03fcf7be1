package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/regward/regward/internal/ociref"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// RegistryJSON is the registry.json file that enforces sign-in to org on
// developer machines.
type RegistryJSON struct {
	AllowedOrgs []string `json:"allowedOrgs"`
}

func (s *Server) handleRegistryJSON(w http.ResponseWriter, r *http.Request) {
	_, org, err := s.readable(r)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="registry.json"`)
	writeJSON(w, http.StatusOK, RegistryJSON{AllowedOrgs: []string{org}})
}

func (s *Server) handleGatewayCA(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.readable(r); err != nil {
		writeError(w, err)
		return
	}
	var pem []byte
	if s.gatewayCA != nil {
		pem = s.gatewayCA()
	}
	if len(pem) == 0 {
		writeError(w, errNotFound("this installation has no gateway CA: TLS inspection is not set up"))
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="regward-gateway-ca.pem"`)
	_, _ = w.Write(pem)
}

// CheckRequest asks how the policy treats an image for a user.
type CheckRequest struct {
	Image  string `json:"image"`
	User   string `json:"user,omitempty"`
	Action string `json:"action,omitempty"`
}

// CheckResult is a decision with the reference it was made for.
type CheckResult struct {
	policy.Decision
	Image   string `json:"image"`
	User    string `json:"user"`
	Action  string `json:"action"`
	Version int64  `json:"version"`
}

// Check explains how org's current policy treats req.
func (s *Server) Check(ctx context.Context, who Principal, org string, req CheckRequest) (CheckResult, error) {
	if who.Org != org && who.Kind != store.TokenGateway {
		return CheckResult{}, errForbidden(fmt.Sprintf("your token is for organization %q, not %q", who.Org, org))
	}
	user := req.User
	if user == "" {
		user = who.Username
	}
	if user != who.Username && !who.Owner(org) && who.Kind != store.TokenGateway {
		return CheckResult{}, errForbidden("only owners can check on behalf of another user")
	}
	action := policy.Action(req.Action)
	switch action {
	case "":
		action = policy.ActionPull
	case policy.ActionPull, policy.ActionPush, policy.ActionDelete:
	default:
		return CheckResult{}, errBadRequest(fmt.Sprintf("action %q: use pull, push or delete", req.Action))
	}
	ref, err := ociref.ParseReference(req.Image)
	if err != nil {
		return CheckResult{}, errBadRequest(fmt.Sprintf("image %q: %v", req.Image, err))
	}
	owner := false
	m, err := s.store.GetMember(ctx, org, user)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return CheckResult{}, errNotFound(fmt.Sprintf("%s is not a member of organization %s", user, org))
	case err != nil:
		return CheckResult{}, err
	default:
		owner = m.Role == store.RoleOwner
	}
	c, version, err := s.compiledPolicy(ctx, org)
	if err != nil {
		return CheckResult{}, s.storeErr(err, "organization "+org)
	}
	d := c.Decide(policy.Request{Host: ref.Host, Port: ref.Port, Repository: ref.Repository, Action: action, Owner: owner})
	return CheckResult{Decision: d, Image: ref.String(), User: user, Action: string(action), Version: version}, nil
}

func (s *Server) handleCheck(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	var req CheckRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.Check(r.Context(), p, r.PathValue("org"), req)
	if err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// ActivityItem is an activity entry as the API shows it; denials from the
// decision log take the same shape with kind "denial".
type ActivityItem struct {
	ID      int64          `json:"id"`
	Time    time.Time      `json:"time"`
	Actor   string         `json:"actor"`
	Kind    string         `json:"kind"`
	Target  string         `json:"target,omitempty"`
	Summary string         `json:"summary"`
	Diff    any            `json:"diff,omitempty"`
	Version int64          `json:"version,omitempty"`
	Detail  map[string]any `json:"detail,omitempty"`
}

// KindDenial selects decision-log denials in activity queries.
const KindDenial = "denial"

// ActivityPage is one page of activity, newest first; Next is the cursor of
// the following page ("" at the end).
type ActivityPage struct {
	Items []ActivityItem `json:"items"`
	Next  string         `json:"next,omitempty"`
}

// ActivityQuery selects activity.
type ActivityQuery struct {
	Kinds  []string
	Actor  string
	Host   string
	Since  time.Time
	Until  time.Time
	Before int64
	Limit  int
}

// Activity lists org's activity log, or its denials when Kinds is ["denial"].
func (s *Server) Activity(ctx context.Context, who Principal, org string, q ActivityQuery) (ActivityPage, error) {
	if who.Org != org {
		return ActivityPage{}, errForbidden(fmt.Sprintf("your token is for organization %q, not %q", who.Org, org))
	}
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 50
	}
	page := ActivityPage{Items: []ActivityItem{}}
	if len(q.Kinds) == 1 && q.Kinds[0] == KindDenial {
		denied := false
		ds, err := s.store.ListDecisions(ctx, store.DecisionFilter{Org: org, User: q.Actor, Host: q.Host, Allowed: &denied,
			Since: q.Since, Until: q.Until, Before: q.Before, Limit: q.Limit})
		if err != nil {
			return ActivityPage{}, err
		}
		for _, d := range ds {
			target := d.Host
			if d.Image != "" {
				target = d.Image
			}
			page.Items = append(page.Items, ActivityItem{ID: d.ID, Time: d.Time, Actor: d.User, Kind: KindDenial, Target: target,
				Summary: d.Reason, Detail: map[string]any{"host": d.Host, "port": d.Port, "method": d.Method, "action": d.Action,
					"image": d.Image, "digest": d.Digest, "category": d.Category, "rule": d.Rule, "gateway": d.Gateway}})
		}
	} else {
		for _, k := range q.Kinds {
			if k == KindDenial {
				return ActivityPage{}, errBadRequest("kind=denial cannot be combined with other kinds")
			}
		}
		as, err := s.store.ListActivity(ctx, store.ActivityFilter{Org: org, Kinds: q.Kinds, Actor: q.Actor,
			Since: q.Since, Until: q.Until, Before: q.Before, Limit: q.Limit})
		if err != nil {
			return ActivityPage{}, err
		}
		for _, a := range as {
			item := ActivityItem{ID: a.ID, Time: a.Time, Actor: a.Actor, Kind: a.Kind, Target: a.Target, Summary: a.Summary, Version: a.Version}
			if len(a.Diff) > 0 {
				item.Diff = a.Diff
			}
			page.Items = append(page.Items, item)
		}
	}
	if len(page.Items) == q.Limit {
		page.Next = strconv.FormatInt(page.Items[len(page.Items)-1].ID, 10)
	}
	return page, nil
}

// ParseActivityQuery reads ?kind=a,b&actor=&host=&since=&until=&before=&limit=.
func ParseActivityQuery(r *http.Request) (ActivityQuery, error) {
	v := r.URL.Query()
	var q ActivityQuery
	if k := v.Get("kind"); k != "" {
		q.Kinds = strings.Split(k, ",")
	}
	q.Actor = v.Get("actor")
	if q.Actor == "" {
		q.Actor = v.Get("user")
	}
	q.Host = v.Get("host")
	for _, tf := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(tf.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, errBadRequest(fmt.Sprintf("%s=%q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", tf.name, s))
			}
			*tf.dst = t
		}
	}
	for _, nf := range []struct {
		name string
		dst  *int64
	}{{"before", &q.Before}} {
		if s := v.Get(nf.name); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return q, errBadRequest(fmt.Sprintf("%s=%q is not a cursor from a previous page", nf.name, s))
			}
			*nf.dst = n
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return q, errBadRequest(fmt.Sprintf("limit=%q: use 1 to 500", s))
		}
		q.Limit = n
	}
	return q, nil
}

func (s *Server) handleActivity(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	q, err := ParseActivityQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	page, err := s.Activity(r.Context(), p, r.PathValue("org"), q)
	if err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
