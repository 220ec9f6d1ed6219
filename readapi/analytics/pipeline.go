package analytics

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Hit is one page request as the site server saw it, copied out of the request so that the
// request can end before the hit is looked at. Nothing here is parsed on the serving path.
type Hit struct {
	Slug         string
	Host         string // the Host the browser asked for (a custom domain stays itself)
	Path         string
	At           time.Time
	UserAgent    string
	Referrer     string
	RemoteAddr   string
	ForwardedFor string
	OwnerCookie  string
}

// Sink stores a batch of hits; the pipeline calls it from one goroutine.
type Sink interface {
	Store(ctx context.Context, hits []Hit) error
}

// storeTimeout bounds one batch write.
const storeTimeout = 10 * time.Second

// Pipeline defaults.
const (
	DefaultBuffer = 8192
	DefaultBatch  = 500
	DefaultFlush  = 500 * time.Millisecond
)

// Pipeline is the bounded hand-off between the site server and the visit store: Offer never
// blocks (a full buffer drops the hit and counts it), Run drains the buffer in batches.
type Pipeline struct {
	hits     chan Hit
	sink     Sink
	batch    int
	flush    time.Duration
	dropped  *prometheus.CounterVec
	droppedN atomic.Int64
	queued   prometheus.GaugeFunc
	logger   *slog.Logger
}

// PipelineConfig sizes a Pipeline; zero fields take the defaults.
type PipelineConfig struct {
	Buffer int           // hits waiting at most (DefaultBuffer)
	Batch  int           // hits per Store call at most (DefaultBatch)
	Flush  time.Duration // how long a hit waits for its batch to fill at most (DefaultFlush)
}

// Reasons a hit is dropped, the label of litehost_analytics_hits_dropped_total.
const (
	DropQueueFull   = "queue_full"
	DropStoreFailed = "store_failed"
)

// NewPipeline returns a pipeline into sink.
func NewPipeline(sink Sink, cfg PipelineConfig, logger *slog.Logger) *Pipeline {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Flush <= 0 {
		cfg.Flush = DefaultFlush
	}
	p := &Pipeline{
		hits: make(chan Hit, cfg.Buffer), sink: sink, batch: cfg.Batch, flush: cfg.Flush, logger: logger,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_analytics_hits_dropped_total",
			Help: "Page requests not recorded: the buffer was full (queue_full) or the store failed (store_failed).",
		}, []string{"reason"}),
	}
	p.queued = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "litehost_analytics_hits_queued",
		Help: "Page requests waiting to be recorded.",
	}, func() float64 { return float64(len(p.hits)) })
	p.dropped.WithLabelValues(DropQueueFull)
	p.dropped.WithLabelValues(DropStoreFailed)
	return p
}

// Collectors are the pipeline's metrics, for the instance's registry.
func (p *Pipeline) Collectors() []prometheus.Collector {
	return []prometheus.Collector{p.dropped, p.queued}
}

// Dropped is the number of hits dropped so far, for every reason.
func (p *Pipeline) Dropped() int64 { return p.droppedN.Load() }

func (p *Pipeline) drop(reason string, n int) {
	p.dropped.WithLabelValues(reason).Add(float64(n))
	p.droppedN.Add(int64(n))
}

// Offer hands h to the writer, or drops it when the buffer is full. It never blocks: recording
// must never slow a page down.
func (p *Pipeline) Offer(h Hit) bool {
	select {
	case p.hits <- h:
		return true
	default:
		p.drop(DropQueueFull, 1)
		return false
	}
}

// Run stores hits in batches until ctx ends, then stores what is still buffered and returns nil.
func (p *Pipeline) Run(ctx context.Context) error {
	batch := make([]Hit, 0, p.batch)
	timer := time.NewTimer(p.flush)
	timer.Stop()
	// A batch in flight when ctx ends is still stored: each Store gets its own bounded context,
	// detached from ctx, so shutting down never throws away views already taken from the buffer.
	store := func() {
		if len(batch) == 0 {
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		if err := p.sink.Store(sctx, batch); err != nil {
			p.drop(DropStoreFailed, len(batch))
			p.logger.Warn("store visits", "error", err, "hits", len(batch))
		}
		batch = batch[:0]
	}
	for {
		select {
		case h := <-p.hits:
			if len(batch) == 0 {
				timer.Reset(p.flush)
			}
			batch = append(batch, h)
			if len(batch) >= p.batch {
				timer.Stop()
				store()
			}
		case <-timer.C:
			store()
		case <-ctx.Done():
			timer.Stop()
			// At most one buffer's worth: views still arriving while the server stops are dropped.
			for i, drained := 0, false; i < cap(p.hits) && !drained; i++ {
				select {
				case h := <-p.hits:
					batch = append(batch, h)
					if len(batch) >= p.batch {
						store()
					}
				default:
					drained = true
				}
			}
			store()
			return nil
		}
	}
}
