// Package forwarder publishes the global event log to NATS JetStream for analytics consumers
// (DESIGN §9). Every non-system event goes to subject "<prefix>.<category>.<type>" of one
// JetStream stream, with the event ID as Nats-Msg-Id so that JetStream drops the resends of an
// at-least-once delivery, the event's place in the log in headers, and its data JSON as payload.
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
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/litehost/litehost/events"
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

// Subscriber is the part of events.Store the forwarder reads.
type Subscriber interface {
	SubscribeAll(ctx context.Context, from events.Position, filter events.Filter) (events.Subscription, error)
}

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
	log    Subscriber
	pool   *pgxpool.Pool
	cfg    Config
	logger *slog.Logger
}

// New returns a forwarder reading log and keeping its checkpoint and lock in pool (tables from
// commands.Migrate).
func New(log Subscriber, pool *pgxpool.Pool, cfg Config, logger *slog.Logger) (*Forwarder, error) {
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
	return &Forwarder{log: log, pool: pool, cfg: cfg, logger: logger.With("process", Name)}, nil
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
func (f *Forwarder) Run(ctx context.Context) error {
	for {
		err := f.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			f.logger.Error("forwarder stopped; restarting from the checkpoint", "error", err)
		}
		if sleep(ctx, f.cfg.LockPoll) != nil {
			return nil
		}
	}
}

// runOnce takes the forwarding lock if it is free and, holding it, forwards until ctx ends or
// something fails. It returns nil at once when another instance holds the lock.
func (f *Forwarder) runOnce(ctx context.Context) error {
	conn, err := f.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire lock connection: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&locked); err != nil {
		return fmt.Errorf("try lock: %w", err)
	}
	if !locked {
		return nil
	}
	f.logger.Info("forwarder took the forwarding lock")
	defer func() {
		// The lock is per session: unlock explicitly because the connection goes back to the pool.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
			_ = conn.Conn().Close(uctx) // closing ends the session, which frees the lock
		}
	}()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchDone := make(chan struct{})
	go func() { // the lock dies with its session: stop forwarding if the connection is lost
		defer close(watchDone)
		t := time.NewTicker(f.cfg.LockPoll)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := conn.Ping(runCtx); err != nil && runCtx.Err() == nil {
					cancel(fmt.Errorf("lock connection lost: %w", err))
					return
				}
			}
		}
	}()
	err = f.forwardAll(runCtx)
	cancel(nil)
	<-watchDone
	if cause := context.Cause(runCtx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// forwardAll connects to NATS (waiting for it as long as it takes), makes sure the stream exists
// and publishes every event after the checkpoint.
func (f *Forwarder) forwardAll(ctx context.Context) error {
	nc, err := f.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	for attempt := 0; ; attempt++ {
		err := f.ensureStream(ctx, js)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := f.backoff(attempt)
		f.logger.Warn("create stream failed; retrying", "error", err, "retry_in", d.String())
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}

	from, err := f.checkpoint(ctx)
	if err != nil {
		return err
	}
	sub, err := f.log.SubscribeAll(ctx, from, events.Filter{})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Close()

	// The checkpoint is saved at most every FlushInterval (or every 100 events) rather than per
	// event: a lost save only resends events JetStream drops as duplicates.
	var (
		pending  events.Position
		unsaved  int
		flushErr error
	)
	flush := func(ctx context.Context) error {
		if unsaved == 0 {
			return nil
		}
		if err := f.saveCheckpoint(ctx, pending); err != nil {
			return err
		}
		unsaved = 0
		return nil
	}
	defer func() {
		// Keep the progress made before a shutdown, even though ctx is over.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := flush(sctx); err != nil {
			f.logger.Warn("save checkpoint at stop", "error", err)
		}
	}()
	tick := time.NewTicker(f.cfg.FlushInterval)
	defer tick.Stop()
	ch := sub.Events()
	for {
		select {
		case rec, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err := sub.Err(); err != nil {
					return fmt.Errorf("subscription: %w", err)
				}
				return errors.New("subscription ended")
			}
			if err := f.publish(ctx, js, rec); err != nil {
				return err
			}
			pending, unsaved = rec.Position, unsaved+1
			if unsaved >= 100 {
				flushErr = flush(ctx)
			}
		case <-tick.C:
			flushErr = flush(ctx)
		}
		if flushErr != nil {
			return flushErr
		}
	}
}

