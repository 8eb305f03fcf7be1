package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regward/regward/internal/policy"
)

const connectEstablished = "HTTP/1.1 200 Connection established\r\n\r\n"

// Rules named in decisions the gateway takes itself, after the policy
// allowed a tunnel.
const (
	ruleTunnelTLS        = "tunnel.tls"
	ruleTunnelServerName = "tunnel.serverName"
)

// parseConnectTarget reads the authority-form target of a CONNECT.
func parseConnectTarget(target string) (string, uint16, error) {
	if strings.Contains(target, "@") {
		return "", 0, badRequest("CONNECT target %s has user information; send credentials in Proxy-Authorization", strconv.Quote(target))
	}
	if strings.ContainsAny(target, "/?#\\") {
		return "", 0, badRequest("CONNECT target %s is not host:port", strconv.Quote(target))
	}
	host, port, err := policy.SplitHostPort(target)
	if err != nil {
		return "", 0, badRequest("CONNECT target: %v", err)
	}
	if port == 0 {
		return "", 0, badRequest("CONNECT target %s has no port", strconv.Quote(target))
	}
	return host, port, nil
}

// handleConnect answers a CONNECT. It reports whether it took over the
// connection (and br) for a tunnel; otherwise the caller closes both.
func (g *Gateway) handleConnect(cc *clientConn, br *bufio.Reader, head *requestHead) bool {
	started := time.Now()
	host, port, err := parseConnectTarget(head.target)
	if err != nil {
		g.headError(cc, err)
		return false
	}
	g.m.connectRequests.Inc()
	ctx, cancel := g.requestContext()
	defer cancel()
	id, ok := g.identify(ctx, cc, br, head)
	if !ok {
		return false
	}
	d, c, version := g.decide(ctx, id, http.MethodConnect, host, port, started)
	if !d.Allowed {
		refuseRequest(cc, br, head, http.StatusForbidden, d.Reason, nil)
		return false
	}
	req := TunnelRequest{Identity: id, Host: host, Port: port, Policy: c, PolicyVersion: version}
	if g.cfg.Interceptor != nil && g.cfg.Interceptor.Intercept(req) {
		g.intercept(cc, br, req)
		return true
	}
	if c.Inspect(host, port) && g.cfg.Upstream == nil {
		// Image rules, pull-only entries and push limits apply to this host,
		// and only inspection can enforce them: without it, fail closed. (A
		// chained gateway leaves them to its upstream.)
		d := policy.Decision{Host: host, Rule: "inspection",
			Reason: fmt.Sprintf("organization %s restricts images or pushes on %s, which this gateway cannot check without TLS inspection; ask an administrator to give it the gateway CA (--ca-cert/--ca-key)", id.Org, policy.JoinHostPort(host, port))}
		g.record(id, http.MethodConnect, host, port, d)
		refuseRequest(cc, br, head, http.StatusForbidden, d.Reason, nil)
		return false
	}
	return g.openTunnel(ctx, cc, br, req)
}

// openTunnel connects an allowed CONNECT to its upstream, checks the
// ClientHello and starts copying. It reports whether the tunnel runs.
func (g *Gateway) openTunnel(ctx context.Context, cc *clientConn, br *bufio.Reader, req TunnelRequest) bool {
	up, err := g.dialUpstream(ctx, req.Host, req.Port)
	if err != nil {
		g.dialFailed(cc, req.Identity, req.Host, err)
		return false
	}
	g.setUpstream(cc, up)
	cc.SetWriteDeadline(time.Now().Add(g.headerTimeout))
	if _, err := io.WriteString(cc, connectEstablished); err != nil {
		return false
	}
	cc.SetReadDeadline(time.Now().Add(g.headerTimeout))
	raw, ok := g.checkHello(br, req)
	if !ok {
		return false
	}
	// What the client sent so far goes upstream first, then the reader goes
	// back to the pool and the tunnel copies between the raw connections.
	up.SetWriteDeadline(time.Now().Add(g.headerTimeout))
	if _, err := up.Write(raw); err != nil {
		return false
	}
	g.m.bytesUp.Add(float64(len(raw)))
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		if _, err := up.Write(b); err != nil {
			return false
		}
		g.m.bytesUp.Add(float64(n))
	}
	putReader(br)
	cc.SetDeadline(time.Time{})
	up.SetDeadline(time.Time{})
	g.startTunnel(cc, up)
	return true
}

