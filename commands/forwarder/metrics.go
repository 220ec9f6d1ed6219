package forwarder

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/litehost/litehost/commands/process"
)

// metrics are per Forwarder (never the global registry); the composition root registers them.
type metrics struct {
	forwarded *prometheus.CounterVec
	failed    *prometheus.CounterVec
	inFlight  *process.InFlight
	lag       prometheus.GaugeFunc
}

func newMetrics() *metrics {
	in := process.NewInFlight(nil)
	return &metrics{
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_forwarder_events_total",
			Help: "Events passed by the NATS forwarder by outcome: published (acknowledged by JetStream) or skipped (private events).",
		}, []string{"outcome"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_forwarder_failures_total",
			Help: "Failed forwarder attempts by stage (connect, stream, publish); each is retried with backoff.",
		}, []string{"stage"}),
		inFlight: in,
		lag: in.Gauge("litehost_forwarder_lag_seconds",
			"Age of the event the forwarder is publishing (retries included); 0 when idle."),
	}
}

// Collectors returns the forwarder's Prometheus collectors.
func (f *Forwarder) Collectors() []prometheus.Collector {
	return []prometheus.Collector{f.metrics.forwarded, f.metrics.failed, f.metrics.lag}
}
