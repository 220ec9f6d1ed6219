package project_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/events"
)

var (
	now     = time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)
	earlier = now.Add(-time.Hour)
	paid    = project.Plan{Paid: true, MaxProjects: 10, MaxStorageBytes: 1000, MaxFiles: 200}
	free    = project.Plan{MaxProjects: 3, MaxStorageBytes: 500, MaxFiles: 50}
	empty   = project.Usage{}
)

func ptr[T any](v T) *T { return &v }

func dep(id string, v int, size int64) events.Deployment {
	return events.Deployment{DeploymentID: id, Version: v, ManifestHash: "h-" + id, Type: "html", IndexPath: "index.html", FileCount: 1, SizeBytes: size}
}

func settings() events.ProjectSettings {
	return events.ProjectSettings{Title: "My Site", Slug: "my-site", Status: "public", Access: "public", AnalyticsEnabled: true}
}

func created(owner string) events.ProjectCreated {
	return events.ProjectCreated{ProjectID: "p1", OwnerID: owner, Settings: settings(), Deployment: dep("d1", 1, 100), At: earlier}
}

func tempCreated(expires time.Time) events.ProjectCreated {
	s := settings()
	s.ExpiresAt = &expires
	return events.ProjectCreated{ProjectID: "p1", Temporary: true, ClaimTokenHash: "th", Settings: s, Deployment: dep("d1", 1, 100), At: earlier}
}

func pushed(id string, v int, size int64) events.ProjectVersionPushed {
	return events.ProjectVersionPushed{ProjectID: "p1", Deployment: dep(id, v, size), At: earlier}
}

// sameErr matches rule errors with errors.Is and any domain.Invalid with errors.As (a map is
// not comparable).
func sameErr(err, want error) bool {
	if _, ok := want.(domain.Invalid); ok {
		var inv domain.Invalid
		return errors.As(err, &inv)
	}
	return errors.Is(err, want)
}

type decision func(project.State) ([]events.Event, error)

type scenario struct {
	name    string
	given   []events.Event
	when    decision
	want    []events.Event
	wantErr error
}

func run(t *testing.T, tests []scenario) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.when(project.Replay(tt.given))
			if !sameErr(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	cmd := project.Create{ProjectID: "p1", OwnerID: "a1", Title: "My Site", Slug: "my-site", Deployment: dep("d1", 0, 100)}
	create := func(c project.Create, plan project.Plan, u project.Usage) decision {
		return func(s project.State) ([]events.Event, error) { return c.Decide(s, plan, u, now) }
	}
	withExpiry := cmd
	withExpiry.ExpiresIn = "1h"
	expSettings := settings()
	expSettings.ExpiresAt = ptr(now.Add(time.Hour))
	pw := cmd
	pw.Access = "password"
	noPW := pw
	pw.PasswordHash = "bcrypt-hash"
	pwSettings := settings()
	pwSettings.Access, pwSettings.PasswordHash = "password", "bcrypt-hash"
	bad := cmd
	bad.Title, bad.Access, bad.ExpiresIn = "", "secret", "2d"
	created := func(s events.ProjectSettings) []events.Event {
		return []events.Event{events.ProjectCreated{ProjectID: "p1", OwnerID: "a1", Settings: s, Deployment: dep("d1", 1, 100), At: now}}
	}
	run(t, []scenario{
		{"version 1", nil, create(cmd, free, empty), created(settings()), nil},
		{"expiresIn", nil, create(withExpiry, free, empty), created(expSettings), nil},
		{"password hash stored", nil, create(pw, free, empty), created(pwSettings), nil},
		{"password missing", nil, create(noPW, free, empty), nil, domain.Invalid{}},
		{"invalid fields", nil, create(bad, free, empty), nil, domain.Invalid{}},
		{"count at limit", nil, create(cmd, free, project.Usage{ActiveProjects: 3}), nil, project.ErrProjectLimit},
		{"storage would exceed", nil, create(cmd, free, project.Usage{StorageBytes: 401}), nil, project.ErrStorageLimit},
		{"storage exactly full after", nil, create(cmd, free, project.Usage{StorageBytes: 400}), created(settings()), nil},
		{"unlimited", nil, create(cmd, project.Plan{Paid: true, MaxProjects: -1, MaxStorageBytes: -1, MaxFiles: -1}, project.Usage{ActiveProjects: 1e6, StorageBytes: 1e12}), created(settings()), nil},
		{"exists", []events.Event{events.ProjectCreated{ProjectID: "p1"}}, create(cmd, free, empty), nil, project.ErrExists},
	})
	var inv domain.Invalid
	_, err := bad.Decide(project.State{}, free, empty, now)
	if !errors.As(err, &inv) || len(inv) != 3 {
		t.Errorf("invalid fields = %v, want title, access and expiresIn", err)
	}
}

