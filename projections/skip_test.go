package projections

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
)

// rowVersion returns the stored checkpoint of name and the xmin of its row, which changes with
// every write to the row (a guarded upsert that does not move it leaves it alone).
func rowVersion(t *testing.T, pool *pgxpool.Pool, name string) (events.Position, string) {
	t.Helper()
	var (
		c, p int64
		xmin string
	)
	err := pool.QueryRow(t.Context(), `SELECT commit_pos, prepare_pos, xmin::text FROM projection_checkpoints WHERE name = $1`, name).Scan(&c, &p, &xmin)
	pgtest.Must(t, err, "read checkpoint row")
	return fromDB(c, p), xmin
}

// countingStore counts the events its subscriptions deliver.
type countingStore struct {
	Feed
	delivered atomic.Int64
}

func (s *countingStore) SubscribeAll(ctx context.Context, from events.Position, f events.Filter) (events.Subscription, error) {
	inner, err := s.Feed.SubscribeAll(ctx, from, f)
	if err != nil {
		return nil, err
	}
	sub := &countedSub{inner: inner, ch: make(chan events.RecordedEvent)}
	go func() {
		defer close(sub.ch)
		for r := range inner.Events() {
			select {
			case sub.ch <- r:
				s.delivered.Add(1)
			case <-ctx.Done():
				return
			}
		}
	}()
	return sub, nil
}

type countedSub struct {
	inner events.Subscription
	ch    chan events.RecordedEvent
}

func (s *countedSub) Events() <-chan events.RecordedEvent { return s.ch }
func (s *countedSub) Err() error                          { return s.inner.Err() }
func (s *countedSub) Close() error                        { return s.inner.Close() }

// storeWithFeed is the Runner's store with the subscriptions of feed.
type storeWithFeed struct {
	events.Store
	feed Feed
}

func (s storeWithFeed) SubscribeAll(ctx context.Context, from events.Position, f events.Filter) (events.Subscription, error) {
	return s.feed.SubscribeAll(ctx, from, f)
}

// lazyRunner never saves skipped events' checkpoints on its own (no interval, no count) within
// a test: only an applied event, or the stop, stores them.
func lazyRunner(e env, store events.Store) *Runner {
	r := NewRunner(e.pool, store, e.logger, testProjector("ptest-a", nil))
	r.FlushInterval, r.FlushEvents = time.Hour, 1_000_000
	r.WaitTimeout = 3 * time.Second
	return r
}

