package commands

import (
	"context"
	"embed"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events/pgmigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates or updates the command side's own tables (idempotency keys, rate limits,
// process checkpoints) in the database of pool.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	return pgmigrate.Up(ctx, pool, sub, "commands_goose_version")
}
