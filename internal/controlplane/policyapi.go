package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// ApplyResult is the outcome of a Save & Apply (or of its dry run).
type ApplyResult struct {
	Org     string          `json:"org"`
	Version int64           `json:"version"`
	Applied bool            `json:"applied"`
	Changes []policy.Change `json:"changes"`
	Policy  policy.Policy   `json:"policy"`
}

// ApplyPolicy validates p and, unless dryRun, makes it org's policy as one
// new version, with the change and its diff in the activity log in the same
// transaction. expect, when not 0, is the version the caller edited: a
// different current version is a 409 conflict.
func (s *Server) ApplyPolicy(ctx context.Context, who Principal, org string, p policy.Policy, expect int64, dryRun bool) (ApplyResult, error) {
	if !who.Owner(org) {
		return ApplyResult{}, errForbidden(fmt.Sprintf("only owners of organization %s can change its policy", org))
	}
	if p.Org == "" {
		p.Org = org
	}
	if p.Org != org {
		return ApplyResult{}, &policy.ValidationError{Errors: []policy.FieldError{{
			Field: "org", Message: fmt.Sprintf("the policy names organization %q, but it is being applied to %q", p.Org, org)}}}
	}
	if err := p.Validate(s.limits); err != nil {
		return ApplyResult{}, err
	}
	cur, err := s.store.GetPolicy(ctx, org)
	if err != nil {
		return ApplyResult{}, s.storeErr(err, "organization "+org)
	}
	if expect != 0 && expect != cur.Version {
		return ApplyResult{}, s.conflict(org, cur.Version)
	}
	changes := policy.Diff(cur.Policy, p)
	res := ApplyResult{Org: org, Version: cur.Version, Changes: changes, Policy: p}
	if res.Changes == nil {
		res.Changes = []policy.Change{}
	}
	if dryRun {
		return res, nil
	}
	diff, err := json.Marshal(res.Changes)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("encode policy diff: %w", err)
	}
	act := store.Activity{
		Org: org, Time: s.now(), Actor: who.Username, Kind: store.KindPolicyApply, Target: "policy",
		Summary: fmt.Sprintf("Save & Apply: %s", plural(len(changes), "change")), Diff: diff, Version: cur.Version + 1,
	}
	rec, err := s.store.ApplyPolicy(ctx, org, p, cur.Version, act)
	if errors.Is(err, store.ErrConflict) {
		s.metrics.applies.WithLabelValues("conflict").Inc()
		latest, gerr := s.store.GetPolicy(ctx, org)
		if gerr != nil {
			return ApplyResult{}, fmt.Errorf("read policy after conflict: %w", gerr)
		}
		return ApplyResult{}, s.conflict(org, latest.Version)
	}
	if err != nil {
		s.metrics.applies.WithLabelValues("error").Inc()
		return ApplyResult{}, fmt.Errorf("apply policy of org %q: %w", org, err)
	}
	s.metrics.applies.WithLabelValues("applied").Inc()
	s.hub.publish(org, rec.Version)
	s.log.Info("policy applied", "org", org, "user", who.Username, "version", rec.Version, "changes", len(changes))
	res.Version, res.Applied = rec.Version, true
	return res, nil
}

func (s *Server) conflict(org string, current int64) *Problem {
	p := errConflict(fmt.Sprintf("the policy of organization %s changed meanwhile (now version %d); reload it and apply your change again", org, current))
	p.Version = current
	return p
}

// storeErr turns store errors into API problems; what names the missing thing.
func (s *Server) storeErr(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNotFound(what + " not found")
	case errors.Is(err, store.ErrExists):
		return errConflict(what + " already exists")
	case errors.Is(err, store.ErrConflict):
		return errConflict(what + " changed meanwhile")
	}
	return err
}

// canRead: members of the org (any role) and gateway tokens read policies.
func canRead(p Principal, org string) bool {
	return p.Kind == store.TokenGateway || p.Org == org
}

