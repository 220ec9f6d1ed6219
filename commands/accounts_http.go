package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// maxAuthBody bounds the refresh and revoke bodies: a token is ~110 bytes.
const maxAuthBody = 4 << 10

// AccountRoutes serves the session writes: POST /v1/auth/refresh and POST /v1/auth/revoke.
type AccountRoutes struct {
	acc    *Accounts
	waiter Waiter
}

// NewAccountRoutes returns the session write routes over acc; waiter gives read-your-writes.
func NewAccountRoutes(acc *Accounts, waiter Waiter) *AccountRoutes {
	return &AccountRoutes{acc: acc, waiter: waiter}
}

// Register adds POST /auth/refresh (no key: the refresh token is the credential) and
// POST /auth/revoke behind optionalAuth (readapi.Authenticator.Optional: a Bearer key, when
// sent, must be valid and names the session to revoke).
func (h *AccountRoutes) Register(r gin.IRoutes, optionalAuth gin.HandlerFunc) {
	r.POST("/auth/refresh", h.refresh)
	r.POST("/auth/revoke", optionalAuth, h.revoke)
}

type refreshBody struct {
	RefreshToken *string `json:"refreshToken"`
}

func (h *AccountRoutes) refresh(c *gin.Context) {
	var b refreshBody
	if err := decodeAuthBody(c, &b, true); err != nil {
		_ = c.Error(err)
		return
	}
	if b.RefreshToken == nil || *b.RefreshToken == "" {
		_ = c.Error(domain.Invalid{"refreshToken": "required"})
		return
	}
	ctx := c.Request.Context()
	// Refresh returns only once the rotated-away key (or, on reuse, the whole session) is refused
	// on every instance: no wait for the read model is needed for that.
	res, err := h.acc.Refresh(ctx, CommandIDFrom(ctx), *b.RefreshToken)
	if err != nil {
		_ = c.Error(err)
		return
	}
	Reply(c, h.waiter, res.Position, http.StatusOK, gin.H{
		"apiKey": res.APIKey, "expiresAt": FormatTime(res.ExpiresAt),
		"refreshToken": res.RefreshToken, "refreshExpiresAt": FormatTime(res.RefreshExpiresAt),
	})
}

func (h *AccountRoutes) revoke(c *gin.Context) {
	var b refreshBody
	if err := decodeAuthBody(c, &b, false); err != nil {
		_ = c.Error(err)
		return
	}
	ctx := c.Request.Context()
	p, hasKey := events.PrincipalFrom(ctx)
	hasToken := b.RefreshToken != nil && *b.RefreshToken != ""
	if !hasKey && !hasToken {
		_ = c.Error(domain.Invalid{"refreshToken": "required when no Bearer API key is sent"})
		return
	}
	cmd := CommandIDFrom(ctx)
	var last events.Position
	if hasKey {
		pos, err := h.acc.RevokeSession(ctx, cmd, p.AccountID, p.SessionID)
		if err != nil {
			_ = c.Error(err)
			return
		}
		last = pos
	}
	if hasToken {
		pos, err := h.acc.RevokeRefresh(ctx, cmd, *b.RefreshToken)
		if err != nil {
			_ = c.Error(err)
			return
		}
		if pos.Compare(last) > 0 {
			last = pos
		}
	}
	Reply(c, h.waiter, last, http.StatusOK, gin.H{"revoked": true})
}

// decodeAuthBody reads a small JSON object into v. Without required, an empty body is fine.
func decodeAuthBody(c *gin.Context, v any, required bool) error {
	raw, err := io.ReadAll(io.LimitReader(c.Request.Body, maxAuthBody+1))
	if err != nil {
		return BadRequest("BAD_REQUEST", "could not read the request body")
	}
	if len(raw) > maxAuthBody {
		return BadRequest("INVALID_JSON", "the request body is too large")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if required {
			return domain.Invalid{"refreshToken": "required"}
		}
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		// A wrong type inside the object is the field's problem; a body that is no object at all
		// (an array, a string, a number) has no field to name, and is a 400 like broken JSON.
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return domain.Invalid{typeErr.Field: "must be a " + typeErr.Type.String()}
		}
		return BadRequest("INVALID_JSON", "the request body must be a JSON object")
	}
	return nil
}
