package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is regward built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regward-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "regward")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build regward:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running regward with its output captured.
type proc struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
	wg  sync.WaitGroup
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

type lockedWriter struct{ p *proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = lockedWriter{p}
	p.cmd.Stderr = lockedWriter{p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_, _ = p.cmd.Process.Wait()
		}
		if t.Failed() {
			t.Logf("regward %s output:\n%s", strings.Join(args, " "), p.output())
		}
	})
	return p
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/healthz did not answer within 30 s", base)
}

func run(t *testing.T, env []string, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var passwordLine = regexp.MustCompile(`One-time password for admin: (\S+)`)

func TestServeFirstRunAndRestart(t *testing.T) {
	data := t.TempDir()
	listen, proxy := freeAddr(t), freeAddr(t)
	base := "http://" + listen
	args := []string{"serve", "--data", data, "--org", "acme", "--listen", listen, "--proxy-listen", proxy}
	env := []string{"REGWARD_ADMIN_PASSWORD="}
	p := start(t, env, args...)
	waitHealthy(t, base)

	out := p.output()
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
	o, err := run(t, cli, "", "policy", "apply", "-f", policyFile, "--dry-run")
	if err != nil || !strings.Contains(o, "ghcr.io") || !strings.Contains(o, "dry run: nothing applied") {
		t.Fatalf("policy apply --dry-run: %v\n%s", err, o)
	}
	o, err = run(t, cli, "", "policy", "get", "-o", "json")
	if err != nil || strings.Contains(o, "ghcr.io") {
		t.Fatalf("dry run changed the policy: %v\n%s", err, o)
	}
	o, err = run(t, cli, "", "policy", "apply", "-f", policyFile)
	if err != nil || !strings.Contains(o, "version 2") {
		t.Fatalf("policy apply: %v\n%s", err, o)
	}
	o, err = run(t, cli, "", "policy", "get")
	if err != nil || !strings.Contains(o, "host: ghcr.io") || !strings.Contains(o, "version 2") {
		t.Fatalf("policy get: %v\n%s", err, o)
	}
	// A bad file is refused locally, naming the field.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("org: acme\nregistryAccess:\n  enabled: true\n  registries:\n    - host: \"not a host!\"\nimageAccess:\n  enabled: false\n  officialImages: allowed\n  verifiedPublisherImages: allowed\n  sponsoredOSSImages: allowed\n  communityImages: allowed\n  orgNamespaces: []\n  repositoryAllowlist: []\n"), 0o600)
	o, err = run(t, cli, "", "policy", "apply", "-f", bad)
	if err == nil || !strings.Contains(o, "registryAccess.registries[0].host") {
		t.Fatalf("bad policy: %v\n%s", err, o)
	}

	// SIGTERM: graceful exit 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitExit(p.cmd, 20*time.Second); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}

	// Restart on the same data: no new password, same token works.
	p2 := start(t, env, args...)
	waitHealthy(t, base)
	if strings.Contains(p2.output(), "One-time password") {
		t.Fatal("second start printed a new password")
	}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", base+"/api/v1/orgs/acme/policy", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("after restart: %v %v", err, resp)
	}
	resp.Body.Close()
	_ = p2.cmd.Process.Signal(syscall.SIGINT)
	if err := waitExit(p2.cmd, 20*time.Second); err != nil {
		t.Fatalf("after SIGINT: %v", err)
	}
}

func waitExit(cmd *exec.Cmd, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		return fmt.Errorf("did not exit within %v", d)
	}
}

func TestConfigFileUnknownKey(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "regward.yaml")
	os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nlisten-adress: nope\n"), 0o600)
	o, err := run(t, nil, "", "serve", "--config", cfg, "--data", t.TempDir())
	if err == nil || !strings.Contains(o, `unknown key "listen-adress"`) {
		t.Fatalf("unknown config key: %v\n%s", err, o)
	}
}
