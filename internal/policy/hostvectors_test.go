package policy

import "strings"

// outcome is what a host vector expects.
type outcome int

const (
	match    outcome = iota // entry and input are valid and the entry matches
	noMatch                 // both valid, no match
	badEntry                // the registry entry must be refused
	badInput                // the host a client sent must be refused
)

func (o outcome) String() string {
	return [...]string{"match", "noMatch", "badEntry", "badInput"}[o]
}

// hostVector is one case of host matching: a registry entry as an owner
// writes it, and a host (with an optional port) as a client sends it.
//
// This is the one table of host vectors: TestHostVectors checks every row
// and FuzzMatch starts its corpus from the same rows.
type hostVector struct {
	entry string
	input string
	norm  string // the normalized input host; "" when want is badInput
	port  uint16 // the port SplitHostPort finds in input
	want  outcome
}

var (
	label63 = strings.Repeat("a", 63)
	label64 = strings.Repeat("a", 64)
	// 4 labels of 63 plus 3 dots is 255; trimming gives 253 and 254 octets.
	name253 = label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 61)
	name254 = label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 62)
)

var hostVectors = []hostVector{
	// Exact names, case and the root dot.
	{"ghcr.io", "ghcr.io", "ghcr.io", 0, match},
	{"ghcr.io", "GHCR.IO", "ghcr.io", 0, match},
	{"ghcr.io", "ghcr.io.", "ghcr.io", 0, match},
	{"GHCR.io.", "ghcr.io", "ghcr.io", 0, match},
	{"docker.io", "DOCKER.IO.", "docker.io", 0, match},
	{"docker.io", "docker.io..", "", 0, badInput},
	{"docker.io", ".docker.io", "", 0, badInput},
	{"docker.io", "docker..io", "", 0, badInput},
	{"docker.io", "sub.docker.io", "sub.docker.io", 0, noMatch},
	{"ghcr.io", "ghcr", "ghcr", 0, noMatch},

	// Look-alikes that must never match docker.io.
	{"docker.io", "docker.io.evil.test", "docker.io.evil.test", 0, noMatch},
	{"docker.io", "evildocker.io", "evildocker.io", 0, noMatch},
	{"docker.io", "docker.io@evil.test", "", 0, badInput},
	{"docker.io", "evil.test@docker.io", "", 0, badInput},
	{"docker.io", "docker.io/library", "", 0, badInput},
	{"docker.io", `docker.io\evil.test`, "", 0, badInput},
	{"docker.io", "docker%2eio", "", 0, badInput},
	{"docker.io", "docker.io%00", "", 0, badInput},
	{"docker.io", "docker.io\x00.evil.test", "", 0, badInput},
	{"docker.io", "docker.io\r\nHost: evil.test", "", 0, badInput},
	{"docker.io", "docker.io\n", "", 0, badInput},
	{"docker.io", "docker io", "", 0, badInput},
	{"docker.io", "\xc40", "", 0, badInput}, // invalid UTF-8 must not become U+FFFD and punycode
	{"docker.io", " docker.io", "", 0, badInput},
	{"docker.io", "docker.io#evil.test", "", 0, badInput},
	{"docker.io", "docker.io?x", "", 0, badInput},
	{"docker.io", "a_b.docker.io", "", 0, badInput},
	{"docker.io/library", "docker.io", "docker.io", 0, badEntry},
	{"https://docker.io", "docker.io", "docker.io", 0, badEntry},
	{"user@docker.io", "docker.io", "docker.io", 0, badEntry},

	// Ports: an entry without one matches every port, with one only that.
	{"docker.io", "docker.io:443", "docker.io", 443, match},
	{"docker.io", "docker.io:65535", "docker.io", 65535, match},
	{"docker.io:443", "docker.io:443", "docker.io", 443, match},
	{"docker.io:443", "docker.io:5000", "docker.io", 5000, noMatch},
	{"docker.io:443", "docker.io", "docker.io", 0, noMatch},
	{"registry.corp.example:5000", "REGISTRY.corp.example.:5000", "registry.corp.example", 5000, match},
	{"docker.io:0", "docker.io", "docker.io", 0, badEntry},
	{"docker.io:65536", "docker.io", "docker.io", 0, badEntry},
	{"docker.io:0443", "docker.io", "docker.io", 0, badEntry},
	{"docker.io:", "docker.io", "docker.io", 0, badEntry},
	{"docker.io:+443", "docker.io", "docker.io", 0, badEntry},
	{"docker.io", "docker.io:abc", "", 0, badInput},
	{"docker.io", "docker.io:443:443", "", 0, badInput},
	{"docker.io", "docker.io: 443", "", 0, badInput},

	// The docker-hub group.
	{"docker-hub", "docker.io", "docker.io", 0, match},
	{"docker-hub", "registry-1.docker.io:443", "registry-1.docker.io", 443, match},
	{"docker-hub", "index.docker.io", "index.docker.io", 0, match},
	{"docker-hub", "registry.hub.docker.com", "registry.hub.docker.com", 0, match},
	{"docker-hub", "auth.docker.io", "auth.docker.io", 0, match},
	{"docker-hub", "hub.docker.com", "hub.docker.com", 0, match},
	{"docker-hub", "production.cloudflare.docker.com", "production.cloudflare.docker.com", 0, match},
	{"DOCKER-HUB", "Registry-1.Docker.IO", "registry-1.docker.io", 0, match},
	{"docker-hub", "docker-hub", "docker-hub", 0, noMatch},
	{"docker-hub", "evil.docker.io", "evil.docker.io", 0, noMatch},
	{"docker-hub", "docker.com", "docker.com", 0, noMatch},
	{"docker-hub:443", "docker.io", "docker.io", 0, badEntry},

	// IDNA: Unicode and xn-- forms are one name, both ways.
	{"münchen.de", "xn--mnchen-3ya.de", "xn--mnchen-3ya.de", 0, match},
	{"xn--mnchen-3ya.de", "münchen.de", "xn--mnchen-3ya.de", 0, match},
	{"XN--MNCHEN-3YA.DE", "MÜNCHEN.DE", "xn--mnchen-3ya.de", 0, match},
	{"bücher.example", "xn--bcher-kva.example:443", "xn--bcher-kva.example", 443, match},
	{"münchen.de", "munchen.de", "munchen.de", 0, noMatch},
	{"docker.io", "ｄｏｃｋｅｒ.io", "docker.io", 0, match},      // full-width letters map to ASCII
	{"docker.io", "docker\u3002io", "docker.io", 0, match}, // ideographic full stop is a dot
	{"docker.io", "xn--.io", "", 0, badInput},
	{"docker.io", "xn--a.io", "", 0, badInput},
	{"docker.io", "xn--docker-.io", "", 0, badInput},
	{"docker.io", "ab\u200dcd.io", "", 0, badInput}, // a joiner outside its context
	{"docker.io", "dock\u00a0er.io", "", 0, badInput},
	{"docker.io", "docker\uff0fio", "", 0, badInput}, // full-width solidus

	// Labels and lengths.
	{"r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com", 0, match},
	{"docker.io", "-docker.io", "", 0, badInput},
	{"docker.io", "docker-.io", "", 0, badInput},
	{label63 + ".example", label63 + ".example", label63 + ".example", 0, match},
	{"docker.io", label64 + ".example", "", 0, badInput},
	{name253, name253 + ".", name253, 0, match},
	{"docker.io", name254, "", 0, badInput},
	{"", "docker.io", "docker.io", 0, badEntry},
	{"docker.io", "", "", 0, badInput},

	// IP literals match only the identical literal; names never resolve.
	{"127.0.0.1", "127.0.0.1", "127.0.0.1", 0, match},
	{"127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1", 5000, match},
	{"127.0.0.1", "127.1", "", 0, badInput},
	{"127.0.0.1", "0x7f.1", "", 0, badInput},
	{"127.0.0.1", "0x7f.0.0.1", "", 0, badInput},
	{"127.0.0.1", "0177.0.0.1", "", 0, badInput},
	{"127.0.0.1", "2130706433", "", 0, badInput},
	{"127.0.0.1", "foo.0x", "", 0, badInput},
	{"127.0.0.1", "localhost", "localhost", 0, noMatch},
	{"127.0.0.1", "127.0.0.1.nip.io", "127.0.0.1.nip.io", 0, noMatch},
	{"1.2.3.08", "1.2.3.8", "1.2.3.8", 0, badEntry},
	{"1.2.3.4", "1.2.3.4.", "1.2.3.4", 0, match},
	{"[::1]", "::1", "::1", 0, match},
	{"::1", "[0:0:0:0:0:0:0:1]", "::1", 0, match},
	{"[::1]:5000", "[::1]:5000", "::1", 5000, match},
	{"[::1]", "[::1]:443", "::1", 443, match},
	{"[::1]:5000", "[::1]:5001", "::1", 5001, noMatch},
	{"[2001:DB8::1]", "[2001:db8:0::1]", "2001:db8::1", 0, match},
	{"127.0.0.1", "[::ffff:127.0.0.1]", "::ffff:127.0.0.1", 0, noMatch},
	{"[::1]", "fe80::1%eth0", "", 0, badInput},
	{"[::1]", "[fe80::1%25eth0]:443", "", 0, badInput},
	{"[fe80::1%eth0]", "::1", "::1", 0, badEntry},
	{"[127.0.0.1]", "127.0.0.1", "127.0.0.1", 0, badEntry},
	{"[::1]", "[::1", "", 0, badInput},
	{"[::1]", "[::1]x", "", 0, badInput},
	{"[::1]", "[::1]:", "", 0, badInput},

	// Wildcards: any depth under the suffix, never the suffix itself.
	{"*.example.com", "a.example.com", "a.example.com", 0, match},
	{"*.example.com", "a.b.c.example.com:8443", "a.b.c.example.com", 8443, match},
	{"*.example.com", "example.com", "example.com", 0, noMatch},
	{"*.example.com", "evilexample.com", "evilexample.com", 0, noMatch},
	{"*.example.com", "example.com.evil.test", "example.com.evil.test", 0, noMatch},
	{"*.example.com", "a.example.com@evil.test", "", 0, badInput},
	{"*.example.com", "a..example.com", "", 0, badInput},
	{"*.example.com", "1.2.3.4", "1.2.3.4", 0, noMatch},
	{"*.EXAMPLE.com.", "A.Example.Com", "a.example.com", 0, match},
	{"*.example.com:5000", "a.example.com:5000", "a.example.com", 5000, match},
	{"*.example.com:5000", "a.example.com:443", "a.example.com", 443, noMatch},
	{"*.münchen.de", "a.xn--mnchen-3ya.de", "a.xn--mnchen-3ya.de", 0, match},
	{"*.dkr.ecr.eu-west-1.amazonaws.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443", "123456789012.dkr.ecr.eu-west-1.amazonaws.com", 443, match},
	{"*", "example.com", "example.com", 0, badEntry},
	{"*.*.example.com", "a.b.example.com", "a.b.example.com", 0, badEntry},
	{"a.*.com", "a.b.com", "a.b.com", 0, badEntry},
	{"*example.com", "example.com", "example.com", 0, badEntry},
	{"example.*", "example.com", "example.com", 0, badEntry},
	{"*.com", "example.com", "example.com", 0, badEntry},
	{"*.1.2.3.4", "a.example.com", "a.example.com", 0, badEntry},
	{"*.[::1]", "::1", "::1", 0, badEntry},
	{"*.127.1", "a.example.com", "a.example.com", 0, badEntry},
	{"*..example.com", "a.example.com", "a.example.com", 0, badEntry},
	{"*.example.com", "*.example.com", "", 0, badInput},
}