func TestPushAndRollback(t *testing.T) {
	push := func(account string, plan project.Plan, u project.Usage, d events.Deployment) decision {
		return func(s project.State) ([]events.Event, error) { return project.Push(s, account, plan, u, d, now) }
	}
	rollback := func(target string) decision {
		return func(s project.State) ([]events.Event, error) {
			return project.Rollback(s, "a1", paid, project.Usage{StorageBytes: 300}, target, "d9", now)
		}
	}
	base := []events.Event{created("a1"), pushed("d2", 2, 300)}
	rolledBack := dep("d9", 3, 100)
	rolledBack.ManifestHash, rolledBack.RollbackOf = "h-d1", "d1"
	run(t, []scenario{
		{"v2", []events.Event{created("a1")}, push("a1", paid, project.Usage{StorageBytes: 100}, dep("d2", 0, 300)),
			[]events.Event{events.ProjectVersionPushed{ProjectID: "p1", Deployment: dep("d2", 2, 300), At: now}}, nil},
		{"free tier", []events.Event{created("a1")}, push("a1", free, empty, dep("d2", 0, 1)), nil, project.ErrFreeTier},
		{"other account", []events.Event{created("a1")}, push("a2", paid, empty, dep("d2", 0, 1)), nil, project.ErrNotFound},
		{"missing", nil, push("a1", paid, empty, dep("d2", 0, 1)), nil, project.ErrNotFound},
		{"deleted", []events.Event{created("a1"), events.ProjectDeleted{ProjectID: "p1"}}, push("a1", paid, empty, dep("d2", 0, 1)), nil, project.ErrNotFound},
		{"archived", []events.Event{created("a1"), events.ProjectArchived{ProjectID: "p1"}}, push("a1", paid, empty, dep("d2", 0, 1)), nil, project.ErrArchived},
		{"expired", []events.Event{created("a1"), events.ProjectExpired{ProjectID: "p1"}}, push("a1", paid, empty, dep("d2", 0, 1)), nil, project.ErrExpired},
		// 900 used of which 100 is this project's live version: 900-100+201 > 1000.
		{"storage would exceed", []events.Event{created("a1")}, push("a1", paid, project.Usage{StorageBytes: 900}, dep("d2", 0, 201)), nil, project.ErrStorageLimit},
		{"storage replaces", []events.Event{created("a1")}, push("a1", paid, project.Usage{StorageBytes: 900}, dep("d2", 0, 200)),
			[]events.Event{events.ProjectVersionPushed{ProjectID: "p1", Deployment: dep("d2", 2, 200), At: now}}, nil},
		{"rollback", base, rollback("d1"), []events.Event{events.ProjectVersionPushed{ProjectID: "p1", Deployment: rolledBack, At: now}}, nil},
		{"rollback to active", base, rollback("d2"), nil, nil},
		{"rollback unknown", base, rollback("dx"), nil, domain.Invalid{}},
	})
	s := project.Replay(append(base, events.ProjectVersionPushed{ProjectID: "p1", Deployment: rolledBack}))
	if s.ActiveID != "d9" || s.LastVersion() != 3 || len(s.Deployments) != 3 {
		t.Errorf("after rollback: active %s, version %d, %d deployments", s.ActiveID, s.LastVersion(), len(s.Deployments))
	}
}