func (s *Server) readable(r *http.Request) (Principal, string, error) {
	p, _ := principalFrom(r.Context())
	org := r.PathValue("org")
	if !canRead(p, org) {
		return p, org, errForbidden(fmt.Sprintf("your token is for organization %q, not %q", p.Org, org))
	}
	if s.hub.known(org) > 0 {
		return p, org, nil
	}
	if _, err := s.store.GetOrg(r.Context(), org); err != nil {
		return p, org, s.storeErr(err, "organization "+org)
	}
	return p, org, nil
}

func etag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// parseETag reads an If-Match / If-None-Match version.
func parseETag(h string) (int64, bool) {
	h = strings.TrimPrefix(strings.TrimSpace(h), "W/")
	v, err := strconv.ParseInt(strings.Trim(h, `"`), 10, 64)
	return v, err == nil && v > 0
}

// waitForVersion implements the long-poll: it returns as soon as this
// replica knows of a version of org above after (true), or when wait runs
// out (false). Waiting costs no database work: the hub learns of versions
// from local applies and, with PostgreSQL, from other replicas' NOTIFYs.
func (s *Server) waitForVersion(ctx context.Context, org string, after int64, wait time.Duration) (bool, error) {
	if wait > s.maxWait {
		wait = s.maxWait
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	s.metrics.longPolls.Inc()
	defer s.metrics.longPolls.Dec()
	if s.hub.known(org) == 0 {
		// Nothing learnt about this org yet: read its version once.
		if _, err := s.currentView(ctx, org); err != nil {
			return false, err
		}
	}
	for {
		ch := s.hub.watch(org)
		if s.hub.known(org) > after {
			return true, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// pollParams reads ?after=V&wait=DURATION. wait 0 means no long-poll.
func pollParams(r *http.Request) (after int64, wait time.Duration, err error) {
	q := r.URL.Query()
	if a := q.Get("after"); a != "" {
		after, err = strconv.ParseInt(a, 10, 64)
		if err != nil || after < 0 {
			return 0, 0, errBadRequest(fmt.Sprintf("after=%q is not a version number", a))
		}
	}
	if w := q.Get("wait"); w != "" {
		wait, err = time.ParseDuration(w)
		if err != nil || wait < 0 {
			if n, nerr := strconv.Atoi(w); nerr == nil && n >= 0 {
				return after, time.Duration(n) * time.Second, nil
			}
			return 0, 0, errBadRequest(fmt.Sprintf("wait=%q is not a duration such as 30s", w))
		}
	}
	return after, wait, nil
}

// currentOrWait serves the conditional GET and long-poll logic shared by
// /policy and /snapshot: a nil view means 304 was answered.
func (s *Server) currentOrWait(w http.ResponseWriter, r *http.Request, org string) (*orgView, error) {
	after, wait, err := pollParams(r)
	if err != nil {
		return nil, err
	}
	notModified := func(v int64) (*orgView, error) {
		w.Header().Set("ETag", etag(v))
		w.WriteHeader(http.StatusNotModified)
		return nil, nil
	}
	if wait > 0 {
		changed, err := s.waitForVersion(r.Context(), org, after, wait)
		if err != nil {
			return nil, s.storeErr(err, "organization "+org)
		}
		if !changed {
			return notModified(max(after, s.hub.known(org)))
		}
	} else if inm, ok := parseETag(r.Header.Get("If-None-Match")); ok && inm == s.hub.known(org) {
		// The hot path of gateways and agents polling without long-poll: a
		// matching ETag is answered from the version this replica follows,
		// without touching the database.
		return notModified(inm)
	}
	v, err := s.currentView(r.Context(), org)
	if err != nil {
		return nil, s.storeErr(err, "organization "+org)
	}
	if inm, ok := parseETag(r.Header.Get("If-None-Match")); ok && inm == v.version {
		return notModified(v.version)
	}
	if after > 0 && v.version <= after {
		return notModified(v.version)
	}
	return v, nil
}

// serveView answers GET /policy and GET /snapshot: readable check,
// conditional GET and long-poll, then the chosen encoding of the view.
func (s *Server) serveView(w http.ResponseWriter, r *http.Request, body func(*orgView) []byte) {
	_, org, err := s.readable(r)
	if err == nil {
		var v *orgView
		if v, err = s.currentOrWait(w, r, org); err == nil && v != nil {
			w.Header().Set("Regward-Policy-Version", strconv.FormatInt(v.version, 10))
			v.write(w, body(v))
		}
	}
	if err != nil {
		writeError(w, err)
	}
}

func (s *Server) handleGetPolicy(w http.ResponseWriter, r *http.Request) {
	s.serveView(w, r, func(v *orgView) []byte { return v.policy })
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	s.serveView(w, r, func(v *orgView) []byte { return v.snapshot })
}

func expectedVersion(r *http.Request) (int64, error) {
	h := r.Header.Get("If-Match")
	if h == "" || h == "*" {
		return 0, nil
	}
	v, ok := parseETag(h)
	if !ok {
		return 0, errBadRequest(fmt.Sprintf("If-Match %q is not a policy version such as \"7\"", h))
	}
	return v, nil
}

func dryRun(r *http.Request) bool {
	v := r.URL.Query().Get("dryRun")
	return v == "true" || v == "1"
}

func (s *Server) handlePutPolicy(w http.ResponseWriter, r *http.Request) {
	who, _ := principalFrom(r.Context())
	org := r.PathValue("org")
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	expect, err := expectedVersion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if !who.Owner(org) { // before decoding: members learn nothing from validation
		writeError(w, errForbidden(fmt.Sprintf("only owners of organization %s can change its policy", org)))
		return
	}
	p, err := policy.Decode(body)
	if err != nil {
		writeError(w, err)
		return
	}
	s.respondApply(w, r, who, org, p, expect)
}

func (s *Server) respondApply(w http.ResponseWriter, r *http.Request, who Principal, org string, p policy.Policy, expect int64) {
	res, err := s.ApplyPolicy(r.Context(), who, org, p, expect, dryRun(r))
	if err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	w.Header().Set("ETag", etag(res.Version))
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) logUnexpected(r *http.Request, err error) {
	var p *Problem
	var ve *policy.ValidationError
	if errors.As(err, &p) || errors.As(err, &ve) {
		return
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
}

func (s *Server) handleGetSection(w http.ResponseWriter, r *http.Request) {
	_, org, err := s.readable(r)
	if err != nil {
		writeError(w, err)
		return
	}
	rec, err := s.store.GetPolicy(r.Context(), org)
	if err != nil {
		writeError(w, s.storeErr(err, "organization "+org))
		return
	}
	w.Header().Set("ETag", etag(rec.Version))
	if strings.HasSuffix(r.URL.Path, "/registry-access") {
		writeJSON(w, http.StatusOK, rec.Policy.RegistryAccess)
		return
	}
	writeJSON(w, http.StatusOK, rec.Policy.ImageAccess)
}

func (s *Server) handlePutSection(w http.ResponseWriter, r *http.Request) {
	who, _ := principalFrom(r.Context())
	org := r.PathValue("org")
	if !who.Owner(org) {
		writeError(w, errForbidden(fmt.Sprintf("only owners of organization %s can change its policy", org)))
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	expect, err := expectedVersion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	cur, err := s.store.GetPolicy(r.Context(), org)
	if err != nil {
		writeError(w, s.storeErr(err, "organization "+org))
		return
	}
	if expect == 0 {
		expect = cur.Version // the section is merged into what was read here
	}
	p := cur.Policy
	if strings.HasSuffix(r.URL.Path, "/registry-access") {
		p.RegistryAccess, err = policy.DecodeRegistryAccess(body)
	} else {
		p.ImageAccess, err = policy.DecodeImageAccess(body)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.respondApply(w, r, who, org, p, expect)
}
