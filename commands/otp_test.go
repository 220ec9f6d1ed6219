package commands_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/secret"
)

// otpServer is one API instance: its own pool, event store, limiter and OTP handlers on a shared
// database.
type otpServer struct {
	store  *pgstore.Store
	h      *commands.OTP
	engine *gin.Engine
}

type otpFixture struct {
	keys  *secret.Keyring
	clock *clock
	pools []*pgxpool.Pool
}

var otpT0 = time.Date(2026, 4, 9, 14, 23, 0, 0, time.UTC)

func newOTPFixture(t *testing.T, instances int) *otpFixture {
	t.Helper()
	pools := migratedPools(t, instances)
	store := pgstore.New(pools[0], slog.New(slog.DiscardHandler))
	pgtest.Must(t, store.Migrate(t.Context()), "migrate event store")
	keys, err := secret.New([]byte("0123456789abcdef0123456789abcdef"))
	pgtest.Must(t, err, "keyring")
	return &otpFixture{keys: keys, clock: &clock{t: otpT0}, pools: pools}
}

// server builds API instance i with cfg (Now is the fixture clock).
func (f *otpFixture) server(i int, cfg commands.OTPConfig) *otpServer {
	cfg.Now = f.clock.now
	store := pgstore.New(f.pools[i], slog.New(slog.DiscardHandler))
	acc := commands.NewAccounts(store, f.keys, commands.NewPGRevocations(f.pools[i]), f.clock.now)
	h := commands.NewOTP(store, f.keys, commands.NewLimiter(f.pools[i]), acc, nil, cfg, slog.New(slog.DiscardHandler))
	gin.SetMode(gin.TestMode)
	e := gin.New()
	e.Use(func(c *gin.Context) { // the composition root sets metadata; tests pick the client IP
		ip := c.GetHeader("X-Test-IP")
		if ip == "" {
			ip = "203.0.113.1"
		}
		c.Request = c.Request.WithContext(events.WithMetadata(c.Request.Context(), events.Metadata{ClientIP: ip}))
	}, errorStandIn)
	h.Register(e)
	return &otpServer{store: store, h: h, engine: e}
}

// errorStandIn is a small stand-in for cmd/litehost's error middleware: enough of the envelope
// for these tests (HTTPError with details and rate-limit headers, one domain rule, else 500).
func errorStandIn(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	err := c.Errors[0].Err
	var he *commands.HTTPError
	switch {
	case errors.As(err, &he):
		body := gin.H{"status": "error", "code": he.Code, "error": he.Message}
		for k, v := range he.Details {
			body[k] = v
		}
		if he.RetryAfter > 0 {
			body["retryAfterSeconds"] = commands.RetrySeconds(he.RetryAfter)
		}
		for k, v := range he.Headers() {
			c.Header(k, v[0])
		}
		c.JSON(he.Status, body)
	case errors.Is(err, commands.ErrSignupDisabled):
		c.JSON(http.StatusForbidden, gin.H{"status": "error", "code": "SIGNUP_DISABLED", "error": err.Error()})
	default:
		c.JSON(http.StatusInternalServerError, gin.H{"status": "error", "code": "SERVER_ERROR", "error": err.Error()})
	}
}

type answer struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (a answer) data() map[string]any { d, _ := a.body["data"].(map[string]any); return d }

func (s *otpServer) post(t *testing.T, path, body string, header ...string) answer {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.engine.ServeHTTP(rec, req)
	a := answer{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if err := json.Unmarshal(a.raw, &a.body); err != nil {
		t.Fatalf("POST %s: body %q is not JSON: %v", path, a.raw, err)
	}
	return a
}

func (s *otpServer) request(t *testing.T, body string, header ...string) answer {
	t.Helper()
	return s.post(t, "/v1/auth/otp/request", body, header...)
}

func (s *otpServer) verify(t *testing.T, body string) answer {
	t.Helper()
	return s.post(t, "/v1/auth/otp/verify", body)
}

// sentCode is what the mailer would send: the code derived from the latest otp.requested.v1.
func (f *otpFixture) sentCode(t *testing.T, s *otpServer, identifier string) string {
	t.Helper()
	recs, err := s.store.ReadStream(t.Context(), commands.OTPStream(f.keys, identifier), 0, 1000)
	pgtest.Must(t, err, "read otp stream")
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Type == events.TypeOTPRequested {
			ev, err := events.Decode(recs[i].Type, recs[i].Data)
			pgtest.Must(t, err, "decode")
			return commands.OTPCode(f.keys, ev.(events.OTPRequested).Nonce)
		}
	}
	t.Fatalf("no code requested for %s", identifier)
	return ""
}

