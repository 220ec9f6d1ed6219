// Package mailer is the process manager that delivers OTP codes (DESIGN §6). It follows the global
// event log from its own checkpoint, and for every otp.requested.v1 derives the code from the
// event's nonce and sends it by e-mail or SMS, outside any request and outside any database
// transaction. Delivery is at-least-once: the checkpoint advances only after a message was sent
// (or given up because its code expired or the address was refused for good). Only one instance
// sends at a time (a PostgreSQL advisory lock); the others wait and take over when it stops.
package mailer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
)

// Name is the process manager's persistent ID: its checkpoint key and its actor name.
const Name = "otp-mailer"

// lockKey is the advisory-lock key that elects the one sending instance ("otpmail" in ASCII).
const lockKey int64 = 0x6f74706d61696c

// Message is one code to deliver. Text is the whole body (SMS sends only Text).
type Message struct {
	Channel string // otp.ChannelEmail or otp.ChannelPhone
	To      string
	Subject string
	Text    string
}

// Sender delivers a message on one channel. An error wrapped with Permanent is not retried.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (the provider refused the address for good).
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool { return errors.As(err, new(permanentError)) }

// AccountLookup tells whether an identifier has an account, so the message can say what entering
// the code will do. The request path never asks this (anti-enumeration); only the mailer does.
type AccountLookup interface {
	AccountExists(ctx context.Context, id commands.Identifier) (bool, error)
}

// Subscriber is the part of events.Store the mailer reads.
type Subscriber interface {
	SubscribeAll(ctx context.Context, from events.Position, filter events.Filter) (events.Subscription, error)
}

// Config is the mailer's configuration; zero fields take the defaults noted.
type Config struct {
	// Email and SMS deliver each channel; a nil sender logs the code at WARN instead (development).
	Email, SMS Sender
	// AutoCreate says whether verifying creates a missing account (it changes the wording).
	AutoCreate bool
	// RetryMin and RetryMax bound the backoff between delivery attempts (1 s and 30 s).
	RetryMin, RetryMax time.Duration
	// LockPoll is how often a waiting instance tries to take over sending (2 s).
	LockPoll time.Duration
	// Now is the clock that decides whether a code has expired (time.Now).
	Now func() time.Time
}

// Mailer delivers OTP codes.
type Mailer struct {
	log      Subscriber
	pool     *pgxpool.Pool
	keys     *secret.Keyring
	accounts AccountLookup
	cfg      Config
	logger   *slog.Logger
}

// New returns a mailer reading log, keeping its checkpoint and lock in pool (tables from
// commands.Migrate). accounts may be nil: messages then use neutral wording.
func New(log Subscriber, pool *pgxpool.Pool, keys *secret.Keyring, accounts AccountLookup, cfg Config, logger *slog.Logger) *Mailer {
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.LockPoll <= 0 {
		cfg.LockPoll = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Email == nil || cfg.SMS == nil {
		dev := &LogSender{logger: logger.With("process", Name)}
		if cfg.Email == nil {
			cfg.Email = dev
		}
		if cfg.SMS == nil {
			cfg.SMS = dev
		}
	}
	return &Mailer{log: log, pool: pool, keys: keys, accounts: accounts, cfg: cfg, logger: logger.With("process", Name)}
}

// Run delivers codes until ctx ends; it returns nil then. While another instance holds the
// sending lock it waits; after a failure (database or subscription lost) it starts over from the
// checkpoint.
func (m *Mailer) Run(ctx context.Context) error {
	for {
		err := m.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			m.logger.Error("mailer stopped; restarting from the checkpoint", "error", err)
		}
		if sleep(ctx, m.cfg.LockPoll) != nil {
			return nil
		}
	}
}

