package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/litehost/litehost/domain/otp"
)

// TestReplayedVerifyRechecksTheCode: a verify is a replay when its command ID (caller and
// Idempotency-Key) already has events in the otp stream, which holds once the idempotency row is
// gone (after 24 h, or after a 5xx removed it; deleted here to stand in for that). A replay is
// a sign-in, so it must present the code it consumed, inside that code's lifetime.
func TestReplayedVerifyRechecksTheCode(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	const email = "replay@example.com"
	if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": email}); r.status != http.StatusOK {
		t.Fatalf("request: %d %s", r.status, r.body)
	}
	code := mb.waitCode(t, email, 1)
	key := header("Idempotency-Key", "signin-K")
	first := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": email, "code": code}, key)
	if first.status != http.StatusOK {
		t.Fatalf("verify: %d %s", first.status, first.body)
	}
	apiKey := first.data(t)["apiKey"]
	forget := func() {
		t.Helper()
		if _, err := s.app.pool.Exec(t.Context(), `DELETE FROM idempotency_keys`); err != nil {
			t.Fatal(err)
		}
	}
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}

	forget()
	r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": email, "code": wrong}, key)
	if r.status != http.StatusUnauthorized || r.code(t) != "OTP_INVALID" {
		t.Fatalf("replay with a wrong code: %d %s", r.status, r.body)
	}
	if _, ok := r.json(t)["data"]; ok {
		t.Fatalf("replay with a wrong code answered data: %s", r.body)
	}

	forget()
	r = s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": email, "code": code}, key)
	if r.status != http.StatusOK || r.data(t)["apiKey"] != apiKey {
		t.Fatalf("replay with the right code: %d %s, want the same key %v", r.status, r.body, apiKey)
	}

	// After the code's lifetime even the right code replays nothing.
	s.advance(otp.CodeTTL + time.Second)
	forget()
	r = s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": email, "code": code}, key)
	if r.status != http.StatusUnauthorized || r.code(t) != "OTP_EXPIRED" {
		t.Fatalf("replay after the code's lifetime: %d %s", r.status, r.body)
	}
}

// TestPhoneCountryAllowList: through the whole server (and validated against openapi.yaml), a
// number outside LITEHOST_SMS_COUNTRIES gets no code, and a number inside does.
func TestPhoneCountryAllowList(t *testing.T) {
	s := startServer(t, "", map[string]string{"LITEHOST_OTP_CHANNELS": "email,phone", "LITEHOST_SMS_COUNTRIES": "1,44"})
	if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"phone": "+4915112345678"}); r.status != http.StatusUnprocessableEntity ||
		r.code(t) != "PHONE_COUNTRY_NOT_ALLOWED" || r.json(t)["nextStep"] == nil {
		t.Errorf("+49 with 1,44 allowed: %d %s", r.status, r.body)
	}
	for _, n := range []string{"+14155550123", "+447700900123"} {
		if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"phone": n}); r.status != http.StatusOK {
			t.Errorf("%s: %d %s", n, r.status, r.body)
		}
	}
}

// TestFailedVerifiesLimitedPerClientThroughTheServer: the probe, 20 wrong codes over 4
// addresses from one client, now meets a 429 with Retry-After in the error envelope (validated
// against openapi.yaml), before the 21st code is even checked.
func TestFailedVerifiesLimitedPerClientThroughTheServer(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	for i := range 4 {
		email := "probe" + string(rune('a'+i)) + "@example.com"
		if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": email}); r.status != http.StatusOK {
			t.Fatalf("request: %d %s", r.status, r.body)
		}
		code := mb.waitCode(t, email, 1)
		wrong := "000000"
		if code == wrong {
			wrong = "000001"
		}
		for range otp.MaxAttempts {
			r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": email, "code": wrong})
			if c := r.code(t); c != "OTP_INVALID" && c != "OTP_TOO_MANY_ATTEMPTS" {
				t.Fatalf("wrong code for %s: %d %s", email, r.status, r.body)
			}
		}
	}
	s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "probee@example.com"})
	code := mb.waitCode(t, "probee@example.com", 1)
	r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": "probee@example.com", "code": code})
	if r.status != http.StatusTooManyRequests || r.code(t) != "RATE_LIMITED" || r.header.Get("Retry-After") == "" || r.json(t)["retryAfterSeconds"] == nil {
		t.Fatalf("21st verify from one client: %d %v %s", r.status, r.header, r.body)
	}
}
