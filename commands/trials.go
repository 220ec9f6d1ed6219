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
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/events"
)

// TrialEndName is the trial process manager's name and actor (system:trial-end).
const TrialEndName = "trial-end"

// trialEndLock is the advisory-lock key that elects the one acting instance ("trialend").
const trialEndLock int64 = 0x747269616c656e64

// DefaultTrialInterval is how often the elected instance looks for trials that are due.
const DefaultTrialInterval = time.Second

// trialBatch bounds the trials ended per round.
const trialBatch = 200

// trialEndNamespace seeds the command IDs of trial ends: one per account, since an account has at
// most one trial.
var trialEndNamespace = uuid.MustParse("b3c0f1e2-7a4d-4c59-8e21-0d6f9a3b5c74")

// TrialEnd is the process manager that ends trials on time: every interval, on the one instance
// that holds its lock (process.Periodic), it finds accounts whose trial is due in the accounts read
// model and appends account.trial_ended.v1 and account.plan_changed.v1 (to free) to each, with
// actor system:trial-end. It decides on the account's stream (account.EndTrial), so a trial an
// operator ended by setting a plan is left alone, and the command ID is derived from the account,
// so a round that repeats an end (the read model not caught up yet, or a new holder after a crash)
// appends nothing.
type TrialEnd struct {
	proc process.Periodic
	exec *Executor
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewTrialEnd returns the trial process manager; interval <= 0 means DefaultTrialInterval.
func NewTrialEnd(store EventStore, pool *pgxpool.Pool, interval time.Duration, now func() time.Time, logger *slog.Logger) *TrialEnd {
	if interval <= 0 {
		interval = DefaultTrialInterval
	}
	t := &TrialEnd{exec: NewExecutor(store), pool: pool, now: now}
	t.proc = process.Periodic{Name: TrialEndName, LockKey: trialEndLock, Pool: pool, Interval: interval,
		Tick: func(ctx context.Context) error { _, err := t.Tick(ctx); return err }, Logger: logger.With("process", TrialEndName)}
	return t
}

// Run ends due trials until ctx ends; it returns nil then.
func (t *TrialEnd) Run(ctx context.Context) error { return t.proc.Run(ctx) }

// Tick ends the trials due now and returns how many it ended.
func (t *TrialEnd) Tick(ctx context.Context) (int, error) {
	rows, err := t.pool.Query(ctx, `SELECT id::text FROM accounts WHERE trial_ends_at <= $1
		ORDER BY trial_ends_at LIMIT $2`, t.now(), trialBatch)
	if err != nil {
		return 0, fmt.Errorf("due trials: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("due trials: %w", err)
	}
	n := 0
	for _, id := range ids {
		ended, err := t.End(ctx, id)
		if err != nil {
			return n, err
		}
		if ended {
			n++
		}
	}
	return n, nil
}

// End ends the account's trial if it is due, and reports whether this call ended it.
func (t *TrialEnd) End(ctx context.Context, accountID string) (bool, error) {
	ctx = events.WithMetadata(ctx, events.Metadata{Actor: events.SystemActor(TrialEndName)})
	res, err := t.exec.Execute(ctx, uuid.NewSHA1(trialEndNamespace, []byte(accountID)), accountStream(accountID),
		func(s Stream) ([]events.Event, error) {
			return account.EndTrial(account.Replay(s.Events), t.now())
		})
	if err != nil {
		return false, fmt.Errorf("end trial of %s: %w", accountID, err)
	}
	return len(res.Events) > 0 && !res.Replayed, nil
}
