// Package commands holds the write side: command handlers that load an aggregate's stream, ask
// the pure domain function to decide, and append the resulting events with optimistic
// concurrency; and the Gin routes that call them.
package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events"
)

// EventStore is the part of events.Store that command handlers use.
type EventStore interface {
	ReadStream(ctx context.Context, stream string, from uint64, max int) ([]events.RecordedEvent, error)
	Append(ctx context.Context, stream string, expected events.Expected, evs []events.EventData) (events.AppendResult, error)
}

// ErrConflict is returned when a command still meets a concurrent writer after its retries.
var ErrConflict = errors.New("conflict: the resource was changed concurrently")

// ErrNotFound is returned when a command addresses something that does not exist or is not the
// caller's; the two are indistinguishable on purpose.
var ErrNotFound = errors.New("not found")

// maxAttempts bounds the load-decide-append loop on optimistic-concurrency conflicts.
const maxAttempts = 4 // the first try plus 3 retries

// readPage is how many events one ReadStream call fetches while loading a stream.
const readPage = 512

// Stream is a loaded stream: its records, their decoded events, and its version (-1 when empty).
type Stream struct {
	Name    string
	Records []events.RecordedEvent
	Events  []events.Event
	Version int64
}

// Load reads and decodes a whole stream; a missing stream is an empty one.
func Load(ctx context.Context, store EventStore, stream string) (Stream, error) {
	s := Stream{Name: stream, Version: -1}
	for from := uint64(0); ; {
		recs, err := store.ReadStream(ctx, stream, from, readPage)
		if errors.Is(err, events.ErrStreamNotFound) {
			return s, nil
		}
		if err != nil {
			return s, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, r := range recs {
			ev, err := events.Decode(r.Type, r.Data)
			if err != nil {
				return s, fmt.Errorf("load %s: %w", stream, err)
			}
			s.Records = append(s.Records, r)
			s.Events = append(s.Events, ev)
			s.Version = int64(r.Version)
		}
		if len(recs) < readPage {
			return s, nil
		}
		from = recs[len(recs)-1].Version + 1
	}
}

// EventID derives the ID of the i-th event a command appends to a stream. A retried command
// (same command ID, e.g. from the same Idempotency-Key) thus resends the same IDs, which lets a
// handler recognise work it has already done.
func EventID(commandID uuid.UUID, stream string, i int) uuid.UUID {
	return uuid.NewSHA1(commandID, []byte(stream+"#"+strconv.Itoa(i)))
}

// Result is what an executed command appended (or had appended before, when Replayed).
type Result struct {
	Events   []events.Event
	Version  int64
	Position events.Position
	// Replayed is true when the command had already been applied and nothing new was written.
	Replayed bool
}

// Decider is the pure part of a command: given the stream's history, the new events or a rule error.
type Decider func(s Stream) ([]events.Event, error)

// Executor runs commands against the event store.
type Executor struct {
	store EventStore
}

// NewExecutor returns an Executor over store.
func NewExecutor(store EventStore) *Executor { return &Executor{store: store} }

// Execute loads stream, lets decide choose the events, and appends them expecting the loaded
// version. On a concurrent write it reloads and decides again (decide is pure, so that is safe),
// at most maxAttempts times, then gives up with ErrConflict. If the stream already holds this
// command's first event, the command was applied before: its events are returned as Replayed and
// decide is not called — unless they were appended for another request (their recorded request
// fingerprint differs from ctx's), which is ErrIdempotencyKeyReused, at any age.
func (x *Executor) Execute(ctx context.Context, commandID uuid.UUID, stream string, decide Decider) (Result, error) {
	firstID := EventID(commandID, stream, 0)
	for attempt := 0; ; attempt++ {
		s, err := Load(ctx, x.store, stream)
		if err != nil {
			return Result{}, err
		}
		if r, ok, err := replayed(s, commandID, firstID, RequestFingerprintFrom(ctx)); ok || err != nil {
			return r, err
		}
		evs, err := decide(s)
		if err != nil {
			return Result{}, err
		}
		if len(evs) == 0 {
			return Result{Version: s.Version}, nil
		}
		data, err := encode(ctx, commandID, stream, evs)
		if err != nil {
			return Result{}, err
		}
		res, err := x.store.Append(ctx, stream, events.ExpectVersion(s.Version), data)
		if err == nil {
			markAppended(ctx)
			return Result{Events: evs, Version: int64(res.NextVersion), Position: res.Position}, nil
		}
		if !errors.Is(err, events.ErrWrongExpectedVersion) {
			return Result{}, fmt.Errorf("append %s: %w", stream, err)
		}
		if attempt+1 >= maxAttempts {
			return Result{}, fmt.Errorf("append %s: %w", stream, ErrConflict)
		}
		if err := backoff(ctx, attempt); err != nil {
			return Result{}, err
		}
	}
}

// AppendNew appends evs to a stream that must not exist yet (a reservation or a new aggregate).
// It returns events.ErrWrongExpectedVersion when the stream exists and was not created by this
// same command, and the earlier result when it was.
func (x *Executor) AppendNew(ctx context.Context, commandID uuid.UUID, stream string, evs []events.Event) (Result, error) {
	return x.Execute(ctx, commandID, stream, func(s Stream) ([]events.Event, error) {
		if s.Version >= 0 {
			return nil, &events.WrongExpectedVersionError{Stream: stream, Expected: events.NoStream(), Actual: s.Version}
		}
		return evs, nil
	})
}

// replayed finds the command's earlier events in s. fingerprint is the current request's; when
// both it and the one recorded with the first event are known and differ, the command ID was
// reused by another request. An event without one (appended before fingerprints were recorded,
// or by a process manager) is taken as a replay, as it always was.
func replayed(s Stream, commandID, firstID uuid.UUID, fingerprint string) (Result, bool, error) {
	for i, r := range s.Records {
		if r.ID != firstID {
			continue
		}
		if fingerprint != "" {
			md, err := events.ParseMetadata(r.Metadata)
			if err != nil {
				return Result{}, false, fmt.Errorf("replay %s: %w", s.Name, err)
			}
			if md.RequestFingerprint != "" && md.RequestFingerprint != fingerprint {
				return Result{}, false, ErrIdempotencyKeyReused
			}
		}
		res := Result{Replayed: true}
		for j := i; j < len(s.Records); j++ {
			if s.Records[j].ID != EventID(commandID, s.Name, j-i) {
				break
			}
			res.Events = append(res.Events, s.Events[j])
			res.Version = int64(s.Records[j].Version)
			res.Position = s.Records[j].Position
		}
		return res, true, nil
	}
	return Result{}, false, nil
}

func encode(ctx context.Context, commandID uuid.UUID, stream string, evs []events.Event) ([]events.EventData, error) {
	md := events.MetadataFrom(ctx)
	md.CausationID = commandID.String()
	md.RequestFingerprint = RequestFingerprintFrom(ctx)
	if md.CorrelationID == "" {
		md.CorrelationID = commandID.String()
	}
	if md.Actor == "" {
		md.Actor = events.ActorAnonymous
	}
	out := make([]events.EventData, len(evs))
	for i, ev := range evs {
		d, err := events.Encode(ev, EventID(commandID, stream, i), md)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// backoff waits a fully jittered, growing delay (0–20 ms, 0–40 ms, 0–80 ms) before a retry, or
// returns early when ctx ends. Full jitter spreads writers that collided on one stream, so they
// do not collide again on the next attempt.
func backoff(ctx context.Context, attempt int) error {
	base := 10 * time.Millisecond << attempt
	d := rand.N(2 * base)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
