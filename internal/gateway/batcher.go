package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regward/regward/internal/store"
)

// BatcherConfig configures a Batcher.
type BatcherConfig struct {
	// Flush writes one batch: the embedded gateway appends to the store, a
	// standalone one posts to the control plane (RemoteDecisionWriter).
	Flush     func(ctx context.Context, ds []store.DecisionRecord) error
	MaxBatch  int           // records per Flush; 0: 500
	Interval  time.Duration // longest a record waits; 0: 1 s
	QueueSize int           // records held while Flush is busy; 0: 10,000
	// Attempts is how many times a failing batch is tried before it is
	// dropped (and counted); 0: 3.
	Attempts     int
	FlushTimeout time.Duration // 0: 10 s
	Registerer   prometheus.Registerer
	Logger       *slog.Logger
}

// Batcher is a DecisionSink that carries decisions off the request path: a
// bounded queue, written out in batches by size or interval. Record never
// blocks; when the queue is full the record is dropped and counted in
// regward_gateway_decision_log_dropped_total.
type Batcher struct {
	cfg     BatcherConfig
	log     *slog.Logger
	queue   chan store.DecisionRecord
	dropped prometheus.Counter
	flushed prometheus.Counter

	stopped atomic.Bool
	nDrop   atomic.Uint64
	once    sync.Once
	stop    chan struct{}
	done    chan struct{}
}

// NewBatcher starts a Batcher; Close flushes what is queued and stops it.
func NewBatcher(cfg BatcherConfig) (*Batcher, error) {
	if cfg.Flush == nil {
		return nil, errors.New("batcher: Flush is required")
	}
	cfg.MaxBatch = orDefault(cfg.MaxBatch, 500)
	cfg.Interval = orDefault(cfg.Interval, time.Second)
	cfg.QueueSize = orDefault(cfg.QueueSize, 10000)
	cfg.Attempts = orDefault(cfg.Attempts, 3)
	cfg.FlushTimeout = orDefault(cfg.FlushTimeout, 10*time.Second)
	if cfg.MaxBatch < 0 || cfg.Interval < 0 || cfg.QueueSize < 0 || cfg.Attempts < 0 || cfg.FlushTimeout < 0 {
		return nil, errors.New("batcher: sizes and durations must not be negative")
	}
	b := &Batcher{
		cfg:   cfg,
		log:   cfg.Logger,
		queue: make(chan store.DecisionRecord, cfg.QueueSize),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regward_gateway_decision_log_dropped_total",
			Help: "Decision log records dropped because the queue was full or writing them kept failing.",
		}),
		flushed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "regward_gateway_decision_log_written_total",
			Help: "Decision log records written.",
		}),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{b.dropped, b.flushed} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("batcher: register metrics: %w", err)
			}
		}
	}
	go b.run()
	return b, nil
}

// Record implements DecisionSink.
func (b *Batcher) Record(d store.DecisionRecord) {
	if b.stopped.Load() {
		b.drop(1)
		return
	}
	select {
	case b.queue <- d:
	default:
		b.drop(1)
	}
}

func (b *Batcher) drop(n int) {
	b.dropped.Add(float64(n))
	b.nDrop.Add(uint64(n))
}

// Dropped returns how many records were dropped so far.
func (b *Batcher) Dropped() uint64 {
	return b.nDrop.Load()
}

func (b *Batcher) run() {
	defer close(b.done)
	tick := time.NewTicker(b.cfg.Interval)
	defer tick.Stop()
	batch := make([]store.DecisionRecord, 0, b.cfg.MaxBatch)
	failures := 0
	// flush writes the batch; a failed batch is kept for the next tick
	// until it has had its attempts.
	flush := func(lastChance bool) {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.FlushTimeout)
		err := b.cfg.Flush(ctx, batch)
		cancel()
		if err == nil {
			b.flushed.Add(float64(len(batch)))
			batch, failures = batch[:0], 0
			return
		}
		failures++
		if failures < b.cfg.Attempts && !lastChance {
			b.log.Warn("write decision log; will retry", "records", len(batch), "attempt", failures, "err", err)
			return
		}
		b.log.Error("write decision log; dropping batch", "records", len(batch), "err", err)
		b.drop(len(batch))
		batch, failures = batch[:0], 0
	}
	for {
		// While a batch is full or waiting for a retry, records stay in
		// the queue, which drops new ones once it is full.
		in := b.queue
		if failures > 0 || len(batch) == b.cfg.MaxBatch {
			in = nil
		}
		select {
		case d := <-in:
			batch = append(batch, d)
			if len(batch) == b.cfg.MaxBatch {
				flush(false)
			}
		case <-tick.C:
			flush(false)
		case <-b.stop:
			flush(true)
			for {
				select {
				case d := <-b.queue:
					batch = append(batch, d)
					if len(batch) == b.cfg.MaxBatch {
						flush(true)
					}
				default:
					flush(true)
					return
				}
			}
		}
	}
}

// Close writes out what is queued and stops the Batcher. Records after
// Close are dropped. It returns ctx's error if the last write does not end
// in time.
func (b *Batcher) Close(ctx context.Context) error {
	b.once.Do(func() {
		b.stopped.Store(true)
		close(b.stop)
	})
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
