package main

import (
	"net/http"
	"testing"
)

// Answers that carry an API key, a refresh token or a claim token must never be cached; every
// /v1 answer is marked, errors included.
func TestAPIAnswersAreNoStore(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	noStore := func(name string, r response) {
		t.Helper()
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s (%d): Cache-Control = %q, want no-store", name, r.status, got)
		}
	}
	r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "cache@example.com"})
	noStore("otp request", r)
	code := mb.waitCode(t, "cache@example.com", 1)
	r = s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": "cache@example.com", "code": code})
	if r.status != http.StatusOK {
		t.Fatalf("verify = %d %s", r.status, r.body)
	}
	noStore("verify", r)
	refresh := r.data(t)["refreshToken"].(string)
	r = s.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": refresh})
	if r.status != http.StatusOK {
		t.Fatalf("refresh = %d %s", r.status, r.body)
	}
	noStore("refresh", r)
	r = s.doUpload(http.MethodPost, "/v1/projects/temp", nil, []upload{{"index.html", []byte("<p>t</p>")}})
	if r.status != http.StatusOK {
		t.Fatalf("temp = %d %s", r.status, r.body)
	}
	noStore("temp create", r)
	noStore("unauthenticated read", s.do(http.MethodGet, "/v1/user", nil))
}
