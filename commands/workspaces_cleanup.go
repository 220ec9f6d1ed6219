package commands

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands/process"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/domain/workspace"
	"github.com/litehost/litehost/events"
)

// WorkspaceCleanupName is the workspace-cleanup process manager's persistent ID: its checkpoint
// key in process_checkpoints and its actor name (system:workspace-cleanup).
const WorkspaceCleanupName = "workspace-cleanup"

// workspaceCleanupLock is the advisory-lock key that elects the one running instance ("wscleanup").
const workspaceCleanupLock int64 = 0x7773636c65616e

// workspaceMoveNamespace seeds the command IDs of the moves.
var workspaceMoveNamespace = uuid.MustParse("3c1e9f4a-6b7d-4e2f-9a8c-5d0b1f2e3a47")

// WorkspaceCleanup is the process manager that keeps the projects of a deleted workspace (spec
// §4.6): for each workspace.deleted.v1 it appends project.moved.v1 (to the personal scope) to
// every project still in that workspace, with actor system:workspace-cleanup. It also catches a
// project created into, or moved into, a workspace whose deletion raced ahead of it.
//
// It follows the global log from its own checkpoint (process_checkpoints), which advances only
// after an event was fully handled, so it is at-least-once; every move has a command ID derived
// from the triggering event and the project, and decides on the project's stream (is it still
// in that workspace?), so handling an event again appends nothing. One instance runs at a time,
// elected with a PostgreSQL advisory lock; the others take over within LockPoll when it stops.
type WorkspaceCleanup struct {
	proc   process.Runner
	store  EventStore
	exec   *Executor
	pool   *pgxpool.Pool
	waiter Waiter
	now    func() time.Time
	logger *slog.Logger
	// LockPoll is how often a waiting instance tries to take over, and how often the lock's
	// connection is checked (default 2 s).
	LockPoll time.Duration
}

// NewWorkspaceCleanup returns the process manager. waiter must be the projections runner that
// hosts the workspaces projector: before looking up a deleted workspace's projects it waits until
// that read model has applied the deletion, so every earlier membership change is in it.
func NewWorkspaceCleanup(log process.Log, store EventStore, pool *pgxpool.Pool, waiter Waiter, now func() time.Time, logger *slog.Logger) *WorkspaceCleanup {
	w := &WorkspaceCleanup{store: store, exec: NewExecutor(store), pool: pool, waiter: waiter, now: now,
		logger: logger.With("process", WorkspaceCleanupName), LockPoll: process.DefaultLockPoll}
	w.proc = process.Runner{
		Name: WorkspaceCleanupName, LockKey: workspaceCleanupLock, Pool: pool, Log: log, Handle: w.Handle, Logger: w.logger,
		Filter: events.Filter{
			TypePrefixes:   []string{events.TypeWorkspaceDeleted, events.TypeProjectCreated, events.TypeProjectMoved},
			StreamPrefixes: []string{"workspace-", "project-"},
		},
	}
	return w
}

// Run moves projects out of deleted workspaces until ctx ends; it returns nil then. After a
// failure it starts over from the checkpoint.
func (w *WorkspaceCleanup) Run(ctx context.Context) error {
	r := w.proc // LockPoll may have been set after construction
	r.LockPoll = w.LockPoll
	return r.Run(ctx)
}

// Handle reacts to one event of the log; handling the same event again appends nothing.
func (w *WorkspaceCleanup) Handle(ctx context.Context, rec events.RecordedEvent) error {
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return err
	}
	switch e := ev.(type) {
	case events.WorkspaceDeleted:
		if err := w.waiter.WaitFor(ctx, rec.Position); err != nil {
			return fmt.Errorf("wait for the workspaces read model: %w", err)
		}
		ids, err := w.members(ctx, e.WorkspaceID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := w.move(ctx, rec, id, e.WorkspaceID); err != nil {
				return err
			}
		}
	case events.ProjectCreated:
		return w.moveIfDeleted(ctx, rec, e.ProjectID, e.WorkspaceID)
	case events.ProjectMoved:
		return w.moveIfDeleted(ctx, rec, e.ProjectID, e.ToWorkspaceID)
	}
	return nil
}

func (w *WorkspaceCleanup) members(ctx context.Context, workspaceID string) ([]string, error) {
	rows, err := w.pool.Query(ctx, `SELECT project_id::text FROM workspace_projects WHERE workspace_id = $1 ORDER BY project_id`, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("projects of workspace %s: %w", workspaceID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("projects of workspace %s: %w", workspaceID, err)
	}
	return ids, nil
}

// moveIfDeleted moves a project that arrived in a workspace after that workspace was deleted.
func (w *WorkspaceCleanup) moveIfDeleted(ctx context.Context, rec events.RecordedEvent, projectID, workspaceID string) error {
	if workspaceID == "" {
		return nil
	}
	s, err := Load(ctx, w.store, workspace.Stream(workspaceID))
	if err != nil {
		return err
	}
	if !workspace.Replay(s.Events).Deleted {
		return nil
	}
	return w.move(ctx, rec, projectID, workspaceID)
}

// move appends project.moved.v1 to the personal scope if the project is still in workspaceID.
func (w *WorkspaceCleanup) move(ctx context.Context, trigger events.RecordedEvent, projectID, workspaceID string) error {
	md, _ := events.ParseMetadata(trigger.Metadata)
	md.Actor = events.SystemActor(WorkspaceCleanupName)
	md.CausationID = ""
	ctx = events.WithMetadata(ctx, md)
	commandID := uuid.NewSHA1(workspaceMoveNamespace, []byte(trigger.ID.String()+"/"+projectID))
	res, err := w.exec.Execute(ctx, commandID, project.Stream(projectID), func(s Stream) ([]events.Event, error) {
		p := project.Replay(s.Events)
		if !p.Exists || p.Deleted || p.OwnerID == "" || p.WorkspaceID != workspaceID {
			return nil, nil // gone, or moved elsewhere meanwhile: nothing to do
		}
		return project.Move(p, p.OwnerID, "", w.now().UTC())
	})
	if err != nil {
		return fmt.Errorf("move project %s out of workspace %s: %w", projectID, workspaceID, err)
	}
	if len(res.Events) > 0 && !res.Replayed {
		w.logger.Debug("project moved out of a deleted workspace", "project_id", projectID, "workspace_id", workspaceID,
			"correlation_id", md.CorrelationID)
	}
	return nil
}

// Checkpoint returns the position up to which the log has been handled.
func (w *WorkspaceCleanup) Checkpoint(ctx context.Context) (events.Position, error) {
	return w.proc.Checkpoint(ctx)
}
