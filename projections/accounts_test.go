package projections_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/projections"
)

var (
	acctID = uuid.NewString()
	sessID = uuid.NewString()
	// Key IDs in order, so the api_keys dump sorts them as issued.
	key1 = "00000000-0000-4000-8000-000000000001"
	key2 = "00000000-0000-4000-8000-000000000002"
	at0  = time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)
	free = events.PlanLimits{MaxProjects: 3, MaxStorageBytes: 52428800, MaxFilesPerProject: 50, MaxVisitorsPerMonth: 10000}
	pro  = events.PlanLimits{MaxProjects: 25, MaxStorageBytes: 5368709120, MaxFilesPerProject: 200, MaxVisitorsPerMonth: 100000}
)

// accountHistory is one account's life: sign-in, upgrade, refresh, revoke.
func accountHistory() []events.Event {
	return []events.Event{
		events.AccountRegistered{AccountID: acctID, Email: "alice@example.com", Plan: "free", Limits: free, At: at0},
		events.SessionStartedV2{AccountID: acctID, SessionID: sessID, KeyID: key1, ExpiresAt: at0.Add(7 * 24 * time.Hour),
			RefreshTokenID: uuid.NewString(), RefreshExpiresAt: at0.Add(30 * 24 * time.Hour), At: at0},
		events.PlanChanged{AccountID: acctID, Plan: "pro", PreviousPlan: "free", Limits: pro, At: at0.Add(time.Minute)},
		events.SessionRefreshedV2{AccountID: acctID, SessionID: sessID, PreviousKeyID: key1, PreviousRefreshTokenID: uuid.NewString(),
			KeyID: key2, ExpiresAt: at0.Add(time.Hour + 7*24*time.Hour), RefreshTokenID: uuid.NewString(),
			RefreshExpiresAt: at0.Add(time.Hour + 30*24*time.Hour), At: at0.Add(time.Hour)},
		events.SessionRevoked{AccountID: acctID, SessionID: sessID, Reason: events.RevokeReasonClient, At: at0.Add(2 * time.Hour)},
	}
}

func newAccountsDB(t *testing.T) (*pgxpool.Pool, *pgstore.Store) {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := pgstore.New(pool, slog.New(slog.DiscardHandler))
	pgtest.Must(t, store.Migrate(t.Context()), "migrate store")
	pgtest.Must(t, projections.Migrate(t.Context(), pool), "migrate projections")
	return pool, store
}

// dump renders the accounts read model as text rows, for before/after comparisons.
func dump(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	queries := map[string]string{
		"accounts": `SELECT concat_ws('|', id, email, phone, plan, max_projects, max_storage_bytes, max_files_per_project,
			max_visitors_per_month, created_at, updated_at) FROM accounts ORDER BY id`,
		"sessions": `SELECT concat_ws('|', session_id, account_id, started_at, refreshed_at, refresh_expires_at, revoked_at,
			revoke_reason) FROM sessions ORDER BY session_id`,
		"api_keys": `SELECT concat_ws('|', key_id, account_id, session_id, created_at, expires_at, revoked_at)
			FROM api_keys ORDER BY key_id`,
	}
	out := map[string][]string{}
	for table, q := range queries {
		rows, err := pool.Query(t.Context(), q)
		pgtest.Must(t, err, "dump %s", table)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		pgtest.Must(t, err, "dump %s", table)
		out[table] = lines
	}
	return out
}

// apply runs the accounts projector's handler for ev in its own committed transaction, the way
// ProjectionTx would, but without the checkpoint guard: it shows the handlers themselves are
// idempotent.
func apply(t *testing.T, pool *pgxpool.Pool, ev events.Event) {
	t.Helper()
	for _, h := range projections.Accounts().Handlers {
		if h.NewEvent().(events.Event).EventType() != ev.EventType() {
			continue
		}
		pgtest.Must(t, pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
			ctx := projections.WithTx(t.Context(), tx, projections.EventInfo{Type: ev.EventType()})
			return h.Handle(ctx, pointerTo(ev))
		}), "apply %s", ev.EventType())
		return
	}
	t.Fatalf("no handler for %s", ev.EventType())
}

// pointerTo returns a pointer to a copy of ev, the form cqrs handlers take.
func pointerTo(ev events.Event) any {
	switch e := ev.(type) {
	case events.AccountRegistered:
		return &e
	case events.PlanChanged:
		return &e
	case events.SessionStartedV2:
		return &e
	case events.SessionRefreshedV2:
		return &e
	case events.SessionRevoked:
		return &e
	}
	return nil
}

func TestAccountsSameEventTwiceChangesOnce(t *testing.T) {
	pool, _ := newAccountsDB(t)
	for _, ev := range accountHistory() {
		before := dump(t, pool)
		apply(t, pool, ev)
		once := dump(t, pool)
		if diff := cmp.Diff(before, once); diff == "" {
			t.Errorf("%s changed nothing", ev.EventType())
		}
		apply(t, pool, ev)
		if diff := cmp.Diff(once, dump(t, pool)); diff != "" {
			t.Errorf("%s applied twice changed the read model again (-once +twice):\n%s", ev.EventType(), diff)
		}
	}
}

