// Package events holds the event contracts of Litehost: the event store port that every adapter
// implements, the recorded-event and metadata shapes, and the typed domain events with their
// decoder. Adapters live in subpackages (pgstore, esdbstore) and the emulator in esdbemu.
package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Position is a place in the global event log. It is opaque to callers but totally ordered:
// pgstore fills Commit with the appending transaction's id and Prepare with the row's global
// sequence; EventStoreDB fills them with its commit and prepare positions. The zero Position is
// the start of the log, before every event.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Start is the position before the first event of the log.
var Start = Position{}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Commit < q.Commit:
		return -1
	case p.Commit > q.Commit:
		return 1
	case p.Prepare < q.Prepare:
		return -1
	case p.Prepare > q.Prepare:
		return 1
	}
	return 0
}

// IsZero reports whether p is the start of the log.
func (p Position) IsZero() bool { return p == Position{} }

// String renders p as "commit/prepare"; ParsePosition reads it back. It is the form used in SSE
// event IDs and on the command line.
func (p Position) String() string {
	return strconv.FormatUint(p.Commit, 10) + "/" + strconv.FormatUint(p.Prepare, 10)
}

// ParsePosition parses the "commit/prepare" form written by Position.String.
func ParsePosition(s string) (Position, error) {
	c, pr, ok := strings.Cut(s, "/")
	if !ok {
		return Position{}, fmt.Errorf("parse position %q: want commit/prepare", s)
	}
	commit, err := strconv.ParseUint(c, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", s, err)
	}
	prepare, err := strconv.ParseUint(pr, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", s, err)
	}
	return Position{Commit: commit, Prepare: prepare}, nil
}

// ExpectedKind says what an append expects of the stream it writes to.
type ExpectedKind int

// The expected-version kinds of EventStoreDB, which pgstore follows too.
const (
	KindAny ExpectedKind = iota
	KindNoStream
	KindStreamExists
	KindExact
)

// Expected is the optimistic-concurrency condition of an append.
type Expected struct {
	Kind    ExpectedKind
	Version uint64 // only for KindExact: the version of the stream's last event
}

// Any accepts whatever state the stream is in.
func Any() Expected { return Expected{Kind: KindAny} }

// NoStream requires that the stream has no events yet.
func NoStream() Expected { return Expected{Kind: KindNoStream} }

// StreamExists requires that the stream has at least one event.
func StreamExists() Expected { return Expected{Kind: KindStreamExists} }

// Exact requires that the stream's last event has version v.
func Exact(v uint64) Expected { return Expected{Kind: KindExact, Version: v} }

// ExpectVersion returns NoStream for a stream that has no events (version < 0) and Exact otherwise:
// what a command handler expects after loading a stream.
func ExpectVersion(v int64) Expected {
	if v < 0 {
		return NoStream()
	}
	return Exact(uint64(v))
}

// String names the expectation, for messages.
func (e Expected) String() string {
	switch e.Kind {
	case KindNoStream:
		return "no stream"
	case KindStreamExists:
		return "stream exists"
	case KindExact:
		return "version " + strconv.FormatUint(e.Version, 10)
	}
	return "any"
}

// EventData is an event to append. ID must be set by the caller: command handlers derive it
// deterministically so that a retried command resends the same IDs.
type EventData struct {
	ID       uuid.UUID
	Type     string
	Data     []byte // JSON
	Metadata []byte // JSON of Metadata
}

// RecordedEvent is an event as read back from the store.
type RecordedEvent struct {
	ID        uuid.UUID
	Stream    string
	Version   uint64 // 0-based position in its stream
	Type      string
	Data      []byte
	Metadata  []byte
	Position  Position
	CreatedAt time.Time
}

// AppendResult describes a successful append.
type AppendResult struct {
	// NextVersion is the version of the stream's last event after the append: the value to pass
	// to Exact for the next append.
	NextVersion uint64
	// Position is the global position of the last event appended.
	Position Position
}

// Filter narrows a subscription. Events whose type starts with "$" (store-internal system
// events) are never delivered. Empty prefix lists match everything else.
type Filter struct {
	TypePrefixes   []string
	StreamPrefixes []string
}

// Match reports whether an event of the given stream and type passes f.
func (f Filter) Match(stream, eventType string) bool {
	if strings.HasPrefix(eventType, "$") || strings.HasPrefix(stream, "$") {
		return false
	}
	return matchPrefix(f.TypePrefixes, eventType) && matchPrefix(f.StreamPrefixes, stream)
}

func matchPrefix(prefixes []string, s string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Subscription delivers events of the global log in order, one after the other.
type Subscription interface {
	// Events yields the events; it is closed when the subscription ends (ctx done, Close, or a
	// failure reported by Err).
	Events() <-chan RecordedEvent
	// Err reports why the subscription ended; nil after a clean Close or cancellation.
	Err() error
	// Close ends the subscription and waits for its goroutines.
	Close() error
}

// Store is the event store port (DESIGN §3). Versions are 0-based; positions are global.
type Store interface {
	// Append writes evs to stream atomically if expected holds. A resend of events whose IDs are
	// already stored in that stream at the same place is an idempotent success.
	Append(ctx context.Context, stream string, expected Expected, evs []EventData) (AppendResult, error)
	// ReadStream returns up to max events of stream from version from (inclusive).
	// A stream without events gives ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, from uint64, max int) ([]RecordedEvent, error)
	// ReadAll returns up to max events of the global log after position from (exclusive),
	// system events included only for adapters that have them; callers filter with Filter.Match.
	ReadAll(ctx context.Context, from Position, max int) ([]RecordedEvent, error)
	// SubscribeAll delivers every event after from that passes filter, then live events.
	SubscribeAll(ctx context.Context, from Position, filter Filter) (Subscription, error)
}

// ErrStreamNotFound is returned when reading a stream that has no events.
var ErrStreamNotFound = errors.New("stream not found")

// ErrWrongExpectedVersion is matched (errors.Is) by every *WrongExpectedVersionError.
var ErrWrongExpectedVersion = errors.New("wrong expected version")

// WrongExpectedVersionError is an append whose expectation did not hold.
type WrongExpectedVersionError struct {
	Stream   string
	Expected Expected
	// Actual is the version of the stream's last event, or -1 when the stream has none.
	Actual int64
}

// Error implements error.
func (e *WrongExpectedVersionError) Error() string {
	return fmt.Sprintf("append %s: wrong expected version: expected %s, actual %d", e.Stream, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrWrongExpectedVersion) match.
func (e *WrongExpectedVersionError) Is(target error) bool { return target == ErrWrongExpectedVersion }

// Category returns the part of a stream name before the first "-", as EventStoreDB's $ce- does.
func Category(stream string) string {
	c, _, _ := strings.Cut(stream, "-")
	return c
}
