package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regward/regward/internal/client"
	"github.com/regward/regward/internal/regwardtest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/ with the current output")

const (
	adminPW = "admin-password-for-tests"
	alicePW = "alice-password-for-tests"
)

// controlPlane is a `regward serve` on free ports with org acme (owner
// admin), org beta, and alice a member of acme only.
type controlPlane struct {
	t     *testing.T
	base  string
	data  string
	admin string // the owner token of DATA/admin-token
	p     *regwardtest.Process
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	cp := &controlPlane{t: t, data: t.TempDir()}
	listen := regwardtest.FreeAddr(t)
	cp.base = "http://" + listen
	cp.p = regwardtest.Start(t, []string{"REGWARD_ADMIN_PASSWORD=" + adminPW},
		"serve", "--data", cp.data, "--org", "acme", "--listen", listen, "--proxy-listen", regwardtest.FreeAddr(t))
	cp.p.WaitHTTP(t, cp.base+"/healthz", 30*time.Second)
	tok, err := os.ReadFile(filepath.Join(cp.data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	cp.admin = strings.TrimSpace(string(tok))
	cp.call(http.MethodPost, "/api/v1/orgs", map[string]string{"name": "beta"}, http.StatusCreated)
	cp.call(http.MethodPost, "/api/v1/orgs/acme/members", map[string]string{"username": "alice", "role": "member", "password": alicePW}, http.StatusCreated)
	return cp
}

// call sends an API request as the admin and checks the status.
func (cp *controlPlane) call(method, path string, body any, want int) []byte {
	cp.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			cp.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, cp.base+path, rd)
	if err != nil {
		cp.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cp.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cp.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		cp.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, out)
	}
	return out
}

// applyPolicy makes p acme's policy and returns the new version.
func (cp *controlPlane) applyPolicy(p map[string]any) int64 {
	cp.t.Helper()
	var res struct {
		Version int64 `json:"version"`
	}
	if err := json.Unmarshal(cp.call(http.MethodPut, "/api/v1/orgs/acme/policy", p, http.StatusOK), &res); err != nil {
		cp.t.Fatal(err)
	}
	return res.Version
}

// stop ends the control plane with SIGTERM.
func (cp *controlPlane) stop() {
	cp.t.Helper()
	if err := cp.p.Signal(syscall.SIGTERM); err != nil {
		cp.t.Fatal(err)
	}
	if err := cp.p.Wait(20 * time.Second); err != nil {
		cp.t.Fatalf("control plane after SIGTERM: %v", err)
	}
}

// testPolicy allows Docker Hub and ghcr.io, official and verified images,
// acme's namespace and bitnami/redis.
func testPolicy(extraHosts ...string) map[string]any {
	regs := []map[string]string{{"host": "docker-hub"}, {"host": "ghcr.io"}}
	for _, h := range extraHosts {
		regs = append(regs, map[string]string{"host": h})
	}
	return map[string]any{
		"org":            "acme",
		"registryAccess": map[string]any{"enabled": true, "registries": regs},
		"imageAccess": map[string]any{
			"enabled": true, "officialImages": "allowed", "verifiedPublisherImages": "allowed",
			"sponsoredOSSImages": "restricted", "communityImages": "restricted",
			"orgNamespaces": []string{"acme"}, "repositoryAllowlist": []string{"bitnami/redis"},
		},
		"namespaceAccess": map[string]any{"pushOnlyToOrgNamespaces": true},
	}
}

// machine is a developer machine: its own home, config and cache
// directories and registry.json, so that tests never touch the real ones.
type machine struct {
	t       *testing.T
	home    string
	session string
	regJSON string
	env     []string
}

