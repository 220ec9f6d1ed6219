package readapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/litehost/litehost/events"
)

// Querier is the part of a pgx pool (or connection, or transaction) the read helpers query with.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// QueryAll runs query on db and collects every row into a T by column name; what names the read
// in the error. The read handlers use it, and so does cmd/litehost's audit when it checks the read
// model against the log.
func QueryAll[T any](ctx context.Context, db Querier, what, query string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByName[T])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return got, nil
}

// queryOne runs query on db and collects its one row into a T by column name: ErrNotFound when
// there is none, and an error naming what for anything else.
func queryOne[T any](ctx context.Context, db Querier, what, query string, args ...any) (T, error) {
	var zero T
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	row, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[T])
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, ErrNotFound
	}
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	return row, nil
}

// caller returns the authenticated principal of the request; without one it records the missing
// key and returns false.
func caller(c *gin.Context) (events.Principal, bool) {
	pr, ok := events.PrincipalFrom(c.Request.Context())
	if !ok {
		_ = c.Error(AuthError{Code: CodeAPIKeyMissing})
	}
	return pr, ok
}

// pathID returns the :id path parameter. One that is not a UUID names nothing, so it records
// ErrNotFound (not a validation error: the answer must not tell a bad ID from another tenant's) and
// returns false.
func pathID(c *gin.Context) (string, bool) {
	id := c.Param("id")
	if uuid.Validate(id) != nil {
		_ = c.Error(ErrNotFound)
		return "", false
	}
	return id, true
}

// callerAndID is caller then pathID: the routes on one resource that must be the caller's.
func callerAndID(c *gin.Context) (events.Principal, string, bool) {
	pr, ok := caller(c)
	if !ok {
		return pr, "", false
	}
	id, ok := pathID(c)
	return pr, id, ok
}
