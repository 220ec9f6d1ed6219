package commands_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/customdomain"
	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/domain/slug"
	"github.com/litehost/litehost/domain/workspace"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/projections"
	"github.com/litehost/litehost/readapi"
)

// newMigratedStore creates a database for t with the event store, the read models and the
// command-side tables, and returns a pool on it and the PostgreSQL event store.
func newMigratedStore(t *testing.T, logger *slog.Logger) (*pgxpool.Pool, *pgstore.Store) {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := pgstore.New(pool, logger)
	pgtest.Must(t, store.Migrate(t.Context()), "migrate store")
	pgtest.Must(t, projections.Migrate(t.Context(), pool), "migrate projections")
	pgtest.Must(t, commands.Migrate(t.Context(), pool), "migrate commands")
	return pool, store
}

// appendEvents appends evs to stream as the system and returns the position of the last.
func appendEvents(t *testing.T, store *pgstore.Store, stream string, evs ...events.Event) events.Position {
	t.Helper()
	data := make([]events.EventData, len(evs))
	for i, ev := range evs {
		d, err := events.Encode(ev, uuid.New(), events.Metadata{Actor: "system:test"})
		pgtest.Must(t, err, "encode")
		data[i] = d
	}
	res, err := store.Append(t.Context(), stream, events.Any(), data)
	pgtest.Must(t, err, "append to %s", stream)
	return res.Position
}

// testRules mirrors cmd/litehost's ruleStatus for the rules these tests meet.
var testRules = map[domain.Error]struct {
	status int
	code   string
}{
	project.ErrNotFound:                {404, "NOT_FOUND"},
	project.ErrFreeTier:                {403, "FREE_TIER_RESTRICTED"},
	project.ErrArchived:                {409, "PROJECT_ARCHIVED"},
	project.ErrProjectLimit:            {403, "PROJECT_LIMIT_REACHED"},
	project.ErrStorageLimit:            {403, "STORAGE_LIMIT_REACHED"},
	project.ErrFileLimit:               {403, "FILE_LIMIT_REACHED"},
	project.ErrAlreadyClaimed:          {409, "ALREADY_CLAIMED"},
	slug.ErrTaken:                      {409, "SLUG_TAKEN"},
	workspace.ErrNotFound:              {404, "NOT_FOUND"},
	customdomain.ErrNotFound:           {404, "NOT_FOUND"},
	customdomain.ErrTaken:              {409, "DOMAIN_TAKEN"},
	customdomain.ErrInUse:              {409, "DOMAIN_IN_USE"},
	customdomain.ErrNotActive:          {422, "DOMAIN_NOT_ACTIVE"},
	customdomain.ErrVerificationFailed: {422, "DOMAIN_VERIFICATION_FAILED"},
}

// renderErrors is a small stand-in for cmd/litehost's error middleware.
func renderErrors(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	err := c.Errors[0].Err
	var (
		httpErr *commands.HTTPError
		rule    domain.Error
		inv     domain.Invalid
		q       readapi.InvalidQuery
	)
	body := gin.H{"status": "error", "error": err.Error()}
	status, code := 500, "SERVER_ERROR"
	switch {
	case errors.As(err, &httpErr):
		status, code = httpErr.Status, httpErr.Code
		for k, v := range httpErr.Headers() {
			c.Writer.Header()[k] = v
		}
		for k, v := range httpErr.Details {
			body[k] = v
		}
	case errors.Is(err, commands.ErrNotFound), errors.Is(err, readapi.ErrNotFound):
		status, code = 404, "NOT_FOUND"
	case errors.Is(err, commands.ErrIdempotencyKeyReused):
		status, code = 422, "IDEMPOTENCY_KEY_REUSED"
	case errors.Is(err, readapi.ErrFreeTier):
		status, code = 403, "FREE_TIER_RESTRICTED"
		body["requiredTier"] = "starter"
	case errors.As(err, &inv):
		status, code = 422, "VALIDATION_FAILED"
		body["fields"] = map[string]string(inv)
	case errors.As(err, &q):
		status, code = 422, "VALIDATION_FAILED"
		body["fields"] = map[string]string(q)
	case errors.As(err, &rule):
		if r, ok := testRules[rule]; ok {
			status, code = r.status, r.code
		}
	}
	body["code"] = code
	c.AbortWithStatusJSON(status, body)
}

// requireAccount authenticates with the X-Test-Account header in place of an API key: the account
// becomes the principal and the actor, on top of whatever metadata earlier middleware set.
func requireAccount(c *gin.Context) {
	id := c.GetHeader("X-Test-Account")
	if id == "" {
		c.AbortWithStatusJSON(401, gin.H{"status": "error", "code": "API_KEY_MISSING"})
		return
	}
	ctx := events.WithPrincipal(c.Request.Context(), events.Principal{AccountID: id})
	md := events.MetadataFrom(ctx)
	md.Actor = events.AccountActor(id)
	c.Request = c.Request.WithContext(events.WithMetadata(ctx, md))
}

// apiResp is one answer of the test API: its status, headers and decoded JSON envelope.
type apiResp struct {
	Status int
	Body   map[string]any
	Header http.Header
}

func (r apiResp) data() map[string]any {
	d, _ := r.Body["data"].(map[string]any)
	return d
}

// want fails the test unless r has status and, when code is not empty, that error code.
func (r apiResp) want(t *testing.T, status int, code string) apiResp {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %v", r.Status, status, r.Body)
	}
	if code != "" && r.Body["code"] != code {
		t.Fatalf("code = %v, want %s; body %v", r.Body["code"], code, r.Body)
	}
	return r
}

// testAPI sends requests to a test server as an account (the X-Test-Account header).
type testAPI struct {
	srv *httptest.Server
}

// do sends one request; hdr holds extra header name/value pairs.
func (a testAPI) do(t *testing.T, method, path, accountID string, body io.Reader, contentType string, hdr ...string) apiResp {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, a.srv.URL+path, body)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accountID != "" {
		req.Header.Set("X-Test-Account", accountID)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := apiResp{Status: res.StatusCode, Header: res.Header}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, path, raw, err)
		}
	}
	return out
}

// json sends body as JSON; a string body is sent as it is, so tests can send malformed JSON.
func (a testAPI) json(t *testing.T, method, path, accountID string, body any) apiResp {
	t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	return a.do(t, method, path, accountID, r, "application/json")
}
