package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/events"
)

// The tenant-isolation matrix: every route the engine serves × every way a caller can be the
// wrong one, with the answer each must get. TestTenantIsolationMatrix fails for a served route
// without a row (and for a row whose route is no longer served), so a new route cannot ship
// without its isolation being written down.

// want is one cell of the matrix: the status, and for errors the code of the envelope. The zero
// want (na) marks a column that does not apply to the route.
type want struct {
	status int
	code   string
}

var (
	na       = want{}
	missing  = want{http.StatusUnauthorized, "API_KEY_MISSING"}
	invalid  = want{http.StatusUnauthorized, "API_KEY_INVALID"}
	expired  = want{http.StatusUnauthorized, "API_KEY_EXPIRED"}
	foreign  = want{http.StatusNotFound, "NOT_FOUND"}
	freeTier = want{http.StatusForbidden, "FREE_TIER_RESTRICTED"}
	// The operator stream takes the admin token, never an API key.
	adminMissing = want{http.StatusUnauthorized, "ADMIN_TOKEN_MISSING"}
	adminInvalid = want{http.StatusUnauthorized, "ADMIN_TOKEN_INVALID"}
	// A browser form without its CSRF token: an HTML page, so no envelope code.
	forged = want{http.StatusForbidden, ""}
)

// ok is a success with status.
func ok(status int) want { return want{status: status} }

// column is who sends the request.
type column int

const (
	colNoKey     column = iota // no Authorization header, A's resources
	colMalformed               // a Bearer value that is not an API key, A's resources
	colExpired                 // A's own key, past its expiry, on A's own resources
	colRevoked                 // A's own key, revoked, on A's own resources
	colOther                   // B's valid key (paid plan) on A's resources
	colFree                    // C's valid key (free plan) on C's own resources
	colOwner                   // A's valid key on A's resources: the positive control
	numColumns
)

var columnNames = [numColumns]string{"no key", "malformed key", "expired key", "revoked key",
	"another tenant's resource", "free tier", "owner"}

// cells are a row's expectations in column order.
type cells [numColumns]want

// matrixReq is one request of a row.
type matrixReq struct {
	method, path string
	body         []byte
	ctype        string
	accept       string
}

// matrixRow is one served route. req builds the request a column sends; resources come from
// f.of(c), so one builder serves every column.
type matrixRow struct {
	route string // "METHOD /path" exactly as the Gin engine lists it
	req   func(f *matrixFixtures, c column) matrixReq
	want  cells
}

