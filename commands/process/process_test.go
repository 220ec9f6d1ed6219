package process_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/process"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
)

type world struct {
	pool  *pgxpool.Pool
	store *pgstore.Store
}

func newWorld(t *testing.T) *world {
	t.Helper()
	pool := pgtest.NewPool(t)
	pgtest.Must(t, commands.Migrate(t.Context(), pool), "migrate commands")
	store := pgstore.New(pool, slog.New(slog.DiscardHandler))
	pgtest.Must(t, store.Migrate(t.Context()), "migrate event store")
	return &world{pool: pool, store: store}
}

// appendEvents appends n events to a new stream of category and returns their positions.
func (w *world) appendEvents(t *testing.T, category string, n int) []events.Position {
	t.Helper()
	stream := category + "-" + uuid.NewString()
	var out []events.Position
	for i := range n {
		data, err := events.Encode(events.SlugReserved{Slug: "s" + strconv.Itoa(i), ProjectID: uuid.NewString(), At: time.Now().UTC()}, uuid.New(), events.Metadata{})
		pgtest.Must(t, err, "encode")
		res, err := w.store.Append(t.Context(), stream, events.Any(), []events.EventData{data})
		pgtest.Must(t, err, "append")
		out = append(out, res.Position)
	}
	return out
}

// recorder is a Handler that records the positions it was given; fail makes it fail once at a
// position.
type recorder struct {
	mu     sync.Mutex
	seen   []events.Position
	failAt events.Position
	failed bool
}

func (r *recorder) handle(_ context.Context, rec events.RecordedEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, rec.Position)
	if rec.Position == r.failAt && !r.failed {
		r.failed = true
		return errors.New("boom")
	}
	return nil
}

func (r *recorder) positions() []events.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Position(nil), r.seen...)
}

func (w *world) runner(name string, h process.Handler) *process.Runner {
	return &process.Runner{
		Name: name, LockKey: 0x7465737470726f63, Pool: w.pool, Log: w.store, Handle: h,
		Filter:   events.Filter{StreamPrefixes: []string{"slug-"}},
		LockPoll: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	}
}

func waitCheckpoint(t *testing.T, r *process.Runner, want events.Position) {
	t.Helper()
	pgtest.Eventually(t, func() (bool, string) {
		got, err := r.Checkpoint(t.Context())
		pgtest.Must(t, err, "checkpoint")
		return got == want, fmt.Sprintf("checkpoint %s, want %s", got, want)
	})
}

func samePositions(t *testing.T, got, want []events.Position) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("handled %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("handled %v, want %v", got, want)
		}
	}
}

func TestHandlesFilteredEventsInOrderAndResumesAfterTheCheckpoint(t *testing.T) {
	w := newWorld(t)
	want := w.appendEvents(t, "slug", 3)
	w.appendEvents(t, "other", 2) // filtered out
	var first recorder
	r := w.runner("test-process", first.handle)
	if cp, err := r.Checkpoint(t.Context()); err != nil || cp != events.Start {
		t.Fatalf("checkpoint before the first run = %s, %v; want the start", cp, err)
	}
	stop := pgtest.Background(t, r.Run)
	want = append(want, w.appendEvents(t, "slug", 2)...)
	waitCheckpoint(t, r, want[len(want)-1])
	stop()
	samePositions(t, first.positions(), want)

	later := w.appendEvents(t, "slug", 1)
	var second recorder
	r2 := w.runner("test-process", second.handle)
	pgtest.Background(t, r2.Run)
	waitCheckpoint(t, r2, later[0])
	samePositions(t, second.positions(), later)
}

func TestAFailedEventIsHandledAgainFromTheCheckpoint(t *testing.T) {
	w := newWorld(t)
	pos := w.appendEvents(t, "slug", 3)
	rec := recorder{failAt: pos[1]}
	r := w.runner("test-process", rec.handle)
	pgtest.Background(t, r.Run)
	waitCheckpoint(t, r, pos[2])
	samePositions(t, rec.positions(), []events.Position{pos[0], pos[1], pos[1], pos[2]})
}

func TestOnlyTheLockHolderHandles(t *testing.T) {
	w := newWorld(t)
	var a, b recorder
	ra, rb := w.runner("test-process", a.handle), w.runner("test-process", b.handle)
	pgtest.Background(t, ra.Run)
	pgtest.Background(t, rb.Run)
	pos := w.appendEvents(t, "slug", 4)
	waitCheckpoint(t, ra, pos[3])
	time.Sleep(200 * time.Millisecond) // a second handler, if any, would act meanwhile
	got := append(a.positions(), b.positions()...)
	samePositions(t, got, pos)
}

func TestBatchedCheckpointIsSavedByTimeAndAtStop(t *testing.T) {
	w := newWorld(t)
	pos := w.appendEvents(t, "slug", 3)
	var rec recorder
	r := w.runner("test-batched", rec.handle)
	r.FlushInterval = 50 * time.Millisecond
	stop := pgtest.Background(t, r.Run)
	waitCheckpoint(t, r, pos[2]) // by the ticker: far fewer than FlushMax events

	r.FlushInterval = time.Hour // from the next term on, only the stop saves
	stop()
	more := w.appendEvents(t, "slug", 2)
	stop = pgtest.Background(t, r.Run)
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.positions()) < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("handled %v, want 5 events", rec.positions())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	cp, err := r.Checkpoint(t.Context())
	pgtest.Must(t, err, "checkpoint")
	if cp != more[1] {
		t.Errorf("checkpoint after stop = %s, want %s", cp, more[1])
	}
}

