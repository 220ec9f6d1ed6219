package projections

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
)

// subscribeCounter counts the store subscriptions a Runner opens.
type subscribeCounter struct {
	events.Store
	calls atomic.Int32
}

func (s *subscribeCounter) SubscribeAll(ctx context.Context, from events.Position, f events.Filter) (events.Subscription, error) {
	s.calls.Add(1)
	return s.Store.SubscribeAll(ctx, from, f)
}

func TestProjectorsShareOneSubscription(t *testing.T) {
	e := newEnv(t)
	names := []string{"ptest-a", "ptest-b", "ptest-c", "ptest-d"}
	var early events.Position
	for i := range 10 {
		early = e.appendEvs(t, "acc-1", added{Key: "k", N: i})
	}
	// Two projectors run ahead first, so the four start from different checkpoints.
	counter := &subscribeCounter{Store: e.store}
	r1 := NewRunner(e.pool, counter, e.logger, testProjector(names[0], nil), testProjector(names[1], nil))
	stop1 := start(t, r1)
	pgtest.Must(t, r1.WaitFor(t.Context(), early), "wait for the first two")
	stop1()
	if n := counter.calls.Load(); n != 1 {
		t.Errorf("store subscriptions of a runner with 2 projectors = %d, want 1", n)
	}

	// The four together, with the store subscription dropping after three events: one
	// subscription at start and one after the drop, whatever the number of projectors.
	store := &dropStore{Store: e.store}
	var projectors []Projector
	for _, n := range names {
		projectors = append(projectors, testProjector(n, nil))
	}
	r := NewRunner(e.pool, store, e.logger, projectors...)
	start(t, r)
	waitRunning(t, r)
	var last events.Position
	for i := range 10 {
		last = e.appendEvs(t, "acc-2", added{Key: "k", N: 100 + i})
	}
	pgtest.Must(t, r.WaitFor(t.Context(), last), "wait for all four")
	if n := store.subscriptions.Load(); n != 2 {
		t.Errorf("store subscriptions of a runner with 4 projectors and one drop = %d, want 2", n)
	}
	// Each projector applied every event once, in log order, from its own checkpoint.
	for _, n := range names {
		if diff := cmp.Diff(wantLog(t, e, n), readLog(t, e.pool, n)); diff != "" {
			t.Errorf("log of %s (-want +got):\n%s", n, diff)
		}
		if got := checkpoint(t, e.pool, n); got != last {
			t.Errorf("checkpoint of %s = %s, want %s", n, got, last)
		}
	}
	// Live events still flow after the resubscription, on the same subscription.
	next := e.appendEvs(t, "acc-3", added{Key: "k", N: 1000})
	pgtest.Must(t, r.WaitFor(t.Context(), next), "wait for a live event")
	if n := store.subscriptions.Load(); n != 2 {
		t.Errorf("store subscriptions after a live event = %d, want still 2", n)
	}
}

func TestFailedProjectorDoesNotHoldBackTheOthers(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	fail.Store(true)
	counter := &subscribeCounter{Store: e.store}
	r := NewRunner(e.pool, counter, e.logger,
		testProjector("ptest-bad", &fail), testProjector("ptest-good", nil), testProjector("ptest-fine", nil))
	r.MaxRetries, r.RetryInterval = 2, 5*time.Millisecond
	r.MaxBatch = 2 // small buffers: far more events follow the failure than they hold
	r.WaitTimeout = 20 * time.Second
	start(t, r)

	first := e.appendEvs(t, "acc-1", added{Key: "k", N: 1})
	e.appendEvs(t, "acc-1", exploded{Key: "k"})
	var evs []events.Event
	for range 100 {
		evs = append(evs, added{Key: "k", N: 1})
	}
	var last events.Position
	for range 5 {
		last = e.appendEvs(t, "acc-2", evs...)
	}
	pgtest.Must(t, r.WaitFor(t.Context(), last), "wait with one failed projector")
	if !r.failed("ptest-bad") {
		t.Fatal("ptest-bad did not fail")
	}
	for _, n := range []string{"ptest-good", "ptest-fine"} {
		if got := checkpoint(t, e.pool, n); got != last {
			t.Errorf("checkpoint of %s = %s, want %s", n, got, last)
		}
		if got := totals(t, e.pool)["k@"+n]; got != 1+1000+500 {
			t.Errorf("total of %s = %d, want 1501", n, got)
		}
	}
	if got := checkpoint(t, e.pool, "ptest-bad"); got != first {
		t.Errorf("failed projector checkpoint = %s, want %s", got, first)
	}
	// Still live for the others, on the one subscription.
	next := e.appendEvs(t, "acc-3", added{Key: "k", N: 1})
	pgtest.Must(t, r.WaitFor(t.Context(), next), "wait for a live event")
	if n := counter.calls.Load(); n != 1 {
		t.Errorf("store subscriptions = %d, want 1", n)
	}
}
