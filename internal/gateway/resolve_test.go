package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer answers A queries from a table over UDP on 127.0.0.1, so that
// the gateway's own resolution (not an override) can be tested.
func dnsServer(t *testing.T, table map[string]netip.Addr) *net.Resolver {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			name := strings.TrimSuffix(q.Name.String(), ".")
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			a, ok := table[name]
			if ok && q.Type == dnsmessage.TypeA && a.Is4() {
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: a.As4()})
			}
			msg, err := b.Finish()
			if err != nil {
				continue
			}
			pc.WriteTo(msg, from)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func TestGatewayResolves(t *testing.T) {
	r := dnsServer(t, map[string]netip.Addr{
		"allowed.test":   netip.MustParseAddr("127.0.0.1"),
		"zero.test":      netip.MustParseAddr("0.0.0.0"),
		"multicast.test": netip.MustParseAddr("224.0.0.1"),
	})
	e := newEnv(t, func(c *Config) {
		delete(c.Resolve, "allowed.test") // from the resolver this time
		c.Resolver = r
	})
	e.policies.set(testOrg, compileAllowing(t, testOrg, "allowed.test", "zero.test", "multicast.test"))
	body, err := e.get(e.client("alice", aliceToken), e.tlsURL("allowed.test"))
	if err != nil || body != "hello from allowed.test:"+e.tlsPort {
		t.Fatalf("resolved by the gateway: %q %v", body, err)
	}
	for _, host := range []string{"zero.test", "multicast.test"} {
		resp, _ := e.rawResponse("CONNECT " + host + ":" + e.tlsPort + " HTTP/1.1\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n\r\n")
		want := "502 cannot connect to " + host + ":" + e.tlsPort + ": it resolves to no address the gateway dials"
		if resp.Status != want {
			t.Errorf("%s: %q, want %q", host, resp.Status, want)
		}
	}
}

// The gateway as an HTTPS proxy (--proxy-tls-cert): the client's
// connection is TLS, the tunnel copies without splice, and all else is the
// same.
func TestHTTPSProxyListener(t *testing.T) {
	e := newEnv(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{e.ca.issue(t, "127.0.0.1")}})
	go e.gw.Serve(tln)
	proxy := &url.URL{Scheme: "https", User: url.UserPassword("alice", aliceToken), Host: ln.Addr().String()}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxy),
		TLSClientConfig: &tls.Config{RootCAs: e.ca.pool},
	}}
	defer c.CloseIdleConnections()
	for i := 0; i < 2; i++ {
		body, err := e.get(c, e.tlsURL("allowed.test"))
		if err != nil || body != "hello from allowed.test:"+e.tlsPort {
			t.Fatalf("through the HTTPS proxy: %q %v", body, err)
		}
	}
	u := e.tlsURL("denied.test")
	_, err = e.get(c, u)
	if want := "registry denied.test:" + e.tlsPort + " is not allowed by organization acme; ask an owner to add it to the allowed registries"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("denied through the HTTPS proxy: %v", err)
	}
}
