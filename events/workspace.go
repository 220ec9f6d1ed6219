package events

import "time"

// Workspace event types (stream workspace-<uuid>).
const (
	TypeWorkspaceCreated = "workspace.created.v1"
	TypeWorkspaceRenamed = "workspace.renamed.v1"
	TypeWorkspaceDeleted = "workspace.deleted.v1"
)

// WorkspaceCreated starts a workspace of OwnerID.
type WorkspaceCreated struct {
	WorkspaceID string    `json:"workspaceId"`
	OwnerID     string    `json:"ownerId"`
	Name        string    `json:"name"`
	At          time.Time `json:"at"`
}

// EventType implements Event.
func (WorkspaceCreated) EventType() string { return TypeWorkspaceCreated }

// WorkspaceRenamed gives the workspace a new name.
type WorkspaceRenamed struct {
	WorkspaceID  string    `json:"workspaceId"`
	Name         string    `json:"name"`
	PreviousName string    `json:"previousName"`
	At           time.Time `json:"at"`
}

// EventType implements Event.
func (WorkspaceRenamed) EventType() string { return TypeWorkspaceRenamed }

// WorkspaceDeleted ends the workspace. Its projects are kept: the workspace-cleanup process
// manager moves each of them to its owner's personal scope with project.moved.v1.
type WorkspaceDeleted struct {
	WorkspaceID string    `json:"workspaceId"`
	OwnerID     string    `json:"ownerId"`
	At          time.Time `json:"at"`
}

// EventType implements Event.
func (WorkspaceDeleted) EventType() string { return TypeWorkspaceDeleted }

// decodeWorkspace decodes the events of workspace streams.
func decodeWorkspace(eventType string, data []byte) (Event, error) {
	switch eventType {
	case TypeWorkspaceCreated:
		return unmarshal[WorkspaceCreated](data)
	case TypeWorkspaceRenamed:
		return unmarshal[WorkspaceRenamed](data)
	case TypeWorkspaceDeleted:
		return unmarshal[WorkspaceDeleted](data)
	}
	return nil, ErrUnknownType
}
