package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/litehost/litehost/events"
)

// meteredStore counts appends and their latency (DESIGN §11: /metrics covers appends). It wraps
// the configured event store and passes everything else through.
type meteredStore struct {
	events.Store
	appends  *prometheus.CounterVec
	appended prometheus.Counter
	latency  prometheus.Histogram
}

func newMeteredStore(s events.Store, kind string, reg prometheus.Registerer) *meteredStore {
	labels := prometheus.Labels{"store": kind}
	m := &meteredStore{
		Store: s,
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_event_store_appends_total", ConstLabels: labels,
			Help: "Appends to the event store by outcome (ok, conflict, error).",
		}, []string{"outcome"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "litehost_event_store_events_appended_total", ConstLabels: labels,
			Help: "Events written by successful appends (idempotent resends included).",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "litehost_event_store_append_duration_seconds", ConstLabels: labels,
			Help:    "Latency of event store appends.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	reg.MustRegister(m.appends, m.appended, m.latency)
	return m
}

// Append implements events.Store.
func (m *meteredStore) Append(ctx context.Context, stream string, expected events.Expected, evs []events.EventData) (events.AppendResult, error) {
	start := time.Now()
	res, err := m.Store.Append(ctx, stream, expected, evs)
	m.latency.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		m.appends.WithLabelValues("ok").Inc()
		m.appended.Add(float64(len(evs)))
	case errors.Is(err, events.ErrWrongExpectedVersion):
		m.appends.WithLabelValues("conflict").Inc()
	default:
		m.appends.WithLabelValues("error").Inc()
	}
	return res, err
}
