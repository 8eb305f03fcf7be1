package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	only      []string
	scenarios []string
	size      int64
	streams   int
	runs      int
	clients   int
	deniedDur time.Duration
	deniedMax int64
	requests  int
	tunnels   int
	gateway   string
	timeout   time.Duration
	markdown  bool
	keep      bool
}

func main() {
	var o options
	var only, scen, size string
	flag.StringVar(&only, "only", "regward,squid,tinyproxy", "proxies to measure (the direct path is always measured where it applies)")
	flag.StringVar(&scen, "scenarios", "throughput,denied,latency,memory", "scenarios to run")
	flag.StringVar(&size, "size", "512MiB", "bytes to move in the throughput scenario, over all streams")
	flag.IntVar(&o.streams, "streams", 4, "parallel tunnels in the throughput scenario")
	flag.IntVar(&o.runs, "runs", 3, "interleaved rounds per scenario; throughput reports the median round")
	flag.IntVar(&o.clients, "clients", 32, "concurrent clients in the denied scenario")
	flag.DurationVar(&o.deniedDur, "denied-time", 3*time.Second, "length of the denied scenario per proxy, split over the rounds")
	flag.Int64Var(&o.deniedMax, "denied-max", 500_000, "most denied CONNECTs per proxy and round")
	flag.IntVar(&o.requests, "requests", 2000, "sequential requests per path in the latency scenario, split over the rounds")
	flag.IntVar(&o.tunnels, "tunnels", 2000, "idle tunnels in the memory scenario")
	flag.StringVar(&o.gateway, "gateway", "auto", "gateway binary: auto (cmd/regward if it has a gateway command, else gwmain), regward, gwmain")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "stop everything after this long")
	flag.BoolVar(&o.markdown, "markdown", false, "also print the results as a Markdown table")
	flag.BoolVar(&o.keep, "keep", false, "keep the working directory (configs, proxy logs)")
	flag.Parse()

	o.only = splitList(only)
	o.scenarios = splitList(scen)
	var err error
	if o.size, err = parseSize(size); err != nil {
		fatalf("-size: %v", err)
	}
	if err := o.check(); err != nil {
		fatalf("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "proxybench: "+format+"\n", args...)
	os.Exit(1)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (o options) check() error {
	for _, p := range o.only {
		if !slices.Contains([]string{"regward", "squid", "tinyproxy"}, p) {
			return fmt.Errorf("-only: unknown proxy %q (want regward, squid, tinyproxy)", p)
		}
	}
	for _, s := range o.scenarios {
		if !slices.Contains([]string{"throughput", "denied", "latency", "memory"}, s) {
			return fmt.Errorf("-scenarios: unknown scenario %q (want throughput, denied, latency, memory)", s)
		}
	}
	switch {
	case o.streams < 1 || o.streams > 64:
		return fmt.Errorf("-streams %d: want 1 to 64", o.streams)
	case o.size < int64(o.streams) || o.size > 64<<30:
		return fmt.Errorf("-size %d: want at least one byte per stream and at most 64 GiB", o.size)
	case o.runs < 1 || o.runs > 20:
		return fmt.Errorf("-runs %d: want 1 to 20", o.runs)
	case o.clients < 1 || o.clients > 1024:
		return fmt.Errorf("-clients %d: want 1 to 1024", o.clients)
	case o.deniedDur <= 0 || o.deniedDur > 5*time.Minute:
		return fmt.Errorf("-denied-time %v: want up to 5m", o.deniedDur)
	case o.requests < o.runs || o.requests > 1_000_000:
		return fmt.Errorf("-requests %d: want at least -runs and at most 1,000,000", o.requests)
	case o.tunnels < 1 || o.tunnels > 50_000:
		return fmt.Errorf("-tunnels %d: want 1 to 50,000", o.tunnels)
	case !slices.Contains([]string{"auto", "regward", "gwmain"}, o.gateway):
		return fmt.Errorf("-gateway %q: want auto, regward or gwmain", o.gateway)
	}
	return nil
}

// parseSize reads "512MiB", "1GiB", "100MB", "4096".
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 512MiB", s)
	}
	return n * mult, nil
}

// raiseFDLimit sets the soft open-file limit to the hard one. Calling
// Setrlimit also makes children (the proxies) inherit the raised limit
// instead of the original one Go restores for them by default.
func raiseFDLimit(need uint64) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	if l.Cur < need {
		return fmt.Errorf("open-file limit %d is below the %d this run needs; lower -tunnels or raise the hard limit", l.Cur, need)
	}
	return nil
}

