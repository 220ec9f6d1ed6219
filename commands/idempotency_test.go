package commands_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/workspace"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/secret"
)

// idemEnv is the idempotency middleware in front of two test routes: a JSON write that appends
// one event per command through the Executor, and an upload that answers the hash of its body.
type idemEnv struct {
	testAPI
	pool  *pgxpool.Pool
	spool string
	calls atomic.Int32
}

func newIdemEnv(t *testing.T) *idemEnv {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	pool, store := newMigratedStore(t, logger)
	keys, err := secret.New(bytes.Repeat([]byte("k"), 32))
	pgtest.Must(t, err, "keyring")
	env := &idemEnv{pool: pool, spool: t.TempDir()}
	x := commands.NewExecutor(store)
	idem := commands.NewIdempotency(pool, keys, env.spool, logger, time.Now, func(c *gin.Context) {}).
		WithRoutes(commands.WriteRoutes{
			"PATCH /v1/things/:id": {MaxBody: 1 << 10},
			"POST /v1/upload":      {MaxBody: 8 << 20, Upload: true},
		})
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.Use(renderErrors)
	e.PATCH("/v1/things/:id", idem.Middleware(), func(c *gin.Context) {
		env.calls.Add(1)
		body, _ := io.ReadAll(c.Request.Body)
		ctx := c.Request.Context()
		stream := workspace.Stream(uuid.NewSHA1(uuid.NameSpaceURL, []byte(c.Param("id"))).String())
		res, err := x.Execute(ctx, commands.CommandIDFrom(ctx), stream, func(commands.Stream) ([]events.Event, error) {
			return []events.Event{events.WorkspaceCreated{WorkspaceID: c.Param("id"), OwnerID: "a1", Name: string(body), At: time.Now().UTC()}}, nil
		})
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"replayed": res.Replayed, "name": string(body)}})
	})
	e.POST("/v1/upload", idem.Middleware(), func(c *gin.Context) {
		env.calls.Add(1)
		h := sha256.New()
		n, err := io.Copy(h, c.Request.Body)
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"sha256": hex.EncodeToString(h.Sum(nil)), "size": n}})
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	env.testAPI = testAPI{srv}
	return env
}

func (e *idemEnv) patch(t *testing.T, id, key, body string) apiResp {
	t.Helper()
	return e.do(t, "PATCH", "/v1/things/"+id, "", strings.NewReader(body), "application/json", "Idempotency-Key", key)
}

func (e *idemEnv) forgetRows(t *testing.T) {
	t.Helper()
	_, err := e.pool.Exec(t.Context(), `DELETE FROM idempotency_keys`)
	pgtest.Must(t, err, "delete idempotency rows")
}

func TestFingerprintIsCanonicalAndHoldsNoSecret(t *testing.T) {
	e := newIdemEnv(t)
	e.patch(t, "A", "k1", `{"title":"one","n":1,"code":"111111"}`).want(t, 200, "")
	// Key order and whitespace do not make another request; a secret field is not part of it
	// (the handler re-checks secrets itself), whatever its case.
	for _, body := range []string{
		"{ \"n\" : 1,\n \"title\": \"one\", \"code\": \"111111\" }",
		`{"title":"one","n":1,"code":"999999"}`,
	} {
		r := e.patch(t, "A", "k1", body).want(t, 200, "")
		if r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s: not replayed: %v", body, r.Header)
		}
	}
	e.patch(t, "A", "k1b", `{"Password":"a","nested":{"refreshToken":"r1"}}`).want(t, 200, "")
	if r := e.patch(t, "A", "k1b", `{"Password":"b","nested":{"refreshToken":"r2"}}`).want(t, 200, ""); r.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("secrets in other cases and nested objects are fingerprinted: %v", r.Header)
	}
	if n := e.calls.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
	// Anything else is another request: another value, a secret removed (null), another
	// number spelling, another path parameter.
	for _, tc := range []struct{ id, body string }{
		{"A", `{"title":"two","n":1,"code":"111111"}`},
		{"A", `{"title":"one","n":1,"code":null}`},
		{"A", `{"title":"one","n":1.0,"code":"111111"}`},
		{"B", `{"title":"one","n":1,"code":"111111"}`},
	} {
		e.patch(t, tc.id, "k1", tc.body).want(t, 422, "IDEMPOTENCY_KEY_REUSED")
	}
}

