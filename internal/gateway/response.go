package gateway

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// maxReason bounds a reason phrase; denial reasons are one sentence.
const maxReason = 1024

// The reason of a 407, which docker, podman and skopeo print verbatim.
const signInReason = "sign in to your organization: run `regward login`"

const (
	// refuseWriteTimeout bounds writing a refusal.
	refuseWriteTimeout = 5 * time.Second
	// lingerTimeout and lingerBytes bound how long and how much a refused
	// client may go on sending while the gateway lets it read the answer.
	lingerTimeout = 500 * time.Millisecond
	lingerBytes   = 64 << 10
)

// sanitizeReason makes s safe as a reason phrase: no CR, LF or other control
// byte (which would end the status line early or forge headers), valid
// UTF-8, and bounded in length.
func sanitizeReason(s string) string {
	if plainReason(s) {
		return s // the common case: a sentence of printable ASCII
	}
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	b.Grow(min(len(s), maxReason))
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > maxReason {
			break
		}
		b.WriteRune(r)
	}
	out := strings.TrimSpace(b.String())
	if out == "" {
		return "refused"
	}
	return out
}

// plainReason reports whether s is already a clean reason phrase: short
// enough, printable ASCII only, and not starting or ending with a space.
func plainReason(s string) bool {
	if s == "" || len(s) > maxReason || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// appendStatus appends a complete response whose reason phrase and body are
// reason, with Connection: close. It is written by hand because net/http
// would choose its own reason phrase, and the reason phrase is what Go
// clients, hence dockerd, show to the user.
func appendStatus(b []byte, status int, reason string, header []string) []byte {
	reason = sanitizeReason(reason)
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, reason...)
	b = append(b, "\r\n"...)
	for _, h := range header {
		b = append(b, h...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(reason)+1), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, reason...)
	return append(b, '\n')
}

// responsePool holds the buffers refusals are encoded into: a refusal is
// the one answer the gateway gives at a flood's rate.
var responsePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeStatus writes the response appendStatus encodes.
func writeStatus(w io.Writer, status int, reason string, header []string) error {
	bp := responsePool.Get().(*[]byte)
	defer responsePool.Put(bp)
	*bp = appendStatus((*bp)[:0], status, reason, header)
	_, err := w.Write(*bp)
	return err
}

// refuse answers with an error and closes the connection, lingering so
// that the client can read the answer whatever else it sent.
func refuse(c net.Conn, status int, reason string, header []string) {
	c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	if err := writeStatus(c, status, reason, header); err != nil {
		c.Close()
		return
	}
	lingeringClose(c)
}

// refuseRequest answers a request whose head the gateway has read in full,
// with an error, and closes the connection. A request without a body whose
// client has sent nothing more (a refused CONNECT, typically: clients wait
// for the answer before they speak TLS) leaves no unread input behind, so
// closing cannot make the kernel reset the connection: the answer then
// goes out with the FIN in one segment and the connection closes at once,
// without the lingering read, its wake-up and a second segment. Bytes that
// arrive after the check meet a closed socket, but only once the answer
// has left. Anything else lingers, as refuse does.
func refuseRequest(cc *clientConn, br *bufio.Reader, head *requestHead, status int, reason string, header []string) {
	tc, ok := cc.Conn.(*net.TCPConn)
	if !ok || br.Buffered() > 0 || head.hasBody() {
		refuse(cc, status, reason, header)
		return
	}
	bp := responsePool.Get().(*[]byte)
	*bp = appendStatus((*bp)[:0], status, reason, header)
	tc.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	err := writeLast(tc, *bp)
	responsePool.Put(bp)
	if err != nil {
		tc.Close()
		return
	}
	// Input that arrived since the head was read (a client that did not
	// wait for the answer) must be drained, or the close would reset the
	// connection; checking costs one system call.
	if unreadInput(tc) {
		linger(tc)
	}
	tc.Close()
}

type closeWriter interface{ CloseWrite() error }

// lingeringClose closes c after letting the client read our answer: closing
// a socket with unread input (a pipelined request, a ClientHello sent
// before our reply) makes the kernel send a reset, which can destroy the
// response before the client reads it.
func lingeringClose(c net.Conn) {
	defer c.Close()
	raw := c
	if cc, ok := c.(*clientConn); ok {
		raw = cc.Conn
	}
	if cw, ok := raw.(closeWriter); ok {
		if cw.CloseWrite() != nil {
			return
		}
	}
	linger(c)
}

// linger reads and discards what the client still sends, until it closes,
// for a bounded time and amount.
func linger(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, io.LimitReader(c, lingerBytes))
}
