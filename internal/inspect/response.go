package inspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ociError is one entry of the distribution API's error body. Clients
// print "code: message" in lowercase code, so a denial shows as
// "denied: REASON".
type ociError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// errorBody renders the registry's error format.
func errorBody(code, message string) []byte {
	body, err := json.Marshal(struct {
		Errors []ociError `json:"errors"`
	}{[]ociError{{Code: code, Message: message}}})
	if err != nil { // strings always marshal
		body = []byte(`{"errors":[{"code":"UNKNOWN","message":"internal error"}]}`)
	}
	return append(body, '\n')
}

// writeError answers with the registry's own error format.
func writeError(w http.ResponseWriter, status int, code, message string) {
	body := errorBody(code, message)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// maxReasonPhrase bounds a reason phrase; denial reasons are one sentence.
const maxReasonPhrase = 1024

// denyInStatusLine answers a denied HTTP/1.1 HEAD with the reason as the
// status line's reason phrase, the only text a HEAD answer carries:
// containerd resolves tags with HEAD and prints the status line of a
// refusal ("unexpected status from HEAD request to URL: 403 REASON"), as
// Go clients print the gateway's CONNECT refusals. net/http writes its own
// reason phrase, so the connection is taken over and closed after the
// answer, then over is called. It reports false when the connection could
// not be taken over.
func denyInStatusLine(w http.ResponseWriter, reason string, over func()) bool {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	c, bw, err := hj.Hijack()
	if err != nil {
		return false
	}
	defer over()
	defer c.Close()
	body := errorBody("DENIED", reason)
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(bw, "HTTP/1.1 403 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
		reasonPhrase(reason), len(body))
	_ = bw.Flush()
	return true
}

// reasonPhrase makes s safe as a reason phrase: no CR, LF or other
// control byte (which would end the status line early or forge headers),
// valid UTF-8, bounded in length.
func reasonPhrase(s string) string {
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			r = ' '
		}
		if b.Len()+utf8.RuneLen(r) > maxReasonPhrase {
			break
		}
		b.WriteRune(r)
	}
	if out := strings.TrimSpace(b.String()); out != "" {
		return out
	}
	return "Forbidden"
}

// hopHeaders describe one connection, not the message (RFC 9110 section
// 7.6.1); Proxy-Authorization above all, which carries the client's
// gateway token. Expect is answered by the gateway's own server.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Expect"}

func removeHopHeaders(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// copyBufSize is the unit of a body copy: big enough that a blob moves in
// few system calls and TLS records, small enough that thousands of
// transfers at once stay cheap.
const copyBufSize = 64 << 10

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// smallWrite is what a response writer may hold back in its buffer;
// writes this small are flushed so that a slow upstream's bytes reach the
// client as they come.
const smallWrite = 16 << 10

// errClientWrite marks a copy that failed on the client's side.
var errClientWrite = errors.New("client write failed")

// copyBody streams src to w, telling the watchdog of progress. It returns
// an error wrapping errClientWrite when the client went away, and the
// read error when the upstream did.
func copyBody(w http.ResponseWriter, rc *http.ResponseController, src io.Reader, wd *watchdog) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			wd.touch()
			if _, werr := w.Write(buf[:n]); werr != nil {
				return errors.Join(errClientWrite, werr)
			}
			wd.touch()
			if n < smallWrite {
				if ferr := rc.Flush(); ferr != nil {
					return errors.Join(errClientWrite, ferr)
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// watchdog ends a transfer that made no progress for idle: it runs fire
// once, unless stopped first. Progress is a timestamp rather than a timer
// reset, so that touching it costs one atomic store per chunk.
type watchdog struct {
	idle  time.Duration
	last  atomic.Int64 // unix nanoseconds of the last progress
	timer *time.Timer
	fire  func()

	mu      sync.Mutex
	stopped bool
	didFire bool
}

func startWatchdog(idle time.Duration, fire func()) *watchdog {
	w := &watchdog{idle: idle, fire: fire}
	w.touch()
	w.timer = time.AfterFunc(idle, w.check)
	return w
}

func (w *watchdog) touch() { w.last.Store(time.Now().UnixNano()) }

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if since := time.Since(time.Unix(0, w.last.Load())); since < w.idle {
		w.timer.Reset(w.idle - since)
		return
	}
	w.stopped, w.didFire = true, true
	w.fire()
}

// fired reports whether the watchdog ended the transfer.
func (w *watchdog) fired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.didFire
}

// stop disarms the watchdog; after it returns, fire will not run.
func (w *watchdog) stop() {
	w.mu.Lock()
	w.stopped = true
	w.timer.Stop()
	w.mu.Unlock()
}

// progressBody is a request body that tells the watchdog of progress.
type progressBody struct {
	io.ReadCloser
	wd *watchdog
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.wd.touch()
	}
	return n, err
}
