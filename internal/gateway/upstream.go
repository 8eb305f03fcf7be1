package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/regward/regward/internal/policy"
)

// checkUpstream validates Config.Upstream.
func checkUpstream(u *url.URL) error {
	if u == nil {
		return nil
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("upstream gateway %s: use an http:// or https:// proxy URL", u.Redacted())
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("upstream gateway %s: want scheme://[user:token@]host:port and nothing else", u.Redacted())
	}
	return nil
}

// upstreamAddr is host:port of the upstream proxy, with the scheme's port
// when none is given.
func upstreamAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

func upstreamAuth(u *url.URL) string {
	if u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pw))
}

// dialViaUpstream opens a tunnel to host:port through the upstream gateway.
// A refusal keeps the upstream's status and reason phrase, so a client sees
// the central gateway's words unchanged.
func (g *Gateway) dialViaUpstream(ctx context.Context, host string, port uint16) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	u := g.cfg.Upstream
	shown := policy.JoinHostPort(host, port)
	raw, err := g.dialer.DialContext(ctx, "tcp", upstreamAddr(u))
	if err != nil {
		return nil, &dialError{http.StatusBadGateway, "cannot reach the upstream gateway " + u.Host, err}
	}
	c := raw
	if u.Scheme == "https" {
		tc := tls.Client(raw, &tls.Config{ServerName: u.Hostname(), RootCAs: g.cfg.UpstreamRoots, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, &dialError{http.StatusBadGateway, "TLS to the upstream gateway " + u.Host + " failed", err}
		}
		c = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(port)))
	var req strings.Builder
	fmt.Fprintf(&req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if a := upstreamAuth(u); a != "" {
		fmt.Fprintf(&req, "Proxy-Authorization: %s\r\n", a)
	}
	req.WriteString("\r\n")
	if _, err := c.Write([]byte(req.String())); err != nil {
		c.Close()
		return nil, &dialError{http.StatusBadGateway, "cannot reach the upstream gateway " + u.Host, err}
	}
	br := bufio.NewReaderSize(c, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, &dialError{http.StatusBadGateway, "the upstream gateway " + u.Host + " gave no answer to CONNECT " + shown, err}
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		reason := strings.TrimSpace(strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode)))
		if reason == "" {
			reason = http.StatusText(resp.StatusCode)
		}
		return nil, &dialError{resp.StatusCode, reason, errors.New("refused by the upstream gateway")}
	}
	_ = c.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		// The client speaks first in TLS, so nothing should be buffered;
		// if something is, it must not be lost.
		return &bufferedConn{Conn: c, br: br}, nil
	}
	return c, nil
}
