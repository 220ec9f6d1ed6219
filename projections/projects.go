package projections

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/jackc/pgx/v5"

	"github.com/litehost/litehost/events"
)

// ProjectsName is the persistent name (checkpoint key) of the projects read model.
const ProjectsName = "projects"

// Projects is the projects read model: the projects table (spec §5.1 plus owner, active
// deployment and its manifest), the deployments table (history), and account_usage (active
// projects and their live deployments' bytes per owner). Every handler is an upsert or an
// absolute update, so applying an event twice leaves the same rows.
func Projects() Projector {
	return Projector{
		Name:   ProjectsName,
		Tables: []string{"projects", "deployments", "account_usage"},
		Handlers: []cqrs.GroupEventHandler{
			cqrs.NewGroupEventHandler(projectCreated),
			cqrs.NewGroupEventHandler(projectVersionPushed),
			cqrs.NewGroupEventHandler(projectSettingsUpdated),
			cqrs.NewGroupEventHandler(projectArchived),
			cqrs.NewGroupEventHandler(projectUnarchived),
			cqrs.NewGroupEventHandler(projectClaimed),
			cqrs.NewGroupEventHandler(projectExpired),
			cqrs.NewGroupEventHandler(projectMoved),
			cqrs.NewGroupEventHandler(projectDeleted),
		},
	}
}

func nullStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

const insertDeploymentSQL = `INSERT INTO deployments (deployment_id, project_id, version, manifest_hash, type,
	index_path, file_count, size_bytes, rollback_of, created_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
	ON CONFLICT (deployment_id) DO NOTHING`

func insertDeployment(ctx context.Context, tx pgx.Tx, projectID string, d events.Deployment, at any) error {
	_, err := tx.Exec(ctx, insertDeploymentSQL, d.DeploymentID, projectID, d.Version, d.ManifestHash, d.Type,
		d.IndexPath, d.FileCount, d.SizeBytes, nullStr(d.RollbackOf), at)
	if err != nil {
		return fmt.Errorf("insert deployment %s: %w", d.DeploymentID, err)
	}
	return nil
}

// refreshUsage recomputes an owner's usage from the projects table: an absolute value, so it is
// right however often it runs.
func refreshUsage(ctx context.Context, tx pgx.Tx, ownerID *string) error {
	if ownerID == nil || *ownerID == "" {
		return nil
	}
	const q = `INSERT INTO account_usage (account_id, active_projects, storage_bytes)
		SELECT $1, count(*), coalesce(sum(size_bytes), 0) FROM projects
		WHERE owner_id = $1 AND archived_at IS NULL AND expired_at IS NULL
		ON CONFLICT (account_id) DO UPDATE
		SET active_projects = excluded.active_projects, storage_bytes = excluded.storage_bytes`
	if _, err := tx.Exec(ctx, q, *ownerID); err != nil {
		return fmt.Errorf("refresh usage of %s: %w", *ownerID, err)
	}
	return nil
}

// update runs an UPDATE of one project and refreshes its owner's usage. A missing row (a project
// deleted later in the log, seen again during a replay) is not an error.
func update(ctx context.Context, projectID, set string, args ...any) error {
	tx := Tx(ctx)
	var owner *string
	q := `UPDATE projects SET ` + set + ` WHERE id = $1 RETURNING owner_id::text`
	err := tx.QueryRow(ctx, q, append([]any{projectID}, args...)...).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update project %s: %w", projectID, err)
	}
	return refreshUsage(ctx, tx, owner)
}