func TestArchiveUnarchive(t *testing.T) {
	archive := func(plan project.Plan) decision {
		return func(s project.State) ([]events.Event, error) { return project.Archive(s, "a1", plan, now) }
	}
	unarchive := func(plan project.Plan, u project.Usage) decision {
		return func(s project.State) ([]events.Event, error) { return project.Unarchive(s, "a1", plan, u, now) }
	}
	archived := []events.Event{created("a1"), events.ProjectArchived{ProjectID: "p1"}}
	run(t, []scenario{
		{"archive", []events.Event{created("a1")}, archive(paid), []events.Event{events.ProjectArchived{ProjectID: "p1", At: now}}, nil},
		{"archive again", archived, archive(paid), nil, nil},
		{"archive free", []events.Event{created("a1")}, archive(free), nil, project.ErrFreeTier},
		{"unarchive", archived, unarchive(paid, empty), []events.Event{events.ProjectUnarchived{ProjectID: "p1", At: now}}, nil},
		{"unarchive active", []events.Event{created("a1")}, unarchive(paid, project.Usage{ActiveProjects: 99}), nil, nil},
		{"unarchive free", archived, unarchive(free, empty), nil, project.ErrFreeTier},
		{"unarchive count at limit", archived, unarchive(paid, project.Usage{ActiveProjects: 10}), nil, project.ErrProjectLimit},
		{"unarchive storage", archived, unarchive(paid, project.Usage{StorageBytes: 901}), nil, project.ErrStorageLimit},
	})
}

func TestClaimAndExpire(t *testing.T) {
	expires := now.Add(10 * time.Minute)
	claim := func(hash string, plan project.Plan, u project.Usage) decision {
		return func(s project.State) ([]events.Event, error) {
			return project.Claim(s, s.ClaimTokenMatches(hash), "a1", plan, u, now)
		}
	}
	expire := func(at time.Time) decision {
		return func(s project.State) ([]events.Event, error) { return project.Expire(s, at), nil }
	}
	temp := []events.Event{tempCreated(expires)}
	claimed := append(temp, events.ProjectClaimed{ProjectID: "p1", OwnerID: "a0"})
	run(t, []scenario{
		{"free claim", temp, claim("th", free, empty), []events.Event{events.ProjectClaimed{ProjectID: "p1", OwnerID: "a1", ExpiresAt: ptr(now.Add(7 * 24 * time.Hour)), At: now}}, nil},
		{"paid claim", temp, claim("th", paid, empty), []events.Event{events.ProjectClaimed{ProjectID: "p1", OwnerID: "a1", At: now}}, nil},
		{"wrong token", temp, claim("other", paid, empty), nil, project.ErrNotFound},
		{"already claimed", claimed, claim("th", paid, empty), nil, project.ErrAlreadyClaimed},
		{"expired by time", []events.Event{tempCreated(now)}, claim("th", paid, empty), nil, project.ErrNotFound},
		{"purged", append(temp, events.ProjectExpired{ProjectID: "p1"}, events.ProjectDeleted{ProjectID: "p1"}), claim("th", paid, empty), nil, project.ErrNotFound},
		{"claim count at limit", temp, claim("th", free, project.Usage{ActiveProjects: 3}), nil, project.ErrProjectLimit},
		{"claim storage", temp, claim("th", free, project.Usage{StorageBytes: 450}), nil, project.ErrStorageLimit},
		{"not due", temp, expire(expires.Add(-time.Second)), nil, nil},
		{"temp purged", temp, expire(expires), []events.Event{
			events.ProjectExpired{ProjectID: "p1", ExpiresAt: expires, At: expires},
			events.ProjectDeleted{ProjectID: "p1", Slug: "my-site", At: expires}}, nil},
		{"owned expires", []events.Event{created("a1"), events.ProjectSettingsUpdated{ProjectID: "p1", Settings: func() events.ProjectSettings {
			s := settings()
			s.ExpiresAt = &expires
			return s
		}()}}, expire(expires.Add(time.Second)), []events.Event{events.ProjectExpired{ProjectID: "p1", ExpiresAt: expires, At: expires.Add(time.Second)}}, nil},
		{"already expired", append(temp, events.ProjectExpired{ProjectID: "p1"}), expire(expires), nil, nil},
		{"no expiry", []events.Event{created("a1")}, expire(expires), nil, nil},
	})
}

