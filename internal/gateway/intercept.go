package gateway

import (
	"bufio"
	"context"
	"net"

	"github.com/regward/regward/internal/policy"
)

// TunnelRequest is an allowed CONNECT about to be opened.
type TunnelRequest struct {
	Identity      Identity
	Host          string // normalized
	Port          uint16
	Policy        *policy.Compiled
	PolicyVersion int64
}

// Interceptor is the seam for TLS inspection: the gateway asks it about
// every CONNECT the policy allowed, and hands it the tunnels it wants (for
// instance those for which Policy.Inspect says image-level rules apply).
// Tunnels it declines are passed through untouched.
type Interceptor interface {
	// Intercept reports whether to take over the tunnel. It is called on
	// the request path and must not block.
	Intercept(req TunnelRequest) bool
	// ServeTunnel runs a tunnel it took over. The gateway has already
	// answered "200 Connection established"; reads from client return the
	// bytes the client sent after its CONNECT first. dial connects to the
	// CONNECT target the way the gateway would (its resolution, never an
	// address of the client's choosing). ServeTunnel owns client and must
	// close it; ctx ends when the gateway stops waiting for tunnels.
	ServeTunnel(ctx context.Context, client net.Conn, req TunnelRequest, dial func(context.Context) (net.Conn, error))
}

// bufferedConn is a client connection whose first bytes were already read
// into a bufio.Reader while parsing the CONNECT request.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		putReader(c.br)
		c.br = nil
	}
	return c.Conn.Read(p)
}
