package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
)

// QuotaGate serialises the quota-checked commands of one account (create, claim, unarchive,
// push, rollback). Quota usage is read from a read model, so two commands deciding at the same
// time would both see the usage before either and could together exceed the plan. Hold gives
// one command per account at a time; its release waits until the holder's events are projected,
// so the next holder's usage read includes them.
type QuotaGate interface {
	// Hold blocks until the caller holds accountID's turn. The caller must call release exactly
	// once (defer it), with the position of the events it appended (zero when none).
	Hold(ctx context.Context, accountID string) (release func(ctx context.Context, pos events.Position), err error)
}

// quotaLockClass is the first key of the quota gate's two-key advisory locks ("quot" in ASCII);
// the second is hashtext(accountID). It must differ from every other class key in use: pgstore's
// 1885827956 (streams) and 1885827957 (the append horizon); the single-key locks (migrations,
// mailer, forwarder, workspace cleanup) live in a separate key space.
const quotaLockClass int32 = 0x71756f74

// Defaults of PGQuotaGate's bounds.
const (
	DefaultQuotaLockWait   = 30 * time.Second
	DefaultQuotaSettleWait = 10 * time.Second
)

// unlockTimeout bounds the unlock at release; past it the connection is closed instead.
const unlockTimeout = 5 * time.Second

// errQuotaLockWait is the cause of Hold's own deadline, told apart from the caller's.
var errQuotaLockWait = errors.New("quota lock wait exceeded")

// PGQuotaGate is a QuotaGate over PostgreSQL session advisory locks, so it holds across every
// API instance on the database. A holder keeps one pool connection (the lock's session) until it
// releases. Within the process, waiters for the same account queue in memory rather than each
// blocking a connection, and at most half the pool's connections are lock sessions at once, so
// holders always find a connection for their own queries (the pool needs MaxConns >= 2).
type PGQuotaGate struct {
	pool   *pgxpool.Pool
	waiter Waiter
	// LockWait bounds how long Hold waits for its turn (default DefaultQuotaLockWait); past it
	// Hold answers 429 RATE_LIMITED.
	LockWait time.Duration
	// SettleWait bounds release's wait for the read models (default DefaultQuotaSettleWait).
	// Past it the lock is released anyway: the next holder may then miss the last write's usage.
	SettleWait time.Duration

	sessions chan struct{} // one token per connection used as a lock session in this process

	mu    sync.Mutex
	turns map[string]*accountTurn
}

// accountTurn queues this process's callers for one account; refs counts the callers holding or
// waiting, so the entry can be dropped when none is left.
type accountTurn struct {
	token chan struct{}
	refs  int
}

var _ QuotaGate = (*PGQuotaGate)(nil)

// NewPGQuotaGate returns a gate over pool whose release waits on waiter (the projections Runner).
func NewPGQuotaGate(pool *pgxpool.Pool, waiter Waiter) *PGQuotaGate {
	return &PGQuotaGate{pool: pool, waiter: waiter,
		sessions: make(chan struct{}, max(1, int(pool.Config().MaxConns)/2)),
		turns:    map[string]*accountTurn{}}
}

// Hold takes accountID's turn: first in this process, then across instances with
// pg_advisory_lock. It gives up when ctx ends or after LockWait.
func (g *PGQuotaGate) Hold(ctx context.Context, accountID string) (func(context.Context, events.Position), error) {
	waitCtx, cancel := context.WithTimeoutCause(ctx, positiveOr(g.LockWait, DefaultQuotaLockWait), errQuotaLockWait)
	defer cancel()
	leave, err := g.enter(waitCtx, accountID)
	if err != nil {
		return nil, g.waitErr(waitCtx, err)
	}
	held := false
	defer func() {
		if !held {
			leave()
		}
	}()
	select {
	case g.sessions <- struct{}{}:
	case <-waitCtx.Done():
		return nil, g.waitErr(waitCtx, waitCtx.Err())
	}
	defer func() {
		if !held {
			<-g.sessions
		}
	}()
	conn, err := g.pool.Acquire(waitCtx)
	if err != nil {
		return nil, g.waitErr(waitCtx, fmt.Errorf("acquire quota lock connection: %w", err))
	}
	if _, err := conn.Exec(waitCtx, `SELECT pg_advisory_lock($1, hashtext($2))`, quotaLockClass, accountID); err != nil {
		// A cancellation can race the grant, leaving the lock in this session: ending the session
		// frees it, and the pool drops the closed connection.
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		_ = conn.Conn().Close(cctx)
		ccancel()
		conn.Release()
		return nil, g.waitErr(waitCtx, fmt.Errorf("quota lock %s: %w", accountID, err))
	}
	held = true
	var once sync.Once
	return func(ctx context.Context, pos events.Position) {
		once.Do(func() {
			defer leave()
			defer func() { <-g.sessions }()
			defer conn.Release()
			// The events are appended whether or not the caller is still there, so the wait
			// and the unlock run even when ctx is cancelled, each within its own bound.
			ctx = context.WithoutCancel(ctx)
			if !pos.IsZero() && g.waiter != nil {
				wctx, wcancel := context.WithTimeout(ctx, positiveOr(g.SettleWait, DefaultQuotaSettleWait))
				_ = g.waiter.WaitFor(wctx, pos) // a late projection still has to let the next holder in
				wcancel()
			}
			uctx, ucancel := context.WithTimeout(ctx, unlockTimeout)
			defer ucancel()
			var unlocked bool
			err := conn.QueryRow(uctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, quotaLockClass, accountID).Scan(&unlocked)
			if err != nil || !unlocked {
				// The connection goes back to the pool: it must not keep the lock.
				_ = conn.Conn().Close(uctx)
			}
		})
	}, nil
}

// enter queues for accountID's turn within this process.
func (g *PGQuotaGate) enter(ctx context.Context, accountID string) (leave func(), err error) {
	g.mu.Lock()
	t := g.turns[accountID]
	if t == nil {
		t = &accountTurn{token: make(chan struct{}, 1)}
		g.turns[accountID] = t
	}
	t.refs++
	g.mu.Unlock()
	select {
	case t.token <- struct{}{}:
		return func() {
			<-t.token
			g.drop(accountID, t)
		}, nil
	case <-ctx.Done():
		g.drop(accountID, t)
		return nil, ctx.Err()
	}
}

func (g *PGQuotaGate) drop(accountID string, t *accountTurn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.refs--; t.refs == 0 {
		delete(g.turns, accountID)
	}
}

func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// waitErr turns Hold's own deadline into a retryable 429; the caller's cancellation and other
// failures pass through.
func (g *PGQuotaGate) waitErr(waitCtx context.Context, err error) error {
	if errors.Is(context.Cause(waitCtx), errQuotaLockWait) {
		return RateLimited("RATE_LIMITED", "too many concurrent changes to this account; retry shortly", time.Second, 0, time.Time{})
	}
	return err
}

// noRelease is the release of a command that needs no gate.
func noRelease(context.Context, events.Position) {}
