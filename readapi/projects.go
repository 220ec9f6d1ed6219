package readapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Projects serves the caller's projects: GET /v1/projects, /v1/projects/{id} and
// /v1/projects/{id}/status. Every query is scoped to the caller's account, so another account's
// project is a 404 like a missing one.
type Projects struct {
	pool      *pgxpool.Pool
	siteURL   func(slug string) string
	domainURL func(slug, hostname string) string
}

// NewProjects returns the project read handlers over pool; siteURL renders a site's address from
// its slug (the same function the write routes use).
func NewProjects(pool *pgxpool.Pool, siteURL func(slug string) string) *Projects {
	return &Projects{pool: pool, siteURL: siteURL}
}

// WithDomainURL returns p rendering the address of a project on a custom domain with f
// (spec §1.1: the slug becomes a sub-domain of that domain).
func (p *Projects) WithDomainURL(f func(slug, hostname string) string) *Projects {
	out := *p
	out.domainURL = f
	return &out
}

// url is where the project's site answers.
func (p *Projects) url(slug string, domainHost *string) string {
	if domainHost != nil && p.domainURL != nil {
		return p.domainURL(slug, *domainHost)
	}
	return p.siteURL(slug)
}

// Register adds the routes to r (the /v1 group), each behind require.
func (p *Projects) Register(r gin.IRoutes, require gin.HandlerFunc) {
	r.GET("/projects", require, p.list)
	r.GET("/projects/:id", require, p.get)
	r.GET("/projects/:id/status", require, p.history)
}

// ProjectSummary is a list item (spec §5.1 subset).
type ProjectSummary struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Slug      string `json:"slug"`
	Type      string `json:"type"`
	URL       string `json:"url"`
	Status    string `json:"status"`
	Access    string `json:"access"`
	CreatedAt Time   `json:"createdAt"`
	UpdatedAt Time   `json:"updatedAt"`
}

// Project is GET /v1/projects/{id} (spec §5.1).
type Project struct {
	ID               string  `json:"id"`
	Title            string  `json:"title"`
	Slug             string  `json:"slug"`
	Type             string  `json:"type"`
	URL              string  `json:"url"`
	Status           string  `json:"status"`
	Access           string  `json:"access"`
	DomainID         *string `json:"domainId"`
	WorkspaceID      *string `json:"workspaceId"`
	NoIndex          bool    `json:"noIndex"`
	DisableDownloads bool    `json:"disableDownloads"`
	PageTitle        *string `json:"pageTitle"`
	MetaDescription  *string `json:"metaDescription"`
	AnalyticsEnabled bool    `json:"analyticsEnabled"`
	ExpiresAt        *Time   `json:"expiresAt"`
	ArchivedAt       *Time   `json:"archivedAt"`
	CreatedAt        Time    `json:"createdAt"`
	UpdatedAt        Time    `json:"updatedAt"`
}

// Deployment is one entry of the history (spec §5.2).
type Deployment struct {
	DeploymentID string `json:"deploymentId"`
	Version      int    `json:"version"`
	Status       string `json:"status"`
	SizeBytes    int64  `json:"sizeBytes"`
	CreatedAt    Time   `json:"createdAt"`
	RollbackOf   string `json:"rollbackOf,omitempty"`
}

type projectRow struct {
	ID               string
	Title            string
	Slug             string
	Type             string
	Status           string
	Access           string
	DomainID         *string
	WorkspaceID      *string
	NoIndex          bool
	DisableDownloads bool
	PageTitle        *string
	MetaDescription  *string
	AnalyticsEnabled bool
	ExpiresAt        *time.Time
	ArchivedAt       *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	DomainHost       *string
}

// projectColumns derive status: an expired project shows "expired" (spec §5.1).
const projectColumns = `id::text AS id, title, slug, type,
	CASE WHEN expired_at IS NOT NULL THEN 'expired' ELSE status END AS status, access,
	domain_id::text AS domain_id, workspace_id::text AS workspace_id, no_index, disable_downloads, page_title,
	meta_description, analytics_enabled, expires_at, archived_at, created_at, updated_at,
	(SELECT d.hostname FROM custom_domains d WHERE d.id = projects.domain_id) AS domain_host`

func timePtr(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	v := Time(*t)
	return &v
}

func (p *Projects) project(r projectRow) Project {
	return Project{ID: r.ID, Title: r.Title, Slug: r.Slug, Type: r.Type, URL: p.url(r.Slug, r.DomainHost), Status: r.Status,
		Access: r.Access, DomainID: r.DomainID, WorkspaceID: r.WorkspaceID, NoIndex: r.NoIndex,
		DisableDownloads: r.DisableDownloads, PageTitle: r.PageTitle, MetaDescription: r.MetaDescription,
		AnalyticsEnabled: r.AnalyticsEnabled, ExpiresAt: timePtr(r.ExpiresAt), ArchivedAt: timePtr(r.ArchivedAt),
		CreatedAt: Time(r.CreatedAt), UpdatedAt: Time(r.UpdatedAt)}
}