// matrix has a row per served route: {route, request, cells{no key, malformed key, expired key,
// revoked key, another tenant's resource, free tier, owner}}. The refusal columns run first, row
// by row in table order, then the owner column, again in table order: a row that consumes its
// resource (a delete, the claim, the revoke of A's key) comes after every row that needs it.
var matrix = []matrixRow{
	// Health says only up or down without credentials; its detail, like /metrics, is for the
	// operator token, and an API key sent there is a wrong operator token.
	{"GET /health", get("/health"), cells{ok(200), adminInvalid, adminInvalid, adminInvalid, na, na, adminInvalid}},
	{"GET /metrics", get("/metrics"), cells{adminMissing, adminInvalid, adminInvalid, adminInvalid, na, na, adminInvalid}},
	{"GET /v1", get("/v1"), cells{ok(200), ok(200), ok(200), ok(200), na, na, ok(200)}},
	{"GET /v1/openapi.json", get("/v1/openapi.json"), cells{ok(200), ok(200), ok(200), ok(200), na, na, ok(200)}},
	{"GET /llms.txt", get("/llms.txt"), cells{ok(200), ok(200), ok(200), ok(200), na, na, ok(200)}},
	// The MCP connector checks the key like the API before a tool that needs an account runs;
	// what a tool answers another tenant (NOT_FOUND inside the tool result) and the owner is
	// TestMCPConnector's, over a real MCP client session.
	{"POST /mcp", mcpGetProject, cells{missing, invalid, expired, invalid, na, na, na}},
	// An API key, even the owner's valid one, is not the operator token.
	{"GET /v1/events/stream", get("/v1/events/stream"), cells{adminMissing, adminInvalid, adminInvalid, adminInvalid, na, na, adminInvalid}},
	{"GET /v1/visits/stream", get("/v1/visits/stream"), cells{adminMissing, adminInvalid, adminInvalid, adminInvalid, na, na, adminInvalid}},

	// Sign-in and sessions: the code and the refresh token are the credentials, keys are ignored.
	{"POST /v1/auth/otp/request", otpRequest, cells{ok(200), ok(200), ok(200), ok(200), na, na, ok(200)}},
	{"POST /v1/auth/otp/verify", otpVerify, cells{
		{401, "OTP_EXPIRED"}, {401, "OTP_EXPIRED"}, {401, "OTP_EXPIRED"}, {401, "OTP_EXPIRED"}, na, na, {401, "OTP_EXPIRED"}}},
	{"POST /v1/auth/refresh", refresh, cells{
		{401, "REFRESH_TOKEN_INVALID"}, {401, "REFRESH_TOKEN_INVALID"}, {401, "REFRESH_TOKEN_INVALID"}, {401, "REFRESH_TOKEN_INVALID"}, na, na, ok(200)}},
	{"GET /v1/user", get("/v1/user"), cells{missing, invalid, expired, invalid, ok(200), ok(200), ok(200)}},
	{"GET /v1/auth/session", get("/v1/auth/session"), cells{missing, invalid, expired, invalid, ok(200), ok(200), ok(200)}},

	// Projects. The temporary upload takes no key, but a key that is sent must be valid.
	{"POST /v1/projects/temp", tempUpload, cells{ok(200), invalid, expired, invalid, na, na, ok(200)}},
	// Another tenant's workspace in the body is refused like one that does not exist.
	{"POST /v1/projects", createProject, cells{missing, invalid, expired, invalid, {422, "VALIDATION_FAILED"}, ok(201), ok(201)}},
	{"GET /v1/projects", get("/v1/projects"), cells{missing, invalid, expired, invalid, ok(200), ok(200), ok(200)}},
	{"GET /v1/projects/:id", onProject("GET", ""), cells{missing, invalid, expired, invalid, foreign, ok(200), ok(200)}},
	{"GET /v1/projects/:id/status", onProject("GET", "/status"), cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},
	{"GET /v1/projects/:id/events", onProject("GET", "/events"), cells{missing, invalid, expired, invalid, foreign, ok(200), ok(200)}},
	// A QR code shows a public link: no key, anyone's; a free owner's project is locked.
	// Link opens (paid): the report, and the owner's link that marks their own views.
	{"GET /v1/projects/:id/analytics", onProject("GET", "/analytics"), cells{missing, invalid, expired, invalid, foreign, {403, "FEATURE_LOCKED"}, ok(200)}},
	{"GET /v1/projects/:id/analytics/owner-link", onProject("GET", "/analytics/owner-link"), cells{missing, invalid, expired, invalid, foreign, {403, "FEATURE_LOCKED"}, ok(200)}},
	{"GET /qr/:file", qrCode, cells{ok(200), ok(200), ok(200), ok(200), ok(200), {403, "FEATURE_LOCKED"}, ok(200)}},
	{"PUT /v1/projects/:id", pushProject, cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},
	{"PATCH /v1/projects/:id", patchProject, cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},
	{"POST /v1/projects/:id/rollback", rollback, cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},
	{"POST /v1/projects/:id/archive", onProject("POST", "/archive"), cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},
	{"POST /v1/projects/:id/unarchive", onProject("POST", "/unarchive"), cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},
	// The claim page is for browsers: no key counts there, and a form post without its CSRF token
	// (a forged or cross-site one) is refused whoever sends it; its success is claimpage_test's.
	{"GET /claim/:token", claimPage("GET", ""), cells{ok(200), ok(200), ok(200), ok(200), na, na, ok(200)}},
	{"POST /claim/:token/email", claimPage("POST", "/email"), cells{forged, forged, forged, forged, na, na, forged}},
	{"POST /claim/:token/code", claimPage("POST", "/code"), cells{forged, forged, forged, forged, na, na, forged}},
	// OAuth for the MCP connector: metadata, registration and the sign-in page take no key and
	// ignore one that is sent (the e-mailed code is the sign-in); the token endpoint's credentials
	// are the code or refresh token and the client; its success is oauth_test's. No malformed-key
	// cell there: of its three variants, "Basic" is client authentication (RFC 6749 §2.3.1, an
	// unknown client is 401 invalid_client) while a Bearer value is ignored, so they differ.
	{"GET /.well-known/oauth-protected-resource", get("/.well-known/oauth-protected-resource"), cells{ok(200), ok(200), ok(200), ok(200), na, na, ok(200)}},
	{"GET /.well-known/oauth-protected-resource/mcp", get("/.well-known/oauth-protected-resource/mcp"), cells{ok(200), ok(200), ok(200), ok(200), na, na, ok(200)}},
	{"GET /.well-known/oauth-authorization-server", get("/.well-known/oauth-authorization-server"), cells{ok(200), ok(200), ok(200), ok(200), na, na, ok(200)}},
	{"POST /oauth/register", oauthRegister, cells{ok(201), ok(201), ok(201), ok(201), na, na, ok(201)}},
	{"GET /oauth/authorize", oauthAuthorize, cells{ok(200), ok(200), ok(200), ok(200), na, na, ok(200)}},
	{"POST /oauth/authorize/email", oauthPage("/email"), cells{forged, forged, forged, forged, na, na, forged}},
	{"POST /oauth/authorize/code", oauthPage("/code"), cells{forged, forged, forged, forged, na, na, forged}},
	{"POST /oauth/authorize/consent", oauthPage("/consent"), cells{forged, forged, forged, forged, na, na, forged}},
	{"POST /oauth/token", oauthForm("/oauth/token", "grant_type=authorization_code&code=lhcode_x&code_verifier="+strings.Repeat("v", 43)+"&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"),
		cells{{400, ""}, na, {400, ""}, {400, ""}, na, na, {400, ""}}},
	{"POST /oauth/revoke", oauthForm("/oauth/revoke", "token=lh_refresh_unknown"), cells{ok(200), na, ok(200), ok(200), na, na, ok(200)}},

	// The claim token is the credential of a temporary project: no tenant owns it yet.
	{"POST /v1/projects/claim/:token", claim, cells{missing, invalid, expired, invalid, na, na, ok(200)}},

	// Workspaces (paid).
	{"GET /v1/workspaces", get("/v1/workspaces"), cells{missing, invalid, expired, invalid, ok(200), freeTier, ok(200)}},
	{"POST /v1/workspaces", createWorkspace, cells{missing, invalid, expired, invalid, na, freeTier, ok(201)}},
	{"PATCH /v1/workspaces/:id", renameWorkspace, cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},
	{"DELETE /v1/workspaces/:id", onWorkspace("DELETE"), cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},

	// Custom domains (paid).
	{"GET /v1/domains", get("/v1/domains"), cells{missing, invalid, expired, invalid, ok(200), freeTier, ok(200)}},
	{"POST /v1/domains", addDomain, cells{missing, invalid, expired, invalid, na, freeTier, ok(201)}},
	{"GET /v1/domains/:id", onDomain("GET", ""), cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},
	{"POST /v1/domains/:id/verify", onDomain("POST", "/verify"), cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},
	{"DELETE /v1/domains/:id", onDomain("DELETE", ""), cells{missing, invalid, expired, invalid, foreign, freeTier, ok(200)}},

	// Last: these end A's project and A's key for good.
	{"DELETE /v1/projects/:id", onProject("DELETE", ""), cells{missing, invalid, expired, invalid, foreign, ok(200), ok(200)}},
	// Without a key or a refresh token there is nothing to revoke (422); a key that is sent must
	// be valid.
	{"POST /v1/auth/revoke", revoke, cells{{422, "VALIDATION_FAILED"}, invalid, expired, invalid, na, na, ok(200)}},
}

