package readapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// AdminToken checks the operator token LITEHOST_ADMIN_TOKEN that guards what only operators
// see: the event stream, /metrics and the detail of /health. API keys never pass it.
type AdminToken struct {
	hash    [32]byte
	enabled bool
}

// NewAdminToken returns the check for token; an empty token means no request ever passes and
// guarded endpoints answer 404, as if they did not exist.
func NewAdminToken(token string) AdminToken {
	return AdminToken{hash: sha256.Sum256([]byte(token)), enabled: token != ""}
}

// Enabled reports whether a token is configured.
func (a AdminToken) Enabled() bool { return a.enabled }

// Check returns nil when r bears the token as a bearer credential, ErrNotFound when no token is
// configured, and an AuthError (ADMIN_TOKEN_MISSING or ADMIN_TOKEN_INVALID) otherwise. The
// comparison is in constant time over hashes, so neither the token nor its length leaks.
func (a AdminToken) Check(r *http.Request) error {
	if !a.enabled {
		return ErrNotFound
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return adminAuthError{CodeAdminTokenMissing}
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return adminAuthError{CodeAdminTokenInvalid}
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], a.hash[:]) != 1 {
		return adminAuthError{CodeAdminTokenInvalid}
	}
	return nil
}

// Require is middleware that lets only requests bearing the token through.
func (a AdminToken) Require() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := a.Check(c.Request); err != nil {
			_ = c.Error(err)
			c.Abort()
			return
		}
		c.Next()
	}
}
