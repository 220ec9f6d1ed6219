package commands

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultExpiryInterval is how often the expiry process manager looks for due projects; with
// the projection lag it keeps expiry within DESIGN §12's 5 seconds.
const DefaultExpiryInterval = time.Second

// expiryBatch bounds the projects expired per look.
const expiryBatch = 200

// Expiry is the process manager that expires projects whose expiresAt has passed (temporary
// projects after LITEHOST_TEMP_TTL, free claims after 7 days, expiresIn): it appends
// project.expired.v1 with actor system:expiry, and purges unclaimed temporary projects. It finds
// due projects in the projects read model and decides on the event stream, so several
// instances may run it at once: the same project's expiry has the same command ID everywhere,
// and optimistic concurrency plus replay detection make a second attempt a no-op.
type Expiry struct {
	p        *Projects
	pool     *pgxpool.Pool
	interval time.Duration
	logger   *slog.Logger
}

// NewExpiry returns the expiry process manager; interval <= 0 means DefaultExpiryInterval.
func NewExpiry(p *Projects, pool *pgxpool.Pool, interval time.Duration, logger *slog.Logger) *Expiry {
	if interval <= 0 {
		interval = DefaultExpiryInterval
	}
	return &Expiry{p: p, pool: pool, interval: interval, logger: logger}
}

// Run expires due projects every interval until ctx ends; it returns nil then. A failed round is
// logged and retried at the next tick.
func (e *Expiry) Run(ctx context.Context) error {
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		if _, err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.logger.Error("expire projects", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

const dueSQL = `SELECT id::text, expires_at FROM projects
	WHERE expires_at <= $1 AND expired_at IS NULL
	ORDER BY expires_at LIMIT $2`

// Tick expires the projects due now and returns how many it expired.
func (e *Expiry) Tick(ctx context.Context) (int, error) {
	rows, err := e.pool.Query(ctx, dueSQL, e.p.now(), expiryBatch)
	if err != nil {
		return 0, fmt.Errorf("due projects: %w", err)
	}
	type due struct {
		ID        string
		ExpiresAt time.Time
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[due])
	if err != nil {
		return 0, fmt.Errorf("due projects: %w", err)
	}
	n := 0
	for _, d := range list {
		done, err := e.p.Expire(ctx, d.ID, d.ExpiresAt)
		if err != nil {
			return n, fmt.Errorf("expire %s: %w", d.ID, err)
		}
		if done {
			n++
			e.logger.Debug("project expired", "project_id", d.ID)
		}
	}
	return n, nil
}
