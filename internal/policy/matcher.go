package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

type patternKind uint8

const (
	patternExact    patternKind = iota // one host name or IP literal
	patternWildcard                    // *.suffix: every name under suffix
	patternGroup                       // the docker-hub group
)

// hostPattern is a parsed Registry.Host.
type hostPattern struct {
	kind patternKind
	host string // normalized host, or the suffix of a wildcard without "*."
	port uint16 // 0: every port
}

// String is the canonical spelling, used to find duplicates and to key diffs.
func (p hostPattern) String() string {
	var h string
	switch p.kind {
	case patternGroup:
		return DockerHubGroup
	case patternWildcard:
		h = "*." + p.host
	default:
		h = p.host
	}
	if p.port == 0 {
		return h
	}
	if strings.IndexByte(h, ':') >= 0 {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.FormatUint(uint64(p.port), 10)
}

// parsePattern parses one registry entry host: a name or IP literal with an
// optional port, a wildcard "*.example.com[:port]", or "docker-hub".
func parsePattern(s string) (hostPattern, error) {
	if s == "" {
		return hostPattern{}, errors.New("required")
	}
	if strings.EqualFold(s, DockerHubGroup) {
		return hostPattern{kind: patternGroup}, nil
	}
	if len(s) > len(DockerHubGroup) && strings.EqualFold(s[:len(DockerHubGroup)+1], DockerHubGroup+":") {
		return hostPattern{}, fmt.Errorf("the %s group takes no port; it covers every Docker Hub host on every port", DockerHubGroup)
	}
	if strings.IndexByte(s, '*') >= 0 {
		return parseWildcard(s)
	}
	host, port, _, err := splitHostPortIP(s)
	if err != nil {
		return hostPattern{}, err
	}
	return hostPattern{kind: patternExact, host: host, port: port}, nil
}

func parseWildcard(s string) (hostPattern, error) {
	hostPart, portPart, hasPort, err := splitPort(s)
	if err != nil {
		return hostPattern{}, err
	}
	switch {
	case hostPart == "*":
		return hostPattern{}, errors.New(`a bare "*" would allow every registry; turn registry access off instead`)
	case strings.Count(hostPart, "*") > 1:
		return hostPattern{}, fmt.Errorf(`%s has more than one "*"; use one wildcard as the first label, like *.example.com, which already covers every depth`, quote(s))
	case !strings.HasPrefix(hostPart, "*"):
		return hostPattern{}, fmt.Errorf(`%s has "*" inside the name; a wildcard is only allowed as the whole first label, like *.example.com`, quote(s))
	case !strings.HasPrefix(hostPart, "*."):
		return hostPattern{}, fmt.Errorf(`%s is not a wildcard: "*" must be a whole label followed by ".", like *.example.com`, quote(s))
	}
	var port uint16
	if hasPort {
		if port, err = parsePort(portPart); err != nil {
			return hostPattern{}, fmt.Errorf("%s: %w", quote(s), err)
		}
	}
	suffix, isIP, err := normalizeHost(hostPart[2:])
	if err != nil {
		return hostPattern{}, fmt.Errorf("wildcard %s: %w", quote(s), err)
	}
	if isIP {
		return hostPattern{}, fmt.Errorf("wildcard %s: a wildcard cannot cover an IP address; list the address itself", quote(s))
	}
	if strings.IndexByte(suffix, '.') < 0 {
		return hostPattern{}, fmt.Errorf("wildcard %s would cover a whole top-level domain; name at least two labels, like *.example.com", quote(s))
	}
	return hostPattern{kind: patternWildcard, host: suffix, port: port}, nil
}

// hostPort keys the matcher's maps; port 0 stands for "every port".
type hostPort struct {
	host string
	port uint16
}

// Matcher finds the registry entry that matches a host. Entries are indexed
// by exact host and by wildcard suffix, so a lookup costs one map probe per
// label of the host whatever the number of entries. The zero Matcher matches
// nothing.
type Matcher struct {
	exact map[hostPort]int // host (or IP literal) -> lowest entry index
	wild  map[hostPort]int // wildcard suffix without "*." -> lowest entry index
}

// NewMatcher compiles host patterns (as in Registry.Host). An error names the
// index of the first bad pattern.
func NewMatcher(patterns []string) (*Matcher, error) {
	parsed := make([]hostPattern, len(patterns))
	for i, s := range patterns {
		p, err := parsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("pattern %d: %w", i, err)
		}
		parsed[i] = p
	}
	return newMatcher(parsed), nil
}

func newMatcher(patterns []hostPattern) *Matcher {
	m := &Matcher{exact: make(map[hostPort]int), wild: make(map[hostPort]int)}
	for i, p := range patterns {
		switch p.kind {
		case patternGroup:
			for _, h := range dockerHubHosts {
				m.add(m.exact, hostPort{h, 0}, i)
			}
		case patternWildcard:
			m.add(m.wild, hostPort{p.host, p.port}, i)
		default:
			m.add(m.exact, hostPort{p.host, p.port}, i)
		}
	}
	return m
}

// add keeps the first (lowest) index for a key; patterns arrive in order,
// so a later duplicate never shadows an earlier entry.
func (m *Matcher) add(index map[hostPort]int, k hostPort, i int) {
	if _, ok := index[k]; !ok {
		index[k] = i
	}
}

// Match returns the lowest index of a pattern that matches the normalized
// host and port. Port 0 (unknown) matches only entries without a port. The
// host must come from NormalizeHost or SplitHostPort; anything else simply
// does not match.
func (m *Matcher) Match(host string, port uint16) (int, bool) {
	best := -1
	probe := func(index map[hostPort]int, h string) {
		if i, ok := index[hostPort{h, 0}]; ok && (best < 0 || i < best) {
			best = i
		}
		if port == 0 {
			return
		}
		if i, ok := index[hostPort{h, port}]; ok && (best < 0 || i < best) {
			best = i
		}
	}
	probe(m.exact, host)
	if len(m.wild) > 0 && !looksLikeIP(host) {
		// Every proper suffix that starts after a dot: for a.b.example.com
		// that is b.example.com, example.com and com.
		for rest := host; ; {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			probe(m.wild, rest)
		}
	}
	return best, best >= 0
}

// looksLikeIP is a cheap test on a normalized host: IPv6 has a colon and a
// canonical IPv4 ends in a number, which no valid name does.
func looksLikeIP(host string) bool {
	if strings.IndexByte(host, ':') >= 0 {
		return true
	}
	last := host
	if i := strings.LastIndexByte(host, '.'); i >= 0 {
		last = host[i+1:]
	}
	return isIPv4Number(last)
}
