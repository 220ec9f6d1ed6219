package main

import (
	"net/http"
	"strings"
	"testing"
)

func TestIdempotencyKey(t *testing.T) {
	s, mb := startWithMail(t, "", nil)

	// The same key and body replays the first answer without appending again; the mail is sent once.
	body := map[string]any{"email": "idem@example.com"}
	a := s.do(http.MethodPost, "/v1/auth/otp/request", body, header("Idempotency-Key", "k1"))
	b := s.do(http.MethodPost, "/v1/auth/otp/request", body, header("Idempotency-Key", "k1"))
	if a.status != http.StatusOK || b.status != http.StatusOK {
		t.Fatalf("statuses %d, %d: %s %s", a.status, b.status, a.body, b.body)
	}
	// The same key with another body is refused.
	c := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "other@example.com"}, header("Idempotency-Key", "k1"))
	if c.status != http.StatusUnprocessableEntity || c.code(t) != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("reused key: %d %s", c.status, c.body)
	}
	code := mb.waitCode(t, "idem@example.com", 1)

	// Verify answers carry a key shown once: a retry gets the same key, re-derived, not stored.
	v := map[string]any{"email": "idem@example.com", "code": code}
	first := s.do(http.MethodPost, "/v1/auth/otp/verify", v, header("Idempotency-Key", "v1"))
	again := s.do(http.MethodPost, "/v1/auth/otp/verify", v, header("Idempotency-Key", "v1"))
	if first.status != http.StatusOK || again.status != http.StatusOK {
		t.Fatalf("verify %d, retry %d: %s %s", first.status, again.status, first.body, again.body)
	}
	if k1, k2 := first.data(t)["apiKey"], again.data(t)["apiKey"]; k1 != k2 {
		t.Errorf("retried verify issued another key: %v vs %v", k1, k2)
	}
	var stored int
	if err := s.app.pool.QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys WHERE body::text LIKE '%lh_live_%'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Errorf("%d stored answers contain an API key", stored)
	}
	if mb.count("idem@example.com") != 1 {
		t.Errorf("%d mails sent for one idempotent request", mb.count("idem@example.com"))
	}
	if r := s.do(http.MethodPost, "/v1/auth/otp/request", body, header("Idempotency-Key", strings.Repeat("k", 300)), malformed()); r.status != http.StatusBadRequest {
		t.Errorf("oversized key: %d %s", r.status, r.body)
	}
}
