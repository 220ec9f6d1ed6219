package commands

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/domain"
)

// WorkspaceCounter counts the projects of a workspace (the workspaces read model).
type WorkspaceCounter interface {
	WorkspaceProjectCount(ctx context.Context, workspaceID string) (int, error)
}

// WorkspaceRoutes are the write routes of spec §4.6: POST, PATCH and DELETE /v1/workspaces.
type WorkspaceRoutes struct {
	w      *Workspaces
	counts WorkspaceCounter
	waiter Waiter
}

// NewWorkspaceRoutes returns the workspace write routes; counts gives the projectCount of a
// renamed workspace (a *PGScopes), waiter holds each answer until the read models have the write.
func NewWorkspaceRoutes(w *Workspaces, counts WorkspaceCounter, waiter Waiter) *WorkspaceRoutes {
	return &WorkspaceRoutes{w: w, counts: counts, waiter: waiter}
}

// Register mounts the routes on g (the /v1 group), each behind require.
func (r *WorkspaceRoutes) Register(g gin.IRoutes, require gin.HandlerFunc) {
	g.POST("/workspaces", require, r.create)
	g.PATCH("/workspaces/:id", require, r.rename)
	g.DELETE("/workspaces/:id", require, r.delete)
}

// workspaceSummary is spec §5.5.
func workspaceSummary(res WorkspaceResult, projectCount int) gin.H {
	return gin.H{"id": res.ID, "name": res.Name, "projectCount": projectCount,
		"createdAt": ts(res.CreatedAt), "updatedAt": ts(res.UpdatedAt)}
}

// nameBody reads {"name": "..."}: not a JSON object is 400, a missing or non-string name 422.
func nameBody(c *gin.Context) (string, error) {
	var raw map[string]json.RawMessage
	if err := decodeJSON(c, &raw); err != nil {
		return "", err
	}
	var name *string
	v, ok := raw["name"]
	if !ok {
		return "", domain.Invalid{"name": "is required"}
	}
	if err := json.Unmarshal(v, &name); err != nil || name == nil {
		return "", domain.Invalid{"name": "must be a string"}
	}
	return *name, nil
}

func (r *WorkspaceRoutes) create(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	// The plan gate comes before the body is judged: a free account learns only that it must upgrade.
	if err := requirePaid(ctx, r.w.store, accountID); err != nil {
		fail(c, err)
		return
	}
	name, err := nameBody(c)
	if err != nil {
		fail(c, err)
		return
	}
	res, err := r.w.Create(ctx, CommandIDFrom(ctx), accountID, name)
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, res.Position, http.StatusCreated, workspaceSummary(res, 0))
}

func (r *WorkspaceRoutes) rename(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	if err := requirePaid(ctx, r.w.store, accountID); err != nil {
		fail(c, err)
		return
	}
	name, err := nameBody(c)
	if err != nil {
		fail(c, err)
		return
	}
	res, err := r.w.Rename(ctx, CommandIDFrom(ctx), accountID, c.Param("id"), name)
	if err != nil {
		fail(c, err)
		return
	}
	n, err := r.counts.WorkspaceProjectCount(ctx, res.ID)
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, res.Position, http.StatusOK, workspaceSummary(res, n))
}

func (r *WorkspaceRoutes) delete(c *gin.Context) {
	accountID, c, ok := caller(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	pos, err := r.w.Delete(ctx, CommandIDFrom(ctx), accountID, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	Reply(c, r.waiter, pos, http.StatusOK, gin.H{"deleted": true})
}
