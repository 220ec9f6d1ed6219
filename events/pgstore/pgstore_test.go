package pgstore_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/storetest"
)

func newStore(t testing.TB) (*pgstore.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t)
	s := pgstore.New(pool, slog.New(slog.DiscardHandler))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s, pool
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) events.Store {
		s, _ := newStore(t)
		return s
	})
}

func event(typ string) events.EventData {
	return events.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{"ok":true}`)}
}

func mustAppend(t *testing.T, s *pgstore.Store, stream string, evs ...events.EventData) events.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, events.Any(), evs)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res
}

func next(t *testing.T, sub events.Subscription, within time.Duration) events.RecordedEvent {
	t.Helper()
	select {
	case e, ok := <-sub.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return e
	case <-time.After(within):
		t.Fatalf("no event within %s", within)
	}
	return events.RecordedEvent{}
}

func expectNone(t *testing.T, sub events.Subscription, d time.Duration) {
	t.Helper()
	select {
	case e, ok := <-sub.Events():
		if ok {
			t.Fatalf("unexpected event %s in %s at %s", e.Type, e.Stream, e.Position)
		}
		t.Fatalf("subscription ended: %v", sub.Err())
	case <-time.After(d):
	}
}

func subscribe(t *testing.T, s *pgstore.Store, from events.Position) events.Subscription {
	t.Helper()
	sub, err := s.SubscribeAll(t.Context(), from, events.Filter{})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// A transaction that appended first but commits last must be delivered first, and never be
// skipped: the subscriber waits for it instead of running ahead.
func TestSlowTransactionIsNotSkipped(t *testing.T) {
	s, pool := newStore(t)
	start := mustAppend(t, s, "marker-1", event("test.marker.v1"))
	sub := subscribe(t, s, start.Position)

	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }()
	slow := event("test.slow.v1")
	slowRes, err := pgstore.AppendInTx(t.Context(), tx, "slow-1", events.NoStream(), []events.EventData{slow})
	if err != nil {
		t.Fatalf("append in tx: %v", err)
	}
	fast := []events.EventData{event("test.fast.v1"), event("test.fast.v1")}
	mustAppend(t, s, "fast-1", fast[0])
	mustAppend(t, s, "fast-2", fast[1])

	expectNone(t, sub, 700*time.Millisecond)
	recs, err := s.ReadAll(t.Context(), start.Position, 10)
	if err != nil || len(recs) != 0 {
		t.Fatalf("read all while the slow transaction is open: %d events, %v; want none", len(recs), err)
	}
	// Head never passes the open transaction; it may lag further while another test's
	// transaction in the same cluster is open, so it gets a moment to reach the marker.
	waitHead(t, s, start.Position)

	if err := tx.Commit(t.Context()); err != nil {
		t.Fatalf("commit: %v", err)
	}
	for i, want := range []events.EventData{slow, fast[0], fast[1]} {
		got := next(t, sub, 5*time.Second)
		if got.ID != want.ID {
			t.Fatalf("event %d = %s (%s), want %s (%s)", i, got.ID, got.Type, want.ID, want.Type)
		}
		if i == 0 && got.Position != slowRes.Position {
			t.Errorf("slow event delivered at %s, its append returned %s", got.Position, slowRes.Position)
		}
	}
	expectNone(t, sub, 200*time.Millisecond)
}

// A rolled-back append leaves nothing behind and does not hold back later events for good.
func TestRolledBackTransaction(t *testing.T) {
	s, pool := newStore(t)
	start := mustAppend(t, s, "marker-1", event("test.marker.v1"))
	sub := subscribe(t, s, start.Position)
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }() // a failed check must not leave the pool waiting for it
	if _, err := pgstore.AppendInTx(t.Context(), tx, "slow-1", events.NoStream(), []events.EventData{event("test.slow.v1")}); err != nil {
		t.Fatalf("append in tx: %v", err)
	}
	fast := event("test.fast.v1")
	mustAppend(t, s, "fast-1", fast)
	expectNone(t, sub, 300*time.Millisecond)
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if got := next(t, sub, 5*time.Second); got.ID != fast.ID {
		t.Fatalf("got %s (%s), want the fast event", got.ID, got.Type)
	}
	if _, err := s.ReadStream(t.Context(), "slow-1", 0, 10); !errors.Is(err, events.ErrStreamNotFound) {
		t.Errorf("read rolled-back stream: %v, want ErrStreamNotFound", err)
	}
}

// With LISTEN on, a live event arrives long before the poll interval.
func TestNotifyWakesSubscriber(t *testing.T) {
	s, _ := newStore(t)
	s.SetPollInterval(time.Minute)
	sub := subscribe(t, s, events.Start)
	time.Sleep(100 * time.Millisecond) // let the subscription reach its wait
	e := event("test.live.v1")
	mustAppend(t, s, "live-1", e)
	if got := next(t, sub, 3*time.Second); got.ID != e.ID {
		t.Fatalf("got %s, want %s", got.ID, e.ID)
	}
}

// Without LISTEN, polling alone delivers.
func TestPollingWithoutListen(t *testing.T) {
	s, _ := newStore(t)
	s.DisableListen()
	s.SetPollInterval(100 * time.Millisecond)
	sub := subscribe(t, s, events.Start)
	for i := range 3 {
		e := event("test.polled.v1")
		mustAppend(t, s, "poll-1", e)
		if got := next(t, sub, 3*time.Second); got.ID != e.ID {
			t.Fatalf("event %d = %s, want %s", i, got.ID, e.ID)
		}
	}
}

// Killing the LISTEN connection neither ends the subscription nor stalls it.
func TestListenConnectionLost(t *testing.T) {
	s, pool := newStore(t)
	s.SetPollInterval(200 * time.Millisecond)
	sub := subscribe(t, s, events.Start)
	first := event("test.before.v1")
	mustAppend(t, s, "listen-1", first)
	if got := next(t, sub, 3*time.Second); got.ID != first.ID {
		t.Fatalf("got %s, want %s", got.ID, first.ID)
	}
	var killed int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM (
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		 WHERE datname = current_database() AND application_name = $1) k`,
		pgstore.ListenerAppName).Scan(&killed); err != nil {
		t.Fatalf("terminate listener: %v", err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener connections, want 1", killed)
	}
	for i := range 3 {
		e := event("test.after.v1")
		mustAppend(t, s, "listen-1", e)
		if got := next(t, sub, 3*time.Second); got.ID != e.ID {
			t.Fatalf("event %d after the kill = %s, want %s", i, got.ID, e.ID)
		}
	}
	if err := sub.Err(); err != nil {
		t.Errorf("Err = %v, want nil", err)
	}
}

