package gateway

import (
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxReason bounds a reason phrase; denial reasons are one sentence.
const maxReason = 1024

// The reason of a 407, which docker, podman and skopeo print verbatim.
const signInReason = "sign in to your organization: run `regward login`"

// sanitizeReason makes s safe as a reason phrase: no CR, LF or other control
// byte (which would end the status line early or forge headers), valid
// UTF-8, and bounded in length.
func sanitizeReason(s string) string {
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

// writeStatus writes a complete response whose reason phrase and body are
// reason, with Connection: close. It is written by hand because net/http
// would choose its own reason phrase, and the reason phrase is what Go
// clients, hence dockerd, show to the user.
func writeStatus(w io.Writer, status int, reason string, header []string) error {
	reason = sanitizeReason(reason)
	var b strings.Builder
	b.WriteString("HTTP/1.1 ")
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	b.WriteString(reason)
	b.WriteString("\r\n")
	for _, h := range header {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(reason) + 1))
	b.WriteString("\r\n\r\n")
	b.WriteString(reason)
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// refuse answers a request with an error and closes the connection.
func refuse(c net.Conn, status int, reason string, header []string) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := writeStatus(c, status, reason, header); err != nil {
		c.Close()
		return
	}
	lingeringClose(c)
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
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}
