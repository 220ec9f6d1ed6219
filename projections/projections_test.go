package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
)

// Test events: types events.Decode does not know, so the marshaler decodes them as plain JSON.
type added struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

func (added) EventType() string { return "ptest.added.v1" }

type exploded struct {
	Key string `json:"key"`
}

func (exploded) EventType() string { return "ptest.exploded.v1" }

type ignored struct{}

func (ignored) EventType() string { return "ptest.ignored.v1" }

const schema = `
CREATE TABLE ptest_totals (key text PRIMARY KEY, total int NOT NULL);
CREATE TABLE ptest_log (seq bigserial PRIMARY KEY, projector text NOT NULL, stream text NOT NULL,
	version bigint NOT NULL, position text NOT NULL, n int NOT NULL, actor text NOT NULL,
	xid bigint NOT NULL DEFAULT txid_current());` // xid: the transaction that applied the event

// testProjector applies added events as increments: not idempotent on its own, so only the
// checkpoint guard keeps a redelivery from counting twice. exploded fails while *fail is set,
// after writing, so a rollback is visible if the write survived.
func testProjector(name string, fail *atomic.Bool) Projector {
	return Projector{
		Name:   name,
		Tables: []string{"ptest_totals", "ptest_log"},
		Handlers: []cqrs.GroupEventHandler{
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *added) error {
				info := Event(ctx)
				tx := Tx(ctx)
				if _, err := tx.Exec(ctx, `INSERT INTO ptest_totals (key, total) VALUES ($1, $2)
					ON CONFLICT (key) DO UPDATE SET total = ptest_totals.total + excluded.total`, e.Key+"@"+name, e.N); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO ptest_log (projector, stream, version, position, n, actor) VALUES ($1, $2, $3, $4, $5, $6)`,
					name, info.Stream, int64(info.Version), info.Position.String(), e.N, info.Metadata.Actor)
				return err
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *exploded) error {
				if _, err := Tx(ctx).Exec(ctx, `INSERT INTO ptest_totals (key, total) VALUES ($1, 1000)
					ON CONFLICT (key) DO UPDATE SET total = ptest_totals.total + 1000`, e.Key+"@"+name); err != nil {
					return err
				}
				if fail != nil && fail.Load() {
					return errors.New("exploded on purpose")
				}
				return nil
			}),
		},
	}
}

type env struct {
	pool   *pgxpool.Pool
	store  *pgstore.Store
	logger *slog.Logger
}

func newEnv(t testing.TB) env {
	t.Helper()
	pool := pgtest.NewPool(t)
	logger := slog.New(slog.DiscardHandler)
	store := pgstore.New(pool, logger)
	pgtest.Must(t, store.Migrate(t.Context()), "migrate store")
	pgtest.Must(t, Migrate(t.Context(), pool), "migrate projections")
	pgtest.Must(t, Migrate(t.Context(), pool), "migrate projections again")
	_, err := pool.Exec(t.Context(), schema)
	pgtest.Must(t, err, "create test tables")
	return env{pool: pool, store: store, logger: logger}
}

// appendEvs appends evs to stream and returns the position of the last.
func (e env) appendEvs(t testing.TB, stream string, evs ...events.Event) events.Position {
	t.Helper()
	data := make([]events.EventData, len(evs))
	for i, ev := range evs {
		d, err := events.Encode(ev, uuid.New(), events.Metadata{Actor: "system:test"})
		pgtest.Must(t, err, "encode")
		data[i] = d
	}
	res, err := e.store.Append(t.Context(), stream, events.Any(), data)
	pgtest.Must(t, err, "append to %s", stream)
	return res.Position
}

// start runs r until the test ends (or stop is called) and fails the test if Run errors.
func start(t *testing.T, r *Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

type logRow struct {
	Projector, Stream string
	Version           int64
	Position          string
	N                 int
	Actor             string
}

func readLog(t *testing.T, pool *pgxpool.Pool, projector string) []logRow {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT projector, stream, version, position, n, actor FROM ptest_log WHERE projector = $1 ORDER BY seq`, projector)
	pgtest.Must(t, err, "read log")
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[logRow])
	pgtest.Must(t, err, "read log")
	return out
}

