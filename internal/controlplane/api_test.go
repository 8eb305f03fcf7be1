package controlplane_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
	"github.com/regward/regward/internal/store/sqlite"
)

const adminPassword = "correct-horse-battery-staple"

type env struct {
	t     *testing.T
	srv   *httptest.Server
	cp    *controlplane.Server
	st    store.Store
	admin string // owner token of acme
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "regward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cp, err := controlplane.New(controlplane.Options{Store: st, MaxWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fr, err := controlplane.Bootstrap(ctx, st, cp, "acme", adminPassword)
	if err != nil || !fr.Created || fr.Token == "" {
		t.Fatalf("bootstrap: %+v, %v", fr, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	go cp.Run(runCtx)
	srv := httptest.NewServer(cp.Handler())
	t.Cleanup(func() { srv.Close(); cancel() })
	return &env{t: t, srv: srv, cp: cp, st: st, admin: fr.Token}
}

// call sends a request and returns status, headers and body.
func (e *env) call(method, path, token string, body any, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

func (e *env) token(user, password, org string) string {
	e.t.Helper()
	code, _, body := e.call("POST", "/api/v1/tokens", "", map[string]string{"org": org},
		"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	if code != http.StatusCreated {
		e.t.Fatalf("token for %s: %d %s", user, code, body)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal(body, &tok); err != nil || !strings.HasPrefix(tok.Token, "rw_") {
		e.t.Fatalf("token answer %s: %v", body, err)
	}
	return tok.Token
}

func (e *env) addMember(user, role string) string {
	e.t.Helper()
	pw := user + "-password-1234"
	code, _, body := e.call("POST", "/api/v1/orgs/acme/members", e.admin, map[string]string{"username": user, "role": role, "password": pw})
	if code != http.StatusCreated {
		e.t.Fatalf("add member %s: %d %s", user, code, body)
	}
	return e.token(user, pw, "acme")
}

func designPolicy(t *testing.T) []byte {
	data, err := os.ReadFile("testdata/design-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestSaveAndApplyRoundTrip(t *testing.T) {
	e := newEnv(t)
	yml := designPolicy(t)
	want, err := policy.Decode(yml)
	if err != nil {
		t.Fatalf("the DESIGN.md example does not decode: %v", err)
	}
	jsonBody, _ := json.Marshal(want)
	code, hdr, body := e.call("PUT", "/api/v1/orgs/acme/policy", e.admin, jsonBody)
	if code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	var res controlplane.ApplyResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || !res.Applied || hdr.Get("ETag") != `"2"` || len(res.Changes) == 0 {
		t.Fatalf("PUT answer: version %d applied %v etag %q changes %d", res.Version, res.Applied, hdr.Get("ETag"), len(res.Changes))
	}
	code, hdr, body = e.call("GET", "/api/v1/orgs/acme/policy", e.admin, nil)
	if code != http.StatusOK || hdr.Get("ETag") != `"2"` {
		t.Fatalf("GET: %d etag %q %s", code, hdr.Get("ETag"), body)
	}
	got, err := policy.Decode(body)
	if err != nil {
		t.Fatalf("GET body does not decode strictly: %v\n%s", err, body)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("GET differs from PUT (-put +get):\n%s", d)
	}
	// A conditional GET with the current ETag is a 304.
	code, _, _ = e.call("GET", "/api/v1/orgs/acme/policy", e.admin, nil, "If-None-Match", `"2"`)
	if code != http.StatusNotModified {
		t.Fatalf("conditional GET: %d, want 304", code)
	}
	// The YAML file itself is accepted too (policy apply sends JSON, curl users may not).
	code, _, body = e.call("PUT", "/api/v1/orgs/acme/policy", e.admin, yml)
	if code != http.StatusOK {
		t.Fatalf("PUT YAML: %d %s", code, body)
	}
}

func TestInvalidPolicyNamesEveryField(t *testing.T) {
	e := newEnv(t)
	bad := `{"org":"acme",
	 "registryAccess":{"enabled":true,"registries":[{"host":"ghcr.io"},{"host":"not a host!"},{"host":"docker.io/library"},{"host":"ok.example","access":"write"}]},
	 "imageAccess":{"enabled":true,"officialImages":"allowed","verifiedPublisherImages":"maybe","sponsoredOSSImages":"allowed","communityImages":"restricted","orgNamespaces":[],"repositoryAllowlist":[]},
	 "namespaceAccess":{"pushOnlyToOrgNamespaces":false}}`
	code, hdr, body := e.call("PUT", "/api/v1/orgs/acme/policy", e.admin, bad)
	if code != http.StatusUnprocessableEntity || !strings.HasPrefix(hdr.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("PUT invalid: %d %s %s", code, hdr.Get("Content-Type"), body)
	}
	var p struct {
		Errors []policy.FieldError `json:"errors"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	fields := map[string]bool{}
	for _, fe := range p.Errors {
		fields[fe.Field] = true
	}
	for _, f := range []string{
		"registryAccess.registries[1].host", "registryAccess.registries[2].host",
		"registryAccess.registries[3].access", "imageAccess.verifiedPublisherImages",
	} {
		if !fields[f] {
			t.Errorf("422 does not name %s; errors: %s", f, body)
		}
	}
	// Nothing was applied.
	_, hdr, _ = e.call("GET", "/api/v1/orgs/acme/policy", e.admin, nil)
	if hdr.Get("ETag") != `"1"` {
		t.Fatalf("invalid policy changed the version: ETag %s", hdr.Get("ETag"))
	}
	// Unknown fields are named too.
	code, _, body = e.call("PUT", "/api/v1/orgs/acme/policy", e.admin, strings.Replace(bad, `"org":"acme",`, `"org":"acme","registryAcess":{},`, 1))
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "registryAcess") {
		t.Fatalf("unknown field: %d %s", code, body)
	}
}

func TestActivityShowsTheDiff(t *testing.T) {
	e := newEnv(t)
	code, _, body := e.call("PUT", "/api/v1/orgs/acme/policy", e.admin, designPolicy(t))
	if code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	code, _, body = e.call("GET", "/api/v1/orgs/acme/activity?kind=policy.apply", e.admin, nil)
	if code != http.StatusOK {
		t.Fatalf("activity: %d %s", code, body)
	}
	var page controlplane.ActivityPage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Fatalf("want 1 policy.apply entry, got %d: %s", len(page.Items), body)
	}
	it := page.Items[0]
	if it.Actor != "admin" || it.Version != 2 || it.Diff == nil || !strings.Contains(string(body), "ghcr.io") {
		t.Fatalf("activity entry lacks actor, version or diff: %s", body)
	}
	// Paging: limit 1 over all kinds gives a cursor that leads further back.
	code, _, body = e.call("GET", "/api/v1/orgs/acme/activity?limit=1", e.admin, nil)
	if err := json.Unmarshal(body, &page); err != nil || code != 200 || page.Next == "" {
		t.Fatalf("first page: %d %s", code, body)
	}
	first := page.Items[0].ID
	code, _, body = e.call("GET", "/api/v1/orgs/acme/activity?limit=1&before="+page.Next, e.admin, nil)
	if err := json.Unmarshal(body, &page); err != nil || code != 200 || len(page.Items) != 1 || page.Items[0].ID >= first {
		t.Fatalf("second page: %d %s", code, body)
	}
	code, _, body = e.call("GET", "/api/v1/orgs/acme/activity?since=yesterday", e.admin, nil)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "since") {
		t.Fatalf("bad since: %d %s", code, body)
	}
}

func TestMembersReadOwnersWrite(t *testing.T) {
	e := newEnv(t)
	alice := e.addMember("alice", "member")
	code, _, _ := e.call("GET", "/api/v1/orgs/acme/policy", alice, nil)
	if code != http.StatusOK {
		t.Fatalf("member GET policy: %d", code)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/api/v1/orgs/acme/policy", string(designPolicy(t))},
		{"PUT", "/api/v1/orgs/acme/registry-access", `{"enabled":false,"registries":[]}`},
		{"POST", "/api/v1/orgs/acme/members", `{"username":"mallory","role":"owner"}`},
		{"PATCH", "/api/v1/orgs/acme/members/alice", `{"role":"owner"}`},
		{"DELETE", "/api/v1/orgs/acme/members/admin", ``},
		{"PUT", "/api/v1/orgs/acme/catalog/verified-publishers", `{"namespaces":["x"]}`},
	} {
		code, _, body := e.call(tc.method, tc.path, alice, tc.body)
		if code != http.StatusForbidden {
			t.Errorf("member %s %s: %d %s, want 403", tc.method, tc.path, code, body)
		}
	}
	// Another org's policy is out of reach.
	code, _, _ = e.call("GET", "/api/v1/orgs/other/policy", alice, nil)
	if code != http.StatusForbidden {
		t.Fatalf("member GET other org: %d", code)
	}
	// No token, bad token.
	code, hdr, _ := e.call("GET", "/api/v1/orgs/acme/policy", "", nil)
	if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d", code)
	}
	code, _, _ = e.call("GET", "/api/v1/orgs/acme/policy", alice[:len(alice)-1]+"x", nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("tampered token: %d", code)
	}
}

func TestLongPollWakesOnApply(t *testing.T) {
	e := newEnv(t)
	type result struct {
		code int
		ver  string
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		code, hdr, _ := e.call("GET", "/api/v1/orgs/acme/snapshot?after=1&wait=30s", e.admin, nil)
		done <- result{code, hdr.Get("ETag"), time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond) // let the poll start waiting
	applied := time.Now()
	code, _, body := e.call("PUT", "/api/v1/orgs/acme/policy", e.admin, designPolicy(t))
	if code != http.StatusOK {
		t.Fatalf("PUT: %d %s", code, body)
	}
	select {
	case r := <-done:
		if r.code != http.StatusOK || r.ver != `"2"` {
			t.Fatalf("long-poll: %d etag %s", r.code, r.ver)
		}
		if lag := time.Since(applied); lag > time.Second {
			t.Fatalf("long-poll answered %v after the apply, want under 1 s", lag)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll did not wake on apply")
	}
	// Nothing newer: 304 when wait runs out.
	code, _, _ = e.call("GET", "/api/v1/orgs/acme/policy?after=2&wait=300ms", e.admin, nil)
	if code != http.StatusNotModified {
		t.Fatalf("idle long-poll: %d, want 304", code)
	}
}

func TestConcurrentApplyOneWins(t *testing.T) {
	e := newEnv(t)
	body := designPolicy(t)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = e.call("PUT", "/api/v1/orgs/acme/policy", e.admin, body, "If-Match", `"1"`)
		}()
	}
	wg.Wait()
	won, lost := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			won++
		case http.StatusConflict:
			lost++
		default:
			t.Errorf("unexpected status %d", c)
		}
	}
	if won != 1 || lost != len(codes)-1 {
		t.Fatalf("won %d lost %d, want exactly one winner", won, lost)
	}
	_, _, act := e.call("GET", "/api/v1/orgs/acme/activity?kind=policy.apply", e.admin, nil)
	if n := strings.Count(string(act), `"kind": "policy.apply"`); n != 1 {
		t.Fatalf("activity has %d policy.apply entries, want 1", n)
	}
}

func TestSignInRateLimited(t *testing.T) {
	e := newEnv(t)
	var last int
	for i := 0; i < 12; i++ {
		last, _, _ = e.call("POST", "/api/v1/tokens", "", `{"org":"acme"}`,
			"Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:wrong-password-xx")))
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("12th bad attempt: %d, want 429", last)
	}
	_, _, act := e.call("GET", "/api/v1/orgs/acme/activity?kind=signin.failed", e.admin, nil)
	if !strings.Contains(string(act), "signin.failed") {
		t.Fatalf("failed sign-ins not on record: %s", act)
	}
}

func TestRevokedTokenRefused(t *testing.T) {
	e := newEnv(t)
	bob := e.addMember("bob", "member")
	var who struct{ TokenID string }
	_, _, body := e.call("GET", "/api/v1/whoami", bob, nil)
	_ = json.Unmarshal(body, &who)
	code, _, _ := e.call("DELETE", "/api/v1/tokens/"+who.TokenID, bob, nil)
	if code != http.StatusNoContent {
		t.Fatalf("revoke own token: %d", code)
	}
	code, _, _ = e.call("GET", "/api/v1/orgs/acme/policy", bob, nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("revoked token: %d, want 401", code)
	}
}

func TestCheckExplainsDecisions(t *testing.T) {
	e := newEnv(t)
	if code, _, body := e.call("PUT", "/api/v1/orgs/acme/policy", e.admin, designPolicy(t)); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	e.addMember("alice", "member")
	for _, tc := range []struct {
		image, user, action string
		allowed             bool
		rule, category      string
	}{
		{"alpine", "alice", "", true, "imageAccess.officialImages", "official"},
		{"someone/tool", "alice", "", false, "imageAccess.communityImages", "community"},
		{"someone/tool", "admin", "", true, "ownerBypass", "community"},
		{"acme/app", "alice", "", true, "imageAccess.orgNamespaces", "org"},
		{"bitnami/redis", "alice", "", true, "imageAccess.repositoryAllowlist", ""},
		{"quay.io/a/b", "alice", "", false, "registryAccess", ""},
		{"registry.corp.example:5000/team/app", "alice", "push", false, "registryAccess.registries[3].access", ""},
	} {
		code, _, body := e.call("POST", "/api/v1/orgs/acme/check", e.admin, map[string]string{"image": tc.image, "user": tc.user, "action": tc.action})
		if code != http.StatusOK {
			t.Errorf("check %s: %d %s", tc.image, code, body)
			continue
		}
		var d controlplane.CheckResult
		_ = json.Unmarshal(body, &d)
		if d.Allowed != tc.allowed || d.Rule != tc.rule || (tc.category != "" && string(d.Category) != tc.category) || d.Reason == "" {
			t.Errorf("check %s as %s: %+v", tc.image, tc.user, d)
		}
	}
	code, _, body := e.call("POST", "/api/v1/orgs/acme/check", e.admin, `{"image":"Not A Ref!"}`)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "Not A Ref!") {
		t.Fatalf("malformed reference: %d %s", code, body)
	}
}

func TestLastOwnerStays(t *testing.T) {
	e := newEnv(t)
	code, _, body := e.call("DELETE", "/api/v1/orgs/acme/members/admin", e.admin, nil)
	if code != http.StatusConflict || !strings.Contains(string(body), "last owner") {
		t.Fatalf("removing the last owner: %d %s", code, body)
	}
}

func TestRegistryJSON(t *testing.T) {
	e := newEnv(t)
	code, _, body := e.call("GET", "/api/v1/orgs/acme/registry.json", e.admin, nil)
	var rj controlplane.RegistryJSON
	if err := json.Unmarshal(body, &rj); err != nil || code != 200 || len(rj.AllowedOrgs) != 1 || rj.AllowedOrgs[0] != "acme" {
		t.Fatalf("registry.json: %d %s", code, body)
	}
}
