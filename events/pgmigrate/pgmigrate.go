// Package pgmigrate applies one set of embedded goose SQL migrations to PostgreSQL. Each owner of
// tables (the event store, the read models, the command side) keeps its own set and its own
// version table, so the sets evolve independently.
package pgmigrate

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Up applies every pending migration of fsys (files at its root) and records them in table.
// A PostgreSQL session lock serialises instances that start at the same time.
func Up(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, table string) error {
	h := fnv.New64a()
	h.Write([]byte("litehost-migrate:" + table))
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64() >> 1)))
	if err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(table), goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	return nil
}
