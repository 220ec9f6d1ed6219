package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/domain/project"
)

// PGProjectLookup answers ProjectLookup from the projects read model (projections "projects").
// Quota usage read from a read model can trail a write still being projected, so the commands
// read it only while holding the account's QuotaGate turn, whose release waits for the holder's
// events to be projected (without a gate, two creates racing at the very limit may both pass).
type PGProjectLookup struct {
	pool *pgxpool.Pool
}

var _ ProjectLookup = (*PGProjectLookup)(nil)

// NewPGProjectLookup returns a lookup over pool.
func NewPGProjectLookup(pool *pgxpool.Pool) *PGProjectLookup { return &PGProjectLookup{pool: pool} }

const usageSQL = `SELECT count(*), coalesce(sum(size_bytes), 0)::bigint FROM projects
	WHERE owner_id = $1 AND archived_at IS NULL AND expired_at IS NULL`

// Usage counts accountID's active projects and the bytes of their live deployments.
func (l *PGProjectLookup) Usage(ctx context.Context, accountID string) (project.Usage, error) {
	var u project.Usage
	if err := l.pool.QueryRow(ctx, usageSQL, accountID).Scan(&u.ActiveProjects, &u.StorageBytes); err != nil {
		return u, fmt.Errorf("project usage: %w", err)
	}
	return u, nil
}

// ByClaimHash finds the project of a claim token hash.
func (l *PGProjectLookup) ByClaimHash(ctx context.Context, hash string) (string, error) {
	var id string
	err := l.pool.QueryRow(ctx, `SELECT id::text FROM projects WHERE claim_token_hash = $1`, hash).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("claim lookup: %w", err)
	}
	return id, nil
}

// LiveManifests returns the manifest hash of every deployment of every live project: what blob
// garbage collection (blobs.Store.Collect) must keep. Deleted and purged projects' deployments
// are gone from the read model, so their blobs become collectable; the collector's grace period
// covers uploads whose deployment event is not projected yet.
func (l *PGProjectLookup) LiveManifests(ctx context.Context) ([]string, error) {
	rows, err := l.pool.Query(ctx, `SELECT DISTINCT manifest_hash FROM deployments`)
	if err != nil {
		return nil, fmt.Errorf("live manifests: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("live manifests: %w", err)
	}
	return out, nil
}
