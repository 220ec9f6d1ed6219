// Package esdbstore is the EventStoreDB adapter of the event store port (DESIGN §3), over
// EventStore-Client-Go v4. Positions are EventStoreDB's (commit, prepare) pair, event IDs are
// kept as given, and idempotent resends follow the server's rules (a resend with the same
// expected version succeeds without writing; the command layer owns idempotency beyond that).
package esdbstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/litehost/litehost/events"
)

// Store is the EventStoreDB event store. It is safe for concurrent use.
type Store struct {
	client *esdb.Client
	logger *slog.Logger
}

var _ events.Store = (*Store)(nil)

// New returns a store on client. The caller owns the client and closes it.
func New(client *esdb.Client, logger *slog.Logger) *Store {
	return &Store{client: client, logger: logger}
}

// Dial parses a connection string (see ParseConnectionString: one node, discover, or gossip seeds)
// and returns a client for it, its log routed to logger. The client connects lazily, on its first
// call, and then finds the node its nodePreference asks for through gossip.
func Dial(url string, logger *slog.Logger) (*esdb.Client, error) {
	cfg, err := ParseConnectionString(url)
	if err != nil {
		return nil, err
	}
	cfg.Logger = clientLog(logger)
	c, err := esdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("esdb client: %w", err)
	}
	return c, nil
}

// Append implements events.Store.
func (s *Store) Append(ctx context.Context, stream string, expected events.Expected, evs []events.EventData) (events.AppendResult, error) {
	if err := events.ValidateAppend(stream, expected, evs); err != nil {
		return events.AppendResult{}, err
	}
	data := make([]esdb.EventData, len(evs))
	for i, e := range evs {
		data[i] = esdb.EventData{
			EventID:     e.ID,
			EventType:   e.Type,
			ContentType: esdb.ContentTypeJson,
			Data:        e.Data,
			Metadata:    e.Metadata,
		}
	}
	res, err := s.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}, data...)
	if err != nil {
		if hasCode(err, esdb.ErrorCodeWrongExpectedVersion) {
			return events.AppendResult{}, s.wrongExpected(ctx, stream, expected)
		}
		return events.AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	return events.AppendResult{
		NextVersion: res.NextExpectedVersion,
		Position:    events.Position{Commit: res.CommitPosition, Prepare: res.PreparePosition},
	}, nil
}

// wrongExpected builds the port's conflict error. The v4 client reports the stream's actual
// revision only inside its message text, so the adapter reads it back instead: it may have moved
// on since, which is fine for an error that only says "reload and retry".
func (s *Store) wrongExpected(ctx context.Context, stream string, expected events.Expected) error {
	wev := &events.WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: -1}
	actual, err := s.lastVersion(ctx, stream)
	if err != nil {
		return errors.Join(wev, fmt.Errorf("read actual version of %s: %w", stream, err))
	}
	wev.Actual = actual
	return wev
}

// lastVersion returns the version of the stream's last event, -1 when it has none.
func (s *Store) lastVersion(ctx context.Context, stream string) (int64, error) {
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	switch {
	case hasCode(err, esdb.ErrorCodeResourceNotFound), errors.Is(err, io.EOF):
		return -1, nil
	case err != nil:
		return 0, err
	}
	return int64(ev.OriginalEvent().EventNumber), nil
}

// clientLog routes the client's own log lines to slog. They are diagnostics (its "error" level
// includes every subscription closed on purpose), so they are demoted: the adapter logs the
// failures that matter itself.
func clientLog(logger *slog.Logger) esdb.LoggingFunc {
	return func(level esdb.LogLevel, format string, args ...any) {
		msg := "esdb client: " + fmt.Sprintf(format, args...)
		if level == esdb.LogWarn || level == esdb.LogError {
			logger.Info(msg)
			return
		}
		logger.Debug(msg)
	}
}

func expectedRevision(e events.Expected) esdb.ExpectedRevision {
	switch e.Kind {
	case events.KindNoStream:
		return esdb.NoStream{}
	case events.KindStreamExists:
		return esdb.StreamExists{}
	case events.KindExact:
		return esdb.StreamRevision{Value: e.Version}
	}
	return esdb.Any{}
}