// checkHello reads the tunnel's ClientHello and checks its server name;
// refusals are recorded as denials. It returns the hello's bytes.
func (g *Gateway) checkHello(br *bufio.Reader, req TunnelRequest) ([]byte, bool) {
	id, host, port := req.Identity, req.Host, req.Port
	raw, sni, err := readClientHello(br)
	switch {
	case err == nil:
	case errors.Is(err, errNotTLS):
		g.record(id, http.MethodConnect, host, port, policy.Decision{Host: host, Rule: ruleTunnelTLS,
			Reason: "the tunnel to " + policy.JoinHostPort(host, port) + " did not start with TLS; tunnels carry TLS only"})
		return nil, false
	case errors.Is(err, os.ErrDeadlineExceeded):
		g.log.Debug("no ClientHello in time", "org", id.Org, "user", id.User, "host", host)
		return nil, false
	default:
		g.log.Debug("read ClientHello", "org", id.Org, "user", id.User, "host", host, "err", err)
		return nil, false
	}
	if reason, ok := checkServerName(host, port, sni); !ok {
		g.record(id, http.MethodConnect, host, port, policy.Decision{Host: host, Rule: ruleTunnelServerName, Reason: reason})
		return nil, false
	}
	return raw, true
}

// checkServerName refuses a ClientHello that names a host other than the
// one the policy allowed: CDNs route by SNI, so a different name would
// reach a host the policy never saw (domain fronting). An IP-literal
// CONNECT may go without a name (or name the literal itself).
func checkServerName(host string, port uint16, sni string) (string, bool) {
	shown := policy.JoinHostPort(host, port)
	_, ipErr := netip.ParseAddr(host)
	if sni == "" {
		if ipErr == nil {
			return "", true
		}
		return "the TLS ClientHello in the tunnel to " + shown + " names no server; it must name " + host, false
	}
	name, err := policy.NormalizeHost(sni)
	if err != nil {
		return fmt.Sprintf("TLS server name %s in the tunnel to %s is not a host name", strconv.QuoteToASCII(truncate(sni, 64)), shown), false
	}
	if name != host {
		return fmt.Sprintf("TLS server name %s does not match the CONNECT host %s; domain fronting is not allowed", name, shown), false
	}
	return "", true
}

// intercept hands an allowed tunnel to the Interceptor.
func (g *Gateway) intercept(cc *clientConn, br *bufio.Reader, req TunnelRequest) {
	defer g.forget(cc)
	cc.SetWriteDeadline(time.Now().Add(g.headerTimeout))
	if _, err := io.WriteString(cc, connectEstablished); err != nil {
		putReader(br)
		return
	}
	cc.SetDeadline(time.Time{})
	g.setState(cc, stateTunnel)
	g.m.tunnels.Inc()
	defer g.m.tunnels.Dec()
	dial := func(ctx context.Context) (net.Conn, error) {
		up, err := g.dialUpstream(ctx, req.Host, req.Port)
		if err == nil {
			g.setUpstream(cc, up)
		}
		return up, err
	}
	g.cfg.Interceptor.ServeTunnel(g.ctx, &bufferedConn{Conn: cc.Conn, br: br}, req, dial)
}

// tunnel copies bytes both ways between a client and its upstream. Each
// direction runs in its own small goroutine; the request's goroutine has
// returned by then, so its grown stack is not kept for the life of the
// tunnel.
type tunnel struct {
	g      *Gateway
	cc     *clientConn
	up     net.Conn
	period time.Duration // how often each direction wakes to check idleness
	idle   time.Duration
	// draining is set by Shutdown: the tunnel then counts as idle after
	// drainIdle without traffic, like a keep-alive connection between
	// requests, while a transfer in progress runs to its end.
	draining atomic.Bool
	// lastActive is when a direction last paused having moved bytes
	// (unix nanoseconds).
	lastActive atomic.Int64
	finished   atomic.Int32
	closeOnce  sync.Once
}

