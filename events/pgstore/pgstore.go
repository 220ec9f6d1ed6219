// Package pgstore is the PostgreSQL adapter of the event store port (DESIGN §3): one append-only
// events table, appends serialised per stream by an advisory lock, and a global log ordered by
// (transaction id, row sequence) that only shows transactions older than every one still running,
// so that a reader never skips an event whose transaction commits late.
//
// Positions are {Commit: appending transaction id (xid8), Prepare: global_position}; the
// AppendResult position of a batch is its last event's, exactly as ReadAll later returns it.
//
// Idempotency follows EventStoreDB (esdb-protocol-notes §1): a batch whose first id is already
// in the stream is an idempotent success, returning the original NextVersion and Position, when
// the whole batch is stored there in order and the expectation points at the same place (NoStream:
// version 0; Exact(v): v+1; Any and StreamExists: anywhere); otherwise it is a wrong expected
// version. Event ids are unique per stream, so where EventStoreDB would store a duplicate id (a
// later id of a new batch already in the stream, or a resend with Exact(current)) pgstore reports
// a wrong expected version instead; a command handler reloads and recognises its work either way.
//
// Each subscription holds one extra connection for LISTEN (application_name pgstore-listener)
// besides the pool's; without it, polling alone still delivers.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
)

// notifyChannel is the LISTEN/NOTIFY channel pgstore_append signals on at commit.
const notifyChannel = "pgstore_events"

// Store is the PostgreSQL event store. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	logger *slog.Logger

	// pollInterval bounds how long a live subscription waits without a notification before it
	// looks at the log anyway: LISTEN is only a wake-up hint.
	pollInterval time.Duration
	// listen turns the LISTEN hint on; tests turn it off to prove that polling alone delivers.
	listen bool
}

var _ events.Store = (*Store)(nil)

// New returns a store on pool. Call Migrate once before use.
func New(pool *pgxpool.Pool, logger *slog.Logger) *Store {
	return &Store{pool: pool, logger: logger, pollInterval: 500 * time.Millisecond, listen: true}
}

// querier is what an append needs from a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Append implements events.Store. The whole append is one statement (see pgstore_append in the
// migration): a per-stream advisory lock, the idempotency and expected-version checks, one
// multi-row insert and a notification at commit, in one round trip.
func (s *Store) Append(ctx context.Context, stream string, expected events.Expected, evs []events.EventData) (events.AppendResult, error) {
	return appendTo(ctx, s.pool, stream, expected, evs)
}

func appendTo(ctx context.Context, q querier, stream string, expected events.Expected, evs []events.EventData) (events.AppendResult, error) {
	if err := events.ValidateAppend(stream, expected, evs); err != nil {
		return events.AppendResult{}, err
	}
	ids := make([]uuid.UUID, len(evs))
	types := make([]string, len(evs))
	data := make([]string, len(evs))
	meta := make([]*string, len(evs))
	for i, e := range evs {
		ids[i], types[i], data[i] = e.ID, e.Type, string(e.Data)
		if len(e.Metadata) > 0 {
			m := string(e.Metadata)
			meta[i] = &m
		}
	}
	var (
		outcome                            string
		actual                             int64
		nextVersion, commitPos, preparePos *int64
	)
	err := q.QueryRow(ctx, `SELECT outcome, actual, next_version, commit_pos, prepare_pos
		FROM pgstore_append($1, $2, $3, $4, $5, $6, $7)`,
		stream, int(expected.Kind), int64(expected.Version), ids, types, data, meta,
	).Scan(&outcome, &actual, &nextVersion, &commitPos, &preparePos)
	if err != nil {
		return events.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	switch outcome {
	case "ok", "duplicate":
		return events.AppendResult{
			NextVersion: uint64(*nextVersion),
			Position:    events.Position{Commit: uint64(*commitPos), Prepare: uint64(*preparePos)},
		}, nil
	case "wrong":
		return events.AppendResult{}, &events.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: actual}
	}
	return events.AppendResult{}, fmt.Errorf("append %s: unexpected outcome %q", stream, outcome)
}

const selectColumns = `event_id, stream_id, stream_version, event_type, data, metadata,
	tx_id::text::bigint, global_position, created_at`

