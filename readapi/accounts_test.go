package readapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/account"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/projections"
	"github.com/litehost/litehost/readapi"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	pool   *pgxpool.Pool
	acc    *commands.Accounts
	runner *projections.Runner
	clock  *clock
	url    string
	auth   *readapi.Authenticator
}

// renderTestErrors stands in for cmd/litehost's error middleware with the mappings these
// endpoints rely on, so the tests see real statuses and codes over HTTP.
func renderTestErrors(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	err := c.Errors[0].Err
	var (
		authErr readapi.AuthError
		httpErr *commands.HTTPError
		invalid domain.Invalid
	)
	status, code := http.StatusInternalServerError, "SERVER_ERROR"
	switch {
	case errors.As(err, &authErr):
		status, code = http.StatusUnauthorized, authErr.Code
	case errors.As(err, &httpErr):
		status, code = httpErr.Status, httpErr.Code
	case errors.As(err, &invalid):
		status, code = http.StatusUnprocessableEntity, "VALIDATION_FAILED"
	case errors.Is(err, readapi.ErrNotFound), errors.Is(err, commands.ErrNotFound):
		status, code = http.StatusNotFound, "NOT_FOUND"
	case errors.Is(err, account.ErrRefreshInvalid):
		status, code = http.StatusUnauthorized, "REFRESH_TOKEN_INVALID"
	case errors.Is(err, account.ErrRefreshExpired):
		status, code = http.StatusUnauthorized, "REFRESH_TOKEN_EXPIRED"
	case errors.Is(err, account.ErrRefreshReused):
		status, code = http.StatusUnauthorized, "REFRESH_TOKEN_REUSED"
	}
	c.AbortWithStatusJSON(status, gin.H{"status": "error", "code": code, "error": err.Error()})
}

func newEnv(t *testing.T) env {
	t.Helper()
	pool := pgtest.NewPool(t)
	logger := slog.New(slog.DiscardHandler)
	store := pgstore.New(pool, logger)
	pgtest.Must(t, store.Migrate(t.Context()), "migrate store")
	pgtest.Must(t, projections.Migrate(t.Context(), pool), "migrate projections")
	pgtest.Must(t, commands.Migrate(t.Context(), pool), "migrate commands")
	keys, err := secret.New([]byte("0123456789abcdef0123456789abcdef"))
	pgtest.Must(t, err, "keyring")
	c := &clock{t: time.Now().UTC().Truncate(time.Millisecond)}
	runner := projections.NewRunner(pool, store, logger, projections.Accounts())
	pgtest.Background(t, runner.Run)

	acc := commands.NewAccounts(store, keys, commands.NewPGRevocations(pool), c.now)
	auth := readapi.NewAuthenticator(pool, keys, c.now)
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(renderTestErrors)
	v1 := e.Group("/v1")
	readapi.NewAccounts(pool).Register(v1, auth.Require())
	commands.NewAccountRoutes(acc, runner).Register(v1, auth.Optional())
	v1.GET("/whoami", auth.Require(), func(c *gin.Context) {
		p, _ := events.PrincipalFrom(c.Request.Context())
		c.JSON(http.StatusOK, gin.H{"actor": events.MetadataFrom(c.Request.Context()).Actor,
			"accountId": p.AccountID, "sessionId": p.SessionID, "requestId": events.MetadataFrom(c.Request.Context()).RequestID})
	})
	srv := httptest.NewServer(withRequestID(e))
	t.Cleanup(srv.Close)
	return env{pool: pool, acc: acc, runner: runner, clock: c, url: srv.URL, auth: auth}
}

// withRequestID plays cmd/litehost's metadata middleware: the authenticator must keep what it finds.
func withRequestID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(events.WithMetadata(r.Context(), events.Metadata{RequestID: "req-1", Actor: events.ActorAnonymous})))
	})
}

