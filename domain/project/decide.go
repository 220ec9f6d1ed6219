package project

import (
	"slices"
	"time"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// Access values.
const (
	AccessPublic   = "public"
	AccessPassword = "password"
	AccessPrivate  = "private"
)

// Status values stored on a project; "expired" is derived for display.
const (
	StatusPublic  = "public"
	StatusPrivate = "private"
	StatusExpired = "expired"
)

// MaxTitle is the longest title and site password, in characters.
const MaxTitle = 255

// expiresIns are the lifetimes a client may ask for.
var expiresIns = map[string]time.Duration{
	"15m": 15 * time.Minute,
	"1h":  time.Hour,
	"24h": 24 * time.Hour,
	"7d":  7 * 24 * time.Hour,
}

// ExpiresIn parses a lifetime ("15m", "1h", "24h", "7d"); ok is false for anything else.
func ExpiresIn(s string) (time.Duration, bool) {
	d, ok := expiresIns[s]
	return d, ok
}

// Create is the input of POST /v1/projects after the upload was stored.
type Create struct {
	ProjectID   string
	OwnerID     string
	WorkspaceID string
	DomainID    string
	Title       string
	Slug        string // already reserved by the caller
	Access      string // "" = public
	// PasswordHash is the slow hash of the site password, "" when none was given.
	PasswordHash string
	ExpiresIn    string // "" = never
	Deployment   events.Deployment
}

func validTitle(title string, bad domain.Invalid) {
	switch n := len([]rune(title)); {
	case n == 0:
		bad["title"] = "is required"
	case n > MaxTitle:
		bad["title"] = "must be at most 255 characters"
	}
}

func validAccess(access, hash string, bad domain.Invalid) {
	switch access {
	case AccessPublic, AccessPrivate:
	case AccessPassword:
		if hash == "" {
			bad["password"] = "is required when access is password"
		}
	default:
		bad["access"] = "must be public, password or private"
	}
}

// Decide creates the project with its first deployment.
func (c Create) Decide(s State, plan Plan, u Usage, now time.Time) ([]events.Event, error) {
	if s.Exists {
		return nil, ErrExists
	}
	if c.Access == "" {
		c.Access = AccessPublic
	}
	bad := domain.Invalid{}
	validTitle(c.Title, bad)
	validAccess(c.Access, c.PasswordHash, bad)
	var expiresAt *time.Time
	if c.ExpiresIn != "" {
		d, ok := ExpiresIn(c.ExpiresIn)
		if !ok {
			bad["expiresIn"] = "must be 15m, 1h, 24h or 7d"
		}
		at := now.Add(d)
		expiresAt = &at
	}
	if len(bad) > 0 {
		return nil, bad
	}
	if err := checkSlot(plan, u, c.Deployment.SizeBytes); err != nil {
		return nil, err
	}
	if err := checkFiles(plan, c.Deployment); err != nil {
		return nil, err
	}
	hash := c.PasswordHash
	if c.Access != AccessPassword {
		hash = ""
	}
	d := c.Deployment
	d.Version = 1
	return []events.Event{events.ProjectCreated{
		ProjectID: c.ProjectID, OwnerID: c.OwnerID, WorkspaceID: c.WorkspaceID,
		Settings: events.ProjectSettings{
			Title: c.Title, Slug: c.Slug, DomainID: c.DomainID, Status: StatusPublic, Access: c.Access,
			PasswordHash: hash, AnalyticsEnabled: true, ExpiresAt: expiresAt,
		},
		Deployment: d, At: now,
	}}, nil
}

// CreateTemp is the input of POST /v1/projects/temp after the upload was stored. Its claim token
// is derived from the project ID with the server secret, so nothing of it is recorded.
type CreateTemp struct {
	ProjectID  string
	Slug       string // already reserved by the caller
	TTL        time.Duration
	Deployment events.Deployment
}

// Decide creates the anonymous project; it expires TTL from now unless claimed.
func (c CreateTemp) Decide(s State, now time.Time) ([]events.Event, error) {
	if s.Exists {
		return nil, ErrExists
	}
	at := now.Add(c.TTL)
	d := c.Deployment
	d.Version = 1
	return []events.Event{events.ProjectCreated{
		ProjectID: c.ProjectID, Temporary: true,
		Settings: events.ProjectSettings{
			Title: c.Slug, Slug: c.Slug, Status: StatusPublic, Access: AccessPublic,
			AnalyticsEnabled: true, ExpiresAt: &at,
		},
		Deployment: d, At: now,
	}}, nil
}

// Push makes d the project's new active version.
func Push(s State, accountID string, plan Plan, u Usage, d events.Deployment, now time.Time) ([]events.Event, error) {
	if err := s.writable(accountID, plan); err != nil {
		return nil, err
	}
	if s.Archived {
		return nil, ErrArchived
	}
	if err := checkFiles(plan, d); err != nil {
		return nil, err
	}
	// The project is active, so its current deployment is part of the usage being replaced.
	if over(plan.MaxStorageBytes, u.StorageBytes-s.Active().SizeBytes+d.SizeBytes) {
		return nil, ErrStorageLimit
	}
	d.Version = s.LastVersion() + 1
	return []events.Event{events.ProjectVersionPushed{ProjectID: s.ID, Deployment: d, At: now}}, nil
}

// Rollback re-publishes the manifest of an earlier deployment as a new version (history stays
// append-only). Rolling back to the live deployment changes nothing.
func Rollback(s State, accountID string, plan Plan, u Usage, deploymentID, newDeploymentID string, now time.Time) ([]events.Event, error) {
	if err := s.writable(accountID, plan); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(s.Deployments, func(d events.Deployment) bool { return d.DeploymentID == deploymentID })
	if i < 0 {
		return nil, domain.Invalid{"deploymentId": "is not a deployment of this project"}
	}
	if deploymentID == s.ActiveID {
		return nil, nil
	}
	old := s.Deployments[i]
	d := old
	d.DeploymentID = newDeploymentID
	d.RollbackOf = old.DeploymentID
	return Push(s, accountID, plan, u, d, now)
}

// Archive takes the project offline; archiving an archived project changes nothing.
func Archive(s State, accountID string, plan Plan, now time.Time) ([]events.Event, error) {
	if err := s.writable(accountID, plan); err != nil {
		return nil, err
	}
	if s.Archived {
		return nil, nil
	}
	return []events.Event{events.ProjectArchived{ProjectID: s.ID, At: now}}, nil
}

// Unarchive brings the project back if the plan has room for it; an active project is left as is.
func Unarchive(s State, accountID string, plan Plan, u Usage, now time.Time) ([]events.Event, error) {
	if err := s.writable(accountID, plan); err != nil {
		return nil, err
	}
	if !s.Archived {
		return nil, nil
	}
	if err := checkSlot(plan, u, s.Active().SizeBytes); err != nil {
		return nil, err
	}
	return []events.Event{events.ProjectUnarchived{ProjectID: s.ID, At: now}}, nil
}

// Claim gives a temporary project to accountID. tokenValid says whether the presented claim token
// is this project's (the command checks it: a token derived from the project ID with the server
// secret, or an older one by its recorded hash, see State.ClaimTokenMatches); a wrong token is
// ErrNotFound like any unknown one.
func Claim(s State, tokenValid bool, accountID string, plan Plan, u Usage, now time.Time) ([]events.Event, error) {
	if !s.Exists || s.Deleted || !tokenValid {
		return nil, ErrNotFound
	}
	if !s.Temporary {
		return nil, ErrAlreadyClaimed
	}
	if s.Expired || (s.Settings.ExpiresAt != nil && !now.Before(*s.Settings.ExpiresAt)) {
		return nil, ErrNotFound
	}
	if err := checkSlot(plan, u, s.Active().SizeBytes); err != nil {
		return nil, err
	}
	var expiresAt *time.Time
	if !plan.Paid {
		at := now.Add(ClaimedFreeLifetime)
		expiresAt = &at
	}
	return []events.Event{events.ProjectClaimed{ProjectID: s.ID, OwnerID: accountID, ExpiresAt: expiresAt, At: now}}, nil
}

// Expire records the expiry of a project whose expiresAt has passed. It changes nothing when the
// project is gone, already expired, or its expiry was moved or removed meanwhile. An unclaimed
// temporary project is deleted with it (purged): nobody can ever claim or see it again.
func Expire(s State, now time.Time) []events.Event {
	if !s.Exists || s.Deleted || s.Expired || s.Settings.ExpiresAt == nil || now.Before(*s.Settings.ExpiresAt) {
		return nil
	}
	evs := []events.Event{events.ProjectExpired{ProjectID: s.ID, ExpiresAt: *s.Settings.ExpiresAt, At: now}}
	if s.Temporary {
		evs = append(evs, events.ProjectDeleted{ProjectID: s.ID, Slug: s.Settings.Slug, At: now})
	}
	return evs
}

// Delete removes the project for good. Free accounts may delete.
func Delete(s State, accountID string, now time.Time) ([]events.Event, error) {
	if err := s.ownedBy(accountID); err != nil {
		return nil, err
	}
	return []events.Event{events.ProjectDeleted{ProjectID: s.ID, Slug: s.Settings.Slug, At: now}}, nil
}

// Move puts the project into workspace to ("" = personal scope); process managers call it with
// the owner's ID. Moving to where it is changes nothing.
func Move(s State, accountID, to string, now time.Time) ([]events.Event, error) {
	if err := s.ownedBy(accountID); err != nil {
		return nil, err
	}
	if s.WorkspaceID == to {
		return nil, nil
	}
	return []events.Event{events.ProjectMoved{ProjectID: s.ID, FromWorkspaceID: s.WorkspaceID, ToWorkspaceID: to, At: now}}, nil
}
