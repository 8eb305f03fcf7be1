package inspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regward/regward/internal/gateway"
	"github.com/regward/regward/internal/gwca"
	"github.com/regward/regward/internal/policy"
)

// Defaults for the zero values of Options.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultMaxHeaderBytes   = 64 << 10
	// DefaultMaxStreams bounds the concurrent HTTP/2 requests of one
	// client connection; pulls run a handful at once.
	DefaultMaxStreams = 100
)

// Rules named in decisions the inspector takes itself rather than the
// policy. The first two are the gateway's own names for the same checks.
const (
	ruleTunnelTLS        = "tunnel.tls"
	ruleTunnelServerName = "tunnel.serverName"
	rulePolicy           = "policy"
)

// Options configure an Inspector. CA and Policies are required; zero
// values of the others are ready to use.
type Options struct {
	// CA mints the leaf each inspected tunnel presents to its client.
	CA *gwca.CA
	// UpstreamRoots verify the registries' certificates: the system roots
	// plus --upstream-ca. nil: the system roots.
	UpstreamRoots *x509.CertPool
	// Policies is the gateway's policy source. Each request is decided with
	// the org's current policy rather than the one its tunnel opened with,
	// so a change applies to connections that clients keep alive.
	Policies gateway.PolicySource
	// Decisions receives the decision log: denials always, allowed
	// requests when LogAllowed. nil: decisions are only logged.
	Decisions  gateway.DecisionSink
	LogAllowed bool
	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: metrics are kept but not exported
	Name       string                // the gateway's name, in decision records

	// HandshakeTimeout bounds the client's TLS handshake and the reading
	// of each request head; 0: DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a client connection that waits this long for its
	// next request, and ends a transfer that moves no byte either way for
	// this long; 0: DefaultIdleTimeout.
	IdleTimeout    time.Duration
	MaxHeaderBytes int // 0: DefaultMaxHeaderBytes
	MaxStreams     int // HTTP/2 streams per client connection; 0: DefaultMaxStreams
}

// Inspector is the gateway.Interceptor that inspects registry traffic.
// Create it with New and give it to gateway.Config.Interceptor.
type Inspector struct {
	opts    Options
	log     *slog.Logger
	httpLog *log.Logger // net/http's own complaints, at debug level
	m       *metrics
	// serverTLS is cloned for each tunnel; clones share the session
	// ticket keys, so a client can resume a session in a later tunnel.
	serverTLS *tls.Config
	// sessions lets tunnels resume TLS sessions with registries that
	// earlier tunnels opened.
	sessions tls.ClientSessionCache

	mu       sync.Mutex
	servers  map[*http.Server]struct{} // one per open tunnel
	draining bool
}

var _ gateway.Interceptor = (*Inspector)(nil)

// New checks opts and returns an Inspector.
func New(opts Options) (*Inspector, error) {
	if opts.CA == nil {
		return nil, errors.New("inspect: Options.CA is required: inspection presents certificates of the gateway CA")
	}
	if opts.Policies == nil {
		return nil, errors.New("inspect: Options.Policies is required: each request is decided with the org's current policy")
	}
	if opts.HandshakeTimeout < 0 || opts.IdleTimeout < 0 || opts.MaxHeaderBytes < 0 || opts.MaxStreams < 0 {
		return nil, errors.New("inspect: timeouts and limits must not be negative")
	}
	opts.HandshakeTimeout = orDefault(opts.HandshakeTimeout, DefaultHandshakeTimeout)
	opts.IdleTimeout = orDefault(opts.IdleTimeout, DefaultIdleTimeout)
	opts.MaxHeaderBytes = orDefault(opts.MaxHeaderBytes, DefaultMaxHeaderBytes)
	opts.MaxStreams = orDefault(opts.MaxStreams, DefaultMaxStreams)
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("inspect: register metrics: %w", err)
	}
	in := &Inspector{
		opts: opts,
		log:  opts.Logger,
		m:    m,
		serverTLS: &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"},
		},
		sessions: tls.NewLRUClientSessionCache(256),
		servers:  make(map[*http.Server]struct{}),
	}
	if in.log == nil {
		in.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	in.httpLog = slog.NewLogLogger(in.log.Handler(), slog.LevelDebug)
	return in, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Intercept takes the tunnels whose requests the policy must see.
func (in *Inspector) Intercept(req gateway.TunnelRequest) bool {
	return req.Policy != nil && req.Policy.Inspect(req.Host, req.Port)
}

// ServeTunnel ends the client's TLS with a leaf for the CONNECT host and
// serves its requests until the client leaves, the connection idles, or
// ctx ends.
func (in *Inspector) ServeTunnel(ctx context.Context, client net.Conn, req gateway.TunnelRequest, dial func(context.Context) (net.Conn, error)) {
	defer client.Close()
	in.m.tunnels.Inc()
	defer in.m.tunnels.Dec()
	tc, ok := in.handshake(ctx, client, req)
	if !ok {
		return
	}
	// The registry is asked in the protocol the client chose: HTTP/2
	// multiplexes an HTTP/2 client's concurrent requests on one upstream
	// connection, while an HTTP/1.1 client sends one request at a time,
	// which HTTP/1.1 carries with less work per byte (measured with
	// bench/inspectbench).
	t := newTunnel(in, req, dial, tc.ConnectionState().NegotiatedProtocol == "h2")
	defer t.close()
	t.serve(ctx, tc)
}

// Drain makes every inspected tunnel end the way a server's keep-alive
// connections do when it shuts down: idle connections close now, HTTP/2
// clients are told to go away, and requests in progress run to their end.
// Tunnels opened later are drained as they start. Call it when the gateway
// begins its Shutdown, which otherwise waits for these tunnels (clients
// keep them open) until its context ends.
func (in *Inspector) Drain() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.draining = true
	for srv := range in.servers {
		go srv.Shutdown(context.Background())
	}
}