func TestOpenRunsPerTermAndItsHandlerIsUsed(t *testing.T) {
	w := newWorld(t)
	pos := w.appendEvents(t, "slug", 2)
	var (
		mu             sync.Mutex
		opened, closed int
		rec            recorder
	)
	r := w.runner("test-open", nil)
	r.Open = func(context.Context) (process.Handler, func(), error) {
		mu.Lock()
		defer mu.Unlock()
		opened++
		if opened == 1 {
			return nil, nil, errors.New("outside system down") // the term ends; the next one retries
		}
		return rec.handle, func() { mu.Lock(); closed++; mu.Unlock() }, nil
	}
	stop := pgtest.Background(t, r.Run)
	waitCheckpoint(t, r, pos[1])
	stop()
	samePositions(t, rec.positions(), pos)
	mu.Lock()
	defer mu.Unlock()
	if opened != 2 || closed != 1 {
		t.Errorf("opened %d, closed %d; want 2 and 1", opened, closed)
	}
}

func TestRunRejectsAnIncompleteRunner(t *testing.T) {
	w := newWorld(t)
	h := func(context.Context, events.RecordedEvent) error { return nil }
	open := func(context.Context) (process.Handler, func(), error) { return h, func() {}, nil }
	for name, r := range map[string]*process.Runner{
		"no name":      {LockKey: 1, Pool: w.pool, Log: w.store, Handle: h, Logger: slog.New(slog.DiscardHandler)},
		"no pool":      {Name: "x", LockKey: 1, Log: w.store, Handle: h, Logger: slog.New(slog.DiscardHandler)},
		"no log":       {Name: "x", LockKey: 1, Pool: w.pool, Handle: h, Logger: slog.New(slog.DiscardHandler)},
		"no logger":    {Name: "x", LockKey: 1, Pool: w.pool, Log: w.store, Handle: h},
		"no handler":   {Name: "x", LockKey: 1, Pool: w.pool, Log: w.store, Logger: slog.New(slog.DiscardHandler)},
		"two handlers": {Name: "x", LockKey: 1, Pool: w.pool, Log: w.store, Handle: h, Open: open, Logger: slog.New(slog.DiscardHandler)},
	} {
		if err := r.Run(t.Context()); err == nil {
			t.Errorf("%s: Run accepted", name)
		}
	}
}

func TestBackoffDelayStaysWithinBounds(t *testing.T) {
	b := process.Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for attempt, ceiling := range []time.Duration{10, 20, 40, 80, 80, 80} {
		ceiling *= time.Millisecond
		for range 50 {
			if d := b.Delay(attempt); d < ceiling/2 || d > ceiling {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", attempt, d, ceiling/2, ceiling)
			}
		}
	}
	if d := b.Delay(1000); d < 40*time.Millisecond || d > 80*time.Millisecond {
		t.Errorf("Delay(1000) = %s, want capped at 80ms", d)
	}
}

func TestRetry(t *testing.T) {
	b := process.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}
	var failures []int
	err := process.Retry(t.Context(), b, func(attempt int) error {
		if attempt < 3 {
			return errors.New("not yet")
		}
		return nil
	}, func(attempt int, err error, wait time.Duration) { failures = append(failures, attempt) })
	if err != nil || len(failures) != 3 || failures[2] != 2 {
		t.Errorf("Retry = %v after failures %v, want nil after 0, 1, 2", err, failures)
	}

	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err = process.Retry(ctx, b, func(int) error {
		calls++
		if calls == 2 {
			cancel()
		}
		return errors.New("down")
	}, nil)
	if !errors.Is(err, context.Canceled) || calls != 2 {
		t.Errorf("Retry = %v after %d calls, want context.Canceled after 2", err, calls)
	}
}

// TestPeriodicTicksOnOneInstanceAndFailsOver: of two Periodics on one lock only the holder ticks;
// when it stops, the other takes over.
func TestPeriodicTicksOnOneInstanceAndFailsOver(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	ticks := map[string]int{}
	periodic := func(name string) *process.Periodic {
		return &process.Periodic{Name: "test-periodic", LockKey: 0x7465737470657269, Pool: w.pool, Interval: 20 * time.Millisecond,
			LockPoll: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
			Tick: func(context.Context) error { mu.Lock(); ticks[name]++; mu.Unlock(); return nil }}
	}
	count := func() (a, b int) { mu.Lock(); defer mu.Unlock(); return ticks["a"], ticks["b"] }
	stopA := pgtest.Background(t, periodic("a").Run)
	pgtest.Eventually(t, func() (bool, string) { a, _ := count(); return a > 0, "a never ticked" })
	stopB := pgtest.Background(t, periodic("b").Run)
	time.Sleep(300 * time.Millisecond)
	if _, b := count(); b != 0 {
		t.Fatalf("the instance without the lock ticked %d times", b)
	}
	stopA()
	pgtest.Eventually(t, func() (bool, string) { _, b := count(); return b > 0, "b never took over" })
	stopB()
}
