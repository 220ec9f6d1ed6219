package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
)

// Feed is the part of the event store the Subscriber reads.
type Feed interface {
	SubscribeAll(ctx context.Context, from events.Position, filter events.Filter) (events.Subscription, error)
}

// Delays of the Subscriber: the first resubscribe after a dropped subscription, the cap of its
// exponential growth, and the pause before resending a Nacked message (the router's Retry
// middleware has already retried it by then).
const (
	resubscribeMin = 100 * time.Millisecond
	resubscribeMax = 5 * time.Second
	resendDelay    = 100 * time.Millisecond
)

// errHalted ends a delivery loop whose projector has failed.
var errHalted = errors.New("projector halted")

// Subscriber is a Watermill message.Subscriber over the global event log. The topic is a
// projector name: Subscribe starts after that projector's checkpoint and delivers every event
// after it, one message at a time (the next is sent only once the previous was Acked; a Nacked
// one is sent again), because read models depend on order and the router handles each message
// in its own goroutine.
type Subscriber struct {
	pool   *pgxpool.Pool
	feed   Feed
	logger *slog.Logger
	// halted reports whether topic's projector has failed; its delivery then stops instead of
	// resending the failing event forever (no poison queue: the event is never skipped).
	halted func(topic string) bool
	// started, when set, is told the checkpoint a subscription of topic starts after.
	started func(topic string, from events.Position)
	// batch, when above 1, lets one message carry up to that many events that are ready at
	// once (the subscription already holds them), in its context (batchFrom): ProjectionTx
	// applies them in one transaction. Only for consumers that read batches.
	batch int

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a Subscriber reading checkpoints from pool and events from feed.
func NewSubscriber(pool *pgxpool.Pool, feed Feed, logger *slog.Logger) *Subscriber {
	return &Subscriber{pool: pool, feed: feed, logger: logger, closing: make(chan struct{})}
}

// Subscribe delivers the events after topic's checkpoint, then live ones, until ctx ends or
// Close is called; the channel is closed then.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("subscribe: subscriber closed")
	default:
	}
	from, err := readCheckpoint(ctx, s.pool, topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", topic, err)
	}
	if s.started != nil {
		s.started(topic, from)
	}
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		s.run(ctx, topic, from, out)
	}()
	return out, nil
}

// Close ends every subscription and waits for their goroutines.
func (s *Subscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

// run subscribes from the last acknowledged position and resubscribes after every drop, with a
// growing, ctx-aware backoff; it returns when ctx ends.
func (s *Subscriber) run(ctx context.Context, topic string, from events.Position, out chan<- *message.Message) {
	logger := s.logger.With("projector", topic)
	delay := resubscribeMin
	for {
		sub, err := s.feed.SubscribeAll(ctx, from, events.Filter{})
		if err == nil {
			var delivered bool
			from, delivered, err = s.deliverAll(ctx, topic, sub, from, out)
			_ = sub.Close() // its failure, if any, is sub.Err below
			if err == nil {
				err = sub.Err()
			}
			if delivered {
				delay = resubscribeMin
			}
		}
		if errors.Is(err, errHalted) {
			// Keep the channel open: a closed one would make the router treat this projector
			// as finished, and with all of them finished it would stop the others' host.
			<-ctx.Done()
			return
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("subscription ended")
		}
		logger.Warn("event subscription dropped, resubscribing", "error", err, "position", from.String(), "delay", delay)
		if !sleep(ctx, delay) {
			return
		}
		delay = min(delay*2, resubscribeMax)
	}
}

// deliverAll forwards the events of sub, returning the position of the last acknowledged one.
func (s *Subscriber) deliverAll(ctx context.Context, topic string, sub events.Subscription, from events.Position, out chan<- *message.Message) (events.Position, bool, error) {
	delivered := false
	evs := sub.Events()
	if s.batch > 1 {
		done := make(chan struct{})
		defer close(done)
		evs = readAhead(evs, s.batch-1, done)
	}
	for {
		select {
		case <-ctx.Done():
			return from, delivered, ctx.Err()
		case rec, ok := <-evs:
			if !ok {
				return from, delivered, nil
			}
			recs, closed := readyAfter(evs, rec, s.batch)
			// No position check here: ProjectionTx skips what the checkpoint already covers,
			// under the row lock, which is the only place that can decide it race-free.
			if err := s.deliver(ctx, topic, recs, out); err != nil {
				return from, delivered, err
			}
			from, delivered = recs[len(recs)-1].Position, true
			if closed {
				return from, delivered, nil
			}
		}
	}
}

// readAhead forwards in to a channel buffering n events, so that events keep arriving while the
// projector is busy with the previous ones and the next batch finds them waiting. It stops
// when in ends or done is closed; events it buffered then are dropped, which is harmless: the
// subscriber resumes after the last acknowledged one.
func readAhead(in <-chan events.RecordedEvent, n int, done <-chan struct{}) <-chan events.RecordedEvent {
	out := make(chan events.RecordedEvent, n)
	go func() {
		defer close(out)
		for {
			select {
			case rec, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- rec:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out
}

// readyAfter returns first and the events after it that evs holds already, up to max in all:
// it never waits, so a batch adds no latency. closed reports that evs ended.
func readyAfter(evs <-chan events.RecordedEvent, first events.RecordedEvent, max int) (recs []events.RecordedEvent, closed bool) {
	recs = []events.RecordedEvent{first}
	for len(recs) < max {
		select {
		case rec, ok := <-evs:
			if !ok {
				return recs, true
			}
			recs = append(recs, rec)
		default:
			return recs, false
		}
	}
	return recs, false
}

// deliver sends recs as one message until it is Acked. A Nack resends a fresh message
// (Watermill messages cannot be acknowledged twice) after a short pause, unless the projector
// has failed. The message is the first event's; several events ride in its context.
func (s *Subscriber) deliver(ctx context.Context, topic string, recs []events.RecordedEvent, out chan<- *message.Message) error {
	mctx := ctx
	if len(recs) > 1 {
		mctx = context.WithValue(ctx, batchKey{}, recs)
	}
	for {
		msg := newMessage(recs[0])
		msg.SetContext(mctx)
		select {
		case out <- msg:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-msg.Acked():
			return nil
		case <-msg.Nacked():
			if s.halted != nil && s.halted(topic) {
				return errHalted
			}
			if !sleep(ctx, resendDelay) {
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type batchKey struct{}

// batchFrom returns the events a message carries when it carries more than one.
func batchFrom(ctx context.Context) []events.RecordedEvent {
	recs, _ := ctx.Value(batchKey{}).([]events.RecordedEvent)
	return recs
}

func newMessage(rec events.RecordedEvent) *message.Message {
	msg := message.NewMessage(rec.ID.String(), rec.Data)
	msg.Metadata.Set(MetaName, rec.Type)
	msg.Metadata.Set(MetaStream, rec.Stream)
	msg.Metadata.Set(MetaVersion, strconv.FormatUint(rec.Version, 10))
	msg.Metadata.Set(MetaPosition, rec.Position.String())
	msg.Metadata.Set(MetaCreated, rec.CreatedAt.UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(MetaMetadata, string(rec.Metadata))
	return msg
}

// sleep waits d or until ctx ends; it reports whether the full wait elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
