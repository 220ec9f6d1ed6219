// Package process runs process managers: background workers that follow the global event log
// from their own checkpoint and act on some events (DESIGN §6). The OTP mailer, the NATS
// forwarder and the workspace cleanup share this loop:
//
//   - one instance acts at a time: it holds a PostgreSQL advisory lock on a dedicated
//     connection, pinged every LockPoll, and stops acting as soon as that connection is lost,
//     because the lock dies with its session; the other instances retry every LockPoll;
//   - it subscribes to the log from its row in process_checkpoints (commands.Migrate creates
//     the table) with a filter, handles the events one at a time in log order, and advances the
//     checkpoint only after an event was handled, so delivery is at-least-once;
//   - after a failure it starts over from the checkpoint.
//
// Retrying one event in place (with Backoff and Retry) is up to the handler: an error it returns
// ends the term and the runner starts over from the checkpoint after LockPoll.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
)

// Log is the part of events.Store a process manager follows.
type Log interface {
	SubscribeAll(ctx context.Context, from events.Position, filter events.Filter) (events.Subscription, error)
}

// Handler handles one event of the log. Handling the same event again must be harmless: an
// event whose checkpoint was not saved yet is handled again after a restart.
type Handler func(ctx context.Context, rec events.RecordedEvent) error

// DefaultLockPoll is Runner.LockPoll when it is zero.
const DefaultLockPoll = 2 * time.Second

// DefaultFlushMax is Runner.FlushMax when it is zero.
const DefaultFlushMax = 100

// Runner runs one process manager. Name, LockKey, Pool, Log, Logger and Handle or Open are
// required; the other fields are options whose zero value takes the default noted.
type Runner struct {
	// Name is the persistent ID: the checkpoint key in process_checkpoints. Renaming it starts
	// the process over from the beginning of the log.
	Name string
	// LockKey is the advisory-lock key that elects the one acting instance; unique per process.
	LockKey int64
	// Pool holds the checkpoint table and provides the lock's connection.
	Pool *pgxpool.Pool
	// Log is the event log followed, with Filter applied.
	Log    Log
	Filter events.Filter
	// Handle handles each event. An error ends the term; the runner starts over from the
	// checkpoint, so that event is handled again.
	Handle Handler
	// Open, when set instead of Handle, runs each time this instance takes the lock, before it
	// subscribes: it opens what handling needs for that term (a connection to an outside
	// system) and returns the term's handler and a func that closes what it opened. An error
	// ends the term like a failed Handle.
	Open func(ctx context.Context) (h Handler, close func(), err error)
	// LockPoll is how often a waiting instance tries to take the lock, and how often the
	// holder checks the lock's connection (DefaultLockPoll).
	LockPoll time.Duration
	// FlushInterval, when positive, batches checkpoint saves: a handled position is saved within
	// FlushInterval, after FlushMax unsaved events (DefaultFlushMax), and when the term ends.
	// A crash in between handles those events again, so use it only when that is cheap. Zero
	// saves the checkpoint after every event, before the next one is handled.
	FlushInterval time.Duration
	FlushMax      int
	// Logger receives the runner's own lines; narrow it to the process first.
	Logger *slog.Logger
}

// Run follows the log until ctx ends; it returns nil then. While another instance holds the lock
// it waits; after a failure (database or subscription lost, a handler error) it starts over from
// the checkpoint. It returns an error at once only for a Runner missing a required field.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.validate(); err != nil {
		return err
	}
	for {
		err := r.term(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			r.Logger.Error("process stopped; restarting from the checkpoint", "error", err)
		}
		if Sleep(ctx, r.lockPoll()) != nil {
			return nil
		}
	}
}