func (in *Inspector) track(srv *http.Server) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.servers[srv] = struct{}{}
	if in.draining {
		go srv.Shutdown(context.Background())
	}
}

func (in *Inspector) untrack(srv *http.Server) {
	in.mu.Lock()
	delete(in.servers, srv)
	in.mu.Unlock()
}

var errServerName = errors.New("the ClientHello names another server than the CONNECT host")

// handshake runs the client's TLS handshake, refusing a ClientHello that
// names a server other than the CONNECT host: the leaf names that host, and
// the policy decided only that one.
func (in *Inspector) handshake(ctx context.Context, client net.Conn, req gateway.TunnelRequest) (*tls.Conn, bool) {
	var refused string
	cfg := in.serverTLS.Clone()
	// The check is here rather than in GetCertificate, which a resumed
	// session skips.
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if reason, ok := checkServerName(req.Host, req.Port, hello.ServerName); !ok {
			refused = reason
			return nil, errServerName
		}
		return nil, nil
	}
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return in.opts.CA.Leaf(req.Host)
	}
	tc := tls.Server(client, cfg)
	client.SetDeadline(time.Now().Add(in.opts.HandshakeTimeout))
	err := tc.HandshakeContext(ctx)
	if err == nil {
		client.SetDeadline(time.Time{})
		in.m.handshakes.WithLabelValues("ok").Inc()
		return tc, true
	}
	var rhe tls.RecordHeaderError
	switch {
	case refused != "":
		in.m.handshakes.WithLabelValues("refused").Inc()
		in.recordTunnel(req, policy.Decision{Host: req.Host, Rule: ruleTunnelServerName, Reason: refused})
	case errors.As(err, &rhe):
		in.m.handshakes.WithLabelValues("refused").Inc()
		in.recordTunnel(req, policy.Decision{Host: req.Host, Rule: ruleTunnelTLS,
			Reason: "the tunnel to " + policy.JoinHostPort(req.Host, req.Port) + " did not start with TLS; tunnels carry TLS only"})
	case errors.Is(err, os.ErrDeadlineExceeded):
		in.m.handshakes.WithLabelValues("failed").Inc()
		in.log.Debug("no TLS handshake in time", "org", req.Identity.Org, "user", req.Identity.User, "host", req.Host)
	default:
		in.m.handshakes.WithLabelValues("failed").Inc()
		in.log.Debug("TLS handshake with client failed", "org", req.Identity.Org, "user", req.Identity.User, "host", req.Host, "err", err)
	}
	return nil, false
}

// checkServerName applies the gateway's tunnel rule to an inspected
// tunnel: the ClientHello must name the CONNECT host, except that an
// IP-literal CONNECT may go without a name.
func checkServerName(host string, port uint16, sni string) (string, bool) {
	shown := policy.JoinHostPort(host, port)
	if sni == "" {
		if _, err := netip.ParseAddr(host); err == nil {
			return "", true
		}
		return "the TLS ClientHello in the tunnel to " + shown + " names no server; it must name " + host, false
	}
	name, err := policy.NormalizeHost(sni)
	if err != nil {
		if len(sni) > 64 {
			sni = sni[:64]
		}
		return fmt.Sprintf("TLS server name %s in the tunnel to %s is not a host name", strconv.QuoteToASCII(sni), shown), false
	}
	if name != host {
		return fmt.Sprintf("TLS server name %s does not match the CONNECT host %s; domain fronting is not allowed", name, shown), false
	}
	return "", true
}
