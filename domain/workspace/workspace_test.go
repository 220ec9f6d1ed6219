package workspace_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/workspace"
	"github.com/litehost/litehost/events"
)

var now = time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)

func created(name string) events.Event {
	return events.WorkspaceCreated{WorkspaceID: "w1", OwnerID: "a1", Name: name, At: now.Add(-time.Hour)}
}

var deleted = events.WorkspaceDeleted{WorkspaceID: "w1", OwnerID: "a1", At: now.Add(-time.Minute)}

func TestDecide(t *testing.T) {
	long := strings.Repeat("é", 255)
	tests := []struct {
		name    string
		given   []events.Event
		when    func(workspace.State) ([]events.Event, error)
		want    []events.Event
		wantErr error
	}{
		{"create trims the name", nil,
			func(s workspace.State) ([]events.Event, error) {
				return workspace.Create(s, "w1", "a1", "  My Team ", now)
			},
			[]events.Event{events.WorkspaceCreated{WorkspaceID: "w1", OwnerID: "a1", Name: "My Team", At: now}}, nil},
		{"create with 255 characters", nil,
			func(s workspace.State) ([]events.Event, error) { return workspace.Create(s, "w1", "a1", long, now) },
			[]events.Event{events.WorkspaceCreated{WorkspaceID: "w1", OwnerID: "a1", Name: long, At: now}}, nil},
		{"create with 256 characters", nil,
			func(s workspace.State) ([]events.Event, error) { return workspace.Create(s, "w1", "a1", long+"x", now) },
			nil, domain.Invalid{}},
		{"create with a blank name", nil,
			func(s workspace.State) ([]events.Event, error) { return workspace.Create(s, "w1", "a1", " \t ", now) },
			nil, domain.Invalid{}},
		{"create again by the same owner", []events.Event{created("My Team")},
			func(s workspace.State) ([]events.Event, error) {
				return workspace.Create(s, "w1", "a1", "My Team", now)
			},
			nil, nil},
		{"rename", []events.Event{created("Old")},
			func(s workspace.State) ([]events.Event, error) { return workspace.Rename(s, "a1", " New ", now) },
			[]events.Event{events.WorkspaceRenamed{WorkspaceID: "w1", Name: "New", PreviousName: "Old", At: now}}, nil},
		{"rename to the same name", []events.Event{created("Same")},
			func(s workspace.State) ([]events.Event, error) { return workspace.Rename(s, "a1", "Same", now) },
			nil, nil},
		{"rename to an empty name", []events.Event{created("Old")},
			func(s workspace.State) ([]events.Event, error) { return workspace.Rename(s, "a1", "", now) },
			nil, domain.Invalid{}},
		{"rename another account's workspace", []events.Event{created("Old")},
			func(s workspace.State) ([]events.Event, error) { return workspace.Rename(s, "a2", "New", now) },
			nil, workspace.ErrNotFound},
		{"rename a deleted workspace", []events.Event{created("Old"), deleted},
			func(s workspace.State) ([]events.Event, error) { return workspace.Rename(s, "a1", "New", now) },
			nil, workspace.ErrNotFound},
		{"rename a missing workspace", nil,
			func(s workspace.State) ([]events.Event, error) { return workspace.Rename(s, "a1", "New", now) },
			nil, workspace.ErrNotFound},
		{"delete", []events.Event{created("Old")},
			func(s workspace.State) ([]events.Event, error) { return workspace.Delete(s, "a1", now) },
			[]events.Event{events.WorkspaceDeleted{WorkspaceID: "w1", OwnerID: "a1", At: now}}, nil},
		{"delete twice", []events.Event{created("Old"), deleted},
			func(s workspace.State) ([]events.Event, error) { return workspace.Delete(s, "a1", now) },
			nil, workspace.ErrNotFound},
		{"delete another account's workspace", []events.Event{created("Old")},
			func(s workspace.State) ([]events.Event, error) { return workspace.Delete(s, "a2", now) },
			nil, workspace.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.when(workspace.Replay(tt.given))
			var inv domain.Invalid
			switch {
			case errors.As(tt.wantErr, &inv):
				if !errors.As(err, &inv) || inv["name"] == "" {
					t.Fatalf("err = %v, want a domain.Invalid on name", err)
				}
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplay(t *testing.T) {
	s := workspace.Replay([]events.Event{created("Old"),
		events.WorkspaceRenamed{WorkspaceID: "w1", Name: "New", PreviousName: "Old", At: now}})
	want := workspace.State{ID: "w1", Exists: true, OwnerID: "a1", Name: "New", CreatedAt: now.Add(-time.Hour), UpdatedAt: now}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
	if !s.Live() || workspace.Evolve(s, deleted).Live() {
		t.Errorf("Live before/after delete wrong")
	}
}