func TestDeleteMoveHistory(t *testing.T) {
	del := func(account string) decision {
		return func(s project.State) ([]events.Event, error) { return project.Delete(s, account, now) }
	}
	run(t, []scenario{
		{"delete free", []events.Event{created("a1")}, del("a1"), []events.Event{events.ProjectDeleted{ProjectID: "p1", Slug: "my-site", At: now}}, nil},
		{"delete other", []events.Event{created("a1")}, del("a2"), nil, project.ErrNotFound},
		{"delete twice", []events.Event{created("a1"), events.ProjectDeleted{ProjectID: "p1"}}, del("a1"), nil, project.ErrNotFound},
		{"delete temp", []events.Event{tempCreated(now.Add(time.Minute))}, del(""), nil, project.ErrNotFound},
		{"move", []events.Event{created("a1")}, func(s project.State) ([]events.Event, error) { return project.Move(s, "a1", "w1", now) },
			[]events.Event{events.ProjectMoved{ProjectID: "p1", ToWorkspaceID: "w1", At: now}}, nil},
		{"move nowhere", []events.Event{created("a1")}, func(s project.State) ([]events.Event, error) { return project.Move(s, "a1", "", now) }, nil, nil},
	})
	s := project.Replay([]events.Event{created("a1")})
	if err := project.CheckHistory(s, "a1", free); !errors.Is(err, project.ErrFreeTier) {
		t.Errorf("history on free = %v", err)
	}
	if err := project.CheckHistory(s, "a2", paid); !errors.Is(err, project.ErrNotFound) {
		t.Errorf("history of other = %v", err)
	}
	if err := project.CheckHistory(s, "a1", paid); err != nil {
		t.Errorf("history = %v", err)
	}
}

func TestUpdateSettings(t *testing.T) {
	patch := func(plan project.Plan, p project.Patch) decision {
		return func(s project.State) ([]events.Event, error) { return project.UpdateSettings(s, "a1", plan, p, now) }
	}
	given := []events.Event{created("a1")}
	all := settings()
	all.Title, all.Slug, all.DomainID, all.Status, all.Access, all.PasswordHash = "New", "new-slug", "dom1", "private", "password", "hash"
	all.NoIndex, all.DisableDownloads, all.PageTitle, all.MetaDescription, all.AnalyticsEnabled = true, true, ptr("Tab"), ptr("Desc"), false
	all.ExpiresAt = ptr(now.Add(24 * time.Hour))
	full := project.Patch{
		Title: ptr("New"), Slug: ptr("new-slug"), DomainID: project.Nullable[string]{Set: true, Value: ptr("dom1")},
		Status: ptr("private"), Access: ptr("password"), Password: project.Nullable[string]{Set: true, Value: ptr("hash")},
		NoIndex: ptr(true), DisableDownloads: ptr(true), PageTitle: project.Nullable[string]{Set: true, Value: ptr("Tab")},
		MetaDescription: project.Nullable[string]{Set: true, Value: ptr("Desc")}, ExpiresIn: ptr("24h"),
		AnalyticsEnabled: ptr(false), WorkspaceID: project.Nullable[string]{Set: true, Value: ptr("w1")},
	}
	withPW := append(given, events.ProjectSettingsUpdated{ProjectID: "p1", Settings: all})
	cleared := all
	cleared.Access, cleared.PasswordHash, cleared.PageTitle, cleared.ExpiresAt = "public", "", nil, nil
	run(t, []scenario{
		{"every field", given, patch(paid, full), []events.Event{
			events.ProjectSettingsUpdated{ProjectID: "p1", Settings: all, At: now, Changed: []string{
				"title", "slug", "domainId", "status", "access", "password", "noIndex", "disableDownloads",
				"pageTitle", "metaDescription", "analyticsEnabled", "expiresIn"}},
			events.ProjectMoved{ProjectID: "p1", ToWorkspaceID: "w1", At: now}}, nil},
		{"nothing changes", given, patch(paid, project.Patch{Title: ptr("My Site"), PageTitle: project.Nullable[string]{Set: true}}), nil, nil},
		{"clear with null and none", withPW, patch(paid, project.Patch{Access: ptr("public"), PageTitle: project.Nullable[string]{Set: true}, ExpiresIn: ptr("none")}),
			[]events.Event{events.ProjectSettingsUpdated{ProjectID: "p1", Settings: cleared, At: now, Changed: []string{"access", "pageTitle", "expiresIn"}}}, nil},
		{"password access without password", given, patch(paid, project.Patch{Access: ptr("password")}), nil, domain.Invalid{}},
		{"clearing the password of password access", withPW, patch(paid, project.Patch{Password: project.Nullable[string]{Set: true}}), nil, domain.Invalid{}},
		{"bad values", given, patch(paid, project.Patch{Title: ptr(""), Status: ptr("hidden"), ExpiresIn: ptr("2w"), Access: ptr("x")}), nil, domain.Invalid{}},
		{"free tier", given, patch(free, project.Patch{Title: ptr("x")}), nil, project.ErrFreeTier},
		{"other account", []events.Event{created("a2")}, patch(paid, project.Patch{Title: ptr("x")}), nil, project.ErrNotFound},
	})
}
