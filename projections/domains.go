package projections

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"

	"github.com/litehost/litehost/events"
)

// DomainsName is the persistent name (checkpoint key) of the custom-domains read model.
const DomainsName = "domains"

// Domains is the custom-domains read model: live domains with their status, and the projects
// assigned to each (from the domainId of project.created and project.settings_updated, which
// carry the whole settings; project.deleted drops the assignment). Every statement is an upsert
// or a delete with absolute values, so applying an event twice leaves the same rows.
func Domains() Projector {
	return Projector{
		Name:   DomainsName,
		Tables: []string{"custom_domains", "domain_projects"},
		Handlers: []cqrs.GroupEventHandler{
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.DomainAdded) error {
				// No challenge token: it is derived from the server secret and the domain ID
				// whenever it is shown or checked, so no table holds it.
				return scopeExec(ctx, e.EventType(), `INSERT INTO custom_domains (id, owner_id, hostname, status,
					verified_at, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING`,
					e.DomainID, e.OwnerID, e.Hostname, e.Status, e.VerifiedAt, e.At)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.DomainStatusChanged) error {
				return scopeExec(ctx, e.EventType(), `UPDATE custom_domains SET status = $2, verified_at = $3, updated_at = $4
					WHERE id = $1`, e.DomainID, e.Status, e.VerifiedAt, e.At)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.DomainRemoved) error {
				return scopeExec(ctx, e.EventType(), `DELETE FROM custom_domains WHERE id = $1`, e.DomainID)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.ProjectCreated) error {
				return setDomain(ctx, e.EventType(), e.ProjectID, e.Settings, e.At)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.ProjectSettingsUpdated) error {
				return setDomain(ctx, e.EventType(), e.ProjectID, e.Settings, e.At)
			}),
			cqrs.NewGroupEventHandler(func(ctx context.Context, e *events.ProjectDeleted) error {
				return scopeExec(ctx, e.EventType(), `DELETE FROM domain_projects WHERE project_id = $1`, e.ProjectID)
			}),
		},
	}
}

// setDomain records the domain a project's settings assign it to (none: no row). created_at is
// only written by the first assignment, so the list order of a domain's projects is stable.
func setDomain(ctx context.Context, eventType, projectID string, s events.ProjectSettings, at any) error {
	if s.DomainID == "" {
		return scopeExec(ctx, eventType, `DELETE FROM domain_projects WHERE project_id = $1`, projectID)
	}
	return scopeExec(ctx, eventType, `INSERT INTO domain_projects (project_id, domain_id, title, slug, created_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (project_id) DO UPDATE SET domain_id = excluded.domain_id, title = excluded.title,
			slug = excluded.slug,
			created_at = CASE WHEN domain_projects.domain_id = excluded.domain_id THEN domain_projects.created_at
				ELSE excluded.created_at END`,
		projectID, s.DomainID, s.Title, s.Slug, at)
}
