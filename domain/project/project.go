// Package project holds the rules of a project and its deployments (stream project-<uuid>).
//
// Rules (spec §2, §4.4, §8; DESIGN §8, §12):
//   - create is deployment version 1; each push or rollback appends version n+1, which becomes
//     active while earlier versions stay in history as "ready";
//   - a project is visible only to its owner; a deleted project, another account's project and a
//     missing one are all ErrNotFound;
//   - push, PATCH, history, archive, unarchive and rollback need a paid plan (ErrFreeTier);
//   - quotas count active projects (not archived, expired or deleted) and the sizes of their
//     active deployments: create, claim and unarchive need a free project slot
//     (ErrProjectLimit when used == limit) and room for the storage (ErrStorageLimit); a push or
//     rollback may not grow storage past the limit;
//   - pushing to an archived project is ErrArchived; archive and unarchive are idempotent;
//   - an expired project is read-only: only delete changes it (ErrExpired);
//   - a temporary project has no owner; claiming it with its token makes it the claimer's (free:
//     expires 7 days after the claim, paid: permanent); a second claim is ErrAlreadyClaimed; an
//     expired one is ErrNotFound; expiring an unclaimed temporary project also deletes it.
package project

import (
	"crypto/subtle"
	"time"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// Rule errors of projects.
const (
	ErrNotFound       = domain.Error("project not found")
	ErrFreeTier       = domain.Error("This endpoint is not available on the free plan. Upgrade to a paid plan (starter or higher) to use it.")
	ErrArchived       = domain.Error("project is archived; unarchive it first")
	ErrExpired        = domain.Error("project has expired")
	ErrProjectLimit   = domain.Error("active project limit of your plan reached")
	ErrStorageLimit   = domain.Error("storage limit of your plan would be exceeded")
	ErrFileLimit      = domain.Error("too many files for your plan")
	ErrAlreadyClaimed = domain.Error("project has already been claimed")
	ErrExists         = domain.Error("project already exists")
)

// RequiredTier is the tier named by ErrFreeTier answers.
const RequiredTier = "starter"

// Deployment statuses of the history.
const (
	DeploymentActive = "active"
	DeploymentReady  = "ready"
)

// Types of project content.
const (
	TypeHTML  = "html"
	TypeFiles = "files"
)

// ClaimedFreeLifetime is how long a project claimed on the free plan lives.
const ClaimedFreeLifetime = 7 * 24 * time.Hour

// Stream is the event stream of project id.
func Stream(id string) string { return "project-" + id }

// Plan is what the caller's plan allows. A limit below zero is unlimited.
type Plan struct {
	Paid            bool
	MaxProjects     int64
	MaxStorageBytes int64
	MaxFiles        int64
}

// Usage is what the caller's account uses now: its active projects and their storage.
type Usage struct {
	ActiveProjects int64
	StorageBytes   int64
}

// State is a project stream folded.
type State struct {
	ID          string
	Exists      bool
	Deleted     bool
	OwnerID     string
	WorkspaceID string
	// Temporary is true while an anonymous project is unclaimed.
	Temporary bool
	// ClaimTokenHash is the keyed hash of the claim token of a temporary project created before
	// tokens were derived from the project ID; empty for newer ones.
	ClaimTokenHash string
	Settings       events.ProjectSettings
	Archived       bool
	Expired        bool
	Deployments    []events.Deployment // oldest first
	ActiveID       string              // deployment ID of the live version
	CreatedAt      time.Time
}

// Active returns the live deployment.
func (s State) Active() events.Deployment {
	for _, d := range s.Deployments {
		if d.DeploymentID == s.ActiveID {
			return d
		}
	}
	return events.Deployment{}
}

// LastVersion is the version number of the newest deployment.
func (s State) LastVersion() int {
	if len(s.Deployments) == 0 {
		return 0
	}
	return s.Deployments[len(s.Deployments)-1].Version
}

// Counts reports whether the project counts toward its owner's quota.
func (s State) Counts() bool {
	return s.Exists && !s.Deleted && !s.Archived && !s.Expired && s.OwnerID != ""
}

// Evolve applies one event. It never fails: events are facts.
func Evolve(s State, e events.Event) State {
	switch e := e.(type) {
	case events.ProjectCreated:
		s = State{
			ID: e.ProjectID, Exists: true, OwnerID: e.OwnerID, WorkspaceID: e.WorkspaceID,
			Temporary: e.Temporary, ClaimTokenHash: e.ClaimTokenHash, Settings: e.Settings,
			CreatedAt: e.At,
		}
		s.Deployments = []events.Deployment{e.Deployment}
		s.ActiveID = e.Deployment.DeploymentID
	case events.ProjectVersionPushed:
		// Copy so states derived from one history never share a backing array.
		s.Deployments = append(append([]events.Deployment(nil), s.Deployments...), e.Deployment)
		s.ActiveID = e.Deployment.DeploymentID
	case events.ProjectSettingsUpdated:
		s.Settings = e.Settings
	case events.ProjectArchived:
		s.Archived = true
	case events.ProjectUnarchived:
		s.Archived = false
	case events.ProjectClaimed:
		s.OwnerID = e.OwnerID
		s.Temporary = false
		s.Settings.ExpiresAt = e.ExpiresAt
	case events.ProjectExpired:
		s.Expired = true
	case events.ProjectMoved:
		s.WorkspaceID = e.ToWorkspaceID
	case events.ProjectDeleted:
		s.Deleted = true
	}
	return s
}

// ClaimTokenMatches reports whether tokenHash is the recorded claim token hash of an older
// temporary project, in constant time.
func (s State) ClaimTokenMatches(tokenHash string) bool {
	return s.ClaimTokenHash != "" && subtle.ConstantTimeCompare([]byte(s.ClaimTokenHash), []byte(tokenHash)) == 1
}

// Replay folds a stream's events.
func Replay(evs []events.Event) State {
	var s State
	for _, e := range evs {
		s = Evolve(s, e)
	}
	return s
}

// ownedBy returns ErrNotFound unless accountID owns a live (not deleted) project.
func (s State) ownedBy(accountID string) error {
	if !s.Exists || s.Deleted || s.OwnerID == "" || s.OwnerID != accountID {
		return ErrNotFound
	}
	return nil
}

// writable is ownedBy plus the paid-plan gate and the expiry rule, the common guard of the
// starter+ writes.
func (s State) writable(accountID string, plan Plan) error {
	if err := s.ownedBy(accountID); err != nil {
		return err
	}
	if !plan.Paid {
		return ErrFreeTier
	}
	if s.Expired {
		return ErrExpired
	}
	return nil
}

func over(limit, value int64) bool { return limit >= 0 && value > limit }

// checkSlot is the quota check of create, claim and unarchive: one more active project of
// sizeBytes must fit.
func checkSlot(plan Plan, u Usage, sizeBytes int64) error {
	if plan.MaxProjects >= 0 && u.ActiveProjects >= plan.MaxProjects {
		return ErrProjectLimit
	}
	if over(plan.MaxStorageBytes, u.StorageBytes+sizeBytes) {
		return ErrStorageLimit
	}
	return nil
}

func checkFiles(plan Plan, d events.Deployment) error {
	if over(plan.MaxFiles, int64(d.FileCount)) {
		return ErrFileLimit
	}
	return nil
}

// CheckHistory is the rule of GET /status: the owner on a paid plan.
func CheckHistory(s State, accountID string, plan Plan) error {
	if err := s.ownedBy(accountID); err != nil {
		return err
	}
	if !plan.Paid {
		return ErrFreeTier
	}
	return nil
}