// signIn signs alice in and waits until the key is in the read model, as the verify answer would.
func (e env) signIn(t *testing.T, id commands.Identifier) commands.SignInResult {
	t.Helper()
	res, err := e.acc.SignIn(t.Context(), uuid.New(), id, true)
	pgtest.Must(t, err, "sign in")
	pgtest.Must(t, e.runner.WaitFor(t.Context(), res.Position), "wait for projection")
	return res
}

type answer struct {
	Status int
	Body   map[string]any
}

func (e env) do(t *testing.T, method, path, auth string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		pgtest.Must(t, err, "marshal")
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, rd)
	pgtest.Must(t, err, "request")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	pgtest.Must(t, err, "%s %s", method, path)
	defer resp.Body.Close()
	var out map[string]any
	pgtest.Must(t, json.NewDecoder(resp.Body).Decode(&out), "decode %s %s", method, path)
	return answer{resp.StatusCode, out}
}

func (a answer) code() string { s, _ := a.Body["code"].(string); return s }

func (a answer) data() map[string]any { d, _ := a.Body["data"].(map[string]any); return d }

var alice = commands.Identifier{Kind: commands.IdentifierEmail, Value: "alice@example.com"}

func TestAuthFailures(t *testing.T) {
	e := newEnv(t)
	in := e.signIn(t, alice)
	body := in.APIKey[len("lh_live_"):]
	badChecksum := "lh_live_" + body[:63] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", body[63])+1)%16])
	unknown := "lh_live_" + strings.Repeat("0", 56) + "cb612bfd" // CRC-32 of 56 zeros: well-formed, never issued
	tests := []struct {
		name, header, want string
	}{
		{"no header", "", readapi.CodeAPIKeyMissing},
		{"empty bearer", "Bearer ", readapi.CodeAPIKeyMissing},
		{"other scheme", "Basic " + in.APIKey, readapi.CodeAPIKeyInvalid},
		{"not a key", "Bearer hello", readapi.CodeAPIKeyInvalid},
		{"uppercase key", "Bearer " + strings.ToUpper(in.APIKey), readapi.CodeAPIKeyInvalid},
		{"bad checksum", "Bearer " + badChecksum, readapi.CodeAPIKeyInvalid},
		{"unknown key", "Bearer " + unknown, readapi.CodeAPIKeyInvalid},
		{"refresh token as key", "Bearer " + in.RefreshToken, readapi.CodeAPIKeyInvalid},
		{"issued key ID with another MAC", "Bearer " + forged(in.APIKey), readapi.CodeAPIKeyInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/v1/user", "/v1/auth/session"} {
				a := e.do(t, http.MethodGet, path, tt.header, nil)
				if a.Status != http.StatusUnauthorized || a.code() != tt.want {
					t.Errorf("GET %s = %d %s, want 401 %s", path, a.Status, a.code(), tt.want)
				}
			}
		})
	}
	if a := e.do(t, http.MethodGet, "/v1/user", "bearer "+in.APIKey, nil); a.Status != http.StatusOK {
		t.Errorf("lowercase scheme = %d %v", a.Status, a.Body)
	}
}

// forged keeps key's ID and gives it another MAC with a valid checksum: well-formed, never issued.
func forged(key string) string {
	body := []byte(key[len("lh_live_") : 56+len("lh_live_")])
	body[55] = "1032547698badcfe"[strings.IndexByte("0123456789abcdef", body[55])] // flip the last bit
	return "lh_live_" + string(body) + fmt.Sprintf("%08x", crc32.ChecksumIEEE(body))
}

