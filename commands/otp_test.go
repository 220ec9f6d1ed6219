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

func (s *otpServer) verify(t *testing.T, body string, header ...string) answer {
	t.Helper()
	return s.post(t, "/v1/auth/otp/verify", body, header...)
}

// sentCode is what the mailer would send: the code derived from the latest otp.requested event.
func (f *otpFixture) sentCode(t *testing.T, s *otpServer, identifier string) string {
	t.Helper()
	recs, err := s.store.ReadStream(t.Context(), commands.OTPStream(f.keys, identifier), 0, 1000)
	pgtest.Must(t, err, "read otp stream")
	for i := len(recs) - 1; i >= 0; i-- {
		ev, err := events.Decode(recs[i].Type, recs[i].Data)
		pgtest.Must(t, err, "decode")
		if code, ok := commands.OTPCodeOf(f.keys, ev); ok {
			return code
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
		d["expiresAt"] != "2026-07-08T14:24:00.000Z" || d["refreshToken"] == "" || d["refreshExpiresAt"] == "" ||
		d["message"] != "Account ready. This API key renews each time it is used and expires after 90 days without use. Use it as your Bearer token — it is shown only once." {
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

// The client addresses of the tests: the owner's (the fixture's default) and a stranger's.
const (
	ownerIP    = "203.0.113.1"
	strangerIP = "198.51.100.7"
)

// TestOTPStrangerCannotKeepOwnerOut is the old lockout attack: a stranger asks for codes for
// alice's address and spends all its tries on each. Its wrong codes are charged to it, not to
// alice's code or address: alice can still request and sign in, each time.
func TestOTPStrangerCannotKeepOwnerOut(t *testing.T) {
	f := newOTPFixture(t, 1)
	s := f.server(0, commands.OTPConfig{AutoCreate: true})
	body := func(code string) string { return `{"email":"alice@example.com","code":"` + code + `"}` }

	for round := range 3 {
		if a := s.request(t, aliceBody, "X-Test-IP", strangerIP); a.status != http.StatusOK {
			t.Fatalf("round %d: stranger's request: %d %s", round, a.status, a.raw)
		}
		code := f.sentCode(t, s, "alice@example.com")
		for left := otp.MaxAttempts - 1; left > 0; left-- {
			a := s.verify(t, body(wrongCode(code)), "X-Test-IP", strangerIP)
			wantError(t, a, http.StatusUnauthorized, "OTP_INVALID")
			if a.body["attemptsLeft"] != float64(left) {
				t.Fatalf("attemptsLeft = %v, want %d", a.body["attemptsLeft"], left)
			}
		}
		a := s.verify(t, body(wrongCode(code)), "X-Test-IP", strangerIP)
		wantError(t, a, http.StatusTooManyRequests, "OTP_TOO_MANY_ATTEMPTS")
		wantRetry(t, a, int(otp.CodeTTL/time.Second)) // until the code expires
		// The stranger's tries on this code are spent: even the right code is not checked for it.
		wantError(t, s.verify(t, body(code), "X-Test-IP", strangerIP), http.StatusTooManyRequests, "OTP_TOO_MANY_ATTEMPTS")

		// The owner asks for a code (the open one is in their inbox) and signs in with it.
		f.clock.advance(time.Minute)
		if a := s.request(t, aliceBody, "X-Test-IP", ownerIP); a.status != http.StatusOK {
			t.Fatalf("round %d: owner's request: %d %s", round, a.status, a.raw)
		}
		if a := s.verify(t, body(f.sentCode(t, s, "alice@example.com")), "X-Test-IP", ownerIP); a.status != http.StatusOK {
			t.Fatalf("round %d: owner's sign-in: %d %s", round, a.status, a.raw)
		}
		f.clock.advance(2 * time.Minute) // past the cooldown: the stranger starts over
	}
}

// TestOTPFailedVerifiesAreLimitedPerClient: at most 20 wrong codes an hour from one client, over
// any number of addresses and API instances; an IPv6 client is its /64; right codes do not count.
func TestOTPFailedVerifiesAreLimitedPerClient(t *testing.T) {
	f := newOTPFixture(t, 2)
	one := f.server(0, commands.OTPConfig{AutoCreate: true})
	two := f.server(1, commands.OTPConfig{AutoCreate: true})
	attacker := func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i+1) } // one /64, many addresses

	codes := map[string]string{}
	for i := range 5 {
		addr := fmt.Sprintf("user%d@example.com", i)
		if a := one.request(t, `{"email":"`+addr+`"}`, "X-Test-IP", ownerIP); a.status != http.StatusOK {
			t.Fatalf("request %s: %d %s", addr, a.status, a.raw)
		}
		codes[addr] = f.sentCode(t, one, addr)
	}
	// A right code is refunded: it does not count toward the client's wrong codes.
	if a := one.verify(t, `{"email":"user4@example.com","code":"`+codes["user4@example.com"]+`"}`, "X-Test-IP", attacker(99)); a.status != http.StatusOK {
		t.Fatalf("right code: %d %s", a.status, a.raw)
	}
	for i := range 20 { // 20 wrong codes over 4 addresses (5 each), alternating instances
		s := one
		if i%2 == 1 {
			s = two
		}
		addr := fmt.Sprintf("user%d@example.com", i/5)
		a := s.verify(t, `{"email":"`+addr+`","code":"`+wrongCode(codes[addr])+`"}`, "X-Test-IP", attacker(i))
		if a.status != http.StatusUnauthorized && a.status != http.StatusTooManyRequests || a.body["code"] == "RATE_LIMITED" {
			t.Fatalf("wrong code %d: %d %s", i, a.status, a.raw)
		}
	}
	// The 21st try is refused before any work, even with a right code, from any address of the /64.
	a := two.verify(t, `{"email":"user0@example.com","code":"`+codes["user0@example.com"]+`"}`, "X-Test-IP", "2001:db8:1:2:ffff::1")
	wantError(t, a, http.StatusTooManyRequests, "RATE_LIMITED")
	wantRetry(t, a, 3600)
	if a.header.Get("X-RateLimit-Limit") != "20" || a.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("headers %v", a.header)
	}
	// Another client (the owner) is not throttled and signs in with the same code.
	if a := one.verify(t, `{"email":"user0@example.com","code":"`+codes["user0@example.com"]+`"}`, "X-Test-IP", "2001:db8:1:3::1"); a.status != http.StatusOK {
		t.Errorf("another /64: %d %s", a.status, a.raw)
	}
	// The window ends after an hour.
	f.clock.advance(time.Hour)
	one.request(t, `{"email":"user1@example.com"}`, "X-Test-IP", ownerIP)
	if a := one.verify(t, `{"email":"user1@example.com","code":"`+f.sentCode(t, one, "user1@example.com")+`"}`, "X-Test-IP", attacker(0)); a.status != http.StatusOK {
		t.Errorf("after the window: %d %s", a.status, a.raw)
	}
}

// TestOTPStreamHoldsNoSecret: the otp stream holds neither a nonce nor any hash of a code, only
// what the code is derived from with the server secret.
func TestOTPStreamHoldsNoSecret(t *testing.T) {
	f := newOTPFixture(t, 1)
	s := f.server(0, commands.OTPConfig{AutoCreate: true})
	s.request(t, aliceBody)
	first := f.sentCode(t, s, "alice@example.com")
	wantError(t, s.verify(t, `{"email":"alice@example.com","code":"`+wrongCode(first)+`"}`), http.StatusUnauthorized, "OTP_INVALID")
	if a := s.verify(t, `{"email":"alice@example.com","code":"`+first+`"}`); a.status != http.StatusOK {
		t.Fatalf("verify: %d %s", a.status, a.raw)
	}
	recs, err := s.store.ReadStream(t.Context(), commands.OTPStream(f.keys, "alice@example.com"), 0, 100)
	pgtest.Must(t, err, "read")
	hash := commands.OTPCodeHashV1(f.keys, "alice@example.com", first)
	for _, r := range recs {
		if !strings.HasSuffix(r.Type, ".v2") {
			t.Errorf("new code wrote %s", r.Type)
		}
		var fields map[string]any
		pgtest.Must(t, json.Unmarshal(r.Data, &fields), "data")
		for _, k := range []string{"nonce", "codeHash"} {
			if _, ok := fields[k]; ok {
				t.Errorf("%s stores %s: %s", r.Type, k, r.Data)
			}
		}
		for _, secret := range []string{first, hash} {
			if bytes.Contains(r.Data, []byte(secret)) || bytes.Contains(r.Metadata, []byte(secret)) {
				t.Errorf("%s holds %q: %s", r.Type, secret, r.Data)
			}
		}
		if bytes.Contains(r.Data, []byte(ownerIP)) {
			t.Errorf("%s holds the client IP: %s", r.Type, r.Data)
		}
	}
}

// TestOTPOpenV1CodeStillVerifies: a code issued as otp.requested.v1 before the upgrade (nonce and
// code hash) verifies once, and what is appended for it is v2.
func TestOTPOpenV1CodeStillVerifies(t *testing.T) {
	f := newOTPFixture(t, 1)
	s := f.server(0, commands.OTPConfig{AutoCreate: true})
	nonce := "00112233445566778899aabbccddeeff"
	code := commands.OTPCode(f.keys, nonce)
	now := f.clock.now()
	d, err := events.Encode(events.OTPRequested{Channel: "email", Address: "alice@example.com", Purpose: "signin", Nonce: nonce,
		CodeHash: commands.OTPCodeHashV1(f.keys, "alice@example.com", code), RequestedAt: now, ExpiresAt: now.Add(otp.CodeTTL)}, uuid.New(), events.Metadata{})
	pgtest.Must(t, err, "encode")
	stream := commands.OTPStream(f.keys, "alice@example.com")
	_, err = s.store.Append(t.Context(), stream, events.NoStream(), []events.EventData{d})
	pgtest.Must(t, err, "append v1")

	if got := f.sentCode(t, s, "alice@example.com"); got != code {
		t.Fatalf("code of the v1 event = %s, want %s", got, code)
	}
	wantError(t, s.verify(t, `{"email":"alice@example.com","code":"`+wrongCode(code)+`"}`), http.StatusUnauthorized, "OTP_INVALID")
	if a := s.verify(t, `{"email":"alice@example.com","code":"`+code+`"}`); a.status != http.StatusOK {
		t.Fatalf("verify the v1 code: %d %s", a.status, a.raw)
	}
	wantError(t, s.verify(t, `{"email":"alice@example.com","code":"`+code+`"}`), http.StatusUnauthorized, "OTP_EXPIRED")
	recs, err := s.store.ReadStream(t.Context(), stream, 1, 100)
	pgtest.Must(t, err, "read")
	if len(recs) != 2 || recs[0].Type != events.TypeOTPAttemptFailedV2 || recs[1].Type != events.TypeOTPVerifiedV2 {
		t.Errorf("appended after the v1 code: %v", recs)
	}
}

func TestOTPRequestsAreLimitedPerIPv6Slash64(t *testing.T) {
	f := newOTPFixture(t, 1)
	s := f.server(0, commands.OTPConfig{AutoCreate: true})
	for i := range 10 {
		ip := fmt.Sprintf("2001:db8:aa:bb:%x::1", i) // ten addresses of one /64
		if a := s.request(t, fmt.Sprintf(`{"email":"user%d@example.com"}`, i), "X-Test-IP", ip); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, a.status, a.raw)
		}
	}
	wantError(t, s.request(t, `{"email":"user10@example.com"}`, "X-Test-IP", "2001:db8:aa:bb::ffff"), http.StatusTooManyRequests, "RATE_LIMITED")
	if a := s.request(t, `{"email":"user10@example.com"}`, "X-Test-IP", "2001:db8:aa:bc::1"); a.status != http.StatusOK {
		t.Errorf("the next /64: %d %s", a.status, a.raw)
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
	phoneOnly := f.server(0, commands.OTPConfig{AutoCreate: true, Channels: []string{"phone"}, SMSCountries: []string{"91"}})
	both := f.server(0, commands.OTPConfig{AutoCreate: true, Channels: []string{"email", "phone"}, SMSCountries: []string{"1", "91"}})

	wantError(t, emailOnly.request(t, `{"phone":"+919876543210"}`), http.StatusBadRequest, "CHANNEL_DISABLED")
	wantError(t, phoneOnly.request(t, aliceBody), http.StatusBadRequest, "CHANNEL_DISABLED")

	a := both.request(t, `{"phone":" +919876543210 "}`)
	if a.status != http.StatusOK || a.body["message"] != "Verification code sent. Check your phone." {
		t.Fatalf("phone request: %d %s", a.status, a.raw)
	}
	code := f.sentCode(t, both, "+919876543210")
	wantError(t, emailOnly.verify(t, `{"phone":"+919876543210","code":"`+code+`"}`), http.StatusBadRequest, "CHANNEL_DISABLED")

	// Only numbers of allowed country calling codes get a code; nothing is written for others.
	for _, n := range []string{"+4915112345678", "+447700900123", "+9198765", "+19"} {
		a := both.request(t, `{"phone":"`+n+`"}`)
		if n == "+9198765" || n == "+19" {
			wantError(t, a, http.StatusBadRequest, "INVALID_REQUEST") // not E.164 at all
			continue
		}
		wantError(t, a, http.StatusUnprocessableEntity, "PHONE_COUNTRY_NOT_ALLOWED")
		if _, err := both.store.ReadStream(t.Context(), commands.OTPStream(f.keys, n), 0, 10); !errors.Is(err, events.ErrStreamNotFound) {
			t.Errorf("%s: a refused number has an otp stream: %v", n, err)
		}
	}
	if a := both.request(t, `{"phone":"+14155550123"}`); a.status != http.StatusOK {
		t.Errorf("+1: %d %s", a.status, a.raw)
	}
	none := f.server(0, commands.OTPConfig{AutoCreate: true, Channels: []string{"phone"}})
	wantError(t, none.request(t, `{"phone":"+14155550124"}`), http.StatusUnprocessableEntity, "PHONE_COUNTRY_NOT_ALLOWED")
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

// TestOTPCodeV2DependsOnEveryInput: the derived code changes with the identifier, the code's
// number and its issue time (to the nanosecond), so no two codes of the stream data repeat.
func TestOTPCodeV2DependsOnEveryInput(t *testing.T) {
	keys, err := secret.New([]byte("0123456789abcdef0123456789abcdef"))
	pgtest.Must(t, err, "keyring")
	base := commands.OTPCodeV2(keys, "a@example.com", 1, otpT0)
	if len(base) != 6 || !sixDigits(base) {
		t.Fatalf("code %q is not six digits", base)
	}
	// Each variation is tried on 20 inputs: one collision in 10^6 is luck, 20 are a bug.
	same := map[string]int{}
	for i := range 20 {
		at := otpT0.Add(time.Duration(i))
		ref := commands.OTPCodeV2(keys, "a@example.com", 1, at)
		if commands.OTPCodeV2(keys, "b@example.com", 1, at) == ref {
			same["identifier"]++
		}
		if commands.OTPCodeV2(keys, "a@example.com", 2, at) == ref {
			same["number"]++
		}
		if commands.OTPCodeV2(keys, "a@example.com", 1, at.Add(time.Nanosecond)) == ref {
			same["issue time"]++
		}
		other, _ := secret.New([]byte("fedcba9876543210fedcba9876543210"))
		if commands.OTPCodeV2(other, "a@example.com", 1, at) == ref {
			same["server secret"]++
		}
	}
	for input, n := range same {
		if n > 1 {
			t.Errorf("the code ignores the %s (%d of 20 equal)", input, n)
		}
	}
}

func sixDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