func TestMigrateIdempotent(t *testing.T) {
	pool := pgtest.NewPool(t)
	s := pgstore.New(pool, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate %d: %v", i, err)
		}
	}
	mustAppend(t, s, "m-1", event("test.kept.v1"))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	var version int64
	if err := pool.QueryRow(t.Context(), `SELECT max(version_id) FROM pgstore_goose_version`).Scan(&version); err != nil {
		t.Fatalf("read migration version: %v", err)
	}
	if version != 2 {
		t.Errorf("migration version = %d, want 2", version)
	}
	if recs, err := s.ReadStream(t.Context(), "m-1", 0, 10); err != nil || len(recs) != 1 {
		t.Errorf("after migrating again: %d events, %v; want the 1 kept", len(recs), err)
	}
}

func TestAppendRejectsBadInput(t *testing.T) {
	s, _ := newStore(t)
	id := uuid.New()
	tests := []struct {
		name     string
		stream   string
		expected events.Expected
		evs      []events.EventData
	}{
		{"empty stream", "", events.Any(), []events.EventData{event("t.a.v1")}},
		{"system stream", "$all", events.Any(), []events.EventData{event("t.a.v1")}},
		{"no events", "bad-1", events.Any(), nil},
		{"nil id", "bad-1", events.Any(), []events.EventData{{Type: "t.a.v1", Data: []byte(`{}`)}}},
		{"no type", "bad-1", events.Any(), []events.EventData{{ID: uuid.New(), Data: []byte(`{}`)}}},
		{"data not JSON", "bad-1", events.Any(), []events.EventData{{ID: uuid.New(), Type: "t.a.v1", Data: []byte(`{`)}}},
		{"empty data", "bad-1", events.Any(), []events.EventData{{ID: uuid.New(), Type: "t.a.v1"}}},
		{"metadata not JSON", "bad-1", events.Any(), []events.EventData{{ID: uuid.New(), Type: "t.a.v1", Data: []byte(`{}`), Metadata: []byte(`x`)}}},
		{"duplicate id in batch", "bad-1", events.Any(), []events.EventData{
			{ID: id, Type: "t.a.v1", Data: []byte(`{}`)}, {ID: id, Type: "t.a.v1", Data: []byte(`{}`)}}},
		{"unknown kind", "bad-1", events.Expected{Kind: 9}, []events.EventData{event("t.a.v1")}},
		{"version out of range", "bad-1", events.Exact(1 << 63), []events.EventData{event("t.a.v1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(t.Context(), tt.stream, tt.expected, tt.evs)
			if err == nil {
				t.Fatal("append succeeded, want an error")
			}
			if errors.Is(err, events.ErrWrongExpectedVersion) {
				t.Fatalf("err = %v, want an input error, not a conflict", err)
			}
		})
	}
	if _, err := s.ReadStream(t.Context(), "bad-1", 0, 10); !errors.Is(err, events.ErrStreamNotFound) {
		t.Errorf("after rejected appends: %v, want ErrStreamNotFound", err)
	}
	if recs, err := s.ReadAll(t.Context(), events.Start, 10); err != nil || len(recs) != 0 {
		t.Errorf("after rejected appends: log has %d events (%v), want 0", len(recs), err)
	}
}

// Event IDs are unique per stream: an id stored elsewhere in the stream makes a batch a
// conflict (EventStoreDB would store the duplicate; a command handler reloads either way).
func TestAppendReusedIDIsConflict(t *testing.T) {
	s, _ := newStore(t)
	a := event("t.a.v1")
	mustAppend(t, s, "dup-1", a)
	for _, tc := range []struct {
		name     string
		expected events.Expected
		evs      []events.EventData
	}{
		{"later in batch", events.Any(), []events.EventData{event("t.b.v1"), a}},
		{"exact at the end", events.Exact(0), []events.EventData{a}},
	} {
		_, err := s.Append(t.Context(), "dup-1", tc.expected, tc.evs)
		if !errors.Is(err, events.ErrWrongExpectedVersion) {
			t.Errorf("%s: err = %v, want wrong expected version", tc.name, err)
		}
	}
	if recs, err := s.ReadStream(t.Context(), "dup-1", 0, 10); err != nil || len(recs) != 1 {
		t.Errorf("stream has %d events (%v), want 1", len(recs), err)
	}
	// The same id in another stream is another event.
	mustAppend(t, s, "dup-2", a)
}

func TestHead(t *testing.T) {
	s, _ := newStore(t)
	head, err := s.Head(t.Context())
	if err != nil || head != events.Start {
		t.Fatalf("head of an empty log = %s, %v; want %s", head, err, events.Start)
	}
	mustAppend(t, s, "h-1", event("t.a.v1"))
	last := mustAppend(t, s, "h-2", event("t.a.v1"), event("t.b.v1"))
	waitHead(t, s, last.Position)
}

// waitHead waits until Head reports want, failing if it ever reports a later position.
func waitHead(t *testing.T, s *pgstore.Store, want events.Position) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		head, err := s.Head(t.Context())
		if err != nil {
			t.Fatalf("head: %v", err)
		}
		if head.Compare(want) > 0 {
			t.Fatalf("head = %s, past %s", head, want)
		}
		if head == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("head = %s, want %s", head, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadRejectsBadArguments(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.ReadStream(t.Context(), "x-1", 0, 0); err == nil {
		t.Error("ReadStream with max 0 succeeded")
	}
	if _, err := s.ReadAll(t.Context(), events.Start, -1); err == nil {
		t.Error("ReadAll with max -1 succeeded")
	}
	if _, err := s.ReadAll(t.Context(), events.Position{Commit: 1 << 63}, 10); err == nil {
		t.Error("ReadAll from an out-of-range position succeeded")
	}
}

// A subscription whose database goes away ends and says why.
func TestSubscriptionReportsFailure(t *testing.T) {
	pool, err := pgxpool.New(t.Context(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	s := pgstore.New(pool, slog.New(slog.DiscardHandler))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s.SetPollInterval(50 * time.Millisecond)
	sub := subscribe(t, s, events.Start)
	e := event("t.a.v1")
	mustAppend(t, s, "f-1", e)
	if got := next(t, sub, 3*time.Second); got.ID != e.ID {
		t.Fatalf("got %s, want %s", got.ID, e.ID)
	}
	pool.Close()
	select {
	case _, ok := <-sub.Events():
		if ok {
			t.Fatal("got an event after the pool closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the subscription did not end after its pool closed")
	}
	if sub.Err() == nil {
		t.Error("Err = nil after a failure, want the read error")
	}
}

// Appends wait only for appends to the same stream: no global lock on the write path.
func TestAppendLocksOnlyItsStream(t *testing.T) {
	s, pool := newStore(t)
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }()
	if _, err := pgstore.AppendInTx(t.Context(), tx, "locked-1", events.NoStream(), []events.EventData{event("t.a.v1")}); err != nil {
		t.Fatalf("append in tx: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.Append(ctx, "free-1", events.NoStream(), []events.EventData{event("t.a.v1")}); err != nil {
		t.Fatalf("append to another stream while one is locked: %v", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.Append(t.Context(), "locked-1", events.NoStream(), []events.EventData{event("t.b.v1")})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("append to the locked stream returned before the holder committed: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatalf("commit: %v", err)
	}
	select {
	case err := <-done:
		var wev *events.WrongExpectedVersionError
		if !errors.As(err, &wev) || wev.Actual != 0 {
			t.Fatalf("waiting NoStream append after the holder committed: %v, want wrong expected version with actual 0", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("append to the locked stream still waits after the holder committed")
	}
}

// A long write transaction that is not an append — here in another database of the same
// server — must not hold the event feed back: only appends in flight bound global reads.
func TestUnrelatedTransactionDoesNotDelayTheFeed(t *testing.T) {
	s, _ := newStore(t)
	other := pgtest.NewPool(t)
	if _, err := other.Exec(t.Context(), `CREATE TABLE busy (n int)`); err != nil {
		t.Fatal(err)
	}
	tx, err := other.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }()
	if _, err := tx.Exec(t.Context(), `INSERT INTO busy VALUES (1)`); err != nil { // takes a transaction id
		t.Fatal(err)
	}
	res := mustAppend(t, s, "feed-1", event("test.feed.v1"))
	recs, err := s.ReadAll(t.Context(), events.Start, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Position != res.Position {
		t.Fatalf("read all with an unrelated open transaction = %d events; want the one appended", len(recs))
	}
	head, err := s.Head(t.Context())
	if err != nil || head != res.Position {
		t.Errorf("head = %s, %v; want %s", head, err, res.Position)
	}
}
