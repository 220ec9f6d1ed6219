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
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/internal/clientip"
)

// SignInner signs a person in once their code is verified: it finds or creates the account of the
// identifier and issues an API key and refresh token. The accounts side implements it; commandID
// makes a retried sign-in recognisable. It returns ErrSignupDisabled for an identifier without an
// account when autoCreate is false.
type SignInner interface {
	SignIn(ctx context.Context, commandID uuid.UUID, id Identifier, autoCreate bool) (SignInResult, error)
}

// RateTaker is the part of Limiter the OTP endpoints use: Take counts, Refund uncounts a
// verify that turned out right (the verify limit counts failures only).
type RateTaker interface {
	Take(ctx context.Context, bucket string, limit int, window time.Duration, now time.Time) (Decision, error)
	Refund(ctx context.Context, bucket string, d Decision, window time.Duration) error
}

// OTPConfig is the configuration of OTP sign-in. The zero value allows e-mail only, does not
// auto-create accounts, limits each client to 10 requests and 20 failed verifies per hour, and
// sends SMS to no country.
type OTPConfig struct {
	// Channels are the enabled delivery channels: "email", "phone" or both; empty means e-mail.
	Channels []string
	// SMSCountries are the country calling codes ("1", "44", "49") whose numbers may get codes by
	// SMS. Empty means none: SMS to every prefix is how toll fraud makes money.
	SMSCountries []string
	// AutoCreate creates an account on the first verified code of an unknown identifier.
	AutoCreate bool
	// IPLimit requests per IPWindow per client (defaults 10 per hour).
	IPLimit  int
	IPWindow time.Duration
	// VerifyLimit failed verifies per VerifyWindow per client (defaults 20 per hour).
	VerifyLimit  int
	VerifyWindow time.Duration
	// KeyIdleTTL is how long an issued key lives without use (it renews in use), for the verify
	// answer's message; zero means account.DefaultKeyIdleTTL.
	KeyIdleTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// OTP handles POST /v1/auth/otp/request and /v1/auth/otp/verify.
type OTP struct {
	store   EventStore
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
	if cfg.VerifyLimit <= 0 {
		cfg.VerifyLimit = 20
	}
	if cfg.VerifyWindow <= 0 {
		cfg.VerifyWindow = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &OTP{store: store, exec: NewExecutor(store), keys: keys, limiter: limiter, signIn: signIn, waiter: waiter, cfg: cfg, logger: logger}
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
	// IPLimit is the client's rate-limit state, for the X-RateLimit-* headers.
	IPLimit Decision `json:"-"`
}

// Request issues (or re-sends) a code. It never looks at accounts: the same work for every
// identifier, so neither the answer nor its timing tells whether an account exists. The mailer
// delivers the code later, from the event.
func (h *OTP) Request(ctx context.Context, cmd RequestOTP) (OTPRequested, error) {
	now := h.cfg.Now().UTC()
	group := clientip.Group(cmd.ClientIP)
	ipDecision, err := h.limiter.Take(ctx, "otp-request-ip:"+group, h.cfg.IPLimit, h.cfg.IPWindow, now)
	if err != nil {
		return OTPRequested{}, err
	}
	if err := ipDecision.Err("Too many code requests from this address. Try again later."); err != nil {
		return OTPRequested{}, err
	}
	if cmd.Identifier.Kind == IdentifierPhone && !h.smsAllowed(cmd.Identifier.Value) {
		return OTPRequested{}, phoneCountryRefused()
	}
	stream := OTPStream(h.keys, cmd.Identifier.Value)
	in := otp.RequestInput{
		Channel: cmd.Identifier.Kind, Address: cmd.Identifier.Value, Purpose: cmd.Purpose, Resend: cmd.Resend,
		Client: otpClient(h.keys, group),
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
	var sentExpiry time.Time
	for _, e := range res.Events {
		switch r := e.(type) {
		case events.OTPRequestedV2:
			sentExpiry = r.ExpiresAt
		case events.OTPRequested: // a replayed request from before otp.requested.v2
			sentExpiry = r.ExpiresAt
		}
	}
	if sentExpiry.IsZero() { // a code is open and nothing new was sent
		out.CodeAlreadySent = true
		out.ExpiresAt = state.Code.ExpiresAt
		if wait := state.LastSentAt.Add(otp.Cooldown).Sub(now); wait > 0 {
			out.ResendAvailableInSeconds = RetrySeconds(wait)
		}
	} else {
		out.ExpiresAt = sentExpiry
		out.ResendAvailableInSeconds = int(otp.Cooldown / time.Second)
	}
	out.ExpiresAtText = FormatTime(out.ExpiresAt)
	return out, nil
}

// smsAllowed reports whether an E.164 number starts with an allowed country calling code. Country
// codes are prefix-free (ITU-T E.164), so a prefix match finds the number's one country code.
func (h *OTP) smsAllowed(e164 string) bool {
	for _, cc := range h.cfg.SMSCountries {
		if strings.HasPrefix(e164, "+"+cc) {
			return true
		}
	}
	return false
}

func phoneCountryRefused() *HTTPError {
	return &HTTPError{Status: http.StatusUnprocessableEntity, Code: "PHONE_COUNTRY_NOT_ALLOWED",
		Message: "This server does not send codes to phone numbers of this country."}
}

// VerifyOTP presents a code for an identifier.
type VerifyOTP struct {
	Identifier Identifier // normalised
	Code       string     // six digits
	ClientIP   string
}

// Verify checks the code, consumes it, and signs the person in. Wrong codes are limited per client
// (counted in PostgreSQL, so across instances) before any work, and recorded in the stream (so the
// per-code and per-identifier rules hold across instances) before the error is returned.
func (h *OTP) Verify(ctx context.Context, cmd VerifyOTP) (SignInResult, error) {
	now := h.cfg.Now().UTC()
	group := clientip.Group(cmd.ClientIP)
	// Every verify is counted first and a right one refunded: counting only after a failure
	// would let concurrent guesses all pass the check before any of them is counted.
	bucket := "otp-verify-fail:" + group
	d, err := h.limiter.Take(ctx, bucket, h.cfg.VerifyLimit, h.cfg.VerifyWindow, now)
	if err != nil {
		return SignInResult{}, err
	}
	if err := d.Err("Too many wrong codes from this address. Try again later."); err != nil {
		return SignInResult{}, err
	}
	res, err := h.verify(ctx, cmd, otpClient(h.keys, group), now)
	if err == nil {
		if rerr := h.limiter.Refund(ctx, bucket, d, h.cfg.VerifyWindow); rerr != nil {
			h.logger.Warn("refund a right code's verify", "error", rerr) // the client just loses one try
		}
	}
	return res, err
}

func (h *OTP) verify(ctx context.Context, cmd VerifyOTP, client string, now time.Time) (SignInResult, error) {
	commandID := CommandIDFrom(ctx)
	stream := OTPStream(h.keys, cmd.Identifier.Value)
	check := otpCodeCheck(h.keys, cmd.Identifier.Value, cmd.Code)
	var before otp.State
	res, err := h.exec.Execute(ctx, commandID, stream, func(s Stream) ([]events.Event, error) {
		before = otp.Replay(s.Events)
		return otp.Verify(before, client, check, now)
	})
	if err != nil {
		return SignInResult{}, otpError(verifyRefusal(err, before, now))
	}
	if res.Replayed {
		// The command ID says "same request" but only the caller and the key made it: the body
		// may differ. A replayed success is a sign-in, so it needs the consumed code again,
		// inside that code's lifetime; a replayed failure just tells the same failure again.
		if err := h.recheck(ctx, commandID, stream, check, now); err != nil {
			return SignInResult{}, err
		}
	}
	verified, left, err := otp.Outcome(res.Events)
	switch {
	case errors.Is(err, otp.ErrInvalidCode):
		return SignInResult{}, &HTTPError{Status: http.StatusUnauthorized, Code: "OTP_INVALID",
			Message: "The code is not correct.", Details: map[string]any{"attemptsLeft": left}}
	case errors.Is(err, otp.ErrTooManyAttempts):
		return SignInResult{}, tooManyAttempts(before, now)
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

// recheck finds the code the replayed verify consumed and checks the presented code against it.
func (h *OTP) recheck(ctx context.Context, commandID uuid.UUID, stream string, check otp.CodeCheck, now time.Time) error {
	s, err := Load(ctx, h.store, stream)
	if err != nil {
		return err
	}
	first := EventID(commandID, stream, 0)
	for i, r := range s.Records {
		if r.ID != first {
			continue
		}
		code, ok := otp.Consumed(s.Events, i)
		switch {
		case !ok: // the replayed command was a failure: nothing to re-check
			return nil
		case !now.Before(code.ExpiresAt):
			return otpError(otp.ErrExpired)
		case !check(code):
			return &HTTPError{Status: http.StatusUnauthorized, Code: "OTP_INVALID",
				Message: "The code is not correct.", Details: map[string]any{"attemptsLeft": 0}}
		}
		return nil
	}
	return fmt.Errorf("replayed verify: first event %s not in %s", first, stream)
}

// verifyRefusal turns ErrTooManyAttempts (the client has no tries left on the open code) into
// its answer with the time until the code expires, after which the client can ask for a new one.
func verifyRefusal(err error, before otp.State, now time.Time) error {
	if errors.Is(err, otp.ErrTooManyAttempts) {
		return tooManyAttempts(before, now)
	}
	return err
}

func tooManyAttempts(before otp.State, now time.Time) error {
	wait := max(before.Code.ExpiresAt.Sub(now), time.Second)
	return RateLimited("OTP_TOO_MANY_ATTEMPTS", "Too many wrong codes from this address for this code. Wait until it expires, then request a new one.",
		wait, otp.MaxAttempts, now.Add(wait))
}

// otpError turns the OTP rules into their HTTP answers.
func otpError(err error) error {
	var le *otp.LimitError
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		return err
	case errors.As(err, &le) && errors.Is(err, otp.ErrGuarded):
		return RateLimited("OTP_LOCKED", "Too many wrong codes for this identifier from this address. Try again later.", le.RetryAfter, le.Limit, le.Reset)
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
	res, err := h.Request(c.Request.Context(), RequestOTP{Identifier: id, Purpose: purpose, Resend: b.Resend != nil && *b.Resend, ClientIP: otpClientIP(c)})
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

// otpClientIP is the client address the composition root resolved through trusted proxies (the
// event metadata), or gin's view of it.
func otpClientIP(c *gin.Context) string {
	if ip := events.MetadataFrom(c.Request.Context()).ClientIP; ip != "" {
		return ip
	}
	return c.ClientIP()
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
	res, err := h.Verify(c.Request.Context(), VerifyOTP{Identifier: id, Code: *b.Code, ClientIP: otpClientIP(c)})
	if err != nil {
		_ = c.Error(err)
		return
	}
	Reply(c, h.waiter, res.Position, http.StatusOK, OTPVerified{
		Email: res.Email, Phone: res.Phone, APIKey: res.APIKey, ExpiresAt: FormatTime(res.ExpiresAt),
		RefreshToken: res.RefreshToken, RefreshExpiresAt: FormatTime(res.RefreshExpiresAt), AccountCreated: res.AccountCreated,
		Message: "Account ready. This API key renews each time it is used and expires after " + idleText(h.cfg.KeyIdleTTL) +
			" without use. Use it as your Bearer token — it is shown only once.",
	})
}

// idleText says a key's idle window in words: "90 days", "36 hours".
func idleText(d time.Duration) string {
	if d <= 0 {
		d = account.DefaultKeyIdleTTL
	}
	switch {
	case d%(24*time.Hour) == 0:
		if n := d / (24 * time.Hour); n != 1 {
			return strconv.Itoa(int(n)) + " days"
		}
		return "1 day"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	return d.String()
}