// ReadStream implements events.Store. A stream without events, soft-deleted or tombstoned reads
// as events.ErrStreamNotFound; reading past the end of a stream is an empty page.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, max int) ([]events.RecordedEvent, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read %s: max must be positive, got %d", stream, max)
	}
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(from)}, uint64(max))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	defer rs.Close()
	var recs []events.RecordedEvent
	for {
		// The v4 client reports a missing stream on the first Recv, not on ReadStream.
		ev, err := rs.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return recs, nil
		case hasCode(err, esdb.ErrorCodeResourceNotFound):
			return nil, fmt.Errorf("read %s: %w", stream, events.ErrStreamNotFound)
		case hasCode(err, esdb.ErrorCodeStreamDeleted):
			return nil, fmt.Errorf("read %s: deleted: %w", stream, events.ErrStreamNotFound)
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		recs = append(recs, recorded(ev.OriginalEvent()))
	}
}

// ReadAll implements events.Store. EventStoreDB reads $all forwards *inclusive* of the start
// position, so the event at from is dropped to make the read exclusive. System events ($-types,
// $-streams) are included, as the port allows; callers filter with events.Filter.Match.
func (s *Store) ReadAll(ctx context.Context, from events.Position, max int) ([]events.RecordedEvent, error) {
	if max <= 0 {
		return nil, fmt.Errorf("read all: max must be positive, got %d", max)
	}
	var start esdb.AllPosition = esdb.Start{}
	count := uint64(max)
	if !from.IsZero() {
		start = esdb.Position{Commit: from.Commit, Prepare: from.Prepare}
		count++
	}
	rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: start}, count)
	if err != nil {
		return nil, fmt.Errorf("read all from %s: %w", from, err)
	}
	defer rs.Close()
	recs := make([]events.RecordedEvent, 0, max)
	for len(recs) < max {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read all from %s: %w", from, err)
		}
		r := recorded(ev.OriginalEvent())
		if r.Position.Compare(from) <= 0 {
			continue
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// headPage is how many events Head reads per step while looking back past system events.
const headPage = 32

// Head returns the position of the newest deliverable event (not a system event), or
// events.Start when there is none. Projections compare it with their checkpoint to report lag,
// which must reach zero even though a real node keeps writing system events.
func (s *Store) Head(ctx context.Context) (events.Position, error) {
	var from esdb.AllPosition = esdb.End{}
	for {
		rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, headPage)
		if err != nil {
			return events.Position{}, fmt.Errorf("head: %w", err)
		}
		n := 0
		for {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return events.Position{}, fmt.Errorf("head: %w", err)
			}
			n++
			r := ev.OriginalEvent()
			if (events.Filter{}).Match(r.StreamID, r.EventType) {
				rs.Close()
				return events.Position{Commit: r.Position.Commit, Prepare: r.Position.Prepare}, nil
			}
			from = r.Position // backwards reads are exclusive of their start
		}
		rs.Close()
		if n < headPage {
			return events.Start, nil
		}
	}
}

func recorded(e *esdb.RecordedEvent) events.RecordedEvent {
	r := events.RecordedEvent{
		ID:        e.EventID,
		Stream:    e.StreamID,
		Version:   e.EventNumber,
		Type:      e.EventType,
		Data:      e.Data,
		Metadata:  e.UserMetadata,
		Position:  events.Position{Commit: e.Position.Commit, Prepare: e.Position.Prepare},
		CreatedAt: e.CreatedDate.UTC(),
	}
	if len(r.Metadata) == 0 {
		r.Metadata = nil // as pgstore: no metadata reads back as nil
	}
	return r
}

// hasCode reports whether err carries the client error code c. The client wraps some errors
// with %w, so errors.As is needed (esdb.FromError is a plain type assertion).
func hasCode(err error, c esdb.ErrorCode) bool {
	var e *esdb.Error
	return errors.As(err, &e) && e.Code() == c
}
