package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/store/sqlite"
)

// The load generator counts only answers of the wanted status and stops at
// the first other one, naming it: a run that measured 401s would be worse
// than no run.
func TestLoadStopsAtUnexpectedStatus(t *testing.T) {
	var calls int
	addr := serveLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++ // one connection: no race
		if r.Header.Get("If-None-Match") == `"3"` && calls < 50 {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		http.Error(w, "token revoked", http.StatusUnauthorized)
	}))
	ctx := context.Background()
	_, err := load(ctx, addr, conditionalGET(addr, "tok", 3), 304, 1, 0, 5*time.Second, nil)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "token revoked") {
		t.Fatalf("load against a server that turns to 401: err %v, want one naming the 401 and its body", err)
	}

	ok := serveLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" || r.URL.Path != "/api/v1/orgs/acme/policy" {
			http.Error(w, "bad request line or headers", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNotModified)
	}))
	res, err := load(ctx, ok, conditionalGET(ok, "tok", 3), 304, 4, 50*time.Millisecond, 300*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.requests < 10 || len(res.latencies) != int(res.requests) || res.elapsed < 300*time.Millisecond {
		t.Fatalf("load counted %d requests, %d latencies in %v", res.requests, len(res.latencies), res.elapsed)
	}
}

func TestProcCPUReadsThisProcess(t *testing.T) {
	// Burn some CPU so the figure cannot be zero by rounding.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	d, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self := selfCPU(); d <= 0 || d > self+time.Second {
		t.Fatalf("procCPU = %v, getrusage = %v", d, self)
	}
}

func serveLoopback(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// inProcess runs the control plane on SQLite in this process, served over
// loopback, and returns its address and the owner's token.
func inProcess(b *testing.B) (addr, token string) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "regward.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	cp, err := controlplane.New(controlplane.Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	fr, err := controlplane.Bootstrap(ctx, st, cp, org, adminPassword)
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	b.Cleanup(cancel)
	go cp.Run(rctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: cp.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), fr.Token
}

// BenchmarkPolicy304InProcess serves the control plane's handler over
// loopback in this process, so that
//
//	go test ./bench/apibench -run '^$' -bench Policy304 -cpuprofile cpu.out
//
// profiles the conditional GET that gateways and agents poll with; the
// request crosses a real TCP connection and net/http, as it does from a
// separate process.
func BenchmarkPolicy304InProcess(b *testing.B) {
	ctx := context.Background()
	addr, token := inProcess(b)
	v, err := newAPI("http://"+addr, token, 1).policyVersion(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// A fixed time per b.N round keeps the benchmark's own loop bounded;
	// the reported figure is requests per second.
	var total int64
	var elapsed time.Duration
	for b.Loop() {
		res, err := load(ctx, addr, conditionalGET(addr, token, v), 304, 32, 0, 500*time.Millisecond, nil)
		if err != nil {
			b.Fatal(err)
		}
		total += res.requests
		elapsed += res.elapsed
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "req/s")
}

// BenchmarkFanoutInProcess has 1000 long-polls waiting when a change is
// applied, to profile what each woken long-poll costs:
//
//	go test ./bench/apibench -run '^$' -bench Fanout -cpuprofile cpu.out
func BenchmarkFanoutInProcess(b *testing.B) {
	ctx := context.Background()
	addr, token := inProcess(b)
	owner := newAPI("http://"+addr, token, 2)
	var last time.Duration
	for b.Loop() {
		rounds, err := fanout(ctx, "http://"+addr, owner, 1000, 1)
		if err != nil {
			b.Fatal(err)
		}
		last = slices.Max(rounds[0])
	}
	b.ReportMetric(float64(last.Milliseconds()), "ms-to-last")
}
