package process

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is a capped exponential backoff with jitter, for retrying one step in place (an e-mail,
// a publish) while an outside system is unavailable.
type Backoff struct {
	Min, Max time.Duration
}

// Delay is the wait after failed attempt number attempt (0 for the first): Min doubled per
// attempt up to Max, then jittered into [d/2, d] so that instances do not retry in step.
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Min << min(attempt, 16)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Retry calls try with the attempt number (0 for the first) until it returns nil or ctx ends,
// waiting b.Delay(attempt) after each failure. Before each wait it calls failed, when not nil,
// with the attempt, its error and the wait (to log them). A try that wants to give up returns nil.
// Retry returns nil once try succeeded, and ctx.Err() when ctx ended first.
func Retry(ctx context.Context, b Backoff, try func(attempt int) error, failed func(attempt int, err error, wait time.Duration)) error {
	for attempt := 0; ; attempt++ {
		err := try(attempt)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := b.Delay(attempt)
		if failed != nil {
			failed(attempt, err, d)
		}
		if err := Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// Sleep waits for d or until ctx ends, whichever comes first; it returns ctx.Err() in the latter
// case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
