package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// openPool connects to the database of dsn, creating the database first when it does not exist
// (so `litehost serve` works on a fresh PostgreSQL with no manual setup).
func openPool(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	if err := ensureDatabase(ctx, dsn); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	if cfg.MaxConns < 16 {
		// Writes wait for projections while holding no connection, but subscriptions, LISTEN and
		// the projectors each keep one; leave room for request handlers.
		cfg.MaxConns = 16
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %w", redactURL(dsn), err)
	}
	return pool, nil
}

func ensureDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	name := strings.Trim(u.Path, "/")
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name: the database is missing
		return fmt.Errorf("connect to database %s: %w", redactURL(dsn), err)
	}
	admin := *u
	admin.Path = "/postgres"
	c, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to %s to create database %q: %w", redactURL(admin.String()), name, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: another instance won
			return nil
		}
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}