// connect dials NATS until it answers or ctx ends. Once connected, the client reconnects by
// itself; publishes in between fail and are retried by publish.
func (f *Forwarder) connect(ctx context.Context) (*nats.Conn, error) {
	for attempt := 0; ; attempt++ {
		nc, err := nats.Connect(f.cfg.URL,
			nats.Name("litehost-forwarder"),
			nats.Timeout(2*time.Second),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(f.cfg.RetryMin),
		)
		if err == nil {
			return nc, nil
		}
		d := f.backoff(attempt)
		f.logger.Warn("NATS unreachable; events wait in the log", "error", err, "retry_in", d.String())
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
	}
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
func (f *Forwarder) publish(ctx context.Context, js jetstream.JetStream, rec events.RecordedEvent) error {
	msg := f.message(rec)
	for attempt := 0; ; attempt++ {
		err := f.publishOnce(ctx, js, msg)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := f.backoff(attempt)
		f.logger.Warn("publish failed; retrying", "error", err, "stream", rec.Stream, "event_type", rec.Type,
			"position", rec.Position.String(), "attempt", attempt+1, "retry_in", d.String())
		if err := sleep(ctx, d); err != nil {
			return err
		}
		if err := f.ensureStream(ctx, js); err != nil && ctx.Err() == nil {
			f.logger.Debug("re-create stream", "error", err)
		}
	}
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

// message builds the NATS message of rec; the payload is the event data JSON unchanged.
func (f *Forwarder) message(rec events.RecordedEvent) *nats.Msg {
	msg := nats.NewMsg(Subject(f.cfg.SubjectPrefix, rec.Stream, rec.Type))
	msg.Data = rec.Data
	msg.Header.Set(nats.MsgIdHdr, rec.ID.String())
	msg.Header.Set(HeaderStream, rec.Stream)
	msg.Header.Set(HeaderVersion, strconv.FormatUint(rec.Version, 10))
	msg.Header.Set(HeaderPosition, rec.Position.String())
	msg.Header.Set(HeaderType, rec.Type)
	msg.Header.Set(HeaderCreatedAt, rec.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	md := rec.Metadata
	if len(md) == 0 {
		md = []byte("{}")
	}
	msg.Header.Set(HeaderMetadata, string(md))
	return msg
}

func (f *Forwarder) backoff(attempt int) time.Duration {
	d := f.cfg.RetryMin << min(attempt, 16)
	if d > f.cfg.RetryMax || d <= 0 {
		d = f.cfg.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}

func (f *Forwarder) checkpoint(ctx context.Context) (events.Position, error) {
	var c, p string
	err := f.pool.QueryRow(ctx, `SELECT commit_pos::text, prepare_pos::text FROM process_checkpoints WHERE name = $1`, Name).Scan(&c, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.Start, nil
	}
	if err != nil {
		return events.Position{}, fmt.Errorf("load checkpoint: %w", err)
	}
	return events.ParsePosition(c + "/" + p)
}

// saveCheckpoint is a single autocommit statement: no transaction stays open while publishing.
func (f *Forwarder) saveCheckpoint(ctx context.Context, pos events.Position) error {
	_, err := f.pool.Exec(ctx, `
INSERT INTO process_checkpoints (name, commit_pos, prepare_pos, updated_at) VALUES ($1, $2::numeric, $3::numeric, now())
ON CONFLICT (name) DO UPDATE SET commit_pos = EXCLUDED.commit_pos, prepare_pos = EXCLUDED.prepare_pos, updated_at = now()`,
		Name, strconv.FormatUint(pos.Commit, 10), strconv.FormatUint(pos.Prepare, 10))
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", pos, err)
	}
	return nil
}

// Checkpoint returns the position up to which events have been forwarded (for status and tests).
func (f *Forwarder) Checkpoint(ctx context.Context) (events.Position, error) {
	return f.checkpoint(ctx)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
