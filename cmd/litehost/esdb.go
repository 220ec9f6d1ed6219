package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/litehost/litehost/events/esdbstore"
)

// openESDB connects to EventStoreDB (LITEHOST_EVENT_STORE=esdb) and checks that it answers.
func openESDB(ctx context.Context, cfg Config, logger *slog.Logger) (*esdbstore.Store, func(), error) {
	client, err := esdbstore.Dial(cfg.ESDBURL, logger.With("component", "esdb"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to EventStoreDB %s: %w", redactURL(cfg.ESDBURL), err)
	}
	if parsed, err := esdbstore.ParseConnectionString(cfg.ESDBURL); err == nil {
		logger.Info("event store: EventStoreDB", esdbstore.Topology(parsed)...)
	}
	st := esdbstore.New(client, logger.With("component", "esdbstore"))
	if _, err := st.Head(ctx); err != nil {
		_ = client.Close()
		return nil, nil, fmt.Errorf("connect to EventStoreDB %s: %w", redactURL(cfg.ESDBURL), err)
	}
	return st, func() { _ = client.Close() }, nil
}
