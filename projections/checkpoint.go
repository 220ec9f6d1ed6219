package projections

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
)

// Projector states, as stored in projection_checkpoints.state and reported by Status.
const (
	StateRunning = "running"
	StateFailed  = "failed"
	StateStopped = "stopped"
)

// ProjectorStatus is one projector's health: where it is in the log and how far behind.
type ProjectorStatus struct {
	Name       string          `json:"name"`
	State      string          `json:"state"`
	Position   events.Position `json:"-"`
	Checkpoint string          `json:"checkpoint"` // Position.String()
	LastError  string          `json:"lastError,omitempty"`
	UpdatedAt  time.Time       `json:"updatedAt"`
	// LastEventAt is the created time of the last applied event (zero before the first).
	LastEventAt time.Time `json:"lastEventAt,omitzero"`
	// CaughtUp is true when no event after the checkpoint exists in the log. Only known when
	// the status was computed with access to the store (Runner.Status, FillLag).
	CaughtUp bool `json:"caughtUp"`
	// LagEvents counts the events after the checkpoint, capped at lagCountCap unless the store
	// can count (EventCounter).
	LagEvents int64 `json:"lagEvents"`
	// LagSeconds is how long the oldest unapplied event has been waiting; 0 when caught up.
	LagSeconds float64 `json:"lagSeconds"`
}

// dbPos converts a position to the signed bigints stored in PostgreSQL. Both pgstore's
// transaction ids and EventStoreDB's log positions stay far below 2^63.
func dbPos(p events.Position) (int64, int64) {
	return int64(min(p.Commit, math.MaxInt64)), int64(min(p.Prepare, math.MaxInt64))
}

func fromDB(commit, prepare int64) events.Position {
	return events.Position{Commit: uint64(max(commit, 0)), Prepare: uint64(max(prepare, 0))}
}

const ensureCheckpointSQL = `INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`

// rebuildLockClass is the first key of the two-key advisory locks (the second is
// hashtext(projector name)) that keep a projector's live checkpoint writes out while Rebuild
// replays it: Rebuild holds the lock EXCLUSIVE for its whole run (holdRebuild), every live write
// takes it SHARED for its transaction. ASCII "proj": pgstore's classes 1885827956/1885827957 and
// the quota gate's 0x71756f74 are others, and the one-key (bigint) locks are a separate space.
const rebuildLockClass int32 = 0x70726f6a

const lockCheckpointSQL = `SELECT commit_pos, prepare_pos FROM projection_checkpoints WHERE name = $1 FOR UPDATE`

