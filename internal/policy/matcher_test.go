package policy

import (
	"fmt"
	"strings"
	"testing"
)

func TestMatcherLowestIndex(t *testing.T) {
	m, err := NewMatcher([]string{
		"*.example.com:8443", // 0
		"a.example.com",      // 1
		"*.b.example.com",    // 2
		"docker-hub",         // 3
		"docker.io",          // 4
		"*.example.com",      // 5
		"c.b.example.com",    // 6
		"[::1]:5000",         // 7
		"10.0.0.1",           // 8
	})
	if err != nil {
		t.Fatalf("NewMatcher: %v", err)
	}
	tests := []struct {
		host string
		port uint16
		want int // -1: no match
	}{
		{"a.example.com", 8443, 0},
		{"a.example.com", 443, 1},
		{"a.example.com", 0, 1},
		{"c.b.example.com", 443, 2},
		{"c.b.example.com", 8443, 0},
		{"x.y.b.example.com", 0, 2},
		{"b.example.com", 443, 5},
		{"example.com", 443, -1},
		{"docker.io", 443, 3},
		{"registry-1.docker.io", 0, 3},
		{"x.docker.io", 443, -1},
		{"::1", 5000, 7},
		{"::1", 443, -1},
		{"10.0.0.1", 443, 8},
		{"1.10.0.0.1", 443, -1},
		{"com", 443, -1},
		{"", 0, -1},
	}
	for _, tt := range tests {
		got, ok := m.Match(tt.host, tt.port)
		if !ok {
			got = -1
		}
		if got != tt.want {
			t.Errorf("Match(%q, %d) = %d, want %d", tt.host, tt.port, got, tt.want)
		}
	}
}

func TestMatcherZeroValue(t *testing.T) {
	var m Matcher
	if i, ok := m.Match("docker.io", 443); ok {
		t.Errorf("zero Matcher matched entry %d", i)
	}
	empty, err := NewMatcher(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Match("docker.io", 443); ok {
		t.Error("empty Matcher matched")
	}
}

func TestNewMatcherError(t *testing.T) {
	_, err := NewMatcher([]string{"ghcr.io", "*.com"})
	if err == nil || !strings.HasPrefix(err.Error(), "pattern 1: ") {
		t.Errorf("NewMatcher error = %v, want it to name pattern 1", err)
	}
}

// benchPatterns builds n entries, a third of them wildcards, spread over
// many suffixes so the maps hold n distinct keys.
func benchPatterns(n int) []string {
	ps := make([]string, n)
	for i := range ps {
		switch i % 3 {
		case 0:
			ps[i] = fmt.Sprintf("*.team%d.corp%d.example", i, i%97)
		case 1:
			ps[i] = fmt.Sprintf("registry%d.corp%d.example:5000", i, i%97)
		default:
			ps[i] = fmt.Sprintf("mirror%d.corp%d.example", i, i%97)
		}
	}
	return ps
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{100, 10_000, 100_000} {
		m, err := NewMatcher(benchPatterns(n))
		if err != nil {
			b.Fatal(err)
		}
		last := n - n%3 - 3 // a wildcard entry near the end: no early exit helps
		hosts := []struct {
			host string
			port uint16
		}{
			{fmt.Sprintf("a.b.c.team%d.corp%d.example", last, last%97), 443},        // deep wildcard hit
			{fmt.Sprintf("registry%d.corp%d.example", n-n%3-2, (n-n%3-2)%97), 5000}, // exact with port
			{"registry-1.docker.io.evil.test", 443},                                 // miss
		}
		for _, h := range hosts {
			if _, ok := m.Match(h.host, h.port); !ok && !strings.HasSuffix(h.host, "evil.test") {
				b.Fatalf("%d entries: %s:%d does not match", n, h.host, h.port)
			}
		}
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h := hosts[i%len(hosts)]
				m.Match(h.host, h.port)
			}
		})
	}
}