func run(ctx context.Context, o options) error {
	// The bench holds both ends of every idle tunnel (client and origin)
	// and the proxy two sockets per tunnel.
	if err := raiseFDLimit(uint64(4*o.tunnels + 1024)); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "proxybench-")
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	if o.keep {
		fmt.Printf("working directory: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	// Squid switches to an unprivileged user that must reach its files.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}

	org, err := startOrigin()
	if err != nil {
		return err
	}
	defer org.close()
	sk, err := startSink()
	if err != nil {
		return err
	}
	defer sk.ln.Close()

	var kinds []proxyKind
	for _, name := range o.only {
		switch name {
		case "regward":
			bin, listenFlag, label, err := buildGateway(ctx, dir, o.gateway)
			if err != nil {
				return err
			}
			kinds = append(kinds, regwardKind(bin, listenFlag, label))
		case "squid":
			if _, err := exec.LookPath("squid"); err != nil {
				return fmt.Errorf("squid is not installed (apt-get install squid): %w", err)
			}
			kinds = append(kinds, squidKind(sk.addr))
		case "tinyproxy":
			if _, err := exec.LookPath("tinyproxy"); err != nil {
				return fmt.Errorf("tinyproxy is not installed (apt-get install tinyproxy): %w", err)
			}
			kinds = append(kinds, tinyproxyKind())
		}
	}

	rep := &report{opts: o, started: time.Now()}
	rep.facts(kinds)
	rep.printFacts()
	for _, s := range o.scenarios {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped before %s: %w", s, err)
		}
		sdir, err := os.MkdirTemp(dir, s+"-")
		if err != nil {
			return fmt.Errorf("scenario directory: %w", err)
		}
		if err := os.Chmod(sdir, 0o755); err != nil {
			return fmt.Errorf("scenario directory: %w", err)
		}
		if err := runScenario(ctx, s, sdir, kinds, org, sk, o, rep); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	if n := sk.accepted(); n != 0 {
		return fmt.Errorf("the refused target received %d connections: a proxy dialled a denied CONNECT", n)
	}
	rep.finish()
	return nil
}

// runScenario starts a fresh instance of every proxy, runs the scenario's
// rounds interleaved across the paths (so that noise from other work on
// the machine falls on all of them alike), and stops the proxies.
func runScenario(ctx context.Context, name, dir string, kinds []proxyKind, org *origin, sk *sink, o options, rep *report) error {
	var paths []path
	if name == "throughput" || name == "latency" {
		paths = append(paths, path{name: "direct"})
	}
	defer func() {
		for _, pa := range paths {
			pa.p.stop()
		}
	}()
	for _, k := range kinds {
		p, err := k.start(ctx, dir, org)
		if err != nil {
			return err
		}
		paths = append(paths, path{name: k.name, proxy: p.addr, p: p})
		if err := p.ready(ctx, org, sk.addr); err != nil {
			return err
		}
	}
	var err error
	switch name {
	case "throughput":
		err = runThroughput(ctx, paths, org, o, rep)
	case "denied":
		err = runDenied(ctx, paths, sk, o, rep)
	case "latency":
		err = runLatency(ctx, paths, org, o, rep)
	case "memory":
		err = runMemory(ctx, paths, org, o, rep)
	default:
		err = errors.New("unknown scenario")
	}
	if err != nil {
		return err
	}
	// A proxy that died mid-scenario would leave figures for nothing.
	for _, pa := range paths {
		if pa.p == nil {
			continue
		}
		select {
		case <-pa.p.exited:
			return fmt.Errorf("%s exited during the scenario (%v); log:\n%s", pa.name, pa.p.err, tail(pa.p.log, 2000))
		default:
		}
	}
	return nil
}

func runThroughput(ctx context.Context, paths []path, org *origin, o options, rep *report) error {
	got := map[string][]float64{}
	cpu := map[string]time.Duration{}
	// The bench's own CPU (client and origin) per path shows whether the
	// machine was saturated: if bench and proxy together used less than
	// every core for the wall time, the limit was elsewhere.
	ends := map[string]time.Duration{}
	wall := map[string]time.Duration{}
	for r := 0; r < o.runs; r++ {
		for _, pa := range paths {
			c0, e0, t0 := pa.cpu(), selfCPU(), time.Now()
			bps, err := throughput(ctx, pa, org, o.size, o.streams)
			if err != nil {
				return err
			}
			got[pa.name] = append(got[pa.name], bps)
			cpu[pa.name] += pa.cpu() - c0
			ends[pa.name] += selfCPU() - e0
			wall[pa.name] += time.Since(t0)
		}
	}
	rep.throughput(paths, got, cpu, ends, wall)
	return nil
}

// selfCPU is the bench process's own CPU time (client and origin), or 0
// if it cannot be read.
func selfCPU() time.Duration {
	d, err := processCPU(os.Getpid())
	if err != nil {
		return 0
	}
	return d
}

func runDenied(ctx context.Context, paths []path, sk *sink, o options, rep *report) error {
	got := map[string]deniedCounts{}
	per := o.deniedDur / time.Duration(o.runs)
	for r := 0; r < o.runs; r++ {
		for _, pa := range paths {
			c0 := pa.cpu()
			c := denied(ctx, pa, sk.addr, o.clients, per, o.deniedMax)
			c.cpu = pa.cpu() - c0
			if ctx.Err() != nil {
				return ctx.Err()
			}
			acc := got[pa.name]
			acc.ok += c.ok
			acc.bad += c.bad
			acc.elapsed += c.elapsed
			acc.cpu += c.cpu
			if acc.kinds == nil {
				acc.kinds = map[string]int64{}
			}
			for k, n := range c.kinds {
				acc.kinds[k] += n
			}
			got[pa.name] = acc
		}
	}
	rep.denied(paths, got)
	return nil
}

func runLatency(ctx context.Context, paths []path, org *origin, o options, rep *report) error {
	got := map[string][]time.Duration{}
	for r := 0; r < o.runs; r++ {
		// The remainder goes to the first rounds, so the total is exact.
		per := o.requests / o.runs
		if r < o.requests%o.runs {
			per++
		}
		for _, pa := range paths {
			ds, err := latencies(ctx, pa, org, per, 2*time.Minute)
			if err != nil {
				return err
			}
			got[pa.name] = append(got[pa.name], ds...)
		}
	}
	rep.latency(paths, got)
	return nil
}

func runMemory(ctx context.Context, paths []path, org *origin, o options, rep *report) error {
	got := map[string]memoryResult{}
	for _, pa := range paths {
		m, err := memory(ctx, pa, org, o.tunnels, 3*time.Minute)
		if err != nil {
			return err
		}
		got[pa.name] = m
	}
	rep.memory(paths, got)
	return nil
}
