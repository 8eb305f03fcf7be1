package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxConns       = 10000
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultMaxHeaderBytes = 32 << 10
)

const (
	// decisionTimeout bounds authentication and the policy look-up of one
	// request, which may wait for a first snapshot from the control plane.
	decisionTimeout = 15 * time.Second
	// dialTimeout bounds resolving and connecting to the upstream.
	dialTimeout = 10 * time.Second
	// maxRejecting bounds the goroutines that answer 503 beyond MaxConns, so
	// that a flood cannot turn the refusal itself into unbounded work.
	maxRejecting = 64
	// maxIdleServers bounds the goroutines that wait for the next
	// connection after serving one (see serve).
	maxIdleServers = 32
)

// PolicySource returns an org's compiled policy and its version. An error
// means the policy is unknown or expired; its text goes into the denial
// reason. Texts that start with "policy for organization " are used as they
// are, others are prefixed with "policy for organization ORG is unknown: ".
type PolicySource interface {
	Policy(ctx context.Context, org string) (*policy.Compiled, int64, error)
}

// DecisionSink records decisions; Record must never block.
type DecisionSink interface {
	Record(store.DecisionRecord)
}

// Config configures a Gateway. Zero values are ready to use except Auth and
// Policies, which are required.
type Config struct {
	Auth      Authenticator
	Policies  PolicySource
	Decisions DecisionSink // nil: decisions are only logged
	// AllowAnonymous with AnonymousOrg: clients without credentials act as
	// an anonymous member of that org (never with the owner bypass).
	// Clients that do send credentials must still send good ones.
	AllowAnonymous bool
	AnonymousOrg   string
	// Resolve maps a host name to "IP:PORT" (or "IP", keeping the requested
	// port) to dial instead of resolving the name: --resolve NAME=IP:PORT.
	Resolve  map[string]string
	Resolver *net.Resolver // nil: the system resolver
	// LogAllowed records allowed decisions too; denials always are.
	LogAllowed bool
	MaxConns   int // client connections held at once; 0: DefaultMaxConns
	// HeaderTimeout bounds reading a request head and, in a tunnel, the
	// TLS ClientHello; 0: DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// IdleTimeout closes a tunnel that carried no byte either way for this
	// long (checked in quarters: it closes between IdleTimeout and 1.25 x
	// IdleTimeout), and a plain-HTTP connection that waits this long for its
	// next request; 0: DefaultIdleTimeout.
	IdleTimeout    time.Duration
	MaxHeaderBytes int // 0: DefaultMaxHeaderBytes
	Name           string
	Registerer     prometheus.Registerer // nil: metrics are kept but not exported
	Logger         *slog.Logger          // nil: discard
	// Interceptor, when set, may take over allowed CONNECT tunnels that need
	// request-level checks (TLS inspection). nil: every allowed tunnel is
	// passed through untouched.
	Interceptor Interceptor
	// Upstream chains every allowed request to another gateway (a central
	// one) instead of dialing the registry; its userinfo becomes the
	// Proxy-Authorization sent there. Resolve does not apply then.
	Upstream *url.URL
	// UpstreamRoots verifies an https:// Upstream; nil: system roots.
	UpstreamRoots *x509.CertPool
}

// Gateway is the forward proxy. Create it with New, run it with Serve and
// stop it with Shutdown.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	resolve   map[string]resolveTarget
	resolver  *net.Resolver
	dialer    net.Dialer
	transport *http.Transport
	m         *metrics

	maxConns       int
	headerTimeout  time.Duration
	idleTimeout    time.Duration
	maxHeaderBytes int

	// ctx is cancelled when Shutdown gives up waiting, so that requests
	// still deciding or forwarding stop.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*clientConn]struct{}
	closing   bool

	rejecting atomic.Int32

	// next hands an accepted connection to a goroutine waiting in serve;
	// idleServers counts those goroutines.
	next        chan *clientConn
	idleServers atomic.Int32
}

// connState says what a client connection is doing, for Shutdown.
type connState uint8

const (
	stateHandshake connState = iota // reading or deciding a request
	stateIdle                       // plain-HTTP keep-alive, between requests
	stateTunnel                     // a CONNECT tunnel is open
)

// clientConn is one accepted client connection. upstream and state are
// guarded by Gateway.mu.
type clientConn struct {
	net.Conn
	upstream net.Conn
	tunnel   *tunnel
	state    connState
}