func newMachine(t *testing.T, allowedOrgs ...string) *machine {
	t.Helper()
	home := t.TempDir()
	m := &machine{
		t: t, home: home,
		session: filepath.Join(home, "config", "regward", "session.json"),
		regJSON: filepath.Join(home, "registry.json"),
	}
	m.env = []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
		"REGWARD_SESSION_FILE=" + m.session,
		"REGWARD_REGISTRY_JSON=" + m.regJSON,
	}
	if len(allowedOrgs) > 0 {
		b, _ := json.Marshal(map[string][]string{"allowedOrgs": allowedOrgs})
		if err := os.WriteFile(m.regJSON, b, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// environ is the test's environment without REGWARD_* variables (a
// developer's own REGWARD_SERVER must not leak in), plus the machine's.
func (m *machine) environ(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGWARD_") && !strings.HasPrefix(kv, "XDG_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(append(env, m.env...), extra...)
}

// regward runs the binary on this machine and returns its combined output
// and exit status.
func (m *machine) regward(stdin string, args ...string) (string, int) {
	m.t.Helper()
	cmd := exec.Command(regwardtest.Binary(m.t), args...)
	cmd.Env = m.environ()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	m.t.Fatalf("regward %s: %v", strings.Join(args, " "), err)
	return "", -1
}

func (m *machine) login(cp *controlPlane, org, user, pw string) (string, int) {
	m.t.Helper()
	return m.regward(pw+"\n", "login", "--server", cp.base, "--org", org, "--username", user, "--password-stdin")
}

func (m *machine) mustLogin(cp *controlPlane, org, user, pw string) {
	m.t.Helper()
	if out, code := m.login(cp, org, user, pw); code != 0 {
		m.t.Fatalf("login %s as %s: exit %d\n%s", org, user, code, out)
	}
}

func TestLoginHonoursRegistryJSON(t *testing.T) {
	cp := startControlPlane(t)
	m := newMachine(t, "acme")

	out, code := m.login(cp, "beta", "alice", alicePW)
	if code != 1 || !strings.Contains(out, "this machine requires sign-in to one of: acme") {
		t.Fatalf("login --org beta: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(m.session); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused login left a session: %v", err)
	}

	// Listed, but alice is no member of beta: the control plane refuses.
	m2 := newMachine(t, "acme", "beta")
	out, code = m2.login(cp, "beta", "alice", alicePW)
	if code != 1 || !strings.Contains(out, "sign-in refused: alice is not a member of organization beta") {
		t.Fatalf("login to an org alice is not in: exit %d\n%s", code, out)
	}
	out, code = m2.login(cp, "acme", "alice", "wrong-password-123")
	if code != 1 || !strings.Contains(out, "sign-in refused: wrong username or password") {
		t.Fatalf("wrong password: exit %d\n%s", code, out)
	}

	out, code = m.login(cp, "acme", "alice", alicePW)
	if code != 0 || !strings.Contains(out, "Signed in to organization acme as alice (member)") || !strings.Contains(out, "Policy version 1 of acme fetched.") {
		t.Fatalf("login --org acme: exit %d\n%s", code, out)
	}
	if strings.Contains(out, alicePW) {
		t.Fatal("login printed the password")
	}
	fi, err := os.Stat(m.session)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v %v", fi, err)
	}
	s, err := client.LoadSession(m.session)
	if err != nil || s.Org != "acme" || s.Username != "alice" || s.Role != "member" || s.Server != cp.base {
		t.Fatalf("session: %+v %v", s, err)
	}
	if strings.Contains(out, s.Token) {
		t.Fatal("login printed the token")
	}
	cache := filepath.Join(m.home, "cache", "regward", "snapshots")
	if files, _ := filepath.Glob(filepath.Join(cache, "*", "acme", "acme.json")); len(files) != 1 {
		t.Errorf("login cached no policy under %s", cache)
	}

	// Signing in again replaces the session and revokes its token.
	old := s
	m.mustLogin(cp, "acme", "alice", alicePW)
	if s, _ = client.LoadSession(m.session); s.TokenID == old.TokenID {
		t.Fatal("a second login kept the old token")
	}
	api := &client.API{Server: cp.base, Token: old.Token}
	if _, err := api.Whoami(t.Context()); err == nil {
		t.Error("the replaced token still works")
	}

	// logout revokes the token on the server and deletes the session.
	out, code = m.regward("", "logout")
	if code != 0 || !strings.Contains(out, "Signed out of organization acme (alice)") {
		t.Fatalf("logout: exit %d\n%s", code, out)
	}
	api.Token = s.Token
	if _, err := api.Whoami(t.Context()); err == nil {
		t.Error("the token still works after logout")
	}
	if _, err := os.Stat(m.session); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("session after logout: %v", err)
	}
	if out, code = m.regward("", "logout"); code != 1 || !strings.Contains(out, "not signed in") {
		t.Errorf("logout twice: exit %d\n%s", code, out)
	}
}

