package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/regward/regward/internal/regwardtest"
)

type options struct {
	backends  []string
	scenarios []string
	clients   int
	warmup    time.Duration
	duration  time.Duration
	applies   int
	longPolls int
	rounds    int
	binary    string
	target    float64
	timeout   time.Duration
	markdown  bool
}

func main() {
	var o options
	var backends, scenarios string
	flag.StringVar(&backends, "backends", "sqlite,postgres", "stores to measure, one after the other")
	flag.StringVar(&scenarios, "scenarios", "policy-304,apply,fanout", "scenarios to run")
	flag.IntVar(&o.clients, "clients", 64, "concurrent keep-alive connections in policy-304")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before policy-304 is measured")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured length of policy-304")
	flag.IntVar(&o.applies, "applies", 200, "sequential Save & Apply in the apply scenario")
	flag.IntVar(&o.longPolls, "longpolls", 500, "waiting gateways in the fanout scenario")
	flag.IntVar(&o.rounds, "rounds", 5, "changes in the fanout scenario")
	flag.StringVar(&o.binary, "binary", "", "regward binary to measure (default: build ./cmd/regward)")
	flag.Float64Var(&o.target, "target", 20000, "policy-304 requests per second one replica should reach")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "stop everything after this long")
	flag.BoolVar(&o.markdown, "markdown", false, "also print the results as a Markdown table")
	flag.Parse()
	o.backends = splitList(backends)
	o.scenarios = splitList(scenarios)
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

func (o options) check() error {
	for _, b := range o.backends {
		if b != "sqlite" && b != "postgres" {
			return fmt.Errorf("-backends: unknown store %q (sqlite, postgres)", b)
		}
	}
	for _, s := range o.scenarios {
		if !slices.Contains([]string{"policy-304", "apply", "fanout"}, s) {
			return fmt.Errorf("-scenarios: unknown scenario %q (policy-304, apply, fanout)", s)
		}
	}
	switch {
	case len(o.backends) == 0 || len(o.scenarios) == 0:
		return errors.New("nothing to measure")
	case o.clients < 1 || o.clients > 4096:
		return errors.New("-clients: 1 to 4096")
	case o.duration <= 0 || o.duration > 5*time.Minute || o.warmup < 0 || o.warmup > time.Minute:
		return errors.New("-duration: up to 5m; -warmup: up to 1m")
	case o.applies < 1 || o.applies > 100_000:
		return errors.New("-applies: 1 to 100000")
	case o.longPolls < 1 || o.longPolls > 10_000 || o.rounds < 1 || o.rounds > 100:
		return errors.New("-longpolls: 1 to 10000; -rounds: 1 to 100")
	}
	return nil
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "apibench: "+format+"\n", args...)
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

// line is one result: a scenario on one store.
type line struct {
	scenario, backend, result, detail string
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "apibench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.binary
	if bin == "" {
		if bin, err = regwardtest.Build(ctx, dir); err != nil {
			return err
		}
	}
	fmt.Printf("machine: %s, %d logical CPUs; %s; load average at start %s\n", cpuModel(), runtime.NumCPU(), runtime.Version(), loadavg())
	fmt.Printf("settings: -clients %d -duration %v -warmup %v -applies %d -longpolls %d -rounds %d (server and load generator share the machine)\n",
		o.clients, o.duration, o.warmup, o.applies, o.longPolls, o.rounds)
	var lines []line
	for _, b := range o.backends {
		ls, err := runBackend(ctx, o, bin, dir, b)
		lines = append(lines, ls...)
		if err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
	}
	if o.markdown {
		fmt.Println()
		fmt.Println("| scenario | store | result | detail |")
		fmt.Println("| --- | --- | --- | --- |")
		for _, l := range lines {
			fmt.Printf("| %s | %s | %s | %s |\n", l.scenario, l.backend, l.result, l.detail)
		}
	}
	return nil
}

func runBackend(ctx context.Context, o options, bin, dir, backend string) ([]line, error) {
	dsn, store := "", "SQLite (WAL, synchronous=FULL)"
	if backend == "postgres" {
		pg, desc, err := startPostgres(ctx)
		if err != nil {
			return nil, err
		}
		defer pg.stop()
		dsn, store = pg.dsn, desc
	}
	fmt.Printf("%s: %s\n", backend, store)
	s, err := startServer(ctx, bin, backend, dir, dsn)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	failed := func(err error) error { return fmt.Errorf("%w\nregward output:\n%s", err, s.proc.Output()) }
	owner := newAPI(s.url, s.token, 2)
	var lines []line
	emit := func(l line) {
		lines = append(lines, l)
		fmt.Printf("apibench: %-10s %-8s %-44s %s\n", l.scenario, l.backend, l.result, l.detail)
	}
	for _, sc := range o.scenarios {
		switch sc {
		case "policy-304":
			v, err := owner.policyVersion(ctx)
			if err != nil {
				return lines, failed(err)
			}
			res, err := load(ctx, s.addr, conditionalGET(s.addr, s.token, v), 304, o.clients, o.warmup, o.duration, s.cpuTime)
			if err != nil {
				return lines, failed(err)
			}
			verdict := "below"
			if res.rate() >= o.target {
				verdict = "meets"
			}
			emit(line{sc, backend,
				fmt.Sprintf("%.0f req/s (%s the %.0f target)", res.rate(), verdict, o.target),
				fmt.Sprintf("%d clients, p50 %s p99 %s; server CPU %.2f cores, %.1f µs/req; load generator %.2f cores",
					o.clients, ms(pct(res.latencies, 0.5)), ms(pct(res.latencies, 0.99)),
					res.serverCPU.Seconds()/res.elapsed.Seconds(), float64(res.serverCPU.Microseconds())/float64(res.requests),
					res.clientCPU.Seconds()/res.elapsed.Seconds())})
		case "apply":
			lat, err := applyLatency(ctx, owner, o.applies)
			if err != nil {
				return lines, failed(err)
			}
			emit(line{sc, backend,
				fmt.Sprintf("p50 %s p99 %s max %s", ms(pct(lat, 0.5)), ms(pct(lat, 0.99)), ms(slices.Max(lat))),
				fmt.Sprintf("%d sequential Save & Apply with If-Match, %.0f/s", len(lat), float64(len(lat))/sum(lat).Seconds())})
		case "fanout":
			rounds, err := fanout(ctx, s.url, owner, o.longPolls, o.rounds)
			if err != nil {
				return lines, failed(err)
			}
			var last, all []time.Duration
			for _, r := range rounds {
				last = append(last, slices.Max(r))
				all = append(all, r...)
			}
			emit(line{sc, backend,
				fmt.Sprintf("all %d updated in p50 %s max %s", o.longPolls, ms(pct(last, 0.5)), ms(slices.Max(last))),
				fmt.Sprintf("%d changes; per gateway p50 %s p99 %s (from Save & Apply sent)", len(rounds), ms(pct(all, 0.5)), ms(pct(all, 0.99)))})
		}
	}
	return lines, nil
}

func pct(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
