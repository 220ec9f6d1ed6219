package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// siteMetrics measure the site server (hosted sites, not the API, which httpMetrics covers):
// requests by status class rather than by site or path, so the series stay few however many
// sites there are.
type siteMetrics struct {
	requests *prometheus.CounterVec
	bytes    prometheus.Counter
	latency  prometheus.Histogram
}

func newSiteMetrics(reg prometheus.Registerer) *siteMetrics {
	m := &siteMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_site_requests_total", Help: "Site server requests by status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"class"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "litehost_site_response_bytes_total", Help: "Body bytes the site server sent.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "litehost_site_request_duration_seconds", Help: "Site server latency, first byte to last.",
			Buckets: prometheus.DefBuckets,
		}),
	}
	reg.MustRegister(m.requests, m.bytes, m.latency)
	return m
}

// wrap measures h.
func (m *siteMetrics) wrap(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request)) {
	start := time.Now()
	cw := &countingWriter{ResponseWriter: w}
	h(cw, r)
	status := cw.status
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(strconv.Itoa(status/100) + "xx").Inc()
	m.bytes.Add(float64(cw.n))
	m.latency.Observe(time.Since(start).Seconds())
}

// countingWriter records the status and counts the body bytes. Unwrap keeps
// http.ResponseController (flush, deadlines) working through it.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
