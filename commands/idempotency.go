package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
)

// IdempotencyHeader is the request header that makes a write safe to retry.
const IdempotencyHeader = "Idempotency-Key"

const (
	idempotencyTTL = 24 * time.Hour
	// abandonAfter is how long an unfinished first request holds its key; after that a retry may
	// run again (safe: the same key gives the same command ID, so events are not duplicated).
	abandonAfter = 2 * time.Minute
	// spoolAbove is the upload size past which the body is fingerprinted through a temp file.
	spoolAbove = 1 << 20
	maxKeyLen  = 255
	// rerunStatus marks a finished request whose answer was not stored (SecretAnswers).
	rerunStatus = -1
)

type commandIDKey struct{}

// WithCommandID returns a context whose writes use id as their command ID.
func WithCommandID(ctx context.Context, id uuid.UUID) context.Context {
	return context.WithValue(ctx, commandIDKey{}, id)
}

// CommandIDFrom returns the command ID set for this request (derived from its Idempotency-Key),
// or a new random one: a request without a key is a new command every time.
func CommandIDFrom(ctx context.Context) uuid.UUID {
	if id, ok := ctx.Value(commandIDKey{}).(uuid.UUID); ok {
		return id
	}
	return uuid.New()
}

// commandNamespace seeds command IDs derived from idempotency keys.
var commandNamespace = uuid.MustParse("6f1f5c1e-3d2a-4f59-9f0e-8c2b9d4e7a10")

// Idempotency replays the first answer to a write that repeats an Idempotency-Key, and applies
// every write route's body limit first.
type Idempotency struct {
	pool     *pgxpool.Pool
	keys     *secret.Keyring
	routes   WriteRoutes
	spoolDir string
	logger   *slog.Logger
	now      func() time.Time
	render   func(*gin.Context)
}

// NewIdempotency returns the middleware's state; upload bodies are spooled under spoolDir to be
// fingerprinted with keys. renderErrors writes the error envelope for errors a handler left in
// c.Errors: the answer must be complete before it is stored, and the engine's error middleware
// only runs after this one.
func NewIdempotency(pool *pgxpool.Pool, keys *secret.Keyring, spoolDir string, logger *slog.Logger, now func() time.Time, renderErrors func(*gin.Context)) *Idempotency {
	return &Idempotency{pool: pool, keys: keys, spoolDir: spoolDir, logger: logger, now: now, render: renderErrors}
}

// WithRoutes returns m with the write routes' body limits and kinds (see WriteRoutes).
func (m *Idempotency) WithRoutes(t WriteRoutes) *Idempotency {
	out := *m
	out.routes = t
	return &out
}

// Middleware handles POST, PUT, PATCH and DELETE requests. It first holds the body to its route's
// limit (413 past it), whether or not a key is sent. With an Idempotency-Key, the same key with
// the same request (same fingerprint) replays the stored answer for 24 h; with a different
// request it is refused with 422 IDEMPOTENCY_KEY_REUSED. Past the 24 h the command's events,
// which record the fingerprint, give the same answer (Executor). It must run after
// authentication, because keys are scoped to the caller.
func (m *Idempotency) Middleware() gin.HandlerFunc { return m.middleware(false) }

// SecretAnswers is Middleware for routes whose answers carry secrets shown once (API keys,
// refresh tokens): their bodies are never stored. A repeat of the same request runs the handler
// again under the same command ID instead; the handler recognises its own events and derives
// the same answer, so nothing is decided twice and no secret rests in the database. A route
// marked SecretAnswer in the table is treated so behind Middleware too.
func (m *Idempotency) SecretAnswers() gin.HandlerFunc { return m.middleware(true) }

func (m *Idempotency) middleware(secret bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		switch c.Request.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			c.Next()
			return
		}
		route := m.routes.Route(c.Request.Method, c.FullPath())
		body, err := limitBody(c, route)
		if err != nil {
			_ = c.Error(err)
			c.Abort()
			return
		}
		key := c.GetHeader(IdempotencyHeader)
		if key == "" {
			c.Next()
			return
		}
		if len(key) > maxKeyLen || !printable(key) {
			_ = c.Error(BadRequest("INVALID_IDEMPOTENCY_KEY", "Idempotency-Key must be 1-255 printable ASCII characters"))
			c.Abort()
			return
		}
		if err := m.handle(c, key, secret || route.SecretAnswer, route, body); err != nil {
			_ = c.Error(err)
			c.Abort()
		}
	}
}

