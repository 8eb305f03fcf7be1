package clienttest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testProxy is a minimal CONNECT proxy that lets the harness tests prove,
// without the gateway, that each client really sends its traffic and its
// credential through the proxy it was given and prints the proxy's reason
// phrase. It sends every allowed tunnel to one upstream address.
type testProxy struct {
	URL      string // http://alice:secret@127.0.0.1:PORT
	upstream string
	user     string
	token    string
	deny     map[string]bool // host names refused with 403

	ln net.Listener
	mu sync.Mutex
	// connects lists "user host:port status" per CONNECT, in order.
	connects []string
}

const (
	testDenyReason = "blocked by the harness test proxy"
	testAuthReason = "harness test proxy wants a credential"
)

func startTestProxy(t *testing.T, upstream, user, token string, deny ...string) *testProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &testProxy{
		URL:      fmt.Sprintf("http://%s:%s@%s", user, token, ln.Addr()),
		upstream: upstream,
		user:     user,
		token:    token,
		deny:     map[string]bool{},
		ln:       ln,
	}
	for _, d := range deny {
		p.deny[d] = true
	}
	go p.serve()
	t.Cleanup(func() { ln.Close() })
	return p
}

// withToken returns the proxy URL with another token.
func (p *testProxy) withToken(token string) string {
	return fmt.Sprintf("http://%s:%s@%s", p.user, token, p.ln.Addr())
}

func (p *testProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *testProxy) log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.connects...)
}

func (p *testProxy) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	user, token := proxyCredential(req)
	status := 200
	switch {
	case req.Method != http.MethodConnect:
		status = 405
	case user != p.user || token != p.token:
		status = 407
	case p.deny[req.URL.Hostname()]:
		status = 403
	}
	p.mu.Lock()
	p.connects = append(p.connects, fmt.Sprintf("%s %s %d", user, req.Host, status))
	p.mu.Unlock()
	switch status {
	case 405:
		io.WriteString(c, "HTTP/1.1 405 CONNECT only\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	case 407:
		io.WriteString(c, "HTTP/1.1 407 "+testAuthReason+"\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	case 403:
		io.WriteString(c, "HTTP/1.1 403 registry "+req.Host+" is "+testDenyReason+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		return
	}
	up, err := net.DialTimeout("tcp", p.upstream, 10*time.Second)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 upstream down\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	c.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, br); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
}

func proxyCredential(req *http.Request) (user, token string) {
	h := req.Header.Get("Proxy-Authorization")
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return "", ""
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", ""
	}
	user, token, _ = strings.Cut(string(raw), ":")
	return user, token
}