func wrongCode(code string) string {
	n, _ := strconv.Atoi(code)
	return fmt.Sprintf("%06d", (n+1)%1_000_000)
}

func wantError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.body["code"] != code {
		t.Fatalf("answer %d %s, want %d %s", a.status, a.raw, status, code)
	}
}

func wantRetry(t *testing.T, a answer, seconds int) {
	t.Helper()
	if got := a.body["retryAfterSeconds"]; got != float64(seconds) {
		t.Errorf("retryAfterSeconds = %v, want %d", got, seconds)
	}
	if got := a.header.Get("Retry-After"); got != strconv.Itoa(seconds) {
		t.Errorf("Retry-After = %q, want %d", got, seconds)
	}
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if a.header.Get(h) == "" {
			t.Errorf("%s missing", h)
		}
	}
}

const aliceBody = `{"email":"Alice@Example.com "}`

func TestOTPSignInEndToEnd(t *testing.T) {
	f := newOTPFixture(t, 1)
	s := f.server(0, commands.OTPConfig{AutoCreate: true})

	a := s.request(t, aliceBody)
	want := `{"status":"success","message":"Verification code sent. Check your email.","data":{"sent":true,"expiresAt":"2026-04-09T14:33:00.000Z","resendAvailableInSeconds":60}}`
	if a.status != http.StatusOK || string(a.raw) != want {
		t.Fatalf("request: %d %s\nwant 200 %s", a.status, a.raw, want)
	}
	if a.header.Get("X-RateLimit-Limit") != "10" || a.header.Get("X-RateLimit-Remaining") != "9" {
		t.Errorf("rate-limit headers %v", a.header)
	}

	code := f.sentCode(t, s, "alice@example.com")
	recs, err := s.store.ReadStream(t.Context(), commands.OTPStream(f.keys, "alice@example.com"), 0, 10)
	pgtest.Must(t, err, "read")
	if bytes.Contains(recs[0].Data, []byte(code)) || bytes.Contains(recs[0].Metadata, []byte(code)) {
		t.Errorf("the code %s is stored in clear: %s", code, recs[0].Data)
	}
	if strings.Contains(recs[0].Stream, "alice") {
		t.Errorf("stream name %s carries the address", recs[0].Stream)
	}

	f.clock.advance(time.Minute)
	a = s.verify(t, `{"email":"alice@example.com","code":"`+code+`"}`)
	if a.status != http.StatusOK {
		t.Fatalf("verify: %d %s", a.status, a.raw)
	}
	d := a.data()
	if d["email"] != "alice@example.com" || d["accountCreated"] != true || !commands.ValidAPIKey(d["apiKey"].(string)) ||
		d["expiresAt"] != "2026-04-16T14:24:00.000Z" || d["refreshToken"] == "" || d["refreshExpiresAt"] == "" ||
		d["message"] != "Account ready. This API key expires in 7 days. Use it as your Bearer token — it is shown only once." {
		t.Errorf("verify data %s", a.raw)
	}

	// Single use.
	wantError(t, s.verify(t, `{"email":"alice@example.com","code":"`+code+`"}`), http.StatusUnauthorized, "OTP_EXPIRED")

	// A second sign-in reaches the same account.
	f.clock.advance(time.Minute)
	if a := s.request(t, aliceBody); a.status != http.StatusOK {
		t.Fatalf("second request: %d %s", a.status, a.raw)
	}
	a = s.verify(t, `{"email":"alice@example.com","code":"`+f.sentCode(t, s, "alice@example.com")+`"}`)
	if a.status != http.StatusOK || a.data()["accountCreated"] != false {
		t.Errorf("second sign-in: %d %s", a.status, a.raw)
	}
}

