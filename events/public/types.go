package public

import (
	"time"

	"github.com/litehost/litehost/events"
)

// AccountRegistered is the public account.registered.v1: an account was created by its first
// sign-in. The e-mail address or phone number stays inside; the account ID stands for it.
type AccountRegistered struct {
	AccountID string            `json:"accountId"`
	Plan      string            `json:"plan"`
	Limits    events.PlanLimits `json:"limits"`
	At        time.Time         `json:"at"`
}

// PlanChanged is the public account.plan_changed.v1: the account moved to another plan.
type PlanChanged struct {
	AccountID    string            `json:"accountId"`
	Plan         string            `json:"plan"`
	PreviousPlan string            `json:"previousPlan"`
	Limits       events.PlanLimits `json:"limits"`
	At           time.Time         `json:"at"`
}

// SessionStarted is the public account.session_started.v1: the account signed in. Session, key
// and refresh-token identifiers and hashes stay inside.
type SessionStarted struct {
	AccountID        string    `json:"accountId"`
	ExpiresAt        time.Time `json:"expiresAt"`
	RefreshExpiresAt time.Time `json:"refreshExpiresAt"`
	At               time.Time `json:"at"`
}

// SessionRefreshed is the public account.session_refreshed.v1: a session's API key and refresh
// token were rotated.
type SessionRefreshed struct {
	AccountID        string    `json:"accountId"`
	ExpiresAt        time.Time `json:"expiresAt"`
	RefreshExpiresAt time.Time `json:"refreshExpiresAt"`
	At               time.Time `json:"at"`
}

// SessionExtended is the public account.session_extended.v1: a session in use was renewed; its
// key now expires at ExpiresAt. Session and key identifiers stay inside.
type SessionExtended struct {
	AccountID string    `json:"accountId"`
	ExpiresAt time.Time `json:"expiresAt"`
	At        time.Time `json:"at"`
}

// TrialStarted is the public account.trial_started.v1: a new account is on Plan until EndsAt.
type TrialStarted struct {
	AccountID string    `json:"accountId"`
	Plan      string    `json:"plan"`
	EndsAt    time.Time `json:"endsAt"`
	At        time.Time `json:"at"`
}

