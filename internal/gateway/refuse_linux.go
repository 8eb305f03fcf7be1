package gateway

import (
	"errors"
	"net"
	"syscall"
)

// writeLast writes a connection's last bytes and its FIN. MSG_MORE holds
// the bytes back until the shutdown that follows, so that both leave in one
// segment: one wake-up of the client instead of two.
func writeLast(c *net.TCPConn, b []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for len(b) > 0 {
			n, err := syscall.SendmsgN(int(fd), b, nil, nil, syscall.MSG_MORE|syscall.MSG_NOSIGNAL)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN):
				return false // wait until writable, within the write deadline
			case err != nil:
				werr = err
				return true
			}
			b = b[n:]
		}
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	return c.CloseWrite()
}
