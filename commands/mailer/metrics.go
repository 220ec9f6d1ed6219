package mailer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/litehost/litehost/commands/process"
)

// metrics are per Mailer (never the global registry); the composition root registers them.
type metrics struct {
	sent     *prometheus.CounterVec
	failed   *prometheus.CounterVec
	inFlight *process.InFlight
	backlog  prometheus.GaugeFunc
}

func newMetrics(m *Mailer) *metrics {
	in := process.NewInFlight(m.cfg.Now)
	return &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_mailer_sent_total",
			Help: "Sign-in codes delivered to the e-mail or SMS provider, by channel.",
		}, []string{"channel"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_mailer_failed_total",
			Help: "Failed deliveries by channel and reason: retry (an attempt failed and is retried), refused (given up for good), expired (the code expired first).",
		}, []string{"channel", "reason"}),
		inFlight: in,
		backlog: in.Gauge("litehost_mailer_backlog_seconds",
			"Age of the oldest sign-in code not delivered yet on this instance; 0 when none is waiting."),
	}
}

// Collectors returns the mailer's Prometheus collectors.
func (m *Mailer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.metrics.sent, m.metrics.failed, m.metrics.backlog}
}
