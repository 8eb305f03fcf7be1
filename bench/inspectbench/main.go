package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	size     int64
	runs     int
	conns    int
	protos   []bool // true: HTTP/2
	timeout  time.Duration
	markdown bool
	cpuProf  string
}

func main() {
	var o options
	var size, proto string
	var total time.Duration
	flag.StringVar(&size, "size", "512MiB", "size of the blob pulled in the throughput scenario")
	flag.IntVar(&o.runs, "runs", 3, "interleaved rounds of the throughput scenario; the median round counts")
	flag.IntVar(&o.conns, "conns", 400, "new connections per path in the handshake scenario")
	flag.StringVar(&proto, "proto", "both", "client protocol for throughput: h2, h1 or both")
	flag.DurationVar(&o.timeout, "pull-timeout", 2*time.Minute, "longest one pull may take")
	flag.DurationVar(&total, "timeout", 15*time.Minute, "stop everything after this long")
	flag.BoolVar(&o.markdown, "markdown", false, "also print the results as Markdown for docs/BENCHMARKS.md")
	flag.StringVar(&o.cpuProf, "cpuprofile", "", "write a CPU profile of the throughput scenario to this file")
	flag.Parse()
	var err error
	if o.size, err = parseSize(size); err != nil {
		fatalf("-size: %v", err)
	}
	switch proto {
	case "h2":
		o.protos = []bool{true}
	case "h1":
		o.protos = []bool{false}
	case "both":
		o.protos = []bool{true, false}
	default:
		fatalf("-proto: %q is not h2, h1 or both", proto)
	}
	if o.runs < 1 || o.conns < 1 {
		fatalf("-runs and -conns must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	rep, err := run(ctx, o)
	if err != nil {
		fatalf("%v", err)
	}
	rep.print(os.Stdout, o)
	if !rep.met() {
		os.Exit(2)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "inspectbench: "+format+"\n", args...)
	os.Exit(1)
}

// run starts everything, measures, and stops everything.
func run(ctx context.Context, o options) (rep *report, err error) {
	s, err := start(o)
	defer func() {
		if s != nil {
			err = errors.Join(err, s.close())
		}
	}()
	if err != nil {
		return nil, err
	}
	rep = &report{gomaxprocs: runtime.GOMAXPROCS(0)}
	// Handshakes first, while the CA has no leaf yet.
	if rep.lat, err = s.handshakes(ctx, o); err != nil {
		return nil, fmt.Errorf("handshakes: %w", err)
	}
	if o.cpuProf != "" {
		f, err := os.Create(o.cpuProf)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	for _, h2 := range o.protos {
		t, err := s.throughput(ctx, o, h2)
		if err != nil {
			return nil, fmt.Errorf("throughput over %s: %w", protoName(h2), err)
		}
		rep.tput = append(rep.tput, t)
	}
	return rep, nil
}

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