func (m *Idempotency) handle(c *gin.Context, key string, secret bool, route WriteRoute, body []byte) error {
	ctx := c.Request.Context()
	caller := "anon:" + c.ClientIP()
	if p, ok := events.PrincipalFrom(ctx); ok {
		caller = "account:" + p.AccountID
	}
	scope := m.scopeOf(caller)
	hash, cleanup, err := m.fingerprint(c, route, body)
	if err != nil {
		return err
	}
	defer cleanup()

	stored, err := m.claim(ctx, scope, key, hash)
	if err != nil {
		return err
	}
	if stored != nil && !(secret && stored.requestHash == hash && stored.status == rerunStatus) {
		return stored.replay(c, hash)
	}
	id := uuid.NewSHA1(commandNamespace, []byte(caller+"\x00"+key))
	if err := m.sameCommand(ctx, scope, key, id, hash); err != nil {
		if !errors.Is(err, ErrIdempotencyKeyReused) {
			// Not decided: free the key so a retry is not held off as in flight.
			m.release(ctx, scope, key)
		}
		return err
	}
	c.Request = c.Request.WithContext(WithRequestFingerprint(WithCommandID(ctx, id), hash))
	if stored != nil { // a SecretAnswers rerun: the same request was answered before
		c.Request = c.Request.WithContext(WithAnsweredBefore(c.Request.Context()))
	}
	rec := &recorder{ResponseWriter: c.Writer}
	c.Writer = rec
	c.Next()
	reused := false
	for _, e := range c.Errors {
		reused = reused || errors.Is(e.Err, ErrIdempotencyKeyReused)
	}
	if !rec.Written() && len(c.Errors) > 0 {
		m.render(c)
	}

	// A failed answer is not kept: the client should be able to retry the same key. Nor is the
	// refusal of a request whose key the command's events show was used for another: the row
	// would stand for this request and refuse the first one's own retry. The context of the
	// request may be cancelled by now, so the bookkeeping gets its own short deadline.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if appendedFrom(c.Request.Context()) {
		// Kept after the row below is gone: the fingerprint answers for the command at any age.
		if _, err := m.pool.Exec(bctx, `INSERT INTO command_fingerprints (command_id, fingerprint, created_at)
			VALUES ($1, $2, $3) ON CONFLICT (command_id) DO NOTHING`, id, hash, m.now()); err != nil {
			m.logger.Error("record command fingerprint", "error", err)
		}
	}
	status := rec.Status()
	if status >= 500 || !rec.Written() || reused {
		_, err = m.pool.Exec(bctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key)
	} else if secret {
		_, err = m.pool.Exec(bctx, `UPDATE idempotency_keys SET status = $3, headers = NULL, body = NULL
			WHERE scope = $1 AND key = $2`, scope, key, rerunStatus)
	} else {
		hdr, _ := json.Marshal(map[string]string{
			"Content-Type": rec.Header().Get("Content-Type"),
			"Location":     rec.Header().Get("Location"),
		})
		_, err = m.pool.Exec(bctx, `UPDATE idempotency_keys SET status = $3, headers = $4, body = $5
			WHERE scope = $1 AND key = $2`, scope, key, status, hdr, rec.body.Bytes())
	}
	if err != nil {
		m.logger.Error("store idempotent answer", "error", err)
	}
	return nil
}

// sameCommand refuses a request whose command (same caller and key) already appended events for
// a request with another fingerprint, though its idempotency row is gone: it is never run.
// Commands that appended nothing have no record; their events' metadata (Executor) and their
// rows cover the rest.
func (m *Idempotency) sameCommand(ctx context.Context, scope, key string, id uuid.UUID, hash string) error {
	var recorded string
	err := m.pool.QueryRow(ctx, `SELECT fingerprint FROM command_fingerprints WHERE command_id = $1`, id).Scan(&recorded)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("command fingerprint: %w", err)
	case recorded == hash:
		return nil
	}
	// The row claimed for this request must not stand: it would refuse the first request's retry.
	m.release(ctx, scope, key)
	return ErrIdempotencyKeyReused
}

// scopeOf is how the idempotency table names a caller: a keyed hash, because an anonymous
// caller is its client address, which the table has no need to hold.
func (m *Idempotency) scopeOf(caller string) string {
	if m.keys == nil {
		return caller
	}
	return m.keys.Hash(secret.PurposeIdempotent, caller)
}

// release deletes the row claimed for a request that is not going to run.
func (m *Idempotency) release(ctx context.Context, scope, key string) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := m.pool.Exec(bctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key); err != nil {
		m.logger.Error("release idempotency key", "error", err)
	}
}

type storedAnswer struct {
	requestHash string
	status      int
	headers     map[string]string
	body        []byte
}