func totals(t *testing.T, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT key, total FROM ptest_totals`)
	pgtest.Must(t, err, "read totals")
	out := map[string]int{}
	var (
		k string
		v int
	)
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error { out[k] = v; return nil })
	pgtest.Must(t, err, "read totals")
	return out
}

// wantLog is the log rows a projector should hold for the added events of the store, in log order.
func wantLog(t *testing.T, e env, projector string) []logRow {
	t.Helper()
	recs, err := e.store.ReadAll(t.Context(), events.Start, 100000)
	pgtest.Must(t, err, "read all")
	var out []logRow
	for _, r := range recs {
		if r.Type != (added{}).EventType() {
			continue
		}
		var a added
		pgtest.Must(t, decodeInto(r.Type, r.Data, &a), "decode")
		out = append(out, logRow{projector, r.Stream, int64(r.Version), r.Position.String(), a.N, "system:test"})
	}
	return out
}

func checkpoint(t *testing.T, pool *pgxpool.Pool, name string) events.Position {
	t.Helper()
	p, err := readCheckpoint(t.Context(), pool, name)
	pgtest.Must(t, err, "read checkpoint")
	return p
}

// waitCheckpoint waits until name's stored checkpoint is want, failing after a few seconds.
func waitCheckpoint(t *testing.T, pool *pgxpool.Pool, name string, want events.Position) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := checkpoint(t, pool, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint of %s = %s, want %s", name, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAppliesInOrderAndWaitFor(t *testing.T) {
	e := newEnv(t)
	r := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	start(t, r)
	var last events.Position
	for i := range 20 {
		last = e.appendEvs(t, fmt.Sprintf("acc-%d", i%3), added{Key: "k", N: i})
	}
	if err := r.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	if diff := cmp.Diff(wantLog(t, e, "ptest-a"), readLog(t, e.pool, "ptest-a")); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if got := totals(t, e.pool)["k@ptest-a"]; got != 190 {
		t.Errorf("total = %d, want 190", got)
	}
	// An event without a handler still advances the checkpoint, so WaitFor does not stall on it.
	last = e.appendEvs(t, "other-1", ignored{})
	if err := r.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor ignored event: %v", err)
	}
	// Its checkpoint is saved lazily, within the flush interval.
	waitCheckpoint(t, e.pool, "ptest-a", last)
	// Read-your-writes right after an append: no sleeping.
	for i := range 5 {
		pos := e.appendEvs(t, "acc-x", added{Key: "ryw", N: 1})
		if err := r.WaitFor(t.Context(), pos); err != nil {
			t.Fatalf("WaitFor: %v", err)
		}
		if got := totals(t, e.pool)["ryw@ptest-a"]; got != i+1 {
			t.Fatalf("after write %d total = %d", i+1, got)
		}
	}
	if got := metricValue(t, r, "litehost_projection_events_applied_total", "ptest-a"); got != 25 {
		t.Errorf("applied counter = %v, want 25", got)
	}
}

func TestWaitForTimesOut(t *testing.T) {
	e := newEnv(t)
	r := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	r.WaitTimeout = 200 * time.Millisecond
	pos := e.appendEvs(t, "acc-1", added{Key: "k", N: 1}) // nothing runs the projector
	began := time.Now()
	err := r.WaitFor(t.Context(), pos)
	if !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("WaitFor = %v, want ErrWaitTimeout", err)
	}
	if el := time.Since(began); el < 190*time.Millisecond || el > 2*time.Second {
		t.Errorf("WaitFor took %v, want about 200ms", el)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := r.WaitFor(ctx, pos); !errors.Is(err, context.Canceled) || errors.Is(err, ErrWaitTimeout) {
		t.Errorf("WaitFor with cancelled ctx = %v, want context.Canceled", err)
	}
	if err := r.WaitFor(t.Context(), events.Start); err != nil {
		t.Errorf("WaitFor(Start) = %v", err)
	}
}

// dupStore delivers every event twice and always from the start of the log, as a store with
// at-least-once delivery and a lost checkpoint might.
type dupStore struct{ *pgstore.Store }

func (d dupStore) SubscribeAll(ctx context.Context, _ events.Position, f events.Filter) (events.Subscription, error) {
	inner, err := d.Store.SubscribeAll(ctx, events.Start, f)
	if err != nil {
		return nil, err
	}
	s := &dupSub{inner: inner, ch: make(chan events.RecordedEvent)}
	go func() {
		defer close(s.ch)
		for r := range inner.Events() {
			for range 2 {
				select {
				case s.ch <- r:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return s, nil
}

type dupSub struct {
	inner events.Subscription
	ch    chan events.RecordedEvent
}

func (s *dupSub) Events() <-chan events.RecordedEvent { return s.ch }
func (s *dupSub) Err() error                          { return s.inner.Err() }
func (s *dupSub) Close() error                        { return s.inner.Close() }

func TestDuplicateDeliveryAppliesOnce(t *testing.T) {
	e := newEnv(t)
	var last events.Position
	for i := range 5 {
		last = e.appendEvs(t, "acc-1", added{Key: "k", N: 1 << i})
	}
	r := NewRunner(e.pool, dupStore{e.store}, e.logger, testProjector("ptest-a", nil))
	stop := start(t, r)
	if err := r.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	last = e.appendEvs(t, "acc-1", added{Key: "k", N: 32})
	if err := r.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	stop()
	// A restart that redelivers everything from the start changes nothing either.
	r2 := NewRunner(e.pool, dupStore{e.store}, e.logger, testProjector("ptest-a", nil))
	start(t, r2)
	last = e.appendEvs(t, "acc-1", added{Key: "k", N: 64})
	if err := r2.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	if got := totals(t, e.pool)["k@ptest-a"]; got != 127 {
		t.Errorf("total = %d, want 127 (each event once)", got)
	}
	if diff := cmp.Diff(wantLog(t, e, "ptest-a"), readLog(t, e.pool, "ptest-a")); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestFailingProjectorStopsWithoutSkipping(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	fail.Store(true)
	newRunner := func() *Runner {
		r := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-bad", &fail), testProjector("ptest-good", nil))
		r.MaxRetries, r.RetryInterval = 2, 5*time.Millisecond
		r.WaitTimeout = 300 * time.Millisecond
		return r
	}
	r := newRunner()
	reg := prometheus.NewRegistry()
	pgtest.Must(t, r.Register(reg), "register metrics")
	stop := start(t, r)

	first := e.appendEvs(t, "acc-1", added{Key: "k", N: 1})
	e.appendEvs(t, "acc-1", exploded{Key: "k"})
	last := e.appendEvs(t, "acc-1", added{Key: "k", N: 2})

	deadline := time.Now().Add(10 * time.Second)
	for !r.failed("ptest-bad") {
		if time.Now().After(deadline) {
			t.Fatal("projector did not fail")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The healthy projector is not held back, and WaitFor does not wait for the failed one.
	if err := r.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor with one failed projector: %v", err)
	}
	// Give the failed one time to (wrongly) skip ahead.
	time.Sleep(200 * time.Millisecond)
	if got := checkpoint(t, e.pool, "ptest-bad"); got != first {
		t.Errorf("failed projector checkpoint = %s, want %s (the event before the failing one)", got, first)
	}
	got := totals(t, e.pool)
	want := map[string]int{"k@ptest-bad": 1, "k@ptest-good": 1003}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("totals (-want +got): the failed handler's write must be rolled back with its checkpoint\n%s", diff)
	}

	sts, err := r.Status(t.Context())
	pgtest.Must(t, err, "status")
	byName := map[string]ProjectorStatus{}
	for _, s := range sts {
		byName[s.Name] = s
	}
	bad, good := byName["ptest-bad"], byName["ptest-good"]
	if bad.State != StateFailed || !strings.Contains(bad.LastError, "exploded on purpose") || bad.CaughtUp || bad.LagEvents != 2 || bad.LagSeconds <= 0 {
		t.Errorf("failed status = %+v", bad)
	}
	if good.State != StateRunning || !good.CaughtUp || good.LagEvents != 0 || good.LagSeconds != 0 || good.Position != last {
		t.Errorf("healthy status = %+v", good)
	}
	if ok, failed := r.Healthy(); ok || !cmp.Equal(failed, []string{"ptest-bad"}) {
		t.Errorf("Healthy = %v %v", ok, failed)
	}
	stored, err := StatusFromDB(t.Context(), e.pool)
	pgtest.Must(t, err, "status from db")
	if len(stored) != 2 || stored[0].Name != "ptest-bad" || stored[0].State != StateFailed || !strings.Contains(stored[0].LastError, "exploded") {
		t.Errorf("stored status = %+v", stored)
	}
	if n := metricValue(t, r, "litehost_projection_failures_total", "ptest-bad"); n != 1 {
		t.Errorf("failures = %v, want 1", n)
	}
	if got := gathered(t, reg, "litehost_projection_lag_events", "ptest-bad"); got != 2 {
		t.Errorf("lag gauge of the failed projector = %v, want 2", got)
	}
	if got := gathered(t, reg, "litehost_projection_failed", "ptest-bad"); got != 1 {
		t.Errorf("failed gauge = %v, want 1", got)
	}
	stop()

	// After a fix, a restart resumes at the failing event.
	fail.Store(false)
	r2 := newRunner()
	start(t, r2)
	waitRunning(t, r2)
	if err := r2.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor after restart: %v", err)
	}
	if got := totals(t, e.pool)["k@ptest-bad"]; got != 1003 {
		t.Errorf("total after fix = %d, want 1003", got)
	}
	stored, err = StatusFromDB(t.Context(), e.pool)
	pgtest.Must(t, err, "status from db")
	if stored[0].State != StateRunning || stored[0].LastError != "" {
		t.Errorf("stored status after restart = %+v", stored[0])
	}
}

func TestRestartResumesAfterCheckpoint(t *testing.T) {
	e := newEnv(t)
	r := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	stop := start(t, r)
	var last events.Position
	for i := range 10 {
		last = e.appendEvs(t, "acc-1", added{Key: "k", N: i})
	}
	if err := r.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	stop()
	for i := 10; i < 20; i++ {
		last = e.appendEvs(t, "acc-2", added{Key: "k", N: i})
	}
	r2 := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	start(t, r2)
	if err := r2.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor after restart: %v", err)
	}
	want := wantLog(t, e, "ptest-a")
	if len(want) != 20 {
		t.Fatalf("want log has %d rows", len(want))
	}
	if diff := cmp.Diff(want, readLog(t, e.pool, "ptest-a")); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestTwoInstancesDoNotDoubleApply(t *testing.T) {
	e := newEnv(t)
	a := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	b := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	start(t, a)
	start(t, b)
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		max events.Position
	)
	for w := range 4 {
		wg.Go(func() {
			for i := range 25 {
				p := e.appendEvs(t, fmt.Sprintf("acc-%d", w), added{Key: "k", N: 1})
				if i%5 == 0 {
					// Either instance may have applied it; both must see it.
					if err := b.WaitFor(t.Context(), p); err != nil {
						t.Errorf("WaitFor on b: %v", err)
					}
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
		if err := r.WaitFor(t.Context(), max); err != nil {
			t.Fatalf("WaitFor: %v", err)
		}
	}
	if got := totals(t, e.pool)["k@ptest-a"]; got != 100 {
		t.Errorf("total = %d, want 100", got)
	}
	if diff := cmp.Diff(wantLog(t, e, "ptest-a"), readLog(t, e.pool, "ptest-a")); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestWaitForSeesAnotherInstance(t *testing.T) {
	e := newEnv(t)
	worker := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	api := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil)) // never Run
	api.WaitTimeout = 3 * time.Second
	start(t, worker)
	pos := e.appendEvs(t, "acc-1", added{Key: "k", N: 1})
	if err := api.WaitFor(t.Context(), pos); err != nil {
		t.Fatalf("WaitFor on a non-running runner: %v", err)
	}
	if got := checkpoint(t, e.pool, "ptest-a"); got.Compare(pos) < 0 {
		t.Errorf("checkpoint %s before %s", got, pos)
	}
}

func TestRebuildReproducesReadModel(t *testing.T) {
	e := newEnv(t)
	r := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	stop := start(t, r)
	var last events.Position
	for i := range 1234 / 2 {
		last = e.appendEvs(t, fmt.Sprintf("acc-%d", i%7), added{Key: fmt.Sprint(i % 5), N: i}, ignored{})
	}
	if err := r.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	stop()
	wantTotals, wantRows := totals(t, e.pool), readLog(t, e.pool, "ptest-a")
	// Damage the read model: a rebuild must not depend on what is there.
	_, err := e.pool.Exec(t.Context(), `UPDATE ptest_totals SET total = -1`)
	pgtest.Must(t, err, "damage")

	var calls []int
	err = Rebuild(t.Context(), e.pool, e.store, e.logger, func(done, total int) {
		calls = append(calls, done)
		if total != -1 {
			t.Errorf("total = %d, want -1 (pgstore cannot count)", total)
		}
	}, testProjector("ptest-a", nil))
	pgtest.Must(t, err, "rebuild")
	if diff := cmp.Diff(wantTotals, totals(t, e.pool)); diff != "" {
		t.Errorf("totals (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRows, readLog(t, e.pool, "ptest-a")); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
	if want := []int{500, 1000, 1234}; !cmp.Equal(calls, want) {
		t.Errorf("progress calls = %v, want %v", calls, want)
	}
	if got := checkpoint(t, e.pool, "ptest-a"); got != last {
		t.Errorf("checkpoint = %s, want %s", got, last)
	}
	// A runner after the rebuild continues where it ended.
	r2 := NewRunner(e.pool, e.store, e.logger, testProjector("ptest-a", nil))
	start(t, r2)
	last = e.appendEvs(t, "acc-1", added{Key: "0", N: 1})
	if err := r2.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	if got, want := totals(t, e.pool)["0@ptest-a"], wantTotals["0@ptest-a"]+1; got != want {
		t.Errorf("total after rebuild and one more event = %d, want %d", got, want)
	}
}

func TestRebuildFailureKeepsCommittedBatches(t *testing.T) {
	e := newEnv(t)
	var fail atomic.Bool
	fail.Store(true)
	for i := range 600 {
		e.appendEvs(t, "acc-1", added{Key: "k", N: 1})
		_ = i
	}
	e.appendEvs(t, "acc-1", exploded{Key: "k"})
	err := Rebuild(t.Context(), e.pool, e.store, e.logger, nil, testProjector("ptest-a", &fail))
	if err == nil || !strings.Contains(err.Error(), "exploded on purpose") {
		t.Fatalf("Rebuild = %v, want the handler's error", err)
	}
	if got := totals(t, e.pool)["k@ptest-a"]; got != 500 {
		t.Errorf("total = %d, want 500 (the first batch committed, the failing one rolled back)", got)
	}
}

func TestValidateAndMigrate(t *testing.T) {
	e := newEnv(t)
	bad := []Projector{
		{Name: "Not Kebab", Handlers: testProjector("x", nil).Handlers},
		{Name: "no-handlers"},
		{Name: "bad-table", Tables: []string{"x; DROP TABLE y"}, Handlers: testProjector("x", nil).Handlers},
	}
	for _, p := range bad {
		r := NewRunner(e.pool, e.store, e.logger, p)
		if err := r.Run(t.Context()); err == nil {
			t.Errorf("Run(%q) = nil, want an error", p.Name)
		}
	}
	if err := Rebuild(t.Context(), e.pool, e.store, e.logger, nil); err == nil {
		t.Error("Rebuild without projectors = nil")
	}
	var n int
	err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM projections_goose_version WHERE version_id = 1`).Scan(&n)
	if err != nil || n != 1 {
		t.Errorf("version table: %d, %v", n, err)
	}
}

