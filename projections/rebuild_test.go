package projections

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
)

// writer appends added events (with an ignored one now and then) until stopped, the way live
// traffic keeps coming while an operator rebuilds. stop returns the position of its last append
// (every append completes: a cancelled one could commit without telling its position).
func writer(ctx context.Context, e env) (stop func() (events.Position, int, error)) {
	var (
		done  = make(chan struct{})
		wg    sync.WaitGroup
		last  events.Position
		n     int
		fault error
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			evs := []events.Event{added{Key: fmt.Sprint("live-", i%3), N: i}}
			if i%4 == 0 {
				evs = append(evs, ignored{})
			}
			data := make([]events.EventData, len(evs))
			for j, ev := range evs {
				d, err := events.Encode(ev, uuid.New(), events.Metadata{Actor: "system:test"})
				if err != nil {
					fault = err
					return
				}
				data[j] = d
			}
			res, err := e.store.Append(ctx, fmt.Sprintf("live-%d", i%5), events.Any(), data)
			if err != nil {
				fault = err
				return
			}
			last, n = res.Position, n+1
			time.Sleep(2 * time.Millisecond)
		}
	})
	return func() (events.Position, int, error) {
		close(done)
		wg.Wait()
		return last, n, fault
	}
}

// A rebuild while a runner keeps applying live events: the runner must not move the checkpoint
// past events the rebuild has not replayed yet, nor the rebuild replay what the runner applied.
func TestRebuildWhileRunnerAppliesLiveEvents(t *testing.T) {
	e := newEnv(t)
	r := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	r.WaitTimeout = 30 * time.Second
	r.FlushInterval = 10 * time.Millisecond // skipped events' checkpoints are saved during the rebuild too
	start(t, r)
	var last events.Position
	for i := range 30 {
		evs := make([]events.Event, 0, 100)
		for j := range 50 {
			evs = append(evs, added{Key: fmt.Sprint(j % 7), N: i*100 + j}, ignored{})
		}
		last = e.appendEvs(t, fmt.Sprintf("acc-%d", i%4), evs...)
	}
	pgtest.Must(t, r.WaitFor(t.Context(), last), "wait for the history")

	// The rebuild runs as the CLI does: another process, so another pool.
	other, err := pgxpool.New(t.Context(), e.pool.Config().ConnString())
	pgtest.Must(t, err, "second pool")
	t.Cleanup(other.Close)

	stopWriter := writer(t.Context(), e)
	var batches atomic.Int32
	err = Rebuild(t.Context(), other, e.store, e.logger, func(done, total int) {
		if batches.Add(1) == 1 {
			// Leave the runner time to reach the live events appended after the reset.
			time.Sleep(300 * time.Millisecond)
		}
	}, testProjector("ptest-a", nil))
	pgtest.Must(t, err, "rebuild")
	time.Sleep(100 * time.Millisecond) // live events keep coming after the rebuild
	live, appends, err := stopWriter()
	pgtest.Must(t, err, "writer")
	if appends < 20 || batches.Load() < 6 {
		t.Fatalf("only %d live appends over %d rebuild batches: the test did not overlap them", appends, batches.Load())
	}
	pgtest.Must(t, r.WaitFor(t.Context(), live), "wait for the live events")

	if diff := cmp.Diff(wantLog(t, e, "ptest-a"), readLog(t, e.pool, "ptest-a")); diff != "" {
		t.Errorf("log after a rebuild under live traffic (-want +got):\n%s", diff)
	}
	gotTotals := totals(t, e.pool)
	pgtest.Must(t, Rebuild(t.Context(), other, e.store, e.logger, nil, testProjector("ptest-a", nil)), "fresh rebuild")
	if diff := cmp.Diff(totals(t, e.pool), gotTotals); diff != "" {
		t.Errorf("totals against a fresh rebuild's (-fresh +live):\n%s", diff)
	}
	if got := checkpoint(t, e.pool, "ptest-a"); got != live {
		t.Errorf("checkpoint = %s, want the last live event %s", got, live)
	}
}

// Every live checkpoint write respects a rebuild's lock: the transactional ones and the
// one-statement advance wait for its release, the lazy save of skipped events gives up.
func TestLiveCheckpointWritesRespectTheRebuildLock(t *testing.T) {
	e := newEnv(t)
	const name = "ptest-a"
	pgtest.Must(t, setState(t.Context(), e.pool, name, StateRunning, ""), "create checkpoint")
	conn, err := e.pool.Acquire(t.Context())
	pgtest.Must(t, err, "acquire")
	defer conn.Release()
	release, err := holdRebuild(t.Context(), conn, []string{name, "ptest-b"})
	pgtest.Must(t, err, "hold the rebuild lock")

	p1, p2 := events.Position{Commit: 10, Prepare: 10}, events.Position{Commit: 20, Prepare: 20}
	moved, err := skipCheckpoint(t.Context(), e.pool, name, events.Start, p1, time.Time{})
	pgtest.Must(t, err, "skip checkpoint")
	if moved {
		t.Error("skipCheckpoint moved the checkpoint during a rebuild")
	}
	advanced := make(chan error, 1)
	go func() {
		_, err := advanceIfBehind(t.Context(), e.pool, name, p1, time.Time{})
		advanced <- err
	}()
	locked := make(chan error, 1)
	go func() {
		locked <- pgx.BeginFunc(t.Context(), e.pool, func(tx pgx.Tx) error {
			cp, err := lockCheckpoint(t.Context(), tx, name)
			if err != nil {
				return err
			}
			if cp.Compare(p2) >= 0 {
				return fmt.Errorf("checkpoint %s already at %s", cp, p2)
			}
			return advanceCheckpoint(t.Context(), tx, name, p2, time.Time{})
		})
	}()
	select {
	case err := <-advanced:
		t.Fatalf("advanceIfBehind returned during a rebuild (%v)", err)
	case err := <-locked:
		t.Fatalf("a live transaction locked the checkpoint during a rebuild (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if got := checkpoint(t, e.pool, name); got != events.Start {
		t.Fatalf("checkpoint during the rebuild = %s, want the start", got)
	}
	release()
	for _, ch := range []chan error{advanced, locked} {
		select {
		case err := <-ch:
			pgtest.Must(t, err, "live write after the rebuild")
		case <-time.After(5 * time.Second):
			t.Fatal("a live write still waits after the rebuild released its lock")
		}
	}
	if got := checkpoint(t, e.pool, name); got != p2 {
		t.Errorf("checkpoint after the rebuild = %s, want %s", got, p2)
	}
	// Released: another session can take the lock exclusively at once.
	var free bool
	err = e.pool.QueryRow(t.Context(), `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`, rebuildLockClass, name).Scan(&free)
	pgtest.Must(t, err, "try the lock")
	if !free {
		t.Error("the rebuild lock is still held after release")
	}
}
