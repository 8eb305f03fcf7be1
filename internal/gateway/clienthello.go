package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	recordHeaderLen      = 5
	maxRecordLen         = 16384 + 2048 // TLSCiphertext bound; a plaintext ClientHello record is at most 16384
	maxClientHelloSize   = 64 << 10     // crypto/tls's own handshake message limit
	recordTypeHandshake  = 22
	handshakeClientHello = 1
	extServerName        = 0
	nameTypeHostName     = 0
)

// errNotTLS means the first bytes of a tunnel are not a TLS handshake.
var errNotTLS = errors.New("the tunnel did not start with a TLS ClientHello")

// readClientHello reads the TLS records that carry a ClientHello from r.
// It returns the bytes exactly as read, which the caller forwards upstream
// before anything else, and the server name the client asked for ("" when
// the hello has no server_name extension).
func readClientHello(r io.Reader) (raw []byte, sni string, err error) {
	var msg []byte
	need := -1 // length of the whole handshake message once known
	for need < 0 || len(msg) < need {
		var hdr [recordHeaderLen]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if len(raw) == 0 && errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, "", errNotTLS
			}
			return nil, "", err
		}
		raw = append(raw, hdr[:]...)
		n := int(binary.BigEndian.Uint16(hdr[3:]))
		if hdr[0] != recordTypeHandshake || hdr[1] != 3 || n == 0 || n > maxRecordLen {
			return nil, "", errNotTLS
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if _, err := io.ReadFull(r, raw[start:]); err != nil {
			return nil, "", fmt.Errorf("read ClientHello record: %w", err)
		}
		msg = append(msg, raw[start:]...)
		if need < 0 && len(msg) >= 4 {
			if msg[0] != handshakeClientHello {
				return nil, "", errNotTLS
			}
			need = 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			if need > maxClientHelloSize {
				return nil, "", fmt.Errorf("ClientHello of %d bytes is larger than %d", need, maxClientHelloSize)
			}
		}
	}
	if len(msg) != need {
		// Bytes of another handshake message in the same record: a
		// ClientHello is sent alone, so this is not a client we know.
		return nil, "", errors.New("ClientHello record carries more than the ClientHello")
	}
	sni, err = parseClientHello(msg[4:])
	if err != nil {
		return nil, "", err
	}
	return raw, sni, nil
}

// parseClientHello returns the host_name of the server_name extension of
// a ClientHello message body (after the 4-byte handshake header), "" when
// there is none. It checks the whole structure and refuses duplicates of
// the extension or of the host_name: a server and this parser must not
// read two different names from one hello.
func parseClientHello(b []byte) (string, error) {
	s := cursor(b)
	var random []byte
	if !s.skip(2) || !s.bytes(32, &random) {
		return "", errors.New("ClientHello is truncated")
	}
	var sessionID, suites, compression, exts cursor
	if !s.vec8(&sessionID) || len(sessionID) > 32 {
		return "", errors.New("ClientHello has a malformed session id")
	}
	if !s.vec16(&suites) || len(suites) == 0 || len(suites)%2 != 0 {
		return "", errors.New("ClientHello has malformed cipher suites")
	}
	if !s.vec8(&compression) || len(compression) == 0 {
		return "", errors.New("ClientHello has malformed compression methods")
	}
	if len(s) == 0 {
		return "", nil // no extensions at all
	}
	if !s.vec16(&exts) || len(s) != 0 {
		return "", errors.New("ClientHello has malformed extensions")
	}
	sni, seen := "", make(map[uint16]bool, 16)
	for len(exts) > 0 {
		var typ uint16
		var data cursor
		if !exts.u16(&typ) || !exts.vec16(&data) {
			return "", errors.New("ClientHello has a malformed extension")
		}
		if seen[typ] {
			return "", fmt.Errorf("ClientHello repeats extension %d", typ)
		}
		seen[typ] = true
		if typ != extServerName {
			continue
		}
		name, err := parseServerName(data)
		if err != nil {
			return "", err
		}
		sni = name
	}
	return sni, nil
}

func parseServerName(data cursor) (string, error) {
	var list cursor
	if !data.vec16(&list) || len(data) != 0 || len(list) == 0 {
		return "", errors.New("ClientHello has a malformed server_name extension")
	}
	name := ""
	for len(list) > 0 {
		var typ uint8
		var v cursor
		if !list.u8(&typ) || !list.vec16(&v) {
			return "", errors.New("ClientHello has a malformed server_name entry")
		}
		if typ != nameTypeHostName {
			continue
		}
		if name != "" {
			return "", errors.New("ClientHello names more than one host")
		}
		if len(v) == 0 {
			return "", errors.New("ClientHello has an empty server name")
		}
		for _, c := range v {
			if c <= ' ' || c >= 0x7f {
				return "", errors.New("ClientHello server name contains a byte that no host name has")
			}
		}
		name = string(v)
	}
	return name, nil
}

// cursor reads length-prefixed TLS structures, in the manner of
// golang.org/x/crypto/cryptobyte, kept here to a few methods.
type cursor []byte

func (c *cursor) skip(n int) bool {
	if len(*c) < n {
		return false
	}
	*c = (*c)[n:]
	return true
}

func (c *cursor) bytes(n int, out *[]byte) bool {
	if len(*c) < n {
		return false
	}
	*out = (*c)[:n]
	*c = (*c)[n:]
	return true
}

func (c *cursor) u8(out *uint8) bool {
	if len(*c) < 1 {
		return false
	}
	*out = (*c)[0]
	*c = (*c)[1:]
	return true
}

func (c *cursor) u16(out *uint16) bool {
	if len(*c) < 2 {
		return false
	}
	*out = binary.BigEndian.Uint16(*c)
	*c = (*c)[2:]
	return true
}

func (c *cursor) vec8(out *cursor) bool {
	var n uint8
	if !c.u8(&n) {
		return false
	}
	var b []byte
	if !c.bytes(int(n), &b) {
		return false
	}
	*out = b
	return true
}

func (c *cursor) vec16(out *cursor) bool {
	var n uint16
	if !c.u16(&n) {
		return false
	}
	var b []byte
	if !c.bytes(int(n), &b) {
		return false
	}
	*out = b
	return true
}