// Once the idempotency row is gone (24 h, or removed after a 5xx), another request under the key
// is still refused before it runs, even on another stream; the same request replays.
func TestReplayCheckedWithoutTheRow(t *testing.T) {
	e := newIdemEnv(t)
	e.patch(t, "A", "k2", `{"title":"one"}`).want(t, 200, "")
	e.forgetRows(t)
	e.patch(t, "A", "k2", `{"title":"two"}`).want(t, 422, "IDEMPOTENCY_KEY_REUSED")
	e.patch(t, "B", "k2", `{"title":"one"}`).want(t, 422, "IDEMPOTENCY_KEY_REUSED")
	if n := e.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times for refused requests", n-1)
	}
	// The refusal left no row that would refuse the first request's own retry.
	r := e.patch(t, "A", "k2", `{"title":"one"}`).want(t, 200, "")
	if r.data()["replayed"] != true {
		t.Errorf("retry of the first request = %v, want the command's replay", r.Body)
	}

	// Without the durable record either (events recorded before it existed), the events'
	// metadata still tells the requests apart on the command's own stream.
	e.forgetRows(t)
	_, err := e.pool.Exec(t.Context(), `DELETE FROM command_fingerprints`)
	pgtest.Must(t, err, "delete fingerprints")
	e.patch(t, "A", "k2", `{"title":"two"}`).want(t, 422, "IDEMPOTENCY_KEY_REUSED")
	var rows int
	pgtest.Must(t, e.pool.QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys`).Scan(&rows), "count")
	if rows != 0 {
		t.Errorf("%d idempotency rows kept for a refused request", rows)
	}
}

func TestBodyLimitBeforeAnyWork(t *testing.T) {
	e := newIdemEnv(t)
	big := `{"title":"` + strings.Repeat("x", 4<<10) + `"}`
	e.patch(t, "A", "k3", big).want(t, 413, "BODY_TOO_LARGE")
	// Chunked (no Content-Length), with and without a key.
	for _, key := range []string{"k4", ""} {
		req, err := http.NewRequest("PATCH", e.srv.URL+"/v1/things/A", io.MultiReader(strings.NewReader(big)))
		pgtest.Must(t, err, "request")
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		res, err := http.DefaultClient.Do(req)
		pgtest.Must(t, err, "send")
		res.Body.Close()
		if res.StatusCode != 413 || req.ContentLength != 0 {
			t.Errorf("chunked body over the limit (key %q) = %d (content length %d)", key, res.StatusCode, req.ContentLength)
		}
	}
	var rows int
	pgtest.Must(t, e.pool.QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys`).Scan(&rows), "count")
	if rows != 0 || e.calls.Load() != 0 {
		t.Errorf("over-limit bodies: %d rows stored, handler ran %d times", rows, e.calls.Load())
	}
}

// upload sends a multipart body with the given boundary.
func (e *idemEnv) upload(t *testing.T, key, boundary string, fields map[string]string, file []byte) apiResp {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	pgtest.Must(t, w.SetBoundary(boundary), "boundary")
	for _, k := range []string{"title", "password"} {
		if v, ok := fields[k]; ok {
			pgtest.Must(t, w.WriteField(k, v), "field")
		}
	}
	fw, err := w.CreateFormFile("files", "css/site.css")
	pgtest.Must(t, err, "file")
	_, _ = fw.Write(file)
	pgtest.Must(t, w.Close(), "close")
	return e.do(t, "POST", "/v1/upload", "", &b, w.FormDataContentType(), "Idempotency-Key", key)
}

func TestUploadFingerprintStreamsFromTheSpool(t *testing.T) {
	e := newIdemEnv(t)
	file := bytes.Repeat([]byte("0123456789abcdef"), 200<<10) // 3.2 MiB: past the in-memory head
	first := e.upload(t, "u1", "boundary-one", map[string]string{"title": "t", "password": "hunter22"}, file).want(t, 200, "")
	// The handler saw the whole body, rewound after fingerprinting.
	if first.data()["size"].(float64) < float64(len(file)) {
		t.Errorf("handler read %v bytes of a %d-byte file", first.data()["size"], len(file))
	}
	// Another boundary, another password: the same request (boundaries are framing, the
	// password is a secret the handler checks); another title or file content is not.
	again := e.upload(t, "u1", "boundary-two", map[string]string{"title": "t", "password": "other"}, file).want(t, 200, "")
	if again.Header.Get("Idempotent-Replayed") != "true" || again.data()["sha256"] != first.data()["sha256"] {
		t.Errorf("replay = %v %v", again.Header, again.Body)
	}
	e.upload(t, "u1", "boundary-one", map[string]string{"title": "u", "password": "hunter22"}, file).want(t, 422, "IDEMPOTENCY_KEY_REUSED")
	file[len(file)-1] = 'X'
	e.upload(t, "u1", "boundary-one", map[string]string{"title": "t", "password": "hunter22"}, file).want(t, 422, "IDEMPOTENCY_KEY_REUSED")
	if n := e.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
	left, err := os.ReadDir(e.spool)
	pgtest.Must(t, err, "read spool")
	if len(left) != 0 {
		t.Errorf("%d files left in the spool", len(left))
	}
}
