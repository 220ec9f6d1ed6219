package commands_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/projections"
)

// quotaLockClass mirrors commands.quotaLockClass, to find the gate's locks in pg_locks.
const quotaLockClass = 0x71756f74

// quotaInstance is a second API instance on e's database: its own pool, event store adapter,
// projections runner (running, as every instance's does) and gated Projects.
func quotaInstance(t *testing.T, e *projEnv) *commands.Projects {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	pool, err := pgxpool.New(t.Context(), e.pool.Config().ConnString())
	if err != nil {
		t.Fatalf("second pool: %v", err)
	}
	t.Cleanup(pool.Close)
	store := pgstore.New(pool, logger)
	runner := projections.NewRunner(pool, store, logger, projections.Projects(), projections.Accounts())
	pgtest.Background(t, runner.Run)
	keys, err := secret.New(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	return commands.NewProjects(store, commands.NewPGProjectLookup(pool), nil, keys, 0, e.clock.now, logger).
		WithQuotaGate(commands.NewPGQuotaGate(pool, runner))
}

// smallUpload is an upload already in the blob store (no Store phase), so only the commands race.
func smallUpload() commands.Upload {
	return commands.Upload{ManifestHash: strings.Repeat("a", 64), Type: project.TypeHTML, IndexPath: "index.html",
		FileCount: 1, SizeBytes: 10}
}

func (e *projEnv) create(t *testing.T, p *commands.Projects, acc string) string {
	t.Helper()
	res, err := p.Create(t.Context(), uuid.New(), acc, commands.CreateInput{Title: "Site", Upload: smallUpload()})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	// Setup must not rely on the gate's release to have projected it.
	if err := e.runner.WaitFor(t.Context(), res.Position); err != nil {
		t.Fatalf("wait for create: %v", err)
	}
	return res.ProjectID
}

// createOp is one racing create of a small project for acc through p.
func createOp(p *commands.Projects, acc string) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := p.Create(ctx, uuid.New(), acc, commands.CreateInput{Title: "Site", Upload: smallUpload()})
		return err
	}
}

// race runs every op at once and returns how many succeeded; every failure must be the
// project limit.
func race(t *testing.T, ops []func(ctx context.Context) error) int {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Go(func() {
			<-start
			errs[i] = op(t.Context())
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, project.ErrProjectLimit):
			t.Errorf("op %d: %v, want nil or %v", i, err, project.ErrProjectLimit)
		}
	}
	return ok
}

// wantActive checks that the account has want active projects in the log (every project stream
// the account owns, replayed), in the projects read model and in account_usage.
func (e *projEnv) wantActive(t *testing.T, acc string, want int64) {
	t.Helper()
	ctx := t.Context()
	head, err := e.store.ReadAll(ctx, events.Position{}, 100000)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	seen := map[string]bool{}
	var inLog int64
	for _, r := range head {
		if !strings.HasPrefix(r.Stream, "project-") || seen[r.Stream] {
			continue
		}
		seen[r.Stream] = true
		st, err := commands.Load(ctx, e.store, r.Stream)
		if err != nil {
			t.Fatalf("load %s: %v", r.Stream, err)
		}
		s := project.Replay(st.Events)
		if s.OwnerID == acc && s.Exists && !s.Deleted && !s.Archived && !s.Expired && !s.Temporary {
			inLog++
		}
		if err := e.runner.WaitFor(ctx, r.Position); err != nil {
			t.Fatalf("wait for %s: %v", r.Stream, err)
		}
	}
	if len(head) > 0 {
		if err := e.runner.WaitFor(ctx, head[len(head)-1].Position); err != nil {
			t.Fatalf("wait for the log head: %v", err)
		}
	}
	u, err := commands.NewPGProjectLookup(e.pool).Usage(ctx, acc)
	if err != nil {
		t.Fatalf("usage: %v", err)
	}
	var usageRow int64
	if err := e.pool.QueryRow(ctx, `SELECT active_projects FROM account_usage WHERE account_id = $1`, acc).Scan(&usageRow); err != nil {
		t.Fatalf("account_usage: %v", err)
	}
	if inLog != want || u.ActiveProjects != want || usageRow != want {
		t.Errorf("active projects: log %d, projects read model %d, account_usage %d; want %d", inLog, u.ActiveProjects, usageRow, want)
	}
}