type keyRow struct {
	KeyID     string
	SessionID string
	ExpiresAt time.Time
	RevokedAt *time.Time
}

func TestAccountsProjectorThroughRunner(t *testing.T) {
	pool, store := newAccountsDB(t)
	r := projections.NewRunner(pool, store, slog.New(slog.DiscardHandler), projections.Accounts())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	hist := accountHistory()
	// Up to the refresh: the old key is revoked, the new one live, the plan is pro.
	pos := appendAll(t, store, "account-"+acctID, hist[:4])
	pgtest.Must(t, r.WaitFor(t.Context(), pos), "wait for projection")

	var plan string
	var maxProjects int
	var maxStorage int64
	pgtest.Must(t, pool.QueryRow(t.Context(), `SELECT plan, max_projects, max_storage_bytes FROM accounts WHERE id = $1`, acctID).
		Scan(&plan, &maxProjects, &maxStorage), "read account")
	if plan != "pro" || maxProjects != 25 || maxStorage != 5368709120 {
		t.Errorf("account = %s %d %d, want pro 25 5368709120", plan, maxProjects, maxStorage)
	}
	keys := readKeys(t, pool)
	if len(keys) != 2 || keys[0].KeyID != key1 || keys[0].RevokedAt == nil || !keys[0].RevokedAt.Equal(at0.Add(time.Hour)) ||
		keys[1].KeyID != key2 || keys[1].RevokedAt != nil || !keys[1].ExpiresAt.Equal(at0.Add(time.Hour+7*24*time.Hour)) {
		t.Errorf("keys after refresh = %+v", keys)
	}

	pos = appendAll(t, store, "account-"+acctID, hist[4:])
	pgtest.Must(t, r.WaitFor(t.Context(), pos), "wait for projection")
	for _, k := range readKeys(t, pool) {
		if k.RevokedAt == nil {
			t.Errorf("key %s still live after the session was revoked", k.KeyID)
		}
	}
	var reason string
	pgtest.Must(t, pool.QueryRow(t.Context(), `SELECT revoke_reason FROM sessions WHERE session_id = $1`, sessID).Scan(&reason), "read session")
	if reason != events.RevokeReasonClient {
		t.Errorf("revoke_reason = %q", reason)
	}
}

func appendAll(t *testing.T, store *pgstore.Store, stream string, evs []events.Event) events.Position {
	t.Helper()
	data := make([]events.EventData, len(evs))
	for i, ev := range evs {
		d, err := events.Encode(ev, uuid.New(), events.Metadata{Actor: "system:test"})
		pgtest.Must(t, err, "encode")
		data[i] = d
	}
	res, err := store.Append(t.Context(), stream, events.Any(), data)
	pgtest.Must(t, err, "append")
	return res.Position
}

func readKeys(t *testing.T, pool *pgxpool.Pool) []keyRow {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT key_id::text, session_id::text, expires_at, revoked_at FROM api_keys ORDER BY key_id`)
	pgtest.Must(t, err, "read keys")
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[keyRow])
	pgtest.Must(t, err, "read keys")
	return out
}

// A session of the first credential format is not projected (its key was retired with the
// format), and its events do not stop the projector.
func TestAccountsSkipsFirstReleaseSessions(t *testing.T) {
	pool, store := newAccountsDB(t)
	r := projections.NewRunner(pool, store, slog.New(slog.DiscardHandler), projections.Accounts())
	pgtest.Background(t, r.Run)
	old := uuid.NewString()
	hist := accountHistory()
	evs := []events.Event{hist[0],
		events.SessionStarted{AccountID: acctID, SessionID: old, KeyHash: "h1", ExpiresAt: at0.Add(7 * 24 * time.Hour),
			RefreshHash: "h2", RefreshExpiresAt: at0.Add(30 * 24 * time.Hour), At: at0},
		events.SessionRefreshed{AccountID: acctID, SessionID: old, PreviousKeyHash: "h1", PreviousRefreshHash: "h2",
			KeyHash: "h3", ExpiresAt: at0.Add(7 * 24 * time.Hour), RefreshHash: "h4", RefreshExpiresAt: at0.Add(30 * 24 * time.Hour), At: at0},
		hist[1]}
	pos := appendAll(t, store, "account-"+acctID, evs)
	pgtest.Must(t, r.WaitFor(t.Context(), pos), "wait for projection")
	if ok, failed := r.Healthy(); !ok {
		t.Fatalf("failed projectors: %v", failed)
	}
	var sessions []string
	rows, err := pool.Query(t.Context(), `SELECT session_id::text FROM sessions`)
	pgtest.Must(t, err, "read sessions")
	sessions, err = pgx.CollectRows(rows, pgx.RowTo[string])
	pgtest.Must(t, err, "read sessions")
	if diff := cmp.Diff([]string{sessID}, sessions); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
	if keys := readKeys(t, pool); len(keys) != 1 || keys[0].KeyID != key1 {
		t.Errorf("keys = %+v, want only the v2 key", keys)
	}
}
