package analytics

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// droppedMetric reads litehost_analytics_hits_dropped_total{reason} as the registry exports it.
func droppedMetric(t *testing.T, p *Pipeline, reason string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "litehost_analytics_hits_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no litehost_analytics_hits_dropped_total{reason=%q}", reason)
	return 0
}

// blockedSink holds every Store call until release is closed, as a stalled database would.
type blockedSink struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	stored  int
}

func (s *blockedSink) Store(ctx context.Context, hits []Hit) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	s.stored += len(hits)
	s.mu.Unlock()
	return nil
}

// With the writer stuck, the buffer fills and every further hit is dropped and counted at once;
// no Offer ever waits. Once the writer moves again, what was buffered is stored.
func TestPipelineDropsWhenFullWithoutBlocking(t *testing.T) {
	sink := &blockedSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
	p := NewPipeline(sink, PipelineConfig{Buffer: 2, Batch: 1, Flush: time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	if !p.Offer(Hit{Slug: "a"}) {
		t.Fatal("first hit refused")
	}
	<-sink.entered // the writer holds hit 1 in a stuck Store
	start := time.Now()
	accepted := 0
	offered := make(chan struct{})
	go func() {
		defer close(offered)
		for range 1000 {
			if p.Offer(Hit{Slug: "b"}) {
				accepted++
			}
		}
	}()
	select {
	case <-offered:
	case <-time.After(2 * time.Second):
		t.Fatal("1000 offers to a full pipeline did not return within 2 s: Offer blocks")
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("1000 offers to a full pipeline took %v: Offer waits", d)
	}
	if accepted != 2 {
		t.Errorf("accepted %d hits into a buffer of 2", accepted)
	}
	if got := p.Dropped(); got != 998 {
		t.Errorf("Dropped = %d, want 998", got)
	}
	if got := droppedMetric(t, p, DropQueueFull); got != 998 {
		t.Errorf("litehost_analytics_hits_dropped_total{reason=queue_full} = %v, want 998", got)
	}
	close(sink.release)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.stored != 3 {
		t.Errorf("stored %d hits, want the 3 accepted", sink.stored)
	}
}

// failingSink fails every batch.
type failingSink struct{}

func (failingSink) Store(context.Context, []Hit) error { return io.ErrUnexpectedEOF }

// A failed batch is counted as dropped, and the writer goes on.
func TestPipelineCountsFailedBatches(t *testing.T) {
	p := NewPipeline(failingSink{}, PipelineConfig{Buffer: 10, Batch: 2, Flush: time.Millisecond}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for range 5 {
		p.Offer(Hit{})
	}
	deadline := time.Now().Add(5 * time.Second)
	for droppedMetric(t, p, DropStoreFailed) < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if got := droppedMetric(t, p, DropStoreFailed); got != 5 {
		t.Errorf("store_failed drops = %v, want 5", got)
	}
}
