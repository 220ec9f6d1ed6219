package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/litehost/litehost/events"
)

// subscribePage is how many events a subscription reads per query while catching up.
const subscribePage = 512

// The short re-check delays used while committed events wait behind an older running
// transaction: no notification will announce that transaction's end if it is not an append.
const (
	minRecheck = 2 * time.Millisecond
	maxRecheck = 50 * time.Millisecond
)

// listenerAppName names the LISTEN connections in pg_stat_activity.
const listenerAppName = "pgstore-listener"

// SubscribeAll implements events.Store. One goroutine reads the log from `from` in pages, hands
// the matching events to the consumer one by one (it waits while the consumer is busy), and when
// it has caught up waits for a notification or the poll interval, whichever comes first.
func (s *Store) SubscribeAll(ctx context.Context, from events.Position, filter events.Filter) (events.Subscription, error) {
	if from.Commit > math.MaxInt64 || from.Prepare > math.MaxInt64 {
		return nil, fmt.Errorf("subscribe: position %s out of range", from)
	}
	ctx, cancel := context.WithCancel(ctx)
	sub := &subscription{
		store:  s,
		filter: filter,
		events: make(chan events.RecordedEvent),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go sub.run(ctx, from)
	return sub, nil
}

type subscription struct {
	store  *Store
	filter events.Filter
	events chan events.RecordedEvent
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	err error

	listener      *pgx.Conn // nil while not listening; used only by the run goroutine
	listenFailing bool
}

func (sub *subscription) Events() <-chan events.RecordedEvent { return sub.events }

func (sub *subscription) Err() error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.err
}

func (sub *subscription) Close() error {
	sub.cancel()
	<-sub.done
	return nil
}

func (sub *subscription) run(ctx context.Context, pos events.Position) {
	defer close(sub.done)
	defer close(sub.events)
	defer sub.closeListener(ctx)
	// The failure is returned through Err, not logged: the consumer decides what it means.
	if err := sub.loop(ctx, pos); err != nil && ctx.Err() == nil {
		sub.mu.Lock()
		sub.err = err
		sub.mu.Unlock()
	}
}

func (sub *subscription) loop(ctx context.Context, pos events.Position) error {
	s := sub.store
	recheck := time.Duration(0)
	for {
		// Listen before reading, so that a commit between the read and the wait still wakes us.
		sub.ensureListener(ctx)
		page, err := s.ReadAll(ctx, pos, subscribePage)
		if err != nil {
			return fmt.Errorf("subscription after %s: %w", pos, err)
		}
		for _, e := range page {
			if sub.filter.Match(e.Stream, e.Type) {
				select {
				case sub.events <- e:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			pos = e.Position
		}
		if len(page) == subscribePage {
			continue
		}
		pending, err := s.pendingBeyond(ctx, pos)
		if err != nil {
			return fmt.Errorf("subscription after %s: %w", pos, err)
		}
		wait := s.pollInterval
		if pending {
			recheck = min(max(2*recheck, minRecheck), maxRecheck)
			wait = min(recheck, wait)
		} else {
			recheck = 0
		}
		if err := sub.wait(ctx, wait); err != nil {
			return err
		}
	}
}

// ensureListener (re)opens the LISTEN connection. A failure is only logged: polling goes on.
func (sub *subscription) ensureListener(ctx context.Context) {
	s := sub.store
	if !s.listen || sub.listener != nil {
		return
	}
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = listenerAppName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		_, err = conn.Exec(ctx, "LISTEN "+notifyChannel)
		if err != nil {
			_ = conn.Close(ctx)
		}
	}
	if err != nil {
		// Log once per outage, not at every poll.
		if ctx.Err() == nil && !sub.listenFailing {
			s.logger.WarnContext(ctx, "event subscription: listen failed, polling only", "error", err)
		}
		sub.listenFailing = true
		return
	}
	sub.listener, sub.listenFailing = conn, false
}

func (sub *subscription) closeListener(ctx context.Context) {
	if sub.listener == nil {
		return
	}
	// The subscription's ctx may be done by now; closing needs a live one, bounded.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_ = sub.listener.Close(ctx)
	sub.listener = nil
}

// wait returns after a notification, after d, or with ctx's error when ctx ends.
func (sub *subscription) wait(ctx context.Context, d time.Duration) error {
	if sub.listener == nil {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := sub.listener.WaitForNotification(wctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded) || wctx.Err() != nil:
		if sub.listener.IsClosed() {
			sub.dropListener(ctx, err)
		}
		return nil
	default:
		sub.dropListener(ctx, err)
		return nil
	}
}

func (sub *subscription) dropListener(ctx context.Context, err error) {
	sub.store.logger.WarnContext(ctx, "event subscription: listen connection lost, polling until it is back", "error", fmt.Sprint(err))
	sub.closeListener(ctx)
}
