package commands

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/domain/account"
)

// Kinds of Revocation.
const (
	RevokedSession = "session" // every key of the session
	RevokedAPIKey  = "api_key" // one key, rotated away by a refresh
)

// revocationKeep is how long a revocation is kept. A row covers the accounts projector's lag:
// once api_keys holds the revocation the key check refuses the key from there, however long the
// key would otherwise have lived (keys renew in use, so that has no bound). A refresh replay also
// reads the rows of rotations (Refresh), which matters only while the rotation's own refresh
// token can still be valid: at least the default idle window of a key.
const revocationKeep = account.DefaultKeyIdleTTL

// Revocation names a credential that must stop working everywhere at once.
type Revocation struct {
	ID        string // session ID or API key ID
	Kind      string // RevokedSession or RevokedAPIKey
	AccountID string
	At        time.Time
}

// Revocations is the shared, synchronous record of revoked credentials that the bearer-key
// check consults besides the read model. PGRevocations implements it.
type Revocations interface {
	// Record stores rs, each at most once; it returns only when every row is stored.
	Record(ctx context.Context, rs ...Revocation) error
	// Recorded reports whether the credential id has a revocation.
	Recorded(ctx context.Context, id string) (bool, error)
}

// ErrRevocationUnconfirmed is the answer when a revocation's events are stored but its row could
// not be written: the credential may still work somewhere, so the request did not succeed. A
// retry with the same Idempotency-Key finds the events and writes the row.
var ErrRevocationUnconfirmed = &HTTPError{
	Status: http.StatusServiceUnavailable, Code: "REVOCATION_UNCONFIRMED", RetryAfter: time.Second,
	Message: "the revocation could not be confirmed on every instance; retry with the same Idempotency-Key",
}

// PGRevocations keeps revocations in PostgreSQL, the database every instance reads.
type PGRevocations struct {
	pool *pgxpool.Pool
}

var _ Revocations = (*PGRevocations)(nil)

// NewPGRevocations returns the revocation record over pool.
func NewPGRevocations(pool *pgxpool.Pool) *PGRevocations { return &PGRevocations{pool: pool} }

// Record implements Revocations with one batch of idempotent inserts.
func (r *PGRevocations) Record(ctx context.Context, rs ...Revocation) error {
	var b pgx.Batch
	for _, v := range rs {
		b.Queue(`INSERT INTO revoked_credentials (id, kind, account_id, revoked_at, expires_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
			v.ID, v.Kind, v.AccountID, v.At, v.At.Add(revocationKeep))
	}
	if err := r.pool.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("record revocation: %w", err)
	}
	return nil
}

// Recorded implements Revocations.
func (r *PGRevocations) Recorded(ctx context.Context, id string) (bool, error) {
	var ok bool
	if err := r.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM revoked_credentials WHERE id = $1)`, id).Scan(&ok); err != nil {
		return false, fmt.Errorf("read revocation: %w", err)
	}
	return ok, nil
}

// Prune deletes the revocations that can no longer matter (expired before now).
func (r *PGRevocations) Prune(ctx context.Context, now time.Time) (int64, error) {
	tag, err := r.pool.Exec(ctx, `DELETE FROM revoked_credentials WHERE expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("prune revocations: %w", err)
	}
	return tag.RowsAffected(), nil
}
