package deploy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// regwardBin is the regward binary the configuration files are tried with.
var regwardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regward-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploy:", err)
		os.Exit(1)
	}
	regwardBin = os.Getenv("REGWARD_TEST_BINARY")
	if regwardBin == "" {
		regwardBin = filepath.Join(dir, "regward")
		build := exec.Command("go", "build", "-o", regwardBin, "github.com/regward/regward/cmd/regward")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "deploy: build regward:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool returns the path of a tool, or skips the test (fails it with
// CI=true) when it is missing.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (Debian package %s)", name, pkg)
		if os.Getenv("CI") == "true" {
			t.Fatalf("required in CI: %s", msg)
		}
		t.Skipf("skipping: %s", msg)
	}
	return p
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

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a regward process started with a deployment's configuration.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// startRegward runs regward with args and env (and nothing of the host's
// REGWARD_* variables); it is killed when the test ends.
func startRegward(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(regwardBin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGWARD_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitUp waits until check succeeds, failing with the process's output
// when it exits first.
func (p *proc) waitUp(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if check() {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("regward exited before %s:\n%s", what, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("regward: no %s within 30 s:\n%s", what, p.out.String())
}

func httpOK(url string) func() bool {
	return func() bool {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

func listening(addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
}

// selfSigned writes a throw-away certificate and key for 127.0.0.1 and
// returns their paths, for configuration files that name TLS files.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "regward deploy test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// tryServeConfig starts `regward serve --config file` with the file's
// addresses, directories and TLS files overridden on the command line
// (which wins over the file) and waits until it serves: the file's keys
// are flags and its values parse. The database is SQLite whatever the file
// says; keys are the file's, to know which overrides it needs.
func tryServeConfig(t *testing.T, file string, keys map[string]any) {
	t.Helper()
	listen := freeAddr(t)
	args := []string{"serve", "--config", file, "--data", t.TempDir(), "--listen", listen, "--database", ""}
	if _, ok := keys["proxy-listen"]; ok || keys["no-gateway"] != true {
		args = append(args, "--proxy-listen", freeAddr(t))
	}
	if _, ok := keys["tls-cert"]; ok {
		c, k := selfSigned(t)
		args = append(args, "--tls-cert", c, "--tls-key", k)
	}
	if _, ok := keys["proxy-tls-cert"]; ok {
		c, k := selfSigned(t)
		args = append(args, "--proxy-tls-cert", c, "--proxy-tls-key", k)
	}
	p := startRegward(t, []string{"REGWARD_ADMIN_PASSWORD=deploy-test-password"}, args...)
	p.waitUp(t, "/healthz on "+listen, httpOK("http://"+listen+"/healthz"))
}

var gatewayHelp struct {
	once sync.Once
	text string
}

// requireGatewayCommand skips (fails in CI) when `regward gateway` cannot
// follow a control plane yet.
func requireGatewayCommand(t *testing.T) {
	t.Helper()
	gatewayHelp.once.Do(func() {
		out, _ := exec.Command(regwardBin, "gateway", "--help").CombinedOutput()
		gatewayHelp.text = string(out)
	})
	for _, f := range []string{"--control-plane", "--token", "--cache-dir", "--proxy-listen"} {
		if !strings.Contains(gatewayHelp.text, f) {
			msg := fmt.Sprintf("`regward gateway` has no %s flag yet", f)
			if os.Getenv("CI") == "true" {
				t.Fatalf("required in CI: %s", msg)
			}
			t.Skipf("skipping: %s", msg)
		}
	}
}

// tryGatewayConfig starts a control plane (SQLite), asks it for a gateway
// token, and runs `regward gateway --config file` against it with the
// file's addresses and directories overridden: the file's keys are the
// gateway's flags and its values parse.
func tryGatewayConfig(t *testing.T, file string, keys map[string]any) {
	t.Helper()
	requireGatewayCommand(t)
	listen := freeAddr(t)
	cp := startRegward(t, []string{"REGWARD_ADMIN_PASSWORD=deploy-test-password"},
		"serve", "--data", t.TempDir(), "--listen", listen, "--no-gateway")
	base := "http://" + listen
	cp.waitUp(t, "/readyz on "+listen, httpOK(base+"/readyz"))
	token := gatewayToken(t, base)

	proxy := freeAddr(t)
	args := []string{"gateway", "--config", file, "--control-plane", base, "--proxy-listen", proxy, "--cache-dir", t.TempDir()}
	if _, ok := keys["proxy-tls-cert"]; ok {
		c, k := selfSigned(t)
		args = append(args, "--proxy-tls-cert", c, "--proxy-tls-key", k)
	}
	metrics := ""
	if _, ok := keys["metrics-listen"]; ok {
		metrics = freeAddr(t)
		args = append(args, "--metrics-listen", metrics)
	}
	gw := startRegward(t, []string{"REGWARD_TOKEN=" + token}, args...)
	gw.waitUp(t, "gateway listening on "+proxy, listening(proxy))
	if metrics != "" {
		gw.waitUp(t, "/healthz on "+metrics, httpOK("http://"+metrics+"/healthz"))
	}
	// Still running a moment later: it took the token and the control plane.
	select {
	case <-gw.exited:
		t.Fatalf("regward gateway exited:\n%s", gw.out.String())
	case <-time.After(time.Second):
	}
}

func gatewayToken(t *testing.T, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/tokens", strings.NewReader(`{"kind":"gateway"}`))
	req.SetBasicAuth("admin", "deploy-test-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var tok struct {
		Token string `json:"token"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &tok) != nil || tok.Token == "" {
		t.Fatalf("gateway token: %d %s", resp.StatusCode, b)
	}
	return tok.Token
}
