package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// hostProfile is IDNA lookup processing (UTS #46 mapping, STD3 ASCII rules,
// Bidi and joiner checks) without CheckHyphens: labels such as
// "r3---sn-abc" are real CDN host names, and browsers accept them too.
// Leading and trailing hyphens are still refused by checkLabels.
var hostProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.CheckHyphens(false),
)

const (
	maxHostInput = 1024 // longer input cannot become a valid name; refuse before IDNA work
	maxNameLen   = 253
	maxLabelLen  = 63
)

var dockerHubHosts = []string{
	"docker.io",
	"index.docker.io",
	"registry-1.docker.io",
	"registry.hub.docker.com",
	"auth.docker.io",
	"hub.docker.com",
	"production.cloudflare.docker.com",
}

// dockerHubAPIHosts serve the registry API (/v2/...); only these carry
// repository names worth inspecting. auth, hub and the blob CDN do not.
var dockerHubAPIHosts = map[string]bool{
	"docker.io":               true,
	"index.docker.io":         true,
	"registry-1.docker.io":    true,
	"registry.hub.docker.com": true,
}

// DockerHubHosts are the hosts of the docker-hub group.
func DockerHubHosts() []string {
	return append([]string(nil), dockerHubHosts...)
}

// IsDockerHub reports whether a normalized host is one of DockerHubHosts.
func IsDockerHub(host string) bool {
	for _, h := range dockerHubHosts {
		if h == host {
			return true
		}
	}
	return false
}

// IsDockerHubRegistry reports whether a normalized host serves Docker Hub's
// registry API, where image-level rules can be inspected.
func IsDockerHubRegistry(host string) bool {
	return dockerHubAPIHosts[host]
}

// NormalizeHost returns the canonical form of a host name or IP literal
// (lowercase, IDNA ToASCII, one trailing dot removed, IPv6 without brackets).
//
// Callers that go on to connect must use the returned name, not the input:
// IDNA maps look-alike input (full-width letters, ideographic full stops) to
// the name that was checked.
func NormalizeHost(s string) (string, error) {
	h, _, err := normalizeHost(s)
	return h, err
}

// normalizeHost also says whether the host is an IP literal, which wildcard
// patterns and the matcher need to know.
func normalizeHost(s string) (host string, isIP bool, err error) {
	if s == "" {
		return "", false, errors.New("empty host")
	}
	if len(s) > maxHostInput {
		return "", false, fmt.Errorf("%s is not a hostname: it is longer than %d characters", quote(s), maxNameLen)
	}
	if !utf8.ValidString(s) {
		return "", false, fmt.Errorf("%s is not a hostname: it is not valid UTF-8", quote(s))
	}
	if s[0] == '[' {
		return normalizeBracketed(s)
	}
	if strings.IndexByte(s, ':') >= 0 {
		return normalizeIPv6(s, s)
	}
	if err := checkHostBytes(s); err != nil {
		return "", false, fmt.Errorf("%s is not a hostname: %w", quote(s), err)
	}
	ascii, err := hostProfile.ToASCII(s)
	if err != nil {
		return "", false, fmt.Errorf("%s is not a hostname: %w", quote(s), err)
	}
	// One trailing dot is the DNS root; it is stripped after IDNA so that an
	// ideographic full stop at the end counts the same as ".".
	ascii = strings.TrimSuffix(ascii, ".")
	if a, err := netip.ParseAddr(ascii); err == nil && a.Is4() {
		return a.String(), true, nil
	}
	if err := checkLabels(ascii); err != nil {
		return "", false, fmt.Errorf("%s is not a hostname: %w", quote(s), err)
	}
	return ascii, false, nil
}

func normalizeBracketed(s string) (string, bool, error) {
	if !strings.HasSuffix(s, "]") {
		return "", false, fmt.Errorf("%s is not a hostname: missing \"]\" after an IPv6 address", quote(s))
	}
	return normalizeIPv6(s, s[1:len(s)-1])
}

func normalizeIPv6(orig, s string) (string, bool, error) {
	if strings.IndexByte(s, '%') >= 0 {
		return "", false, fmt.Errorf("%s is not an IP address: IPv6 zones are local to one machine and not allowed", quote(orig))
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		if orig == s && !strings.HasPrefix(orig, "[") && strings.Count(orig, ":") == 1 {
			return "", false, fmt.Errorf("%s is not a hostname: a port is not allowed here", quote(orig))
		}
		return "", false, fmt.Errorf("%s is not a hostname or IPv6 address", quote(orig))
	}
	return a.String(), true, nil
}

