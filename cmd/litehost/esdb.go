package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/litehost/litehost/events"
)

// esdbStore is what the EventStoreDB adapter gives the app.
type esdbStore interface {
	events.Store
	headReader
}

// openESDB connects to EventStoreDB.
func openESDB(ctx context.Context, cfg Config, logger *slog.Logger) (esdbStore, func(), error) {
	return nil, nil, errors.New("LITEHOST_EVENT_STORE=esdb: the EventStoreDB adapter is not wired yet")
}
