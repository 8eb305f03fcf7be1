package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
)

// terminator is an Interceptor that takes tunnels to inspect.test, ends
// their TLS with a certificate of the test CA and answers each request
// itself after checking that it can reach the upstream, as inspection will.
type terminator struct {
	cert tls.Certificate
	mu   sync.Mutex
	asks []TunnelRequest
}

func (i *terminator) Intercept(req TunnelRequest) bool {
	i.mu.Lock()
	i.asks = append(i.asks, req)
	i.mu.Unlock()
	return req.Host == "inspect.test"
}

func (i *terminator) ServeTunnel(ctx context.Context, client net.Conn, req TunnelRequest, dial func(context.Context) (net.Conn, error)) {
	defer client.Close()
	up, err := dial(ctx)
	if err != nil {
		return
	}
	up.Close()
	tc := tls.Server(client, &tls.Config{Certificates: []tls.Certificate{i.cert}})
	br := bufio.NewReader(tc)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body := fmt.Sprintf("inspected %s %s for %s of %s (policy v%d)", r.Method, r.URL.Path, req.Identity.User, req.Identity.Org, req.PolicyVersion)
		fmt.Fprintf(tc, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

func TestInterceptorSeam(t *testing.T) {
	ca := newTestCA(t)
	in := &terminator{cert: ca.issue(t, "inspect.test")}
	e := newEnv(t, func(c *Config) { c.Interceptor = in })
	e.ca = ca // the client trusts the interceptor's CA
	client := e.client("alice", aliceToken)
	body, err := e.get(client, "https://inspect.test:443/v2/library/alpine/manifests/3")
	if err != nil {
		t.Fatal(err)
	}
	if want := "inspected GET /v2/library/alpine/manifests/3 for alice of acme (policy v3)"; body != want {
		t.Fatalf("body %q, want %q", body, want)
	}
	if v := metricValue(t, e.gw.m.tunnels); v != 1 {
		t.Errorf("active tunnels %v while the intercepted one is open", v)
	}
	// Tunnels it declines go through untouched; denied ones never reach it.
	e2 := newEnv(t, func(c *Config) { c.Interceptor = in })
	if body, err := e2.get(e2.client("alice", aliceToken), e2.tlsURL("allowed.test")); err != nil || body != "hello from allowed.test:"+e2.tlsPort {
		t.Fatalf("declined tunnel: %q %v", body, err)
	}
	e2.get(e2.client("alice", aliceToken), e2.tlsURL("denied.test"))
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.asks) != 2 || in.asks[0].Host != "inspect.test" || in.asks[0].Port != 443 || in.asks[1].Host != "allowed.test" || in.asks[0].Policy == nil {
		t.Fatalf("Intercept was asked %+v", in.asks)
	}
}
