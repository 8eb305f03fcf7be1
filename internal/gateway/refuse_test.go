package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// readRefusal reads a complete refusal from c and then what follows it,
// which must be the end of the connection and not a reset.
func readRefusal(t *testing.T, c net.Conn, wantStatus int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	if resp.StatusCode != wantStatus || !resp.Close {
		t.Fatalf("got %q (close %v), want %d and a close", resp.Status, resp.Close, wantStatus)
	}
	body, err := io.ReadAll(io.LimitReader(br, 4096))
	if err != nil {
		t.Fatalf("after the response: %v, want a clean end of the connection", err)
	}
	if want := strings.TrimPrefix(resp.Status, resp.Status[:4]) + "\n"; string(body) != want {
		t.Fatalf("body %q, want %q", body, want)
	}
}

// Refusals reach every client whole, followed by a clean close, whether
// the client waits for the answer or goes on sending: the gateway lingers
// when something is left unread, so that closing does not reset the
// connection under the response.
func TestRefusalReachesClient(t *testing.T) {
	e := newEnv(t, nil)
	auth := "Proxy-Authorization: " + basic("alice", aliceToken) + "\r\n"
	deny := "CONNECT denied.test:443 HTTP/1.1\r\n" + auth + "\r\n"
	hello := clientHello(t, "denied.test")
	cases := []struct {
		name   string
		send   func(c net.Conn)
		status int
	}{
		{"denied CONNECT, client waits", func(c net.Conn) { io.WriteString(c, deny) }, 403},
		{"no credentials, client waits", func(c net.Conn) { io.WriteString(c, "CONNECT allowed.test:443 HTTP/1.1\r\n\r\n") }, 407},
		{"denied CONNECT with a ClientHello in the same write", func(c net.Conn) { c.Write(append([]byte(deny), hello...)) }, 403},
		{"denied CONNECT, ClientHello right after", func(c net.Conn) {
			io.WriteString(c, deny)
			c.Write(hello)
		}, 403},
		{"denied CONNECT, ClientHello a little later", func(c net.Conn) {
			io.WriteString(c, deny)
			time.Sleep(5 * time.Millisecond)
			c.Write(hello)
		}, 403},
		{"denied POST with a body on its way", func(c net.Conn) {
			io.WriteString(c, "POST http://denied.test/upload HTTP/1.1\r\nHost: denied.test\r\n"+auth+"Content-Length: 100000\r\n\r\n")
			go c.Write(make([]byte, 100000)) // the gateway may stop reading any time
		}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				c := e.dial()
				tc.send(c)
				readRefusal(t, c, tc.status)
				c.Close()
			}
		})
	}
	waitFor(t, "connections to be released", func() bool { return metricValue(t, e.gw.m.activeConns) == 0 })
	e.mustWork()
}

// A refused client that sent nothing beyond its request is closed at once;
// one whose further bytes are left unread is given time to read the answer
// (lingering), until it closes its side.
func TestRefusalLingersOnlyForUnreadInput(t *testing.T) {
	e := newEnv(t, nil)
	deny := "CONNECT denied.test:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n\r\n"
	held := func() float64 { return metricValue(t, e.gw.m.activeConns) }

	c := e.dial()
	io.WriteString(c, deny)
	start := time.Now()
	readRefusal(t, c, 403)
	if took := time.Since(start); took >= lingerTimeout {
		t.Fatalf("the gateway closed after %v; it lingers %v only when input is left unread", took, lingerTimeout)
	}
	waitFor(t, "the connection to be released while the client keeps it open", func() bool { return held() == 0 })
	c.Close()

	c = e.dial()
	defer c.Close()
	c.Write(append([]byte(deny), clientHello(t, "denied.test")...))
	readRefusal(t, c, 403)
	if n := held(); n != 1 {
		t.Fatalf("with a ClientHello left unread the gateway holds %v connections, want 1 (lingering)", n)
	}
	c.Close()
	waitFor(t, "the lingering connection to be released", func() bool { return held() == 0 })
}

func TestHasBody(t *testing.T) {
	for raw, want := range map[string]bool{
		"CONNECT a.test:443 HTTP/1.1\r\n\r\n":                                false,
		"GET http://a.test/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n":           false,
		"POST http://a.test/ HTTP/1.1\r\nContent-Length: 3\r\n\r\n":          true,
		"POST http://a.test/ HTTP/1.1\r\ncontent-length: 00\r\n\r\n":         true, // not exactly "0": assume a body
		"POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n": true,
		"CONNECT a.test:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n":           true,
		"GET http://a.test/ HTTP/1.1\r\nX-Content-Length: 5\r\n\r\n":         false,
		"GET http://a.test/ HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n": true,
	} {
		h, err := readHead(bufio.NewReader(strings.NewReader(raw)), 4096)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if got := h.hasBody(); got != want {
			t.Errorf("hasBody(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestAppendStatus(t *testing.T) {
	got := string(appendStatus(nil, 407, "sign in", []string{`Proxy-Authenticate: Basic realm="regward"`}))
	want := "HTTP/1.1 407 sign in\r\nProxy-Authenticate: Basic realm=\"regward\"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 8\r\n\r\nsign in\n"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// BenchmarkRefusal measures a refused CONNECT end to end on loopback:
// connect, request, decision, 403, close.
func BenchmarkRefusal(b *testing.B) {
	e := newEnv(b, func(c *Config) { c.Logger = nil })
	req := []byte("CONNECT denied.test:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n\r\n")
	buf := make([]byte, 4096)
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(req)
		if n, err := io.ReadFull(c, buf[:12]); err != nil || string(buf[:n]) != "HTTP/1.1 403" {
			b.Fatalf("read %q: %v", buf[:n], err)
		}
		c.Close()
	}
}
