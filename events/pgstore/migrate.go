package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationTable keeps pgstore's migration history apart from the read-model and command-side
// migration sets, which share the database.
const migrationTable = "pgstore_goose_version"

// migrationLockID is the session advisory lock that serialises concurrent Migrate calls (several
// instances starting at once); distinct from goose's default so other sets don't wait on it.
const migrationLockID int64 = 0x7067_7374_6f72_65 // "pgstore"

// Migrate creates or upgrades the event store schema. It is idempotent and safe to run from
// several processes at once.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("migrate event store: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrate event store: %w", err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, sub,
		goose.WithTableName(migrationTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.logger),
	)
	if err != nil {
		return fmt.Errorf("migrate event store: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate event store: %w", err)
	}
	return nil
}