func TestOTPRequestIsIdenticalWhateverAccountsExist(t *testing.T) {
	f := newOTPFixture(t, 1)
	on := f.server(0, commands.OTPConfig{AutoCreate: true})
	off := f.server(0, commands.OTPConfig{AutoCreate: false})

	// alice, carol and frank have accounts; bob, dave and erin do not.
	for _, who := range []string{"alice", "carol", "frank"} {
		on.request(t, `{"email":"`+who+`@example.com"}`)
		if a := on.verify(t, `{"email":"`+who+`@example.com","code":"`+f.sentCode(t, on, who+"@example.com")+`"}`); a.status != http.StatusOK {
			t.Fatalf("%s sign-in: %d %s", who, a.status, a.raw)
		}
	}
	f.clock.advance(time.Hour)

	bodies := map[string]answer{
		"signin with account":              on.request(t, `{"email":"alice@example.com","purpose":"signin"}`, "X-Test-IP", "198.51.100.1"),
		"signin without account":           on.request(t, `{"email":"bob@example.com","purpose":"signin"}`, "X-Test-IP", "198.51.100.1"),
		"signup with account":              on.request(t, `{"email":"carol@example.com","purpose":"signup"}`, "X-Test-IP", "198.51.100.1"),
		"signup without account":           on.request(t, `{"email":"dave@example.com","purpose":"signup"}`, "X-Test-IP", "198.51.100.1"),
		"auto-create off, without account": off.request(t, `{"email":"erin@example.com"}`, "X-Test-IP", "198.51.100.1"),
		"auto-create off, with account":    off.request(t, `{"email":"frank@example.com","purpose":"signin"}`, "X-Test-IP", "198.51.100.1"),
	}
	var first []byte
	for name, a := range bodies {
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", name, a.status, a.raw)
		}
		if first == nil {
			first = a.raw
		}
		if !bytes.Equal(a.raw, first) {
			t.Errorf("%s: body %s differs from %s", name, a.raw, first)
		}
	}

	// With auto-create off, a verified unknown identifier is refused (and the code is spent).
	a := off.verify(t, `{"email":"erin@example.com","code":"`+f.sentCode(t, off, "erin@example.com")+`"}`)
	wantError(t, a, http.StatusForbidden, "SIGNUP_DISABLED")
	// With auto-create off, an existing account still signs in.
	f.clock.advance(time.Hour)
	off.request(t, aliceBody)
	if a := off.verify(t, `{"email":"alice@example.com","code":"`+f.sentCode(t, off, "alice@example.com")+`"}`); a.status != http.StatusOK || a.data()["accountCreated"] != false {
		t.Errorf("existing account with auto-create off: %d %s", a.status, a.raw)
	}
}

