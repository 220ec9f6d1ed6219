// Package forwarder publishes the global event log to NATS JetStream for analytics consumers
// (DESIGN §9). Every event of the public contract (package events/public) goes to subject
// "<prefix>.<category>.<type>" of one JetStream stream, with the event ID as Nats-Msg-Id so that
// JetStream drops the resends of an at-least-once delivery, the event's place in the log and its
// public metadata in headers, and its public data JSON as payload. Private events (the sign-in
// code flow, identities) are passed over: the checkpoint moves past them, nothing is published.
//
// The forwarder is a process manager like the OTP mailer: it follows the log from its own row in
// process_checkpoints, advances it only after JetStream acknowledged the publish, and only one
// instance forwards at a time (a PostgreSQL advisory lock). While NATS is unreachable it retries
// with backoff and the checkpoint stays put, so events are delayed, never lost. Events are
// published one at a time, each after the previous one's ack, so the JetStream stream holds them
// in log order even across retries.
package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/litehost/litehost/commands/process"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/public"
)

// Name is the forwarder's persistent ID: its checkpoint key in process_checkpoints.
const Name = "nats-forwarder"

// lockKey is the advisory-lock key that elects the one forwarding instance ("natsfwd" in ASCII).
const lockKey int64 = 0x6e617473667764

// Defaults of Config.
const (
	DefaultStream        = "LITEHOST_EVENTS"
	DefaultSubjectPrefix = "litehost.events"
	DefaultDuplicates    = 2 * time.Minute
)

// Headers set on every published message besides nats.MsgIdHdr (the event ID).
const (
	HeaderStream    = "Litehost-Stream"
	HeaderVersion   = "Litehost-Version"
	HeaderPosition  = "Litehost-Position"
	HeaderType      = "Litehost-Type"
	HeaderCreatedAt = "Litehost-Created-At"
	HeaderMetadata  = "Litehost-Metadata"
)

// Config configures a Forwarder; zero fields take the defaults noted.
type Config struct {
	// URL is the NATS server URL (LITEHOST_NATS_URL). Required.
	URL string
	// Stream is the JetStream stream created or updated at start (LITEHOST_EVENTS).
	Stream string
	// SubjectPrefix is the subject prefix; the stream covers "<prefix>.>" (litehost.events).
	SubjectPrefix string
	// Duplicates is the stream's duplicate window for Nats-Msg-Id (2 min).
	Duplicates time.Duration
	// RetryMin and RetryMax bound the backoff while NATS is unreachable (500 ms and 30 s).
	RetryMin, RetryMax time.Duration
	// LockPoll is how often a waiting instance tries to take over forwarding (2 s).
	LockPoll time.Duration
	// FlushInterval is how long a published position may wait before the checkpoint is saved
	// (250 ms); a crash in between only resends events that JetStream then drops as duplicates.
	FlushInterval time.Duration
	// PublishTimeout bounds one publish attempt (5 s).
	PublishTimeout time.Duration
}

// Forwarder publishes the event log to JetStream.
type Forwarder struct {
	proc    process.Runner
	cfg     Config
	backoff process.Backoff
	logger  *slog.Logger
	metrics *metrics
}

// New returns a forwarder reading log and keeping its checkpoint and lock in pool (tables from
// commands.Migrate).
func New(log process.Log, pool *pgxpool.Pool, cfg Config, logger *slog.Logger) (*Forwarder, error) {
	if cfg.URL == "" {
		return nil, errors.New("forwarder: NATS URL is required")
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	if strings.ContainsAny(cfg.SubjectPrefix, " \t*>") || strings.HasSuffix(cfg.SubjectPrefix, ".") {
		return nil, fmt.Errorf("forwarder: bad subject prefix %q", cfg.SubjectPrefix)
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = DefaultDuplicates
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 500 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.LockPoll <= 0 {
		cfg.LockPoll = 2 * time.Second
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 250 * time.Millisecond
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	f := &Forwarder{cfg: cfg, backoff: process.Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax}, logger: logger.With("process", Name), metrics: newMetrics()}
	// The checkpoint is saved at most every FlushInterval (or every 100 events) rather than per
	// event: a lost save only resends events JetStream drops as duplicates.
	f.proc = process.Runner{
		Name: Name, LockKey: lockKey, Pool: pool, Log: log, Open: f.open, LockPoll: cfg.LockPoll,
		FlushInterval: cfg.FlushInterval, FlushMax: 100, Logger: f.logger,
	}
	return f, nil
}

// Subject is the subject an event of type eventType in stream is published to:
// "<prefix>.<category>.<type>". The type's dots become subject tokens; characters that NATS does
// not allow in a token (whitespace, "*", ">") become "_", as does an empty token.
func Subject(prefix, stream, eventType string) string {
	return prefix + "." + token(events.Category(stream)) + "." + tokens(eventType)
}

func tokens(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = token(p)
	}
	return strings.Join(parts, ".")
}

func token(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', '*', '>', '.':
			return '_'
		}
		return r
	}, s)
}

