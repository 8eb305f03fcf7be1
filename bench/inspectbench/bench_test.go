package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "1GiB": 1 << 30, "100MB": 100e6, "4096": 4096} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-5MiB", "lots", "MiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got := percentile(ds, 99); got != 198*time.Millisecond {
		t.Errorf("p99 of 1..200 ms = %v", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v", got)
	}
}

// TestSmallRun runs every scenario small, so that the bench keeps working
// as the gateway changes.
func TestSmallRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := options{size: 4 << 20, runs: 1, conns: 5, protos: []bool{true, false}, timeout: 30 * time.Second, markdown: true}
	rep, err := run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.tput) != 2 {
		t.Fatalf("%d throughput results", len(rep.tput))
	}
	for _, tp := range rep.tput {
		if median(tp.blind) <= 0 || median(tp.inspect) <= 0 || median(tp.inspectCPU) <= 0 {
			t.Errorf("%s: empty figures %+v", tp.proto, tp)
		}
	}
	l := rep.lat
	if l.first <= 0 || len(l.inspect) != 5 || len(l.blind) != 5 || len(l.mint) != 5 || len(l.inspectReq) != 5 {
		t.Errorf("latency figures incomplete: %+v", l)
	}
	var out bytes.Buffer
	rep.print(&out, o)
	for _, want := range []string{"throughput HTTP/2", "throughput HTTP/1.1", "added by inspection at p99", "| measure |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