func TestSkippedEventsReleaseWaitForWithoutWrites(t *testing.T) {
	e := newEnv(t)
	r := lazyRunner(e, e.store)
	r.skipFinalFlush = true // the stop below is a crash
	stop := start(t, r)

	applied := e.appendEvs(t, "acc-1", added{Key: "k", N: 1})
	pgtest.Must(t, r.WaitFor(t.Context(), applied), "wait for applied event")
	cp, xmin := rowVersion(t, e.pool, "ptest-a")
	if cp != applied {
		t.Fatalf("checkpoint = %s, want %s: an applied event stores it in its transaction", cp, applied)
	}

	var last events.Position
	for i := range 30 {
		last = e.appendEvs(t, fmt.Sprintf("other-%d", i), ignored{})
		began := time.Now()
		if err := r.WaitFor(t.Context(), last); err != nil {
			t.Fatalf("WaitFor skipped event %d: %v", i, err)
		}
		if el := time.Since(began); el > time.Second {
			t.Errorf("WaitFor skipped event %d took %v", i, el)
		}
	}
	if cp2, xmin2 := rowVersion(t, e.pool, "ptest-a"); cp2 != applied || xmin2 != xmin {
		t.Errorf("checkpoint row = %s (xmin %s), want %s (xmin %s): skipped events must not write it", cp2, xmin2, applied, xmin)
	}
	sts, err := r.Status(t.Context())
	pgtest.Must(t, err, "status")
	if len(sts) != 1 || sts[0].Position != last || !sts[0].CaughtUp || sts[0].LagEvents != 0 {
		t.Errorf("status = %+v, want at %s and caught up", sts, last)
	}
	wantTotals, wantRows := totals(t, e.pool), readLog(t, e.pool, "ptest-a")

	// Crash: nothing saved the skipped events' checkpoint.
	stop()
	if cp, _ := rowVersion(t, e.pool, "ptest-a"); cp != applied {
		t.Fatalf("checkpoint after crash = %s, want %s", cp, applied)
	}

	// The restart reads the skipped events again and skips them again.
	feed := &countingStore{Feed: e.store}
	r2 := lazyRunner(e, storeWithFeed{e.store, feed})
	stop2 := start(t, r2)
	// Once running, WaitFor waits for r2's own projector to skip them (before, it could
	// release from the log alone: see cover).
	waitRunning(t, r2)
	pgtest.Must(t, r2.WaitFor(t.Context(), last), "wait after restart")
	if n := feed.delivered.Load(); n < 30 {
		t.Errorf("restart delivered %d events, want the 30 skipped ones again", n)
	}
	if diff := cmp.Diff(wantTotals, totals(t, e.pool)); diff != "" {
		t.Errorf("totals changed by the replay (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRows, readLog(t, e.pool, "ptest-a")); diff != "" {
		t.Errorf("log changed by the replay (-want +got):\n%s", diff)
	}
	// A clean stop saves them.
	stop2()
	if cp, _ := rowVersion(t, e.pool, "ptest-a"); cp != last {
		t.Errorf("checkpoint after a clean stop = %s, want %s", cp, last)
	}

	// And the next runner starts after them: nothing before is delivered again.
	feed3 := &countingStore{Feed: e.store}
	r3 := lazyRunner(e, storeWithFeed{e.store, feed3})
	start(t, r3)
	next := e.appendEvs(t, "acc-1", added{Key: "k", N: 2})
	pgtest.Must(t, r3.WaitFor(t.Context(), next), "wait for the next event")
	if n := feed3.delivered.Load(); n != 1 {
		t.Errorf("runner after a clean stop delivered %d events, want 1", n)
	}
	if got := totals(t, e.pool)["k@ptest-a"]; got != 3 {
		t.Errorf("total = %d, want 3", got)
	}
}

func TestSkippedCheckpointsAreSaved(t *testing.T) {
	t.Run("after FlushEvents", func(t *testing.T) {
		e := newEnv(t)
		r := lazyRunner(e, e.store)
		r.FlushEvents = 5
		start(t, r)
		waitRunning(t, r) // so that WaitFor waits for the skips, not the log
		var pos []events.Position
		for i := range 12 {
			pos = append(pos, e.appendEvs(t, fmt.Sprintf("other-%d", i), ignored{}))
		}
		pgtest.Must(t, r.WaitFor(t.Context(), pos[len(pos)-1]), "wait")
		deadline := time.Now().Add(5 * time.Second)
		for {
			cp, _ := rowVersion(t, e.pool, "ptest-a")
			if cp.Compare(pos[4]) >= 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("checkpoint = %s, want at least %s after 5 skipped events", cp, pos[4])
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("every FlushInterval", func(t *testing.T) {
		e := newEnv(t)
		r := lazyRunner(e, e.store)
		r.FlushInterval = 20 * time.Millisecond
		start(t, r)
		var last events.Position
		for i := range 3 {
			last = e.appendEvs(t, fmt.Sprintf("other-%d", i), ignored{})
		}
		waitCheckpoint(t, e.pool, "ptest-a", last)
		// Idle ticks write nothing.
		_, xmin := rowVersion(t, e.pool, "ptest-a")
		time.Sleep(100 * time.Millisecond)
		if _, xmin2 := rowVersion(t, e.pool, "ptest-a"); xmin2 != xmin {
			t.Errorf("checkpoint row rewritten while idle (xmin %s → %s)", xmin, xmin2)
		}
	})
	t.Run("with the next applied event", func(t *testing.T) {
		e := newEnv(t)
		r := lazyRunner(e, e.store)
		start(t, r)
		for i := range 3 {
			e.appendEvs(t, fmt.Sprintf("other-%d", i), ignored{})
		}
		applied := e.appendEvs(t, "acc-1", added{Key: "k", N: 1})
		pgtest.Must(t, r.WaitFor(t.Context(), applied), "wait")
		if cp, _ := rowVersion(t, e.pool, "ptest-a"); cp != applied {
			t.Errorf("checkpoint = %s, want %s", cp, applied)
		}
		r.mu.Lock()
		dirty := r.procs["ptest-a"].dirty
		r.mu.Unlock()
		if dirty {
			t.Error("skipped events still unsaved after the applied event's commit covered them")
		}
	})
}

func TestWaitForOnAnotherInstanceSeesSkippedEvents(t *testing.T) {
	e := newEnv(t)
	api := lazyRunner(e, e.store) // never Run: like an instance waiting on another's projectors
	api.WaitTimeout = 500 * time.Millisecond

	// Nothing runs the projector, but no event so far is one it handles: its read model is
	// complete, and the log shows it.
	var last events.Position
	for i := range 3 {
		last = e.appendEvs(t, fmt.Sprintf("other-%d", i), ignored{})
	}
	pgtest.Must(t, api.WaitFor(t.Context(), last), "wait for skipped events with no projector running")
	// An event it handles, not applied by anyone: a later skipped one must not release.
	e.appendEvs(t, "acc-1", added{Key: "k", N: 1})
	after := e.appendEvs(t, "other-x", ignored{})
	if err := api.WaitFor(t.Context(), after); !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("WaitFor past an unapplied event = %v, want ErrWaitTimeout", err)
	}

	// A worker that applies it and skips the rest, saving nothing for the skipped ones.
	worker := lazyRunner(e, e.store)
	start(t, worker)
	pgtest.Must(t, worker.WaitFor(t.Context(), after), "worker wait")
	api.WaitTimeout = 3 * time.Second
	for i := range 5 {
		last = e.appendEvs(t, fmt.Sprintf("more-%d", i), ignored{})
	}
	pgtest.Must(t, worker.WaitFor(t.Context(), last), "worker wait")
	if cp, _ := rowVersion(t, e.pool, "ptest-a"); cp.Compare(last) >= 0 {
		t.Fatalf("checkpoint %s already at %s: the test needs it unsaved", cp, last)
	}
	began := time.Now()
	pgtest.Must(t, api.WaitFor(t.Context(), last), "api wait for skipped events")
	if el := time.Since(began); el > time.Second {
		t.Errorf("api WaitFor took %v, want about one poll", el)
	}
	if got := totals(t, e.pool)["k@ptest-a"]; got != 1 {
		t.Errorf("total = %d, want 1", got)
	}
}

func TestTwoRunningInstancesWithSkippedEvents(t *testing.T) {
	e := newEnv(t)
	a, b := lazyRunner(e, e.store), lazyRunner(e, e.store)
	start(t, a)
	start(t, b)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		max events.Position
	)
	for w := range 4 {
		wg.Go(func() {
			for i := range 20 {
				var p events.Position
				if i%2 == 0 {
					p = e.appendEvs(t, fmt.Sprintf("acc-%d", w), added{Key: "k", N: 1})
				} else {
					p = e.appendEvs(t, fmt.Sprintf("other-%d", w), ignored{})
				}
				waiter := a
				if i%3 == 0 {
					waiter = b
				}
				if err := waiter.WaitFor(t.Context(), p); err != nil {
					t.Errorf("WaitFor: %v", err)
					return
				}
				mu.Lock()
				if p.Compare(max) > 0 {
					max = p
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, r := range []*Runner{a, b} {
		pgtest.Must(t, r.WaitFor(t.Context(), max), "wait for the last event")
	}
	if got := totals(t, e.pool)["k@ptest-a"]; got != 40 {
		t.Errorf("total = %d, want 40", got)
	}
	if diff := cmp.Diff(wantLog(t, e, "ptest-a"), readLog(t, e.pool, "ptest-a")); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestSkippedCheckpointNeverPassesARebuildReset(t *testing.T) {
	e := newEnv(t)
	r := lazyRunner(e, e.store)
	start(t, r)
	applied := e.appendEvs(t, "acc-1", added{Key: "k", N: 1})
	var last events.Position
	for i := range 3 {
		last = e.appendEvs(t, fmt.Sprintf("other-%d", i), ignored{})
	}
	pgtest.Must(t, r.WaitFor(t.Context(), last), "wait")
	wantTotals := totals(t, e.pool)

	// A rebuild has just reset the read model and the checkpoint when the skipped events are
	// saved: the checkpoint must stay at the start, or the rebuild would skip the applied event.
	pgtest.Must(t, reset(t.Context(), e.pool, []Projector{testProjector("ptest-a", nil)}), "reset")
	pgtest.Must(t, r.flush(t.Context()), "flush")
	if cp, _ := rowVersion(t, e.pool, "ptest-a"); cp != events.Start {
		t.Fatalf("checkpoint after a reset and a flush = %s, want the start", cp)
	}
	pgtest.Must(t, Rebuild(t.Context(), e.pool, e.store, e.logger, nil, testProjector("ptest-a", nil)), "rebuild")
	if diff := cmp.Diff(wantTotals, totals(t, e.pool)); diff != "" {
		t.Errorf("totals after rebuild (-want +got):\n%s", diff)
	}

	// Without a reset, a flush saves them (the stored checkpoint is within their stretch).
	for i := range 2 {
		last = e.appendEvs(t, fmt.Sprintf("more-%d", i), ignored{})
	}
	pgtest.Must(t, r.WaitFor(t.Context(), last), "wait")
	pgtest.Must(t, r.flush(t.Context()), "flush")
	if cp, _ := rowVersion(t, e.pool, "ptest-a"); cp != last {
		t.Errorf("checkpoint after flush = %s, want %s (applied %s)", cp, last, applied)
	}
}

// transactions counts the transactions that wrote projector's log rows.
func transactions(t *testing.T, pool *pgxpool.Pool, projector string) int {
	t.Helper()
	var n int
	err := pool.QueryRow(t.Context(), `SELECT count(DISTINCT xid) FROM ptest_log WHERE projector = $1`, projector).Scan(&n)
	pgtest.Must(t, err, "count transactions")
	return n
}

func TestBehindProjectorAppliesInBatches(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBatch int
		check    func(t *testing.T, txs int)
	}{
		{"batches", 0, func(t *testing.T, txs int) {
			if txs > 150 {
				t.Errorf("300 waiting events took %d transactions, want batches", txs)
			}
		}},
		{"MaxBatch 1", 1, func(t *testing.T, txs int) {
			if txs != 300 {
				t.Errorf("300 events took %d transactions with MaxBatch 1, want 300", txs)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var last events.Position
			for i := range 30 {
				evs := make([]events.Event, 0, 11)
				for j := range 10 {
					evs = append(evs, added{Key: "k", N: i*10 + j})
				}
				last = e.appendEvs(t, fmt.Sprintf("acc-%d", i%4), append(evs, ignored{})...)
			}
			r := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
			r.MaxBatch = tc.maxBatch
			start(t, r)
			pgtest.Must(t, r.WaitFor(t.Context(), last), "wait")
			if diff := cmp.Diff(wantLog(t, e, "ptest-a"), readLog(t, e.pool, "ptest-a")); diff != "" {
				t.Errorf("log (-want +got):\n%s", diff)
			}
			if got := totals(t, e.pool)["k@ptest-a"]; got != 299*300/2 {
				t.Errorf("total = %d, want %d", got, 299*300/2)
			}
			if got := metricValue(t, r, "litehost_projection_events_applied_total", "ptest-a"); got != 300 {
				t.Errorf("applied counter = %v, want 300", got)
			}
			waitCheckpoint(t, e.pool, "ptest-a", last)
			tc.check(t, transactions(t, e.pool, "ptest-a"))
		})
	}
}

func TestFailureInsideABatchKeepsTheEventsBeforeIt(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	fail.Store(true)
	evs := make([]events.Event, 0, 16)
	for range 10 {
		evs = append(evs, added{Key: "k", N: 1})
	}
	before := e.appendEvs(t, "acc-1", evs...)
	e.appendEvs(t, "acc-1", exploded{Key: "k"}, added{Key: "k", N: 1})
	last := e.appendEvs(t, "acc-1", added{Key: "k", N: 1}, added{Key: "k", N: 1})

	newRunner := func() *Runner {
		r := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-bad", &fail))
		r.MaxRetries, r.RetryInterval = 1, 5*time.Millisecond
		return r
	}
	r := newRunner()
	stop := start(t, r)
	deadline := time.Now().Add(10 * time.Second)
	for !r.failed("ptest-bad") {
		if time.Now().After(deadline) {
			t.Fatal("projector did not fail")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if got := checkpoint(t, e.pool, "ptest-bad"); got != before {
		t.Errorf("checkpoint = %s, want %s (the event before the failing one)", got, before)
	}
	if got := totals(t, e.pool)["k@ptest-bad"]; got != 10 {
		t.Errorf("total = %d, want 10: the events before the failing one, nothing of it or after", got)
	}

	fail.Store(false)
	r2 := newRunner()
	start(t, r2)
	waitRunning(t, r2)
	pgtest.Must(t, r2.WaitFor(t.Context(), last), "wait after the fix")
	if got := totals(t, e.pool)["k@ptest-bad"]; got != 1013 {
		t.Errorf("total after the fix = %d, want 1013", got)
	}
}