// runOnce takes the sending lock if it is free and, holding it, delivers until ctx ends or
// something fails. It returns nil at once when another instance holds the lock.
func (m *Mailer) runOnce(ctx context.Context) error {
	conn, err := m.pool.Acquire(ctx)
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
	m.logger.Info("mailer took the sending lock")
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
	go func() { // the lock dies with its session: stop sending if the connection is lost
		defer close(watchDone)
		t := time.NewTicker(m.cfg.LockPoll)
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
	err = m.deliverAll(runCtx)
	cancel(nil)
	<-watchDone
	if cause := context.Cause(runCtx); err != nil && cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

func (m *Mailer) deliverAll(ctx context.Context) error {
	from, err := m.checkpoint(ctx)
	if err != nil {
		return err
	}
	sub, err := m.log.SubscribeAll(ctx, from, events.Filter{TypePrefixes: []string{events.TypeOTPRequested}, StreamPrefixes: []string{"otp-"}})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Close()
	for rec := range sub.Events() {
		if err := m.handle(ctx, rec); err != nil {
			return err
		}
		if err := m.saveCheckpoint(ctx, rec.Position); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := sub.Err(); err != nil {
		return fmt.Errorf("subscription: %w", err)
	}
	return errors.New("subscription ended")
}

// handle delivers one requested code, retrying until it is sent, refused for good, or expired.
// It returns an error only when ctx ends: the event is then handled again after a restart.
func (m *Mailer) handle(ctx context.Context, rec events.RecordedEvent) error {
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return fmt.Errorf("decode %s at %s: %w", rec.Type, rec.Position, err)
	}
	req, ok := ev.(events.OTPRequested)
	if !ok {
		return nil
	}
	md, _ := events.ParseMetadata(rec.Metadata)
	log := m.logger.With("stream", rec.Stream, "position", rec.Position.String(), "channel", req.Channel, "correlation_id", md.CorrelationID)
	sender := m.cfg.Email
	if req.Channel == otp.ChannelPhone {
		sender = m.cfg.SMS
	}
	for attempt := 0; ; attempt++ {
		if !m.cfg.Now().Before(req.ExpiresAt) {
			log.Warn("code expired before it could be delivered; giving up", "attempts", attempt)
			return nil
		}
		msg, err := m.compose(ctx, req)
		if err == nil {
			err = m.send(ctx, sender, msg, req.ExpiresAt)
		}
		switch {
		case err == nil:
			log.Debug("code delivered", "attempts", attempt+1)
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case IsPermanent(err):
			log.Error("code refused for good; giving up", "error", err)
			return nil
		}
		d := m.backoff(attempt)
		log.Warn("code delivery failed; retrying", "error", err, "attempt", attempt+1, "retry_in", d.String())
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

// send bounds one attempt by the code's expiry: a message that arrives later is useless.
func (m *Mailer) send(ctx context.Context, s Sender, msg Message, expires time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, min(expires.Sub(m.cfg.Now()), time.Minute))
	defer cancel()
	return s.Send(ctx, msg)
}

func (m *Mailer) backoff(attempt int) time.Duration {
	d := m.cfg.RetryMin << min(attempt, 16)
	if d > m.cfg.RetryMax || d <= 0 {
		d = m.cfg.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}

func (m *Mailer) checkpoint(ctx context.Context) (events.Position, error) {
	var c, p string
	err := m.pool.QueryRow(ctx, `SELECT commit_pos::text, prepare_pos::text FROM process_checkpoints WHERE name = $1`, Name).Scan(&c, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.Start, nil
	}
	if err != nil {
		return events.Position{}, fmt.Errorf("load checkpoint: %w", err)
	}
	return events.ParsePosition(c + "/" + p)
}

// saveCheckpoint is a single autocommit statement: no transaction stays open while sending.
func (m *Mailer) saveCheckpoint(ctx context.Context, pos events.Position) error {
	_, err := m.pool.Exec(ctx, `
INSERT INTO process_checkpoints (name, commit_pos, prepare_pos, updated_at) VALUES ($1, $2::numeric, $3::numeric, now())
ON CONFLICT (name) DO UPDATE SET commit_pos = EXCLUDED.commit_pos, prepare_pos = EXCLUDED.prepare_pos, updated_at = now()`,
		Name, strconv.FormatUint(pos.Commit, 10), strconv.FormatUint(pos.Prepare, 10))
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", pos, err)
	}
	return nil
}

// Checkpoint returns the position up to which codes have been handled (for status and tests).
func (m *Mailer) Checkpoint(ctx context.Context) (events.Position, error) { return m.checkpoint(ctx) }

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
