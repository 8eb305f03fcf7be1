package gateway

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// pipeFDs counts this process's open pipes: splice(2) moves data through
// one, which is how a test can see that the tunnel copies with it.
func pipeFDs(t testing.TB) int {
	fds, err := filepath.Glob("/proc/self/fd/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "pipe:") {
			n++
		}
	}
	return n
}

// sourceServer sends size bytes to each connection after reading the
// forwarded ClientHello.
func sourceServer(tb testing.TB, helloLen int, size int64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.ReadFull(c, make([]byte, helloLen))
				io.CopyN(c, zeros{}, size)
			}()
		}
	}()
	return ln.Addr().String()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestTunnelSplices(t *testing.T) {
	hello := clientHello(t, "bulk.test")
	const size = 512 << 20
	addr := sourceServer(t, len(hello), size)
	e := newEnv(t, func(c *Config) { c.Resolve["bulk.test"] = addr })
	e.policies.set(testOrg, compileAllowing(t, testOrg, "bulk.test"))
	conn := e.connectTunnel("bulk.test:443")
	// Pipes pooled by earlier splices would be reused and not show up:
	// let the garbage collector close them first.
	deadline := time.Now().Add(2 * time.Second)
	for pipeFDs(t) > 0 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	before := pipeFDs(t)
	conn.Write(hello)
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 64<<10)
	var got int64
	maxPipes := before
	for got < size {
		n, err := conn.Read(buf)
		got += int64(n)
		if got%(16<<20) < int64(n) {
			maxPipes = max(maxPipes, pipeFDs(t))
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	if maxPipes <= before {
		t.Fatalf("no pipe opened during a %d MiB transfer: the tunnel does not splice", size>>20)
	}
	conn.Close()
	waitFor(t, "the tunnel to end", func() bool { return metricValue(t, e.gw.m.tunnels) == 0 })
	if down := metricValue(t, e.gw.m.bytesDown); down != size {
		t.Fatalf("bytes down %v, want %d", down, size)
	}
}

// BenchmarkTunnelThroughput moves data upstream-to-client through one
// tunnel on loopback.
func BenchmarkTunnelThroughput(b *testing.B) {
	hello := clientHello(b, "bulk.test")
	const chunk = 1 << 20
	addr := sourceServer(b, len(hello), int64(b.N)*chunk)
	e := newEnv(b, func(c *Config) { c.Resolve["bulk.test"] = addr })
	e.policies.set(testOrg, compileAllowing(b, testOrg, "bulk.test"))
	conn := e.connectTunnel("bulk.test:443")
	conn.SetDeadline(time.Time{})
	b.SetBytes(chunk)
	b.ResetTimer()
	conn.Write(hello)
	n, err := io.Copy(io.Discard, conn)
	if err != nil || n != int64(b.N)*chunk {
		b.Fatalf("read %d bytes: %v", n, err)
	}
}

// BenchmarkDirectThroughput is BenchmarkTunnelThroughput without the
// gateway, for comparison.
func BenchmarkDirectThroughput(b *testing.B) {
	hello := clientHello(b, "bulk.test")
	const chunk = 1 << 20
	addr := sourceServer(b, len(hello), int64(b.N)*chunk)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	b.SetBytes(chunk)
	b.ResetTimer()
	conn.Write(hello)
	n, err := io.Copy(io.Discard, conn)
	if err != nil || n != int64(b.N)*chunk {
		b.Fatalf("read %d bytes: %v", n, err)
	}
}
