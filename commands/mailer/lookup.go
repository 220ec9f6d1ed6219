package mailer

import (
	"context"
	"errors"
	"fmt"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
)

// StreamReader is the part of events.Store IdentityLookup reads.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, from uint64, max int) ([]events.RecordedEvent, error)
}

// IdentityLookup answers AccountExists from the identifier's reservation stream
// ("identity-<hmac>", DESIGN §2) in the event store itself, so it is never behind a projection.
type IdentityLookup struct {
	store StreamReader
	keys  *secret.Keyring
}

// NewIdentityLookup returns an AccountLookup over store.
func NewIdentityLookup(store StreamReader, keys *secret.Keyring) *IdentityLookup {
	return &IdentityLookup{store: store, keys: keys}
}

var _ AccountLookup = (*IdentityLookup)(nil)

// AccountExists reports whether id has been claimed by an account.
func (l *IdentityLookup) AccountExists(ctx context.Context, id commands.Identifier) (bool, error) {
	stream := "identity-" + l.keys.Hash(secret.PurposeIdentifier, id.Value)
	recs, err := l.store.ReadStream(ctx, stream, 0, 1)
	if errors.Is(err, events.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", stream, err)
	}
	return len(recs) > 0 && recs[0].Type == events.TypeIdentityClaimed, nil
}