// New checks cfg and returns a Gateway ready to Serve.
func New(cfg Config) (*Gateway, error) {
	if cfg.Auth == nil {
		return nil, errors.New("gateway: Config.Auth is required")
	}
	if cfg.Policies == nil {
		return nil, errors.New("gateway: Config.Policies is required")
	}
	if cfg.AllowAnonymous && !policy.ValidOrgName(cfg.AnonymousOrg) {
		return nil, fmt.Errorf("gateway: anonymous access needs the organization to bind clients to; %q is not an organization name", cfg.AnonymousOrg)
	}
	if cfg.MaxConns < 0 || cfg.HeaderTimeout < 0 || cfg.IdleTimeout < 0 || cfg.MaxHeaderBytes < 0 {
		return nil, errors.New("gateway: MaxConns, HeaderTimeout, IdleTimeout and MaxHeaderBytes must not be negative")
	}
	if err := checkUpstream(cfg.Upstream); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	resolve, err := parseResolve(cfg.Resolve)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("gateway: register metrics: %w", err)
	}
	g := &Gateway{
		cfg:            cfg,
		log:            cfg.Logger,
		resolve:        resolve,
		resolver:       cfg.Resolver,
		dialer:         net.Dialer{Timeout: dialTimeout},
		m:              m,
		maxConns:       orDefault(cfg.MaxConns, DefaultMaxConns),
		headerTimeout:  orDefault(cfg.HeaderTimeout, DefaultHeaderTimeout),
		idleTimeout:    orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		maxHeaderBytes: orDefault(cfg.MaxHeaderBytes, DefaultMaxHeaderBytes),
		listeners:      make(map[net.Listener]struct{}),
		conns:          make(map[*clientConn]struct{}),
		next:           make(chan *clientConn),
	}
	if g.log == nil {
		g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	g.transport = g.newTransport()
	g.ctx, g.cancel = context.WithCancel(context.Background())
	return g, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Serve accepts connections on ln until Shutdown, then returns
// http.ErrServerClosed. Several listeners may be served at once.
func (g *Gateway) Serve(ln net.Listener) error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	g.listeners[ln] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.listeners, ln)
		g.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if g.isClosing() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("gateway: accept: %w", err)
			}
			// Out of file descriptors and similar: wait and try again
			// rather than spin or give up on every client.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			g.log.Warn("gateway accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if cc := g.admit(c); cc != nil {
			select {
			case g.next <- cc:
			default:
				go g.serve(cc)
			}
		}
	}
}

// serve serves cc, then waits for the next connection Serve accepts,
// unless enough goroutines wait already. A goroutine that served a request
// has grown its stack to what a request needs (logging a decision takes
// several KiB); a new goroutine would start small and grow again, copying
// its stack on the way, which costs a refused connection a tenth of its
// time. The waiting goroutines end when the gateway has shut down.
func (g *Gateway) serve(cc *clientConn) {
	for {
		g.serveConn(cc)
		if g.idleServers.Add(1) > maxIdleServers {
			g.idleServers.Add(-1)
			return
		}
		select {
		case cc = <-g.next:
			g.idleServers.Add(-1)
		case <-g.ctx.Done():
			g.idleServers.Add(-1)
			return
		}
	}
}

func (g *Gateway) isClosing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

// admit registers a new connection, or refuses it beyond MaxConns.
func (g *Gateway) admit(c net.Conn) *clientConn {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		c.Close()
		return nil
	}
	if len(g.conns) >= g.maxConns {
		g.mu.Unlock()
		g.m.rejected.Inc()
		if g.rejecting.Add(1) > maxRejecting {
			g.rejecting.Add(-1)
			c.Close()
			return nil
		}
		go func() {
			defer g.rejecting.Add(-1)
			c.SetDeadline(time.Now().Add(2 * time.Second))
			refuse(c, http.StatusServiceUnavailable, "gateway is at its connection limit; try again later", nil)
		}()
		return nil
	}
	cc := &clientConn{Conn: c}
	g.conns[cc] = struct{}{}
	g.mu.Unlock()
	g.m.activeConns.Inc()
	return cc
}

// forget closes a client connection and whatever upstream it holds.
func (g *Gateway) forget(cc *clientConn) {
	g.mu.Lock()
	_, ok := g.conns[cc]
	delete(g.conns, cc)
	up := cc.upstream
	g.mu.Unlock()
	if !ok {
		return
	}
	g.m.activeConns.Dec()
	cc.Close()
	if up != nil {
		up.Close()
	}
}

// setState records what a connection is doing. It reports false when the
// gateway is shutting down and the connection should not wait for another
// request.
func (g *Gateway) setState(cc *clientConn, s connState) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	cc.state = s
	return !(g.closing && s == stateIdle)
}

// setUpstream records the upstream of a tunnel so that a forced shutdown
// closes it too.
func (g *Gateway) setUpstream(cc *clientConn, up net.Conn) {
	g.mu.Lock()
	cc.upstream = up
	g.mu.Unlock()
}

// Shutdown stops accepting, closes idle plain-HTTP connections and tunnels
// that have been quiet for a second (clients keep idle tunnels as they keep
// idle connections), and waits for requests and transfers in progress to
// finish until ctx ends; then it closes what is left and returns ctx's
// error.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closing = true
	for ln := range g.listeners {
		ln.Close()
	}
	g.closeIdleLocked()
	g.mu.Unlock()
	g.transport.CloseIdleConnections()

	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastDrain := time.Time{}
	for {
		g.mu.Lock()
		// Keep-alive connections that went idle since the last look.
		g.closeIdleLocked()
		left := len(g.conns)
		var tunnels []*tunnel
		if time.Since(lastDrain) >= drainPeriod {
			lastDrain = time.Now()
			for cc := range g.conns {
				if cc.tunnel != nil {
					tunnels = append(tunnels, cc.tunnel)
				}
			}
		}
		g.mu.Unlock()
		// Tunnels are the keep-alive connections of CONNECT clients: the
		// quiet ones close, transfers in progress run to their end.
		for _, t := range tunnels {
			t.drain()
		}
		if left == 0 {
			g.cancel()
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			g.cancel()
			g.closeAll()
			return ctx.Err()
		}
	}
}

func (g *Gateway) closeIdleLocked() {
	for cc := range g.conns {
		if cc.state == stateIdle {
			cc.Close()
		}
	}
}

func (g *Gateway) closeAll() {
	g.mu.Lock()
	var all []*clientConn
	for cc := range g.conns {
		all = append(all, cc)
	}
	g.mu.Unlock()
	for _, cc := range all {
		g.forget(cc)
	}
	g.transport.CloseIdleConnections()
}
