package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHead(t *testing.T) {
	h, err := parseHead([]byte("CONNECT registry-1.docker.io:443 HTTP/1.1\r\nHost: registry-1.docker.io:443\r\nProxy-Authorization:  Basic YTpi \t\r\nUser-Agent: docker/27\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h.method != "CONNECT" || h.target != "registry-1.docker.io:443" || h.minor != 1 {
		t.Fatalf("request line: %+v", h)
	}
	want := []headField{{"Host", "registry-1.docker.io:443"}, {"Proxy-Authorization", "Basic YTpi"}, {"User-Agent", "docker/27"}}
	if diff := cmp.Diff(want, h.fields, cmp.AllowUnexported(headField{})); diff != "" {
		t.Fatalf("fields (-want +got):\n%s", diff)
	}
	if got := h.values("proxy-authorization"); len(got) != 1 || got[0] != "Basic YTpi" {
		t.Fatalf("values: %q", got)
	}
	h, err = parseHead([]byte("GET http://x.test/ HTTP/1.0\n\n"))
	if err != nil || h.minor != 0 || len(h.fields) != 0 {
		t.Fatalf("HTTP/1.0 with LF endings: %+v %v", h, err)
	}
	for _, bad := range []string{
		"CONNECT x:1 HTTP/1.1\r\n",            // no blank line
		"CONNECT x:1 HTTP/1.1\r\n\r\nextra",   // bytes after the head
		"CONNECT x:1\r\n\r\n",                 // no version
		"CONNECT x:1 HTTP/1.1 extra\r\n\r\n",  // four parts
		"CON NECT x:1 HTTP/1.1\r\n\r\n",       // space in the method... a four-part line
		"C(NNECT x:1 HTTP/1.1\r\n\r\n",        // not a token
		"CONNECT x:1 http/1.1\r\n\r\n",        // lower-case version
		"CONNECT x:1 HTTP/1.1\r\n: v\r\n\r\n", // empty name
		"CONNECT x:1 HTTP/1.1\r\nA\x00: v\r\n\r\n",
		"CONNECT x:1 HTTP/1.1\r\nA: \x7f\r\n\r\n",
		"CONNECT x\xff:1 HTTP/1.1\r\n\r\n",
	} {
		if _, err := parseHead([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// obs-text (bytes 0x80 and up) is allowed in values.
	if _, err := parseHead([]byte("CONNECT x:1 HTTP/1.1\r\nX-Name: caf\xc3\xa9\r\n\r\n")); err != nil {
		t.Errorf("obs-text value: %v", err)
	}
}

func TestReadHeadLimits(t *testing.T) {
	read := func(s string, max int) (*requestHead, error) {
		return readHead(bufio.NewReaderSize(strings.NewReader(s), 16), max)
	}
	// Lines longer than the reader's buffer are read whole.
	long := "CONNECT x.test:443 HTTP/1.1\r\nX-Long: " + strings.Repeat("v", 100) + "\r\n\r\n"
	h, err := read(long, 1024)
	if err != nil || h.values("X-Long")[0] != strings.Repeat("v", 100) {
		t.Fatalf("long line: %v", err)
	}
	var se *statusError
	if _, err := read(long, 64); !errors.As(err, &se) || se.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("over the byte limit: %v", err)
	}
	if _, err := read("CONNECT x.test:443 HTTP/1.1\r\n"+strings.Repeat("A: b\r\n", 101)+"\r\n", 1<<20); !errors.As(err, &se) || se.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("over the field limit: %v", err)
	}
	if h, err := read("\r\n\r\nCONNECT x.test:443 HTTP/1.1\r\n\r\n", 1024); err != nil || h.method != "CONNECT" {
		t.Fatalf("leading blank lines: %v", err)
	}
	if _, err := read("", 1024); !errors.Is(err, io.EOF) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := read("CONNECT x.test:443 HTTP/1.1\r\nA: b", 1024); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut short: %v", err)
	}
}

func TestSanitizeReason(t *testing.T) {
	for in, want := range map[string]string{
		"registry x is not allowed":    "registry x is not allowed",
		"a\r\nb":                       "a  b",
		"tab\there":                    "tab here",
		"\x00\x01":                     "refused",
		"bad utf8 \xff":                "bad utf8 ?",
		strings.Repeat("é", maxReason): strings.Repeat("é", maxReason/2),
	} {
		if got := sanitizeReason(in); got != want {
			t.Errorf("sanitizeReason(%q) = %q, want %q", truncate(in, 40), truncate(got, 40), truncate(want, 40))
		}
	}
}

func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"CONNECT registry-1.docker.io:443 HTTP/1.1\r\nHost: registry-1.docker.io:443\r\nProxy-Authorization: Basic YTpi\r\n\r\n",
		"GET http://x.test/a?b HTTP/1.0\n\n",
		"CONNECT [::1]:443 HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
		"POST http://x.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		"\r\n\r\nCONNECT a:1 HTTP/1.1\r\n\r\n",
		"CONNECT a\x00:1 HTTP/1.1\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHead(data)
		if err == nil {
			checkHead(t, h)
		}
		// Reading through a tiny buffer gives the same answer as parsing
		// the head in one piece.
		h2, err2 := readHead(bufio.NewReaderSize(bytes.NewReader(data), 16), 1<<20)
		if err2 == nil {
			checkHead(t, h2)
			h3, err3 := parseHead(h2.raw)
			if err3 != nil || h3.method != h2.method || h3.target != h2.target || len(h3.fields) != len(h2.fields) {
				t.Fatalf("readHead and parseHead disagree on %q", h2.raw)
			}
		}
	})
}

func checkHead(t *testing.T, h *requestHead) {
	t.Helper()
	if !isToken([]byte(h.method)) || h.method == "" {
		t.Fatalf("method %q is not a token", h.method)
	}
	for _, c := range []byte(h.target) {
		if c <= ' ' || c >= 0x7f {
			t.Fatalf("target %q holds byte %#x", h.target, c)
		}
	}
	if len(h.fields) > maxHeaderFields {
		t.Fatalf("%d fields", len(h.fields))
	}
	for _, f := range h.fields {
		if f.name == "" || !isToken([]byte(f.name)) {
			t.Fatalf("field name %q", f.name)
		}
		if f.value != strings.Trim(f.value, " \t") {
			t.Fatalf("field value %q keeps surrounding blanks", f.value)
		}
		for _, c := range []byte(f.value) {
			if (c < ' ' && c != '\t') || c == 0x7f {
				t.Fatalf("field value %q holds byte %#x", f.value, c)
			}
		}
	}
}
