package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/litehost/litehost/events"
)

// ListenerAppName is the application_name of the LISTEN connections, for tests that kill them.
const ListenerAppName = listenerAppName

// AppendInTx appends through the same statement as Append inside a transaction the test holds
// open, to play a slow writer.
func AppendInTx(ctx context.Context, tx pgx.Tx, stream string, expected events.Expected, evs []events.EventData) (events.AppendResult, error) {
	return appendTo(ctx, tx, stream, expected, evs)
}

// SetPollInterval changes the poll interval of subscriptions started afterwards.
func (s *Store) SetPollInterval(d time.Duration) { s.pollInterval = d }

// DisableListen makes subscriptions started afterwards rely on polling alone.
func (s *Store) DisableListen() { s.listen = false }
