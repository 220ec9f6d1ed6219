package readapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/public"
)

// Codes of the operator-token errors (AdminToken: the event stream, /metrics, the /health
// detail; 401, like AuthError).
const (
	CodeAdminTokenMissing = "ADMIN_TOKEN_MISSING"
	CodeAdminTokenInvalid = "ADMIN_TOKEN_INVALID"
)

// DefaultHeartbeat is how often an idle event stream sends a comment, so proxies and clients
// keep the connection open and a dead client is noticed.
const DefaultHeartbeat = 15 * time.Second

// adminAuthError refuses a request for its operator token. It converts to AuthError (errors.As),
// so the one error middleware answers 401 with its code, and keeps its own message.
type adminAuthError struct{ code string }

func (e adminAuthError) Error() string {
	if e.code == CodeAdminTokenMissing {
		return "This endpoint needs the operator token: send Authorization: Bearer <LITEHOST_ADMIN_TOKEN>."
	}
	return "The operator token is invalid."
}

// As makes errors.As(err, *AuthError) match.
func (e adminAuthError) As(target any) bool {
	if t, ok := target.(*AuthError); ok {
		*t = AuthError{Code: e.code}
		return true
	}
	return false
}

// EventLog is the part of events.Store the event stream reads.
type EventLog interface {
	SubscribeAll(ctx context.Context, from events.Position, filter events.Filter) (events.Subscription, error)
}

// StreamEvent is one event of the global log as it leaves the service (the public contract of
// package events/public): the SSE data of GET /v1/events/stream and a line of
// `litehost events tail --json`.
type StreamEvent struct {
	ID        string          `json:"id"`
	Stream    string          `json:"stream"`
	Version   uint64          `json:"version"`
	Type      string          `json:"type"`
	Position  string          `json:"position"`
	CreatedAt Time            `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
	Metadata  public.Metadata `json:"metadata"`
}

// NewStreamEvent converts a recorded event to its public form; false when its type never leaves
// the service (public.Private, or a type this build does not know).
func NewStreamEvent(rec events.RecordedEvent) (StreamEvent, bool, error) {
	ev, ok, err := public.FromRecord(rec)
	if !ok || err != nil {
		return StreamEvent{}, ok, err
	}
	return StreamEvent{
		ID: ev.ID, Stream: ev.Stream, Version: ev.Version, Type: ev.Type, Position: ev.Position.String(),
		CreatedAt: Time(ev.CreatedAt), Data: ev.Data, Metadata: ev.Metadata,
	}, true, nil
}

// ParseTypePrefixes reads a comma-separated list of event-type prefixes ("project.,account.").
// Blank items are dropped; an item with characters outside [A-Za-z0-9._-] is an error.
func ParseTypePrefixes(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		for _, r := range p {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return nil, fmt.Errorf("type prefix %q: only letters, digits, '.', '_' and '-'", p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// EventStream serves GET /v1/events/stream: the global log as Server-Sent Events for operators.
type EventStream struct {
	log       EventLog
	admin     AdminToken
	heartbeat time.Duration
	logger    *slog.Logger

	// done is closed when the HTTP server shuts down: streams never go idle by themselves, so
	// without it http.Server.Shutdown would wait for every open stream until its deadline.
	hookOnce sync.Once
	done     chan struct{}
	doneOnce sync.Once
}

// NewEventStream returns the stream over log. adminToken is LITEHOST_ADMIN_TOKEN; when it is
// empty the endpoint answers 404, as if it did not exist. heartbeat <= 0 means DefaultHeartbeat.
func NewEventStream(log EventLog, adminToken string, heartbeat time.Duration, logger *slog.Logger) *EventStream {
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	return &EventStream{
		log: log, admin: NewAdminToken(adminToken),
		heartbeat: heartbeat, logger: logger.With("component", "event-stream"), done: make(chan struct{}),
	}
}

// Register adds GET /events/stream to r.
func (s *EventStream) Register(r gin.IRoutes) {
	r.GET("/events/stream", s.stream)
}

// Shutdown ends every open stream; the HTTP server calls it when it shuts down.
func (s *EventStream) Shutdown() {
	s.doneOnce.Do(func() { close(s.done) })
}

// streamQuery is the parsed request: where to start and which types to send.
func streamQuery(c *gin.Context) (events.Position, events.Filter, error) {
	bad := InvalidQuery{}
	var filter events.Filter
	if raw, ok := c.GetQuery("types"); ok {
		prefixes, err := ParseTypePrefixes(raw)
		if err != nil {
			bad["types"] = err.Error()
		}
		filter.TypePrefixes = prefixes
	}
	from := events.Start
	// A reconnecting EventSource repeats the original URL, so Last-Event-ID wins over from.
	if id := c.GetHeader("Last-Event-ID"); id != "" {
		p, err := events.ParsePosition(id)
		if err != nil {
			bad["Last-Event-ID"] = "want a position commit/prepare, as sent in the id field"
		}
		from = p
	} else if raw := c.Query("from"); raw != "" {
		p, err := events.ParsePosition(raw)
		if err != nil {
			bad["from"] = "want a position commit/prepare (e.g. 0/0 for the start of the log)"
		}
		from = p
	}
	if len(bad) > 0 {
		return events.Position{}, events.Filter{}, bad
	}
	return from, filter, nil
}

func (s *EventStream) stream(c *gin.Context) {
	if err := s.admin.Check(c.Request); err != nil {
		_ = c.Error(err)
		return
	}
	from, filter, err := streamQuery(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	s.hookShutdown(c.Request.Context())
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	sub, err := s.log.SubscribeAll(ctx, from, filter)
	if err != nil {
		_ = c.Error(fmt.Errorf("subscribe: %w", err))
		return
	}
	defer sub.Close()

	w := c.Writer
	rc := http.NewResponseController(w)
	// The server's read and write timeouts fit requests, not a stream that lasts for hours; each
	// write below sets its own deadline instead.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx would otherwise buffer the stream
	w.WriteHeader(http.StatusOK)
	log := s.logger.With("from", from.String(), "types", filter.TypePrefixes)
	log.Info("event stream opened")
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
	hb := time.NewTicker(s.heartbeat)
	defer hb.Stop()
	for {
		select {
		case rec, ok := <-sub.Events():
			if !ok {
				if err := sub.Err(); err != nil && ctx.Err() == nil {
					log.Error("event stream subscription ended", "error", err)
				}
				return
			}
			ev, ok, err := NewStreamEvent(rec)
			if err != nil {
				// Data and metadata come from the store as JSON; a failure is a corrupt event.
				log.Error("encode event", "error", err, "position", rec.Position.String())
				return
			}
			if !ok {
				continue // private: never leaves the service
			}
			data, err := json.Marshal(ev)
			if err != nil {
				log.Error("encode event", "error", err, "position", rec.Position.String())
				return
			}
			// Types and positions hold no newlines (ParseTypePrefixes and Position.String), and
			// json.Marshal escapes them in data, so every field stays on its one line.
			if !write("id: " + rec.Position.String() + "\nevent: " + oneLine(rec.Type) + "\ndata: " + string(data) + "\n\n") {
				return
			}
			hb.Reset(s.heartbeat)
		case <-hb.C:
			if !write(": heartbeat\n\n") {
				return
			}
		case <-s.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// hookShutdown registers Shutdown with the *http.Server serving the request, once.
func (s *EventStream) hookShutdown(ctx context.Context) {
	srv, ok := ctx.Value(http.ServerContextKey).(*http.Server)
	if !ok {
		return
	}
	s.hookOnce.Do(func() { srv.RegisterOnShutdown(s.Shutdown) })
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
