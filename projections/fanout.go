package projections

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/litehost/litehost/events"
)

// fanout is a Feed that shares one store subscription among the Subscribers of a Runner: with
// one subscription per projector every append woke each of them, and each re-ran the store's
// queries (horizon, read, pending check) for the same events. It opens the store subscription
// after the lowest position its consumers ask for and hands each consumer, in order, the events
// after its own position, through a bounded buffer. A slow consumer holds the others back only
// as far as its buffer: that is the backpressure that keeps the read-ahead bounded. A consumer
// that stops reading (its projector failed) closes its subscription, and from then on its events
// are dropped: it restarts from its checkpoint on the next Run anyway.
//
// Every consumer subscription ends when the store subscription drops, with its error; the
// Subscribers resubscribe from their acknowledged positions after their backoff, and the fanout
// opens one store subscription for all of them again once every live consumer is back (or
// after settle). A consumer that joins while the subscription is past its position makes the
// fanout reopen it from there; events the others have seen are not sent to them twice.
type fanout struct {
	feed Feed
	// live is how many consumers to wait for before (re)opening the store subscription: the
	// projectors that have not failed.
	live   func() int
	buffer int
	settle time.Duration

	mu        sync.Mutex
	consumers map[*fanSub]struct{}
	stopped   bool
	wake      chan struct{} // a consumer joined or left
}

// errRejoin makes the fanout reopen the store subscription for a consumer behind it.
var errRejoin = errors.New("consumer behind the shared subscription")

func newFanout(feed Feed, live func() int, buffer int, settle time.Duration) *fanout {
	return &fanout{
		feed: feed, live: live, buffer: buffer, settle: settle,
		consumers: map[*fanSub]struct{}{},
		wake:      make(chan struct{}, 1),
	}
}

// fanSub is one consumer's subscription. Only the fanout's run goroutine sends on ch, closes
// it and touches last after registration.
type fanSub struct {
	f      *fanout
	filter events.Filter
	ch     chan events.RecordedEvent
	done   chan struct{}
	once   sync.Once
	stop   func() bool     // set before the holder gets c; only Close calls it
	last   events.Position // the newest event this consumer has been given or passed
	err    error           // why it ended; guarded by f.mu
}

var _ Feed = (*fanout)(nil)

// SubscribeAll registers a consumer of the events after from that pass filter. It is closed
// when ctx ends, when Close is called (its channel then stays open: nothing more is sent on it)
// and when the shared subscription drops (its channel is closed and Err says why).
func (f *fanout) SubscribeAll(ctx context.Context, from events.Position, filter events.Filter) (events.Subscription, error) {
	c := &fanSub{f: f, filter: filter, ch: make(chan events.RecordedEvent, f.buffer), done: make(chan struct{}), last: from}
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return nil, errors.New("subscribe: shared subscription stopped")
	}
	f.consumers[c] = struct{}{}
	f.mu.Unlock()
	c.stop = context.AfterFunc(ctx, c.end)
	f.kick()
	return c, nil
}

func (f *fanout) kick() {
	select {
	case f.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func (c *fanSub) Events() <-chan events.RecordedEvent { return c.ch }

func (c *fanSub) Err() error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	return c.err
}

// Close unregisters the consumer; an event being sent to it is abandoned.
func (c *fanSub) Close() error {
	c.stop()
	c.end()
	return nil
}

// end unregisters the consumer, once: on Close or when its context ends.
func (c *fanSub) end() {
	c.once.Do(func() {
		close(c.done)
		c.f.mu.Lock()
		delete(c.f.consumers, c)
		c.f.mu.Unlock()
		c.f.kick()
	})
}

// run serves the consumers until ctx ends, then ends every consumer subscription.
func (f *fanout) run(ctx context.Context) {
	defer f.endAll(nil, true)
	for {
		if !f.gather(ctx) {
			return
		}
		low, ok := f.lowest()
		if !ok {
			continue // every consumer left meanwhile
		}
		sub, err := f.feed.SubscribeAll(ctx, low, events.Filter{})
		if err == nil {
			err = f.pump(ctx, sub, low)
			_ = sub.Close() // its failure, if any, is sub.Err below
			if errors.Is(err, errRejoin) {
				continue
			}
			if err == nil {
				err = sub.Err()
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("subscription ended")
		}
		// The consumers resubscribe after their own backoff.
		f.endAll(err, false)
	}
}

// gather waits until there are consumers and every live one is among them, or settle has
// passed since the first arrived (it reports false when ctx ends): so that one store
// subscription serves all projectors at start and after a drop.
func (f *fanout) gather(ctx context.Context) bool {
	var (
		settle  <-chan time.Time
		timeout bool
	)
	for {
		f.mu.Lock()
		n := len(f.consumers)
		f.mu.Unlock()
		if n > 0 && (timeout || n >= f.live()) {
			return true
		}
		if n > 0 && settle == nil {
			t := time.NewTimer(f.settle)
			defer t.Stop()
			settle = t.C
		}
		select {
		case <-ctx.Done():
			return false
		case <-f.wake:
		case <-settle:
			timeout, settle = true, nil
		}
	}
}

// lowest returns the earliest position a consumer needs events after.
func (f *fanout) lowest() (events.Position, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var low events.Position
	first := true
	for c := range f.consumers {
		if first || c.last.Compare(low) < 0 {
			low, first = c.last, false
		}
	}
	return low, !first
}

// consumersAt returns the consumers, or errRejoin when one needs events before pos, which the
// store subscription has already passed.
func (f *fanout) consumersAt(pos events.Position, into []*fanSub) ([]*fanSub, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	into = into[:0]
	for c := range f.consumers {
		if c.last.Compare(pos) < 0 {
			return nil, errRejoin
		}
		into = append(into, c)
	}
	return into, nil
}

// pump hands the events of sub to the consumers until sub ends, ctx ends or a consumer behind
// pos joins (errRejoin).
func (f *fanout) pump(ctx context.Context, sub events.Subscription, pos events.Position) error {
	var cs []*fanSub
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
			if _, err := f.consumersAt(pos, cs); err != nil {
				return err
			}
		case rec, ok := <-sub.Events():
			if !ok {
				return nil
			}
			var err error
			if cs, err = f.consumersAt(pos, cs); err != nil {
				return err
			}
			if rec.Position.Compare(pos) > 0 {
				pos = rec.Position
			}
			for _, c := range cs {
				c.send(ctx, rec)
			}
		}
	}
}

// send gives rec to c unless c has had it (a store may deliver again) or filters it out. It
// waits while c's buffer is full, until c is closed or ctx ends.
func (c *fanSub) send(ctx context.Context, rec events.RecordedEvent) {
	if rec.Position.Compare(c.last) <= 0 {
		return
	}
	c.last = rec.Position
	if !c.filter.Match(rec.Stream, rec.Type) {
		return
	}
	select {
	case c.ch <- rec:
	case <-c.done:
	case <-ctx.Done():
	}
}

// endAll ends every consumer subscription with err; final refuses new ones from then on.
func (f *fanout) endAll(err error, final bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.consumers {
		c.err = err
		close(c.ch)
		delete(f.consumers, c)
	}
	if final {
		f.stopped = true
	}
}
