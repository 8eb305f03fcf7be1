package policy

import (
	"fmt"
	"strings"
	"testing"
)

func TestHostVectors(t *testing.T) {
	if len(hostVectors) < 60 {
		t.Fatalf("the host vector table has %d rows, want at least 60", len(hostVectors))
	}
	for i, v := range hostVectors {
		t.Run(fmt.Sprintf("%d/%s", i, v.want), func(t *testing.T) {
			pat, perr := parsePattern(v.entry)
			if (perr != nil) != (v.want == badEntry) {
				t.Fatalf("parsePattern(%q) error = %v, want error: %v", v.entry, perr, v.want == badEntry)
			}
			host, port, herr := SplitHostPort(v.input)
			if (herr != nil) != (v.norm == "") {
				t.Fatalf("SplitHostPort(%q) = %q, %d, %v; want host %q", v.input, host, port, herr, v.norm)
			}
			if herr != nil {
				if herr.Error() == "" {
					t.Errorf("SplitHostPort(%q): empty error message", v.input)
				}
				return
			}
			if host != v.norm || port != v.port {
				t.Fatalf("SplitHostPort(%q) = %q, %d; want %q, %d", v.input, host, port, v.norm, v.port)
			}
			if v.want == badEntry {
				return
			}
			m := newMatcher([]hostPattern{pat})
			_, got := m.Match(host, port)
			if got != (v.want == match) {
				t.Errorf("entry %q, host %q port %d: match = %v, want %v", v.entry, host, port, got, v.want == match)
			}
		})
	}
}

// FuzzMatch checks the properties host matching rests on, from the vector
// table outwards: no panic; normalization is idempotent; a match means the
// host is the entry or lies under a wildcard's suffix with agreeing ports,
// and every such host does match.
func FuzzMatch(f *testing.F) {
	for _, v := range hostVectors {
		f.Add(v.entry, v.input)
	}
	f.Fuzz(func(t *testing.T, entry, input string) {
		if h, err := NormalizeHost(input); err == nil {
			if h2, err := NormalizeHost(h); err != nil || h2 != h {
				t.Fatalf("NormalizeHost not idempotent: %q -> %q -> %q, %v", input, h, h2, err)
			}
		}
		host, port, err := SplitHostPort(input)
		if err != nil {
			return
		}
		if h2, err := NormalizeHost(host); err != nil || h2 != host {
			t.Fatalf("SplitHostPort(%q) host %q does not normalize to itself: %q, %v", input, host, h2, err)
		}
		pat, err := parsePattern(entry)
		if err != nil {
			return
		}
		if again, err := parsePattern(pat.String()); err != nil || again != pat {
			t.Fatalf("pattern %q -> %q does not parse back to itself: %+v, %v", entry, pat.String(), again, err)
		}
		m, err := NewMatcher([]string{entry})
		if err != nil {
			t.Fatalf("NewMatcher(%q): %v after parsePattern accepted it", entry, err)
		}
		idx, got := m.Match(host, port)
		want := patternCovers(pat, host, port)
		if got != want || (got && idx != 0) {
			t.Fatalf("entry %q (%+v), host %q port %d: Match = %d, %v; want %v", entry, pat, host, port, idx, got, want)
		}
	})
}

// patternCovers is the matching rule stated plainly, without the index.
func patternCovers(p hostPattern, host string, port uint16) bool {
	portOK := p.port == 0 || p.port == port
	switch p.kind {
	case patternGroup:
		return IsDockerHub(host)
	case patternWildcard:
		return portOK && strings.HasSuffix(host, "."+p.host) && !strings.Contains(host, ":")
	default:
		return portOK && host == p.host
	}
}

func TestNormalizeHostMessages(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"docker.io/library", `"docker.io/library" is not a hostname: it contains "/"`},
		{"127.1", `"127.1" is not a hostname: it is a non-canonical IPv4 address`},
		{"a_b.example", `"a_b.example" is not a hostname: it contains "_"`},
		{"fe80::1%eth0", `IPv6 zones are local to one machine`},
		{"ghcr.io:443", `a port is not allowed here`},
		{"", `empty host`},
		{strings.Repeat("a", 2000), `is longer than 253 characters`},
	}
	for _, tt := range tests {
		_, err := NormalizeHost(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NormalizeHost(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestPatternMessages(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"*", `a bare "*" would allow every registry`},
		{"*.*.example.com", `more than one "*"`},
		{"a.*.com", `"*" inside the name`},
		{"*example.com", `"*" must be a whole label`},
		{"*.com", `whole top-level domain`},
		{"*.10.0.0.1", `cannot cover an IP address`},
		{"docker-hub:443", `group takes no port`},
		{"ghcr.io:99999", `out of range 1-65535`},
	}
	for _, tt := range tests {
		_, err := parsePattern(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parsePattern(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestJoinHostPort(t *testing.T) {
	tests := []struct {
		host string
		port uint16
		want string
	}{
		{"ghcr.io", 0, "ghcr.io"},
		{"ghcr.io", 443, "ghcr.io"},
		{"ghcr.io", 80, "ghcr.io"},
		{"ghcr.io", 5000, "ghcr.io:5000"},
		{"::1", 0, "::1"},
		{"::1", 443, "::1"},
		{"::1", 5000, "[::1]:5000"},
	}
	for _, tt := range tests {
		if got := JoinHostPort(tt.host, tt.port); got != tt.want {
			t.Errorf("JoinHostPort(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}

func TestDockerHubHosts(t *testing.T) {
	hosts := DockerHubHosts()
	if len(hosts) != 7 {
		t.Fatalf("DockerHubHosts() has %d hosts, want the 7 of DESIGN.md", len(hosts))
	}
	for _, h := range hosts {
		if !IsDockerHub(h) {
			t.Errorf("IsDockerHub(%q) = false", h)
		}
		if n, err := NormalizeHost(h); err != nil || n != h {
			t.Errorf("Docker Hub host %q is not normalized: %q, %v", h, n, err)
		}
	}
	hosts[0] = "evil.test" // the caller's copy must not leak into the group
	if IsDockerHub("evil.test") || !IsDockerHub("docker.io") {
		t.Error("DockerHubHosts returned the package's own slice")
	}
	for _, h := range []string{"docker.io.evil.test", "evildocker.io", "DOCKER.IO", "docker.io."} {
		if IsDockerHub(h) {
			t.Errorf("IsDockerHub(%q) = true", h)
		}
	}
}
