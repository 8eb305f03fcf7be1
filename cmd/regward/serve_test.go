package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regward/regward/internal/regwardtest"
)

func TestMain(m *testing.M) { regwardtest.Main(m) }

var passwordLine = regexp.MustCompile(`One-time password for admin: (\S+)`)

func TestServeFirstRunAndRestart(t *testing.T) {
	data := t.TempDir()
	listen, proxy := regwardtest.FreeAddr(t), regwardtest.FreeAddr(t)
	base := "http://" + listen
	args := []string{"serve", "--data", data, "--org", "acme", "--listen", listen, "--proxy-listen", proxy}
	env := []string{"REGWARD_ADMIN_PASSWORD="}
	p := regwardtest.Start(t, env, args...)
	p.WaitHTTP(t, base+"/healthz", 30*time.Second)

	out := p.Output()
	m := passwordLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("first run did not print a one-time password:\n%s", out)
	}
	if strings.Count(out, m[1]) != 1 {
		t.Fatalf("the one-time password appears %d times in the output, want once", strings.Count(out, m[1]))
	}
	fi, err := os.Stat(filepath.Join(data, "admin-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token: %v mode %v", err, fi.Mode())
	}
	tokenBytes, _ := os.ReadFile(filepath.Join(data, "admin-token"))
	token := strings.TrimSpace(string(tokenBytes))
	if strings.Contains(out, token) {
		t.Fatal("the admin token was printed")
	}

	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", err, resp)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "regward_api_requests_total") {
		t.Fatalf("metrics lack regward_api_requests_total")
	}

	// policy apply --dry-run shows the diff and changes nothing; apply applies.
	cli := []string{"REGWARD_SERVER=" + base, "REGWARD_TOKEN=" + token, "REGWARD_SESSION_FILE=" + filepath.Join(t.TempDir(), "none.json")}
	policyFile := filepath.Join("..", "..", "internal", "controlplane", "testdata", "design-policy.yaml")
	o, err := regwardtest.Run(t, cli, "", "policy", "apply", "-f", policyFile, "--dry-run")
	if err != nil || !strings.Contains(o, "ghcr.io") || !strings.Contains(o, "dry run: nothing applied") {
		t.Fatalf("policy apply --dry-run: %v\n%s", err, o)
	}
	o, err = regwardtest.Run(t, cli, "", "policy", "get", "-o", "json")
	if err != nil || strings.Contains(o, "ghcr.io") {
		t.Fatalf("dry run changed the policy: %v\n%s", err, o)
	}
	o, err = regwardtest.Run(t, cli, "", "policy", "apply", "-f", policyFile)
	if err != nil || !strings.Contains(o, "version 2") {
		t.Fatalf("policy apply: %v\n%s", err, o)
	}
	o, err = regwardtest.Run(t, cli, "", "policy", "get")
	if err != nil || !strings.Contains(o, "host: ghcr.io") || !strings.Contains(o, "version 2") {
		t.Fatalf("policy get: %v\n%s", err, o)
	}
	// A bad file is refused locally, naming the field.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("org: acme\nregistryAccess:\n  enabled: true\n  registries:\n    - host: \"not a host!\"\nimageAccess:\n  enabled: false\n  officialImages: allowed\n  verifiedPublisherImages: allowed\n  sponsoredOSSImages: allowed\n  communityImages: allowed\n  orgNamespaces: []\n  repositoryAllowlist: []\n"), 0o600)
	o, err = regwardtest.Run(t, cli, "", "policy", "apply", "-f", bad)
	if err == nil || !strings.Contains(o, "registryAccess.registries[0].host") {
		t.Fatalf("bad policy: %v\n%s", err, o)
	}

	// SIGTERM: graceful exit 0.
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(20 * time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}

	// Restart on the same data: no new password, same token works.
	p2 := regwardtest.Start(t, env, args...)
	p2.WaitHTTP(t, base+"/healthz", 30*time.Second)
	if strings.Contains(p2.Output(), "One-time password") {
		t.Fatal("second start printed a new password")
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", base+"/api/v1/orgs/acme/policy", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("after restart: %v %v", err, resp)
	}
	resp.Body.Close()
	_ = p2.Signal(syscall.SIGINT)
	if err := p2.Wait(20 * time.Second); err != nil {
		t.Fatalf("after SIGINT: %v", err)
	}
}

func TestConfigFileUnknownKey(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "regward.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nlisten-adress: nope\n"), 0o600)
	o, err := regwardtest.Run(t, nil, "", "serve", "--config", cfg, "--data", t.TempDir())
	if err == nil || !strings.Contains(o, `unknown key "listen-adress"`) {
		t.Fatalf("unknown config key: %v\n%s", err, o)
	}
}
