package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"

	"github.com/regward/regward/internal/policy"
)

// resolveTarget is where a --resolve override sends a name. Port 0 keeps
// the port the client asked for.
type resolveTarget struct {
	addr netip.Addr
	port uint16
}

// parseResolve checks the overrides of Config.Resolve.
func parseResolve(m map[string]string) (map[string]resolveTarget, error) {
	out := make(map[string]resolveTarget, len(m))
	for name, to := range m {
		host, err := policy.NormalizeHost(name)
		if err != nil {
			return nil, fmt.Errorf("resolve override %q: %w", name, err)
		}
		var t resolveTarget
		if ap, err := netip.ParseAddrPort(to); err == nil {
			t = resolveTarget{ap.Addr().Unmap(), ap.Port()}
		} else if a, err := netip.ParseAddr(to); err == nil {
			t = resolveTarget{addr: a.Unmap()}
		} else {
			return nil, fmt.Errorf("resolve override %s=%s: %q is not IP:PORT or IP", name, to, to)
		}
		if !usableAddr(t.addr) {
			return nil, fmt.Errorf("resolve override %s=%s: %s cannot be dialled", name, to, t.addr)
		}
		out[host] = t
	}
	return out, nil
}

// usableAddr refuses addresses that name no single remote host; a name
// resolving to one is a misconfiguration or an attempt to reach something
// other than a registry.
func usableAddr(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255}) && a.Zone() == ""
}

// dialError is an upstream failure, answered with status and reason.
type dialError struct {
	status int
	reason string
	err    error
}

func (e *dialError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dialUpstream connects to host:port (host normalized) through the
// gateway's own resolution: an override, the IP literal itself, or the
// resolver. It never dials an address the client chose.
func (g *Gateway) dialUpstream(ctx context.Context, host string, port uint16) (net.Conn, error) {
	if g.cfg.Upstream != nil {
		return g.dialViaUpstream(ctx, host, port)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	shown := policy.JoinHostPort(host, port)
	var addrs []netip.Addr
	if t, ok := g.resolve[host]; ok {
		addrs = []netip.Addr{t.addr}
		if t.port != 0 {
			port = t.port
		}
	} else if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		found, err := g.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
				return nil, &dialError{http.StatusBadGateway, "cannot resolve " + shown + ": no such host", err}
			}
			return nil, &dialError{http.StatusBadGateway, "cannot resolve " + shown, err}
		}
		for _, a := range found {
			addrs = append(addrs, a.Unmap())
		}
	}
	var lastErr error
	tried := 0
	for _, a := range addrs {
		if !usableAddr(a) {
			lastErr = fmt.Errorf("%s resolves to %s, which the gateway does not dial", host, a)
			continue
		}
		tried++
		c, err := g.dialer.DialContext(ctx, "tcp", netip.AddrPortFrom(a, port).String())
		if err == nil {
			return c, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no addresses")
	}
	switch {
	case tried == 0:
		return nil, &dialError{http.StatusBadGateway, "cannot connect to " + shown + ": it resolves to no address the gateway dials", lastErr}
	case errors.Is(lastErr, context.DeadlineExceeded) || errors.Is(lastErr, os.ErrDeadlineExceeded):
		return nil, &dialError{http.StatusGatewayTimeout, "timed out connecting to " + shown, lastErr}
	default:
		return nil, &dialError{http.StatusBadGateway, "cannot connect to " + shown, lastErr}
	}
}

// dialForTransport is the plain-HTTP transport's dialer: the request's host
// was checked and normalized before, so addr is host:port as decided.
func (g *Gateway) dialForTransport(ctx context.Context, _, addr string) (net.Conn, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %q: bad port: %w", addr, err)
	}
	return g.dialUpstream(ctx, h, uint16(port))
}
