package readapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// keyQuery is the one query of a key check: the key by its primary key, and a revocation of the
// key or of its session by the primary key of revoked_credentials.
const keyQuery = `SELECT k.account_id::text, k.session_id::text, k.expires_at,
		k.revoked_at IS NOT NULL OR EXISTS (
			SELECT 1 FROM revoked_credentials r WHERE r.id IN (k.key_id, k.session_id))
	FROM api_keys k WHERE k.key_id = $1`

// Authenticate resolves an Authorization header value to its principal with one query.
// Malformed keys, and keys whose MAC this server did not make, are refused before any query.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (events.Principal, error) {
	scheme, key, _ := strings.Cut(strings.TrimSpace(header), " ")
	key = strings.TrimSpace(key)
	switch {
	case header == "" || (strings.EqualFold(scheme, "Bearer") && key == ""):
		return events.Principal{}, AuthError{Code: CodeAPIKeyMissing}
	case !strings.EqualFold(scheme, "Bearer"):
		return events.Principal{}, AuthError{Code: CodeAPIKeyInvalid}
	}
	id, ok := credential.ParseAPIKey(a.keys, key)
	if !ok {
		return events.Principal{}, AuthError{Code: CodeAPIKeyInvalid}
	}
	var (
		p       = events.Principal{KeyID: id.String()}
		expires time.Time
		revoked bool
	)
	err := a.pool.QueryRow(ctx, keyQuery, id).Scan(&p.AccountID, &p.SessionID, &expires, &revoked)
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
