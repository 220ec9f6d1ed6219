package events

import "time"

// Project event types (stream project-<uuid>). A project's deployments live in its own stream:
// created is version 1, every push or rollback appends the next version.
const (
	TypeProjectCreated         = "project.created.v1"
	TypeProjectVersionPushed   = "project.version_pushed.v1"
	TypeProjectSettingsUpdated = "project.settings_updated.v1"
	TypeProjectArchived        = "project.archived.v1"
	TypeProjectUnarchived      = "project.unarchived.v1"
	TypeProjectClaimed         = "project.claimed.v1"
	TypeProjectExpired         = "project.expired.v1"
	TypeProjectMoved           = "project.moved.v1"
	TypeProjectDeleted         = "project.deleted.v1"
)

// Deployment is one version of a project's files. The files themselves are in the blob store;
// the event carries only the content-addressed manifest's hash and its summary.
type Deployment struct {
	DeploymentID string `json:"deploymentId"` // UUID
	Version      int    `json:"version"`      // 1 for the created project, +1 per push or rollback
	ManifestHash string `json:"manifestHash"` // sha256 hex of the manifest blob
	Type         string `json:"type"`         // "html" or "files"
	IndexPath    string `json:"indexPath,omitempty"`
	FileCount    int    `json:"fileCount"`
	SizeBytes    int64  `json:"sizeBytes"`
	// RollbackOf is the deployment whose manifest this version re-publishes, empty for uploads.
	RollbackOf string `json:"rollbackOf,omitempty"`
}

// ProjectSettings are the settings of spec §4.4 PATCH, as they stand after an event. Settings
// events carry the whole set, so a projector or a replay never has to merge partial changes.
// The site password is only ever stored as a slow hash (argon2id), sealed with the server secret.
type ProjectSettings struct {
	Title            string     `json:"title"`
	Slug             string     `json:"slug"`
	DomainID         string     `json:"domainId,omitempty"`
	Status           string     `json:"status"` // "public" or "private"
	Access           string     `json:"access"` // "public", "password" or "private"
	PasswordHash     string     `json:"passwordHash,omitempty"`
	NoIndex          bool       `json:"noIndex"`
	DisableDownloads bool       `json:"disableDownloads"`
	PageTitle        *string    `json:"pageTitle"`
	MetaDescription  *string    `json:"metaDescription"`
	AnalyticsEnabled bool       `json:"analyticsEnabled"`
	ExpiresAt        *time.Time `json:"expiresAt"`
}

// ProjectCreated starts a project with its first deployment. OwnerID is empty for a temporary
// (anonymous) project, which then carries the keyed hash of its claim token.
type ProjectCreated struct {
	ProjectID      string          `json:"projectId"`
	OwnerID        string          `json:"ownerId,omitempty"`
	WorkspaceID    string          `json:"workspaceId,omitempty"`
	Temporary      bool            `json:"temporary"`
	ClaimTokenHash string          `json:"claimTokenHash,omitempty"`
	Settings       ProjectSettings `json:"settings"`
	Deployment     Deployment      `json:"deployment"`
	At             time.Time       `json:"at"`
}

// EventType implements Event.
func (ProjectCreated) EventType() string { return TypeProjectCreated }

// ProjectVersionPushed makes Deployment the active version; the previous one stays in history.
type ProjectVersionPushed struct {
	ProjectID  string     `json:"projectId"`
	Deployment Deployment `json:"deployment"`
	At         time.Time  `json:"at"`
}

// EventType implements Event.
func (ProjectVersionPushed) EventType() string { return TypeProjectVersionPushed }

// ProjectSettingsUpdated replaces the project's settings; Changed names the PATCH fields that
// changed (camelCase, as in the API), for audit readers.
type ProjectSettingsUpdated struct {
	ProjectID string          `json:"projectId"`
	Settings  ProjectSettings `json:"settings"`
	Changed   []string        `json:"changed"`
	At        time.Time       `json:"at"`
}

// EventType implements Event.
func (ProjectSettingsUpdated) EventType() string { return TypeProjectSettingsUpdated }

// ProjectArchived takes a project offline and out of its owner's quota.
type ProjectArchived struct {
	ProjectID string    `json:"projectId"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (ProjectArchived) EventType() string { return TypeProjectArchived }

// ProjectUnarchived brings an archived project back.
type ProjectUnarchived struct {
	ProjectID string    `json:"projectId"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (ProjectUnarchived) EventType() string { return TypeProjectUnarchived }

// ProjectClaimed moves a temporary project into OwnerID's account; ExpiresAt is the new expiry
// (nil: permanent).
type ProjectClaimed struct {
	ProjectID string     `json:"projectId"`
	OwnerID   string     `json:"ownerId"`
	ExpiresAt *time.Time `json:"expiresAt"`
	At        time.Time  `json:"at"`
}

// EventType implements Event.
func (ProjectClaimed) EventType() string { return TypeProjectClaimed }

// ProjectExpired records that the project's expiry time passed: it is no longer served or
// counted. ExpiresAt is the expiry that fired, so a later expiry change is a distinct fact.
type ProjectExpired struct {
	ProjectID string    `json:"projectId"`
	ExpiresAt time.Time `json:"expiresAt"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (ProjectExpired) EventType() string { return TypeProjectExpired }

// ProjectMoved moves the project between workspaces ("" = the owner's personal scope).
type ProjectMoved struct {
	ProjectID       string    `json:"projectId"`
	FromWorkspaceID string    `json:"fromWorkspaceId,omitempty"`
	ToWorkspaceID   string    `json:"toWorkspaceId,omitempty"`
	At              time.Time `json:"at"`
}

// EventType implements Event.
func (ProjectMoved) EventType() string { return TypeProjectMoved }

// ProjectDeleted ends the project for good; its slug is released by the same command.
type ProjectDeleted struct {
	ProjectID string    `json:"projectId"`
	Slug      string    `json:"slug"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (ProjectDeleted) EventType() string { return TypeProjectDeleted }

// decodeProject decodes the events of project streams.
func decodeProject(eventType string, data []byte) (Event, error) {
	switch eventType {
	case TypeProjectCreated:
		return unmarshal[ProjectCreated](data)
	case TypeProjectVersionPushed:
		return unmarshal[ProjectVersionPushed](data)
	case TypeProjectSettingsUpdated:
		return unmarshal[ProjectSettingsUpdated](data)
	case TypeProjectArchived:
		return unmarshal[ProjectArchived](data)
	case TypeProjectUnarchived:
		return unmarshal[ProjectUnarchived](data)
	case TypeProjectClaimed:
		return unmarshal[ProjectClaimed](data)
	case TypeProjectExpired:
		return unmarshal[ProjectExpired](data)
	case TypeProjectMoved:
		return unmarshal[ProjectMoved](data)
	case TypeProjectDeleted:
		return unmarshal[ProjectDeleted](data)
	}
	return nil, ErrUnknownType
}
