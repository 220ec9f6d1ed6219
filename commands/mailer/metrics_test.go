package mailer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/litehost/litehost/commands/mailer"
	"github.com/litehost/litehost/events/pgtest"
)

// flakySender fails until ok is set: the provider being down.
type flakySender struct{ ok atomic.Bool }

func (s *flakySender) Send(context.Context, mailer.Message) error {
	if !s.ok.Load() {
		return errors.New("provider down")
	}
	return nil
}

// sample sums every sample of name in reg.
func sample(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	pgtest.Must(t, err, "gather")
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// While the provider is down the backlog (age of the undelivered code) grows and each failed
// attempt counts; once it is back the code is sent and the backlog drops to 0.
func TestMailerMetricsShowBacklogWhileTheProviderIsDown(t *testing.T) {
	w := newWorld(t, true)
	sender := &flakySender{}
	m := w.mailer(t, mailer.Config{Email: sender, AutoCreate: true}, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	pgtest.Background(t, m.Run)

	w.request(t, email("down@example.com"), "signin")
	pgtest.Eventually(t, func() (bool, string) {
		return sample(t, reg, "litehost_mailer_failed_total") >= 2 && sample(t, reg, "litehost_mailer_backlog_seconds") > 0,
			"no failed attempts or backlog while the provider is down"
	})
	time.Sleep(20 * time.Millisecond)
	if b := sample(t, reg, "litehost_mailer_backlog_seconds"); b <= 0 {
		t.Errorf("backlog = %v while undelivered", b)
	}
	sender.ok.Store(true)
	pgtest.Eventually(t, func() (bool, string) {
		return sample(t, reg, "litehost_mailer_sent_total") == 1 && sample(t, reg, "litehost_mailer_backlog_seconds") == 0,
			"the code was not counted as sent, or the backlog stayed"
	})
}
