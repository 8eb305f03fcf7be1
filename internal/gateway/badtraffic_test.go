package gateway

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBadTraffic(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxHeaderBytes = 4096
		c.HeaderTimeout = 500 * time.Millisecond
	})
	auth := "Proxy-Authorization: " + basic("alice", aliceToken) + "\r\n"
	many := strings.Repeat("X-A: b\r\n", maxHeaderFields+1)
	cases := []struct {
		name   string
		raw    string
		status int
		reason string // prefix of the reason phrase
	}{
		{"CONNECT without port", "CONNECT allowed.test HTTP/1.1\r\n" + auth + "\r\n", 400, `CONNECT target "allowed.test" has no port`},
		{"CONNECT with userinfo", "CONNECT user@allowed.test:443 HTTP/1.1\r\n" + auth + "\r\n", 400, `CONNECT target "user@allowed.test:443" has user information`},
		{"CONNECT with path", "CONNECT allowed.test:443/x HTTP/1.1\r\n" + auth + "\r\n", 400, "CONNECT target"},
		{"CONNECT bad port", "CONNECT allowed.test:99999 HTTP/1.1\r\n" + auth + "\r\n", 400, "CONNECT target"},
		{"CONNECT bad host", "CONNECT allowed..test:443 HTTP/1.1\r\n" + auth + "\r\n", 400, "CONNECT target"},
		{"NUL in header", "CONNECT allowed.test:443 HTTP/1.1\r\nX-A: a\x00b\r\n" + auth + "\r\n", 400, `header field "X-A" contains a control byte`},
		{"control byte in target", "CONNECT allowed.test\x01:443 HTTP/1.1\r\n" + auth + "\r\n", 400, "request target contains"},
		{"NUL in target", "CONNECT allowed.test\x00:443 HTTP/1.1\r\n\r\n", 400, "request target contains"},
		{"bare CR", "CONNECT allowed.test:443 HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400, `header field "X-A" contains a control byte`},
		{"space before colon", "CONNECT allowed.test:443 HTTP/1.1\r\nX-A : b\r\n\r\n", 400, "malformed header field name"},
		{"folded header", "CONNECT allowed.test:443 HTTP/1.1\r\nX-A: b\r\n c\r\n\r\n", 400, "folded header lines"},
		{"no colon", "CONNECT allowed.test:443 HTTP/1.1\r\nX-A\r\n\r\n", 400, "header line without a colon"},
		{"two spaces in request line", "CONNECT  allowed.test:443 HTTP/1.1\r\n\r\n", 400, "request line has no target"},
		{"HTTP/2", "CONNECT allowed.test:443 HTTP/2.0\r\n\r\n", 505, "this proxy speaks HTTP/1.1"},
		{"not HTTP", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "malformed request line"},
		{"oversized header", "CONNECT allowed.test:443 HTTP/1.1\r\nX-A: " + strings.Repeat("a", 5000) + "\r\n\r\n", 431, "request header is larger than 4096 bytes"},
		{"too many headers", "CONNECT allowed.test:443 HTTP/1.1\r\n" + many + "\r\n", 431, "request has more than 100 header fields"},
		{"origin-form", "GET / HTTP/1.1\r\nHost: allowed.test\r\n" + auth + "\r\n", 400, "this is a proxy"},
		{"https absolute-form", "GET https://allowed.test/ HTTP/1.1\r\n" + auth + "\r\n", 400, "https:// URLs go through a CONNECT tunnel"},
		{"ftp", "GET ftp://allowed.test/ HTTP/1.1\r\n" + auth + "\r\n", 400, "unsupported URL scheme"},
		{"URL with userinfo", "GET http://u:p@plain.test/ HTTP/1.1\r\n" + auth + "\r\n", 400, "request URL has user information"},
		{"smuggling TE+CL", "POST http://plain.test/ HTTP/1.1\r\n" + auth + "Transfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\nabc", 400, "malformed request"},
		{"many blank lines", strings.Repeat("\r\n", 10) + "CONNECT allowed.test:443 HTTP/1.1\r\n\r\n", 400, "too many blank lines"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := e.dial()
			io.WriteString(conn, c.raw)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.HasPrefix(strings.TrimPrefix(resp.Status, resp.Status[:4]), c.reason) {
				t.Errorf("got %q, want %d %s...", resp.Status, c.status, c.reason)
			}
			if !resp.Close {
				t.Errorf("connection not closed after %q", resp.Status)
			}
		})
	}
	// The plain origin never saw the refused plain-HTTP requests.
	e.mu.Lock()
	n := len(e.plainReq)
	e.mu.Unlock()
	if n != 0 {
		t.Errorf("refused requests reached the origin: %d", n)
	}

	t.Run("one byte at a time", func(t *testing.T) {
		conn := e.dial()
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, b := range []byte("CONNECT allowed.test:443 HTTP/1.1\r\nX-Slow: ") {
				if _, err := conn.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("slow client: %v", err)
		}
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("slow client: %q", resp.Status)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("slow client held for %v, header timeout is 500ms", took)
		}
		conn.Close()
		<-done
	})
	t.Run("silent client", func(t *testing.T) {
		conn := e.dial()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("silent client: %v %v", resp, err)
		}
	})
	t.Run("half a request then gone", func(t *testing.T) {
		conn := e.dial()
		io.WriteString(conn, "CONNECT allowed.test:443 HTTP/1.1\r\nX-")
		conn.(*net.TCPConn).CloseWrite()
		_, err := conn.Read(make([]byte, 1))
		if !errors.Is(err, io.EOF) {
			t.Fatalf("want the gateway to close, got %v", err)
		}
	})
	t.Run("silent tunnel", func(t *testing.T) {
		// A tunnel whose client never speaks is closed after the header
		// timeout rather than held.
		conn := e.connectTunnel("allowed.test:" + e.tlsPort)
		start := time.Now()
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Fatal("silent tunnel answered")
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("silent tunnel held for %v", took)
		}
	})
	e.mustWork()
	waitFor(t, "connections to be released", func() bool { return metricValue(t, e.gw.m.activeConns) <= 1 })
}
