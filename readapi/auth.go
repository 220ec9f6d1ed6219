package readapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/internal/credential"
)

// Codes of AuthError (spec §1.2).
const (
	CodeAPIKeyMissing = "API_KEY_MISSING"
	CodeAPIKeyInvalid = "API_KEY_INVALID"
	CodeAPIKeyExpired = "API_KEY_EXPIRED"
)

// AuthError is a request refused for its API key: always 401, with Code as the error code.
// It is a comparable value, so errors.Is(err, AuthError{Code: CodeAPIKeyExpired}) works.
type AuthError struct {
	Code string
}

// Error implements error with the message the client is shown.
func (e AuthError) Error() string {
	switch e.Code {
	case CodeAPIKeyMissing:
		return "This endpoint needs an API key: send Authorization: Bearer <apiKey>."
	case CodeAPIKeyExpired:
		return "The API key has expired."
	}
	return "The API key is invalid or has been revoked."
}

// Authenticator checks bearer API keys: the key's MAC under the server secret, then the
// api_keys read model for its account, session and expiry, and the command side's
// revoked_credentials (commands.Revocations) for a revocation the read model may not have applied
// yet. Both tables are in the PostgreSQL every instance shares, so a revocation that was answered
// holds on all of them at once, whatever the accounts projector's lag or state.
type Authenticator struct {
	pool *pgxpool.Pool
	keys *secret.Keyring
	now  func() time.Time
	renewal
}

// KeyRenewer renews the session of a key in use (commands.Accounts implements it): at most one
// event per key and day however often and wherever it is called, and never for a revoked or
// expired key. It returns the key's expiry after the renewal.
type KeyRenewer interface {
	RenewKey(ctx context.Context, accountID, sessionID, keyID string) (time.Time, error)
}

// renewStep mirrors account.RenewStep: a use renews a key whose stored expiry is more than this
// behind now + the idle window, so a key in daily use causes one renewal a day.
const renewStep = 24 * time.Hour

// renewSlots bounds the renewals running in the background at once; a use that finds them all
// busy leaves its renewal to the next use.
const renewSlots = 16

// renewal is the Authenticator's background renewal of keys in use.
type renewal struct {
	renewer KeyRenewer
	idle    time.Duration
	logger  *slog.Logger
	slots   chan struct{}
	mu      sync.Mutex
	started map[string]string // key ID → UTC day a renewal was started (and not failed) for it
}

// WithRenewal makes each use of a key whose expiry is more than a day behind now+idle renew its
// session through r, off the request's path: the request is answered with the key as it is, the
// renewal runs in the background, once per key and day on this instance, and a failed one is
// tried again at the key's next use.
func (a *Authenticator) WithRenewal(r KeyRenewer, idle time.Duration, logger *slog.Logger) *Authenticator {
	a.renewer, a.idle, a.logger = r, idle, logger
	a.slots = make(chan struct{}, renewSlots)
	a.started = map[string]string{}
	return a
}

// NeedsRenewal reports whether a key expiring at expires is due for a renewal at now.
func (a *Authenticator) NeedsRenewal(expires, now time.Time) bool {
	return a.renewer != nil && now.Add(a.idle).Sub(expires) > renewStep
}

// EffectiveExpiry returns when p's key expires, given its stored expiry: renewed first, in the
// caller's request, when it is due. GET /v1/auth/session shows this, so a client asking "how long
// does my key last?" hears the answer its use has just earned.
func (a *Authenticator) EffectiveExpiry(ctx context.Context, p events.Principal, stored time.Time) time.Time {
	if !a.NeedsRenewal(stored, a.now().UTC()) {
		return stored
	}
	renewed, err := a.renewer.RenewKey(ctx, p.AccountID, p.SessionID, p.KeyID)
	if err != nil {
		// The key still works until its stored expiry, which is what the caller asked; the
		// renewal is tried again at the next use.
		a.logger.Warn("renew api key; the next use retries", "session_id", p.SessionID, "error", err)
		return stored
	}
	if renewed.After(stored) {
		return renewed
	}
	return stored
}

