package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Periodic runs a process manager that acts on time rather than on events (a trial that is due,
// say): Tick runs every Interval on the one instance that holds the advisory lock LockKey, elected
// and watched like a Runner's. Tick finds its own work (in a read model, by time) and must be
// harmless to run again: a term that stops mid-tick leaves the rest to the next holder.
type Periodic struct {
	Name    string
	LockKey int64
	Pool    *pgxpool.Pool
	// Interval is how often Tick runs while this instance holds the lock.
	Interval time.Duration
	// Tick does one round of work. An error is logged and the next round comes after Interval.
	Tick func(ctx context.Context) error
	// LockPoll is as for Runner (DefaultLockPoll).
	LockPoll time.Duration
	Logger   *slog.Logger
}

// Run ticks while elected until ctx ends; it returns nil then, or at once an error for a Periodic
// missing a field.
func (p *Periodic) Run(ctx context.Context) error {
	if p.Name == "" || p.Pool == nil || p.Tick == nil || p.Logger == nil || p.Interval <= 0 {
		return fmt.Errorf("process %q: Name, Pool, Tick, Logger and a positive Interval are required", p.Name)
	}
	poll := p.LockPoll
	if poll <= 0 {
		poll = DefaultLockPoll
	}
	for {
		err := holdLock(ctx, p.Pool, p.LockKey, poll, p.Logger, p.ticks)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.Logger.Error("process stopped; restarting", "error", err)
		}
		if Sleep(ctx, poll) != nil {
			return nil
		}
	}
}

// ticks runs Tick every Interval until ctx ends (the lock lost or the process stopping).
func (p *Periodic) ticks(ctx context.Context) error {
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		if err := p.Tick(ctx); err != nil && ctx.Err() == nil {
			p.Logger.Error("process round failed; retrying at the next", "error", err)
		}
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), context.Canceled) {
				return nil
			}
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}
