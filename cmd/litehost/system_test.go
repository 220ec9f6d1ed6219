package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events"
)

func TestSystemEndpoints(t *testing.T) {
	s := startServer(t, "", nil)

	r := s.do(http.MethodGet, "/health", nil)
	if r.status != http.StatusOK {
		t.Fatalf("health = %d %s", r.status, r.body)
	}
	if string(r.body) != `{"status":"ok"}` {
		t.Errorf("public health = %s, want only the status", r.body)
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

	// Without LITEHOST_ADMIN_TOKEN the operators' views do not exist on the API listener.
	if r := s.do(http.MethodGet, "/metrics", nil); r.status != http.StatusNotFound {
		t.Errorf("/metrics without an operator token configured = %d %.200s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/health", nil, bearer("anything-at-all-0123")); r.status != http.StatusOK || string(r.body) != `{"status":"ok"}` {
		t.Errorf("health with a token while none is configured = %d %s", r.status, r.body)
	}
}

// checkMetrics fails unless body is the Prometheus registry.
func checkMetrics(t *testing.T, body string) {
	t.Helper()
	for _, want := range []string{"litehost_http_requests_total", "go_goroutines", "litehost_event_store_append_duration_seconds",
		"litehost_projection_lag_events"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestOperatorViewsNeedTheAdminToken checks /metrics and the detail of /health on the API
// listener: the token opens them, anyone else gets 401 or only up/down, also when a projector
// has failed (its last error stays with the operators).
func TestOperatorViewsNeedTheAdminToken(t *testing.T) {
	s := startServer(t, "", map[string]string{"LITEHOST_ADMIN_TOKEN": testAdminToken})
	s.do(http.MethodGet, "/health", nil, bearer(testAdminToken)) // computes the projector gauges
	for _, tt := range []struct {
		name string
		opts []reqOpt
		code string
	}{
		{"no token", nil, "ADMIN_TOKEN_MISSING"},
		{"wrong token", []reqOpt{bearer(testAdminToken + "x")}, "ADMIN_TOKEN_INVALID"},
		{"an API key's scheme", []reqOpt{header("Authorization", "Basic "+testAdminToken)}, "ADMIN_TOKEN_INVALID"},
	} {
		if r := s.do(http.MethodGet, "/metrics", nil, tt.opts...); r.status != http.StatusUnauthorized || r.code(t) != tt.code {
			t.Errorf("/metrics with %s = %d %.200s", tt.name, r.status, r.body)
		}
	}
	r := s.do(http.MethodGet, "/metrics", nil, bearer(testAdminToken))
	if r.status != http.StatusOK {
		t.Fatalf("/metrics with the token = %d", r.status)
	}
	checkMetrics(t, string(r.body))

	if r := s.do(http.MethodGet, "/health", nil, bearer(testAdminToken+"x")); r.status != http.StatusUnauthorized || r.code(t) != "ADMIN_TOKEN_INVALID" {
		t.Errorf("health with a wrong token = %d %s", r.status, r.body)
	}
	d := s.do(http.MethodGet, "/health", nil, bearer(testAdminToken))
	if m := d.json(t); d.status != http.StatusOK || m["status"] != "ok" || m["version"] == nil || len(m["projectors"].([]any)) == 0 ||
		m["checks"].(map[string]any)["database"] == nil {
		t.Errorf("health detail = %d %s", d.status, d.body)
	}

	// A projector that cannot apply an event fails: the public answer is 503 and says only that.
	appendEvent(t, s, "project-"+uuid.NewString(), events.ProjectCreated{ProjectID: "not-a-uuid", At: time.Now().UTC()})
	waitFor(t, func() bool { return s.do(http.MethodGet, "/health", nil).status == http.StatusServiceUnavailable })
	if r := s.do(http.MethodGet, "/health", nil); string(r.body) != `{"status":"degraded"}` {
		t.Errorf("public degraded health = %s", r.body)
	}
	d = s.do(http.MethodGet, "/health", nil, bearer(testAdminToken))
	if d.status != http.StatusServiceUnavailable || !strings.Contains(string(d.body), "lastError") {
		t.Errorf("degraded detail = %d %s", d.status, d.body)
	}
}

// TestOperatorListener checks LITEHOST_ADMIN_ADDR: the operators' listener serves /metrics and
// the whole /health without a token, and nothing else; the API listener still keeps both closed.
func TestOperatorListener(t *testing.T) {
	addr := freeAddr(t)
	s := startServer(t, "", map[string]string{"LITEHOST_ADMIN_ADDR": addr})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.app.serveAdmin(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("admin listener: %v", err)
		}
	})
	get := func(path string) (int, string) {
		t.Helper()
		var (
			resp *http.Response
			err  error
		)
		waitFor(t, func() bool { resp, err = http.Get("http://" + addr + path); return err == nil })
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/health"); code != http.StatusOK || !strings.Contains(body, `"projectors":[`) || !strings.Contains(body, `"checks":{`) {
		t.Errorf("admin /health = %d %s", code, body)
	}
	s.do(http.MethodGet, "/v1", nil) // one API request to count
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("admin /metrics = %d", code)
	}
	checkMetrics(t, body)
	if code, _ := get("/v1/projects"); code != http.StatusNotFound {
		t.Errorf("admin listener serves the API: %d", code)
	}
	if r := s.do(http.MethodGet, "/metrics", nil); r.status != http.StatusNotFound {
		t.Errorf("API listener /metrics = %d", r.status)
	}
	if r := s.do(http.MethodGet, "/health", nil); string(r.body) != `{"status":"ok"}` {
		t.Errorf("API listener health = %s", r.body)
	}
}
