package gateway

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// record wraps a handshake message into TLS records of at most size bytes.
func record(msg []byte, size int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(len(msg), size)
		out = append(out, recordTypeHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// buildHello makes a minimal ClientHello handshake message with the
// given extensions (each already type+length+data).
func buildHello(exts ...[]byte) []byte {
	return buildHelloBody(true, exts...)
}

func buildHelloBody(withExts bool, exts ...[]byte) []byte {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // one cipher suite
	body = append(body, 1, 0)                // null compression
	var all []byte
	for _, e := range exts {
		all = append(all, e...)
	}
	if withExts {
		body = binary.BigEndian.AppendUint16(body, uint16(len(all)))
		body = append(body, all...)
	}
	msg := []byte{handshakeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(msg, body...)
}

// sniExt builds a server_name extension holding names (type 0 each).
func sniExt(names ...string) []byte {
	var list []byte
	for _, n := range names {
		list = append(list, nameTypeHostName)
		list = binary.BigEndian.AppendUint16(list, uint16(len(n)))
		list = append(list, n...)
	}
	data := binary.BigEndian.AppendUint16(nil, uint16(len(list)))
	data = append(data, list...)
	ext := binary.BigEndian.AppendUint16(nil, extServerName)
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(data)))
	return append(ext, data...)
}

func TestReadClientHello(t *testing.T) {
	goHello := clientHello(t, "registry-1.docker.io")
	msg := goHello[recordHeaderLen:]
	cases := []struct {
		name string
		raw  []byte
		sni  string
		err  string
	}{
		{"go client", goHello, "registry-1.docker.io", ""},
		{"go client, no SNI", clientHello(t, ""), "", ""},
		{"split over records", record(msg, 100), "registry-1.docker.io", ""},
		{"one-byte records", record(msg, 1), "registry-1.docker.io", ""},
		{"built", record(buildHello(sniExt("a.test")), 1000), "a.test", ""},
		{"no extensions block", record(buildHelloBody(false), 1000), "", ""},
		{"truncated body", record([]byte{1, 0, 0, 3, 3, 3, 0}, 1000), "", "truncated"},
		{"plain HTTP", []byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"), "", errNotTLS.Error()},
		{"SSH", []byte("SSH-2.0-OpenSSH_9.6\r\n"), "", errNotTLS.Error()},
		{"alert record", []byte{21, 3, 3, 0, 2, 2, 40}, "", errNotTLS.Error()},
		{"server hello", record([]byte{2, 0, 0, 0}, 100), "", errNotTLS.Error()},
		{"two SNI extensions", record(buildHello(sniExt("a.test"), sniExt("b.test")), 1000), "", "repeats extension 0"},
		{"two host names", record(buildHello(sniExt("a.test", "b.test")), 1000), "", "more than one host"},
		{"empty host name", record(buildHello(sniExt("")), 1000), "", "empty server name"},
		{"NUL in host name", record(buildHello(sniExt("a.test\x00.evil")), 1000), "", "no host name has"},
		{"extra message after hello", append(goHello[:len(goHello):len(goHello)], record([]byte{1, 0, 0, 0}, 10)...), "registry-1.docker.io", ""},
		{"hello and more in one record", record(append(append([]byte{}, msg...), 1, 0, 0, 0), 1<<14), "", "more than the ClientHello"},
		{"huge length", []byte{22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}, "", "larger than"},
		{"cut short", goHello[:50], "", "unexpected EOF"},
	}
	for _, c := range cases {
		raw, sni, err := readClientHello(bytes.NewReader(c.raw))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || sni != c.sni {
			t.Errorf("%s: sni %q err %v, want %q", c.name, sni, err, c.sni)
			continue
		}
		// What was read is exactly the hello's records, to be forwarded.
		if !bytes.HasPrefix(c.raw, raw) || !bytes.Equal(raw[len(raw)-8:], msgTail(c.raw, raw)) {
			t.Errorf("%s: returned bytes are not a prefix of the input", c.name)
		}
	}
}

func msgTail(in, raw []byte) []byte { return in[len(raw)-8 : len(raw)] }

// crypto/tls is the reference: when it and readClientHello both accept a
// hello, they read the same server name.
func tlsServerName(data []byte) (string, bool) {
	var name string
	var reached bool
	errStop := errors.New("stop")
	srv := tls.Server(&replayConn{r: bytes.NewReader(data)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			name, reached = h.ServerName, true
			return nil, errStop
		},
	})
	srv.Handshake()
	return name, reached
}

type replayConn struct{ r io.Reader }

func (c *replayConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

func TestClientHelloMatchesCryptoTLS(t *testing.T) {
	for _, name := range []string{"registry-1.docker.io", "ghcr.io", "xn--bcher-kva.example", ""} {
		raw := clientHello(t, name)
		want, ok := tlsServerName(raw)
		if !ok {
			t.Fatalf("crypto/tls did not parse its own hello for %q", name)
		}
		_, got, err := readClientHello(bytes.NewReader(raw))
		if err != nil || got != want {
			t.Errorf("%q: got %q %v, crypto/tls read %q", name, got, err, want)
		}
	}
}

func FuzzClientHello(f *testing.F) {
	for _, name := range []string{"registry-1.docker.io", "a.test", ""} {
		raw := clientHello(f, name)
		f.Add(raw)
		f.Add(record(raw[recordHeaderLen:], 64))
	}
	f.Add(record(buildHello(sniExt("a.test"), sniExt("b.test")), 1000))
	f.Add(record(buildHello(sniExt("a.test", "b.test")), 1000))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, sni, err := readClientHello(bytes.NewReader(data))
		if err != nil {
			return
		}
		if !bytes.HasPrefix(data, raw) {
			t.Fatal("returned bytes are not what was read")
		}
		if sni != "" && !bytes.Contains(handshakePayload(raw), []byte(sni)) {
			t.Fatalf("server name %q is not in the input", sni)
		}
		if want, ok := tlsServerName(data); ok && want != sni {
			t.Fatalf("server name %q, crypto/tls read %q", sni, want)
		}
	})
}

// handshakePayload joins the fragments of well-formed records.
func handshakePayload(raw []byte) []byte {
	var out []byte
	for len(raw) >= recordHeaderLen {
		n := int(binary.BigEndian.Uint16(raw[3:]))
		out = append(out, raw[recordHeaderLen:recordHeaderLen+n]...)
		raw = raw[recordHeaderLen+n:]
	}
	return out
}
