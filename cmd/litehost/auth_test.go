package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// signIn runs the whole OTP flow for email through the server's real mail and returns the
// verify answer's data.
func signIn(t *testing.T, s *testServer, mb *mailbox, email string) map[string]any {
	t.Helper()
	before := mb.count(email)
	r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": email})
	if r.status != http.StatusOK {
		t.Fatalf("otp request = %d %s", r.status, r.body)
	}
	code := mb.waitCode(t, email, before+1)
	r = s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": email, "code": code})
	if r.status != http.StatusOK {
		t.Fatalf("otp verify = %d %s", r.status, r.body)
	}
	return r.data(t)
}

func startWithMail(t *testing.T, dsn string, extra map[string]string) (*testServer, *mailbox) {
	t.Helper()
	mb := startMailbox(t)
	env := map[string]string{"LITEHOST_SMTP_URL": mb.url()}
	for k, v := range extra {
		env[k] = v
	}
	return startServer(t, dsn, env), mb
}

func TestSignInReadUserRefreshRevoke(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	d := signIn(t, s, mb, "Ada@Example.com")
	key, _ := d["apiKey"].(string)
	refresh, _ := d["refreshToken"].(string)
	if !strings.HasPrefix(key, "lh_live_") || refresh == "" || d["accountCreated"] != true {
		t.Fatalf("verify data = %v", d)
	}

	// The key works at once (read-your-writes), and the user is on the free plan with no usage.
	r := s.do(http.MethodGet, "/v1/user", nil, bearer(key))
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/user = %d %s", r.status, r.body)
	}
	u := r.data(t)
	if u["email"] != "ada@example.com" {
		t.Errorf("email = %v", u["email"])
	}
	plan := u["plan"].(map[string]any)
	if plan["tier"] != "free" {
		t.Errorf("tier = %v", plan["tier"])
	}
	quota := u["quota"].(map[string]any)["projects"].(map[string]any)
	if quota["used"] != float64(0) || quota["limit"] != float64(3) {
		t.Errorf("project quota = %v", quota)
	}
	r = s.do(http.MethodGet, "/v1/auth/session", nil, bearer(key))
	if r.status != http.StatusOK {
		t.Errorf("GET /v1/auth/session = %d %s", r.status, r.body)
	}

	// A second sign-in (after the 60 s cooldown) finds the same account.
	s.advance(61 * time.Second)
	d2 := signIn(t, s, mb, "ada@example.com")
	if d2["accountCreated"] != false {
		t.Errorf("second sign-in created an account: %v", d2)
	}

	// Refresh rotates: the new key works, the old key and old refresh token do not.
	r = s.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": refresh})
	if r.status != http.StatusOK {
		t.Fatalf("refresh = %d %s", r.status, r.body)
	}
	newKey := r.data(t)["apiKey"].(string)
	if r := s.do(http.MethodGet, "/v1/user", nil, bearer(newKey)); r.status != http.StatusOK {
		t.Errorf("new key: %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/user", nil, bearer(key)); r.status != http.StatusUnauthorized || r.code(t) != "API_KEY_INVALID" {
		t.Errorf("old key after refresh: %d %s", r.status, r.body)
	}
	// Reusing the rotated refresh token revokes the whole session.
	if r := s.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": refresh}); r.status != http.StatusUnauthorized {
		t.Errorf("reused refresh token: %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/user", nil, bearer(newKey)); r.status != http.StatusUnauthorized {
		t.Errorf("key of a session revoked for refresh reuse: %d %s", r.status, r.body)
	}

	// Revoke with the bearer key of the second session.
	key2 := d2["apiKey"].(string)
	if r := s.do(http.MethodPost, "/v1/auth/revoke", nil, bearer(key2)); r.status != http.StatusOK {
		t.Errorf("revoke = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/user", nil, bearer(key2)); r.status != http.StatusUnauthorized || r.code(t) != "API_KEY_INVALID" {
		t.Errorf("revoked key: %d %s", r.status, r.body)
	}
}

func TestAuthErrors(t *testing.T) {
	s, mb := startWithMail(t, "", nil)

	// Bearer key problems.
	if r := s.do(http.MethodGet, "/v1/user", nil); r.status != http.StatusUnauthorized || r.code(t) != "API_KEY_MISSING" {
		t.Errorf("no key: %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/user", nil, bearer("lh_live_nope")); r.status != http.StatusUnauthorized || r.code(t) != "API_KEY_INVALID" {
		t.Errorf("malformed key: %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/user", nil, bearer("lh_live_"+strings.Repeat("0", 64))); r.status != http.StatusUnauthorized || r.code(t) != "API_KEY_INVALID" {
		t.Errorf("unknown key: %d %s", r.status, r.body)
	}

	// OTP input problems are 400 INVALID_REQUEST.
	for name, body := range map[string]string{
		"not json":      `{"email":`,
		"no identifier": `{}`,
		"bad email":     `{"email":"not-an-address"}`,
		"both":          `{"email":"a@example.com","phone":"+4915112345678"}`,
		"bad purpose":   `{"email":"a@example.com","purpose":"hack"}`,
	} {
		r := s.do(http.MethodPost, "/v1/auth/otp/request", body, malformed())
		if r.status != http.StatusBadRequest || r.code(t) != "INVALID_REQUEST" {
			t.Errorf("request %s: %d %s", name, r.status, r.body)
		}
	}
	if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"phone": "+4915112345678"}); r.status != http.StatusBadRequest || r.code(t) != "CHANNEL_DISABLED" {
		t.Errorf("phone while only e-mail is on: %d %s", r.status, r.body)
	}
	for name, body := range map[string]string{
		"short code":  `{"email":"a@example.com","code":"123"}`,
		"letters":     `{"email":"a@example.com","code":"12345a"}`,
		"no code":     `{"email":"a@example.com"}`,
		"broken json": `[`,
	} {
		r := s.do(http.MethodPost, "/v1/auth/otp/verify", body, malformed())
		if r.status != http.StatusBadRequest || r.code(t) != "INVALID_REQUEST" {
			t.Errorf("verify %s: %d %s", name, r.status, r.body)
		}
	}

	// No open code → OTP_EXPIRED. Wrong codes → OTP_INVALID with attemptsLeft, then the client's tries are spent.
	if r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": "b@example.com", "code": "123456"}); r.status != http.StatusUnauthorized || r.code(t) != "OTP_EXPIRED" {
		t.Errorf("no open code: %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "b@example.com"}); r.status != http.StatusOK {
		t.Fatalf("request: %d %s", r.status, r.body)
	}
	code := mb.waitCode(t, "b@example.com", 1)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := 4; i >= 1; i-- {
		r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": "b@example.com", "code": wrong})
		if r.status != http.StatusUnauthorized || r.code(t) != "OTP_INVALID" || r.json(t)["attemptsLeft"] != float64(i) {
			t.Errorf("wrong code, %d left: %d %s", i, r.status, r.body)
		}
	}
	r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": "b@example.com", "code": wrong})
	if r.status != http.StatusTooManyRequests || r.code(t) != "OTP_TOO_MANY_ATTEMPTS" {
		t.Errorf("fifth wrong code: %d %s", r.status, r.body)
	}
	// This client's tries on the code are spent: not even the right code is checked for it.
	if r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": "b@example.com", "code": code}); r.status != http.StatusTooManyRequests ||
		r.code(t) != "OTP_TOO_MANY_ATTEMPTS" || r.header.Get("Retry-After") == "" {
		t.Errorf("right code after the client's last try: %d %s", r.status, r.body)
	}

	// Cooldown: a second request within 60 s is refused with Retry-After and rate-limit headers.
	if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "c@example.com"}); r.status != http.StatusOK {
		t.Fatalf("request: %d %s", r.status, r.body)
	}
	r = s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "c@example.com", "resend": true})
	if r.status != http.StatusTooManyRequests || r.code(t) != "RATE_LIMITED" || r.header.Get("Retry-After") == "" {
		t.Errorf("resend within the cooldown: %d %v %s", r.status, r.header, r.body)
	}
}