// TrialEnded is the public account.trial_ended.v1: the trial is over ("expired", then a plan
// change to free follows, or "plan_set" by an operator).
type TrialEnded struct {
	AccountID string    `json:"accountId"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// SessionRevoked is the public account.session_revoked.v1: a session ended for good.
type SessionRevoked struct {
	AccountID string    `json:"accountId"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// ProjectSettings are a project's settings as they leave the service: whether the site has a
// password, never its hash.
type ProjectSettings struct {
	Title    string `json:"title"`
	Slug     string `json:"slug"`
	DomainID string `json:"domainId,omitempty"`
	Status   string `json:"status"` // "public" or "private"
	Access   string `json:"access"` // "public", "password" or "private"
	// PasswordProtected tells whether a site password is set (its hash never leaves the service).
	PasswordProtected bool       `json:"passwordProtected"`
	NoIndex           bool       `json:"noIndex"`
	DisableDownloads  bool       `json:"disableDownloads"`
	PageTitle         *string    `json:"pageTitle"`
	MetaDescription   *string    `json:"metaDescription"`
	AnalyticsEnabled  bool       `json:"analyticsEnabled"`
	ExpiresAt         *time.Time `json:"expiresAt"`
}

// Deployment is one version of a project's files, as its summary.
type Deployment struct {
	DeploymentID string `json:"deploymentId"` // UUID
	Version      int    `json:"version"`      // 1 for the created project, +1 per push or rollback
	Type         string `json:"type"`         // "html" or "files"
	IndexPath    string `json:"indexPath,omitempty"`
	FileCount    int    `json:"fileCount"`
	SizeBytes    int64  `json:"sizeBytes"`
	// RollbackOf is the deployment whose files this version re-publishes, empty for uploads.
	RollbackOf string `json:"rollbackOf,omitempty"`
}

// ProjectCreated is the public project.created.v1: a project with its first deployment. A
// temporary project's claim-token hash stays inside.
type ProjectCreated struct {
	ProjectID   string          `json:"projectId"`
	OwnerID     string          `json:"ownerId,omitempty"`
	WorkspaceID string          `json:"workspaceId,omitempty"`
	Temporary   bool            `json:"temporary"`
	Settings    ProjectSettings `json:"settings"`
	Deployment  Deployment      `json:"deployment"`
	At          time.Time       `json:"at"`
}

// ProjectVersionPushed is the public project.version_pushed.v1: Deployment became the active
// version.
type ProjectVersionPushed struct {
	ProjectID  string     `json:"projectId"`
	Deployment Deployment `json:"deployment"`
	At         time.Time  `json:"at"`
}

// ProjectSettingsUpdated is the public project.settings_updated.v1: the project's settings after
// a change, and the names of the changed fields.
type ProjectSettingsUpdated struct {
	ProjectID string          `json:"projectId"`
	Settings  ProjectSettings `json:"settings"`
	Changed   []string        `json:"changed"`
	At        time.Time       `json:"at"`
}

// ProjectArchived is the public project.archived.v1: the project went offline.
type ProjectArchived struct {
	ProjectID string    `json:"projectId"`
	At        time.Time `json:"at"`
}

// ProjectUnarchived is the public project.unarchived.v1: an archived project came back.
type ProjectUnarchived struct {
	ProjectID string    `json:"projectId"`
	At        time.Time `json:"at"`
}

// ProjectClaimed is the public project.claimed.v1: a temporary project moved into OwnerID's
// account; ExpiresAt is its new expiry (null: permanent).
type ProjectClaimed struct {
	ProjectID string     `json:"projectId"`
	OwnerID   string     `json:"ownerId"`
	ExpiresAt *time.Time `json:"expiresAt"`
	At        time.Time  `json:"at"`
}

// ProjectExpired is the public project.expired.v1: the project's expiry time passed.
type ProjectExpired struct {
	ProjectID string    `json:"projectId"`
	ExpiresAt time.Time `json:"expiresAt"`
	At        time.Time `json:"at"`
}

// ProjectMoved is the public project.moved.v1: the project moved between workspaces.
type ProjectMoved struct {
	ProjectID       string    `json:"projectId"`
	FromWorkspaceID string    `json:"fromWorkspaceId,omitempty"`
	ToWorkspaceID   string    `json:"toWorkspaceId,omitempty"`
	At              time.Time `json:"at"`
}

// ProjectDeleted is the public project.deleted.v1: the project ended for good.
type ProjectDeleted struct {
	ProjectID string    `json:"projectId"`
	Slug      string    `json:"slug"`
	At        time.Time `json:"at"`
}

// SlugReserved is the public slug.reserved.v1: Slug now belongs to ProjectID.
type SlugReserved struct {
	Slug      string    `json:"slug"`
	ProjectID string    `json:"projectId"`
	At        time.Time `json:"at"`
}

// SlugReleased is the public slug.released.v1: Slug, which ProjectID held, is free.
type SlugReleased struct {
	Slug      string    `json:"slug"`
	ProjectID string    `json:"projectId"`
	At        time.Time `json:"at"`
}

// WorkspaceCreated is the public workspace.created.v1.
type WorkspaceCreated struct {
	WorkspaceID string    `json:"workspaceId"`
	OwnerID     string    `json:"ownerId"`
	Name        string    `json:"name"`
	At          time.Time `json:"at"`
}

// WorkspaceRenamed is the public workspace.renamed.v1.
type WorkspaceRenamed struct {
	WorkspaceID  string    `json:"workspaceId"`
	Name         string    `json:"name"`
	PreviousName string    `json:"previousName"`
	At           time.Time `json:"at"`
}

// WorkspaceDeleted is the public workspace.deleted.v1.
type WorkspaceDeleted struct {
	WorkspaceID string    `json:"workspaceId"`
	OwnerID     string    `json:"ownerId"`
	At          time.Time `json:"at"`
}

// DomainAdded is the public domain.added.v1: a custom domain of OwnerID. Its DNS challenge token
// stays inside (only the owner is shown it, by GET /v1/domains/{id}).
type DomainAdded struct {
	DomainID   string     `json:"domainId"`
	OwnerID    string     `json:"ownerId"`
	Hostname   string     `json:"hostname"`
	Status     string     `json:"status"`
	VerifiedAt *time.Time `json:"verifiedAt"`
	At         time.Time  `json:"at"`
}

// DomainStatusChanged is the public domain.status_changed.v1.
type DomainStatusChanged struct {
	DomainID       string     `json:"domainId"`
	Hostname       string     `json:"hostname"`
	Status         string     `json:"status"`
	PreviousStatus string     `json:"previousStatus"`
	VerifiedAt     *time.Time `json:"verifiedAt"`
	At             time.Time  `json:"at"`
}

// DomainRemoved is the public domain.removed.v1.
type DomainRemoved struct {
	DomainID string    `json:"domainId"`
	Hostname string    `json:"hostname"`
	At       time.Time `json:"at"`
}

// DomainHostnameReserved is the public domain.hostname_reserved.v1.
type DomainHostnameReserved struct {
	Hostname string    `json:"hostname"`
	DomainID string    `json:"domainId"`
	At       time.Time `json:"at"`
}

// DomainHostnameReleased is the public domain.hostname_released.v1.
type DomainHostnameReleased struct {
	Hostname string    `json:"hostname"`
	DomainID string    `json:"domainId"`
	At       time.Time `json:"at"`
}