// wantNoQuotaLocks checks that no session of this database still holds or waits for a quota lock.
func (e *projEnv) wantNoQuotaLocks(t *testing.T) {
	t.Helper()
	var n int
	err := e.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $1 AND objsubid = 2
		  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, quotaLockClass).Scan(&n)
	if err != nil {
		t.Fatalf("pg_locks: %v", err)
	}
	if n != 0 {
		t.Errorf("%d quota locks left in pg_locks", n)
	}
}

func TestQuotaConcurrentCreates(t *testing.T) {
	e := newProjEnv(t)
	acc := e.account(t, "free") // 3 projects
	e.create(t, e.projects, acc)
	e.create(t, e.projects, acc)
	ops := make([]func(context.Context) error, 8)
	for i := range ops {
		ops[i] = createOp(e.projects, acc)
	}
	if ok := race(t, ops); ok != 1 {
		t.Errorf("%d of 8 concurrent creates at limit-1 succeeded, want 1", ok)
	}
	e.wantActive(t, acc, 3)
	e.wantNoQuotaLocks(t)
}

func TestQuotaConcurrentCreatesAcrossInstances(t *testing.T) {
	e := newProjEnv(t)
	other := quotaInstance(t, e)
	acc := e.account(t, "free")
	e.create(t, e.projects, acc)
	e.create(t, other, acc)
	ops := make([]func(context.Context) error, 8)
	for i := range ops {
		p := e.projects
		if i%2 == 1 {
			p = other
		}
		ops[i] = createOp(p, acc)
	}
	if ok := race(t, ops); ok != 1 {
		t.Errorf("%d of 8 concurrent creates on two instances succeeded, want 1", ok)
	}
	e.wantActive(t, acc, 3)
	e.wantNoQuotaLocks(t)
}

func TestQuotaUnarchiveAndClaimRaceCreates(t *testing.T) {
	e := newProjEnv(t)
	other := quotaInstance(t, e)
	acc := e.account(t, "starter") // 10 projects; unarchive is not on the free plan
	var last string
	for range 10 {
		last = e.create(t, e.projects, acc)
	}
	pos, err := e.projects.Archive(t.Context(), uuid.New(), acc, last)
	if err != nil {
		t.Fatalf("archive: %v", err)
	}
	if err := e.runner.WaitFor(t.Context(), pos); err != nil {
		t.Fatalf("wait for archive: %v", err)
	}
	temp, err := e.projects.CreateTemp(t.Context(), uuid.New(), smallUpload())
	if err != nil {
		t.Fatalf("create temp: %v", err)
	}
	if err := e.runner.WaitFor(t.Context(), temp.Position); err != nil {
		t.Fatalf("wait for temp: %v", err)
	}
	// 9 active: an unarchive, a claim and three creates on both instances compete for the last slot.
	ops := []func(context.Context) error{
		func(ctx context.Context) error {
			_, err := other.Unarchive(ctx, uuid.New(), acc, last)
			return err
		},
		func(ctx context.Context) error {
			_, err := e.projects.Claim(ctx, uuid.New(), acc, temp.ClaimToken)
			return err
		},
	}
	for i := range 3 {
		p := e.projects
		if i == 1 {
			p = other
		}
		ops = append(ops, createOp(p, acc))
	}
	if ok := race(t, ops); ok != 1 {
		t.Errorf("%d of an unarchive, a claim and 3 creates at limit-1 succeeded, want 1", ok)
	}
	e.wantActive(t, acc, 10)
	e.wantNoQuotaLocks(t)
}

// TestQuotaGateReleasesOnPanic: a panic while the turn is held (here in the upload's store
// phase) still unlocks, so the account is not stuck.
func TestQuotaGateReleasesOnPanic(t *testing.T) {
	e := newProjEnv(t)
	acc := e.account(t, "free")
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("store phase did not panic")
			}
		}()
		up := smallUpload()
		up.Store = func(context.Context) error { panic("disk on fire") }
		_, _ = e.projects.Create(t.Context(), uuid.New(), acc, commands.CreateInput{Title: "Site", Upload: up})
	}()
	e.wantNoQuotaLocks(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := e.projects.Create(ctx, uuid.New(), acc, commands.CreateInput{Title: "Site", Upload: smallUpload()}); err != nil {
		t.Fatalf("create after the panic: %v", err)
	}
	// A refused command releases too.
	for range 3 {
		_, err := e.projects.Create(ctx, uuid.New(), acc, commands.CreateInput{Title: "Site", Upload: smallUpload()})
		if err != nil && !errors.Is(err, project.ErrProjectLimit) {
			t.Fatalf("create: %v", err)
		}
	}
	e.wantNoQuotaLocks(t)
}