// The request answer must not reveal whether an account exists.
func TestOTPRequestDoesNotEnumerateAccounts(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	signIn(t, s, mb, "known@example.com")
	s.advance(61 * time.Second) // past the cooldown of known@example.com
	// A fresh identifier each, so both are first requests of their windows at the same second.
	a := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "known@example.com", "purpose": "signup"})
	b := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "unknown@example.com", "purpose": "signin"})
	if a.status != b.status {
		t.Fatalf("statuses differ: %d vs %d (%s / %s)", a.status, b.status, a.body, b.body)
	}
	strip := func(r response) map[string]any {
		m := r.json(t)
		if d, ok := m["data"].(map[string]any); ok {
			delete(d, "expiresAt") // a clock reading, not a secret
			delete(d, "resendAvailableInSeconds")
		}
		return m
	}
	if got, want := strip(a), strip(b); !equalJSON(got, want) {
		t.Errorf("answers differ:\nknown:   %s\nunknown: %s", a.body, b.body)
	}
}

// Rate limits live in PostgreSQL and the event log, so two instances share them.
func TestOTPIPLimitHoldsAcrossInstances(t *testing.T) {
	mb := startMailbox(t)
	s1 := startServer(t, "", map[string]string{"LITEHOST_SMTP_URL": mb.url()})
	dsn := s1.app.cfg.DatabaseURL
	s2 := startServer(t, dsn, map[string]string{"LITEHOST_SMTP_URL": mb.url()})
	okCount := 0
	var last response
	for i := 0; i < 12; i++ {
		s := s1
		if i%2 == 1 {
			s = s2
		}
		last = s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "ip" + string(rune('a'+i)) + "@example.com"})
		if last.status == http.StatusOK {
			okCount++
		}
	}
	if okCount != 10 {
		t.Errorf("%d requests passed across two instances, want 10 (per IP per hour)", okCount)
	}
	if last.status != http.StatusTooManyRequests || last.code(t) != "RATE_LIMITED" || last.header.Get("X-RateLimit-Limit") != "10" {
		t.Errorf("11th+ request: %d %v %s", last.status, last.header, last.body)
	}
}
