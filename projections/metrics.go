package projections

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per Runner (never the global registry), registered by the composition root.
type metrics struct {
	lagEvents  *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	applied    *prometheus.CounterVec
	failures   *prometheus.CounterVec
	failed     *prometheus.GaugeVec
}

func newMetrics() *metrics {
	label := []string{"projector"}
	return &metrics{
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "litehost_projection_lag_events",
			Help: "Events in the log after the projector's checkpoint (capped when the store cannot count).",
		}, label),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "litehost_projection_lag_seconds",
			Help: "Age of the oldest event the projector has not applied yet; 0 when caught up.",
		}, label),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_projection_events_applied_total",
			Help: "Events applied to the projector's read model by this instance.",
		}, label),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_projection_failures_total",
			Help: "Times the projector stopped on an event it could not apply.",
		}, label),
		failed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "litehost_projection_failed",
			Help: "1 while the projector is stopped in state failed.",
		}, label),
	}
}

// Collectors returns the Runner's Prometheus collectors.
func (r *Runner) Collectors() []prometheus.Collector {
	m := r.metrics
	return []prometheus.Collector{m.lagEvents, m.lagSeconds, m.applied, m.failures, m.failed}
}

// Register registers the Runner's collectors with reg.
func (r *Runner) Register(reg prometheus.Registerer) error {
	var errs []error
	for _, c := range r.Collectors() {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
