package readapi

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
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

// apiKeyPrefix is the prefix of every API key; the 64 hex after it end with the CRC-32 of the
// 56 before (commands.ValidAPIKey has the same rule for the write side).
const apiKeyPrefix = "lh_live_"

// Authenticator checks bearer API keys against the api_keys read model.
type Authenticator struct {
	pool *pgxpool.Pool
	keys *secret.Keyring
	now  func() time.Time
}

// NewAuthenticator returns an Authenticator over the read models in pool; keys hashes presented
// keys the way the write side stored them, now is the clock expiry is judged by.
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
	p, err := a.Authenticate(ctx, header)
	if err != nil {
		_ = c.Error(err)
		c.Abort()
		return
	}
	md := events.MetadataFrom(ctx)
	md.Actor = events.AccountActor(p.AccountID)
	c.Request = c.Request.WithContext(events.WithMetadata(events.WithPrincipal(ctx, p), md))
	c.Next()
}

const keyQuery = `SELECT account_id::text, session_id::text, expires_at, revoked_at IS NOT NULL
	FROM api_keys WHERE key_hash = $1`

// Authenticate resolves an Authorization header value to its principal with one indexed lookup.
// Malformed keys are refused before any query.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (events.Principal, error) {
	scheme, key, _ := strings.Cut(strings.TrimSpace(header), " ")
	key = strings.TrimSpace(key)
	switch {
	case header == "" || (strings.EqualFold(scheme, "Bearer") && key == ""):
		return events.Principal{}, AuthError{Code: CodeAPIKeyMissing}
	case !strings.EqualFold(scheme, "Bearer") || !wellFormedKey(key):
		return events.Principal{}, AuthError{Code: CodeAPIKeyInvalid}
	}
	hash := a.keys.Hash(secret.PurposeAPIKey, key)
	var (
		p       = events.Principal{KeyID: hash}
		expires time.Time
		revoked bool
	)
	err := a.pool.QueryRow(ctx, keyQuery, hash).Scan(&p.AccountID, &p.SessionID, &expires, &revoked)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return events.Principal{}, AuthError{Code: CodeAPIKeyInvalid}
	case err != nil:
		return events.Principal{}, fmt.Errorf("look up api key: %w", err)
	case revoked:
		return events.Principal{}, AuthError{Code: CodeAPIKeyInvalid}
	case !a.now().Before(expires):
		return events.Principal{}, AuthError{Code: CodeAPIKeyExpired}
	}
	return p, nil
}

// wellFormedKey checks the prefix, 64 lowercase hex, and the checksum.
func wellFormedKey(key string) bool {
	body, ok := strings.CutPrefix(key, apiKeyPrefix)
	if !ok || len(body) != 64 {
		return false
	}
	for i := 0; i < len(body); i++ {
		if c := body[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body[:56]))) == body[56:]
}
