package readapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Workspaces serves GET /v1/workspaces (spec §4.6): the caller's workspaces, oldest first, each
// with its project count. Paid plans only.
type Workspaces struct {
	pool *pgxpool.Pool
}

// NewWorkspaces returns the workspace read handler over pool.
func NewWorkspaces(pool *pgxpool.Pool) *Workspaces { return &Workspaces{pool: pool} }

// Register adds the route to r (the /v1 group) behind require.
func (w *Workspaces) Register(r gin.IRoutes, require gin.HandlerFunc) {
	r.GET("/workspaces", require, w.list)
}

// WorkspaceSummary is spec §5.5.
type WorkspaceSummary struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	ProjectCount int    `json:"projectCount"`
	CreatedAt    Time   `json:"createdAt"`
	UpdatedAt    Time   `json:"updatedAt"`
}

// paidQuery tells whether the caller's plan is paid: every tier but free (spec §2.1).
const paidQuery = `SELECT COALESCE((SELECT plan <> 'free' FROM accounts WHERE id = $1), false)`

// paidCaller returns the caller's account when its plan is paid; otherwise it records ErrFreeTier
// (or the missing key) and returns false.
func paidCaller(c *gin.Context, pool *pgxpool.Pool) (string, bool) {
	pr, ok := caller(c)
	if !ok {
		return "", false
	}
	var paid bool
	if err := pool.QueryRow(c.Request.Context(), paidQuery, pr.AccountID).Scan(&paid); err != nil {
		_ = c.Error(fmt.Errorf("plan check: %w", err))
		return "", false
	}
	if !paid {
		_ = c.Error(ErrFreeTier)
		return "", false
	}
	return pr.AccountID, true
}

const workspacesQuery = `SELECT w.id::text AS id, w.name,
	(SELECT count(*) FROM workspace_projects m WHERE m.workspace_id = w.id)::int AS project_count,
	w.created_at, w.updated_at
	FROM workspaces w WHERE w.owner_id = $1
	ORDER BY w.created_at, w.id`

type workspaceRow struct {
	ID           string
	Name         string
	ProjectCount int
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

func (w *Workspaces) list(c *gin.Context) {
	accountID, ok := paidCaller(c, w.pool)
	if !ok {
		return
	}
	got, err := QueryAll[workspaceRow](c.Request.Context(), w.pool, "list workspaces", workspacesQuery, accountID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := make([]WorkspaceSummary, len(got))
	for i, r := range got {
		out[i] = WorkspaceSummary{ID: r.ID, Name: r.Name, ProjectCount: r.ProjectCount, CreatedAt: Time(r.CreatedAt), UpdatedAt: Time(r.UpdatedAt)}
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"workspaces": out}})
}
