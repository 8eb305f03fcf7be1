package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// row is one printed line: a scenario on one path.
type row struct {
	scenario, path, result, compare, target string
}

type report struct {
	opts    options
	started time.Time
	lines   []string // machine facts
	rows    []row
	targets []string // "met"/"missed" lines for the summary
}

func (r *report) facts(kinds []proxyKind) {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))
	r.lines = append(r.lines,
		fmt.Sprintf("machine: %s, %d logical CPUs, Linux %s, %s", cpu, runtime.NumCPU(), kernel, memTotal()),
		fmt.Sprintf("go: %s; load average at start: %s", runtime.Version(), loadavg()),
	)
	for _, k := range kinds {
		r.lines = append(r.lines, fmt.Sprintf("%s: %s", k.name, k.version))
	}
	o := r.opts
	r.lines = append(r.lines, fmt.Sprintf("settings: -size %s -streams %d -runs %d -clients %d -denied-time %v -requests %d -tunnels %d",
		human(float64(o.size)), o.streams, o.runs, o.clients, o.deniedDur, o.requests, o.tunnels))
}

func (r *report) printFacts() {
	for _, l := range r.lines {
		fmt.Println(l)
	}
	fmt.Println()
	fmt.Printf("%-10s  %-9s  %-46s  %-30s  %s\n", "scenario", "path", "result", "compared", "target")
}

func (r *report) add(w row) {
	r.rows = append(r.rows, w)
	fmt.Printf("%-10s  %-9s  %-46s  %-30s  %s\n", w.scenario, w.path, w.result, w.compare, w.target)
}

func (r *report) verdict(ok bool, what string) string {
	v := "met"
	if !ok {
		v = "MISSED"
	}
	r.targets = append(r.targets, fmt.Sprintf("%s: %s", what, v))
	return what + ": " + v
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *report) throughput(paths []path, got map[string][]float64, cpu, ends, wall map[string]time.Duration) {
	direct := median(got["direct"])
	moved := float64(r.opts.size) * float64(r.opts.runs) / (1 << 30) // GiB over all rounds
	for _, pa := range paths {
		m := median(got[pa.name])
		w := row{
			scenario: "throughput",
			path:     pa.name,
			result: fmt.Sprintf("%.0f MiB/s (%s, %d streams, median of %d)",
				m/(1<<20), human(float64(r.opts.size)), r.opts.streams, len(got[pa.name])),
			compare: fmt.Sprintf("%.2fx direct", m/direct),
		}
		if pa.p != nil {
			w.result += fmt.Sprintf("; proxy CPU %.2f s/GiB", cpu[pa.name].Seconds()/moved)
		}
		// How many cores bench and proxy kept busy on average.
		busy := (cpu[pa.name] + ends[pa.name]).Seconds() / wall[pa.name].Seconds()
		w.result += fmt.Sprintf("; ends %.2f s/GiB; %.1f of %d cores busy", ends[pa.name].Seconds()/moved, busy, runtime.NumCPU())
		if pa.name == "regward" {
			w.target = r.verdict(m/direct >= 0.9, ">= 0.90x direct")
		}
		r.add(w)
	}
}

func (r *report) denied(paths []path, got map[string]deniedCounts) {
	rate := func(c deniedCounts) float64 { return float64(c.ok) / c.elapsed.Seconds() }
	best, bestName := 0.0, ""
	for _, pa := range paths {
		if pa.name != "regward" && rate(got[pa.name]) > best {
			best, bestName = rate(got[pa.name]), pa.name
		}
	}
	for _, pa := range paths {
		c := got[pa.name]
		w := row{
			scenario: "denied",
			path:     pa.name,
			result:   fmt.Sprintf("%.0f CONNECT/s (%d clients, %d refused)", rate(c), r.opts.clients, c.ok),
		}
		if c.ok > 0 {
			w.result += fmt.Sprintf("; proxy CPU %.0f µs each", float64(c.cpu.Microseconds())/float64(c.ok))
		}
		if c.bad > 0 {
			w.result += fmt.Sprintf(", %d errors: %s", c.bad, topKinds(c.kinds))
		}
		if bestName != "" {
			w.compare = fmt.Sprintf("%.2fx %s", rate(c)/best, bestName)
		}
		if pa.name == "regward" && bestName != "" {
			w.target = r.verdict(rate(c) >= 1.5*best && c.bad == 0, ">= 1.5x the better other, no errors")
		}
		r.add(w)
	}
}

