package main

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metricValue is the sum of every sample of name whose labels contain each of labels
// (e.g. `class="2xx"`), read from a Prometheus text exposition.
func metricValue(body, name string, labels ...string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	sum, found := 0.0, false
next:
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		for _, l := range labels {
			if !strings.Contains(m[1], l) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// TestMonitoringMetricsAfterActivity signs in (the mailer sends a code), creates a site and
// fetches it and a missing page (the site server), with the NATS forwarder running, then reads
// /metrics with the operator token and finds each of them counted.
func TestMonitoringMetricsAfterActivity(t *testing.T) {
	s, mb := startWithMail(t, "", map[string]string{
		"LITEHOST_ADMIN_TOKEN": testAdminToken,
		"LITEHOST_NATS_URL":    "nats://127.0.0.1:4222",
	})
	key := signIn(t, s, mb, "metrics@example.com")["apiKey"].(string)
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Metered"},
		[]upload{{"index.html", []byte("<h1>metered</h1>")}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	slug := r.data(t)["slug"].(string)
	if code, body, _ := s.site(slug, "/"); code != http.StatusOK || !strings.Contains(body, "metered") {
		t.Fatalf("site / = %d %s", code, body)
	}
	if code, _, _ := s.site(slug, "/missing.html"); code != http.StatusNotFound {
		t.Fatalf("site /missing.html = %d, want 404", code)
	}

	var body string
	scrape := func() string {
		r := s.do(http.MethodGet, "/metrics", nil, bearer(testAdminToken))
		if r.status != http.StatusOK {
			t.Fatalf("/metrics = %d %.200s", r.status, r.body)
		}
		return string(r.body)
	}
	// The forwarder publishes off the request path: wait for it to have caught up with the
	// sign-in and the project.
	deadline := time.Now().Add(10 * time.Second)
	for body = scrape(); time.Now().Before(deadline); body = scrape() {
		if v, _ := metricValue(body, "litehost_forwarder_events_total", `outcome="published"`); v >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"litehost_mailer_sent_total", []string{`channel="email"`}, 1},
		{"litehost_mailer_failed_total", nil, 0},
		{"litehost_mailer_backlog_seconds", nil, 0},
		{"litehost_forwarder_events_total", []string{`outcome="published"`}, 2},
		{"litehost_forwarder_lag_seconds", nil, 0},
		{"litehost_site_requests_total", []string{`class="2xx"`}, 1},
		{"litehost_site_requests_total", []string{`class="4xx"`}, 1},
		{"litehost_site_response_bytes_total", nil, float64(len("<h1>metered</h1>"))},
		{"litehost_site_request_duration_seconds_count", nil, 2},
		{"litehost_projection_lag_seconds", nil, 0},
		{"litehost_projection_failed", nil, 0},
	} {
		v, ok := metricValue(body, c.name, c.labels...)
		if c.name == "litehost_mailer_failed_total" {
			// A counter vector has no series until a failure: absent is the expected value.
			ok = true
		}
		if !ok || v < c.min {
			t.Errorf("%s%v = %v (present %v), want ≥ %v", c.name, c.labels, v, ok, c.min)
		}
	}
	// Idle after the run: nothing in hand, so no backlog or lag.
	for _, g := range []string{"litehost_mailer_backlog_seconds", "litehost_forwarder_lag_seconds"} {
		if v, _ := metricValue(body, g); v != 0 {
			t.Errorf("%s = %v while idle, want 0", g, v)
		}
	}
}