// ReadStream implements events.Store. It reads committed rows directly (no transaction-id
// horizon): a command handler must see the stream's latest version.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]events.RecordedEvent, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read %s: max must be positive, got %d", stream, max)
	}
	if from > math.MaxInt64 {
		return nil, fmt.Errorf("read %s: version %d out of range", stream, from)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+selectColumns+` FROM events
		WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3`,
		stream, int64(from), max)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	recs, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	if len(recs) > 0 {
		return recs, nil
	}
	// Reading past the end of a stream is an empty page; only a stream without events is missing.
	var exists bool
	if from > 0 {
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1)`, stream).Scan(&exists); err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
	}
	if !exists {
		return nil, fmt.Errorf("read %s: %w", stream, events.ErrStreamNotFound)
	}
	return nil, nil
}

// ReadAll implements events.Store: up to max events after from in log order, only from
// transactions older than the oldest one still running, so the page can never later gain an
// event before its end.
func (s *Store) ReadAll(ctx context.Context, from events.Position, max int) ([]events.RecordedEvent, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read all: max must be positive, got %d", max)
	}
	if from.Commit > math.MaxInt64 || from.Prepare > math.MaxInt64 {
		return nil, fmt.Errorf("read all: position %s out of range", from)
	}
	h, err := s.horizon(ctx)
	if err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+selectColumns+` FROM events
		WHERE (tx_id, global_position) > ($1::bigint::text::xid8, $2)
		  AND tx_id < $4::bigint::text::xid8
		ORDER BY tx_id, global_position LIMIT $3`,
		int64(from.Commit), int64(from.Prepare), max, h)
	if err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	recs, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	return recs, nil
}

// Head returns the position of the newest event that ReadAll can return now, or events.Start
// when the log is empty. Projections compare it with their checkpoint to report their lag.
func (s *Store) Head(ctx context.Context) (events.Position, error) {
	h, err := s.horizon(ctx)
	if err != nil {
		return events.Position{}, fmt.Errorf("head: %w", err)
	}
	var commit, prepare int64
	err = s.pool.QueryRow(ctx, `SELECT tx_id::text::bigint, global_position FROM events
		WHERE tx_id < $1::bigint::text::xid8
		ORDER BY tx_id DESC, global_position DESC LIMIT 1`, h).Scan(&commit, &prepare)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.Start, nil
	}
	if err != nil {
		return events.Position{}, fmt.Errorf("head: %w", err)
	}
	return events.Position{Commit: uint64(commit), Prepare: uint64(prepare)}, nil
}

// horizon is the transaction id below which no append is in flight (pgstore_horizon). It must
// be its own statement, run before the read it bounds: see the function's comment.
func (s *Store) horizon(ctx context.Context) (int64, error) {
	var h int64
	if err := s.pool.QueryRow(ctx, `SELECT pgstore_horizon()`).Scan(&h); err != nil {
		return 0, fmt.Errorf("horizon: %w", err)
	}
	return h, nil
}

// pendingBeyond reports whether committed events exist after pos that ReadAll does not show yet
// because an older transaction is still running: a live subscription then looks again soon
// instead of waiting for the next notification.
func (s *Store) pendingBeyond(ctx context.Context, pos events.Position) (bool, error) {
	var pending bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events
		WHERE (tx_id, global_position) > ($1::bigint::text::xid8, $2))`,
		int64(pos.Commit), int64(pos.Prepare)).Scan(&pending)
	if err != nil {
		return false, fmt.Errorf("read all: %w", err)
	}
	return pending, nil
}

func collect(rows pgx.Rows) ([]events.RecordedEvent, error) {
	var recs []events.RecordedEvent
	for rows.Next() {
		var (
			r                        events.RecordedEvent
			version, commit, prepare int64
			data, meta               []byte
		)
		if err := rows.Scan(&r.ID, &r.Stream, &version, &r.Type, &data, &meta, &commit, &prepare, &r.CreatedAt); err != nil {
			rows.Close()
			return nil, err
		}
		r.Version = uint64(version)
		r.Data, r.Metadata = data, meta
		r.Position = events.Position{Commit: uint64(commit), Prepare: uint64(prepare)}
		r.CreatedAt = r.CreatedAt.UTC()
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return recs, nil
}