func TestOTPWrongCodesCancelAndLock(t *testing.T) {
	f := newOTPFixture(t, 1)
	s := f.server(0, commands.OTPConfig{AutoCreate: true})

	cancelOne := func(t *testing.T, after time.Duration) string {
		t.Helper()
		if a := s.request(t, aliceBody); a.status != http.StatusOK {
			t.Fatalf("request: %d %s", a.status, a.raw)
		}
		code := f.sentCode(t, s, "alice@example.com")
		f.clock.advance(after)
		for left := otp.MaxAttempts - 1; left > 0; left-- {
			a := s.verify(t, `{"email":"alice@example.com","code":"`+wrongCode(code)+`"}`)
			wantError(t, a, http.StatusUnauthorized, "OTP_INVALID")
			if a.body["attemptsLeft"] != float64(left) {
				t.Fatalf("attemptsLeft = %v, want %d", a.body["attemptsLeft"], left)
			}
		}
		a := s.verify(t, `{"email":"alice@example.com","code":"`+wrongCode(code)+`"}`)
		wantError(t, a, http.StatusTooManyRequests, "OTP_TOO_MANY_ATTEMPTS")
		return code
	}

	code := cancelOne(t, 30*time.Second) // cancelled at 14:23:30
	// The cancelled code no longer works, even when right.
	wantError(t, s.verify(t, `{"email":"alice@example.com","code":"`+code+`"}`), http.StatusUnauthorized, "OTP_EXPIRED")

	// Second cancel late in the first window, third in the next window (so the hourly request limit
	// does not hide the lock): 3 cancels within an hour lock the identifier for 15 minutes.
	f.clock.advance(53*time.Minute + 30*time.Second) // 15:17
	cancelOne(t, 0)
	f.clock.advance(6 * time.Minute) // 15:23, a new request window
	cancelOne(t, 0)                  // cancelled at 15:23, 59.5 minutes after the first: locked until 15:38

	f.clock.advance(time.Minute)
	a := s.request(t, aliceBody)
	wantError(t, a, http.StatusTooManyRequests, "OTP_LOCKED")
	wantRetry(t, a, 14*60)
	f.clock.advance(14 * time.Minute)
	if a := s.request(t, aliceBody); a.status != http.StatusOK {
		t.Errorf("after the lock: %d %s", a.status, a.raw)
	}
}

func TestOTPCooldownResendAndHourlyLimit(t *testing.T) {
	f := newOTPFixture(t, 1)
	s := f.server(0, commands.OTPConfig{AutoCreate: true})

	s.request(t, aliceBody)
	first := f.sentCode(t, s, "alice@example.com")

	f.clock.advance(20 * time.Second)
	a := s.request(t, `{"email":"alice@example.com","resend":true}`)
	wantError(t, a, http.StatusTooManyRequests, "RATE_LIMITED")
	wantRetry(t, a, 40)

	// A plain request while the code is open sends nothing new.
	a = s.request(t, aliceBody)
	want := `{"status":"success","message":"Verification code sent. Check your email.","data":{"sent":true,"codeAlreadySent":true,"expiresAt":"2026-04-09T14:33:00.000Z","resendAvailableInSeconds":40}}`
	if string(a.raw) != want {
		t.Errorf("plain request while open: %s\nwant %s", a.raw, want)
	}

	f.clock.advance(40 * time.Second)
	a = s.request(t, `{"email":"alice@example.com","resend":true}`)
	if a.status != http.StatusOK || a.data()["expiresAt"] != "2026-04-09T14:33:00.000Z" {
		t.Fatalf("resend: %d %s", a.status, a.raw)
	}
	if got := f.sentCode(t, s, "alice@example.com"); got != first {
		t.Errorf("resend sent %s, want the same code %s", got, first)
	}

	f.clock.advance(time.Minute)
	if a := s.request(t, `{"email":"alice@example.com","resend":true}`); a.status != http.StatusOK {
		t.Fatalf("third send: %d %s", a.status, a.raw)
	}
	f.clock.advance(time.Minute)
	a = s.request(t, `{"email":"alice@example.com","resend":true}`)
	wantError(t, a, http.StatusTooManyRequests, "RATE_LIMITED")
	wantRetry(t, a, 57*60) // the window started at 14:23; now 14:26

	// The open code still verifies.
	if a := s.verify(t, `{"email":"alice@example.com","code":"`+first+`"}`); a.status != http.StatusOK {
		t.Errorf("verify: %d %s", a.status, a.raw)
	}
	// After the window a new code can be requested.
	f.clock.advance(57 * time.Minute)
	if a := s.request(t, aliceBody); a.status != http.StatusOK || a.data()["codeAlreadySent"] != nil {
		t.Errorf("after the window: %d %s", a.status, a.raw)
	}
	if f.sentCode(t, s, "alice@example.com") == "" {
		t.Error("no new code")
	}
}

