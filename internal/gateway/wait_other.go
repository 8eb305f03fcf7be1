//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package gateway

import "net"

// waitReadable is a no-op where the peek is not available: the copy then
// waits inside io.Copy.
func waitReadable(net.Conn) error { return nil }

// unreadInput cannot look without reading here: it says yes, and the
// caller lingers.
func unreadInput(*net.TCPConn) bool { return true }
