package main

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/domain/customdomain"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/domain/slug"
	"github.com/litehost/litehost/domain/workspace"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/readapi"
)

// apiError is the status and machine code an error is answered with.
type apiError struct {
	status int
	code   string
}

// ruleStatus gives every domain rule its status and code from the spec (§1.5) and DESIGN §12;
// TestRuleStatusCoversEveryRule fails for a rule missing here.
var ruleStatus = map[domain.Error]apiError{
	project.ErrNotFound:       {http.StatusNotFound, "NOT_FOUND"},
	project.ErrFreeTier:       {http.StatusForbidden, "FREE_TIER_RESTRICTED"},
	project.ErrArchived:       {http.StatusConflict, "PROJECT_ARCHIVED"},
	project.ErrExpired:        {http.StatusConflict, "PROJECT_EXPIRED"},
	project.ErrProjectLimit:   {http.StatusForbidden, "PROJECT_LIMIT_REACHED"},
	project.ErrStorageLimit:   {http.StatusForbidden, "STORAGE_LIMIT_REACHED"},
	project.ErrFileLimit:      {http.StatusForbidden, "FILE_LIMIT_REACHED"},
	project.ErrAlreadyClaimed: {http.StatusConflict, "ALREADY_CLAIMED"},
	project.ErrExists:         {http.StatusConflict, "CONFLICT"},
	slug.ErrTaken:             {http.StatusConflict, "SLUG_TAKEN"},

	// Workspaces and custom domains (DESIGN §12; the DOMAIN_* codes are ours).
	workspace.ErrNotFound:              {http.StatusNotFound, "NOT_FOUND"},
	customdomain.ErrNotFound:           {http.StatusNotFound, "NOT_FOUND"},
	customdomain.ErrTaken:              {http.StatusConflict, "DOMAIN_TAKEN"},
	customdomain.ErrInUse:              {http.StatusConflict, "DOMAIN_IN_USE"},
	customdomain.ErrNotActive:          {http.StatusUnprocessableEntity, "DOMAIN_NOT_ACTIVE"},
	customdomain.ErrVerificationFailed: {http.StatusUnprocessableEntity, "DOMAIN_VERIFICATION_FAILED"},

	// Sessions: a refresh token that is unknown, expired, or reused (the session is then revoked).
	account.ErrRefreshInvalid:  {http.StatusUnauthorized, "REFRESH_TOKEN_INVALID"},
	account.ErrRefreshExpired:  {http.StatusUnauthorized, "REFRESH_TOKEN_EXPIRED"},
	account.ErrRefreshReused:   {http.StatusUnauthorized, "REFRESH_TOKEN_REUSED"},
	account.ErrNotRegistered:   {http.StatusNotFound, "NOT_FOUND"},
	account.ErrSessionNotFound: {http.StatusNotFound, "NOT_FOUND"},
	account.ErrSessionRetired:  {http.StatusConflict, "CONFLICT"},

	// OTP: the handler answers most of these itself with their retry details (commands/otp.go);
	// these entries are the status each rule has wherever else it surfaces.
	otp.ErrEmailInvalid:        {http.StatusBadRequest, "INVALID_REQUEST"},
	otp.ErrPhoneInvalid:        {http.StatusBadRequest, "INVALID_REQUEST"},
	otp.ErrPurposeNotKnown:     {http.StatusBadRequest, "INVALID_REQUEST"},
	otp.ErrChannelNotKnown:     {http.StatusBadRequest, "INVALID_REQUEST"},
	otp.ErrAddressMissing:      {http.StatusBadRequest, "INVALID_REQUEST"},
	otp.ErrTooManyRequests:     {http.StatusTooManyRequests, "RATE_LIMITED"},
	otp.ErrCooldown:            {http.StatusTooManyRequests, "RATE_LIMITED"},
	otp.ErrLocked:              {http.StatusTooManyRequests, "OTP_LOCKED"},
	otp.ErrGuarded:             {http.StatusTooManyRequests, "OTP_LOCKED"},
	otp.ErrExpired:             {http.StatusUnauthorized, "OTP_EXPIRED"},
	otp.ErrInvalidCode:         {http.StatusUnauthorized, "OTP_INVALID"},
	otp.ErrTooManyAttempts:     {http.StatusTooManyRequests, "OTP_TOO_MANY_ATTEMPTS"},
	commands.ErrSignupDisabled: {http.StatusForbidden, "SIGNUP_DISABLED"},
	// Programming errors of the OTP handler (it always supplies these): a 500 if they ever surface.
	otp.ErrClientMissing:    {http.StatusInternalServerError, "SERVER_ERROR"},
	otp.ErrCheckNotProvided: {http.StatusInternalServerError, "SERVER_ERROR"},
}

