package projections

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/litehost/litehost/events"
)

// WorkspacesName is the persistent name (checkpoint key) of the workspaces read model.
const WorkspacesName = "workspaces"

// Workspaces is the workspaces read model: live workspaces and the project → workspace
// membership (from project.created, project.moved and project.deleted), which gives
// projectCount and lets the workspace-cleanup process manager find a deleted workspace's
// projects. Every statement is an upsert or a delete with absolute values, so applying an event
// twice leaves the same rows.
func Workspaces() Projector {
	return Projector{
		Name:   WorkspacesName,
		Tables: []string{"workspaces", "workspace_projects"},
		Handlers: []cqrs.GroupEventHandler{
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.WorkspaceCreated) error {
				return scopeExec(ctx, e.EventType(), `INSERT INTO workspaces (id, owner_id, name, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $4) ON CONFLICT (id) DO NOTHING`, e.WorkspaceID, e.OwnerID, e.Name, e.At)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.WorkspaceRenamed) error {
				return scopeExec(ctx, e.EventType(), `UPDATE workspaces SET name = $2, updated_at = $3 WHERE id = $1`,
					e.WorkspaceID, e.Name, e.At)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.WorkspaceDeleted) error {
				return scopeExec(ctx, e.EventType(), `DELETE FROM workspaces WHERE id = $1`, e.WorkspaceID)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.ProjectCreated) error {
				return setWorkspace(ctx, e.EventType(), e.ProjectID, e.WorkspaceID)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.ProjectMoved) error {
				return setWorkspace(ctx, e.EventType(), e.ProjectID, e.ToWorkspaceID)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.ProjectDeleted) error {
				return scopeExec(ctx, e.EventType(), `DELETE FROM workspace_projects WHERE project_id = $1`, e.ProjectID)
			}),
		},
	}
}

// setWorkspace records that project is in workspace ("" = the personal scope, no row).
func setWorkspace(ctx context.Context, eventType, projectID, workspaceID string) error {
	if workspaceID == "" {
		return scopeExec(ctx, eventType, `DELETE FROM workspace_projects WHERE project_id = $1`, projectID)
	}
	return scopeExec(ctx, eventType, `INSERT INTO workspace_projects (project_id, workspace_id) VALUES ($1, $2)
		ON CONFLICT (project_id) DO UPDATE SET workspace_id = excluded.workspace_id`, projectID, workspaceID)
}

// scopeExec runs one statement in the projection's transaction.
func scopeExec(ctx context.Context, eventType, sql string, args ...any) error {
	if _, err := Tx(ctx).Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("project %s: %w", eventType, err)
	}
	return nil
}
