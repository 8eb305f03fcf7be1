package controlplane_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
	"github.com/regward/regward/internal/store/sqlite"
)

// previewEnv is a control plane on SQLite with org acme (owner admin) and a
// member alice, for the preview tests.
type previewEnv struct {
	t      *testing.T
	url    string
	cp     *controlplane.Server
	st     store.Store
	admin  string
	member string
}

func newPreviewEnv(t *testing.T) *previewEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "regward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cp, err := controlplane.New(controlplane.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	fr, err := controlplane.Bootstrap(ctx, st, cp, "acme", "preview-admin-password")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cp.Handler())
	t.Cleanup(srv.Close)
	owner := controlplane.Principal{Username: "admin", Org: "acme", Role: store.RoleOwner, Kind: store.TokenPersonal}
	if _, err := cp.AddMember(ctx, owner, "acme", "alice", store.RoleMember, "alice-password-1234"); err != nil {
		t.Fatal(err)
	}
	tok, err := cp.IssueToken(ctx, "alice", "alice", "acme", store.TokenPersonal, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return &previewEnv{t: t, url: srv.URL, cp: cp, st: st, admin: fr.Token, member: tok.Token}
}

func (e *previewEnv) preview(token, org string, draft any) (int, []byte) {
	e.t.Helper()
	var body []byte
	switch d := draft.(type) {
	case string:
		body = []byte(d)
	default:
		var err error
		if body, err = json.Marshal(d); err != nil {
			e.t.Fatal(err)
		}
	}
	req, err := http.NewRequest("POST", e.url+"/api/v1/orgs/"+org+"/policy:preview", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// strictDraft: only ghcr.io and Docker Hub; community images restricted.
func strictDraft() policy.Policy {
	p := policy.Default("acme")
	p.RegistryAccess.Registries = []policy.Registry{{Host: policy.DockerHubGroup}, {Host: "ghcr.io"}}
	p.ImageAccess.Enabled = true
	p.ImageAccess.CommunityImages = policy.Restricted
	return p
}

func TestPreviewReportsWhatADraftWouldDeny(t *testing.T) {
	e := newPreviewEnv(t)
	now := time.Now()
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	rec := func(when time.Time, org, user, host, image, action string, allowed bool) store.DecisionRecord {
		return store.DecisionRecord{Time: when, Org: org, User: user, Host: host, Port: 443, Action: action,
			Image: image, Rule: "registryAccess.enabled", Allowed: allowed}
	}
	ds := []store.DecisionRecord{
		// Still allowed by the draft.
		rec(ago(time.Hour), "acme", "alice", "ghcr.io", "ghcr.io/acme/app:1", "pull", true),
		rec(ago(time.Hour), "acme", "alice", "registry-1.docker.io", "docker.io/library/alpine:3", "pull", true),
		rec(ago(time.Hour), "acme", "admin", "registry-1.docker.io", "docker.io/someone/tool", "pull", true), // owner bypass
		// Denied by the draft: another registry, a community image, a push.
		rec(ago(2*time.Hour), "acme", "bob", "quay.io", "quay.io/prometheus/node-exporter:v1", "pull", true),
		rec(ago(3*time.Hour), "acme", "bob", "quay.io", "quay.io/prometheus/node-exporter@sha256:"+strings.Repeat("a", 64), "pull", true),
		rec(ago(4*time.Hour), "acme", "alice", "registry-1.docker.io", "docker.io/someone/tool:latest", "pull", true),
		rec(ago(5*time.Hour), "acme", "", "quay.io", "", "", true), // anonymous tunnel
		rec(ago(6*time.Hour), "acme", "carol", "registry.corp.example", "registry.corp.example:5000/team/app", "push", true),
		// Not counted: denied already, too old, another org.
		rec(ago(time.Hour), "acme", "dave", "evil.example", "", "", false),
		rec(ago(8*24*time.Hour), "acme", "erin", "quay.io", "quay.io/old/image", "pull", true),
		rec(ago(time.Hour), "other", "frank", "quay.io", "quay.io/x/y", "pull", true),
	}
	ds[7].Port = 5000
	if err := e.st.AppendDecisions(context.Background(), ds); err != nil {
		t.Fatal(err)
	}

	code, body := e.preview(e.member, "acme", strictDraft()) // members may preview
	if code != http.StatusOK {
		t.Fatalf("preview: %d %s", code, body)
	}
	var got controlplane.PreviewResult
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Examined != 8 || got.Denied != 5 || got.Pulls != 4 || got.Pushes != 1 || got.Users != 3 || got.Anonymous != 1 {
		t.Errorf("counts: examined %d denied %d pulls %d pushes %d users %d anonymous %d; want 8 5 4 1 3 1",
			got.Examined, got.Denied, got.Pulls, got.Pushes, got.Users, got.Anonymous)
	}
	wantHosts := []controlplane.PreviewCount{{Name: "quay.io", Count: 3}, {Name: "registry-1.docker.io", Count: 1}, {Name: "registry.corp.example:5000", Count: 1}}
	if d := cmp.Diff(wantHosts, got.TopHosts); d != "" {
		t.Errorf("top hosts (-want +got):\n%s", d)
	}
	wantImages := []controlplane.PreviewCount{
		{Name: "quay.io/prometheus/node-exporter", Count: 2},
		{Name: "docker.io/someone/tool", Count: 1},
		{Name: "registry.corp.example:5000/team/app", Count: 1},
	}
	if d := cmp.Diff(wantImages, got.TopImages); d != "" {
		t.Errorf("top images (-want +got):\n%s", d)
	}
	if len(got.Samples) != 5 {
		t.Errorf("samples: %+v", got.Samples)
	}
	var community *controlplane.PreviewSample
	for i := range got.Samples {
		if got.Samples[i].Image == "docker.io/someone/tool:latest" {
			community = &got.Samples[i]
		}
	}
	if community == nil || community.Rule != "imageAccess.communityImages" || !strings.Contains(community.Reason, "community image") {
		t.Errorf("the community image sample does not name its rule: %+v", community)
	}
	want := "This change would have denied 4 pulls and 1 push by 3 users and anonymous clients in the last 7 days."
	if got.Summary != want {
		t.Errorf("summary:\n got %q\nwant %q", got.Summary, want)
	}

	// The current policy is not changed by a preview.
	rec1, err := e.st.GetPolicy(context.Background(), "acme")
	if err != nil || rec1.Version != 1 {
		t.Fatalf("policy after preview: version %d, %v", rec1.Version, err)
	}
}

func TestPreviewWithNothingDenied(t *testing.T) {
	e := newPreviewEnv(t)
	code, body := e.preview(e.admin, "acme", policy.Default("acme"))
	if code != http.StatusOK || !strings.Contains(string(body), "No allowed requests were recorded") {
		t.Fatalf("empty log: %d %s", code, body)
	}
	err := e.st.AppendDecisions(context.Background(), []store.DecisionRecord{
		{Time: time.Now(), Org: "acme", User: "alice", Host: "registry-1.docker.io", Image: "docker.io/library/nginx", Action: "pull", Rule: "x", Allowed: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	code, body = e.preview(e.admin, "acme", policy.Default("acme"))
	var got controlplane.PreviewResult
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Denied != 0 || got.Examined != 1 {
		t.Fatalf("nothing denied: %d %s", code, body)
	}
	if got.Summary != "This change would not have denied any of the 1 request allowed in the last 7 days." {
		t.Errorf("summary %q", got.Summary)
	}
}

func TestPreviewPagesThroughTheLog(t *testing.T) {
	e := newPreviewEnv(t)
	const n = 2500 // more than two pages of the decision log
	ds := make([]store.DecisionRecord, n)
	for i := range ds {
		ds[i] = store.DecisionRecord{Time: time.Now().Add(-time.Duration(i) * time.Second), Org: "acme",
			User: fmt.Sprintf("u%d", i%7), Host: "quay.io", Image: fmt.Sprintf("quay.io/ns/img%d", i%3), Action: "pull", Rule: "x", Allowed: true}
	}
	if err := e.st.AppendDecisions(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	code, body := e.preview(e.admin, "acme", strictDraft())
	var got controlplane.PreviewResult
	if code != http.StatusOK || json.Unmarshal(body, &got) != nil {
		t.Fatalf("preview: %d %s", code, body)
	}
	if got.Examined != n || got.Denied != n || got.Users != 7 || len(got.TopImages) != 3 || got.Truncated {
		t.Fatalf("examined %d denied %d users %d images %v truncated %v", got.Examined, got.Denied, got.Users, got.TopImages, got.Truncated)
	}
}

func TestPreviewRefusals(t *testing.T) {
	e := newPreviewEnv(t)
	for _, tc := range []struct {
		name, token, org string
		draft            any
		code             int
		want             string
	}{
		{"another org", e.member, "other", strictDraft(), http.StatusForbidden, `not \"other\"`},
		{"invalid host", e.admin, "acme", strings.Replace(mustJSON(t, strictDraft()), `"ghcr.io"`, `"not a host!"`, 1),
			http.StatusUnprocessableEntity, "registryAccess.registries[1].host"},
		{"unknown field", e.admin, "acme", strings.Replace(mustJSON(t, strictDraft()), `"org":"acme"`, `"org":"acme","extra":1`, 1),
			http.StatusUnprocessableEntity, "extra"},
		{"org mismatch", e.admin, "acme", strings.Replace(mustJSON(t, strictDraft()), `"org":"acme"`, `"org":"beta"`, 1),
			http.StatusUnprocessableEntity, "previewed for"},
		{"no token", "", "acme", strictDraft(), http.StatusUnauthorized, "access token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.preview(tc.token, tc.org, tc.draft)
			if code != tc.code || !strings.Contains(string(body), tc.want) {
				t.Fatalf("%d %s; want %d mentioning %q", code, body, tc.code, tc.want)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