// classify picks the status and code for err. Anything unrecognised is a server error whose
// detail goes to the log only.
func classify(err error) apiError {
	var (
		rule    domain.Error
		invalid domain.Invalid
		query   readapi.InvalidQuery
		httpErr *commands.HTTPError
		authErr readapi.AuthError
		locked  readapi.ErrFeatureLocked
	)
	switch {
	case errors.As(err, &httpErr):
		return apiError{httpErr.Status, httpErr.Code}
	case errors.As(err, &authErr):
		return apiError{http.StatusUnauthorized, authErr.Code}
	case errors.Is(err, commands.ErrIdempotencyKeyReused):
		return apiError{http.StatusUnprocessableEntity, "IDEMPOTENCY_KEY_REUSED"}
	case errors.Is(err, commands.ErrNotFound), errors.Is(err, readapi.ErrNotFound):
		return apiError{http.StatusNotFound, "NOT_FOUND"}
	case errors.Is(err, readapi.ErrFreeTier):
		return apiError{http.StatusForbidden, "FREE_TIER_RESTRICTED"}
	case errors.As(err, &locked):
		return apiError{http.StatusForbidden, "FEATURE_LOCKED"}
	case errors.Is(err, commands.ErrConflict), errors.Is(err, events.ErrWrongExpectedVersion):
		return apiError{http.StatusConflict, "CONFLICT"}
	case errors.As(err, &invalid), errors.As(err, &query):
		return apiError{http.StatusUnprocessableEntity, "VALIDATION_FAILED"}
	case errors.As(err, &rule):
		if e, ok := ruleStatus[rule]; ok {
			return e
		}
	}
	return apiError{http.StatusInternalServerError, "SERVER_ERROR"}
}

// errorBody builds the error envelope of spec §1.4 for err.
func errorBody(err error, e apiError) gin.H {
	body := gin.H{"status": "error", "code": e.code, "error": err.Error()}
	var (
		httpErr *commands.HTTPError
		invalid domain.Invalid
		query   readapi.InvalidQuery
	)
	switch {
	case e.status >= 500:
		body["error"] = "Something went wrong on our side. It is safe to retry."
	case errors.As(err, &httpErr):
		body["error"] = httpErr.Message
		for k, v := range httpErr.Details {
			body[k] = v
		}
		if httpErr.RetryAfter > 0 {
			body["retryAfterSeconds"] = commands.RetrySeconds(httpErr.RetryAfter)
		}
	case errors.As(err, &invalid):
		body["error"] = "The request has invalid fields."
		body["fields"] = map[string]string(invalid)
	case errors.As(err, &query):
		body["error"] = "The query has invalid parameters."
		body["fields"] = map[string]string(query)
	case e.code == "NOT_FOUND":
		body["error"] = "Not found."
	}
	if e.code == "FREE_TIER_RESTRICTED" {
		// spec §5.8: one message for every paid gate, naming the lowest paid tier.
		body["error"] = "This endpoint is not available on the free plan. Upgrade to a paid plan (starter or higher) to use it."
		body["requiredTier"] = "starter"
	}
	if e.code == "FEATURE_LOCKED" {
		// spec [S4] link opens and QR codes: paid features; the message names the feature.
		body["requiredTier"] = "starter"
	}
	if next, ok := nextSteps[e.code]; ok {
		body["nextStep"] = next
	}
	return body
}