// drainIdle is how long a tunnel must have been quiet to be closed while
// the gateway shuts down, and drainPeriod how often it is checked then.
const (
	drainIdle   = time.Second
	drainPeriod = 250 * time.Millisecond
)

func (g *Gateway) startTunnel(cc *clientConn, up net.Conn) {
	t := &tunnel{g: g, cc: cc, up: up, period: max(g.idleTimeout/4, time.Millisecond), idle: g.idleTimeout}
	t.lastActive.Store(time.Now().UnixNano())
	g.mu.Lock()
	cc.tunnel = t
	cc.state = stateTunnel
	draining := g.closing
	g.mu.Unlock()
	if draining {
		t.drain()
	}
	g.m.tunnels.Inc()
	// The raw connections, not cc: io.Copy splices only between two
	// *net.TCPConn it can see.
	go t.pipe(up, cc.Conn, g.m.bytesUp)
	go t.pipe(cc.Conn, up, g.m.bytesDown)
}

// pipe copies src to dst until src ends, an error, or the tunnel idles.
// Read deadlines make each copy pause every period, which both reports the
// bytes moved and lets an idle tunnel be noticed without wrapping the
// connections (a wrapper would defeat splice).
func (t *tunnel) pipe(dst, src net.Conn, moved prometheus.Counter) {
	defer t.finish()
	for {
		src.SetReadDeadline(time.Now().Add(t.checkEvery()))
		err := waitReadable(src)
		var n int64
		if err == nil {
			n, err = copyConn(dst, src)
			if n > 0 {
				t.lastActive.Store(time.Now().UnixNano())
				moved.Add(float64(n))
			}
			if err == nil {
				// src said EOF: pass the half-close on, and let the other
				// direction run until its own end.
				if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
					return
				}
				t.close()
				return
			}
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.close()
			return
		}
		if n == 0 && time.Since(time.Unix(0, t.lastActive.Load())) >= t.idleLimit() {
			t.g.log.Debug("closing idle tunnel", "client", t.cc.RemoteAddr().String(), "upstream", t.up.RemoteAddr().String())
			t.close()
			return
		}
	}
}

func (t *tunnel) checkEvery() time.Duration {
	if t.draining.Load() {
		return min(t.period, drainPeriod)
	}
	return t.period
}

func (t *tunnel) idleLimit() time.Duration {
	if t.draining.Load() {
		return min(t.idle, drainIdle)
	}
	return t.idle
}

// drain switches the tunnel to shutdown checks and wakes both directions
// so that they take the shorter period. Shutdown calls it repeatedly: a
// direction may re-arm its deadline just after a wake-up with the old
// period.
func (t *tunnel) drain() {
	t.draining.Store(true)
	wake := time.Now().Add(drainPeriod)
	t.cc.Conn.SetReadDeadline(wake)
	t.up.SetReadDeadline(wake)
}

func (t *tunnel) close() {
	t.closeOnce.Do(func() {
		t.cc.Conn.Close()
		t.up.Close()
	})
}

func (t *tunnel) finish() {
	if t.finished.Add(1) == 2 {
		t.close()
		t.g.m.tunnels.Dec()
		t.g.forget(t.cc)
	}
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// copyConn copies with splice between two TCP connections, and otherwise
// (an HTTPS proxy listener's TLS connection) through a pooled buffer rather
// than the 32 KiB one io.Copy would allocate at every pause.
func copyConn(dst, src net.Conn) (int64, error) {
	_, dstTCP := dst.(*net.TCPConn)
	_, srcTCP := src.(*net.TCPConn)
	if dstTCP && srcTCP {
		return io.Copy(dst, src)
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
}
