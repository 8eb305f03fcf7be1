package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

const gatewayToken = "rw_gateway_token"

// fakeCP implements the control plane's gateway endpoints as the contract
// describes them: snapshot long-poll, authenticate, decisions.
type fakeCP struct {
	srv *httptest.Server

	mu        sync.Mutex
	orgs      map[string]*cpOrg
	changed   chan struct{} // closed and replaced at every apply
	users     map[string]cpUser
	decisions []store.DecisionRecord

	requests atomic.Int32 // every request received
	polls    atomic.Int32 // snapshot requests served
	waiting  atomic.Int32 // long-polls waiting now
	down     atomic.Bool  // answer 503 to everything
}

type cpOrg struct {
	version int64
	policy  policy.Policy
}

type cpUser struct {
	token, org, role string
}

func newFakeCP(t *testing.T) *fakeCP {
	cp := &fakeCP{orgs: map[string]*cpOrg{}, changed: make(chan struct{}), users: map[string]cpUser{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/orgs/{org}/snapshot", cp.snapshot)
	mux.HandleFunc("POST /api/v1/gateway/authenticate", cp.authenticate)
	mux.HandleFunc("POST /api/v1/gateway/decisions", cp.postDecisions)
	cp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cp.requests.Add(1)
		if cp.down.Load() {
			problem(w, http.StatusServiceUnavailable, "database unavailable")
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+gatewayToken {
			problem(w, http.StatusUnauthorized, "invalid token")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(cp.srv.Close)
	return cp
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}

// apply saves a policy for org allowing hosts, as Save & Apply does.
func (cp *fakeCP) apply(org string, hosts ...string) int64 {
	p := policy.Default(org)
	p.RegistryAccess.Registries = nil
	for _, h := range hosts {
		p.RegistryAccess.Registries = append(p.RegistryAccess.Registries, policy.Registry{Host: h})
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	o := cp.orgs[org]
	if o == nil {
		o = &cpOrg{}
		cp.orgs[org] = o
	}
	o.version++
	o.policy = p
	close(cp.changed)
	cp.changed = make(chan struct{})
	return o.version
}

func (cp *fakeCP) snapshot(w http.ResponseWriter, r *http.Request) {
	cp.polls.Add(1)
	org := r.PathValue("org")
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		cp.mu.Lock()
		o, ch := cp.orgs[org], cp.changed
		var ver int64
		var pol policy.Policy
		if o != nil {
			ver, pol = o.version, o.policy
		}
		cp.mu.Unlock()
		if o == nil {
			problem(w, http.StatusNotFound, "no organization "+org)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf("%q", strconv.FormatInt(ver, 10)))
		if ver > after {
			json.NewEncoder(w).Encode(map[string]any{"org": org, "version": ver, "policy": pol, "catalog": policy.Catalog{VerifiedPublishers: []string{"bitnami"}}})
			return
		}
		cp.waiting.Add(1)
		select {
		case <-ch:
			cp.waiting.Add(-1)
		case <-timer.C:
			cp.waiting.Add(-1)
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			cp.waiting.Add(-1)
			return
		}
	}
}

func (cp *fakeCP) authenticate(w http.ResponseWriter, r *http.Request) {
	var req struct{ Username, Token string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	cp.mu.Lock()
	u, ok := cp.users[req.Username]
	cp.mu.Unlock()
	if !ok || u.token != req.Token {
		problem(w, http.StatusUnauthorized, "invalid token")
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"username": req.Username, "org": u.org, "role": u.role})
}

func (cp *fakeCP) postDecisions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Decisions []store.DecisionRecord `json:"decisions"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(req.Decisions) > 5000 {
		problem(w, http.StatusBadRequest, "at most 5000 decisions per request")
		return
	}
	cp.mu.Lock()
	cp.decisions = append(cp.decisions, req.Decisions...)
	cp.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// deadURL is a URL where nothing listens.
func deadURL(t *testing.T) string {
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL
	s.Close()
	return u
}