// nextSteps tells a client (often an agent) what to do after an error.
var nextSteps = map[string]string{
	"API_KEY_MISSING":           "Send Authorization: Bearer <apiKey>. Get a key with POST /v1/auth/otp/request, then /v1/auth/otp/verify.",
	"API_KEY_INVALID":           "Sign in again with POST /v1/auth/otp/request to get a new key.",
	"API_KEY_EXPIRED":           "Refresh with POST /v1/auth/refresh, or sign in again with POST /v1/auth/otp/request.",
	"FREE_TIER_RESTRICTED":      "Upgrade to a paid plan (starter or higher) to use this endpoint.",
	"FEATURE_LOCKED":            "The project's owner needs a paid plan (starter or higher) for this feature.",
	"RATE_LIMITED":              "Wait retryAfterSeconds before trying again.",
	"OTP_EXPIRED":               "Request a new code with POST /v1/auth/otp/request.",
	"OTP_INVALID":               "Check the 6-digit code in the message and try again; attemptsLeft says how many tries remain.",
	"OTP_LOCKED":                "Too many wrong codes for this identifier from your network: wait retryAfterSeconds, then try again.",
	"PHONE_COUNTRY_NOT_ALLOWED": "Sign in with an e-mail address, or a phone number of a country this server sends codes to.",
	"CHANNEL_DISABLED":          "Use an identifier of an enabled channel (e-mail or phone, as GET /v1 and the error say).",
	"INVALID_REQUEST":           "Send JSON with exactly one of email or phone (E.164), and a 6-digit code for verify.",
	"IDEMPOTENCY_KEY_REUSED":    "Use a new Idempotency-Key for a different request.",
	"ADMIN_TOKEN_MISSING":       "Send Authorization: Bearer <LITEHOST_ADMIN_TOKEN> (the operator token, not an API key).",
	"ADMIN_TOKEN_INVALID":       "Use the operator token configured as LITEHOST_ADMIN_TOKEN on the server.",
	"OTP_TOO_MANY_ATTEMPTS":     "You have no tries left on this code: wait retryAfterSeconds, then request a new one with POST /v1/auth/otp/request.",
	"VALIDATION_FAILED":         "Fix the fields listed in fields and send the request again.",
	"SERVER_ERROR":              "Retry the request; if it keeps failing, try again later.",
	// The revocation is stored but not yet binding everywhere: the old key may still work.
	"REVOCATION_UNCONFIRMED": "Retry the same request with the same Idempotency-Key after Retry-After seconds; the retry completes the revocation.",
}

// renderErrors answers the first error a handler recorded with c.Error, unless something was
// written already. 5xx are logged at Error with the detail; 4xx at Info.
func renderErrors(logger *slog.Logger) func(c *gin.Context) {
	return func(c *gin.Context) {
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		err := c.Errors[0].Err
		e := classify(err)
		md := events.MetadataFrom(c.Request.Context())
		if e.status >= 500 {
			logger.Error("request failed", "error", err, "method", c.Request.Method, "path", c.FullPath(), "request_id", md.RequestID)
		} else {
			logger.Debug("request rejected", "code", e.code, "status", e.status, "path", c.FullPath(), "request_id", md.RequestID)
		}
		var httpErr *commands.HTTPError
		if errors.As(err, &httpErr) {
			for k, v := range httpErr.Headers() {
				c.Writer.Header()[k] = v
			}
		}
		if e.status == http.StatusUnauthorized {
			c.Header("WWW-Authenticate", `Bearer realm="litehost"`)
		}
		c.AbortWithStatusJSON(e.status, errorBody(err, e))
	}
}

// errorMiddleware renders handler errors once the chain has run.
func errorMiddleware(logger *slog.Logger) gin.HandlerFunc {
	render := renderErrors(logger)
	return func(c *gin.Context) {
		c.Next()
		render(c)
	}
}

// recovery turns a panic into the generic 500 envelope and logs it.
func recovery(logger *slog.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, v any) {
		logger.Error("panic in handler", "panic", v, "path", c.FullPath())
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"status": "error", "code": "SERVER_ERROR",
			"error": "Something went wrong on our side. It is safe to retry."})
	})
}

// notFound and methodNotAllowed keep unknown routes inside the error envelope.
func notFound(c *gin.Context) {
	c.JSON(http.StatusNotFound, gin.H{"status": "error", "code": "NOT_FOUND",
		"error": "No such endpoint: " + c.Request.Method + " " + c.Request.URL.Path + ". See GET /v1 for the API."})
}

func methodNotAllowed(c *gin.Context) {
	c.JSON(http.StatusMethodNotAllowed, gin.H{"status": "error", "code": "METHOD_NOT_ALLOWED",
		"error": "Method " + c.Request.Method + " is not allowed on " + c.Request.URL.Path + "."})
}
