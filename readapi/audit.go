package readapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/public"
)

// StreamReader is the part of the event store the audit log reads; events/pgstore and
// events/esdbstore implement it.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, from uint64, max int) ([]events.RecordedEvent, error)
}

// Audit serves GET /v1/projects/{id}/events: a project's own events straight from the event
// store, in their public form (package events/public, like the SSE stream and NATS) with their
// public metadata (DESIGN §9). It reads the log rather than a read model, so it shows what was
// recorded, including what no projection keeps (who, as part of which request). It is open on
// every plan: it is the owner's own audit trail. An API key is a bearer credential that leaks, so
// the trail shows no more than the analytics feeds: no hashes, tokens or request origins.
type Audit struct {
	store StreamReader
}

// NewAudit returns the audit handlers over store.
func NewAudit(store StreamReader) *Audit { return &Audit{store: store} }

// Register adds the route to r (the /v1 group) behind require.
func (a *Audit) Register(r gin.IRoutes, require gin.HandlerFunc) {
	r.GET("/projects/:id/events", require, a.projectEvents)
}

// Paging bounds of the audit log.
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 500
)

// AuditEvent is one recorded event of a project stream; metadata fields the writer did not know
// are "".
type AuditEvent struct {
	Version   uint64          `json:"version"` // 0-based place in the stream
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt Time            `json:"createdAt"` // when the store recorded it
	Position  string          `json:"position"`  // global log position, "commit/prepare"
	Data      json.RawMessage `json:"data"`
	Metadata  public.Metadata `json:"metadata"`
}

// AuditPage is one page of a project's events, oldest first. NextFrom is the `from` of the next
// page, nil on the last one.
type AuditPage struct {
	Events   []AuditEvent `json:"events"`
	From     uint64       `json:"from"`
	Limit    int          `json:"limit"`
	NextFrom *uint64      `json:"nextFrom"`
}

func (a *Audit) projectEvents(c *gin.Context) {
	pr, id, ok := callerAndID(c)
	if !ok {
		return
	}
	bad := InvalidQuery{}
	from, err := strconv.ParseUint(c.DefaultQuery("from", "0"), 10, 63)
	if err != nil {
		bad["from"] = "must be a non-negative integer (a stream version)"
	}
	limit, err := strconv.Atoi(c.DefaultQuery("limit", strconv.Itoa(auditDefaultLimit)))
	if err != nil || limit < 1 || limit > auditMaxLimit {
		bad["limit"] = "must be an integer from 1 to " + strconv.Itoa(auditMaxLimit)
	}
	if len(bad) > 0 {
		_ = c.Error(bad)
		return
	}
	ctx := c.Request.Context()
	stream := "project-" + id
	owner, err := a.owner(ctx, stream)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if owner == "" || owner != pr.AccountID {
		_ = c.Error(ErrNotFound)
		return
	}
	// One event more than the page tells whether there is a next page without a second read.
	recs, err := a.store.ReadStream(ctx, stream, from, limit+1)
	if err != nil {
		_ = c.Error(fmt.Errorf("project events: %w", err))
		return
	}
	page := AuditPage{Events: make([]AuditEvent, 0, min(len(recs), limit)), From: from, Limit: limit}
	if len(recs) > limit {
		next := recs[limit].Version
		page.NextFrom = &next
		recs = recs[:limit]
	}
	for _, r := range recs {
		ev, ok, err := public.FromRecord(r)
		if err != nil {
			_ = c.Error(fmt.Errorf("project events: %w", err))
			return
		}
		if !ok {
			continue // a private type: not even the owner's trail shows it
		}
		page.Events = append(page.Events, AuditEvent{Version: ev.Version, ID: ev.ID, Type: ev.Type,
			CreatedAt: Time(ev.CreatedAt), Position: ev.Position.String(), Data: ev.Data, Metadata: ev.Metadata})
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": page})
}

// owner finds who owns the project from its own stream: the creator, or for a temporary project
// the account that claimed it ("" while nobody has). The log is the authority here, so a project
// the read model has not caught up with (or has removed on delete) still has its audit trail.
// Ownership never changes after that: claim is the only transfer and happens at most once.
func (a *Audit) owner(ctx context.Context, stream string) (string, error) {
	var from uint64
	for {
		recs, err := a.store.ReadStream(ctx, stream, from, auditMaxLimit)
		if errors.Is(err, events.ErrStreamNotFound) {
			return "", ErrNotFound
		}
		if err != nil {
			return "", fmt.Errorf("project owner: %w", err)
		}
		for _, r := range recs {
			switch r.Type {
			case events.TypeProjectCreated, events.TypeProjectClaimed:
				var v struct {
					OwnerID string `json:"ownerId"`
				}
				if err := json.Unmarshal(r.Data, &v); err != nil {
					return "", fmt.Errorf("project owner: decode %s: %w", r.Type, err)
				}
				if v.OwnerID != "" {
					return v.OwnerID, nil
				}
			}
		}
		if len(recs) < auditMaxLimit {
			return "", nil
		}
		from = recs[len(recs)-1].Version + 1
	}
}
