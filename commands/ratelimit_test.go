package commands_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/events/pgtest"
)

// migratedPools returns n pools on one fresh, migrated database: n API instances sharing it.
func migratedPools(t *testing.T, n int) []*pgxpool.Pool {
	t.Helper()
	dsn := pgtest.NewDatabase(t)
	pools := make([]*pgxpool.Pool, n)
	for i := range pools {
		p, err := pgxpool.New(t.Context(), dsn)
		pgtest.Must(t, err, "pool")
		t.Cleanup(p.Close)
		pools[i] = p
	}
	pgtest.Must(t, commands.Migrate(t.Context(), pools[0]), "migrate")
	return pools
}

func TestLimiterHoldsAcrossInstances(t *testing.T) {
	pools := migratedPools(t, 2)
	a, b := commands.NewLimiter(pools[0]), commands.NewLimiter(pools[1])
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

	var allowed atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			d, err := l.Take(t.Context(), "ip:203.0.113.7", 10, time.Hour, now)
			if err != nil {
				t.Errorf("take: %v", err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 10 {
		t.Fatalf("allowed %d of 30 concurrent requests over two instances, want 10", got)
	}

	d, err := b.Take(t.Context(), "ip:203.0.113.7", 10, time.Hour, now.Add(59*time.Minute))
	pgtest.Must(t, err, "take")
	if d.Allowed || d.Remaining != 0 || d.RetryAfter != time.Minute || !d.Reset.Equal(now.Add(time.Hour)) {
		t.Errorf("inside the window: %+v, want refused, retry after 1m, reset at %v", d, now.Add(time.Hour))
	}
	var he *commands.HTTPError
	if err := d.Err("slow down"); err == nil || !asHTTP(err, &he) || he.Status != http.StatusTooManyRequests || he.Code != "RATE_LIMITED" {
		t.Errorf("Err() = %v, want 429 RATE_LIMITED", err)
	}

	// The window is fixed: it ends one hour after its first request, and the next request starts a new one.
	d, err = a.Take(t.Context(), "ip:203.0.113.7", 10, time.Hour, now.Add(time.Hour))
	pgtest.Must(t, err, "take")
	if !d.Allowed || d.Remaining != 9 || !d.Reset.Equal(now.Add(2*time.Hour)) {
		t.Errorf("new window: %+v, want allowed with 9 left, reset at %v", d, now.Add(2*time.Hour))
	}
	if d.Err("x") != nil {
		t.Errorf("allowed decision has an error")
	}

	// Buckets are independent.
	d, err = a.Take(t.Context(), "ip:198.51.100.1", 10, time.Hour, now.Add(time.Minute))
	pgtest.Must(t, err, "take")
	if !d.Allowed || d.Remaining != 9 {
		t.Errorf("other bucket: %+v, want allowed with 9 left", d)
	}

	n, err := a.Prune(t.Context(), now)
	pgtest.Must(t, err, "prune")
	if n != 0 {
		t.Errorf("pruned %d buckets, want 0 (both windows started after the cutoff)", n)
	}
	n, err = a.Prune(t.Context(), now.Add(3*time.Hour))
	pgtest.Must(t, err, "prune")
	if n != 2 {
		t.Errorf("pruned %d buckets, want 2", n)
	}
}

func TestLimiterRejectsNonsense(t *testing.T) {
	l := commands.NewLimiter(migratedPools(t, 1)[0])
	if _, err := l.Take(t.Context(), "b", 0, time.Hour, time.Now()); err == nil {
		t.Error("limit 0 accepted")
	}
	if _, err := l.Take(t.Context(), "b", 1, 0, time.Now()); err == nil {
		t.Error("window 0 accepted")
	}
}

func TestLimiterRefundUncountsOnlyItsOwnWindow(t *testing.T) {
	l := commands.NewLimiter(migratedPools(t, 1)[0])
	now := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC) // sub-microsecond: the column keeps µs
	take := func(at time.Time) commands.Decision {
		t.Helper()
		d, err := l.Take(t.Context(), "fail:x", 2, time.Hour, at)
		pgtest.Must(t, err, "take")
		return d
	}
	d := take(now)
	pgtest.Must(t, l.Refund(t.Context(), "fail:x", d, time.Hour), "refund")
	take(now)
	if d := take(now); !d.Allowed || d.Remaining != 0 {
		t.Errorf("after a refund two more fit: %+v", d)
	}
	if d := take(now); d.Allowed {
		t.Errorf("third take allowed: %+v", d)
	}
	// A refund for an old window does not touch the new one.
	old := d
	fresh := take(now.Add(time.Hour))
	pgtest.Must(t, l.Refund(t.Context(), "fail:x", old, time.Hour), "refund old")
	if d := take(now.Add(time.Hour)); !d.Allowed || d.Remaining != fresh.Remaining-1 {
		t.Errorf("old refund changed the new window: %+v after %+v", d, fresh)
	}
}
