package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

const (
	// maxHeaderFields bounds the header lines of one request; registry
	// clients send about a dozen.
	maxHeaderFields = 100
	// maxLeadingBlankLines are skipped before a request line (RFC 9112
	// section 2.2 asks servers to ignore at least one, left by clients that
	// end a body with an extra CRLF).
	maxLeadingBlankLines = 4
)

// requestHead is a parsed HTTP/1.x request line and header section.
type requestHead struct {
	method string
	target string
	major  int // 1
	minor  int // 0 or 1
	fields []headField
	raw    []byte // the head as read, final blank line included
}

type headField struct {
	name  string // as sent; compare with strings.EqualFold
	value string // without surrounding blanks
}

// values returns every value of a header field, in order.
func (h *requestHead) values(name string) []string {
	var out []string
	for _, f := range h.fields {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value)
		}
	}
	return out
}

// hasBody reports whether the request may be followed by a body: it has a
// Transfer-Encoding, or a Content-Length other than 0. It errs towards yes;
// what the body is does not matter to the callers.
func (h *requestHead) hasBody() bool {
	for _, f := range h.fields {
		if strings.EqualFold(f.name, "Transfer-Encoding") || (strings.EqualFold(f.name, "Content-Length") && f.value != "0") {
			return true
		}
	}
	return false
}

// statusError is a problem with a request that is answered with status
// and the message as reason phrase.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &statusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// badQuoted is badRequest with one argument, quoted and truncated to n
// bytes. The parsers call it on their error paths only; being a function of
// its own (too large to be inlined), its formatting does not enlarge their
// frames, which every request's stack must hold.
func badQuoted(format string, arg []byte, n int) error {
	return badRequest(format, strconv.QuoteToASCII(truncate(string(arg), n)))
}

// readHead reads one request head from br, at most maxBytes long. It returns
// io.EOF when the connection ends before the first byte, a *statusError for
// a head that must be refused, and the reader's error (a timeout, say)
// otherwise.
func readHead(br *bufio.Reader, maxBytes int) (*requestHead, error) {
	var raw []byte
	blank, lines := 0, 0
	for {
		line, err := br.ReadSlice('\n')
		if len(raw)+len(line) > maxBytes {
			return nil, &statusError{http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request header is larger than %d bytes", maxBytes)}
		}
		raw = append(raw, line...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a line longer than the buffer: keep reading it
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(raw) == 0 && lines == 0 {
					return nil, io.EOF
				}
				return nil, fmt.Errorf("connection closed in the middle of a request header: %w", io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		if isBlankLine(raw[lineStart(raw):]) {
			if lines == 0 {
				blank++
				if blank > maxLeadingBlankLines {
					return nil, badRequest("too many blank lines before the request line")
				}
				raw = raw[:0]
				continue
			}
			break
		}
		lines++
		if lines > maxHeaderFields+1 {
			return nil, &statusError{http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request has more than %d header fields", maxHeaderFields)}
		}
	}
	return parseHead(raw)
}

// lineStart returns where the last line of raw (which ends in "\n") begins.
func lineStart(raw []byte) int {
	return bytes.LastIndexByte(raw[:len(raw)-1], '\n') + 1
}

func isBlankLine(l []byte) bool {
	return len(l) == 1 || (len(l) == 2 && l[0] == '\r')
}

// parseHead parses a complete request head: a request line, header lines
// and a blank line, each ended by CRLF or a bare LF. It is strict where
// leniency has let requests mean different things to different parsers:
// no whitespace before a field's colon, no line folding, no CR or control
// bytes anywhere, exactly one space between the parts of the request line.
func parseHead(raw []byte) (*requestHead, error) {
	h := &requestHead{raw: raw}
	rest := raw
	first := true
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, badRequest("request header does not end with a blank line")
		}
		line := rest[:i]
		rest = rest[i+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if first {
			if err := h.parseRequestLine(line); err != nil {
				return nil, err
			}
			first = false
			continue
		}
		if len(line) == 0 {
			if len(rest) != 0 {
				return nil, badRequest("unexpected bytes after the request header")
			}
			return h, nil
		}
		f, err := parseField(line)
		if err != nil {
			return nil, err
		}
		if len(h.fields) == maxHeaderFields {
			return nil, &statusError{http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request has more than %d header fields", maxHeaderFields)}
		}
		h.fields = append(h.fields, f)
	}
}

func (h *requestHead) parseRequestLine(line []byte) error {
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, version, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 {
		return badQuoted("malformed request line %s", line, 64)
	}
	if len(method) == 0 || !isToken(method) {
		return badQuoted("malformed request method %s", method, 32)
	}
	if len(target) == 0 {
		return badRequest("request line has no target")
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return badRequest("request target contains a space, a control byte or a non-ASCII byte")
		}
	}
	switch string(version) {
	case "HTTP/1.1":
		h.major, h.minor = 1, 1
	case "HTTP/1.0":
		h.major, h.minor = 1, 0
	default:
		if bytes.HasPrefix(version, []byte("HTTP/")) && isToken(version[5:]) {
			return &statusError{http.StatusHTTPVersionNotSupported, "this proxy speaks HTTP/1.1 and HTTP/1.0 only"}
		}
		return badQuoted("malformed HTTP version %s", version, 32)
	}
	h.method, h.target = string(method), string(target)
	return nil
}

func parseField(line []byte) (headField, error) {
	if line[0] == ' ' || line[0] == '\t' {
		return headField{}, badRequest("folded header lines are not accepted")
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	if !ok {
		return headField{}, badRequest("header line without a colon")
	}
	if len(name) == 0 || !isToken(name) {
		return headField{}, badQuoted("malformed header field name %s", name, 64)
	}
	value = bytes.Trim(value, " \t")
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return headField{}, badQuoted("header field %s contains a control byte", name, 64)
		}
	}
	return headField{name: string(name), value: string(value)}, nil
}

// isToken reports whether b is an RFC 9110 token.
func isToken(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
