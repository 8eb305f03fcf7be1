package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// statusError is a proxy's non-200 answer to CONNECT.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("CONNECT answered %d", e.code) }

// bufConn keeps bytes the CONNECT reader buffered past the response.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

var dialer = &net.Dialer{Timeout: 10 * time.Second}

// dialVia opens a TCP path to dest: directly when proxy is empty, else
// through a CONNECT tunnel.
func dialVia(ctx context.Context, proxy, dest string) (net.Conn, error) {
	if proxy == "" {
		return dialer.DialContext(ctx, "tcp", dest)
	}
	c, err := dialer.DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, fmt.Errorf("dial proxy: %w", err)
	}
	code, br, err := connect(c, dest)
	if err != nil {
		c.Close()
		return nil, err
	}
	if code != http.StatusOK {
		c.Close()
		return nil, &statusError{code}
	}
	if br.Buffered() > 0 {
		return &bufConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// connect sends CONNECT dest and reads the status and headers (not a body:
// a refusing proxy's body is discarded with the connection).
func connect(c net.Conn, dest string) (int, *bufio.Reader, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "CONNECT "+dest+" HTTP/1.1\r\nHost: "+dest+"\r\n\r\n"); err != nil {
		return 0, nil, fmt.Errorf("send CONNECT: %w", err)
	}
	br := bufio.NewReaderSize(c, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return 0, nil, fmt.Errorf("read CONNECT response: %w", err)
	}
	return resp.StatusCode, br, nil
}

// handshake runs a full TLS handshake (no session cache, so no
// resumption) over c to the origin.
func handshake(ctx context.Context, c net.Conn, pool *x509.CertPool) (*tls.Conn, error) {
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// get sends one GET and reads the whole body, returning its length.
func get(c net.Conn, host, path string, timeout time.Duration) (int64, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, fmt.Errorf("send GET: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 64<<10), nil)
	if err != nil {
		return 0, fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, fmt.Errorf("read body: %w", err)
	}
	return n, nil
}

// fetch is one whole request: path (tunnel or direct), TLS, GET, close.
func fetch(ctx context.Context, proxy string, o *origin, path string, timeout time.Duration) (int64, error) {
	c, err := dialVia(ctx, proxy, o.addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	tc, err := handshake(ctx, c, o.pool)
	if err != nil {
		return 0, err
	}
	return get(tc, o.addr, path, timeout)
}
