package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// pull downloads the blob from host through a fresh client (so a new
// tunnel) and returns bytes per second.
func (s *setup) pull(ctx context.Context, host string, h2 bool, limit time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tr := s.transport(h2)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+s.blob.path(), nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", host, resp.Status)
	}
	wantProto := 1
	if h2 {
		wantProto = 2
	}
	if resp.ProtoMajor != wantProto {
		return 0, fmt.Errorf("GET %s went over HTTP/%d, want HTTP/%d", host, resp.ProtoMajor, wantProto)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, fmt.Errorf("GET %s: after %d bytes: %w", host, n, err)
	}
	if n != s.blob.size {
		return 0, fmt.Errorf("GET %s: %d bytes, want %d", host, n, s.blob.size)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

type throughputResult struct {
	proto          string
	blind, inspect []float64 // bytes per second, per round
	// CPU seconds per GiB the whole process (client, gateway, origin)
	// spent, per round: steadier than throughput on a shared machine.
	blindCPU, inspectCPU []float64
	heapGrowth           uint64 // largest heap growth during inspected pulls
}

func (r throughputResult) ratio() float64 { return median(r.inspect) / median(r.blind) }

// throughput runs interleaved rounds of blind and inspected pulls, the
// order alternating so that neither always goes first.
func (s *setup) throughput(ctx context.Context, o options, h2 bool) (throughputResult, error) {
	res := throughputResult{proto: protoName(h2)}
	// One small pull each first: TLS tables, pools and goroutines warm.
	for _, host := range []string{blindHost, inspectedHost} {
		if err := s.head(ctx, host, h2); err != nil {
			return res, err
		}
	}
	for round := range o.runs {
		order := []string{blindHost, inspectedHost}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, host := range order {
			var hw *heapWatch
			if host == inspectedHost {
				hw = watchHeap()
			}
			cpu0 := cpuTime()
			bps, err := s.pull(ctx, host, h2, o.timeout)
			cpuPerGiB := (cpuTime() - cpu0).Seconds() / (float64(s.blob.size) / (1 << 30))
			if hw != nil {
				res.heapGrowth = max(res.heapGrowth, hw.growth())
			}
			if err != nil {
				return res, err
			}
			if host == inspectedHost {
				res.inspect = append(res.inspect, bps)
				res.inspectCPU = append(res.inspectCPU, cpuPerGiB)
			} else {
				res.blind = append(res.blind, bps)
				res.blindCPU = append(res.blindCPU, cpuPerGiB)
			}
		}
	}
	return res, nil
}

// head asks for the blob's size, a cheap request through the path.
func (s *setup) head(ctx context.Context, host string, h2 bool) error {
	tr := s.transport(h2)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "https://"+host+s.blob.path(), nil)
	if err != nil {
		return err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("HEAD %s: %w", host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != s.blob.size {
		return fmt.Errorf("HEAD %s: %s, Content-Length %d", host, resp.Status, resp.ContentLength)
	}
	return nil
}

// connect opens a tunnel to host and completes the TLS handshake in it;
// with request, it also sends GET /v2/ and reads the answer. It returns
// how long that took from the dial on.
func (s *setup) connect(ctx context.Context, host string, request bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.proxy)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	target := host + ":443"
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		return 0, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return 0, fmt.Errorf("CONNECT %s: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("CONNECT %s: %s", target, resp.Status)
	}
	if br.Buffered() != 0 {
		return 0, errors.New("bytes after the CONNECT answer")
	}
	tc := tls.Client(c, &tls.Config{ServerName: host, RootCAs: s.roots, NextProtos: []string{"http/1.1"}})
	if err := tc.HandshakeContext(ctx); err != nil {
		return 0, fmt.Errorf("TLS with %s: %w", host, err)
	}
	if request {
		if _, err := fmt.Fprintf(tc, "GET /v2/ HTTP/1.1\r\nHost: %s\r\n\r\n", host); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			return 0, fmt.Errorf("GET /v2/ from %s: %w", host, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET /v2/ from %s: %s", host, resp.Status)
		}
	}
	return time.Since(start), nil
}

type latencyResult struct {
	first          time.Duration // the inspected host's first connection: the leaf is minted
	inspect, blind []time.Duration
	// with a first request (GET /v2/) on each new connection
	inspectReq, blindReq []time.Duration
	mint, hit            []time.Duration // gwca.Leaf for new names, and for a cached one
}

// handshakes measures new connections through both paths, interleaved.
func (s *setup) handshakes(ctx context.Context, o options) (latencyResult, error) {
	var res latencyResult
	if s.ca.CacheLen() != 0 {
		return res, errors.New("the gateway CA already has leaves; the first connection would not mint one")
	}
	first, err := s.connect(ctx, inspectedHost, false)
	if err != nil {
		return res, err
	}
	res.first = first
	for i := range o.conns {
		for _, step := range []struct {
			host    string
			request bool
			into    *[]time.Duration
		}{
			{blindHost, false, &res.blind},
			{inspectedHost, false, &res.inspect},
			{blindHost, true, &res.blindReq},
			{inspectedHost, true, &res.inspectReq},
		} {
			d, err := s.connect(ctx, step.host, step.request)
			if err != nil {
				return res, fmt.Errorf("connection %d: %w", i, err)
			}
			*step.into = append(*step.into, d)
		}
	}
	for i := range o.conns {
		start := time.Now()
		if _, err := s.ca.Leaf("leaf-" + strconv.Itoa(i) + ".mint.test"); err != nil {
			return res, err
		}
		res.mint = append(res.mint, time.Since(start))
		start = time.Now()
		if _, err := s.ca.Leaf(inspectedHost); err != nil {
			return res, err
		}
		res.hit = append(res.hit, time.Since(start))
	}
	for _, ds := range [][]time.Duration{res.inspect, res.blind, res.inspectReq, res.blindReq, res.mint, res.hit} {
		slices.Sort(ds)
	}
	return res, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// heapWatch samples the heap in use until stopped.
type heapWatch struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{base: ms.HeapInuse, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			w.peak.Store(max(w.peak.Load(), ms.HeapInuse))
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *heapWatch) growth() uint64 {
	close(w.stop)
	<-w.done
	return max(w.peak.Load(), w.base) - w.base
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func protoName(h2 bool) string {
	if h2 {
		return "HTTP/2"
	}
	return "HTTP/1.1"
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
