package esdbstore

import (
	"context"
	"fmt"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/litehost/litehost/events"
)

// Resubscription backoff after a drop: doubling from minBackoff up to maxBackoff, reset once a
// subscription delivers again.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// SubscribeAll implements events.Store with a catch-up subscription to $all, exclusive of from.
// System events are filtered out by the server (an event-type filter: the type prefixes of
// filter, or the regex ^[^$] when there are none); filter.Match then applies the rest. The
// filtered subscription's checkpoints advance the resume position past non-matching events, so
// after a drop it resubscribes from the last delivered event or checkpoint, never earlier.
func (s *Store) SubscribeAll(ctx context.Context, from events.Position, filter events.Filter) (events.Subscription, error) {
	ctx, cancel := context.WithCancel(ctx)
	sub := &subscription{
		store:  s,
		filter: filter,
		events: make(chan events.RecordedEvent),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	// The first subscribe is synchronous so that a bad connection string or an unreachable
	// server is reported to the caller instead of being retried in the background.
	first, err := s.subscribe(ctx, from, filter)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe to $all from %s: %w", from, err)
	}
	go sub.run(ctx, first, from)
	return sub, nil
}

func (s *Store) subscribe(ctx context.Context, from events.Position, filter events.Filter) (*esdb.Subscription, error) {
	opts := esdb.SubscribeToAllOptions{
		From:   esdb.Start{},
		Filter: &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: "^[^$]"},
	}
	if !from.IsZero() {
		opts.From = esdb.Position{Commit: from.Commit, Prepare: from.Prepare}
	}
	if len(filter.TypePrefixes) > 0 {
		opts.Filter = &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: filter.TypePrefixes}
	}
	return s.client.SubscribeToAll(ctx, opts)
}

type subscription struct {
	store  *Store
	filter events.Filter
	events chan events.RecordedEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func (sub *subscription) Events() <-chan events.RecordedEvent { return sub.events }

// Err is always nil: the subscription resubscribes after every drop and ends only when its
// context ends or it is closed.
func (sub *subscription) Err() error { return nil }

func (sub *subscription) Close() error {
	sub.cancel()
	<-sub.done
	return nil
}

func (sub *subscription) run(ctx context.Context, cur *esdb.Subscription, from events.Position) {
	defer close(sub.done)
	defer close(sub.events)
	log := sub.store.logger
	backoff := minBackoff
	// resume is where the next subscription starts: the last delivered event or checkpoint.
	// delivered is the last delivered event only, a position the server surely accepts, used
	// when resuming from a checkpoint fails straight away.
	resume, delivered := from, from
	for {
		received, err := sub.consume(ctx, cur, &resume, &delivered)
		_ = cur.Close()
		if ctx.Err() != nil {
			return
		}
		if received {
			backoff = minBackoff
		} else {
			resume = delivered
		}
		log.WarnContext(ctx, "event subscription dropped, resubscribing", "position", resume.String(), "error", err)
		for {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, maxBackoff)
			cur, err = sub.store.subscribe(ctx, resume, sub.filter)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.ErrorContext(ctx, "event subscription: resubscribe failed", "position", resume.String(), "error", err)
			resume = delivered
		}
	}
}

// consume delivers events until the subscription drops, moving resume past every delivered
// event and checkpoint. It reports whether anything arrived at all.
func (sub *subscription) consume(ctx context.Context, cur *esdb.Subscription, resume, delivered *events.Position) (bool, error) {
	received := false
	for {
		msg := cur.Recv()
		switch {
		case msg.SubscriptionDropped != nil:
			return received, msg.SubscriptionDropped.Error
		case msg.EventAppeared != nil:
			received = true
			r := recorded(msg.EventAppeared.OriginalEvent())
			if r.Position.Compare(*resume) <= 0 {
				continue // never deliver twice, whatever the server does
			}
			if sub.filter.Match(r.Stream, r.Type) {
				select {
				case sub.events <- r:
				case <-ctx.Done():
					return received, ctx.Err()
				}
			}
			*resume, *delivered = r.Position, r.Position
		case msg.CheckPointReached != nil:
			received = true
			if p := (events.Position{Commit: msg.CheckPointReached.Commit, Prepare: msg.CheckPointReached.Prepare}); p.Compare(*resume) > 0 {
				*resume = p
			}
		}
	}
}
