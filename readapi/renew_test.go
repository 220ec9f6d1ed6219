package readapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/readapi"
)

// gatedRenewer puts a fault in front of the real renewal: its first call waits for release and
// then fails, as a renewal would when the event store is unreachable.
type gatedRenewer struct {
	inner   readapi.KeyRenewer
	release chan struct{}
	calls   atomic.Int32
}

func (g *gatedRenewer) RenewKey(ctx context.Context, accountID, sessionID, keyID string) (time.Time, error) {
	if g.calls.Add(1) == 1 {
		<-g.release
		return time.Time{}, errors.New("event store unreachable")
	}
	return g.inner.RenewKey(ctx, accountID, sessionID, keyID)
}

// TestRenewalIsOffThePathAndRetried: a use that is due for a renewal is answered without waiting
// for it, and a renewal that failed is tried again at the next use.
func TestRenewalIsOffThePathAndRetried(t *testing.T) {
	e := newEnv(t)
	g := &gatedRenewer{inner: e.acc, release: make(chan struct{})}
	e.auth.WithRenewal(g, account.DefaultKeyIdleTTL, slog.New(slog.DiscardHandler))
	in := e.signIn(t, alice)
	stored := func() time.Time {
		var at time.Time
		pgtest.Must(t, e.pool.QueryRow(t.Context(), `SELECT expires_at FROM api_keys WHERE account_id = $1`, in.AccountID).Scan(&at), "read key")
		return at
	}
	before := stored()
	e.clock.advance(30 * 24 * time.Hour)

	// Answered while its renewal is still blocked.
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+in.APIKey, nil); a.Status != http.StatusOK {
		t.Fatalf("use on day 30 = %d %v", a.Status, a.Body)
	}
	pgtest.Eventually(t, func() (bool, string) { return g.calls.Load() == 1, "no renewal started" })
	// A second use while the first renewal runs starts none.
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+in.APIKey, nil); a.Status != http.StatusOK {
		t.Fatalf("second use = %d %v", a.Status, a.Body)
	}
	close(g.release)
	time.Sleep(100 * time.Millisecond)
	if g.calls.Load() != 1 || !stored().Equal(before) {
		t.Fatalf("calls = %d, expiry %s (was %s)", g.calls.Load(), stored(), before)
	}

	// The next use retries, and the key then expires 90 days after it.
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+in.APIKey, nil); a.Status != http.StatusOK {
		t.Fatalf("use after the failure = %d %v", a.Status, a.Body)
	}
	want := e.clock.now().Add(account.DefaultKeyIdleTTL)
	pgtest.Eventually(t, func() (bool, string) {
		return !stored().Before(want.Add(-time.Millisecond)), "the renewal was not retried"
	})
	if n := g.calls.Load(); n != 2 {
		t.Errorf("renewal calls = %d, want 2", n)
	}
}
