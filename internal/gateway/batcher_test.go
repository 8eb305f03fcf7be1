package gateway

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regward/regward/internal/store"
)

// flushLog records every batch a Batcher writes; fail makes writes fail
// and hold blocks them.
type flushLog struct {
	mu      sync.Mutex
	batches [][]store.DecisionRecord
	fail    bool
	hold    chan struct{}
	entered chan struct{} // told when a flush starts, if set
}

func (f *flushLog) flush(ctx context.Context, ds []store.DecisionRecord) error {
	if f.entered != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
	}
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("store down")
	}
	f.batches = append(f.batches, append([]store.DecisionRecord(nil), ds...))
	return nil
}

func (f *flushLog) count() (batches, records int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.batches {
		records += len(b)
	}
	return len(f.batches), records
}

func rec(i int) store.DecisionRecord {
	return store.DecisionRecord{Org: testOrg, Host: "h.test", Port: i, Rule: "registryAccess"}
}

func TestBatcherFlushesBySize(t *testing.T) {
	fl := &flushLog{}
	b, err := NewBatcher(BatcherConfig{Flush: fl.flush, MaxBatch: 10, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 25; i++ {
		b.Record(rec(i))
	}
	waitFor(t, "two full batches", func() bool { n, _ := fl.count(); return n == 2 })
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, total := fl.count()
	if n != 3 || total != 25 {
		t.Fatalf("%d batches with %d records, want 3 with 25", n, total)
	}
	// Order is kept.
	for i, r := range append(append(fl.batches[0], fl.batches[1]...), fl.batches[2]...) {
		if r.Port != i {
			t.Fatalf("record %d is %d", i, r.Port)
		}
	}
}

func TestBatcherFlushesByInterval(t *testing.T) {
	fl := &flushLog{}
	b, err := NewBatcher(BatcherConfig{Flush: fl.flush, MaxBatch: 100, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	b.Record(rec(1))
	start := time.Now()
	waitFor(t, "the interval flush", func() bool { _, n := fl.count(); return n == 1 })
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a lone record waited %v", took)
	}
}

// A stuck writer never blocks Record: the queue fills, then drops count.
func TestBatcherDropsWhenFull(t *testing.T) {
	fl := &flushLog{hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	b, err := NewBatcher(BatcherConfig{Flush: fl.flush, MaxBatch: 5, QueueSize: 10, Interval: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		b.Record(rec(i))
	}
	<-fl.entered // the writer is stuck on a full batch of 5
	start := time.Now()
	for i := 5; i < 100; i++ {
		b.Record(rec(i))
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("Record blocked for %v", took)
	}
	// 10 fit in the queue.
	if n := b.Dropped(); n != 85 {
		t.Fatalf("dropped %d, want 85", n)
	}
	if v := metricValue(t, b.dropped); v != 85 {
		t.Fatalf("dropped metric = %v", v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "regward_gateway_decision_log_dropped_total"
	}
	if !found {
		t.Fatal("regward_gateway_decision_log_dropped_total is not registered")
	}
	close(fl.hold)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, n := fl.count(); n != 15 {
		t.Fatalf("wrote %d records, want the 15 kept", n)
	}
	b.Record(rec(1))
	if b.Dropped() != 86 {
		t.Fatalf("a record after Close was not counted as dropped")
	}
}

func TestBatcherRetriesThenDrops(t *testing.T) {
	fl := &flushLog{fail: true}
	b, err := NewBatcher(BatcherConfig{Flush: fl.flush, MaxBatch: 10, Interval: 20 * time.Millisecond, Attempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		b.Record(rec(i))
	}
	waitFor(t, "the batch to be dropped", func() bool { return b.Dropped() == 4 })
	fl.mu.Lock()
	fl.fail = false
	fl.mu.Unlock()
	b.Record(rec(9))
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, n := fl.count(); n != 1 {
		t.Fatalf("after recovery wrote %d records, want 1", n)
	}

	// A failure that recovers before the attempts run out loses nothing.
	fl = &flushLog{fail: true}
	b, _ = NewBatcher(BatcherConfig{Flush: fl.flush, MaxBatch: 10, Interval: 30 * time.Millisecond, Attempts: 100})
	b.Record(rec(1))
	time.Sleep(100 * time.Millisecond)
	fl.mu.Lock()
	fl.fail = false
	fl.mu.Unlock()
	waitFor(t, "the retried batch", func() bool { _, n := fl.count(); return n == 1 })
	b.Close(context.Background())
	if b.Dropped() != 0 {
		t.Fatalf("dropped %d", b.Dropped())
	}
}

// The gateway records through a Batcher without waiting for the writer.
func TestGatewayWithBatcher(t *testing.T) {
	fl := &flushLog{}
	b, err := NewBatcher(BatcherConfig{Flush: fl.flush, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	e := newEnv(t, func(c *Config) { c.Decisions = b })
	e.get(e.client("alice", aliceToken), e.tlsURL("denied.test"))
	waitFor(t, "the denial to be written", func() bool { _, n := fl.count(); return n == 1 })
	fl.mu.Lock()
	d := fl.batches[0][0]
	fl.mu.Unlock()
	if d.Allowed || d.Host != "denied.test" || d.User != "alice" || d.Gateway != "gw-test" {
		t.Fatalf("written decision %+v", d)
	}
}
