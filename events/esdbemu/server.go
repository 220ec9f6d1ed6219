// Package esdbemu is an in-process emulator of the EventStoreDB (KurrentDB) v1 Streams gRPC
// service, for tests only. It serves the stubs shipped by EventStore-Client-Go v4 so the real
// client library runs over real gRPC against it, and it follows the server behaviour recorded in
// the shared esdb-protocol-notes.md (append with the four expected kinds and both idempotency
// rules, stream and $all reads, catch-up subscriptions with filters and checkpoints, delete and
// tombstone). It keeps everything in memory and is never selectable in production configuration.
package esdbemu

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
)

// DefaultMaxAppendSize is the server's MaxAppendSize default up to v25.0 (1 MiB).
const DefaultMaxAppendSize = 1 << 20

// Option configures a Server.
type Option func(*config)

type config struct {
	addr          string
	maxAppendSize int
	logger        *slog.Logger
	now           func() time.Time
}

// WithAddr sets the listen address (default 127.0.0.1:0, a free loopback port).
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithMaxAppendSize sets the largest total size of one append (see DefaultMaxAppendSize).
func WithMaxAppendSize(n int) Option { return func(c *config) { c.maxAppendSize = n } }

// WithLogger sets the logger for request failures (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets the clock stamping the `created` metadata of new events.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// Server is a running emulator.
type Server struct {
	streams.UnimplementedStreamsServer

	cfg  config
	lis  net.Listener
	grpc *grpc.Server
	done chan struct{} // closed by Close: ends every subscription
	wg   sync.WaitGroup

	mu      sync.Mutex
	log     *eventLog
	changed chan struct{} // closed and replaced after every write, wakes live subscriptions
	kick    chan struct{} // closed and replaced by DropSubscriptions
	closed  bool
}

// Start listens on a loopback port and serves the Streams, ServerFeatures and Gossip services until
// Close. ServerFeatures reports ServerVersion; Gossip reports the emulator as the leader of a
// one-node cluster, so discover and gossip-seed connection strings reach it too.
func Start(ctx context.Context, opts ...Option) (*Server, error) {
	cfg := config{addr: "127.0.0.1:0", maxAppendSize: DefaultMaxAppendSize, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("esdbemu listen %s: %w", cfg.addr, err)
	}
	s := &Server{
		cfg:     cfg,
		lis:     lis,
		grpc:    grpc.NewServer(),
		done:    make(chan struct{}),
		log:     newEventLog(),
		changed: make(chan struct{}),
		kick:    make(chan struct{}),
	}
	members, err := newCluster(lis.Addr().String(), func() int64 { return cfg.now().UnixNano() / 100 })
	if err != nil {
		_ = lis.Close()
		return nil, err
	}
	streams.RegisterStreamsServer(s.grpc, s)
	serverfeatures.RegisterServerFeaturesServer(s.grpc, features{})
	gossip.RegisterGossipServer(s.grpc, members)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(lis); err != nil {
			cfg.logger.Error("esdbemu serve", "error", err)
		}
	}()
	return s, nil
}

// Addr returns the host:port the emulator listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// URL returns the insecure single-node connection string of the emulator.
func (s *Server) URL() string { return "esdb://" + s.Addr() + "?tls=false" }

// Close ends every subscription (status Unavailable), stops serving and forgets all events.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.grpc.Stop()
	s.wg.Wait()
	return nil
}

// DropSubscriptions ends every subscription that is waiting for live events with status
// Unavailable, as a real node does when it restarts or loses leadership, keeping all events.
// Tests use it to prove that clients resubscribe from where they were.
func (s *Server) DropSubscriptions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.kick)
	s.kick = make(chan struct{})
}

// commitLocked publishes a write to live subscriptions. Callers hold s.mu.
func (s *Server) commitLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}