// renewInBackground starts the renewal of p's key if it is due and none was started today.
func (a *Authenticator) renewInBackground(ctx context.Context, p events.Principal, expires time.Time) {
	now := a.now().UTC()
	if !a.NeedsRenewal(expires, now) {
		return
	}
	day := now.Format(time.DateOnly)
	a.mu.Lock()
	if a.started[p.KeyID] == day {
		a.mu.Unlock()
		return
	}
	if len(a.started) >= 100_000 { // a day's worth of keys at most; the event store dedupes anyway
		clear(a.started)
	}
	a.started[p.KeyID] = day
	a.mu.Unlock()
	forget := func() {
		a.mu.Lock()
		if a.started[p.KeyID] == day {
			delete(a.started, p.KeyID)
		}
		a.mu.Unlock()
	}
	select {
	case a.slots <- struct{}{}:
	default:
		forget()
		return
	}
	// The request's metadata (actor, request ID) goes along; its cancellation does not.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	go func() {
		defer func() { <-a.slots }()
		defer cancel()
		if _, err := a.renewer.RenewKey(ctx, p.AccountID, p.SessionID, p.KeyID); err != nil {
			forget()
			a.logger.Warn("renew api key; the next use retries", "session_id", p.SessionID, "error", err)
		}
	}()
}

// NewAuthenticator returns an Authenticator over the tables in pool; keys checks the MACs of
// presented keys, now is the clock expiry is judged by.
func NewAuthenticator(pool *pgxpool.Pool, keys *secret.Keyring, now func() time.Time) *Authenticator {
	return &Authenticator{pool: pool, keys: keys, now: now}
}

// Require refuses a request without a valid, unexpired, unrevoked API key (an AuthError in
// c.Errors, chain aborted). On success the request's context carries the events.Principal and
// its metadata actor is the account, so every event the request appends names who did it.
func (a *Authenticator) Require() gin.HandlerFunc {
	return func(c *gin.Context) {
		a.handle(c, true)
	}
}

// Optional is Require for endpoints that also work without a key (POST /v1/auth/revoke takes a
// refresh token instead): no Authorization header passes through without a principal, but a
// header that is present must hold a valid key.
func (a *Authenticator) Optional() gin.HandlerFunc {
	return func(c *gin.Context) {
		a.handle(c, false)
	}
}

func (a *Authenticator) handle(c *gin.Context, required bool) {
	header := c.GetHeader("Authorization")
	if header == "" && !required {
		c.Next()
		return
	}
	ctx := c.Request.Context()
	p, expires, err := a.authenticate(ctx, header)
	if err != nil {
		_ = c.Error(err)
		c.Abort()
		return
	}
	md := events.MetadataFrom(ctx)
	md.Actor = events.AccountActor(p.AccountID)
	ctx = events.WithMetadata(events.WithPrincipal(ctx, p), md)
	c.Request = c.Request.WithContext(ctx)
	a.renewInBackground(ctx, p, expires)
	c.Next()
}

// keyQuery is the one query of a key check: the key by its primary key, and a revocation of the
// key or of its session by the primary key of revoked_credentials.
const keyQuery = `SELECT k.account_id::text, k.session_id::text, k.expires_at,
		k.revoked_at IS NOT NULL OR EXISTS (
			SELECT 1 FROM revoked_credentials r WHERE r.id IN (k.key_id, k.session_id))
	FROM api_keys k WHERE k.key_id = $1`

// Authenticate resolves an Authorization header value to its principal with one query.
// Malformed keys, and keys whose MAC this server did not make, are refused before any query.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (events.Principal, error) {
	p, _, err := a.authenticate(ctx, header)
	return p, err
}

// authenticate is Authenticate that also returns the key's stored expiry.
func (a *Authenticator) authenticate(ctx context.Context, header string) (events.Principal, time.Time, error) {
	scheme, key, _ := strings.Cut(strings.TrimSpace(header), " ")
	key = strings.TrimSpace(key)
	switch {
	case header == "" || (strings.EqualFold(scheme, "Bearer") && key == ""):
		return events.Principal{}, time.Time{}, AuthError{Code: CodeAPIKeyMissing}
	case !strings.EqualFold(scheme, "Bearer"):
		return events.Principal{}, time.Time{}, AuthError{Code: CodeAPIKeyInvalid}
	}
	id, ok := credential.ParseAPIKey(a.keys, key)
	if !ok {
		return events.Principal{}, time.Time{}, AuthError{Code: CodeAPIKeyInvalid}
	}
	var (
		p       = events.Principal{KeyID: id.String()}
		expires time.Time
		revoked bool
	)
	err := a.pool.QueryRow(ctx, keyQuery, id).Scan(&p.AccountID, &p.SessionID, &expires, &revoked)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return events.Principal{}, time.Time{}, AuthError{Code: CodeAPIKeyInvalid}
	case err != nil:
		return events.Principal{}, time.Time{}, fmt.Errorf("look up api key: %w", err)
	case revoked:
		return events.Principal{}, time.Time{}, AuthError{Code: CodeAPIKeyInvalid}
	case !a.now().Before(expires):
		return events.Principal{}, time.Time{}, AuthError{Code: CodeAPIKeyExpired}
	}
	return p, expires, nil
}
