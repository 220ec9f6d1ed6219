package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/domain/customdomain"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/domain/workspace"
	"github.com/litehost/litehost/events"
)

// Workspaces handles the workspace commands of spec §4.6: create, rename, delete. Workspaces
// need a paid plan; the gate answers project.ErrFreeTier, the one free-tier rule, which the
// routes render as 403 FREE_TIER_RESTRICTED with requiredTier.
type Workspaces struct {
	store EventStore
	exec  *Executor
	now   func() time.Time
}

// NewWorkspaces returns the workspace command handlers.
func NewWorkspaces(store EventStore, now func() time.Time) *Workspaces {
	return &Workspaces{store: store, exec: NewExecutor(store), now: now}
}

// requirePaid loads accountID's plan: ErrNotFound for an unknown account, project.ErrFreeTier on
// the free plan.
func requirePaid(ctx context.Context, store EventStore, accountID string) error {
	s, err := Load(ctx, store, "account-"+accountID)
	if err != nil {
		return err
	}
	a := account.Replay(s.Events)
	if !a.Registered {
		return ErrNotFound
	}
	if !account.IsPaid(a.Plan) {
		return project.ErrFreeTier
	}
	return nil
}

// WorkspaceResult is a workspace as a command left it.
type WorkspaceResult struct {
	ID        string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
	Position  events.Position
}

func workspaceResult(s workspace.State, pos events.Position) WorkspaceResult {
	return WorkspaceResult{ID: s.ID, Name: s.Name, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Position: pos}
}

// Create creates a workspace named name for accountID. Its ID derives from the command ID, so a
// retried command answers with the same workspace.
func (w *Workspaces) Create(ctx context.Context, commandID uuid.UUID, accountID, name string) (WorkspaceResult, error) {
	if err := requirePaid(ctx, w.store, accountID); err != nil {
		return WorkspaceResult{}, err
	}
	id := subID(commandID, "workspace")
	return w.run(ctx, commandID, id, func(s workspace.State, now time.Time) ([]events.Event, error) {
		return workspace.Create(s, id, accountID, name, now)
	})
}

// Rename renames accountID's workspace id.
func (w *Workspaces) Rename(ctx context.Context, commandID uuid.UUID, accountID, id, name string) (WorkspaceResult, error) {
	if err := requirePaid(ctx, w.store, accountID); err != nil {
		return WorkspaceResult{}, err
	}
	if uuid.Validate(id) != nil {
		return WorkspaceResult{}, workspace.ErrNotFound
	}
	return w.run(ctx, commandID, id, func(s workspace.State, now time.Time) ([]events.Event, error) {
		return workspace.Rename(s, accountID, name, now)
	})
}

// Delete deletes accountID's workspace id. Its projects stay; WorkspaceCleanup moves them to the
// personal scope.
func (w *Workspaces) Delete(ctx context.Context, commandID uuid.UUID, accountID, id string) (events.Position, error) {
	if err := requirePaid(ctx, w.store, accountID); err != nil {
		return events.Position{}, err
	}
	if uuid.Validate(id) != nil {
		return events.Position{}, workspace.ErrNotFound
	}
	res, err := w.run(ctx, commandID, id, func(s workspace.State, now time.Time) ([]events.Event, error) {
		return workspace.Delete(s, accountID, now)
	})
	return res.Position, err
}

// run executes decide on workspace id's stream and returns the workspace after it.
func (w *Workspaces) run(ctx context.Context, commandID uuid.UUID, id string, decide func(workspace.State, time.Time) ([]events.Event, error)) (WorkspaceResult, error) {
	stream := workspace.Stream(id)
	res, err := w.exec.Execute(ctx, commandID, stream, func(s Stream) ([]events.Event, error) {
		return decide(workspace.Replay(s.Events), w.now().UTC())
	})
	if err != nil {
		return WorkspaceResult{}, err
	}
	// Replayed or not, the stream holds the command's effect: describe the workspace from it.
	s, err := Load(ctx, w.store, stream)
	if err != nil {
		return WorkspaceResult{}, err
	}
	return workspaceResult(workspace.Replay(s.Events), res.Position), nil
}

// PGScopes answers the questions other commands ask about workspaces and domains from their read
// models (projections "workspaces" and "domains"). It implements Scopes for the project commands.
type PGScopes struct {
	pool *pgxpool.Pool
}

var _ Scopes = (*PGScopes)(nil)

// NewPGScopes returns the lookups over pool.
func NewPGScopes(pool *pgxpool.Pool) *PGScopes { return &PGScopes{pool: pool} }

// WorkspaceOwned reports whether workspaceID is a live workspace of accountID.
func (l *PGScopes) WorkspaceOwned(ctx context.Context, accountID, workspaceID string) (bool, error) {
	if uuid.Validate(workspaceID) != nil || uuid.Validate(accountID) != nil {
		return false, nil
	}
	var ok bool
	err := l.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM workspaces WHERE id = $1 AND owner_id = $2)`,
		workspaceID, accountID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("workspace lookup: %w", err)
	}
	return ok, nil
}

// DomainUsable reports whether domainID is accountID's live domain in an assignable status.
func (l *PGScopes) DomainUsable(ctx context.Context, accountID, domainID string) (bool, error) {
	err := l.DomainAssignable(ctx, accountID, domainID)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, customdomain.ErrNotFound), errors.Is(err, customdomain.ErrNotActive):
		return false, nil
	}
	return false, err
}

// DomainAssignable returns nil when domainID may be assigned to a project of accountID,
// customdomain.ErrNotFound when it is not the caller's live domain, and customdomain.ErrNotActive
// (422 DOMAIN_NOT_ACTIVE) when its status is not active or ssl_active.
func (l *PGScopes) DomainAssignable(ctx context.Context, accountID, domainID string) error {
	_, status, err := l.Domain(ctx, accountID, domainID)
	if err != nil {
		return err
	}
	if !customdomain.Assignable(status) {
		return customdomain.ErrNotActive
	}
	return nil
}

// Domain returns the hostname and status of accountID's domain domainID, or
// customdomain.ErrNotFound.
func (l *PGScopes) Domain(ctx context.Context, accountID, domainID string) (hostname, status string, err error) {
	if uuid.Validate(domainID) != nil || uuid.Validate(accountID) != nil {
		return "", "", customdomain.ErrNotFound
	}
	err = l.pool.QueryRow(ctx, `SELECT hostname, status FROM custom_domains WHERE id = $1 AND owner_id = $2`,
		domainID, accountID).Scan(&hostname, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", customdomain.ErrNotFound
	}
	if err != nil {
		return "", "", fmt.Errorf("domain lookup: %w", err)
	}
	return hostname, status, nil
}

// WorkspaceProjectCount counts the projects in workspace id.
func (l *PGScopes) WorkspaceProjectCount(ctx context.Context, id string) (int, error) {
	var n int
	if err := l.pool.QueryRow(ctx, `SELECT count(*) FROM workspace_projects WHERE workspace_id = $1`, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("count workspace projects: %w", err)
	}
	return n, nil
}

// DomainProjectCount counts the projects assigned to domain id.
func (l *PGScopes) DomainProjectCount(ctx context.Context, id string) (int, error) {
	var n int
	if err := l.pool.QueryRow(ctx, `SELECT count(*) FROM domain_projects WHERE domain_id = $1`, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("count domain projects: %w", err)
	}
	return n, nil
}
