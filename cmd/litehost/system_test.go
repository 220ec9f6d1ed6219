package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestSystemEndpoints(t *testing.T) {
	s := startServer(t, "", nil)

	r := s.do(http.MethodGet, "/health", nil)
	if r.status != http.StatusOK {
		t.Fatalf("health = %d %s", r.status, r.body)
	}
	if got := r.data(t)["status"]; got != "ok" {
		t.Errorf("health status = %v", got)
	}

	r = s.do(http.MethodGet, "/v1", nil)
	if r.status != http.StatusOK || r.data(t)["name"] != "Litehost Connect API" {
		t.Errorf("GET /v1 = %d %s", r.status, r.body)
	}

	r = s.do(http.MethodGet, "/v1/openapi.json", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"openapi":"3.1.0"`) {
		t.Errorf("GET /v1/openapi.json = %d %.200s", r.status, r.body)
	}

	r = s.do(http.MethodGet, "/v1/no-such-thing", nil)
	if r.status != http.StatusNotFound || r.code(t) != "NOT_FOUND" {
		t.Errorf("unknown route = %d %s", r.status, r.body)
	}
	r = s.do(http.MethodDelete, "/v1", nil)
	if r.status != http.StatusMethodNotAllowed || r.code(t) != "METHOD_NOT_ALLOWED" {
		t.Errorf("wrong method = %d %s", r.status, r.body)
	}
	if id := r.header.Get("X-Request-ID"); id == "" {
		t.Error("no X-Request-ID on the answer")
	}

	resp, err := s.srv.Client().Get(s.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	for _, want := range []string{"litehost_http_requests_total", "go_goroutines", "litehost_event_store_append_duration_seconds",
		"litehost_projection_lag_events"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
