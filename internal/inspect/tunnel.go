package inspect

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/policy"
)

// upstreamHandshakeTimeout bounds connecting to a registry and its TLS
// handshake.
const upstreamHandshakeTimeout = 15 * time.Second

// tunnel is one inspected CONNECT tunnel: the client's connection, served
// by its own small http.Server, and a transport that reaches the CONNECT
// host through the gateway's dial.
type tunnel struct {
	in        *Inspector
	req       gateway.TunnelRequest
	shown     string // host[:port] as messages show it
	authority string // host[:port] for upstream URLs
	tr        *http.Transport
	ln        *connListener // set by serve
	dial      func(context.Context) (net.Conn, error)
	tlsConf   *tls.Config
}

// newTunnel prepares the way to the registry; h2 offers HTTP/2 to it
// besides HTTP/1.1.
func newTunnel(in *Inspector, req gateway.TunnelRequest, dial func(context.Context) (net.Conn, error), h2 bool) *tunnel {
	t := &tunnel{
		in:        in,
		req:       req,
		shown:     policy.JoinHostPort(req.Host, req.Port),
		authority: authorityOf(req.Host, req.Port),
		dial:      dial,
		tlsConf: &tls.Config{
			ServerName:         req.Host,
			RootCAs:            in.opts.UpstreamRoots,
			NextProtos:         []string{"http/1.1"},
			MinVersion:         tls.VersionTLS12,
			ClientSessionCache: in.sessions,
		},
	}
	if h2 {
		t.tlsConf.NextProtos = []string{"h2", "http/1.1"}
	}
	t.tr = &http.Transport{
		Proxy: nil, // the gateway's dial is the only way out
		// Every connection goes to the CONNECT host, whatever address the
		// transport thinks it is dialling.
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return t.dialTLS(ctx)
		},
		ForceAttemptHTTP2:      h2,
		MaxIdleConnsPerHost:    4,
		MaxConnsPerHost:        16,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true, // relay bodies as the registry sent them
		MaxResponseHeaderBytes: 1 << 20,
		// Larger DATA frames from HTTP/2 registries: fewer frames and
		// reads per blob.
		HTTP2: &http.HTTP2Config{MaxReadFrameSize: 1 << 20},
	}
	return t
}

// dialTLS connects to the CONNECT host through the gateway and verifies
// it against the upstream roots.
func (t *tunnel) dialTLS(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, upstreamHandshakeTimeout)
	defer cancel()
	raw, err := t.dial(ctx)
	if err != nil {
		return nil, &upstreamError{stage: "connect", err: err}
	}
	tc := tls.Client(raw, t.tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &upstreamError{stage: "tls", err: err}
	}
	return tc, nil
}

func (t *tunnel) close() {
	t.tr.CloseIdleConnections()
}

// serve runs an HTTP server (HTTP/1.1 and HTTP/2, as the client chose in
// ALPN) on the one client connection, until it closes or ctx ends.
func (t *tunnel) serve(ctx context.Context, tc *tls.Conn) {
	ln := &connListener{conn: tc, stop: make(chan struct{}), over: make(chan struct{})}
	t.ln = ln
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	srv := &http.Server{
		Handler:           t,
		ReadHeaderTimeout: t.in.opts.HandshakeTimeout,
		IdleTimeout:       t.in.opts.IdleTimeout,
		MaxHeaderBytes:    t.in.opts.MaxHeaderBytes,
		ErrorLog:          t.in.httpLog,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		// A hijacked connection (denyInStatusLine) is over when the
		// handler that took it closes it and says so.
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateClosed {
				ln.connOver()
			}
		},
		Protocols: &protos,
		HTTP2:     &http.HTTP2Config{MaxConcurrentStreams: t.in.opts.MaxStreams},
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	t.in.track(srv)
	defer t.in.untrack(srv)
	_ = srv.Serve(ln)
	if !ln.handedOut() {
		// Shut down before it began.
		tc.Close()
		return
	}
	// Serve returns when the listener closes, which a drain does at once;
	// the connection's requests may still be running.
	<-ln.over
}

// connListener hands one connection to an http.Server, then blocks Accept
// until the connection is over or the listener is closed. net/http serves
// HTTP/2 on it only if it is the *tls.Conn itself, which is why the
// connection is not wrapped.
type connListener struct {
	conn     *tls.Conn
	mu       sync.Mutex
	used     bool
	stop     chan struct{} // closed by Close
	over     chan struct{} // closed when the connection has closed
	stopOnce sync.Once
	overOnce sync.Once
}

func (l *connListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	first := !l.used
	l.used = true
	l.mu.Unlock()
	if first {
		return l.conn, nil
	}
	select {
	case <-l.stop:
	case <-l.over:
	}
	return nil, net.ErrClosed
}

func (l *connListener) handedOut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}

func (l *connListener) connOver() { l.overOnce.Do(func() { close(l.over) }) }

func (l *connListener) Close() error {
	l.stopOnce.Do(func() { close(l.stop) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.conn.LocalAddr() }
