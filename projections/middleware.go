package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
// transaction. The projector is the router handler's name. A message carrying several events
// (a Subscriber batch) is applied in one such transaction.
type ProjectionTx struct {
	Pool *pgxpool.Pool
	// Interested, when set, reports whether projector name handles events of type t. Events it
	// does not handle never reach the handler: they go to Skipped, or without Skipped they
	// advance the checkpoint in one guarded statement without a transaction.
	Interested func(name, eventType string) bool
	// Skipped, when set, is told about the n events up to pos (one message) the projector does
	// not handle instead of their checkpoint being written here: the Runner advances the projector in memory at once
	// and persists the checkpoint lazily, so an event no read model cares about costs no commit.
	// Skipping is idempotent, so a checkpoint persisted late only means a few such events are
	// read and skipped again after a crash.
	Skipped func(name string, pos events.Position, created time.Time, n int)
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
		if recs := batchFrom(ctx); len(recs) > 1 {
			return m.applyBatch(msg, name, recs, h)
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
				m.Skipped(name, pos, created, 1)
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

// applyBatch applies the events of one message in one transaction: a projector that is behind
// pays one commit for many events. When one of them fails, the batch is rolled back and
// applied again one event per transaction, so the projector stops right before the failing
// event with every earlier one committed, as it would without batches.
func (m ProjectionTx) applyBatch(msg *message.Message, name string, recs []events.RecordedEvent, h message.HandlerFunc) ([]*message.Message, error) {
	ctx := msg.Context()
	last := recs[len(recs)-1]
	if m.Interested != nil && !slices.ContainsFunc(recs, func(r events.RecordedEvent) bool { return m.Interested(name, r.Type) }) {
		if m.Skipped != nil {
			m.Skipped(name, last.Position, last.CreatedAt, len(recs))
			return nil, nil
		}
		if _, err := advanceIfBehind(ctx, m.Pool, name, last.Position, last.CreatedAt); err != nil {
			return nil, err
		}
		m.advanced(name, last.Position, last.CreatedAt, false)
		return nil, nil
	}
	err := m.applyAll(ctx, name, recs, h)
	if err == nil || ctx.Err() != nil {
		return nil, err
	}
	single := m.Middleware(h)
	one := context.WithValue(ctx, batchKey{}, nil) // the events one by one, not this batch again
	for _, rec := range recs {
		sub := newMessage(rec)
		sub.SetContext(one)
		if _, err := single(sub); err != nil {
			return nil, fmt.Errorf("%s at %s: %w", rec.Type, rec.Position, err)
		}
	}
	return nil, nil // the batch's failure did not repeat one event at a time
}

// applyAll is applyBatch's single transaction. A handler's panic is returned as an error, so
// that applyBatch retries the events one at a time (where the router's Recoverer handles it).
func (m ProjectionTx) applyAll(ctx context.Context, name string, recs []events.RecordedEvent, h message.HandlerFunc) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("projection tx %s: handler panicked: %v", name, p)
		}
	}()
	tx, err := m.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("projection tx %s: begin: %w", name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	cp, err := lockCheckpoint(ctx, tx, name)
	if err != nil {
		return err
	}
	start := cp
	var (
		created time.Time
		applied []events.Position
	)
	for _, rec := range recs {
		if rec.Position.Compare(cp) <= 0 {
			continue // already applied (a redelivery, or another instance got here first)
		}
		if m.Interested == nil || m.Interested(name, rec.Type) {
			sub := newMessage(rec)
			info, err := parseInfo(sub)
			if err != nil {
				return fmt.Errorf("projection tx %s: %w", name, err)
			}
			sub.SetContext(WithTx(ctx, tx, info))
			if _, err := h(sub); err != nil {
				return err
			}
			applied = append(applied, rec.Position)
		}
		cp, created = rec.Position, rec.CreatedAt
	}
	if cp != start {
		if err := advanceCheckpoint(ctx, tx, name, cp, created); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("projection tx %s: commit: %w", name, err)
	}
	for _, p := range applied {
		m.advanced(name, p, time.Time{}, true)
	}
	m.advanced(name, cp, created, false)
	return nil
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
