package deploy

import (
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
	"testing"
	"time"

	"github.com/regward/regward/internal/regwardtest"
)

func TestMain(m *testing.M) { regwardtest.Main(m) }

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
	listen := regwardtest.FreeAddr(t)
	args := []string{"serve", "--config", file, "--data", t.TempDir(), "--listen", listen, "--database", ""}
	if _, ok := keys["proxy-listen"]; ok || keys["no-gateway"] != true {
		args = append(args, "--proxy-listen", regwardtest.FreeAddr(t))
	}
	if _, ok := keys["tls-cert"]; ok {
		c, k := selfSigned(t)
		args = append(args, "--tls-cert", c, "--tls-key", k)
	}
	if _, ok := keys["proxy-tls-cert"]; ok {
		c, k := selfSigned(t)
		args = append(args, "--proxy-tls-cert", c, "--proxy-tls-key", k)
	}
	p := regwardtest.Start(t, []string{"REGWARD_ADMIN_PASSWORD=deploy-test-password"}, args...)
	p.WaitHTTP(t, "http://"+listen+"/healthz", 30*time.Second)
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
		gatewayHelp.text, _ = regwardtest.Run(t, nil, "", "gateway", "--help")
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
	listen := regwardtest.FreeAddr(t)
	cp := regwardtest.Start(t, []string{"REGWARD_ADMIN_PASSWORD=deploy-test-password"},
		"serve", "--data", t.TempDir(), "--listen", listen, "--no-gateway")
	base := "http://" + listen
	cp.WaitHTTP(t, base+"/readyz", 30*time.Second)
	token := gatewayToken(t, base)

	proxy := regwardtest.FreeAddr(t)
	args := []string{"gateway", "--config", file, "--control-plane", base, "--proxy-listen", proxy, "--cache-dir", t.TempDir()}
	if _, ok := keys["proxy-tls-cert"]; ok {
		c, k := selfSigned(t)
		args = append(args, "--proxy-tls-cert", c, "--proxy-tls-key", k)
	}
	metrics := ""
	if _, ok := keys["metrics-listen"]; ok {
		metrics = regwardtest.FreeAddr(t)
		args = append(args, "--metrics-listen", metrics)
	}
	gw := regwardtest.Start(t, []string{"REGWARD_TOKEN=" + token}, args...)
	gw.WaitListening(t, proxy, 30*time.Second)
	if metrics != "" {
		gw.WaitHTTP(t, "http://"+metrics+"/healthz", 30*time.Second)
	}
	// Still running a moment later: it took the token and the control plane.
	select {
	case <-gw.Exited():
		t.Fatalf("regward gateway exited:\n%s", gw.Output())
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
