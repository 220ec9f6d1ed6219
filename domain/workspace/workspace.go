// Package workspace holds the rules of a workspace (stream workspace-<uuid>), a named group of
// one account's projects.
//
// Rules (spec §4.6; DESIGN §5, §12):
//   - a name is 1 to 255 characters after trimming surrounding space;
//   - a workspace is visible only to its owner; a deleted one, another account's one and a missing
//     one are all ErrNotFound;
//   - renaming to the current name changes nothing;
//   - deleting keeps the projects: they move to the personal scope through project.moved.v1,
//     appended by a process manager that reacts to workspace.deleted.v1.
//
// Workspaces need a paid plan; that gate is checked by the command handlers with the account's
// plan before any of these functions run.
package workspace

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// ErrNotFound is a workspace that does not exist, was deleted, or is not the caller's.
const ErrNotFound = domain.Error("workspace not found")

// MaxName is the longest workspace name, in characters.
const MaxName = 255

// Stream is the event stream of workspace id.
func Stream(id string) string { return "workspace-" + id }

// State is a workspace stream folded.
type State struct {
	ID        string
	Exists    bool
	Deleted   bool
	OwnerID   string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Evolve applies one event. It never fails: events are facts.
func Evolve(s State, e events.Event) State {
	switch e := e.(type) {
	case events.WorkspaceCreated:
		s = State{ID: e.WorkspaceID, Exists: true, OwnerID: e.OwnerID, Name: e.Name, CreatedAt: e.At, UpdatedAt: e.At}
	case events.WorkspaceRenamed:
		s.Name = e.Name
		s.UpdatedAt = e.At
	case events.WorkspaceDeleted:
		s.Deleted = true
		s.UpdatedAt = e.At
	}
	return s
}

// Replay folds a stream's events.
func Replay(evs []events.Event) State {
	var s State
	for _, e := range evs {
		s = Evolve(s, e)
	}
	return s
}

// Live reports whether the workspace exists and is not deleted.
func (s State) Live() bool { return s.Exists && !s.Deleted }

// OwnedBy returns ErrNotFound unless accountID owns the live workspace.
func (s State) OwnedBy(accountID string) error {
	if !s.Live() || s.OwnerID != accountID {
		return ErrNotFound
	}
	return nil
}

// Name trims a workspace name and checks its length; the problem is a domain.Invalid on "name".
func Name(raw string) (string, error) {
	n := strings.TrimSpace(raw)
	if n == "" || utf8.RuneCountInString(n) > MaxName || !utf8.ValidString(n) {
		return "", domain.Invalid{"name": "must be 1 to 255 characters"}
	}
	return n, nil
}

// Create starts workspace id for ownerID. Creating it again (a retried command) changes nothing.
func Create(s State, id, ownerID, rawName string, now time.Time) ([]events.Event, error) {
	name, err := Name(rawName)
	if err != nil {
		return nil, err
	}
	if s.Exists {
		if s.OwnerID == ownerID && s.Name == name && !s.Deleted {
			return nil, nil
		}
		return nil, ErrNotFound
	}
	return []events.Event{events.WorkspaceCreated{WorkspaceID: id, OwnerID: ownerID, Name: name, At: now}}, nil
}

// Rename gives the owner's workspace a new name.
func Rename(s State, accountID, rawName string, now time.Time) ([]events.Event, error) {
	if err := s.OwnedBy(accountID); err != nil {
		return nil, err
	}
	name, err := Name(rawName)
	if err != nil {
		return nil, err
	}
	if name == s.Name {
		return nil, nil
	}
	return []events.Event{events.WorkspaceRenamed{WorkspaceID: s.ID, Name: name, PreviousName: s.Name, At: now}}, nil
}

// Delete ends the owner's workspace. Deleting it again is ErrNotFound, like any missing one.
func Delete(s State, accountID string, now time.Time) ([]events.Event, error) {
	if err := s.OwnedBy(accountID); err != nil {
		return nil, err
	}
	return []events.Event{events.WorkspaceDeleted{WorkspaceID: s.ID, OwnerID: s.OwnerID, At: now}}, nil
}