// checkHostBytes refuses ASCII that can never be part of a host name before
// IDNA sees it, with a message that names the culprit. Non-ASCII is left to
// IDNA, and checkLabels inspects whatever IDNA maps it to.
func checkHostBytes(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80, c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.':
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("it contains the control character %q", string(rune(c)))
		case c == ' ':
			return errors.New("it contains a space")
		case c == '/':
			return errors.New(`it contains "/"; name a registry host, not a repository or URL`)
		case c == '@':
			return errors.New(`it contains "@"; user information is not part of a host`)
		case c == '*':
			return errors.New(`it contains "*"; a wildcard is only allowed as the first label of a registry entry, like *.example.com`)
		default:
			return fmt.Errorf("it contains %q, which is not allowed in a host name", string(rune(c)))
		}
	}
	return nil
}

// checkLabels enforces the LDH rule on the ASCII form, label and name
// lengths, and refuses names that the WHATWG URL standard parses as IPv4
// numbers in a non-canonical spelling (127.1, 0x7f.1, 1.2.3.08): other
// software would connect to an address while the policy saw a name.
func checkLabels(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("the name is longer than %d characters", maxNameLen)
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" {
			return errors.New("it has an empty label")
		}
		if len(l) > maxLabelLen {
			return fmt.Errorf("the label %s is longer than %d characters", quote(l), maxLabelLen)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("the label %s starts or ends with \"-\"", quote(l))
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("the label %s contains %q", quote(l), string(rune(c)))
			}
		}
	}
	if isIPv4Number(labels[len(labels)-1]) {
		return errors.New("it is a non-canonical IPv4 address; write the address as four decimal numbers, like 127.0.0.1")
	}
	return nil
}

// isIPv4Number reports whether a last label is what the WHATWG URL parser
// reads as a number: all decimal digits, or 0x followed by hex digits.
func isIPv4Number(l string) bool {
	if strings.HasPrefix(l, "0x") {
		for i := 2; i < len(l); i++ {
			c := l[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return l != ""
}

// SplitHostPort parses "host", "host:port" or "[v6]:port" and normalizes the
// host. A bare IPv6 address ("::1") is taken whole, without a port. Port 0
// means none was given.
func SplitHostPort(s string) (host string, port uint16, err error) {
	h, p, _, err := splitHostPortIP(s)
	return h, p, err
}

func splitHostPortIP(s string) (host string, port uint16, isIP bool, err error) {
	hostPart, portPart, hasPort, err := splitPort(s)
	if err != nil {
		return "", 0, false, err
	}
	if hasPort {
		if port, err = parsePort(portPart); err != nil {
			return "", 0, false, fmt.Errorf("%s: %w", quote(s), err)
		}
	}
	host, isIP, err = normalizeHost(hostPart)
	if err != nil {
		return "", 0, false, err
	}
	return host, port, isIP, nil
}

// splitPort separates a port without interpreting the host.
func splitPort(s string) (host, port string, hasPort bool, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", false, fmt.Errorf("%s is not a hostname: missing \"]\" after an IPv6 address", quote(s))
		}
		rest := s[end+1:]
		switch {
		case rest == "":
			return s, "", false, nil
		case rest[0] == ':':
			return s[:end+1], rest[1:], true, nil
		default:
			return "", "", false, fmt.Errorf("%s is not a hostname: unexpected %s after \"]\"", quote(s), quote(rest))
		}
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, "", false, nil
	case 1:
		i := strings.IndexByte(s, ':')
		return s[:i], s[i+1:], true, nil
	default:
		return s, "", false, nil // a bare IPv6 address; a port needs brackets
	}
}

func parsePort(p string) (uint16, error) {
	if p == "" {
		return 0, errors.New("empty port")
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return 0, fmt.Errorf("port %s is not a number", quote(p))
		}
	}
	if len(p) > 1 && p[0] == '0' {
		return 0, fmt.Errorf("port %s has a leading zero", quote(p))
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s is out of range 1-65535", quote(p))
	}
	return uint16(n), nil
}

// JoinHostPort renders a normalized host and port the way messages show
// them: the port only when it is not 0, 80 or 443, and IPv6 in brackets when
// a port is shown.
func JoinHostPort(host string, port uint16) string {
	if port == 0 || port == 80 || port == 443 {
		return host
	}
	p := strconv.FormatUint(uint64(port), 10)
	if strings.IndexByte(host, ':') >= 0 {
		return "[" + host + "]:" + p
	}
	return host + ":" + p
}