// gathered returns the value of metric name for projector from reg, failing if it is missing.
func gathered(t *testing.T, reg *prometheus.Registry, name, projector string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	pgtest.Must(t, err, "gather")
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "projector" && l.GetValue() == projector {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{projector=%q} not gathered", name, projector)
	return 0
}

func metricValue(t *testing.T, r *Runner, name, projector string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	pgtest.Must(t, r.Register(reg), "register")
	return gathered(t, reg, name, projector)
}

// waitRunning waits until r has reset its projectors' states and started the router: before
// that, a projector marked failed by the previous run is still excluded from WaitFor.
func waitRunning(t *testing.T, r *Runner) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		running := r.running
		r.mu.Unlock()
		if running {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("runner did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dropStore ends its first subscription with an error after three events, as a lost
// connection would; later subscriptions are the store's own.
type dropStore struct {
	*pgstore.Store
	subscriptions atomic.Int32
}

func (d *dropStore) SubscribeAll(ctx context.Context, from events.Position, f events.Filter) (events.Subscription, error) {
	inner, err := d.Store.SubscribeAll(ctx, from, f)
	if err != nil || d.subscriptions.Add(1) > 1 {
		return inner, err
	}
	s := &droppedSub{inner: inner, ch: make(chan events.RecordedEvent)}
	go func() {
		defer close(s.ch)
		n := 0
		for r := range inner.Events() {
			select {
			case s.ch <- r:
			case <-ctx.Done():
				return
			}
			if n++; n == 3 {
				return
			}
		}
	}()
	return s, nil
}

type droppedSub struct {
	inner events.Subscription
	ch    chan events.RecordedEvent
}

func (s *droppedSub) Events() <-chan events.RecordedEvent { return s.ch }
func (s *droppedSub) Err() error                          { return errors.New("connection lost") }
func (s *droppedSub) Close() error                        { return s.inner.Close() }

func TestResubscribesAfterDrop(t *testing.T) {
	e := newEnv(t)
	var last events.Position
	for i := range 10 {
		last = e.appendEvs(t, "acc-1", added{Key: "k", N: i})
	}
	store := &dropStore{Store: e.store}
	r := NewRunner(e.pool, store, e.logger, testProjector("ptest-a", nil))
	start(t, r)
	if err := r.WaitFor(t.Context(), last); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	if n := store.subscriptions.Load(); n < 2 {
		t.Errorf("subscriptions = %d, want a resubscription", n)
	}
	if diff := cmp.Diff(wantLog(t, e, "ptest-a"), readLog(t, e.pool, "ptest-a")); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}