// claim inserts the in-flight marker for (scope, key), or returns the answer already there.
func (m *Idempotency) claim(ctx context.Context, scope, key, hash string) (*storedAnswer, error) {
	now := m.now()
	var s storedAnswer
	var created time.Time
	var hdr []byte
	err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT request_hash, status, headers, body, created_at FROM idempotency_keys
			WHERE scope = $1 AND key = $2 FOR UPDATE`, scope, key).Scan(&s.requestHash, &s.status, &hdr, &s.body, &created)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case now.Sub(created) > idempotencyTTL || s.status == 0 && now.Sub(created) > abandonAfter:
			if _, err := tx.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key); err != nil {
				return err
			}
		default:
			return nil
		}
		s = storedAnswer{}
		_, err = tx.Exec(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4)`,
			scope, key, hash, now)
		return err
	})
	if err != nil {
		var pgErr interface{ SQLState() string }
		if errors.As(err, &pgErr) && pgErr.SQLState() == "23505" {
			// Two first requests raced; the loser sees the winner in flight.
			return &storedAnswer{requestHash: hash}, nil
		}
		return nil, fmt.Errorf("claim idempotency key: %w", err)
	}
	if s.requestHash == "" {
		return nil, nil
	}
	if len(hdr) > 0 {
		_ = json.Unmarshal(hdr, &s.headers)
	}
	return &s, nil
}

func (s *storedAnswer) replay(c *gin.Context, hash string) error {
	if s.requestHash != hash {
		return &HTTPError{Status: http.StatusUnprocessableEntity, Code: "IDEMPOTENCY_KEY_REUSED",
			Message: "this Idempotency-Key was used with a different request; use a new key"}
	}
	if s.status == 0 {
		return &HTTPError{Status: http.StatusConflict, Code: "IDEMPOTENCY_KEY_IN_USE",
			Message: "a request with this Idempotency-Key is still being processed; retry shortly", RetryAfter: time.Second}
	}
	for k, v := range s.headers {
		if v != "" {
			c.Header(k, v)
		}
	}
	c.Header("Idempotent-Replayed", "true")
	c.Data(s.status, s.headers["Content-Type"], s.body)
	c.Abort()
	return nil
}

// fingerprint computes the request's keyed fingerprint (fingerprinter) and leaves the body
// readable again for the handler. A small body was read by limitBody already; an upload is
// spooled through a temp file (past spoolAbove) so it is never held in memory, and only upload
// routes ever spool: what lands on disk is bounded by the route's own limit.
func (m *Idempotency) fingerprint(c *gin.Context, route WriteRoute, body []byte) (string, func(), error) {
	f := newFingerprinter(m.keys)
	f.head(c)
	noop := func() {}
	if !route.Upload || c.Request.Body == nil || c.Request.Body == http.NoBody {
		f.jsonBody(body)
		return f.sum(), noop, nil
	}
	head, err := io.ReadAll(io.LimitReader(c.Request.Body, spoolAbove+1))
	if err != nil {
		return "", noop, readBodyError(route, err)
	}
	ctype := c.GetHeader("Content-Type")
	if len(head) <= spoolAbove {
		if err := f.multipartBody(ctype, func() (io.Reader, error) { return bytes.NewReader(head), nil }); err != nil {
			return "", noop, err
		}
		c.Request.Body = io.NopCloser(bytes.NewReader(head))
		return f.sum(), noop, nil
	}
	file, err := os.CreateTemp(m.spoolDir, "idem-*")
	if err != nil {
		return "", noop, fmt.Errorf("spool body: %w", err)
	}
	cleanup := func() { file.Close(); os.Remove(file.Name()) }
	if _, err := io.Copy(file, io.MultiReader(bytes.NewReader(head), c.Request.Body)); err != nil {
		cleanup()
		return "", noop, readBodyError(route, err)
	}
	rewind := func() (io.Reader, error) {
		if _, err := file.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("spool body: %w", err)
		}
		return file, nil
	}
	if err := f.multipartBody(ctype, rewind); err != nil {
		cleanup()
		return "", noop, err
	}
	if _, err := rewind(); err != nil {
		cleanup()
		return "", noop, err
	}
	c.Request.Body = file
	return f.sum(), cleanup, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// recorder keeps a copy of the answer so it can be replayed.
type recorder struct {
	gin.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) WriteString(s string) (int, error) {
	r.body.WriteString(s)
	return r.ResponseWriter.WriteString(s)
}

// Prune deletes answers older than the 24 h replay window.
func (m *Idempotency) Prune(ctx context.Context) (int64, error) {
	tag, err := m.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, m.now().Add(-idempotencyTTL))
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
