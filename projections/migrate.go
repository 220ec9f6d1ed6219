package projections

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockID is the advisory lock that serialises concurrent Migrate calls (several
// instances starting at once); it differs from goose's default so other migration sets don't
// queue behind ours.
const migrationLockID = 0x6c68_7072_6f6a // "lhproj"

// versionTable is goose's bookkeeping table for the read-model schema, separate from the other
// migration sets of the database (commands, event store).
const versionTable = "projections_goose_version"

// Migrate applies the read-model schema migrations embedded from projections/migrations: the
// checkpoints table and every projector's tables. Out-of-order files are allowed because each
// team owns a number range and a lower number may be added after a higher one was applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("projection migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID))
	if err != nil {
		return fmt.Errorf("projection migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithTableName(versionTable),
		goose.WithSessionLocker(locker),
		goose.WithAllowOutofOrder(true),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("projection migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate projections: %w", err)
	}
	return nil
}