// authenticated reports whether the route checks API keys (some cell is an API_KEY_* refusal).
func (r matrixRow) authenticated() bool {
	for _, w := range r.want {
		if strings.HasPrefix(w.code, "API_KEY_") {
			return true
		}
	}
	return false
}

// tenant holds one account's key and resources.
type tenant struct {
	email      string
	key        string
	project    string
	deployment string // the project's first deployment
	workspace  string
	domain     string
	host       string // the domain's host name
}

// matrixFixtures are shared by every row: A owns everything, B is another paid tenant, C a
// free one with resources of its own (made while it was paid).
type matrixFixtures struct {
	t          *testing.T
	s          *testServer
	a, b, c    tenant
	expiredKey string // A's, unused past its idle lifetime
	revokedKey string // A's, revoked through POST /v1/auth/revoke
	rotatedKey string // A's, replaced through POST /v1/auth/refresh
	// expiredRefresh is the refresh token of the expired key's session: still valid (30 days).
	expiredRefresh string
	claimToken     string // of a temporary project
	oauthClientID  string // a registered OAuth client (oauthClient)
	seq            int
}

// of returns whose resources column c acts on.
func (f *matrixFixtures) of(c column) tenant {
	if c == colFree {
		return f.c
	}
	return f.a
}

// keys returns the Authorization values column c sends, each in its own request ("" for none).
// A malformed key is tried three ways: not a key, another scheme, and a well-formed key (right
// prefix, length and checksum) that was never issued.
func (f *matrixFixtures) keys(c column) []string {
	switch c {
	case colMalformed:
		body := strings.Repeat("0", 56)
		unknown := commands.APIKeyPrefix + body + fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body)))
		return []string{"Bearer lh_live_not-a-key", "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), "Bearer " + unknown}
	case colExpired:
		return []string{"Bearer " + f.expiredKey}
	case colRevoked:
		return []string{"Bearer " + f.revokedKey, "Bearer " + f.rotatedKey}
	case colOther:
		return []string{"Bearer " + f.b.key}
	case colFree:
		return []string{"Bearer " + f.c.key}
	case colOwner:
		return []string{"Bearer " + f.a.key}
	}
	return []string{""}
}