// listQuery: $2 archived filter ('false' | 'true' | 'all'), $3 workspace (NULL = any).
const listQuery = `SELECT ` + projectColumns + ` FROM projects
	WHERE owner_id = $1
	  AND ($2 = 'all' OR ($2 = 'true') = (archived_at IS NOT NULL))
	  AND ($3::uuid IS NULL OR workspace_id = $3::uuid)
	ORDER BY created_at DESC, id DESC
	LIMIT $4 OFFSET $5`

func (p *Projects) list(c *gin.Context) {
	pr, ok := caller(c)
	if !ok {
		return
	}
	bad := InvalidQuery{}
	archived := c.DefaultQuery("archived", "false")
	if archived != "false" && archived != "true" && archived != "all" {
		bad["archived"] = "must be false, true or all"
	}
	var workspace *string
	if ws, ok := c.GetQuery("workspaceId"); ok {
		if uuid.Validate(ws) != nil {
			bad["workspaceId"] = "must be a UUID"
		}
		workspace = &ws
	}
	limit, err := strconv.Atoi(c.DefaultQuery("limit", "50"))
	if err != nil || limit < 1 || limit > 100 {
		bad["limit"] = "must be an integer from 1 to 100"
	}
	offset, err := strconv.Atoi(c.DefaultQuery("offset", "0"))
	if err != nil || offset < 0 {
		bad["offset"] = "must be a non-negative integer"
	}
	if len(bad) > 0 {
		_ = c.Error(bad)
		return
	}
	got, err := QueryAll[projectRow](c.Request.Context(), p.pool, "list projects", listQuery, pr.AccountID, archived, workspace, limit, offset)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := make([]ProjectSummary, len(got))
	for i, r := range got {
		out[i] = ProjectSummary{ID: r.ID, Title: r.Title, Slug: r.Slug, Type: r.Type, URL: p.url(r.Slug, r.DomainHost),
			Status: r.Status, Access: r.Access, CreatedAt: Time(r.CreatedAt), UpdatedAt: Time(r.UpdatedAt)}
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"projects": out, "limit": limit, "offset": offset}})
}

const getQuery = `SELECT ` + projectColumns + ` FROM projects WHERE id = $1 AND owner_id = $2`

func (p *Projects) get(c *gin.Context) {
	pr, id, ok := callerAndID(c)
	if !ok {
		return
	}
	row, err := queryOne[projectRow](c.Request.Context(), p.pool, "get project", getQuery, id, pr.AccountID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": p.project(row)})
}

// ErrFreeTier is the answer of a paid-only read to a free account; the error middleware renders
// it as 403 FREE_TIER_RESTRICTED with requiredTier "starter".
var ErrFreeTier = errors.New("this endpoint needs a paid plan (starter or higher)")

// ownerPlanQuery tells whether the caller owns the project and whether their plan is paid. The
// tier names of paid plans are every tier but free (spec §2.1).
const ownerPlanQuery = `SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1 AND owner_id = $2),
	COALESCE((SELECT plan <> 'free' FROM accounts WHERE id = $2), false)`

const historyQuery = `SELECT d.deployment_id::text AS deployment_id, d.version,
	CASE WHEN d.deployment_id = p.active_deployment_id THEN 'active' ELSE 'ready' END AS status,
	d.size_bytes, d.created_at, COALESCE(d.rollback_of::text, '') AS rollback_of
	FROM deployments d JOIN projects p ON p.id = d.project_id
	WHERE d.project_id = $1 AND p.owner_id = $2
	ORDER BY d.version DESC`

type deploymentRow struct {
	DeploymentID string
	Version      int
	Status       string
	SizeBytes    int64
	CreatedAt    time.Time
	RollbackOf   string
}

func (p *Projects) history(c *gin.Context) {
	pr, id, ok := callerAndID(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	var owns, paid bool
	if err := p.pool.QueryRow(ctx, ownerPlanQuery, id, pr.AccountID).Scan(&owns, &paid); err != nil {
		_ = c.Error(fmt.Errorf("project history: %w", err))
		return
	}
	switch {
	case !owns:
		_ = c.Error(ErrNotFound)
		return
	case !paid:
		_ = c.Error(ErrFreeTier)
		return
	}
	got, err := QueryAll[deploymentRow](ctx, p.pool, "project history", historyQuery, id, pr.AccountID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := make([]Deployment, len(got))
	for i, d := range got {
		out[i] = Deployment{DeploymentID: d.DeploymentID, Version: d.Version, Status: d.Status, SizeBytes: d.SizeBytes,
			CreatedAt: Time(d.CreatedAt), RollbackOf: d.RollbackOf}
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": out})
}
