package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
)

// RebuildBatch is how many events a rebuild applies per transaction: replaying history one
// transaction per event would be dominated by commits.
const RebuildBatch = 500

// Rebuild empties the projectors' read models and replays the whole log into them. The tables
// are truncated and the checkpoints reset in one transaction, so a crash leaves either the old
// read model or an empty one that a Runner (or another Rebuild) fills from the start. Events are
// applied RebuildBatch at a time, each batch in one transaction with the checkpoints.
//
// Runners may keep running meanwhile, in this process or others: for the whole rebuild, one
// connection of pool holds each projector's rebuild lock exclusively (holdRebuild) and does the
// reset and every batch, while every live checkpoint write takes that lock shared. So a Runner
// applies nothing to a projector being rebuilt (it waits in its transaction, then continues
// after the rebuilt checkpoint: no event lost, none applied twice), and its WaitFor for events
// appended during the rebuild waits for the rebuild's end (or its WaitTimeout). A Runner on the
// same pool holds up to one connection per waiting projector. After a failed rebuild, run it
// again: a Runner that kept running does not go back to replay what the rebuild did not reach.
//
// progress, when set, is called after each batch with the events read so far and the total,
// which is -1 unless the store implements EventCounter.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, store LogReader, logger *slog.Logger, progress func(done, total int), projectors ...Projector) error {
	if len(projectors) == 0 {
		return errors.New("rebuild: no projectors")
	}
	if err := validate(projectors); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	total := -1
	if c, ok := store.(EventCounter); ok {
		n, err := c.CountAfter(ctx, events.Start)
		if err != nil {
			return fmt.Errorf("rebuild: count events: %w", err)
		}
		total = int(n)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: acquire connection: %w", err)
	}
	defer conn.Release()
	release, err := holdRebuild(ctx, conn, names(projectors))
	if err != nil {
		return err
	}
	defer release() // before conn.Release
	if err := reset(ctx, conn, projectors); err != nil {
		return err
	}
	logger.Info("rebuilding projections", "projectors", names(projectors), "total", total)

	byType := make([]map[string][]cqrs.GroupEventHandler, len(projectors))
	for i, p := range projectors {
		byType[i] = map[string][]cqrs.GroupEventHandler{}
		for _, h := range p.Handlers {
			t := marshaler{}.Name(h.NewEvent())
			byType[i][t] = append(byType[i][t], h)
		}
	}
	done := 0
	for pos := events.Start; ; {
		recs, err := store.ReadAll(ctx, pos, RebuildBatch)
		if err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		if len(recs) == 0 {
			break
		}
		if err := applyBatch(ctx, conn, projectors, byType, recs); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		done += len(recs)
		pos = recs[len(recs)-1].Position
		if progress != nil {
			progress(done, total)
		}
	}
	logger.Info("rebuilt projections", "projectors", names(projectors), "events", done)
	return nil
}

func names(ps []Projector) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// unlockTimeout bounds the release of the rebuild locks, which runs even when ctx has ended.
const unlockTimeout = 5 * time.Second

// holdRebuild takes the rebuild lock of each projector in names exclusively on conn's session,
// in name order so that two rebuilds of overlapping projectors queue instead of deadlocking. It
// waits for the live transactions already inside; new ones wait behind it. release frees the
// locks; a session that could not free them (or took them partly) is closed, which frees them
// too, and the pool then drops the connection.
func holdRebuild(ctx context.Context, conn *pgxpool.Conn, names []string) (release func(), err error) {
	sorted := slices.Sorted(slices.Values(names))
	drop := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		defer cancel()
		_ = conn.Conn().Close(cctx)
	}
	for _, name := range sorted {
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, rebuildLockClass, name); err != nil {
			drop() // a cancellation can race the grant: the lock may be held
			return nil, fmt.Errorf("rebuild: lock %s: %w", name, err)
		}
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		defer cancel()
		var all bool
		err := conn.QueryRow(uctx, `SELECT bool_and(pg_advisory_unlock($1, hashtext(n))) FROM unnest($2::text[]) AS n`,
			rebuildLockClass, sorted).Scan(&all)
		if err != nil || !all {
			drop()
		}
	}, nil
}

// beginner is what reset and applyBatch run their transactions on: Rebuild's locked connection.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// reset truncates the projectors' tables and starts their checkpoints over, in one step.
func reset(ctx context.Context, db beginner, projectors []Projector) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		var tables []string
		for _, p := range projectors {
			for _, t := range p.Tables {
				tables = append(tables, pgx.Identifier(strings.Split(t, ".")).Sanitize())
			}
		}
		if len(tables) > 0 {
			if _, err := tx.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", ")); err != nil {
				return fmt.Errorf("rebuild: truncate: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projection_checkpoints WHERE name = ANY($1)`, names(projectors)); err != nil {
			return fmt.Errorf("rebuild: reset checkpoints: %w", err)
		}
		for _, p := range projectors {
			if _, err := tx.Exec(ctx, ensureCheckpointSQL, p.Name); err != nil {
				return fmt.Errorf("rebuild: reset checkpoints: %w", err)
			}
		}
		return nil
	})
}

// applyBatch applies recs to every projector in one transaction and advances their checkpoints.
// db holds the projectors' rebuild locks, so it takes the row locks only.
func applyBatch(ctx context.Context, db beginner, projectors []Projector, byType []map[string][]cqrs.GroupEventHandler, recs []events.RecordedEvent) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		cps := make([]events.Position, len(projectors))
		for i, p := range projectors {
			cp, err := lockCheckpointRow(ctx, tx, p.Name)
			if err != nil {
				return err
			}
			cps[i] = cp
		}
		for _, rec := range recs {
			if !(events.Filter{}).Match(rec.Stream, rec.Type) {
				continue
			}
			var info EventInfo
			for i, p := range projectors {
				hs := byType[i][rec.Type]
				if len(hs) == 0 || rec.Position.Compare(cps[i]) <= 0 {
					continue
				}
				if info.Type == "" {
					md, err := events.ParseMetadata(rec.Metadata)
					if err != nil {
						return fmt.Errorf("%s at %s: %w", rec.Type, rec.Position, err)
					}
					info = EventInfo{ID: rec.ID, Type: rec.Type, Stream: rec.Stream, Version: rec.Version,
						Position: rec.Position, CreatedAt: rec.CreatedAt, Metadata: md}
				}
				hctx := WithTx(ctx, tx, info)
				for _, h := range hs {
					ev := h.NewEvent()
					if err := decodeInto(rec.Type, rec.Data, ev); err != nil {
						return fmt.Errorf("%s: %w", p.Name, err)
					}
					if err := h.Handle(hctx, ev); err != nil {
						return fmt.Errorf("%s: %s at %s: %w", p.Name, rec.Type, rec.Position, err)
					}
				}
			}
		}
		last := recs[len(recs)-1]
		for i, p := range projectors {
			if last.Position.Compare(cps[i]) > 0 {
				if err := advanceCheckpoint(ctx, tx, p.Name, last.Position, last.CreatedAt); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
