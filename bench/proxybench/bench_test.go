package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512MiB", 512 << 20, true},
		{"1GiB", 1 << 30, true},
		{"100MB", 100e6, true},
		{"4096", 4096, true},
		{"12KiB", 12 << 10, true},
		{"0", 0, false},
		{"-5MiB", 0, false},
		{"lots", 0, false},
		{"MiB", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 100 * time.Millisecond}, {99, 198 * time.Millisecond}, {100, 200 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("percentile(1..200 ms, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

// TestTreeRSSCountsChildren checks that a child's memory is added: Squid
// and dockerd-style proxies do their work in forked processes.
func TestTreeRSSCountsChildren(t *testing.T) {
	self, err := vmRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a child: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	child, err := vmRSS(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := treeRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The test's own RSS moves a little between reads; the child's share
	// must be there on top of it.
	if tree < self+child/2 || child <= 0 {
		t.Errorf("treeRSS = %d, want about self %d + child %d", tree, self, child)
	}
	if _, err := treeRSS(1 << 30); err == nil {
		t.Errorf("treeRSS of a missing pid: no error")
	}
}

// TestDirectPath runs the scenarios' client code against the origin
// without a proxy: sizes must add up and latencies must be recorded.
func TestDirectPath(t *testing.T) {
	o, err := startOrigin()
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	ctx := context.Background()
	bps, err := throughput(ctx, path{name: "direct"}, o, 3<<20+3, 3)
	if err != nil {
		t.Fatal(err)
	}
	if bps <= 0 {
		t.Errorf("throughput = %v, want > 0", bps)
	}
	ds, err := latencies(ctx, path{name: "direct"}, o, 20, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 20 {
		t.Errorf("latencies: %d samples, want 20", len(ds))
	}
	n, err := fetch(ctx, "", o, "/bytes?n=1000000", 10*time.Second)
	if err != nil || n != 1000000 {
		t.Errorf("fetch 1000000 bytes: got %d, %v", n, err)
	}
	if _, err := fetch(ctx, "", o, "/bytes?n=x", 10*time.Second); err == nil {
		t.Errorf("fetch with a bad size: no error")
	}
}

// TestDeniedAgainstRefusingProxy counts 403s from a listener that refuses
// every CONNECT, and classifies other answers as errors.
func TestDeniedAgainstRefusingProxy(t *testing.T) {
	s, err := startSink() // accepts and closes: every CONNECT fails to read
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	c := denied(context.Background(), path{name: "closer", proxy: s.addr}, "127.0.0.1:1", 4, 200*time.Millisecond, 50)
	if c.ok != 0 || c.bad == 0 || c.bad > 50 {
		t.Errorf("against a closing listener: ok=%d bad=%d, want 0 ok, 1..50 errors", c.ok, c.bad)
	}
	if len(c.kinds) == 0 {
		t.Errorf("errors were not classified")
	}
}