func (r *report) latency(paths []path, got map[string][]time.Duration) {
	p99 := map[string]time.Duration{}
	best, bestName := time.Duration(0), ""
	for _, pa := range paths {
		s := slices.Clone(got[pa.name])
		slices.Sort(s)
		got[pa.name] = s
		p99[pa.name] = percentile(s, 99)
		if pa.name != "regward" && pa.name != "direct" && (bestName == "" || p99[pa.name] < best) {
			best, bestName = p99[pa.name], pa.name
		}
	}
	for _, pa := range paths {
		s := got[pa.name]
		w := row{
			scenario: "latency",
			path:     pa.name,
			result: fmt.Sprintf("p50 %s  p99 %s (%d requests)",
				ms(percentile(s, 50)), ms(p99[pa.name]), len(s)),
		}
		if bestName != "" && pa.name != "direct" {
			w.compare = fmt.Sprintf("p99 %.2fx %s", float64(p99[pa.name])/float64(best), bestName)
		}
		if pa.name == "regward" && bestName != "" {
			w.target = r.verdict(p99[pa.name] <= best, "p99 <= the better other")
		}
		r.add(w)
	}
}

func (r *report) memory(paths []path, got map[string]memoryResult) {
	squid, haveSquid := got["squid"]
	for _, pa := range paths {
		m := got[pa.name]
		w := row{
			scenario: "memory",
			path:     pa.name,
			result: fmt.Sprintf("%.1f KiB/tunnel (%d tunnels, RSS %s -> %s)",
				m.perTunnel()/1024, m.tunnels, human(float64(m.before)), human(float64(m.after))),
		}
		if haveSquid && pa.name != "squid" {
			w.compare = fmt.Sprintf("%.2fx squid", m.perTunnel()/squid.perTunnel())
		}
		if pa.name == "regward" {
			ok := m.perTunnel() <= 20*1024
			what := "<= 20 KiB"
			if haveSquid {
				ok = ok && m.perTunnel() <= squid.perTunnel()
				what = "<= squid and <= 20 KiB"
			}
			w.target = r.verdict(ok, what)
		}
		r.add(w)
	}
}

func (r *report) finish() {
	fmt.Println()
	fmt.Printf("load average at end: %s; took %s\n", loadavg(), time.Since(r.started).Round(time.Second))
	for _, t := range r.targets {
		fmt.Println("target " + t)
	}
	if !r.opts.markdown {
		return
	}
	fmt.Println()
	fmt.Println("| scenario | path | result | compared | target |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, w := range r.rows {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", w.scenario, w.path, w.result, w.compare, w.target)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// human prints a byte count in binary units.
func human(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "unknown"
	}
	return string(b)
}

func loadavg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func memTotal() string {
	for _, l := range strings.Split(readFile("/proc/meminfo"), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%f kB", &kb); err == nil {
				return human(kb*1024) + " RAM"
			}
		}
	}
	return "RAM unknown"
}

// topKinds lists error kinds, most frequent first.
func topKinds(m map[string]int64) string {
	type kv struct {
		k string
		n int64
	}
	var s []kv
	for k, n := range m {
		s = append(s, kv{k, n})
	}
	slices.SortFunc(s, func(a, b kv) int { return int(b.n - a.n) })
	var out []string
	for i, e := range s {
		if i == 3 {
			break
		}
		out = append(out, fmt.Sprintf("%d x %s", e.n, e.k))
	}
	return strings.Join(out, "; ")
}
