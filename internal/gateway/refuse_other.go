//go:build !linux

package gateway

import "net"

// writeLast writes a connection's last bytes and its FIN.
func writeLast(c *net.TCPConn, b []byte) error {
	if _, err := c.Write(b); err != nil {
		return err
	}
	return c.CloseWrite()
}
