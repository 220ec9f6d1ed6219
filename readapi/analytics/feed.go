package analytics

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/litehost/litehost/readapi"
)

// SubjectPrefix is the NATS subject prefix of the visit feed: one message per stored page view
// on "litehost.visits.<projectId>", its data the Visit JSON.
const SubjectPrefix = "litehost.visits"

// subscriberBuffer is how many visits an SSE client may fall behind before it misses some.
const subscriberBuffer = 256

// Feed publishes stored visits for analytics consumers: to NATS when it is configured, and to
// the SSE clients of GET /v1/visits/stream. With NATS the SSE clients read the NATS subject, so
// they see the visits of every instance; without it, those of this instance. Publishing never
// waits: a slow SSE client misses visits, and a NATS outage drops them (the table keeps them).
type Feed struct {
	nc        *nats.Conn
	tokenHash [32]byte
	enabled   bool
	logger    *slog.Logger
	dropped   prometheus.Counter

	mu   sync.Mutex
	subs map[chan Visit]string // channel → project filter ("" = all)

	done     chan struct{}
	doneOnce sync.Once
	hookOnce sync.Once
}

// NewFeed returns the feed. natsURL may be empty (no NATS); adminToken is LITEHOST_ADMIN_TOKEN,
// and while it is empty the SSE endpoint answers 404 like the event stream.
func NewFeed(natsURL, adminToken string, logger *slog.Logger) (*Feed, error) {
	f := &Feed{tokenHash: sha256.Sum256([]byte(adminToken)), enabled: adminToken != "", logger: logger,
		subs: map[chan Visit]string{}, done: make(chan struct{}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "litehost_analytics_feed_dropped_total",
			Help: "Visits not delivered to a feed consumer (a slow SSE client, or NATS unreachable).",
		})}
	if natsURL != "" {
		// Connecting in the background: a NATS outage at start must not stop the sites.
		nc, err := nats.Connect(natsURL, nats.Name("litehost-visits"), nats.RetryOnFailedConnect(true),
			nats.MaxReconnects(-1))
		if err != nil {
			return nil, fmt.Errorf("visit feed: connect NATS: %w", err)
		}
		f.nc = nc
		// The SSE clients read the subject (every instance's visits). The subscription is made
		// now and lives with the connection: nats.go resends it on every (re)connect.
		if _, err := nc.Subscribe(SubjectPrefix+".>", f.receive); err != nil {
			nc.Close()
			return nil, fmt.Errorf("visit feed: subscribe: %w", err)
		}
	}
	return f, nil
}

// Collectors are the feed's metrics.
func (f *Feed) Collectors() []prometheus.Collector { return []prometheus.Collector{f.dropped} }

// Close closes the NATS connection.
func (f *Feed) Close() {
	if f.nc != nil {
		f.nc.Close()
	}
}

// Publish sends visits to NATS, or straight to the SSE clients without it.
func (f *Feed) Publish(visits []Visit) {
	for _, v := range visits {
		if f.nc == nil {
			f.broadcast(v)
			continue
		}
		b, err := json.Marshal(v)
		if err == nil {
			err = f.nc.Publish(SubjectPrefix+"."+v.ProjectID, b)
		}
		if err != nil {
			f.dropped.Inc()
		}
	}
}

// receive hands a visit from NATS to the SSE clients.
func (f *Feed) receive(m *nats.Msg) {
	var v Visit
	if err := json.Unmarshal(m.Data, &v); err != nil {
		f.logger.Warn("visit feed: bad message", "subject", m.Subject, "error", err)
		return
	}
	f.broadcast(v)
}

func (f *Feed) broadcast(v Visit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch, project := range f.subs {
		if project != "" && project != v.ProjectID {
			continue
		}
		select {
		case ch <- v:
		default:
			f.dropped.Inc()
		}
	}
}

func (f *Feed) subscribe(project string) chan Visit {
	ch := make(chan Visit, subscriberBuffer)
	f.mu.Lock()
	f.subs[ch] = project
	f.mu.Unlock()
	return ch
}

func (f *Feed) unsubscribe(ch chan Visit) {
	f.mu.Lock()
	delete(f.subs, ch)
	f.mu.Unlock()
}

// Register adds GET /visits/stream to r (the /v1 group).
func (f *Feed) Register(r gin.IRoutes) {
	r.GET("/visits/stream", f.stream)
}

// Shutdown ends every open stream (the HTTP server calls it when it shuts down).
func (f *Feed) Shutdown() { f.doneOnce.Do(func() { close(f.done) }) }

// operatorAuthError refuses a request for its operator token: 401 with the code of the event
// stream's refusals (it converts to readapi.AuthError) and its own message.
type operatorAuthError struct{ code string }

func (e operatorAuthError) Error() string {
	if e.code == readapi.CodeAdminTokenMissing {
		return "This endpoint needs the operator token: send Authorization: Bearer <LITEHOST_ADMIN_TOKEN>."
	}
	return "The operator token is invalid."
}

// As makes errors.As(err, *readapi.AuthError) match.
func (e operatorAuthError) As(target any) bool {
	if t, ok := target.(*readapi.AuthError); ok {
		*t = readapi.AuthError{Code: e.code}
		return true
	}
	return false
}

// authorize checks the bearer operator token in constant time, over hashes, like the event
// stream; while no token is configured the endpoint does not exist.
func (f *Feed) authorize(c *gin.Context) error {
	if !f.enabled {
		return readapi.ErrNotFound
	}
	auth := c.GetHeader("Authorization")
	if auth == "" {
		return operatorAuthError{readapi.CodeAdminTokenMissing}
	}
	scheme, tok, ok := strings.Cut(auth, " ")
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], f.tokenHash[:]) != 1 {
		return operatorAuthError{readapi.CodeAdminTokenInvalid}
	}
	return nil
}

// heartbeat keeps an idle stream open through proxies.
const heartbeat = 15 * time.Second

// stream is GET /v1/visits/stream: live visits as SSE, "event: visit", data the Visit JSON.
func (f *Feed) stream(c *gin.Context) {
	if err := f.authorize(c); err != nil {
		_ = c.Error(err)
		return
	}
	project := c.Query("projectId")
	if project != "" && uuid.Validate(project) != nil {
		_ = c.Error(readapi.InvalidQuery{"projectId": "must be a UUID"})
		return
	}
	if srv, ok := c.Request.Context().Value(http.ServerContextKey).(*http.Server); ok {
		f.hookOnce.Do(func() { srv.RegisterOnShutdown(f.Shutdown) })
	}
	ch := f.subscribe(project)
	defer f.unsubscribe(ch)

	w := c.Writer
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(text string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := w.WriteString(text); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 2000\n: connected\n\n") {
		return
	}
	hb := time.NewTicker(heartbeat)
	defer hb.Stop()
	ctx := c.Request.Context()
	for {
		select {
		case v := <-ch:
			b, err := json.Marshal(v)
			if err != nil {
				f.logger.Error("encode visit", "error", err)
				return
			}
			if !write("event: visit\ndata: " + string(b) + "\n\n") {
				return
			}
		case <-hb.C:
			if !write(": heartbeat\n\n") {
				return
			}
		case <-f.done:
			return
		case <-ctx.Done():
			return
		}
	}
}
