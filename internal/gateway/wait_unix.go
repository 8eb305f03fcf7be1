//go:build linux || darwin || freebsd || netbsd || openbsd

package gateway

import (
	"errors"
	"net"
	"syscall"
)

// waitReadable blocks until src has a byte to read (or EOF), honouring its
// read deadline, without reading anything. A tunnel direction waits here
// rather than inside io.Copy because a splice in progress holds a pipe (two
// file descriptors) for as long as it waits: idle tunnels would hold four
// each.
func waitReadable(src net.Conn) error {
	tc, ok := src.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var b [1]byte
	// Anything but "would block" (a byte, EOF, a reset) ends the wait; the
	// copy that follows reads it and reports errors properly.
	return rc.Read(func(fd uintptr) bool {
		// The socket is non-blocking: EAGAIN means wait for the poller.
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return !errors.Is(e, syscall.EAGAIN) && !errors.Is(e, syscall.EWOULDBLOCK)
	})
}

// unreadInput reports whether the client has sent bytes the gateway has not
// read, without waiting; when it cannot tell, it says yes.
func unreadInput(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return true
	}
	var b [1]byte
	unread := true
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing there; 0 bytes and no error: the client's FIN,
		// after which nothing can follow.
		unread = n > 0 || (err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK))
		return true
	})
	return unread || err != nil
}
