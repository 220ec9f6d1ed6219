package process

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// InFlight tracks the event a process manager is handling, for a lag gauge. A process manager
// handles one event at a time in log order, so the event in hand is the oldest one not yet done:
// its age is how far the process is behind (0 while idle). It grows while a delivery is being
// retried, which is what an alert wants to see.
type InFlight struct {
	mu      sync.Mutex
	created time.Time
	now     func() time.Time
}

// NewInFlight returns a tracker on the clock now (time.Now when nil).
func NewInFlight(now func() time.Time) *InFlight {
	if now == nil {
		now = time.Now
	}
	return &InFlight{now: now}
}

// Begin records that an event created at created is in hand; the returned func ends it.
func (f *InFlight) Begin(created time.Time) func() {
	f.mu.Lock()
	f.created = created
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.created = time.Time{}
		f.mu.Unlock()
	}
}

// Age is the age in seconds of the event in hand, 0 when there is none.
func (f *InFlight) Age() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.created.IsZero() {
		return 0
	}
	return max(f.now().Sub(f.created).Seconds(), 0)
}

// Gauge is a gauge reading Age at every scrape.
func (f *InFlight) Gauge(name, help string) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f.Age)
}
