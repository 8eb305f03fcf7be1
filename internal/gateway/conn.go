package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// readerPool holds the bufio.Readers of request heads. A tunnel gives its
// reader back once the handshake is over, so idle tunnels hold none.
var readerPool sync.Pool

func getReader(r io.Reader) *bufio.Reader {
	if br, ok := readerPool.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, 4096)
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

// serveConn reads requests from a client until it asks for a tunnel, a
// request fails, or the client goes away.
func (g *Gateway) serveConn(cc *clientConn) {
	br := getReader(cc)
	handedOff := false
	defer func() {
		if !handedOff {
			putReader(br)
			g.forget(cc)
		}
	}()
	for first := true; ; first = false {
		// Until the first byte of a request arrives the connection is
		// idle, and Shutdown may close it. A new connection gets the
		// header timeout for it, a kept-alive one the idle timeout.
		if !g.setState(cc, stateIdle) {
			return
		}
		wait := g.idleTimeout
		if first {
			wait = g.headerTimeout
		}
		cc.SetReadDeadline(time.Now().Add(wait))
		if _, err := br.Peek(1); err != nil {
			if first {
				g.headError(cc, err)
			}
			return
		}
		g.setState(cc, stateHandshake)
		if !first {
			// A new connection's header timeout counts from its accept,
			// so that a slow first byte does not buy a slow client time.
			cc.SetReadDeadline(time.Now().Add(g.headerTimeout))
		}
		head, err := readHead(br, g.maxHeaderBytes)
		if err != nil {
			g.headError(cc, err)
			return
		}
		if head.method == http.MethodConnect {
			handedOff = g.handleConnect(cc, br, head)
			return
		}
		if !g.handleHTTP(cc, br, head) {
			return
		}
	}
}

// headError answers a request head that could not be read.
func (g *Gateway) headError(cc *clientConn, err error) {
	var se *statusError
	switch {
	case errors.Is(err, io.EOF):
		return // the client left between requests
	case errors.As(err, &se):
		g.m.invalidRequests.Inc()
		g.log.Debug("refused malformed request", "client", cc.RemoteAddr().String(), "status", se.status, "err", se.msg)
		refuse(cc, se.status, se.msg, nil)
	case errors.Is(err, os.ErrDeadlineExceeded):
		g.m.invalidRequests.Inc()
		g.log.Debug("request header timeout", "client", cc.RemoteAddr().String())
		refuse(cc, http.StatusRequestTimeout, "request header not received in time", nil)
	default:
		g.log.Debug("read request", "client", cc.RemoteAddr().String(), "err", err)
	}
}

// identify finds who sent a request. ok false means the request was
// answered (407 or 503) and the connection is done.
func (g *Gateway) identify(ctx context.Context, cc *clientConn, br *bufio.Reader, head *requestHead) (Identity, bool) {
	user, token, present, valid := proxyCredentials(head.values("Proxy-Authorization"))
	if !present && g.cfg.AllowAnonymous {
		return Identity{Org: g.cfg.AnonymousOrg}, true
	}
	challenge := []string{`Proxy-Authenticate: Basic realm="regward"`}
	if !valid {
		g.m.authFailures.Inc()
		g.log.Info("proxy client without a usable credential", "client", cc.RemoteAddr().String(), "present", present)
		refuseRequest(cc, br, head, http.StatusProxyAuthRequired, signInReason, challenge)
		return Identity{}, false
	}
	id, err := g.cfg.Auth.Authenticate(ctx, user, token)
	switch {
	case err == nil:
		if id.Org == "" {
			g.log.Error("authenticator returned an identity without an org", "user", user)
			refuseRequest(cc, br, head, http.StatusProxyAuthRequired, signInReason, challenge)
			return Identity{}, false
		}
		return id, true
	case errors.Is(err, ErrUnauthenticated):
		g.m.authFailures.Inc()
		g.log.Info("proxy client credential refused", "client", cc.RemoteAddr().String(), "user", user)
		refuseRequest(cc, br, head, http.StatusProxyAuthRequired, signInReason, challenge)
	default:
		// Not the client's fault: a 407 would send them to sign in again.
		g.log.Error("cannot check proxy credential", "user", user, "err", err)
		refuse(cc, http.StatusServiceUnavailable, "the gateway cannot check credentials right now; try again shortly", nil)
	}
	return Identity{}, false
}

