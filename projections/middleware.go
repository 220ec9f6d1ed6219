package projections

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
)

// EventInfo describes the recorded event a projector handler is applying.
type EventInfo struct {
	ID        uuid.UUID
	Type      string
	Stream    string
	Version   uint64
	Position  events.Position
	CreatedAt time.Time
	Metadata  events.Metadata
}

type txKey struct{}

type eventKey struct{}

// Tx returns the transaction a projector handler writes its read model in. ProjectionTx
// commits it together with the checkpoint. It is nil outside a projection (a programming error
// that the router's Recoverer turns into a projector failure).
func Tx(ctx context.Context) pgx.Tx {
	tx, _ := ctx.Value(txKey{}).(pgx.Tx)
	return tx
}

// Event returns the recorded-event details (stream, version, position, created time, metadata)
// of the event a projector handler is applying; the zero EventInfo outside a projection.
func Event(ctx context.Context) EventInfo {
	e, _ := ctx.Value(eventKey{}).(EventInfo)
	return e
}

// WithTx returns ctx carrying tx and info the way ProjectionTx passes them to handlers; rebuilds
// and tests that call handlers directly use it.
func WithTx(ctx context.Context, tx pgx.Tx, info EventInfo) context.Context {
	return context.WithValue(context.WithValue(ctx, txKey{}, tx), eventKey{}, info)
}

// ProjectionTx is the router middleware that makes a projector exactly-once over at-least-once
// delivery: it locks the projector's checkpoint row, skips an event at or before it, runs the
// handler with the transaction in the context, advances the checkpoint and commits, all in one
// transaction. The projector is the router handler's name.
type ProjectionTx struct {
	Pool *pgxpool.Pool
	// Interested, when set, reports whether projector name handles events of type t. Events it
	// does not handle never reach the handler: they go to Skipped, or without Skipped they
	// advance the checkpoint in one guarded statement without a transaction.
	Interested func(name, eventType string) bool
	// Skipped, when set, is told about each event the projector does not handle instead of that
	// event's checkpoint being written here: the Runner advances the projector in memory at once
	// and persists the checkpoint lazily, so an event no read model cares about costs no commit.
	// Skipping is idempotent, so a checkpoint persisted late only means a few such events are
	// read and skipped again after a crash.
	Skipped func(name string, pos events.Position, created time.Time)
	// Advanced, when set, is told after each commit that name's checkpoint is at least pos;
	// applied is true when the handler ran.
	Advanced func(name string, pos events.Position, created time.Time, applied bool)
}

// Middleware wraps h.
func (m ProjectionTx) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		name := message.HandlerNameFromCtx(ctx)
		if name == "" {
			return nil, errors.New("projection tx: message has no handler name")
		}
		eventType := msg.Metadata.Get(MetaName)
		if eventType == "" {
			return nil, fmt.Errorf("projection tx %s: message without event type", name)
		}
		if m.Interested != nil && !m.Interested(name, eventType) {
			// Only the position matters here: the rest of the metadata is not parsed.
			pos, created, err := parsePosition(msg)
			if err != nil {
				return nil, fmt.Errorf("projection tx %s: %w", name, err)
			}
			if m.Skipped != nil {
				m.Skipped(name, pos, created)
				return nil, nil
			}
			if _, err := advanceIfBehind(ctx, m.Pool, name, pos, created); err != nil {
				return nil, err
			}
			m.advanced(name, pos, created, false)
			return nil, nil
		}
		info, err := parseInfo(msg)
		if err != nil {
			return nil, fmt.Errorf("projection tx %s: %w", name, err)
		}
		tx, err := m.Pool.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("projection tx %s: begin: %w", name, err)
		}
		// Rollback after Commit is a no-op; on failure it releases the row lock. It must run
		// even when ctx was cancelled mid-handler.
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		cp, err := lockCheckpoint(ctx, tx, name)
		if err != nil {
			return nil, err
		}
		if info.Position.Compare(cp) <= 0 {
			// Already applied (a redelivery, or another instance got here first).
			m.advanced(name, cp, time.Time{}, false)
			return nil, nil
		}
		msg.SetContext(WithTx(ctx, tx, info))
		// Restore the context so a retry of this message starts clean, without this tx.
		defer msg.SetContext(ctx)
		produced, err := h(msg)
		if err != nil {
			return nil, err
		}
		if err := advanceCheckpoint(ctx, tx, name, info.Position, info.CreatedAt); err != nil {
			return nil, err
		}
		if err := tx.Commit(ctx); err != nil {
			return nil, fmt.Errorf("projection tx %s: commit: %w", name, err)
		}
		m.advanced(name, info.Position, info.CreatedAt, true)
		return produced, nil
	}
}

func (m ProjectionTx) advanced(name string, pos events.Position, created time.Time, applied bool) {
	if m.Advanced != nil {
		m.Advanced(name, pos, created, applied)
	}
}

// parseInfo reads the event details the Subscriber put in the message metadata.
func parseInfo(msg *message.Message) (EventInfo, error) {
	var (
		info EventInfo
		err  error
	)
	info.Type = msg.Metadata.Get(MetaName)
	info.Stream = msg.Metadata.Get(MetaStream)
	if info.Type == "" || info.Stream == "" {
		return info, errors.New("message without event type or stream")
	}
	if info.ID, err = uuid.Parse(msg.UUID); err != nil {
		return info, fmt.Errorf("event id %q: %w", msg.UUID, err)
	}
	if info.Version, err = strconv.ParseUint(msg.Metadata.Get(MetaVersion), 10, 64); err != nil {
		return info, fmt.Errorf("event version: %w", err)
	}
	if info.Position, info.CreatedAt, err = parsePosition(msg); err != nil {
		return info, err
	}
	if info.Metadata, err = events.ParseMetadata([]byte(msg.Metadata.Get(MetaMetadata))); err != nil {
		return info, err
	}
	return info, nil
}

// parsePosition reads the event's position and created time (zero when absent).
func parsePosition(msg *message.Message) (events.Position, time.Time, error) {
	pos, err := events.ParsePosition(msg.Metadata.Get(MetaPosition))
	if err != nil {
		return events.Position{}, time.Time{}, err
	}
	var created time.Time
	if c := msg.Metadata.Get(MetaCreated); c != "" {
		if created, err = time.Parse(time.RFC3339Nano, c); err != nil {
			return events.Position{}, time.Time{}, fmt.Errorf("event created time: %w", err)
		}
	}
	return pos, created, nil
}
