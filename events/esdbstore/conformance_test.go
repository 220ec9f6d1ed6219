package esdbstore_test

import (
	"os"
	"testing"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/storetest"
)

// TestConformanceEmulator runs the shared store suite against the adapter on the in-process
// emulator, always.
func TestConformanceEmulator(t *testing.T) {
	storetest.Run(t, func(t *testing.T) events.Store { return newEmuStore(t) })
}

// TestConformanceServer runs the same suite against a real EventStoreDB (an insecure node, e.g.
// LITEHOST_TEST_ESDB_URL=esdb://127.0.0.1:2113?tls=false). The suite scopes every test to its own
// stream prefix, so a shared, non-empty server is fine.
func TestConformanceServer(t *testing.T) {
	url := os.Getenv("LITEHOST_TEST_ESDB_URL")
	if url == "" {
		t.Skip("LITEHOST_TEST_ESDB_URL is not set: no real EventStoreDB to run the suite against (the emulator run covers the adapter)")
	}
	storetest.Run(t, func(t *testing.T) events.Store { return dialStore(t, url) })
}