func TestLoginWithoutRegistryJSON(t *testing.T) {
	cp := startControlPlane(t)
	m := newMachine(t)
	// No registry.json: any org the user belongs to.
	out, code := m.login(cp, "acme", "admin", adminPW)
	if code != 0 || !strings.Contains(out, "as admin (owner)") {
		t.Fatalf("login: exit %d\n%s", code, out)
	}
	// A malformed registry.json is an error, never a reason to stop enforcing.
	if err := os.WriteFile(m.regJSON, []byte("\xEF\xBB\xBF{\"allowedOrgs\":[\"acme\"]}"), 0o444); err != nil {
		t.Fatal(err)
	}
	out, code = m.login(cp, "acme", "admin", adminPW)
	if code != 1 || !strings.Contains(out, m.regJSON+": line 1, column 1: the file starts with a UTF-8 byte order mark") {
		t.Fatalf("login with a BOM in registry.json: exit %d\n%s", code, out)
	}
}

func TestStatus(t *testing.T) {
	cp := startControlPlane(t)
	m := newMachine(t, "acme")
	out, code := m.regward("", "status")
	if code != 0 || !strings.Contains(out, "Signed in:    no (run `regward login`)") ||
		!strings.Contains(out, "Sign-in:      enforced by "+m.regJSON+" (allowed: acme)") ||
		!strings.Contains(out, "Agent:        not running") {
		t.Fatalf("status signed out: exit %d\n%s", code, out)
	}
	m.mustLogin(cp, "acme", "alice", alicePW)
	cp.applyPolicy(testPolicy())

	out, code = m.regward("", "status", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d\n%s", code, out)
	}
	var r client.StatusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if !r.SignedIn || r.Server != cp.base || r.User != "alice" || r.Org != "acme" || r.Role != "member" || r.Token != "valid" ||
		r.Policy == nil || r.Policy.Version != 1 || r.Agent.Running || !r.RegistryJSON.Enforced {
		t.Errorf("status: %+v", r)
	}
	if strings.Contains(out, `"token": "rw_`) {
		t.Error("status shows the token")
	}

	// The token revoked elsewhere: status says so.
	s, _ := client.LoadSession(m.session)
	cp.call(http.MethodDelete, "/api/v1/tokens/"+s.TokenID, nil, http.StatusNoContent)
	out, _ = m.regward("", "status")
	if !strings.Contains(out, "Token:        rejected") {
		t.Errorf("status after revocation:\n%s", out)
	}
}

