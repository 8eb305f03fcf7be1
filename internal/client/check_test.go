package client

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/policy"
)

// closedServer is a URL nothing listens on: the control plane is down.
func closedServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func testPolicy() policy.Policy {
	p := policy.Default("acme")
	p.RegistryAccess.Enabled = true
	p.RegistryAccess.Registries = []policy.Registry{{Host: policy.DockerHubGroup}, {Host: "ghcr.io"}}
	p.ImageAccess = policy.ImageAccess{
		Enabled: true, OfficialImages: policy.Allowed, VerifiedPublisherImages: policy.Allowed,
		SponsoredOSSImages: policy.Restricted, CommunityImages: policy.Restricted,
		OrgNamespaces: []string{"acme"}, RepositoryAllowlist: []string{"bitnami/redis"},
	}
	return p
}

func TestCheckFallsBackToTheCache(t *testing.T) {
	server := closedServer(t)
	cache := SnapshotCache{Root: t.TempDir()}
	fetched := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := cache.Save(server, CachedSnapshot{FetchedAt: fetched, Snapshot: Snapshot{Org: "acme", Version: 7, Policy: testPolicy()}}); err != nil {
		t.Fatal(err)
	}
	api := &API{Server: server, Token: "rw_x"}
	images := []string{"alpine:3.20", "quay.io/a/b:1", "someone/tool", "acme/app", "bitnami/redis", "Bad Ref"}
	rep, err := Check(context.Background(), api, "acme", CheckOptions{Images: images, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != "cache" || rep.CacheVer != 7 || !strings.Contains(rep.Fallback, "did not answer") {
		t.Fatalf("report: source %q version %d fallback %q", rep.Source, rep.CacheVer, rep.Fallback)
	}
	type want struct {
		allowed bool
		rule    string
	}
	wants := []want{
		{true, "imageAccess.officialImages"},
		{false, "registryAccess"},
		{false, "imageAccess.communityImages"},
		{true, "imageAccess.orgNamespaces"},
		{true, "imageAccess.repositoryAllowlist"},
	}
	for i, w := range wants {
		r := rep.Outcomes[i].Result
		if r == nil || r.Allowed != w.allowed || r.Rule != w.rule {
			t.Errorf("%s: %+v (%s), want allowed=%t rule %s", images[i], r, rep.Outcomes[i].Err, w.allowed, w.rule)
		}
	}
	if rep.Outcomes[5].Err == "" {
		t.Errorf("a malformed reference was decided: %+v", rep.Outcomes[5])
	}
	if rep.ExitCode() != 2 {
		t.Errorf("exit code %d, want 2 (an error)", rep.ExitCode())
	}

	// An owner bypasses image rules, not registry rules.
	rep, err = Check(context.Background(), api, "acme", CheckOptions{Images: []string{"someone/tool", "quay.io/a/b"}, Owner: true, Offline: true, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Outcomes[0].Result; !r.Allowed || r.Rule != "ownerBypass" {
		t.Errorf("owner, community image: %+v", r)
	}
	if r := rep.Outcomes[1].Result; r.Allowed {
		t.Errorf("owner, unlisted registry: %+v", r)
	}
	if rep.ExitCode() != 1 || rep.Fallback != "--offline" {
		t.Errorf("exit code %d fallback %q", rep.ExitCode(), rep.Fallback)
	}

	var out bytes.Buffer
	rep.Render(&out, fetched.Add(90*time.Minute))
	for _, s := range []string{
		"--offline: decided with the cached policy of organization acme (version 7, fetched 2026-01-02T03:04:05Z, 1h30m ago)",
		"docker.io/someone/tool: allowed\n  category: community\n  rule:     ownerBypass\n",
		"quay.io/a/b: denied\n  rule:     registryAccess\n",
		"1 allowed, 1 denied",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("rendering lacks %q:\n%s", s, out.String())
		}
	}
}

func TestCheckWithoutServerOrCache(t *testing.T) {
	api := &API{Server: closedServer(t), Token: "rw_x"}
	_, err := Check(context.Background(), api, "acme", CheckOptions{Images: []string{"alpine"}, Cache: SnapshotCache{Root: t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "no policy of organization acme is cached") {
		t.Errorf("err = %v", err)
	}
	_, err = Check(context.Background(), api, "acme", CheckOptions{Images: []string{"alpine"}, User: "bob", Cache: SnapshotCache{Root: t.TempDir()}})
	if err == nil || !strings.Contains(err.Error(), "another user needs the server") {
		t.Errorf("err = %v", err)
	}
	_, err = Check(context.Background(), api, "acme", CheckOptions{Images: []string{"alpine"}, Action: "steal"})
	if err == nil || !strings.Contains(err.Error(), `--action "steal"`) {
		t.Errorf("err = %v", err)
	}
}

func TestSnapshotCache(t *testing.T) {
	c := SnapshotCache{Root: t.TempDir()}
	const a, b = "http://127.0.0.1:8080", "https://regward.example.com"
	snap := func(v int64) CachedSnapshot {
		return CachedSnapshot{FetchedAt: time.Now(), Snapshot: Snapshot{Org: "acme", Version: v, Policy: testPolicy()}}
	}
	if err := c.Save(a, snap(3)); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(b, snap(9)); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Load(a, "acme"); err != nil || got.Snapshot.Version != 3 {
		t.Errorf("server a: %v %v", got.Snapshot.Version, err)
	}
	if got, err := c.Load(b, "acme"); err != nil || got.Snapshot.Version != 9 {
		t.Errorf("server b: %v %v", got.Snapshot.Version, err)
	}
	dir, _ := c.Dir(a, "acme")
	fi, err := os.Stat(filepath.Join(dir, "acme.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file: %v %v", err, fi)
	}
	if _, err := c.Load(a, "beta"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing org: %v", err)
	}
	if _, err := c.Load(a, "../etc"); err == nil {
		t.Error("a path as org name accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "acme.json"), []byte(`{"fetchedAt":"2026-01-01T00:00:00Z","snapshot":{"org":"beta","version":1}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(a, "acme"); err == nil || !strings.Contains(err.Error(), "not a snapshot of organization acme") {
		t.Errorf("a file of another org: %v", err)
	}
	if err := c.Remove(a, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(a, "acme"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: %v", err)
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                 "0s",
		42 * time.Second:             "42s",
		12*time.Minute + time.Second: "12m",
		3 * time.Hour:                "3h",
		3*time.Hour + 5*time.Minute:  "3h5m",
		50 * time.Hour:               "2d2h",
		48 * time.Hour:               "2d",
	} {
		if got := Age(d); got != want {
			t.Errorf("Age(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestReadPasswordStdin(t *testing.T) {
	for in, want := range map[string]string{
		"pw\n":        "pw",
		"pw\r\n":      "pw",
		"pw":          "pw",
		"pw\nignored": "pw",
		" sp ace \n":  " sp ace ",
	} {
		if got, err := ReadPasswordStdin(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "\n", strings.Repeat("x", 4097)} {
		if _, err := ReadPasswordStdin(strings.NewReader(in)); err == nil {
			t.Errorf("%.20q accepted", in)
		}
	}
}

func TestCheckServerURL(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "https://regward.example.com", "http://localhost:8080", "http://[::1]:8080"} {
		if w, err := checkServerURL(ok); err != nil || w != "" {
			t.Errorf("%s: warning %q, %v", ok, w, err)
		}
	}
	if w, err := checkServerURL("http://regward.example.com"); err != nil || !strings.Contains(w, "in clear") {
		t.Errorf("plain HTTP off loopback: %q, %v", w, err)
	}
	for _, bad := range []string{"regward.example.com", "ftp://x", "https://u:p@x", "https://x?y=1", "http://"} {
		if _, err := checkServerURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