func projectCreated(ctx context.Context, e *events.ProjectCreated) error {
	tx := Tx(ctx)
	s, d := e.Settings, e.Deployment
	const q = `INSERT INTO projects (id, owner_id, workspace_id, domain_id, temporary, claim_token_hash, title, slug,
		type, status, access, password_hash, no_index, disable_downloads, page_title, meta_description,
		analytics_enabled, expires_at, active_deployment_id, manifest_hash, index_path, file_count, size_bytes,
		created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
		$22, $23, $24, $24)
		ON CONFLICT (id) DO NOTHING`
	_, err := tx.Exec(ctx, q, e.ProjectID, nullStr(e.OwnerID), nullStr(e.WorkspaceID), nullStr(s.DomainID),
		e.Temporary, nullStr(e.ClaimTokenHash), s.Title, s.Slug, d.Type, s.Status, s.Access, nullStr(s.PasswordHash),
		s.NoIndex, s.DisableDownloads, s.PageTitle, s.MetaDescription, s.AnalyticsEnabled, s.ExpiresAt,
		d.DeploymentID, d.ManifestHash, d.IndexPath, d.FileCount, d.SizeBytes, e.At)
	if err != nil {
		return fmt.Errorf("insert project %s: %w", e.ProjectID, err)
	}
	if err := insertDeployment(ctx, tx, e.ProjectID, d, e.At); err != nil {
		return err
	}
	return refreshUsage(ctx, tx, nullStr(e.OwnerID))
}

func projectVersionPushed(ctx context.Context, e *events.ProjectVersionPushed) error {
	d := e.Deployment
	if err := insertDeployment(ctx, Tx(ctx), e.ProjectID, d, e.At); err != nil {
		return err
	}
	return update(ctx, e.ProjectID, `type = $2, active_deployment_id = $3, manifest_hash = $4, index_path = $5,
		file_count = $6, size_bytes = $7, updated_at = $8`,
		d.Type, d.DeploymentID, d.ManifestHash, d.IndexPath, d.FileCount, d.SizeBytes, e.At)
}

func projectSettingsUpdated(ctx context.Context, e *events.ProjectSettingsUpdated) error {
	s := e.Settings
	return update(ctx, e.ProjectID, `title = $2, slug = $3, domain_id = $4, status = $5, access = $6,
		password_hash = $7, no_index = $8, disable_downloads = $9, page_title = $10, meta_description = $11,
		analytics_enabled = $12, expires_at = $13, updated_at = $14`,
		s.Title, s.Slug, nullStr(s.DomainID), s.Status, s.Access, nullStr(s.PasswordHash), s.NoIndex,
		s.DisableDownloads, s.PageTitle, s.MetaDescription, s.AnalyticsEnabled, s.ExpiresAt, e.At)
}

func projectArchived(ctx context.Context, e *events.ProjectArchived) error {
	return update(ctx, e.ProjectID, `archived_at = coalesce(archived_at, $2), updated_at = $2`, e.At)
}

func projectUnarchived(ctx context.Context, e *events.ProjectUnarchived) error {
	return update(ctx, e.ProjectID, `archived_at = NULL, updated_at = $2`, e.At)
}

func projectClaimed(ctx context.Context, e *events.ProjectClaimed) error {
	return update(ctx, e.ProjectID, `owner_id = $2, temporary = false, expires_at = $3, updated_at = $4`,
		e.OwnerID, e.ExpiresAt, e.At)
}

func projectExpired(ctx context.Context, e *events.ProjectExpired) error {
	return update(ctx, e.ProjectID, `expired_at = coalesce(expired_at, $2), updated_at = $2`, e.At)
}

func projectMoved(ctx context.Context, e *events.ProjectMoved) error {
	return update(ctx, e.ProjectID, `workspace_id = $2, updated_at = $3`, nullStr(e.ToWorkspaceID), e.At)
}

func projectDeleted(ctx context.Context, e *events.ProjectDeleted) error {
	tx := Tx(ctx)
	var owner *string
	err := tx.QueryRow(ctx, `DELETE FROM projects WHERE id = $1 RETURNING owner_id::text`, e.ProjectID).Scan(&owner)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("delete project %s: %w", e.ProjectID, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM deployments WHERE project_id = $1`, e.ProjectID); err != nil {
		return fmt.Errorf("delete deployments of %s: %w", e.ProjectID, err)
	}
	return refreshUsage(ctx, tx, owner)
}