// goldenNormalize replaces what changes from run to run.
var goldenNormalize = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`http://127\.0\.0\.1:\d+`), "SERVER"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`), "TIME"},
	{regexp.MustCompile(`, \d+[smhd]\S* ago\)`), ", AGE ago)"},
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	for _, n := range goldenNormalize {
		got = n.re.ReplaceAllString(got, n.with)
	}
	path := filepath.Join("testdata", "check", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func TestCheckGolden(t *testing.T) {
	cp := startControlPlane(t)
	cp.applyPolicy(testPolicy())
	alice := newMachine(t, "acme")
	alice.mustLogin(cp, "acme", "alice", alicePW)
	admin := newMachine(t, "acme")
	admin.mustLogin(cp, "acme", "admin", adminPW)

	for _, tc := range []struct {
		name string
		m    *machine
		args []string
		code int
	}{
		{"allowed", alice, []string{"alpine:3.20"}, 0},
		{"denied-by-host", alice, []string{"quay.io/prometheus/node-exporter:v1.8.0"}, 1},
		{"denied-by-category", alice, []string{"someuser/tool:1"}, 1},
		{"allowed-by-owner-bypass", admin, []string{"someuser/tool:1"}, 0},
		{"malformed", alice, []string{"Not A Reference"}, 2},
		{"several", alice, []string{"acme/app:2", "bitnami/redis:7", "ghcr.io/acme/tool@sha256:" + strings.Repeat("ab", 32), "quay.io/x/y"}, 1},
		{"push-outside-org-namespaces", alice, []string{"--action", "push", "someuser/tool:1"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := tc.m.regward("", append([]string{"check"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit status %d, want %d\n%s", code, tc.code, out)
			}
			checkGolden(t, tc.name, "$ regward check "+strings.Join(tc.args, " ")+"\n"+out)
		})
	}

	t.Run("json", func(t *testing.T) {
		out, code := alice.regward("", "check", "--json", "alpine:3.20", "someuser/tool:1")
		if code != 1 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		var rep client.CheckReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if rep.Source != "server" || len(rep.Outcomes) != 2 || !rep.Outcomes[0].Result.Allowed || rep.Outcomes[1].Result.Rule != "imageAccess.communityImages" {
			t.Errorf("report: %+v", rep)
		}
	})

	// The control plane down: the cached policy decides, and says so.
	cp.stop()
	t.Run("offline", func(t *testing.T) {
		args := []string{"alpine:3.20", "someuser/tool:1"}
		out, code := alice.regward("", append([]string{"check"}, args...)...)
		if code != 1 {
			t.Errorf("exit status %d, want 1\n%s", code, out)
		}
		checkGolden(t, "offline", "$ regward check "+strings.Join(args, " ")+"\n"+out)
	})
	t.Run("offline-owner-bypass", func(t *testing.T) {
		out, code := admin.regward("", "check", "someuser/tool:1")
		if code != 0 || !strings.Contains(out, "rule:     ownerBypass") || !strings.Contains(out, "decided with the cached policy") {
			t.Errorf("exit status %d\n%s", code, out)
		}
	})
}

func TestSetupCommand(t *testing.T) {
	cp := startControlPlane(t)
	m := newMachine(t)
	root := t.TempDir()
	daemon := filepath.Join(root, "etc", "docker", "daemon.json")
	if err := os.MkdirAll(filepath.Dir(daemon), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(daemon, []byte(`{"data-root": "/srv/docker", "proxies": {"no-proxy": "corp.example"}}`), 0o644); err != nil {
		t.Fatal(err)
	}

	// A central gateway, not signed in: whether it inspects TLS cannot be
	// asked; say how to go on.
	const central = "https://gw.example.com:3129"
	out, code := m.regward("", "setup", "docker", "--root", root, "--gateway", central)
	if code != 1 || !strings.Contains(out, "--ca-file FILE or --no-ca") {
		t.Fatalf("setup signed out: exit %d\n%s", code, out)
	}

	m.mustLogin(cp, "acme", "alice", alicePW)
	out, code = m.regward("", "setup", "docker", "--root", root, "--gateway", central)
	if code != 0 || !strings.Contains(out, "## /usr/local/share/ca-certificates/regward-gateway-ca.crt (the gateway CA (from "+cp.base+"/api/v1/orgs/acme/gateway-ca.pem)") ||
		!strings.Contains(out, "-----BEGIN CERTIFICATE-----") || !strings.Contains(out, "update-ca-certificates") {
		t.Fatalf("setup docker for a central gateway: exit %d\n%s", code, out)
	}

	// The local agent (the default) needs no CA.
	out, code = m.regward("", "setup", "docker", "--root", root)
	if code != 0 {
		t.Fatalf("setup docker: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"## /etc/docker/daemon.json (dockerd's proxies (Docker Engine 23.0 or later), merged with the existing file)",
		`"data-root": "/srv/docker"`,
		`"https-proxy": "http://127.0.0.1:3128"`,
		"systemctl restart docker",
		`Environment="HTTPS_PROXY=http://127.0.0.1:3128"`,
		`daemon.json keeps its no-proxy list "corp.example"`,
		"Apply with: sudo regward setup docker --write",
		"No agent is running for this sign-in, so its CA is not known yet",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("setup docker lacks %q:\n%s", want, out)
		}
	}
	if b, _ := os.ReadFile(daemon); strings.Contains(string(b), "https-proxy") {
		t.Fatal("setup without --write changed daemon.json")
	}

	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = m.regward("", "setup", "docker", "--root", root, "--write", "--ca-file", ca, "--gateway", "http://127.0.0.1:3999")
	if code != 0 {
		t.Fatalf("setup docker --write: exit %d\n%s", code, out)
	}
	var merged map[string]any
	b, _ := os.ReadFile(daemon)
	if err := json.Unmarshal(b, &merged); err != nil {
		t.Fatalf("daemon.json after --write: %v\n%s", err, b)
	}
	want := map[string]any{
		"data-root": "/srv/docker",
		"proxies":   map[string]any{"http-proxy": "http://127.0.0.1:3999", "https-proxy": "http://127.0.0.1:3999", "no-proxy": "corp.example"},
	}
	if diff := cmp.Diff(want, merged); diff != "" {
		t.Errorf("daemon.json (-want +got):\n%s", diff)
	}
	backups, _ := filepath.Glob(daemon + ".regward-backup-*")
	if len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	for _, want := range []string{
		"changed   " + daemon + " (previous content in " + backups[0] + ")",
		"created   " + filepath.Join(root, "usr/local/share/ca-certificates/regward-gateway-ca.crt"),
		"now run, as root:\n  update-ca-certificates\n  systemctl restart docker",
		"mv '" + backups[0] + "' '" + daemon + "'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("setup --write output lacks %q:\n%s", want, out)
		}
	}

	out, code = m.regward("", "setup", "zfs")
	if code != 1 || !strings.Contains(out, `unknown client "zfs"`) {
		t.Errorf("setup zfs: exit %d\n%s", code, out)
	}
}