func (r *Runner) validate() error {
	var errs []error
	if r.Name == "" {
		errs = append(errs, errors.New("no Name"))
	}
	if r.Pool == nil {
		errs = append(errs, errors.New("no Pool"))
	}
	if r.Log == nil {
		errs = append(errs, errors.New("no Log"))
	}
	if r.Logger == nil {
		errs = append(errs, errors.New("no Logger"))
	}
	if (r.Handle == nil) == (r.Open == nil) {
		errs = append(errs, errors.New("exactly one of Handle and Open is needed"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("process %q: %w", r.Name, err)
	}
	return nil
}

func (r *Runner) lockPoll() time.Duration {
	if r.LockPoll <= 0 {
		return DefaultLockPoll
	}
	return r.LockPoll
}

// term takes the lock if it is free and, holding it, follows the log until ctx ends or something
// fails. It returns nil at once when another instance holds the lock.
func (r *Runner) term(ctx context.Context) error {
	return holdLock(ctx, r.Pool, r.LockKey, r.lockPoll(), r.Logger, r.follow)
}

// holdLock takes the advisory lock key if it is free and, holding it, runs fn until ctx ends or fn
// returns. fn's context ends as soon as the lock's connection is lost (checked every poll), since
// the lock dies with its session. It returns nil at once when another session holds the lock.
func holdLock(ctx context.Context, pool *pgxpool.Pool, key int64, poll time.Duration, logger *slog.Logger, fn func(context.Context) error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire lock connection: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked); err != nil {
		return fmt.Errorf("try lock: %w", err)
	}
	if !locked {
		return nil
	}
	logger.Info("took the process lock")
	defer func() {
		// The lock belongs to the session and the connection goes back to the pool: unlock it, or
		// close the connection, which ends the session and frees the lock.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			_ = conn.Conn().Close(uctx)
		}
	}()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchDone := make(chan struct{})
	go func() { // the lock dies with its session: stop acting if the connection is lost
		defer close(watchDone)
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := conn.Ping(runCtx); err != nil && runCtx.Err() == nil {
					cancel(fmt.Errorf("lock connection lost: %w", err))
					return
				}
			}
		}
	}()
	err = fn(runCtx)
	cancel(nil)
	<-watchDone
	if cause := context.Cause(runCtx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// follow handles every event after the checkpoint until ctx ends or something fails.
func (r *Runner) follow(ctx context.Context) error {
	handle := r.Handle
	if r.Open != nil {
		h, closeTerm, err := r.Open(ctx)
		if err != nil {
			return err
		}
		defer closeTerm()
		handle = h
	}
	from, err := r.Checkpoint(ctx)
	if err != nil {
		return err
	}
	sub, err := r.Log.SubscribeAll(ctx, from, r.Filter)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Close()

	var (
		pending events.Position
		unsaved int
	)
	flush := func(ctx context.Context) error {
		if unsaved == 0 {
			return nil
		}
		if err := r.saveCheckpoint(ctx, pending); err != nil {
			return err
		}
		unsaved = 0
		return nil
	}
	var tick <-chan time.Time // nil, so never ready, unless saves are batched
	flushMax := 1
	if r.FlushInterval > 0 {
		t := time.NewTicker(r.FlushInterval)
		defer t.Stop()
		tick = t.C
		flushMax = r.FlushMax
		if flushMax <= 0 {
			flushMax = DefaultFlushMax
		}
		defer func() {
			// Keep the progress made before a stop, even though ctx is over.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := flush(sctx); err != nil {
				r.Logger.Warn("save checkpoint at stop", "error", err)
			}
		}()
	}
	ch := sub.Events()
	for {
		select {
		case rec, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err := sub.Err(); err != nil {
					return fmt.Errorf("subscription: %w", err)
				}
				return errors.New("subscription ended")
			}
			if err := handle(ctx, rec); err != nil {
				return fmt.Errorf("handle %s at %s: %w", rec.Type, rec.Position, err)
			}
			pending, unsaved = rec.Position, unsaved+1
			if unsaved >= flushMax {
				if err := flush(ctx); err != nil {
					return err
				}
			}
		case <-tick:
			if err := flush(ctx); err != nil {
				return err
			}
		}
	}
}

// Checkpoint returns the position up to which the log has been handled (events.Start before the
// first save).
func (r *Runner) Checkpoint(ctx context.Context) (events.Position, error) {
	var c, p string
	err := r.Pool.QueryRow(ctx, `SELECT commit_pos::text, prepare_pos::text FROM process_checkpoints WHERE name = $1`, r.Name).Scan(&c, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.Start, nil
	}
	if err != nil {
		return events.Position{}, fmt.Errorf("load checkpoint: %w", err)
	}
	return events.ParsePosition(c + "/" + p)
}

// saveCheckpoint is a single autocommit statement: no transaction stays open while handling.
func (r *Runner) saveCheckpoint(ctx context.Context, pos events.Position) error {
	_, err := r.Pool.Exec(ctx, `
INSERT INTO process_checkpoints (name, commit_pos, prepare_pos, updated_at) VALUES ($1, $2::numeric, $3::numeric, now())
ON CONFLICT (name) DO UPDATE SET commit_pos = EXCLUDED.commit_pos, prepare_pos = EXCLUDED.prepare_pos, updated_at = now()`,
		r.Name, strconv.FormatUint(pos.Commit, 10), strconv.FormatUint(pos.Prepare, 10))
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", pos, err)
	}
	return nil
}
