package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// path is one way to the origin: direct (proxy empty) or through a proxy.
type path struct {
	name  string
	proxy string // the proxy's 127.0.0.1:PORT; empty for direct
	p     *proxy // nil for direct
}

// cpu is the proxy process tree's CPU time so far (0 for direct, or if it
// cannot be read: the figure is then left out rather than guessed).
func (pa path) cpu() time.Duration {
	if pa.p == nil {
		return 0
	}
	d, err := treeCPU(pa.p.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return d
}

// throughput downloads size bytes over streams parallel tunnels (each its
// own CONNECT and TLS session) and returns bytes per second.
func throughput(ctx context.Context, pa path, o *origin, size int64, streams int) (float64, error) {
	per := size / int64(streams)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var total atomic.Int64
	errs := make(chan error, streams)
	start := time.Now()
	var wg sync.WaitGroup
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := fetch(ctx, pa.proxy, o, "/bytes?n="+strconv.FormatInt(per, 10), 5*time.Minute)
			total.Add(n)
			errs <- err
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			return 0, fmt.Errorf("%s: stream: %w", pa.name, err)
		}
	}
	if got := total.Load(); got != per*int64(streams) {
		return 0, fmt.Errorf("%s: received %d bytes, want %d", pa.name, got, per*int64(streams))
	}
	return float64(total.Load()) / elapsed.Seconds(), nil
}

// deniedCounts is the outcome of a denied-CONNECT run.
type deniedCounts struct {
	ok, bad int64 // 403 answers; anything else
	elapsed time.Duration
	cpu     time.Duration    // the proxy's CPU time over the run
	kinds   map[string]int64 // errors by kind, addresses left out
}

// errorKind strips addresses and ports so that errors group by cause.
func errorKind(err error) string {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		return ne.Op + ": " + ne.Err.Error()
	}
	return err.Error()
}

// denied has clients goroutines each open a new connection, send CONNECT
// to the refused target, read the status and close, until dur passes or
// max attempts were made.
func denied(ctx context.Context, pa path, deny string, clients int, dur time.Duration, max int64) deniedCounts {
	var ok, bad, attempts atomic.Int64
	var mu sync.Mutex
	kinds := map[string]int64{}
	fail := func(err error) {
		bad.Add(1)
		mu.Lock()
		kinds[errorKind(err)]++
		mu.Unlock()
	}
	// The end is checked by the clock, not by a context deadline: a dial
	// started after the deadline fails at once with a timeout before the
	// context reports it is done, which would count as errors.
	start := time.Now()
	end := start.Add(dur)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(end) && attempts.Add(1) <= max {
				c, err := dialer.DialContext(ctx, "tcp", pa.proxy)
				if err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					continue
				}
				code, _, err := connect(c, deny)
				c.Close()
				switch {
				case err != nil:
					fail(err)
				case code != 403:
					fail(fmt.Errorf("status %d, want 403", code))
				default:
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return deniedCounts{ok: ok.Load(), bad: bad.Load(), elapsed: time.Since(start), kinds: kinds}
}

// latencies runs n sequential CONNECT + full TLS handshake + small GET
// requests, each on a new connection, stopping early when limit passes.
func latencies(ctx context.Context, pa path, o *origin, n int, limit time.Duration) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out := make([]time.Duration, 0, n)
	for range n {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		if _, err := fetch(ctx, pa.proxy, o, "/small", 10*time.Second); err != nil {
			if ctx.Err() != nil {
				break
			}
			return out, fmt.Errorf("%s: request %d: %w", pa.name, len(out)+1, err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// percentile of sorted durations, nearest-rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// memoryResult is the proxy tree's RSS around opening idle tunnels.
type memoryResult struct {
	before, after int64
	tunnels       int
}

func (m memoryResult) perTunnel() float64 {
	return float64(m.after-m.before) / float64(m.tunnels)
}

// memory opens n tunnels (CONNECT + TLS handshake, then idle) with 32
// workers, and measures the proxy process tree's RSS before and after.
func memory(ctx context.Context, pa path, o *origin, n int, limit time.Duration) (memoryResult, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	pid := pa.p.cmd.Process.Pid
	// A few tunnels first, so one-time set-up (TLS tables, pools, the
	// first goroutines) is not charged to the idle tunnels.
	for range 20 {
		if _, err := fetch(ctx, pa.proxy, o, "/small", 10*time.Second); err != nil {
			return memoryResult{}, fmt.Errorf("%s: warm-up: %w", pa.name, err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	before, err := treeRSS(pid)
	if err != nil {
		return memoryResult{}, err
	}
	conns := make([]net.Conn, n)
	var next atomic.Int64
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := dialVia(ctx, pa.proxy, o.addr)
				if err != nil {
					errs <- fmt.Errorf("tunnel %d: %w", i, err)
					return
				}
				tc, err := handshake(ctx, c, o.pool)
				if err != nil {
					c.Close()
					errs <- fmt.Errorf("tunnel %d: %w", i, err)
					return
				}
				conns[i] = tc
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	close(errs)
	if err := <-errs; err != nil {
		return memoryResult{}, fmt.Errorf("%s: %w", pa.name, err)
	}
	if ctx.Err() != nil {
		return memoryResult{}, fmt.Errorf("%s: opening %d tunnels: %w", pa.name, n, ctx.Err())
	}
	// Let the proxy settle (TLS session tickets pass through, buffers
	// shrink) before reading its size.
	time.Sleep(time.Second)
	after, err := treeRSS(pid)
	if err != nil {
		return memoryResult{}, err
	}
	// Every tunnel must still be open, or the figure would be per nothing.
	select {
	case <-pa.p.exited:
		return memoryResult{}, errors.New(pa.name + " exited while holding the tunnels")
	default:
	}
	if slices.Contains(conns, nil) {
		return memoryResult{}, errors.New(pa.name + ": not every tunnel opened")
	}
	// Every 100th tunnel must still carry a request: a proxy that dropped
	// idle tunnels would otherwise look small.
	for i := 0; i < n; i += 100 {
		if _, err := get(conns[i], o.addr, "/small", 10*time.Second); err != nil {
			return memoryResult{}, fmt.Errorf("%s: idle tunnel %d no longer works: %w", pa.name, i, err)
		}
	}
	return memoryResult{before: before, after: after, tunnels: n}, nil
}