// gateWaiter is a Waiter the test controls, to see what release waits for.
type gateWaiter struct {
	calls chan events.Position
	reply chan error
}

func (w *gateWaiter) WaitFor(ctx context.Context, pos events.Position) error {
	w.calls <- pos
	select {
	case err := <-w.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestPGQuotaGate(t *testing.T) {
	e := newProjEnv(t)
	ctx := t.Context()
	w := &gateWaiter{calls: make(chan events.Position, 1), reply: make(chan error, 1)}
	g := commands.NewPGQuotaGate(e.pool, w)
	pool2, err := pgxpool.New(ctx, e.pool.Config().ConnString())
	if err != nil {
		t.Fatalf("second pool: %v", err)
	}
	t.Cleanup(pool2.Close)
	g2 := commands.NewPGQuotaGate(pool2, nil) // another instance
	a, b := uuid.NewString(), uuid.NewString()

	release, err := g.Hold(ctx, a)
	if err != nil {
		t.Fatalf("hold a: %v", err)
	}
	// Another account is not blocked, in this process or another.
	for _, gg := range []*commands.PGQuotaGate{g, g2} {
		rb, err := gg.Hold(ctx, b)
		if err != nil {
			t.Fatalf("hold b: %v", err)
		}
		rb(ctx, events.Position{})
	}
	// The same account is, and a waiter gives up when its ctx ends, in this process (the
	// in-memory turn) and in another (pg_advisory_lock cancelled).
	for name, gg := range map[string]*commands.PGQuotaGate{"same process": g, "other instance": g2} {
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		start := time.Now()
		_, err := gg.Hold(short, a)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
			t.Errorf("%s: hold of a held account = %v after %v, want the ctx deadline", name, err, time.Since(start))
		}
	}
	// LockWait past: a retryable 429.
	g2.LockWait = 200 * time.Millisecond
	_, err = g2.Hold(ctx, a)
	var httpErr *commands.HTTPError
	if !errors.As(err, &httpErr) || httpErr.Status != 429 || httpErr.Code != "RATE_LIMITED" || httpErr.RetryAfter <= 0 {
		t.Errorf("hold past LockWait = %v, want 429 RATE_LIMITED with a Retry-After", err)
	}
	g2.LockWait = 0

	// The next holder on the other instance gets its turn only after release has waited for
	// the read models to reach the holder's position.
	pos := events.Position{Commit: 42, Prepare: 42}
	got := make(chan error, 1)
	go func() {
		r, err := g2.Hold(ctx, a)
		if err == nil {
			r(ctx, events.Position{})
		}
		got <- err
	}()
	released := make(chan struct{})
	go func() {
		release(ctx, pos)
		close(released)
	}()
	select {
	case p := <-w.calls:
		if p != pos {
			t.Errorf("release waited for %v, want %v", p, pos)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("release did not wait for the read models")
	}
	select {
	case err := <-got:
		t.Fatalf("other instance got the turn (%v) before the read models caught up", err)
	case <-time.After(300 * time.Millisecond):
	}
	// A failed wait still releases.
	w.reply <- errors.New("projections: wait for read models timed out")
	<-released
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("other instance hold: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("other instance never got the turn")
	}
	release(ctx, pos) // a second call is a no-op
	if len(w.calls) != 0 {
		t.Error("a second release waited again")
	}

	// A wait that never ends is bounded by SettleWait.
	g.SettleWait = 200 * time.Millisecond
	r, err := g.Hold(ctx, a)
	if err != nil {
		t.Fatalf("hold: %v", err)
	}
	start := time.Now()
	r(ctx, pos)
	<-w.calls
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("release took %v with SettleWait 200ms", d)
	}
	// A cancelled caller still releases.
	cctx, cancel := context.WithCancel(ctx)
	r, err = g.Hold(cctx, a)
	if err != nil {
		t.Fatalf("hold: %v", err)
	}
	cancel()
	r(cctx, events.Position{})
	e.wantNoQuotaLocks(t)

	// Many holders of different accounts do not starve their own queries of pool connections.
	var wg sync.WaitGroup
	for i := range 3 * int(e.pool.Config().MaxConns) {
		wg.Go(func() {
			hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			r, err := g2.Hold(hctx, fmt.Sprint("acc-", i%5))
			if err != nil {
				t.Errorf("hold %d: %v", i, err)
				return
			}
			defer r(hctx, events.Position{})
			if _, err := pool2.Exec(hctx, `SELECT pg_sleep(0.01)`); err != nil {
				t.Errorf("query while holding %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	e.wantNoQuotaLocks(t)
}