// TestRevocationRecordRefusesAKeyTheReadModelStillHas: a row in revoked_credentials, for the
// key or for its session, refuses the key although api_keys (the projector) still has it live.
func TestRevocationRecordRefusesAKeyTheReadModelStillHas(t *testing.T) {
	e := newEnv(t)
	in := e.signIn(t, alice)
	who := e.do(t, http.MethodGet, "/v1/auth/session", "Bearer "+in.APIKey, nil)
	if who.Status != http.StatusOK {
		t.Fatalf("GET /v1/auth/session = %d %v", who.Status, who.Body)
	}
	var keyID string
	pgtest.Must(t, e.pool.QueryRow(t.Context(), `SELECT key_id::text FROM api_keys`).Scan(&keyID), "read key")
	for kind, id := range map[string]string{"session": who.data()["sessionId"].(string), "api_key": keyID} {
		_, err := e.pool.Exec(t.Context(), `INSERT INTO revoked_credentials (id, kind, account_id, revoked_at, expires_at)
			VALUES ($1, $2, $3, now(), now() + interval '1 day')`, id, kind, in.AccountID)
		pgtest.Must(t, err, "record revocation")
		if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+in.APIKey, nil); a.Status != http.StatusUnauthorized || a.code() != readapi.CodeAPIKeyInvalid {
			t.Errorf("key with a %s revocation = %d %v", kind, a.Status, a.Body)
		}
		_, err = e.pool.Exec(t.Context(), `DELETE FROM revoked_credentials`)
		pgtest.Must(t, err, "forget revocation")
	}
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+in.APIKey, nil); a.Status != http.StatusOK {
		t.Errorf("key without a revocation = %d %v", a.Status, a.Body)
	}
}

// TestKeyExpiresAfterTheIdleWindow: a key never used expires the idle window after its issue.
func TestKeyExpiresAfterTheIdleWindow(t *testing.T) {
	e := newEnv(t)
	in := e.signIn(t, alice)
	e.clock.advance(account.DefaultKeyIdleTTL - time.Millisecond)
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+in.APIKey, nil); a.Status != http.StatusOK {
		t.Fatalf("just before expiry = %d %v", a.Status, a.Body)
	}
	e.clock.advance(time.Millisecond)
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+in.APIKey, nil); a.Status != http.StatusUnauthorized || a.code() != readapi.CodeAPIKeyExpired {
		t.Errorf("at expiry = %d %s, want 401 API_KEY_EXPIRED", a.Status, a.code())
	}
}

func TestPrincipalAndActor(t *testing.T) {
	e := newEnv(t)
	in := e.signIn(t, alice)
	a := e.do(t, http.MethodGet, "/v1/whoami", "Bearer "+in.APIKey, nil)
	want := map[string]any{"actor": "account:" + in.AccountID, "accountId": in.AccountID, "requestId": "req-1"}
	got := map[string]any{"actor": a.Body["actor"], "accountId": a.Body["accountId"], "requestId": a.Body["requestId"]}
	if diff := cmp.Diff(want, got); diff != "" || a.Body["sessionId"] == "" {
		t.Errorf("whoami (-want +got):\n%s", diff)
	}
}

