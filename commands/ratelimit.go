package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events/secret"
)

// Limiter counts requests per bucket in fixed windows stored in PostgreSQL, so a limit holds across
// every API instance on the same database. One atomic upsert per request: no lock is held between
// the read and the write, and two instances can never both take the last slot.
type Limiter struct {
	pool *pgxpool.Pool
	keys *secret.Keyring
}

// NewLimiter returns a Limiter over the rate_limits table of pool (created by Migrate).
func NewLimiter(pool *pgxpool.Pool) *Limiter { return &Limiter{pool: pool} }

// WithKeys returns l storing each bucket under its keyed hash. Bucket names hold client
// addresses and site IDs; the table needs only to tell buckets apart, not to name whom they count.
func (l *Limiter) WithKeys(keys *secret.Keyring) *Limiter {
	out := *l
	out.keys = keys
	return &out
}

// row is the stored name of bucket.
func (l *Limiter) row(bucket string) string {
	if l.keys == nil {
		return bucket
	}
	return l.keys.Hash(secret.PurposeRateBucket, bucket)
}

// Decision is the outcome of one Take.
type Decision struct {
	Allowed    bool
	Limit      int
	Remaining  int
	Reset      time.Time     // when the current window ends
	RetryAfter time.Duration // until Reset; zero when allowed
}

// Err returns nil for an allowed decision and a 429 RATE_LIMITED HTTPError otherwise.
func (d Decision) Err(msg string) error {
	if d.Allowed {
		return nil
	}
	return RateLimited("RATE_LIMITED", msg, d.RetryAfter, d.Limit, d.Reset)
}

// takeSQL starts a new window when the stored one has ended (window_start + window <= now) and
// counts into it otherwise. Refused requests are counted too: they are requests all the same.
const takeSQL = `
INSERT INTO rate_limits AS r (bucket, window_start, count) VALUES ($1, $2, 1)
ON CONFLICT (bucket) DO UPDATE SET
    window_start = CASE WHEN r.window_start + $3::bigint * interval '1 microsecond' <= $2 THEN $2 ELSE r.window_start END,
    count        = CASE WHEN r.window_start + $3::bigint * interval '1 microsecond' <= $2 THEN 1 ELSE r.count + 1 END
RETURNING window_start, count`

// Take counts one request in bucket at now and says whether it is within limit requests per
// window. now is a parameter (not the database clock) so callers and tests share one clock.
func (l *Limiter) Take(ctx context.Context, bucket string, limit int, window time.Duration, now time.Time) (Decision, error) {
	if limit <= 0 || window <= 0 {
		return Decision{}, fmt.Errorf("rate limit %s: limit and window must be positive", bucket)
	}
	var (
		start time.Time
		count int
	)
	if err := l.pool.QueryRow(ctx, takeSQL, l.row(bucket), now, window.Microseconds()).Scan(&start, &count); err != nil {
		return Decision{}, fmt.Errorf("rate limit %s: %w", bucket, err)
	}
	d := Decision{Allowed: count <= limit, Limit: limit, Remaining: max(limit-count, 0), Reset: start.Add(window)}
	if !d.Allowed {
		d.RetryAfter = d.Reset.Sub(now)
	}
	return d, nil
}

// refundSQL uncounts one request of the window that is still current; a window that has been
// replaced since (or pruned) is left alone.
const refundSQL = `UPDATE rate_limits SET count = count - 1 WHERE bucket = $1 AND window_start = $2 AND count > 0`

// Refund uncounts one request that d (a Decision of Take on bucket with window) counted, for
// limits that count only failures: take before the work so concurrent requests cannot overshoot
// the limit, refund when the work succeeded.
func (l *Limiter) Refund(ctx context.Context, bucket string, d Decision, window time.Duration) error {
	if _, err := l.pool.Exec(ctx, refundSQL, l.row(bucket), d.Reset.Add(-window)); err != nil {
		return fmt.Errorf("rate limit %s: refund: %w", bucket, err)
	}
	return nil
}

// Prune deletes buckets whose window started before cutoff (callers pass now minus their longest
// window); a pruned bucket simply starts a fresh window at its next request.
func (l *Limiter) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := l.pool.Exec(ctx, `DELETE FROM rate_limits WHERE window_start < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("prune rate limits: %w", err)
	}
	return tag.RowsAffected(), nil
}
