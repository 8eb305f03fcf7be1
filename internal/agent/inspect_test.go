package agent

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/client"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/registrytest"
)

// A pull-only registry needs inspection: the agent terminates TLS with its
// own CA (published in its state file for `regward setup`), lets pulls
// through and refuses pushes in the registry's own error format.
func TestAgentInspectsWithItsOwnCA(t *testing.T) {
	reg := registrytest.Start(t, "pullonly.test")
	reg.Push(t, "pullonly.test", "team/app:v1")

	e := newEnv(t)
	e.resolved["pullonly.test"] = reg.Addr
	e.signIn("acme", "member")
	p := policy.Default("acme")
	p.RegistryAccess.Registries = []policy.Registry{{Host: "pullonly.test", Access: policy.AccessPull}}
	if err := e.cache.Save(e.server, client.CachedSnapshot{FetchedAt: time.Now(), Snapshot: client.Snapshot{Org: "acme", Version: 4, Policy: p}}); err != nil {
		t.Fatal(err)
	}
	e.roots = reg.CertPool
	e.start()

	st := e.waitState(func(s client.AgentState) bool { return s.CAFile != "" })
	pem, err := os.ReadFile(st.CAFile)
	if err != nil {
		t.Fatalf("agent CA named in its state file: %v", err)
	}
	trust := x509.NewCertPool()
	if !trust.AppendCertsFromPEM(pem) {
		t.Fatal("agent CA file holds no certificate")
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: e.agent.Addr().String()}),
		TLSClientConfig: &tls.Config{RootCAs: trust},
	}}
	defer hc.CloseIdleConnections()
	base := "https://" + reg.HostPort("pullonly.test") + "/v2/team/app/manifests/"

	resp, err := hc.Get(base + "v1")
	if err != nil {
		t.Fatalf("pull through the inspecting agent: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("pull: %s", resp.Status)
	}

	req, _ := http.NewRequest(http.MethodPut, base+"v2", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatalf("push through the agent: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"code":"DENIED"`) || !strings.Contains(string(body), "pull-only") {
		t.Fatalf("push to a pull-only registry: %s %s", resp.Status, body)
	}
}
