package pgstore_test

import (
	"log/slog"
	"testing"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/storetest"
)

func newStore(t testing.TB) *pgstore.Store {
	t.Helper()
	s := pgstore.New(pgtest.NewPool(t), slog.New(slog.DiscardHandler))
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) events.Store { return newStore(t) })
}
