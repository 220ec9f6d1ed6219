package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/litehost/litehost/events"
)

// LogReader is the part of the event store that lag measurement and rebuilds read.
type LogReader interface {
	ReadAll(ctx context.Context, from events.Position, max int) ([]events.RecordedEvent, error)
}

// EventCounter is implemented by stores that can count the events after a position without
// reading them; without it lag in events is counted by reading, up to lagCountCap.
type EventCounter interface {
	CountAfter(ctx context.Context, from events.Position) (int64, error)
}

const (
	lagCountCap = 10_000
	lagPage     = 1_000
)

// FillLag computes CaughtUp, LagEvents and LagSeconds of each status from the log.
func FillLag(ctx context.Context, store LogReader, now time.Time, sts []ProjectorStatus) error {
	for i := range sts {
		n, oldest, err := measureLag(ctx, store, sts[i].Position)
		if err != nil {
			return fmt.Errorf("lag of %s: %w", sts[i].Name, err)
		}
		sts[i].LagEvents = n
		sts[i].CaughtUp = n == 0
		sts[i].LagSeconds = 0
		if n > 0 {
			sts[i].LagSeconds = max(now.Sub(oldest).Seconds(), 0)
		}
	}
	return nil
}

// measureLag returns how many deliverable events follow from (capped unless the store counts)
// and the creation time of the first of them. Lag in seconds is measured against that first
// unapplied event rather than the last applied one, so an idle, caught-up projector has no lag.
func measureLag(ctx context.Context, store LogReader, from events.Position) (int64, time.Time, error) {
	var (
		n      int64
		oldest time.Time
	)
	counter, canCount := store.(EventCounter)
	for pos := from; ; {
		recs, err := store.ReadAll(ctx, pos, lagPage)
		if err != nil {
			return 0, time.Time{}, err
		}
		for _, r := range recs {
			if !(events.Filter{}).Match(r.Stream, r.Type) {
				continue
			}
			if n == 0 {
				oldest = r.CreatedAt
			}
			n++
		}
		if canCount && n > 0 {
			total, err := counter.CountAfter(ctx, from)
			return total, oldest, err
		}
		if len(recs) < lagPage || n >= lagCountCap {
			return n, oldest, nil
		}
		pos = recs[len(recs)-1].Position
	}
}
