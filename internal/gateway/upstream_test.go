package gateway

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A gateway chained to a central one: its own policy is checked first, then
// the central gateway's, whose refusal reaches the client word for word.
func TestUpstreamGatewayChain(t *testing.T) {
	central := newEnv(t, nil)
	local := newEnv(t, func(c *Config) {
		c.Upstream = &url.URL{Scheme: "http", Host: central.addr, User: url.UserPassword("alice", aliceToken)}
		c.Resolve = nil // names are the central gateway's to resolve
	})
	local.policies.set(testOrg, compileAllowing(t, testOrg, "allowed.test", "denied.test", "plain.test"))

	client := local.client("alice", aliceToken)
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: central.ca.pool}

	tlsURL := func(host string) string { return "https://" + host + ":" + central.tlsPort + "/" }
	body, err := local.get(client, tlsURL("allowed.test"))
	if err != nil || !strings.HasPrefix(body, "hello from allowed.test") {
		t.Fatalf("allowed by both: %q %v", body, err)
	}

	_, err = local.get(client, tlsURL("denied.test"))
	want := "registry denied.test:" + central.tlsPort + " is not allowed by organization " + testOrg
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("denied by the central gateway: err %v, want it to contain %q", err, want)
	}
	if len(central.decisions("denied.test", false)) == 0 {
		t.Fatal("the central gateway did not record its denial")
	}

	_, err = local.get(client, tlsURL("other.test"))
	if err == nil || !strings.Contains(err.Error(), "registry other.test:") {
		t.Fatalf("denied locally: %v", err)
	}
	if len(central.decisions("other.test", false))+len(central.decisions("other.test", true)) != 0 {
		t.Fatal("a request the local policy denied reached the central gateway")
	}

	body, err = local.get(client, "http://plain.test:"+central.httpPort+"/x?y=1")
	if err != nil || !strings.HasPrefix(body, "plain GET plain.test:") {
		t.Fatalf("plain HTTP through the chain: %q %v", body, err)
	}
	central.mu.Lock()
	n := len(central.plainReq)
	var auth string
	if n > 0 {
		auth = central.plainReq[n-1].Header.Get("Proxy-Authorization")
	}
	central.mu.Unlock()
	if n == 0 || auth != "" {
		t.Fatalf("central origin saw %d requests; Proxy-Authorization leaked to the origin: %q", n, auth)
	}
}

func TestUpstreamGatewayUnreachable(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Upstream = &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	})
	start := time.Now()
	_, err := e.get(e.client("alice", aliceToken), e.tlsURL("allowed.test"))
	if err == nil || !strings.Contains(err.Error(), "cannot reach the upstream gateway") {
		t.Fatalf("err %v, want the upstream named", err)
	}
	if time.Since(start) > 15*time.Second {
		t.Fatal("took too long to fail")
	}
}

func TestUpstreamGatewayConfigChecked(t *testing.T) {
	for _, u := range []string{"socks5://127.0.0.1:1080", "http://127.0.0.1:1/path", "http://"} {
		pu, _ := url.Parse(u)
		_, err := New(Config{Auth: tableAuth{}, Policies: &staticPolicies{}, Upstream: pu})
		if err == nil {
			t.Errorf("Upstream %q accepted", u)
		}
	}
}
