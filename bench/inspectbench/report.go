package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Targets of the issue.
const (
	minThroughputRatio = 0.6              // inspected / blind
	maxAddedP99        = time.Millisecond // leaf-cache hit handshake over blind
)

type report struct {
	gomaxprocs int
	lat        latencyResult
	tput       []throughputResult
}

func (r *report) addedP99() time.Duration {
	return percentile(r.lat.inspect, 99) - percentile(r.lat.blind, 99)
}

func (r *report) met() bool {
	for _, t := range r.tput {
		if t.ratio() < minThroughputRatio {
			return false
		}
	}
	return r.addedP99() <= maxAddedP99
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func (r *report) print(w io.Writer, o options) {
	fmt.Fprintf(w, "machine: %s, %d logical CPUs (GOMAXPROCS %d), %s\n", cpuModel(), runtime.NumCPU(), r.gomaxprocs, runtime.Version())
	fmt.Fprintf(w, "settings: -size %s -runs %d -conns %d; client, gateway and origin in one process on loopback\n\n", mib(float64(o.size)), o.runs, o.conns)
	for _, t := range r.tput {
		fmt.Fprintf(w, "throughput %-8s blind %s, inspected %s (rounds: blind %s; inspected %s)\n", t.proto,
			rate(median(t.blind)), rate(median(t.inspect)), rates(t.blind), rates(t.inspect))
		fmt.Fprintf(w, "           %-8s CPU per GiB: blind %.2fs, inspected %.2fs (x%.2f)\n", "", median(t.blindCPU), median(t.inspectCPU), median(t.inspectCPU)/median(t.blindCPU))
		fmt.Fprintf(w, "           %-8s inspected/blind %.2f (target >= %.1f: %s); heap growth during inspected pulls %s\n", "",
			t.ratio(), minThroughputRatio, verdict(t.ratio() >= minThroughputRatio), mib(float64(t.heapGrowth)))
	}
	l := r.lat
	fmt.Fprintf(w, "\nnew connection (CONNECT + TLS handshake), %d each:\n", len(l.inspect))
	fmt.Fprintf(w, "  inspected, first (mints the leaf)  %v\n", round(l.first))
	fmt.Fprintf(w, "  inspected, leaf cached             p50 %v  p99 %v\n", round(percentile(l.inspect, 50)), round(percentile(l.inspect, 99)))
	fmt.Fprintf(w, "  blind tunnel                       p50 %v  p99 %v\n", round(percentile(l.blind, 50)), round(percentile(l.blind, 99)))
	fmt.Fprintf(w, "  added by inspection at p99         %v (target <= %v: %s)\n", round(r.addedP99()), maxAddedP99, verdict(r.addedP99() <= maxAddedP99))
	fmt.Fprintf(w, "new connection + GET /v2/:\n")
	fmt.Fprintf(w, "  inspected                          p50 %v  p99 %v\n", round(percentile(l.inspectReq, 50)), round(percentile(l.inspectReq, 99)))
	fmt.Fprintf(w, "  blind tunnel                       p50 %v  p99 %v\n", round(percentile(l.blindReq, 50)), round(percentile(l.blindReq, 99)))
	fmt.Fprintf(w, "gateway CA, Leaf(host):\n")
	fmt.Fprintf(w, "  mint (cache miss)                  p50 %v  p99 %v\n", round(percentile(l.mint, 50)), round(percentile(l.mint, 99)))
	fmt.Fprintf(w, "  cache hit                          p50 %v  p99 %v\n", round(percentile(l.hit, 50)), round(percentile(l.hit, 99)))
	if o.markdown {
		r.markdown(w)
	}
}

func (r *report) markdown(w io.Writer) {
	fmt.Fprintf(w, "\n| measure | inspected | blind tunnel | target |\n| --- | --- | --- | --- |\n")
	for _, t := range r.tput {
		fmt.Fprintf(w, "| pull throughput, %s (median of %d) | %s | %s | ratio %.2f >= %.1f: %s |\n", t.proto, len(t.inspect),
			rate(median(t.inspect)), rate(median(t.blind)), t.ratio(), minThroughputRatio, verdict(t.ratio() >= minThroughputRatio))
	}
	for _, t := range r.tput {
		fmt.Fprintf(w, "| heap growth during an inspected pull, %s | %s | | flat |\n", t.proto, mib(float64(t.heapGrowth)))
	}
	l := r.lat
	fmt.Fprintf(w, "| new connection, first (leaf minted) | %v | | |\n", round(l.first))
	fmt.Fprintf(w, "| new connection, p50 / p99 | %v / %v | %v / %v | added p99 %v <= %v: %s |\n",
		round(percentile(l.inspect, 50)), round(percentile(l.inspect, 99)), round(percentile(l.blind, 50)), round(percentile(l.blind, 99)),
		round(r.addedP99()), maxAddedP99, verdict(r.addedP99() <= maxAddedP99))
	fmt.Fprintf(w, "| new connection + GET /v2/, p50 / p99 | %v / %v | %v / %v | |\n",
		round(percentile(l.inspectReq, 50)), round(percentile(l.inspectReq, 99)), round(percentile(l.blindReq, 50)), round(percentile(l.blindReq, 99)))
	fmt.Fprintf(w, "| leaf mint / cache hit, p50 | %v / %v | | |\n", round(percentile(l.mint, 50)), round(percentile(l.hit, 50)))
}

func rate(bps float64) string { return fmt.Sprintf("%.0f MiB/s", bps/(1<<20)) }

func rates(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.0f", x/(1<<20)))
	}
	return strings.Join(s, ", ")
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func round(d time.Duration) time.Duration {
	if d < 0 {
		return -round(-d)
	}
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= 100*time.Microsecond:
		return d.Round(10 * time.Microsecond)
	case d >= 10*time.Microsecond:
		return d.Round(time.Microsecond)
	default:
		return d.Round(10 * time.Nanosecond)
	}
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