func TestOTPLimitsHoldAcrossInstances(t *testing.T) {
	f := newOTPFixture(t, 2)
	one := f.server(0, commands.OTPConfig{AutoCreate: true})
	two := f.server(1, commands.OTPConfig{AutoCreate: true})

	// Ten requests per client IP per hour, counted by both instances together.
	for i := range 10 {
		s := one
		if i%2 == 1 {
			s = two
		}
		if a := s.request(t, fmt.Sprintf(`{"email":"user%d@example.com"}`, i), "X-Test-IP", "192.0.2.9"); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, a.status, a.raw)
		}
	}
	a := two.request(t, `{"email":"user10@example.com"}`, "X-Test-IP", "192.0.2.9")
	wantError(t, a, http.StatusTooManyRequests, "RATE_LIMITED")
	wantRetry(t, a, 3600)
	if a.header.Get("X-RateLimit-Limit") != "10" || a.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("headers %v", a.header)
	}
	if a := one.request(t, `{"email":"user10@example.com"}`, "X-Test-IP", "192.0.2.10"); a.status != http.StatusOK {
		t.Errorf("another IP: %d %s", a.status, a.raw)
	}

	// The per-identifier limits live in the otp stream, so both instances see them.
	one.request(t, aliceBody)
	a = two.request(t, `{"email":"alice@example.com","resend":true}`)
	wantError(t, a, http.StatusTooManyRequests, "RATE_LIMITED")
	code := f.sentCode(t, one, "alice@example.com")
	wantError(t, two.verify(t, `{"email":"alice@example.com","code":"`+wrongCode(code)+`"}`), http.StatusUnauthorized, "OTP_INVALID")
	a = one.verify(t, `{"email":"alice@example.com","code":"`+wrongCode(code)+`"}`)
	if a.body["attemptsLeft"] != float64(3) {
		t.Errorf("attempts left after one wrong code on each instance: %s", a.raw)
	}
	if a := two.verify(t, `{"email":"alice@example.com","code":"`+code+`"}`); a.status != http.StatusOK {
		t.Fatalf("verify on the other instance: %d %s", a.status, a.raw)
	}
	wantError(t, one.verify(t, `{"email":"alice@example.com","code":"`+code+`"}`), http.StatusUnauthorized, "OTP_EXPIRED")
}

func TestOTPPhoneAndChannels(t *testing.T) {
	f := newOTPFixture(t, 1)
	emailOnly := f.server(0, commands.OTPConfig{AutoCreate: true})
	phoneOnly := f.server(0, commands.OTPConfig{AutoCreate: true, Channels: []string{"phone"}})
	both := f.server(0, commands.OTPConfig{AutoCreate: true, Channels: []string{"email", "phone"}})

	wantError(t, emailOnly.request(t, `{"phone":"+919876543210"}`), http.StatusBadRequest, "CHANNEL_DISABLED")
	wantError(t, phoneOnly.request(t, aliceBody), http.StatusBadRequest, "CHANNEL_DISABLED")

	a := both.request(t, `{"phone":" +919876543210 "}`)
	if a.status != http.StatusOK || a.body["message"] != "Verification code sent. Check your phone." {
		t.Fatalf("phone request: %d %s", a.status, a.raw)
	}
	code := f.sentCode(t, both, "+919876543210")
	wantError(t, emailOnly.verify(t, `{"phone":"+919876543210","code":"`+code+`"}`), http.StatusBadRequest, "CHANNEL_DISABLED")
	a = phoneOnly.verify(t, `{"phone":"+919876543210","code":"`+code+`"}`)
	if a.status != http.StatusOK || a.data()["phone"] != "+919876543210" || a.data()["email"] != nil {
		t.Errorf("phone verify: %d %s", a.status, a.raw)
	}
}