// Run forwards until ctx ends; it returns nil then. While another instance holds the lock it
// waits; after a failure (database or subscription lost) it starts over from the checkpoint.
func (f *Forwarder) Run(ctx context.Context) error { return f.proc.Run(ctx) }

// open connects to NATS (waiting for it as long as it takes) and makes sure the stream exists,
// each time this instance takes the lock; it returns the publishing handler for that term.
func (f *Forwarder) open(ctx context.Context) (process.Handler, func(), error) {
	nc, err := f.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	err = process.Retry(ctx, f.backoff, func(int) error { return f.ensureStream(ctx, js) }, func(_ int, err error, wait time.Duration) {
		f.metrics.failed.WithLabelValues("stream").Inc()
		f.logger.Warn("create stream failed; retrying", "error", err, "retry_in", wait.String())
	})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	publish := func(ctx context.Context, rec events.RecordedEvent) error {
		msg, ok, err := f.message(rec)
		if err != nil {
			return err
		}
		if !ok {
			f.metrics.forwarded.WithLabelValues("skipped").Inc()
			return nil
		}
		defer f.metrics.inFlight.Begin(rec.CreatedAt)()
		if err := f.publish(ctx, js, rec, msg); err != nil {
			return err
		}
		f.metrics.forwarded.WithLabelValues("published").Inc()
		return nil
	}
	return publish, nc.Close, nil
}

// connect dials NATS until it answers or ctx ends. Once connected, the client reconnects by
// itself; publishes in between fail and are retried by publish.
func (f *Forwarder) connect(ctx context.Context) (*nats.Conn, error) {
	var nc *nats.Conn
	err := process.Retry(ctx, f.backoff, func(int) error {
		var err error
		nc, err = nats.Connect(f.cfg.URL,
			nats.Name("litehost-forwarder"),
			nats.Timeout(2*time.Second),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(f.cfg.RetryMin),
		)
		return err
	}, func(_ int, err error, wait time.Duration) {
		f.metrics.failed.WithLabelValues("connect").Inc()
		f.logger.Warn("NATS unreachable; events wait in the log", "error", err, "retry_in", wait.String())
	})
	return nc, err
}

func (f *Forwarder) ensureStream(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.PublishTimeout)
	defer cancel()
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        f.cfg.Stream,
		Description: "Litehost domain events (docs/events.md)",
		Subjects:    []string{f.cfg.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Duplicates:  f.cfg.Duplicates,
	})
	if err != nil {
		return fmt.Errorf("create or update stream %s: %w", f.cfg.Stream, err)
	}
	return nil
}

// publish sends one event and waits for JetStream's ack, retrying with backoff until it gets one
// or ctx ends. After a failure it re-creates the stream, in case it was deleted or NATS lost it.
func (f *Forwarder) publish(ctx context.Context, js jetstream.JetStream, rec events.RecordedEvent, msg *nats.Msg) error {
	return process.Retry(ctx, f.backoff, func(attempt int) error {
		if attempt > 0 {
			if err := f.ensureStream(ctx, js); err != nil && ctx.Err() == nil {
				f.logger.Debug("re-create stream", "error", err)
			}
		}
		return f.publishOnce(ctx, js, msg)
	}, func(attempt int, err error, wait time.Duration) {
		f.metrics.failed.WithLabelValues("publish").Inc()
		f.logger.Warn("publish failed; retrying", "error", err, "stream", rec.Stream, "event_type", rec.Type,
			"position", rec.Position.String(), "attempt", attempt+1, "retry_in", wait.String())
	})
}

func (f *Forwarder) publishOnce(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.PublishTimeout)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(f.cfg.Stream))
	if err != nil {
		return err
	}
	if ack.Duplicate {
		f.logger.Debug("duplicate dropped by JetStream", "event_id", msg.Header.Get(nats.MsgIdHdr))
	}
	return nil
}

// message builds the NATS message of rec from its public form; false when rec is private.
func (f *Forwarder) message(rec events.RecordedEvent) (*nats.Msg, bool, error) {
	ev, ok, err := public.FromRecord(rec)
	if !ok || err != nil {
		return nil, ok, err
	}
	md, err := json.Marshal(ev.Metadata)
	if err != nil {
		return nil, false, fmt.Errorf("encode metadata of %s: %w", rec.ID, err)
	}
	msg := nats.NewMsg(Subject(f.cfg.SubjectPrefix, ev.Stream, ev.Type))
	msg.Data = ev.Data
	msg.Header.Set(nats.MsgIdHdr, ev.ID)
	msg.Header.Set(HeaderStream, ev.Stream)
	msg.Header.Set(HeaderVersion, strconv.FormatUint(ev.Version, 10))
	msg.Header.Set(HeaderPosition, ev.Position.String())
	msg.Header.Set(HeaderType, ev.Type)
	msg.Header.Set(HeaderCreatedAt, ev.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	msg.Header.Set(HeaderMetadata, string(md))
	return msg, true, nil
}

// Checkpoint returns the position up to which events have been forwarded (for status and tests).
func (f *Forwarder) Checkpoint(ctx context.Context) (events.Position, error) {
	return f.proc.Checkpoint(ctx)
}
