// Package kurrentcheck cross-checks the EventStoreDB emulator with a second, independent official
// client, KurrentDB-Client-Go, so that the emulator is not shaped to EventStore-Client-Go's quirks.
//
// The two clients register the same protobuf names, so one binary that links both panics at start
// (DESIGN §3). This package's test binary therefore links only the KurrentDB client and talks to
// the emulator built and run as a separate process (events/esdbemu/cmd/esdbemu). It holds tests
// only; nothing may import it.
package kurrentcheck
