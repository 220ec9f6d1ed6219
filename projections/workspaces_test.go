package projections_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/projections"
)

// applyWith runs p's handler for ev in its own committed transaction without the checkpoint
// guard, as a redelivery would: it shows the handlers themselves are idempotent.
func applyWith(t *testing.T, pool *pgxpool.Pool, p projections.Projector, ev events.Event) {
	t.Helper()
	for _, h := range p.Handlers {
		target := h.NewEvent()
		if target.(events.Event).EventType() != ev.EventType() {
			continue
		}
		b, err := json.Marshal(ev)
		pgtest.Must(t, err, "marshal")
		pgtest.Must(t, json.Unmarshal(b, target), "unmarshal")
		pgtest.Must(t, pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
			return h.Handle(projections.WithTx(t.Context(), tx, projections.EventInfo{Type: ev.EventType()}), target)
		}), "apply %s", ev.EventType())
		return
	}
	t.Fatalf("%s has no handler for %s", p.Name, ev.EventType())
}

// dumpTables renders tables as sorted text rows.
func dumpTables(t *testing.T, pool *pgxpool.Pool, tables ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := pool.Query(t.Context(), `SELECT t::text FROM `+table+` t ORDER BY 1`)
		pgtest.Must(t, err, "dump %s", table)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		pgtest.Must(t, err, "dump %s", table)
		out[table] = lines
	}
	return out
}

// sameEventTwice applies each event once (it must change the tables) and again (it must not).
func sameEventTwice(t *testing.T, pool *pgxpool.Pool, p projections.Projector, history []events.Event) {
	t.Helper()
	for _, ev := range history {
		before := dumpTables(t, pool, p.Tables...)
		applyWith(t, pool, p, ev)
		once := dumpTables(t, pool, p.Tables...)
		if cmp.Equal(before, once) {
			t.Errorf("%s changed nothing", ev.EventType())
		}
		applyWith(t, pool, p, ev)
		if diff := cmp.Diff(once, dumpTables(t, pool, p.Tables...)); diff != "" {
			t.Errorf("%s applied twice changed the read model again (-once +twice):\n%s", ev.EventType(), diff)
		}
	}
}

func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	pgtest.Must(t, projections.Migrate(t.Context(), pool), "migrate projections")
	return pool
}

func TestWorkspacesSameEventTwiceChangesOnce(t *testing.T) {
	pool := migrated(t)
	at := time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)
	owner, ws, ws2, p1, p2 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	sameEventTwice(t, pool, projections.Workspaces(), []events.Event{
		events.WorkspaceCreated{WorkspaceID: ws, OwnerID: owner, Name: "Team", At: at},
		events.WorkspaceCreated{WorkspaceID: ws2, OwnerID: owner, Name: "Other", At: at},
		events.WorkspaceRenamed{WorkspaceID: ws, Name: "Team 2", PreviousName: "Team", At: at.Add(time.Minute)},
		events.ProjectCreated{ProjectID: p1, OwnerID: owner, WorkspaceID: ws, At: at},
		events.ProjectCreated{ProjectID: p2, OwnerID: owner, WorkspaceID: ws2, At: at},
		events.ProjectMoved{ProjectID: p2, FromWorkspaceID: ws2, ToWorkspaceID: ws, At: at},
		events.ProjectMoved{ProjectID: p2, FromWorkspaceID: ws, ToWorkspaceID: ws2, At: at},
		events.ProjectMoved{ProjectID: p1, FromWorkspaceID: ws, At: at},
		events.ProjectDeleted{ProjectID: p2, At: at},
		events.WorkspaceDeleted{WorkspaceID: ws, OwnerID: owner, At: at.Add(time.Hour)},
	})
	got := dumpTables(t, pool, "workspaces", "workspace_projects")
	if len(got["workspaces"]) != 1 || len(got["workspace_projects"]) != 0 {
		t.Errorf("final read model = %v, want one workspace and no memberships", got)
	}
}

func TestDomainsSameEventTwiceChangesOnce(t *testing.T) {
	pool := migrated(t)
	at := time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)
	owner, d1, d2, p1 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	verified := at.Add(time.Minute)
	sameEventTwice(t, pool, projections.Domains(), []events.Event{
		events.DomainAdded{DomainID: d1, OwnerID: owner, Hostname: "example.com", Status: "pending_verification", ChallengeToken: "t", At: at},
		events.DomainAdded{DomainID: d2, OwnerID: owner, Hostname: "example.org", Status: "active", VerifiedAt: &at, At: at},
		events.DomainStatusChanged{DomainID: d1, Hostname: "example.com", Status: "active", PreviousStatus: "pending_verification", VerifiedAt: &verified, At: verified},
		events.ProjectCreated{ProjectID: p1, OwnerID: owner, Settings: events.ProjectSettings{Title: "Site", Slug: "site", DomainID: d1}, At: at},
		events.ProjectSettingsUpdated{ProjectID: p1, Settings: events.ProjectSettings{Title: "Site 2", Slug: "site", DomainID: d1}, At: at.Add(time.Hour)},
		events.ProjectSettingsUpdated{ProjectID: p1, Settings: events.ProjectSettings{Title: "Site 2", Slug: "site", DomainID: d2}, At: at.Add(2 * time.Hour)},
		events.ProjectSettingsUpdated{ProjectID: p1, Settings: events.ProjectSettings{Title: "Site 2", Slug: "site"}, At: at.Add(3 * time.Hour)},
		events.ProjectSettingsUpdated{ProjectID: p1, Settings: events.ProjectSettings{Title: "Site 3", Slug: "site", DomainID: d2}, At: at.Add(4 * time.Hour)},
		events.ProjectDeleted{ProjectID: p1, At: at.Add(5 * time.Hour)},
		events.DomainRemoved{DomainID: d1, Hostname: "example.com", At: at.Add(6 * time.Hour)},
	})
}

func TestWorkspacesAndDomainsThroughRunner(t *testing.T) {
	pool, store := newAccountsDB(t)
	r := projections.NewRunner(pool, store, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), projections.Workspaces(), projections.Domains())
	r.WaitTimeout = 30 * time.Second // a cold start under -race can pass the 5 s default
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	at := time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)
	owner, ws, d, p := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	appendAll(t, store, "workspace-"+ws, []events.Event{events.WorkspaceCreated{WorkspaceID: ws, OwnerID: owner, Name: "Team", At: at}})
	appendAll(t, store, "domain-"+d, []events.Event{events.DomainAdded{DomainID: d, OwnerID: owner, Hostname: "example.com", Status: "active", At: at}})
	pos := appendAll(t, store, "project-"+p, []events.Event{events.ProjectCreated{ProjectID: p, OwnerID: owner, WorkspaceID: ws,
		Settings: events.ProjectSettings{Title: "Site", Slug: "site-" + p[:8], DomainID: d}, At: at}})
	pgtest.Must(t, r.WaitFor(t.Context(), pos), "wait")
	var wsCount, domCount int
	pgtest.Must(t, pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM workspace_projects WHERE workspace_id = $1),
		(SELECT count(*) FROM domain_projects WHERE domain_id = $2)`, ws, d).Scan(&wsCount, &domCount), "counts")
	if wsCount != 1 || domCount != 1 {
		t.Errorf("workspace projects = %d, domain projects = %d, want 1 and 1", wsCount, domCount)
	}
}

// testWriter sends log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
