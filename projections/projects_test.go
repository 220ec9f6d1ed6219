package projections

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
)

// applyTwice runs handler on e in two separate transactions, as a redelivery without the
// checkpoint guard would.
func applyTwice[E any](t *testing.T, pool *pgxpool.Pool, handler func(context.Context, *E) error, e E) {
	t.Helper()
	for range 2 {
		err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
			return handler(WithTx(t.Context(), tx, EventInfo{}), &e)
		})
		if err != nil {
			t.Fatalf("apply %T: %v", e, err)
		}
	}
}

type projectRow struct {
	Title, Slug, Status, Access string
	Owner                       *string
	Archived, Expired           bool
	Active                      string
	Size                        int64
}

func readProject(t *testing.T, pool *pgxpool.Pool, id string) (projectRow, bool) {
	t.Helper()
	var r projectRow
	err := pool.QueryRow(t.Context(), `SELECT title, slug, status, access, owner_id::text, archived_at IS NOT NULL,
		expired_at IS NOT NULL, active_deployment_id::text, size_bytes FROM projects WHERE id = $1`, id).
		Scan(&r.Title, &r.Slug, &r.Status, &r.Access, &r.Owner, &r.Archived, &r.Expired, &r.Active, &r.Size)
	if err == pgx.ErrNoRows {
		return r, false
	}
	if err != nil {
		t.Fatalf("read project: %v", err)
	}
	return r, true
}

func usage(t *testing.T, pool *pgxpool.Pool, owner string) (int, int64) {
	t.Helper()
	var n int
	var b int64
	err := pool.QueryRow(t.Context(), `SELECT active_projects, storage_bytes FROM account_usage WHERE account_id = $1`, owner).Scan(&n, &b)
	if err != nil && err != pgx.ErrNoRows {
		t.Fatalf("usage: %v", err)
	}
	return n, b
}

func deploymentCount(t *testing.T, pool *pgxpool.Pool, id string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM deployments WHERE project_id = $1`, id).Scan(&n); err != nil {
		t.Fatalf("count deployments: %v", err)
	}
	return n
}

func TestProjectsProjectorIsIdempotentPerEvent(t *testing.T) {
	pool := pgtest.NewPool(t)
	if err := Migrate(t.Context(), pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	at := time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)
	owner, pid, other := uuid.NewString(), uuid.NewString(), uuid.NewString()
	d1, d2 := uuid.NewString(), uuid.NewString()
	settings := events.ProjectSettings{Title: "Site", Slug: "site", Status: "public", Access: "public", AnalyticsEnabled: true}

	applyTwice(t, pool, projectCreated, events.ProjectCreated{ProjectID: pid, OwnerID: owner, Settings: settings,
		Deployment: events.Deployment{DeploymentID: d1, Version: 1, ManifestHash: "m1", Type: "html", IndexPath: "index.html", FileCount: 1, SizeBytes: 100}, At: at})
	applyTwice(t, pool, projectCreated, events.ProjectCreated{ProjectID: other, OwnerID: owner, Settings: events.ProjectSettings{Title: "B", Slug: "b", Status: "public", Access: "public"},
		Deployment: events.Deployment{DeploymentID: uuid.NewString(), Version: 1, ManifestHash: "m", Type: "files", FileCount: 1, SizeBytes: 7}, At: at})
	if n, b := usage(t, pool, owner); n != 2 || b != 107 {
		t.Fatalf("usage after creates = %d, %d; want 2, 107", n, b)
	}
	applyTwice(t, pool, projectVersionPushed, events.ProjectVersionPushed{ProjectID: pid,
		Deployment: events.Deployment{DeploymentID: d2, Version: 2, ManifestHash: "m2", Type: "html", IndexPath: "index.html", FileCount: 2, SizeBytes: 300}, At: at.Add(time.Minute)})
	if got := deploymentCount(t, pool, pid); got != 2 {
		t.Errorf("deployments = %d, want 2", got)
	}
	if n, b := usage(t, pool, owner); n != 2 || b != 307 {
		t.Errorf("usage after push = %d, %d; want 2, 307", n, b)
	}
	settings.Title, settings.Access = "Renamed", "private"
	applyTwice(t, pool, projectSettingsUpdated, events.ProjectSettingsUpdated{ProjectID: pid, Settings: settings, Changed: []string{"title", "access"}, At: at})
	applyTwice(t, pool, projectArchived, events.ProjectArchived{ProjectID: pid, At: at})
	want := projectRow{Title: "Renamed", Slug: "site", Status: "public", Access: "private", Owner: &owner, Archived: true, Active: d2, Size: 300}
	got, _ := readProject(t, pool, pid)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("project (-want +got):\n%s", diff)
	}
	if n, b := usage(t, pool, owner); n != 1 || b != 7 {
		t.Errorf("usage after archive = %d, %d; want 1, 7", n, b)
	}
	applyTwice(t, pool, projectUnarchived, events.ProjectUnarchived{ProjectID: pid, At: at})
	applyTwice(t, pool, projectExpired, events.ProjectExpired{ProjectID: other, At: at})
	if n, b := usage(t, pool, owner); n != 1 || b != 300 {
		t.Errorf("usage after unarchive and expiry = %d, %d; want 1, 300", n, b)
	}
	applyTwice(t, pool, projectDeleted, events.ProjectDeleted{ProjectID: pid, Slug: "site", At: at})
	if _, ok := readProject(t, pool, pid); ok {
		t.Errorf("deleted project still listed")
	}
	if got := deploymentCount(t, pool, pid); got != 0 {
		t.Errorf("deployments after delete = %d, want 0", got)
	}
	if n, b := usage(t, pool, owner); n != 0 || b != 0 {
		t.Errorf("usage after delete = %d, %d; want 0, 0", n, b)
	}
	// Events about a deleted project (a replay seeing them again) are no-ops, not failures.
	applyTwice(t, pool, projectArchived, events.ProjectArchived{ProjectID: pid, At: at})
}

func TestProjectsClaim(t *testing.T) {
	pool := pgtest.NewPool(t)
	if err := Migrate(t.Context(), pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	at := time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)
	owner, pid := uuid.NewString(), uuid.NewString()
	exp := at.Add(15 * time.Minute)
	applyTwice(t, pool, projectCreated, events.ProjectCreated{ProjectID: pid, Temporary: true, ClaimTokenHash: "h",
		Settings:   events.ProjectSettings{Title: "t", Slug: "bold-fox-12", Status: "public", Access: "public", ExpiresAt: &exp},
		Deployment: events.Deployment{DeploymentID: uuid.NewString(), Version: 1, ManifestHash: "m", Type: "html", FileCount: 1, SizeBytes: 5}, At: at})
	if got, _ := readProject(t, pool, pid); got.Owner != nil {
		t.Fatalf("temporary project has owner %v", *got.Owner)
	}
	applyTwice(t, pool, projectClaimed, events.ProjectClaimed{ProjectID: pid, OwnerID: owner, At: at})
	if got, _ := readProject(t, pool, pid); got.Owner == nil || *got.Owner != owner {
		t.Errorf("owner after claim = %v", got.Owner)
	}
	if n, b := usage(t, pool, owner); n != 1 || b != 5 {
		t.Errorf("usage after claim = %d, %d; want 1, 5", n, b)
	}
}