// decide looks up the org's policy and decides a host-level request,
// recording the decision. It fails closed: an unknown or expired policy
// denies with a reason that says so.
func (g *Gateway) decide(ctx context.Context, id Identity, method, host string, port uint16, started time.Time) (policy.Decision, *policy.Compiled, int64) {
	c, version, err := g.cfg.Policies.Policy(ctx, id.Org)
	var d policy.Decision
	if err != nil {
		reason := err.Error()
		if !strings.HasPrefix(reason, "policy for organization ") {
			reason = "policy for organization " + id.Org + " is unknown: " + reason
		}
		d = policy.Decision{Host: host, Rule: "policy", Reason: reason}
		c = nil
	} else {
		g.m.version.WithLabelValues(id.Org).Set(float64(version))
		d = c.Decide(policy.Request{Host: host, Port: port, Owner: id.Owner})
	}
	g.m.latency.Observe(time.Since(started).Seconds())
	g.record(id, method, host, port, d)
	return d, c, version
}

// record counts, logs and records a decision: denials always, allowed
// decisions when LogAllowed.
func (g *Gateway) record(id Identity, method, host string, port uint16, d policy.Decision) {
	if d.Allowed {
		g.m.allowed.Inc()
		g.logAllowed(id, method, host, port, d)
	} else {
		g.m.denied.Inc()
		g.logDenied(id, method, host, port, d)
	}
	if g.cfg.Decisions == nil || (d.Allowed && !g.cfg.LogAllowed) {
		return
	}
	g.cfg.Decisions.Record(store.DecisionRecord{
		Time:     time.Now().UTC(),
		Org:      id.Org,
		User:     id.User,
		Host:     host,
		Port:     int(port),
		Method:   method,
		Category: string(d.Category),
		Rule:     d.Rule,
		Allowed:  d.Allowed,
		Reason:   d.Reason,
		Gateway:  g.cfg.Name,
	})
}

// logDenied and logAllowed log a decision with typed attributes (no
// conversion to interfaces); they are functions of their own so that their
// argument arrays do not weigh on the stack of every request.
func (g *Gateway) logDenied(id Identity, method, host string, port uint16, d policy.Decision) {
	g.log.LogAttrs(context.Background(), slog.LevelInfo, "denied",
		slog.String("org", id.Org), slog.String("user", id.User), slog.String("host", host), slog.Uint64("port", uint64(port)),
		slog.String("method", method), slog.String("rule", d.Rule), slog.String("reason", d.Reason))
}

func (g *Gateway) logAllowed(id Identity, method, host string, port uint16, d policy.Decision) {
	g.log.LogAttrs(context.Background(), slog.LevelDebug, "allowed",
		slog.String("org", id.Org), slog.String("user", id.User), slog.String("host", host), slog.Uint64("port", uint64(port)),
		slog.String("method", method), slog.String("rule", d.Rule))
}

// requestContext bounds the decision phase of a request; it ends too when
// a forced shutdown cancels the gateway.
func (g *Gateway) requestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(g.ctx, decisionTimeout)
}

// dialFailed answers a failed upstream connection.
func (g *Gateway) dialFailed(cc net.Conn, id Identity, host string, err error) {
	var de *dialError
	if !errors.As(err, &de) {
		de = &dialError{http.StatusBadGateway, "cannot connect to " + host, err}
	}
	g.log.Warn("upstream connection failed", "org", id.Org, "user", id.User, "host", host, "err", err)
	refuse(cc, de.status, de.reason, nil)
}
