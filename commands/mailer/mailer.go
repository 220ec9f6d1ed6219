// Package mailer is the process manager that delivers OTP codes (DESIGN §6). It follows the global
// event log from its own checkpoint, and for every otp.requested event derives the code from the
// event with the server secret (commands.OTPCodeOf) and sends it by e-mail or SMS, outside any request and outside any database
// transaction. Delivery is at-least-once: the checkpoint advances only after a message was sent
// (or given up because its code expired or the address was refused for good). Only one instance
// sends at a time (a PostgreSQL advisory lock); the others wait and take over when it stops.
package mailer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/process"
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
	proc     process.Runner
	keys     *secret.Keyring
	accounts AccountLookup
	cfg      Config
	backoff  process.Backoff
	logger   *slog.Logger
	metrics  *metrics
}

// New returns a mailer reading log, keeping its checkpoint and lock in pool (tables from
// commands.Migrate). accounts may be nil: messages then use neutral wording.
func New(log process.Log, pool *pgxpool.Pool, keys *secret.Keyring, accounts AccountLookup, cfg Config, logger *slog.Logger) *Mailer {
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
	m := &Mailer{keys: keys, accounts: accounts, cfg: cfg, backoff: process.Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax},
		logger: logger.With("process", Name)}
	m.metrics = newMetrics(m)
	m.proc = process.Runner{
		Name: Name, LockKey: lockKey, Pool: pool, Log: log, Handle: m.handle, LockPoll: cfg.LockPoll, Logger: m.logger,
		Filter: events.Filter{TypePrefixes: []string{events.TypeOTPRequested, events.TypeOTPRequestedV2}, StreamPrefixes: []string{"otp-"}},
	}
	return m
}

// Run delivers codes until ctx ends; it returns nil then. While another instance holds the
// sending lock it waits; after a failure (database or subscription lost) it starts over from the
// checkpoint.
func (m *Mailer) Run(ctx context.Context) error { return m.proc.Run(ctx) }

// handle delivers one requested code, retrying until it is sent, refused for good, or expired.
// It returns an error only when ctx ends: the event is then handled again after a restart.
func (m *Mailer) handle(ctx context.Context, rec events.RecordedEvent) error {
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return err
	}
	req, ok := requestOf(m.keys, ev)
	if !ok {
		return nil
	}
	md, _ := events.ParseMetadata(rec.Metadata)
	log := m.logger.With("stream", rec.Stream, "position", rec.Position.String(), "channel", req.Channel, "correlation_id", md.CorrelationID)
	sender := m.cfg.Email
	if req.Channel == otp.ChannelPhone {
		sender = m.cfg.SMS
	}
	defer m.metrics.inFlight.Begin(rec.CreatedAt)()
	try := func(attempt int) error {
		if !m.cfg.Now().Before(req.ExpiresAt) {
			log.Warn("code expired before it could be delivered; giving up", "attempts", attempt)
			m.metrics.failed.WithLabelValues(req.Channel, "expired").Inc()
			return nil
		}
		msg, err := m.compose(ctx, req)
		if err == nil {
			err = m.send(ctx, sender, msg, req.ExpiresAt)
		}
		switch {
		case err == nil:
			log.Debug("code delivered", "attempts", attempt+1)
			m.metrics.sent.WithLabelValues(req.Channel).Inc()
			return nil
		case ctx.Err() == nil && IsPermanent(err):
			log.Error("code refused for good; giving up", "error", err)
			m.metrics.failed.WithLabelValues(req.Channel, "refused").Inc()
			return nil
		}
		return err
	}
	return process.Retry(ctx, m.backoff, try, func(attempt int, err error, wait time.Duration) {
		m.metrics.failed.WithLabelValues(req.Channel, "retry").Inc()
		log.Warn("code delivery failed; retrying", "error", err, "attempt", attempt+1, "retry_in", wait.String())
	})
}

// codeRequest is what the mailer needs of an otp.requested event of any version.
type codeRequest struct {
	Channel, Address, Purpose, Code string
	ExpiresAt                       time.Time
}

func requestOf(keys *secret.Keyring, ev events.Event) (codeRequest, bool) {
	code, ok := commands.OTPCodeOf(keys, ev)
	switch e := ev.(type) {
	case events.OTPRequested:
		return codeRequest{Channel: e.Channel, Address: e.Address, Purpose: e.Purpose, Code: code, ExpiresAt: e.ExpiresAt}, ok
	case events.OTPRequestedV2:
		return codeRequest{Channel: e.Channel, Address: e.Address, Purpose: e.Purpose, Code: code, ExpiresAt: e.ExpiresAt}, ok
	}
	return codeRequest{}, false
}

// send bounds one attempt by the code's expiry: a message that arrives later is useless.
func (m *Mailer) send(ctx context.Context, s Sender, msg Message, expires time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, min(expires.Sub(m.cfg.Now()), time.Minute))
	defer cancel()
	return s.Send(ctx, msg)
}

// Checkpoint returns the position up to which codes have been handled (for status and tests).
func (m *Mailer) Checkpoint(ctx context.Context) (events.Position, error) {
	return m.proc.Checkpoint(ctx)
}
