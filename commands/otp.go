package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
)

// SignInner signs a person in once their code is verified: it finds or creates the account of the
// identifier and issues an API key and refresh token. The accounts side implements it; commandID
// makes a retried sign-in recognisable. It returns ErrSignupDisabled for an identifier without an
// account when autoCreate is false.
type SignInner interface {
	SignIn(ctx context.Context, commandID uuid.UUID, id Identifier, autoCreate bool) (SignInResult, error)
}

// RateTaker is the part of Limiter the OTP request uses.
type RateTaker interface {
	Take(ctx context.Context, bucket string, limit int, window time.Duration, now time.Time) (Decision, error)
}

// OTPConfig is the configuration of OTP sign-in. The zero value allows e-mail only, does not
// auto-create accounts, and limits each client IP to 10 requests per hour.
type OTPConfig struct {
	// Channels are the enabled delivery channels: "email", "phone" or both; empty means e-mail.
	Channels []string
	// AutoCreate creates an account on the first verified code of an unknown identifier.
	AutoCreate bool
	// IPLimit requests per IPWindow per client IP (defaults 10 per hour).
	IPLimit  int
	IPWindow time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// OTP handles POST /v1/auth/otp/request and /v1/auth/otp/verify.
type OTP struct {
	exec    *Executor
	keys    *secret.Keyring
	limiter RateTaker
	signIn  SignInner
	waiter  Waiter
	cfg     OTPConfig
	logger  *slog.Logger
}

// NewOTP returns the OTP handlers. waiter may be nil (no read-your-writes wait).
func NewOTP(store EventStore, keys *secret.Keyring, limiter RateTaker, signIn SignInner, waiter Waiter, cfg OTPConfig, logger *slog.Logger) *OTP {
	if len(cfg.Channels) == 0 {
		cfg.Channels = []string{otp.ChannelEmail}
	}
	if cfg.IPLimit <= 0 {
		cfg.IPLimit = 10
	}
	if cfg.IPWindow <= 0 {
		cfg.IPWindow = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &OTP{exec: NewExecutor(store), keys: keys, limiter: limiter, signIn: signIn, waiter: waiter, cfg: cfg, logger: logger}
}

// Register adds the OTP routes to r (absolute paths: /v1/auth/otp/request and /v1/auth/otp/verify).
func (h *OTP) Register(r gin.IRoutes) {
	r.POST("/v1/auth/otp/request", h.handleRequest)
	r.POST("/v1/auth/otp/verify", h.handleVerify)
}

// RequestOTP asks for a code to be sent to one identifier.
type RequestOTP struct {
	Identifier Identifier // normalised
	Purpose    string     // otp.PurposeSignIn or otp.PurposeSignUp
	Resend     bool
	ClientIP   string
}

// OTPRequested is the answer to a request. It is the same for every identifier whatever accounts
// exist: only the identifier's own code history shapes it.
type OTPRequested struct {
	Sent                     bool      `json:"sent"`
	CodeAlreadySent          bool      `json:"codeAlreadySent,omitempty"`
	ExpiresAt                time.Time `json:"-"`
	ExpiresAtText            string    `json:"expiresAt"`
	ResendAvailableInSeconds int       `json:"resendAvailableInSeconds"`
	// IPLimit is the client IP's rate-limit state, for the X-RateLimit-* headers.
	IPLimit Decision `json:"-"`
}

// Request issues (or re-sends) a code. It never looks at accounts: the same work for every
// identifier, so neither the answer nor its timing tells whether an account exists. The mailer
// delivers the code later, from the event.
func (h *OTP) Request(ctx context.Context, cmd RequestOTP) (OTPRequested, error) {
	now := h.cfg.Now().UTC()
	ipDecision, err := h.limiter.Take(ctx, "otp-request-ip:"+cmd.ClientIP, h.cfg.IPLimit, h.cfg.IPWindow, now)
	if err != nil {
		return OTPRequested{}, err
	}
	if err := ipDecision.Err("Too many code requests from this address. Try again later."); err != nil {
		return OTPRequested{}, err
	}
	stream := OTPStream(h.keys, cmd.Identifier.Value)
	nonce := secret.RandomHex(16)
	in := otp.RequestInput{
		Channel: cmd.Identifier.Kind, Address: cmd.Identifier.Value, Purpose: cmd.Purpose, Resend: cmd.Resend,
		Nonce: nonce, CodeHash: otpCodeHash(h.keys, cmd.Identifier.Value, OTPCode(h.keys, nonce)),
	}
	var state otp.State
	res, err := h.exec.Execute(ctx, CommandIDFrom(ctx), stream, func(s Stream) ([]events.Event, error) {
		state = otp.Replay(s.Events)
		return otp.Request(state, in, now)
	})
	if err != nil {
		return OTPRequested{}, otpError(err)
	}
	out := OTPRequested{Sent: true, IPLimit: ipDecision}
	var sent *events.OTPRequested
	for _, e := range res.Events {
		if r, ok := e.(events.OTPRequested); ok {
			sent = &r
		}
	}
	if sent == nil { // a code is open and nothing new was sent
		out.CodeAlreadySent = true
		out.ExpiresAt = state.Code.ExpiresAt
		if wait := state.LastSentAt.Add(otp.Cooldown).Sub(now); wait > 0 {
			out.ResendAvailableInSeconds = RetrySeconds(wait)
		}
	} else {
		out.ExpiresAt = sent.ExpiresAt
		out.ResendAvailableInSeconds = int(otp.Cooldown / time.Second)
	}
	out.ExpiresAtText = FormatTime(out.ExpiresAt)
	return out, nil
}

// VerifyOTP presents a code for an identifier.
type VerifyOTP struct {
	Identifier Identifier // normalised
	Code       string     // six digits
}

// Verify checks the code, consumes it, and signs the person in. A wrong code is recorded (so the
// attempt cap holds across instances) before the error is returned.
func (h *OTP) Verify(ctx context.Context, cmd VerifyOTP) (SignInResult, error) {
	now := h.cfg.Now().UTC()
	commandID := CommandIDFrom(ctx)
	stream := OTPStream(h.keys, cmd.Identifier.Value)
	var after otp.State
	res, err := h.exec.Execute(ctx, commandID, stream, func(s Stream) ([]events.Event, error) {
		state := otp.Replay(s.Events)
		evs, err := otp.Verify(state, func(codeHash string) bool {
			return otpCodeMatches(h.keys, cmd.Identifier.Value, cmd.Code, codeHash)
		}, now)
		after = state
		for _, e := range evs {
			after = otp.Evolve(after, e)
		}
		return evs, err
	})
	if err != nil {
		return SignInResult{}, otpError(err)
	}
	verified, left, err := otp.Outcome(res.Events)
	switch {
	case errors.Is(err, otp.ErrInvalidCode):
		return SignInResult{}, &HTTPError{Status: http.StatusUnauthorized, Code: "OTP_INVALID",
			Message: "The code is not correct.", Details: map[string]any{"attemptsLeft": left}}
	case errors.Is(err, otp.ErrTooManyAttempts):
		// Tell the client when a new code can be requested: the request limits decide that.
		wait := time.Second
		var le *otp.LimitError
		if _, rerr := otp.Request(after, otp.RequestInput{Channel: after.Code.Channel, Address: "-", Purpose: otp.PurposeSignIn, Nonce: "-", CodeHash: "-"}, now); errors.As(rerr, &le) {
			wait = le.RetryAfter
		}
		return SignInResult{}, RateLimited("OTP_TOO_MANY_ATTEMPTS", "Too many wrong codes: the code was cancelled. Request a new one.", wait, otp.MaxAttempts, now.Add(wait))
	case err != nil:
		return SignInResult{}, otpError(err)
	}
	out, err := h.signIn.SignIn(ctx, commandID, Identifier{Kind: verified.Channel, Value: verified.Address}, h.cfg.AutoCreate)
	if err != nil {
		return SignInResult{}, fmt.Errorf("sign in after verified code: %w", err)
	}
	if out.Position.Compare(res.Position) < 0 {
		out.Position = res.Position
	}
	return out, nil
}

// otpError turns the OTP rules into their HTTP answers.
func otpError(err error) error {
	var le *otp.LimitError
	switch {
	case errors.As(err, &le) && errors.Is(err, otp.ErrLocked):
		return RateLimited("OTP_LOCKED", "Too many cancelled codes: this identifier is locked for a while.", le.RetryAfter, le.Limit, le.Reset)
	case errors.As(err, &le):
		return RateLimited("RATE_LIMITED", "Too many code requests for this identifier. Try again later.", le.RetryAfter, le.Limit, le.Reset)
	case errors.Is(err, otp.ErrExpired):
		return &HTTPError{Status: http.StatusUnauthorized, Code: "OTP_EXPIRED", Message: "No open code: it expired, was already used, or was never requested."}
	}
	return err
}

// FormatTime renders an API timestamp: UTC with milliseconds (DESIGN §12).
func FormatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// maxOTPBody bounds the JSON body of the OTP endpoints; real bodies are under 200 bytes.
const maxOTPBody = 16 << 10

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// otpBody is the JSON of both OTP endpoints. Pointers tell a missing field from an empty one.
type otpBody struct {
	Email   *string `json:"email"`
	Phone   *string `json:"phone"`
	Purpose *string `json:"purpose"`
	Resend  *bool   `json:"resend"`
	Code    *string `json:"code"`
}

func invalidRequest(msg string) *HTTPError { return BadRequest("INVALID_REQUEST", msg) }

// parseOTPBody reads the body and the one identifier in it, checking it is an enabled channel.
func (h *OTP) parseOTPBody(c *gin.Context) (otpBody, Identifier, string, error) {
	var b otpBody
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxOTPBody))
	if err := dec.Decode(&b); err != nil {
		return b, Identifier{}, "", invalidRequest("The body must be a JSON object with email or phone.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return b, Identifier{}, "", invalidRequest("The body must be a single JSON object.")
	}
	var id Identifier
	switch {
	case b.Email != nil && b.Phone != nil:
		return b, id, "", invalidRequest("Send either email or phone, not both.")
	case b.Email != nil:
		v, err := otp.NormalizeEmail(*b.Email)
		if err != nil {
			return b, id, "", invalidRequest("email must be a valid address.")
		}
		id = Identifier{Kind: IdentifierEmail, Value: v}
	case b.Phone != nil:
		v, err := otp.NormalizePhone(*b.Phone)
		if err != nil {
			return b, id, "", invalidRequest("phone must be in E.164 form, e.g. +14155550123.")
		}
		id = Identifier{Kind: IdentifierPhone, Value: v}
	default:
		return b, id, "", invalidRequest("email (or phone) is required.")
	}
	purpose := otp.PurposeSignIn
	if b.Purpose != nil {
		if *b.Purpose != otp.PurposeSignIn && *b.Purpose != otp.PurposeSignUp {
			return b, id, "", invalidRequest("purpose must be signin or signup.")
		}
		purpose = *b.Purpose
	}
	if !slices.Contains(h.cfg.Channels, id.Kind) {
		return b, id, "", BadRequest("CHANNEL_DISABLED", "Sign-in by "+id.Kind+" is not enabled on this server.")
	}
	return b, id, purpose, nil
}

// otpRequestBody is the 200 body of the request endpoint; a struct keeps the bytes identical for
// every identifier.
type otpRequestBody struct {
	Status  string       `json:"status"`
	Message string       `json:"message"`
	Data    OTPRequested `json:"data"`
}

func (h *OTP) handleRequest(c *gin.Context) {
	b, id, purpose, err := h.parseOTPBody(c)
	if err == nil && b.Code != nil {
		err = invalidRequest("code belongs to /v1/auth/otp/verify.")
	}
	if err != nil {
		_ = c.Error(err)
		return
	}
	ip := events.MetadataFrom(c.Request.Context()).ClientIP
	if ip == "" {
		ip = c.ClientIP()
	}
	res, err := h.Request(c.Request.Context(), RequestOTP{Identifier: id, Purpose: purpose, Resend: b.Resend != nil && *b.Resend, ClientIP: ip})
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.Header("X-RateLimit-Limit", strconv.Itoa(res.IPLimit.Limit))
	c.Header("X-RateLimit-Remaining", strconv.Itoa(res.IPLimit.Remaining))
	c.Header("X-RateLimit-Reset", strconv.FormatInt(res.IPLimit.Reset.Unix(), 10))
	where := "email"
	if id.Kind == IdentifierPhone {
		where = "phone"
	}
	c.JSON(http.StatusOK, otpRequestBody{Status: "success", Message: "Verification code sent. Check your " + where + ".", Data: res})
}

// OTPVerified is the data of a successful verify.
type OTPVerified struct {
	Email            string `json:"email,omitempty"`
	Phone            string `json:"phone,omitempty"`
	APIKey           string `json:"apiKey"`
	ExpiresAt        string `json:"expiresAt"`
	RefreshToken     string `json:"refreshToken"`
	RefreshExpiresAt string `json:"refreshExpiresAt"`
	AccountCreated   bool   `json:"accountCreated"`
	Message          string `json:"message"`
}

func (h *OTP) handleVerify(c *gin.Context) {
	b, id, _, err := h.parseOTPBody(c)
	if err == nil && b.Resend != nil {
		err = invalidRequest("resend belongs to /v1/auth/otp/request.")
	}
	if err == nil && (b.Code == nil || !sixDigits.MatchString(*b.Code)) {
		err = invalidRequest("code must be exactly 6 digits.")
	}
	if err != nil {
		_ = c.Error(err)
		return
	}
	res, err := h.Verify(c.Request.Context(), VerifyOTP{Identifier: id, Code: *b.Code})
	if err != nil {
		_ = c.Error(err)
		return
	}
	Reply(c, h.waiter, res.Position, http.StatusOK, OTPVerified{
		Email: res.Email, Phone: res.Phone, APIKey: res.APIKey, ExpiresAt: FormatTime(res.ExpiresAt),
		RefreshToken: res.RefreshToken, RefreshExpiresAt: FormatTime(res.RefreshExpiresAt), AccountCreated: res.AccountCreated,
		Message: "Account ready. This API key expires in 7 days. Use it as your Bearer token — it is shown only once.",
	})
}
