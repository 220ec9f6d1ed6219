package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/litehost/litehost/events"
)

// requestMetadata stamps every request with the metadata its events will carry (DESIGN §2):
// request and correlation IDs (taken from the client when well-formed), the client IP as seen
// through the trusted proxies, the user agent, and the channel (api, or mcp for the connector's
// calls, marked in the context by the connector itself). The actor starts anonymous; authentication
// replaces it.
func requestMetadata() gin.HandlerFunc {
	return func(c *gin.Context) {
		reqID := c.GetHeader("X-Request-ID")
		if !safeID(reqID) {
			reqID = uuid.NewString()
		}
		corr := c.GetHeader("X-Correlation-ID")
		if !safeID(corr) {
			corr = reqID
		}
		ua := c.Request.UserAgent()
		if len(ua) > 512 {
			ua = ua[:512]
		}
		md := events.Metadata{
			CorrelationID: corr,
			Actor:         events.ActorAnonymous,
			RequestID:     reqID,
			ClientIP:      c.ClientIP(),
			UserAgent:     ua,
			Channel:       events.ChannelFrom(c.Request.Context()),
		}
		c.Header("X-Request-ID", reqID)
		c.Request = c.Request.WithContext(events.WithMetadata(c.Request.Context(), md))
		c.Next()
	}
}

func safeID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// httpMetrics counts requests and their latency by route (the pattern, never the raw path, so
// the label set stays bounded).
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "litehost_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *httpMetrics) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Inc()
		m.latency.WithLabelValues(c.Request.Method, route).Observe(time.Since(start).Seconds())
	}
}

// noStore marks every /v1 answer Cache-Control: no-store. API answers are per caller, and some
// carry an API key, a refresh token or a claim token shown once: no shared or browser cache may
// keep them. Setting it on every answer (errors too) means no new route can forget it.
func noStore() gin.HandlerFunc {
	return func(c *gin.Context) {
		if p := c.Request.URL.Path; p == "/v1" || strings.HasPrefix(p, "/v1/") {
			c.Header("Cache-Control", "no-store")
		}
		c.Next()
	}
}