func TestOTPBadInput(t *testing.T) {
	f := newOTPFixture(t, 1)
	s := f.server(0, commands.OTPConfig{AutoCreate: true, Channels: []string{"email", "phone"}})
	requests := []string{
		``, `not json`, `[]`, `{"email":`, `{}`, `{"email":""}`, `{"email":"nope"}`, `{"email":42}`,
		`{"email":"a@example.com","phone":"+12345678901"}`, `{"phone":"12345678901"}`, `{"phone":"+1234"}`,
		`{"email":"a@example.com","purpose":"admin"}`, `{"email":"a@example.com","resend":"yes"}`,
		`{"email":"a@example.com"} {"email":"b@example.com"}`, `{"email":"a@example.com","code":"123456"}`,
		`{"email":"` + strings.Repeat("a", 20000) + `@example.com"}`,
	}
	for _, body := range requests {
		wantError(t, s.request(t, body), http.StatusBadRequest, "INVALID_REQUEST")
	}
	verifies := []string{
		``, `{}`, `{"email":"a@example.com"}`, `{"email":"a@example.com","code":"12345"}`, `{"email":"a@example.com","code":"1234567"}`,
		`{"email":"a@example.com","code":"12a456"}`, `{"email":"a@example.com","code":123456}`, `{"code":"123456"}`,
		`{"email":"bad","code":"123456"}`, `{"email":"a@example.com","code":"123456","resend":true}`,
		`{"email":"a@example.com","code":" 123456"}`,
	}
	for _, body := range verifies {
		wantError(t, s.verify(t, body), http.StatusBadRequest, "INVALID_REQUEST")
	}
	// Nothing was written by any of them.
	if _, err := s.store.ReadStream(t.Context(), commands.OTPStream(f.keys, "a@example.com"), 0, 10); !errors.Is(err, events.ErrStreamNotFound) {
		t.Errorf("bad input wrote events: %v", err)
	}
	// Verify with no code ever requested.
	wantError(t, s.verify(t, `{"email":"a@example.com","code":"123456"}`), http.StatusUnauthorized, "OTP_EXPIRED")
}

// TestOTPErrorsAreNotDomainRules documents that every OTP rule reaches HTTP as an *HTTPError, so the
// composition root's rule table needs no OTP lines.
func TestOTPErrorsAreNotDomainRules(t *testing.T) {
	f := newOTPFixture(t, 1)
	s := f.server(0, commands.OTPConfig{AutoCreate: true})
	_, err := s.h.Verify(t.Context(), commands.VerifyOTP{Identifier: commands.Identifier{Kind: "email", Value: "x@example.com"}, Code: "123456"})
	var he *commands.HTTPError
	var rule domain.Error
	if !errors.As(err, &he) || errors.As(err, &rule) {
		t.Errorf("err = %#v, want an *HTTPError that is not a domain.Error", err)
	}
}

// failingSignIn stands in for an accounts side that cannot finish (its database is down).
type failingSignIn struct{}

func (failingSignIn) SignIn(context.Context, uuid.UUID, commands.Identifier, bool) (commands.SignInResult, error) {
	return commands.SignInResult{}, errors.New("account store unavailable")
}

func TestOTPVerifyAnswers500WhenSignInFails(t *testing.T) {
	f := newOTPFixture(t, 1)
	store := pgstore.New(f.pools[0], slog.New(slog.DiscardHandler))
	h := commands.NewOTP(store, f.keys, commands.NewLimiter(f.pools[0]), failingSignIn{}, nil, commands.OTPConfig{Now: f.clock.now}, slog.New(slog.DiscardHandler))
	e := gin.New()
	e.Use(errorStandIn)
	h.Register(e)
	s := &otpServer{store: store, h: h, engine: e}

	s.request(t, aliceBody)
	a := s.verify(t, `{"email":"alice@example.com","code":"`+f.sentCode(t, s, "alice@example.com")+`"}`)
	wantError(t, a, http.StatusInternalServerError, "SERVER_ERROR")
	// The code was consumed: the client redoes the whole flow (spec §4.2).
	wantError(t, s.verify(t, `{"email":"alice@example.com","code":"`+f.sentCode(t, s, "alice@example.com")+`"}`), http.StatusUnauthorized, "OTP_EXPIRED")
}