func TestUser(t *testing.T) {
	e := newEnv(t)
	in := e.signIn(t, alice)
	auth := "Bearer " + in.APIKey
	a := e.do(t, http.MethodGet, "/v1/user", auth, nil)
	want := map[string]any{
		"id": in.AccountID, "email": "alice@example.com", "phone": nil,
		"createdAt": e.clock.now().Format(readapi.TimeLayout),
		"plan": map[string]any{"tier": "free", "trial": nil, "limits": map[string]any{
			"maxProjects": 3.0, "maxStorageBytes": 52428800.0, "maxFilesPerProject": 50.0, "maxVisitorsPerMonth": 10000.0}},
		"quota": map[string]any{
			"projects": map[string]any{"used": 0.0, "limit": 3.0, "unlimited": false},
			"storage":  map[string]any{"usedBytes": 0.0, "limitBytes": 52428800.0, "unlimited": false}},
	}
	if a.Status != http.StatusOK || a.Body["status"] != "success" {
		t.Fatalf("GET /v1/user = %d %v", a.Status, a.Body)
	}
	if diff := cmp.Diff(want, a.data()); diff != "" {
		t.Errorf("free user (-want +got):\n%s", diff)
	}

	// The projects projector's usage row, then an upgrade to an unlimited plan.
	_, err := e.pool.Exec(t.Context(), `INSERT INTO account_usage (account_id, active_projects, storage_bytes) VALUES ($1, 2, 1234567)`, in.AccountID)
	pgtest.Must(t, err, "usage")
	pos, err := e.acc.SetPlan(t.Context(), alice, "scale")
	pgtest.Must(t, err, "set plan")
	pgtest.Must(t, e.runner.WaitFor(t.Context(), pos), "wait")
	a = e.do(t, http.MethodGet, "/v1/user", auth, nil)
	want["plan"] = map[string]any{"tier": "scale", "trial": nil, "limits": map[string]any{
		"maxProjects": -1.0, "maxStorageBytes": -1.0, "maxFilesPerProject": 1000.0, "maxVisitorsPerMonth": -1.0}}
	want["quota"] = map[string]any{
		"projects": map[string]any{"used": 2.0, "limit": -1.0, "unlimited": true},
		"storage":  map[string]any{"usedBytes": 1234567.0, "limitBytes": -1.0, "unlimited": true}}
	if diff := cmp.Diff(want, a.data()); diff != "" {
		t.Errorf("scale user (-want +got):\n%s", diff)
	}

	// A phone account has no e-mail.
	ph := e.signIn(t, commands.Identifier{Kind: commands.IdentifierPhone, Value: "+14155550100"})
	a = e.do(t, http.MethodGet, "/v1/user", "Bearer "+ph.APIKey, nil)
	if d := a.data(); d["email"] != nil || d["phone"] != "+14155550100" || d["id"] != ph.AccountID {
		t.Errorf("phone user = %v", d)
	}
}

func TestSession(t *testing.T) {
	e := newEnv(t)
	in := e.signIn(t, alice)
	a := e.do(t, http.MethodGet, "/v1/auth/session", "Bearer "+in.APIKey, nil)
	d := a.data()
	if a.Status != http.StatusOK || d["accountId"] != in.AccountID || d["sessionId"] == "" ||
		d["expiresAt"] != in.ExpiresAt.Format(readapi.TimeLayout) || d["createdAt"] != e.clock.now().Format(readapi.TimeLayout) ||
		d["refreshExpiresAt"] != in.RefreshExpiresAt.Format(readapi.TimeLayout) {
		t.Errorf("GET /v1/auth/session = %d %v", a.Status, a.Body)
	}
}