// fresh returns a new unique suffix, for bodies that must differ per request.
func (f *matrixFixtures) fresh() int {
	f.seq++
	return f.seq
}

func get(path string) func(*matrixFixtures, column) matrixReq {
	return func(*matrixFixtures, column) matrixReq { return matrixReq{method: http.MethodGet, path: path} }
}

func jsonReq(method, path string, v any) matrixReq {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return matrixReq{method: method, path: path, body: b, ctype: "application/json"}
}

func onProject(method, suffix string) func(*matrixFixtures, column) matrixReq {
	return func(f *matrixFixtures, c column) matrixReq {
		return matrixReq{method: method, path: "/v1/projects/" + f.of(c).project + suffix}
	}
}

func mcpGetProject(f *matrixFixtures, c column) matrixReq {
	return jsonReq(http.MethodPost, "/mcp", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{"name": "get_project", "arguments": map[string]any{"projectId": f.of(c).project}}})
}

func qrCode(f *matrixFixtures, c column) matrixReq {
	return matrixReq{method: "GET", path: "/qr/" + f.of(c).project + ".png"}
}

func onWorkspace(method string) func(*matrixFixtures, column) matrixReq {
	return func(f *matrixFixtures, c column) matrixReq {
		return matrixReq{method: method, path: "/v1/workspaces/" + f.of(c).workspace}
	}
}

func onDomain(method, suffix string) func(*matrixFixtures, column) matrixReq {
	return func(f *matrixFixtures, c column) matrixReq {
		return matrixReq{method: method, path: "/v1/domains/" + f.of(c).domain + suffix}
	}
}