// lockCheckpoint is lockCheckpointRow for live application (ProjectionTx): it first takes
// name's rebuild lock shared for tx, so it waits while a rebuild runs and then reads the
// rebuilt checkpoint, instead of moving the checkpoint past events the rebuild has not replayed
// yet. The lock comes before the row lock (a rebuild holds it while taking the row lock) and
// both go in one pipelined round trip; live transactions do not block one another on it.
func lockCheckpoint(ctx context.Context, tx pgx.Tx, name string) (events.Position, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared($1, hashtext($2))`, rebuildLockClass, name)
	b.Queue(lockCheckpointSQL, name)
	br := tx.SendBatch(ctx, b)
	var c, p int64
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&c, &p)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return lockCheckpointRow(ctx, tx, name) // creates the row, under the lock taken above
	}
	if err != nil {
		return events.Position{}, fmt.Errorf("lock checkpoint %s: %w", name, err)
	}
	return fromDB(c, p), nil
}

// lockCheckpointRow returns the checkpoint of name, creating its row if missing, and holds the
// row lock until tx ends: concurrent instances applying the same projector serialise here, and
// the position read under the lock is the one the event is compared against. Only Rebuild, which
// holds the rebuild lock, calls it directly.
func lockCheckpointRow(ctx context.Context, tx pgx.Tx, name string) (events.Position, error) {
	var c, p int64
	err := tx.QueryRow(ctx, lockCheckpointSQL, name).Scan(&c, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := tx.Exec(ctx, ensureCheckpointSQL, name); err != nil {
			return events.Position{}, fmt.Errorf("create checkpoint %s: %w", name, err)
		}
		err = tx.QueryRow(ctx, lockCheckpointSQL, name).Scan(&c, &p)
	}
	if err != nil {
		return events.Position{}, fmt.Errorf("lock checkpoint %s: %w", name, err)
	}
	return fromDB(c, p), nil
}

// advanceCheckpoint moves name's checkpoint to pos within tx.
func advanceCheckpoint(ctx context.Context, tx pgx.Tx, name string, pos events.Position, created time.Time) error {
	c, p := dbPos(pos)
	const q = `UPDATE projection_checkpoints
		SET commit_pos = $2, prepare_pos = $3, event_created_at = $4, updated_at = now()
		WHERE name = $1`
	if _, err := tx.Exec(ctx, q, name, c, p, nullTime(created)); err != nil {
		return fmt.Errorf("advance checkpoint %s: %w", name, err)
	}
	return nil
}

// advanceIfBehind moves name's checkpoint forward to pos in one statement, without touching the
// read model: for events the projector has no handler for. The guard keeps it monotonic even
// when another instance got further meanwhile. Like lockCheckpoint it waits for a running
// rebuild (the subquery takes the shared rebuild lock before the row is inserted or updated):
// a checkpoint reset by a rebuild must not jump ahead of the replay. It reports whether the row
// moved.
func advanceIfBehind(ctx context.Context, pool *pgxpool.Pool, name string, pos events.Position, created time.Time) (bool, error) {
	c, p := dbPos(pos)
	const q = `INSERT INTO projection_checkpoints AS cp (name, commit_pos, prepare_pos, event_created_at)
		SELECT $1, $2::bigint, $3::bigint, $4::timestamptz
		FROM (SELECT pg_advisory_xact_lock_shared($5, hashtext($1))) AS rebuild_lock
		ON CONFLICT (name) DO UPDATE
		SET commit_pos = excluded.commit_pos, prepare_pos = excluded.prepare_pos,
		    event_created_at = excluded.event_created_at, updated_at = now()
		WHERE (cp.commit_pos, cp.prepare_pos) < (excluded.commit_pos, excluded.prepare_pos)`
	tag, err := pool.Exec(ctx, q, name, c, p, nullTime(created), rebuildLockClass)
	if err != nil {
		return false, fmt.Errorf("advance checkpoint %s: %w", name, err)
	}
	return tag.RowsAffected() > 0, nil
}

// skipCheckpoint moves name's checkpoint to pos over a stretch of events the projector has no
// handler for, all of (base, pos], and only when the stored checkpoint lies in [base, pos):
// moving it within that stretch skips nothing the projector needs, whoever stored it. A
// checkpoint before base was reset by a rebuild: moving that one to pos would make the
// rebuild skip the events in between, so it stays. While a rebuild runs it saves nothing (it
// tries the shared rebuild lock instead of waiting for it): a skip saved late is only skipped
// again after a crash. It reports whether the row moved.
func skipCheckpoint(ctx context.Context, pool *pgxpool.Pool, name string, base, pos events.Position, created time.Time) (bool, error) {
	bc, bp := dbPos(base)
	c, p := dbPos(pos)
	const q = `UPDATE projection_checkpoints
		SET commit_pos = $4, prepare_pos = $5, event_created_at = $6, updated_at = now()
		WHERE name = $1 AND (commit_pos, prepare_pos) >= ($2, $3) AND (commit_pos, prepare_pos) < ($4, $5)
		  AND pg_try_advisory_xact_lock_shared($7, hashtext($1))`
	tag, err := pool.Exec(ctx, q, name, bc, bp, c, p, nullTime(created), rebuildLockClass)
	if err != nil {
		return false, fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	return tag.RowsAffected() > 0, nil
}

// setState records a projector's state and error for every instance and the CLI to see.
func setState(ctx context.Context, pool *pgxpool.Pool, name, state, lastErr string) error {
	const q = `INSERT INTO projection_checkpoints AS cp (name, state, last_error) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET state = excluded.state, last_error = excluded.last_error, updated_at = now()`
	if _, err := pool.Exec(ctx, q, name, state, lastErr); err != nil {
		return fmt.Errorf("set state of %s: %w", name, err)
	}
	return nil
}

// readCheckpoint returns name's stored position, Start when it has none.
func readCheckpoint(ctx context.Context, pool *pgxpool.Pool, name string) (events.Position, error) {
	var c, p int64
	err := pool.QueryRow(ctx, `SELECT commit_pos, prepare_pos FROM projection_checkpoints WHERE name = $1`, name).Scan(&c, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.Start, nil
	}
	if err != nil {
		return events.Position{}, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	return fromDB(c, p), nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// StatusFromDB reads every projector's stored checkpoint and state, for the CLI
// (`litehost projections status`) and other processes that do not run the projectors. Lag is
// not filled in (it needs the event store): see FillLag.
func StatusFromDB(ctx context.Context, pool *pgxpool.Pool) ([]ProjectorStatus, error) {
	const q = `SELECT name, commit_pos, prepare_pos, event_created_at, updated_at, state, last_error
		FROM projection_checkpoints ORDER BY name`
	rows, err := pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read projector status: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ProjectorStatus, error) {
		var (
			s       ProjectorStatus
			c, p    int64
			created *time.Time
		)
		err := row.Scan(&s.Name, &c, &p, &created, &s.UpdatedAt, &s.State, &s.LastError)
		s.Position = fromDB(c, p)
		s.Checkpoint = s.Position.String()
		if created != nil {
			s.LastEventAt = created.UTC()
		}
		s.UpdatedAt = s.UpdatedAt.UTC()
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("read projector status: %w", err)
	}
	return out, nil
}