func TestRefreshAndRevokeOverHTTP(t *testing.T) {
	e := newEnv(t)
	in := e.signIn(t, alice)
	e.clock.advance(time.Hour)

	for name, body := range map[string]any{"no token": map[string]any{}, "empty": map[string]any{"refreshToken": ""}, "number": map[string]any{"refreshToken": 5}} {
		if a := e.do(t, http.MethodPost, "/v1/auth/refresh", "", body); a.Status != http.StatusUnprocessableEntity {
			t.Errorf("refresh %s = %d %v, want 422", name, a.Status, a.Body)
		}
	}
	if a := e.do(t, http.MethodPost, "/v1/auth/refresh", "", "not an object"); a.Status != http.StatusUnprocessableEntity && a.Status != http.StatusBadRequest {
		t.Errorf("refresh with a string body = %d", a.Status)
	}
	if a := e.do(t, http.MethodPost, "/v1/auth/refresh", "", map[string]any{"refreshToken": "lh_refresh_nope"}); a.Status != http.StatusUnauthorized || a.code() != "REFRESH_TOKEN_INVALID" {
		t.Errorf("unknown token = %d %s", a.Status, a.code())
	}

	a := e.do(t, http.MethodPost, "/v1/auth/refresh", "", map[string]any{"refreshToken": in.RefreshToken})
	d := a.data()
	newKey, _ := d["apiKey"].(string)
	newRefresh, _ := d["refreshToken"].(string)
	if a.Status != http.StatusOK || !commands.ValidAPIKey(newKey) || newRefresh == "" ||
		d["expiresAt"] != e.clock.now().Add(account.DefaultKeyIdleTTL).Format(readapi.TimeLayout) ||
		d["refreshExpiresAt"] != e.clock.now().Add(account.DefaultKeyIdleTTL).Format(readapi.TimeLayout) {
		t.Fatalf("refresh = %d %v", a.Status, a.Body)
	}
	// The answer came after the projection: the old key is dead and the new one works at once.
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+in.APIKey, nil); a.code() != readapi.CodeAPIKeyInvalid {
		t.Errorf("old key after refresh = %d %s", a.Status, a.code())
	}
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+newKey, nil); a.Status != http.StatusOK {
		t.Errorf("new key = %d %v", a.Status, a.Body)
	}

	// The old refresh token again: the session is revoked, the new key dies too.
	if a := e.do(t, http.MethodPost, "/v1/auth/refresh", "", map[string]any{"refreshToken": in.RefreshToken}); a.Status != http.StatusUnauthorized || a.code() != "REFRESH_TOKEN_REUSED" {
		t.Errorf("reuse = %d %s", a.Status, a.code())
	}
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+newKey, nil); a.code() != readapi.CodeAPIKeyInvalid {
		t.Errorf("new key after reuse = %d %s", a.Status, a.code())
	}

	// Revoke by Bearer.
	s2 := e.signIn(t, alice)
	if a := e.do(t, http.MethodPost, "/v1/auth/revoke", "Bearer "+s2.APIKey, nil); a.Status != http.StatusOK || a.data()["revoked"] != true {
		t.Errorf("revoke by bearer = %d %v", a.Status, a.Body)
	}
	if a := e.do(t, http.MethodGet, "/v1/auth/session", "Bearer "+s2.APIKey, nil); a.code() != readapi.CodeAPIKeyInvalid {
		t.Errorf("key after revoke = %d %s", a.Status, a.code())
	}
	if a := e.do(t, http.MethodPost, "/v1/auth/refresh", "", map[string]any{"refreshToken": s2.RefreshToken}); a.code() != "REFRESH_TOKEN_INVALID" {
		t.Errorf("refresh after revoke = %d %s", a.Status, a.code())
	}
	// Revoke by refresh token only.
	s3 := e.signIn(t, alice)
	if a := e.do(t, http.MethodPost, "/v1/auth/revoke", "", map[string]any{"refreshToken": s3.RefreshToken}); a.Status != http.StatusOK {
		t.Errorf("revoke by refresh token = %d %v", a.Status, a.Body)
	}
	if a := e.do(t, http.MethodGet, "/v1/user", "Bearer "+s3.APIKey, nil); a.code() != readapi.CodeAPIKeyInvalid {
		t.Errorf("key after revoke by token = %d %s", a.Status, a.code())
	}
	// Neither, or a bad Bearer.
	if a := e.do(t, http.MethodPost, "/v1/auth/revoke", "", nil); a.Status != http.StatusUnprocessableEntity {
		t.Errorf("revoke with nothing = %d %v", a.Status, a.Body)
	}
	if a := e.do(t, http.MethodPost, "/v1/auth/revoke", "Bearer lh_live_x", nil); a.Status != http.StatusUnauthorized || a.code() != readapi.CodeAPIKeyInvalid {
		t.Errorf("revoke with a bad key = %d %s", a.Status, a.code())
	}
}

// TestKeyFormatMatchesIssuer keeps the read side's key check in step with the keys commands issue.
func TestKeyFormatMatchesIssuer(t *testing.T) {
	e := newEnv(t)
	in := e.signIn(t, alice)
	for _, k := range []string{in.APIKey, "lh_live_" + strings.Repeat("0", 56) + "cb612bfd"} {
		if !commands.ValidAPIKey(k) {
			t.Errorf("commands.ValidAPIKey(%q) = false", k)
		}
	}
}
