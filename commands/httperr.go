package commands

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/events"
)

// HTTPError is a transport-level failure that carries its own status and code: malformed
// requests, rate limits and the like. Business-rule errors are domain.Error values instead, mapped
// to statuses in one table by the composition root.
type HTTPError struct {
	Status  int
	Code    string
	Message string
	// Details are extra top-level fields of the error envelope (htmlPaths, attemptsLeft, …).
	Details map[string]any
	// RetryAfter, when set, becomes the Retry-After header and retryAfterSeconds.
	RetryAfter time.Duration
	// Limit, Remaining and Reset fill the X-RateLimit-* headers of a rate-limited answer.
	Limit, Remaining int
	Reset            time.Time
}

// Error implements error with the code and message.
func (e *HTTPError) Error() string { return e.Code + ": " + e.Message }

// BadRequest reports a body that could not be parsed at all (not JSON, not multipart).
func BadRequest(code, msg string) *HTTPError {
	return &HTTPError{Status: http.StatusBadRequest, Code: code, Message: msg}
}

// RateLimited reports a request over a limit, retryable after d.
func RateLimited(code, msg string, d time.Duration, limit int, reset time.Time) *HTTPError {
	return &HTTPError{Status: http.StatusTooManyRequests, Code: code, Message: msg, RetryAfter: d, Limit: limit, Reset: reset}
}

// Headers returns the headers that go with the error (Retry-After, X-RateLimit-*).
func (e *HTTPError) Headers() http.Header {
	h := http.Header{}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(RetrySeconds(e.RetryAfter)))
	}
	if e.Limit > 0 {
		h.Set("X-RateLimit-Limit", strconv.Itoa(e.Limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(e.Remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(e.Reset.Unix(), 10))
	}
	return h
}

// RetrySeconds rounds a wait up to whole seconds, never below 1.
func RetrySeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Waiter blocks until the read models have applied the event at pos (read-your-writes).
type Waiter interface {
	WaitFor(ctx context.Context, pos events.Position) error
}

// ConsistencyHeader is set to "pending" on a write answer whose read models had not caught up
// within the wait bound; reads may then briefly miss the write.
const ConsistencyHeader = "X-Litehost-Consistency"

// Reply waits until the read models have seen pos (when non-zero) and writes the success envelope.
// A timeout still answers: the write is durable, only its projection is late, and the header says so.
func Reply(c *gin.Context, w Waiter, pos events.Position, status int, data any) {
	if !pos.IsZero() && w != nil {
		if err := w.WaitFor(c.Request.Context(), pos); err != nil {
			if errors.Is(c.Request.Context().Err(), context.Canceled) {
				return // the client went away; nobody reads the answer
			}
			c.Header(ConsistencyHeader, "pending")
		}
	}
	c.JSON(status, gin.H{"status": "success", "data": data})
}
