package commands

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
)

// WriteRoute is what the write middleware (Idempotency) must know about one route before it
// reads a byte of its body.
type WriteRoute struct {
	// MaxBody is the route's own body limit in bytes; a larger body is refused with 413 before
	// it is hashed, stored or handed to the handler.
	MaxBody int64
	// Upload marks a streamed multipart upload: its body is never read into memory; with an
	// Idempotency-Key it is spooled to disk to be fingerprinted. Every other body is small and
	// read into memory (at most MaxBody).
	Upload bool
	// SecretAnswer marks an answer that carries a secret shown once (a claim token): it is never
	// stored, a replay runs the handler again (see SecretAnswers).
	SecretAnswer bool
}

// WriteRoutes declares every write route by method and gin route template, e.g.
// "PATCH /v1/projects/:id". The composition root fills it; a test there checks that every
// served write route has a row.
type WriteRoutes map[string]WriteRoute

// defaultMaxBody limits a write route missing from the table: small, so a forgotten row fails
// loudly (413 on a real body) rather than opening a spool.
const defaultMaxBody = 4 << 10

// Route returns the row of a request's matched route.
func (t WriteRoutes) Route(method, fullPath string) WriteRoute {
	if r, ok := t[method+" "+fullPath]; ok {
		return r
	}
	return WriteRoute{MaxBody: defaultMaxBody}
}

// bodyTooLarge is the 413 of a body over its route's limit. Uploads answer in the upload
// package's terms (UPLOAD_TOO_LARGE, limit requestBytes) as they do when the parser sees it.
func bodyTooLarge(r WriteRoute) *HTTPError {
	if r.Upload {
		return &HTTPError{Status: http.StatusRequestEntityTooLarge, Code: "UPLOAD_TOO_LARGE",
			Message: "request body is larger than the upload limit",
			Details: map[string]any{"limit": "requestBytes", "max": r.MaxBody}}
	}
	return &HTTPError{Status: http.StatusRequestEntityTooLarge, Code: "BODY_TOO_LARGE",
		Message: "the request body is larger than this endpoint accepts (" + strconv.FormatInt(r.MaxBody, 10) + " bytes)",
		Details: map[string]any{"max": r.MaxBody}}
}

// limitBody applies the route's limit. A small body is read whole (so a chunked body cannot run
// past the limit in a handler) and returned; an upload keeps streaming behind
// http.MaxBytesReader, refused at once when its declared length is already too large.
func limitBody(c *gin.Context, r WriteRoute) ([]byte, error) {
	req := c.Request
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if req.ContentLength > r.MaxBody {
		return nil, bodyTooLarge(r)
	}
	req.Body = http.MaxBytesReader(c.Writer, req.Body, r.MaxBody)
	if r.Upload {
		return nil, nil
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, readBodyError(r, err)
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// readBodyError turns a failed body read into its answer: over the limit is 413, anything
// else (the client went away mid-body) a 400.
func readBodyError(r WriteRoute, err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return bodyTooLarge(r)
	}
	return BadRequest("BAD_REQUEST", "could not read the request body")
}
