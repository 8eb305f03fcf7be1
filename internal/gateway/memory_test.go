package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/regward/regward/internal/policy"
)

// idleOrigin accepts connections and holds them without reading or
// spawning anything, so that it costs the same with or without a gateway.
type idleOrigin struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startIdleOrigin(tb testing.TB) *idleOrigin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	o := &idleOrigin{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.mu.Lock()
			o.conns = append(o.conns, c)
			o.mu.Unlock()
		}
	}()
	return o
}

func (o *idleOrigin) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.conns)
}

func (o *idleOrigin) close() {
	o.ln.Close()
	o.mu.Lock()
	for _, c := range o.conns {
		c.Close()
	}
	o.conns = nil
	o.mu.Unlock()
}

func liveMemory() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// openClients makes n connections to addr, each sending prefix and, when
// wantReply is set, reading the gateway's 200 before sending hello.
func openClients(tb testing.TB, n int, addr string, prefix []byte, wantReply bool, hello []byte) []net.Conn {
	tb.Helper()
	conns := make([]net.Conn, 0, n)
	reply := make([]byte, len(connectEstablished))
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatalf("client %d: %v", i, err)
		}
		c.Write(prefix)
		if wantReply {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, reply); err != nil || string(reply) != connectEstablished {
				tb.Fatalf("client %d: CONNECT answered %q, %v", i, reply, err)
			}
		}
		c.Write(hello)
		conns = append(conns, c)
	}
	return conns
}

// idleTunnelCost returns the Go memory (heap in use and stacks) each of n
// idle tunnels costs the gateway: the difference between n clients
// tunnelling through it to an origin and n clients connected to that
// origin directly.
func idleTunnelCost(tb testing.TB, n int) float64 {
	hello := clientHello(tb, "idle.test")
	connect := []byte("CONNECT idle.test:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n\r\n")

	// Without the gateway.
	origin := startIdleOrigin(tb)
	base := liveMemory()
	direct := openClients(tb, n, origin.ln.Addr().String(), nil, false, hello)
	waitFor(tb, "direct connections", func() bool { return origin.count() == n })
	directCost := float64(liveMemory()) - float64(base)
	for _, c := range direct {
		c.Close()
	}
	origin.close()

	// Through the gateway.
	origin = startIdleOrigin(tb)
	defer origin.close()
	gw, err := New(Config{
		Auth:     tableAuth{"alice": {aliceToken, Identity{User: "alice", Org: testOrg}}},
		Policies: &staticPolicies{version: 1, byOrg: map[string]*policy.Compiled{testOrg: compileAllowing(tb, testOrg, "idle.test")}},
		Resolve:  map[string]string{"idle.test": origin.ln.Addr().String()},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go gw.Serve(ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		gw.Shutdown(ctx)
	}()
	// Warm up the pools and the runtime's stack size guess with one
	// tunnel, which then stays open like the others.
	first := openClients(tb, 1, ln.Addr().String(), connect, true, hello)
	waitFor(tb, "the first tunnel", func() bool { return metricValue(tb, gw.m.tunnels) == 1 })
	base = liveMemory()
	tunnels := openClients(tb, n, ln.Addr().String(), connect, true, hello)
	waitFor(tb, "tunnels", func() bool { return metricValue(tb, gw.m.tunnels) == float64(n+1) && origin.count() == n+1 })
	time.Sleep(50 * time.Millisecond) // both directions of the last ones reach their wait
	gwCost := float64(liveMemory()) - float64(base)
	if testing.Verbose() {
		tb.Logf("%d connections straight to the origin: %.0f KiB; through the gateway: %.0f KiB; goroutines %d",
			n, directCost/1024, gwCost/1024, runtime.NumGoroutine())
	}
	for _, c := range append(first, tunnels...) {
		c.Close()
	}
	return (gwCost - directCost) / float64(n)
}

// TestIdleTunnelMemory holds the gateway to its budget of about 20 KiB per
// idle tunnel. The race detector multiplies goroutine memory, so the
// figure only means something without it.
func TestIdleTunnelMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("memory per tunnel is measured without the race detector (it inflates every goroutine)")
	}
	if testing.Short() {
		t.Skip("opens 1,000 tunnels")
	}
	per := idleTunnelCost(t, 1000)
	t.Logf("memory per idle tunnel: %.1f KiB", per/1024)
	if per > 20*1024 {
		t.Fatalf("an idle tunnel costs %.1f KiB, budget 20 KiB", per/1024)
	}
}

// BenchmarkIdleTunnelMemory reports KiB per idle tunnel with 2,000 open.
func BenchmarkIdleTunnelMemory(b *testing.B) {
	for range b.N {
		per := idleTunnelCost(b, 2000)
		b.ReportMetric(per/1024, "KiB/tunnel")
	}
}

// BenchmarkConnectHandshake measures one tunnel set-up end to end on
// loopback: TCP connect, CONNECT with credentials, decision, upstream dial,
// 200, ClientHello check and forward.
func BenchmarkConnectHandshake(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c) // until the gateway closes the tunnel
				c.Close()
			}()
		}
	}()
	e := newEnv(b, func(c *Config) {
		c.Resolve["idle.test"] = ln.Addr().String()
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		c.LogAllowed = false
	})
	e.policies.set(testOrg, compileAllowing(b, testOrg, "idle.test"))
	hello := clientHello(b, "idle.test")
	connect := []byte("CONNECT idle.test:443 HTTP/1.1\r\nProxy-Authorization: " + basic("alice", aliceToken) + "\r\n\r\n")
	b.ResetTimer()
	for range b.N {
		c := openClients(b, 1, e.addr, connect, true, hello)[0]
		c.Close()
	}
}