func otpRequest(f *matrixFixtures, _ column) matrixReq {
	return jsonReq(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": fmt.Sprintf("nobody%d@example.com", f.fresh())})
}

// otpVerify presents a code for an address that never asked for one.
func otpVerify(f *matrixFixtures, _ column) matrixReq {
	return jsonReq(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": fmt.Sprintf("nobody%d@example.com", f.fresh()), "code": "123456"})
}

func refresh(f *matrixFixtures, c column) matrixReq {
	token := "not-a-refresh-token"
	if c == colOwner {
		token = f.expiredRefresh
	}
	return jsonReq(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": token})
}

func revoke(_ *matrixFixtures, _ column) matrixReq {
	return matrixReq{method: http.MethodPost, path: "/v1/auth/revoke"}
}

func (f *matrixFixtures) upload(method, path string, fields map[string]string) matrixReq {
	body, ctype := multipartBody(f.t, fields, upload{"index.html", []byte(fmt.Sprintf("<p>%d</p>", f.fresh()))})
	return matrixReq{method: method, path: path, body: body, ctype: ctype}
}

func tempUpload(f *matrixFixtures, _ column) matrixReq {
	return f.upload(http.MethodPost, "/v1/projects/temp", nil)
}

// createProject creates into A's workspace (B names it as another tenant's). The free column
// creates without one: free accounts may create projects, workspaces are a paid feature.
func createProject(f *matrixFixtures, c column) matrixReq {
	fields := map[string]string{"title": "Matrix", "workspaceId": f.of(c).workspace}
	if c == colFree {
		delete(fields, "workspaceId")
	}
	return f.upload(http.MethodPost, "/v1/projects", fields)
}

func pushProject(f *matrixFixtures, c column) matrixReq {
	return f.upload(http.MethodPut, "/v1/projects/"+f.of(c).project, nil)
}

func patchProject(f *matrixFixtures, c column) matrixReq {
	return jsonReq(http.MethodPatch, "/v1/projects/"+f.of(c).project, map[string]any{"title": fmt.Sprintf("Renamed %d", f.fresh())})
}

func rollback(f *matrixFixtures, c column) matrixReq {
	return jsonReq(http.MethodPost, "/v1/projects/"+f.of(c).project+"/rollback", map[string]any{"deploymentId": f.of(c).deployment})
}

func claimPage(method, suffix string) func(*matrixFixtures, column) matrixReq {
	return func(f *matrixFixtures, _ column) matrixReq {
		r := matrixReq{method: method, path: "/claim/" + f.claimToken + suffix}
		if method == http.MethodPost {
			field := map[string]string{"/email": "email=visitor%40example.com", "/code": "code=123456"}[suffix]
			r.body, r.ctype = []byte("csrf_token=forged&"+field), "application/x-www-form-urlencoded"
		}
		return r
	}
}

func oauthRegister(*matrixFixtures, column) matrixReq {
	return jsonReq(http.MethodPost, "/oauth/register", map[string]any{"client_name": "Matrix", "redirect_uris": []string{"https://app.example/cb"}})
}

// oauthClient registers one client per fixture set, for the rows that need a real one.
func (f *matrixFixtures) oauthClient() string {
	if f.oauthClientID == "" {
		r := f.s.do(http.MethodPost, "/oauth/register", map[string]any{"client_name": "Matrix", "redirect_uris": []string{"https://app.example/cb"}})
		id, _ := r.json(f.t)["client_id"].(string)
		if id == "" {
			f.t.Fatalf("register = %d %s", r.status, r.body)
		}
		f.oauthClientID = id
	}
	return f.oauthClientID
}

func oauthAuthorize(f *matrixFixtures, _ column) matrixReq {
	return matrixReq{method: http.MethodGet, path: "/oauth/authorize?response_type=code&client_id=" + f.oauthClient() +
		"&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_challenge=" + strings.Repeat("c", 43) + "&code_challenge_method=S256&state=matrix-state"}
}

func oauthPage(suffix string) func(*matrixFixtures, column) matrixReq {
	return func(*matrixFixtures, column) matrixReq {
		field := map[string]string{"/email": "email=visitor%40example.com", "/code": "code=123456", "/consent": "decision=allow"}[suffix]
		return matrixReq{method: http.MethodPost, path: "/oauth/authorize" + suffix, body: []byte("csrf_token=forged&" + field),
			ctype: "application/x-www-form-urlencoded"}
	}
}

func oauthForm(path, form string) func(*matrixFixtures, column) matrixReq {
	return func(f *matrixFixtures, _ column) matrixReq {
		return matrixReq{method: http.MethodPost, path: path, body: []byte(form + "&client_id=" + f.oauthClient()),
			ctype: "application/x-www-form-urlencoded"}
	}
}

func claim(f *matrixFixtures, _ column) matrixReq {
	return matrixReq{method: http.MethodPost, path: "/v1/projects/claim/" + f.claimToken}
}

func createWorkspace(f *matrixFixtures, _ column) matrixReq {
	return jsonReq(http.MethodPost, "/v1/workspaces", map[string]any{"name": fmt.Sprintf("Team %d", f.fresh())})
}

func renameWorkspace(f *matrixFixtures, c column) matrixReq {
	return jsonReq(http.MethodPatch, "/v1/workspaces/"+f.of(c).workspace, map[string]any{"name": fmt.Sprintf("Team %d", f.fresh())})
}

func addDomain(f *matrixFixtures, _ column) matrixReq {
	return jsonReq(http.MethodPost, "/v1/domains", map[string]any{"domain": fmt.Sprintf("new%d.matrix.example", f.fresh())})
}

// TestTenantIsolationMatrix runs every cell of the matrix against one real instance.
func TestTenantIsolationMatrix(t *testing.T) {
	// Keys live matrixKeyTTL without use, so one can be left to expire while the others are used.
	s, mb := startWithMail(t, "", map[string]string{"LITEHOST_ADMIN_TOKEN": testAdminToken,
		"LITEHOST_KEY_IDLE_TTL": matrixKeyTTL.String()})
	f := setUpMatrix(t, s, mb)

	// Every served route has a row, and every row a served route.
	rows := map[string]bool{}
	for _, r := range matrix {
		if rows[r.route] {
			t.Errorf("two rows for %s", r.route)
		}
		rows[r.route] = true
	}
	served := map[string]bool{}
	for _, r := range s.app.api.Routes() {
		served[r.Method+" "+r.Path] = true
		if !rows[r.Method+" "+r.Path] {
			t.Errorf("route %s %s has no row in the tenant-isolation matrix", r.Method, r.Path)
		}
	}
	for route := range rows {
		if !served[route] {
			t.Errorf("matrix row %s: no such route is served", route)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, r := range matrix {
		for c := column(0); c < colOwner; c++ {
			if r.want[c] != na {
				f.check(r, c)
			}
		}
	}
	f.checkForeignReferences()
	// The temporary uploads of the owner pass get a fresh per-minute window (3 per minute).
	s.advance(61 * time.Second)
	for _, r := range matrix {
		if r.want[colOwner] != na {
			f.check(r, colOwner)
		}
	}
}

// check sends row r's request for column c and compares the answer with the cell. A refused
// request must not have appended anything: no event of the global log carries its request ID,
// and none but the background processes' was appended meanwhile.
func (f *matrixFixtures) check(r matrixRow, c column) {
	f.t.Helper()
	for _, auth := range f.keys(c) {
		f.checkOne(r, c, auth)
	}
}

func (f *matrixFixtures) checkOne(r matrixRow, c column, auth string) {
	t := f.t
	t.Helper()
	w := r.want[c]
	mr := r.req(f, c)
	if path, _, _ := strings.Cut(mr.path, "?"); !routeMatches(r.route, mr.method, path) {
		t.Fatalf("row %s builds a request for %s %s", r.route, mr.method, mr.path)
	}
	head, err := f.s.app.head.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	reqID := fmt.Sprintf("matrix-%d", f.fresh())
	req, err := http.NewRequest(mr.method, f.s.srv.URL+mr.path, bytes.NewReader(mr.body))
	if err != nil {
		t.Fatal(err)
	}
	if mr.ctype != "" {
		req.Header.Set("Content-Type", mr.ctype)
	}
	if mr.accept != "" {
		req.Header.Set("Accept", mr.accept)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("X-Request-ID", reqID)
	if mr.method != http.MethodGet {
		// A key refused by authentication (A's own expired or revoked one among them) and A's
		// write share one Idempotency-Key per row: the refusal must not be recorded, or A's
		// write would be answered with its replay. Every other request has a key of its own.
		ik := reqID
		if strings.HasPrefix(w.code, "API_KEY_") || c == colOwner && r.authenticated() {
			ik = "matrix-" + strings.ReplaceAll(r.route, " ", "-")
		}
		req.Header.Set(commands.IdempotencyHeader, ik)
	}
	var res response
	if r.route == "GET /metrics" {
		res = rawSend(t, f.s, req) // Prometheus text, outside the JSON contract
	} else {
		res = f.s.send(req, mr.body, reqOpts{})
	}
	cell := fmt.Sprintf("%s × %s", r.route, columnNames[c])
	if len(f.keys(c)) > 1 {
		cell += fmt.Sprintf(" (%.16s…)", auth)
	}
	code := ""
	if res.status >= 400 && strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
		code = res.code(t)
	}
	if res.status != w.status || code != w.code {
		t.Errorf("%s = %d %s, want %d %s\n%s", cell, res.status, code, w.status, w.code, res.body)
	}
	if c == colOther {
		// Whatever another tenant is answered, it names nothing of A's.
		for _, secret := range []string{f.a.email, f.a.project, f.a.deployment, f.a.workspace, f.a.domain, f.a.host} {
			if strings.Contains(string(res.body), secret) {
				t.Errorf("%s: the answer names A's %q: %s", cell, secret, res.body)
			}
		}
	}
	if res.status < 400 {
		return
	}
	for _, e := range eventsAfter(t, f.s, head) {
		md, _ := events.ParseMetadata(e.Metadata)
		if md.RequestID == reqID || !strings.HasPrefix(md.Actor, "system:") {
			t.Errorf("%s was refused but appended %s (actor %s, request %s)", cell, e.Type, md.Actor, md.RequestID)
		}
	}
}

// checkForeignReferences sends B's writes that name A's workspace or domain in their bodies:
// each must be refused exactly like the same write naming an ID that does not exist, so the
// answer tells nothing about what A has, and nothing may be appended.
func (f *matrixFixtures) checkForeignReferences() {
	t := f.t
	s := f.s
	missingID := uuid.NewString()
	for _, field := range []string{"workspaceId", "domainId"} {
		foreignID := map[string]string{"workspaceId": f.a.workspace, "domainId": f.a.domain}[field]
		for _, send := range []struct {
			name string
			do   func(id string) response
		}{
			{"PATCH /v1/projects/:id", func(id string) response {
				return s.do(http.MethodPatch, "/v1/projects/"+f.b.project, map[string]any{field: id}, bearer(f.b.key))
			}},
			{"POST /v1/projects", func(id string) response {
				return s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "B", field: id},
					[]upload{{"index.html", []byte("<p>b</p>")}}, bearer(f.b.key))
			}},
		} {
			head, err := s.app.head.Head(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			foreign, absent := send.do(foreignID), send.do(missingID)
			if foreign.status != http.StatusUnprocessableEntity || foreign.code(t) != "VALIDATION_FAILED" ||
				!equalJSON(foreign.json(t)["fields"], absent.json(t)["fields"]) || absent.status != foreign.status {
				t.Errorf("%s naming A's %s = %d %s, naming a missing one = %d %s", send.name, field,
					foreign.status, foreign.body, absent.status, absent.body)
			}
			for _, e := range eventsAfter(t, s, head) {
				if md, _ := events.ParseMetadata(e.Metadata); !strings.HasPrefix(md.Actor, "system:") {
					t.Errorf("%s naming A's %s appended %s", send.name, field, e.Type)
				}
			}
		}
	}
}

// routeMatches reports whether a request for method and path is one of route ("METHOD /a/:id"),
// so a row cannot test another route than its own.
func routeMatches(route, method, path string) bool {
	m, pattern, _ := strings.Cut(route, " ")
	want, got := strings.Split(pattern, "/"), strings.Split(path, "/")
	if m != method || len(want) != len(got) {
		return false
	}
	for i := range want {
		if !strings.HasPrefix(want[i], ":") && want[i] != got[i] || got[i] == "" && want[i] != "" {
			return false
		}
	}
	return true
}

// rawSend sends req without the OpenAPI validation of testServer.send.
func rawSend(t *testing.T, s *testServer, req *http.Request) response {
	t.Helper()
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// eventsAfter returns the events of the global log after pos (system events of the store left
// out).
func eventsAfter(t *testing.T, s *testServer, pos events.Position) []events.RecordedEvent {
	t.Helper()
	var out []events.RecordedEvent
	for {
		recs, err := s.app.store.ReadAll(t.Context(), pos, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if !strings.HasPrefix(r.Type, "$") {
				out = append(out, r)
			}
		}
		if len(recs) < 500 {
			return out
		}
		pos = recs[len(recs)-1].Position
	}
}

// matrixKeyTTL is the idle lifetime of the matrix server's keys: the shortest allowed.
const matrixKeyTTL = 48 * time.Hour

// setUpMatrix signs in A (four sessions: one left to expire, one revoked, one rotated by a
// refresh, one in use), B and
// C, gives them plans, and makes A's and C's resources through the API (domains through the
// operator CLI, which adds them active).
func setUpMatrix(t *testing.T, s *testServer, mb *mailbox) *matrixFixtures {
	t.Helper()
	f := &matrixFixtures{t: t, s: s,
		a: tenant{email: "a@matrix.example"}, b: tenant{email: "b@matrix.example"}, c: tenant{email: "c@matrix.example"}}

	old := signIn(t, s, mb, f.a.email)
	f.expiredKey, f.expiredRefresh = old["apiKey"].(string), old["refreshToken"].(string)
	s.advance(matrixKeyTTL + time.Minute) // past the unused key's idle lifetime, within its refresh token's
	f.a.key = signIn(t, s, mb, f.a.email)["apiKey"].(string)
	s.advance(61 * time.Second) // the per-address cooldown
	f.revokedKey = signIn(t, s, mb, f.a.email)["apiKey"].(string)
	if r := s.do(http.MethodPost, "/v1/auth/revoke", nil, bearer(f.revokedKey)); r.status != http.StatusOK {
		t.Fatalf("revoke = %d %s", r.status, r.body)
	}
	s.advance(61 * time.Second)
	rot := signIn(t, s, mb, f.a.email)
	f.rotatedKey = rot["apiKey"].(string)
	if r := s.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": rot["refreshToken"]}); r.status != http.StatusOK {
		t.Fatalf("refresh = %d %s", r.status, r.body)
	}
	f.b.key = signIn(t, s, mb, f.b.email)["apiKey"].(string)
	f.c.key = signIn(t, s, mb, f.c.email)["apiKey"].(string)
	for _, tn := range []tenant{f.a, f.b, f.c} {
		setPlan(t, s, tn.email, "starter")
	}

	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Site of B"},
		[]upload{{"index.html", []byte("<p>b</p>")}}, bearer(f.b.key))
	if r.status != http.StatusCreated {
		t.Fatalf("create project = %d %s", r.status, r.body)
	}
	f.b.project = r.data(t)["projectId"].(string)
	for _, tn := range []*tenant{&f.a, &f.c} {
		r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Site of " + tn.email},
			[]upload{{"index.html", []byte("<p>v1</p>")}}, bearer(tn.key))
		if r.status != http.StatusCreated {
			t.Fatalf("create project = %d %s", r.status, r.body)
		}
		tn.project = r.data(t)["projectId"].(string)
		tn.deployment = historyOf(t, s, tn.project, tn.key)[0]["deploymentId"].(string)
		r = s.do(http.MethodPost, "/v1/workspaces", map[string]any{"name": "Team of " + tn.email}, bearer(tn.key))
		if r.status != http.StatusCreated {
			t.Fatalf("create workspace = %d %s", r.status, r.body)
		}
		tn.workspace = r.data(t)["id"].(string)
		host := strings.TrimSuffix(tn.email, "@matrix.example") + "-site.matrix.example"
		tn.host = host
		if out, err := runCLI(t, s, "admin", "domains", "add", "--owner", tn.email, host); err != nil {
			t.Fatalf("domains add: %v %s", err, out)
		}
		waitFor(t, func() bool {
			for _, d := range s.do(http.MethodGet, "/v1/domains", nil, bearer(tn.key)).data(t)["domains"].([]any) {
				if m := d.(map[string]any); m["domain"] == host {
					tn.domain = m["id"].(string)
				}
			}
			return tn.domain != ""
		})
	}
	setPlan(t, s, f.c.email, "free")

	// The matrix sends OTP requests and temporary uploads of its own: start their windows afresh
	// (the temporary project lives 15 minutes, so it comes after).
	s.advance(time.Hour + time.Minute)
	r = s.doUpload(http.MethodPost, "/v1/projects/temp", nil, []upload{{"index.html", []byte("<p>temp</p>")}})
	if r.status != http.StatusOK {
		t.Fatalf("temp upload = %d %s", r.status, r.body)
	}
	f.claimToken = r.data(t)["claimToken"].(string)
	return f
}

// setPlan moves tn to tier through the operator CLI and waits until the API sees it.
