package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/jackc/pgx/v5"
)

// callback is a client's loopback redirect URI: it records the queries it is sent.
type callback struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []url.Values
}

func startCallback(t *testing.T) *callback {
	cb := &callback{}
	cb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb.mu.Lock()
		if r.URL.Path == "/callback" { // not the browser's /favicon.ico
			cb.got = append(cb.got, r.URL.Query())
		}
		cb.mu.Unlock()
		_, _ = io.WriteString(w, "signed in; you can close this tab")
	}))
	t.Cleanup(cb.srv.Close)
	return cb
}

func (cb *callback) uri() string { return cb.srv.URL + "/callback" }

func (cb *callback) last(t *testing.T) url.Values {
	t.Helper()
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if len(cb.got) == 0 {
		t.Fatal("the redirect URI was never called")
	}
	return cb.got[len(cb.got)-1]
}

// pkcePair returns a code verifier and its S256 challenge.
func pkcePair() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// register registers a public client for redirect and returns its client_id.
func registerClient(t *testing.T, s *testServer, name, redirect string) string {
	t.Helper()
	r := s.do(http.MethodPost, "/oauth/register", map[string]any{
		"client_name": name, "redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
	})
	if r.status != http.StatusCreated {
		t.Fatalf("register = %d %s", r.status, r.body)
	}
	id, _ := r.json(t)["client_id"].(string)
	if id == "" {
		t.Fatalf("no client_id: %s", r.body)
	}
	return id
}

// authorizeQuery is the authorization request of an MCP client.
func authorizeQuery(s *testServer, clientID, redirect, challenge, state string) string {
	return url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {state},
		"scope": {"litehost"}, "resource": {s.srv.URL + "/mcp"},
	}.Encode()
}

// postNoRedirect posts a page form like browser.post but answers the redirect itself instead of
// following it (the exchange is still checked against openapi.yaml).
func (b *browser) postNoRedirect(t *testing.T, path string, form url.Values) response {
	t.Helper()
	return b.noRedirect(t, http.MethodPost, path, form)
}

func (b *browser) noRedirect(t *testing.T, method, path string, form url.Values) response {
	t.Helper()
	var raw []byte
	if form != nil {
		raw = []byte(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	ctx := t.Context()
	route, params, err := b.s.router.FindRoute(req)
	if err != nil {
		t.Fatalf("no route for %s: %v", path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(raw))
	in.Request = vreq
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		t.Errorf("%s: request breaks the OpenAPI contract: %v", path, err)
	}
	in.Request = req
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		t.Errorf("%s → %d: response breaks the OpenAPI contract: %v", path, resp.StatusCode, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// signInThroughPage drives the sign-in page like a browser: e-mail, the mailed code, consent;
// then follows the redirect to the client's loopback URI. It returns the callback's query.
func signInThroughPage(t *testing.T, s *testServer, mb *mailbox, cb *callback, query, email string) url.Values {
	t.Helper()
	b := newBrowser(s)
	r := b.get("/oauth/authorize?" + query)
	if r.status != http.StatusOK || !has(r, `id="email"`) {
		t.Fatalf("authorize page = %d %s", r.status, r.body)
	}
	n := mb.count(email) + 1
	r = b.post("/oauth/authorize/email?"+query, url.Values{"csrf_token": {csrf(t, r)}, "email": {email}})
	if r.status != http.StatusOK || !has(r, `id="code"`) {
		t.Fatalf("email step = %d %s", r.status, r.body)
	}
	code := mb.waitCode(t, email, n)
	r = b.post("/oauth/authorize/code?"+query, url.Values{"csrf_token": {csrf(t, r)}, "code": {code}})
	if r.status != http.StatusOK || !has(r, "to manage your Litehost projects") {
		t.Fatalf("code step = %d %s", r.status, r.body)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+cb.srv.URL+";") {
		t.Errorf("consent CSP %q does not let the form redirect to the client", csp)
	}
	r = b.postNoRedirect(t, "/oauth/authorize/consent?"+query, url.Values{"csrf_token": {csrf(t, r)}, "decision": {"allow"}})
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther && r.status != http.StatusFound || !strings.HasPrefix(loc, cb.uri()+"?") {
		t.Fatalf("consent = %d Location %q %s", r.status, loc, r.body)
	}
	resp, err := http.Get(loc) // the browser follows the redirect to the client
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return cb.last(t)
}

// tokenRequest posts a form to /oauth/token.
func tokenRequest(s *testServer, form url.Values) response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return s.send(req, []byte(form.Encode()), reqOpts{})
}

func oauthErr(t *testing.T, r response) string {
	t.Helper()
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	e, _ := m["error"].(string)
	return e
}

func TestOAuthDiscoveryAndRegistration(t *testing.T) {
	s := startServer(t, "", nil)
	for _, p := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		m := s.do(http.MethodGet, p, nil).json(t)
		if m["resource"] != s.srv.URL+"/mcp" {
			t.Errorf("%s resource = %v, want %s/mcp", p, m["resource"], s.srv.URL)
		}
		if as, _ := m["authorization_servers"].([]any); len(as) != 1 || as[0] != s.srv.URL {
			t.Errorf("%s authorization_servers = %v", p, m["authorization_servers"])
		}
	}
	m := s.do(http.MethodGet, "/.well-known/oauth-authorization-server", nil).json(t)
	want := map[string]string{"issuer": s.srv.URL, "authorization_endpoint": s.srv.URL + "/oauth/authorize",
		"token_endpoint": s.srv.URL + "/oauth/token", "registration_endpoint": s.srv.URL + "/oauth/register"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("metadata %s = %v, want %s", k, m[k], v)
		}
	}
	if ms, _ := m["code_challenge_methods_supported"].([]any); len(ms) != 1 || ms[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v, want [S256]", m["code_challenge_methods_supported"])
	}

	for _, bad := range []string{"http://evil.example/cb", "https://app.example/cb#x", "javascript:alert(1)", "cursor://cb", "http://127.0.0.1.evil.example/cb"} {
		r := s.do(http.MethodPost, "/oauth/register", map[string]any{"client_name": "x", "redirect_uris": []string{bad}})
		if r.status != http.StatusBadRequest || oauthErr(t, r) != "invalid_redirect_uri" {
			t.Errorf("register %q = %d %s, want 400 invalid_redirect_uri", bad, r.status, r.body)
		}
	}
	r := s.do(http.MethodPost, "/oauth/register", map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "token_endpoint_auth_method": "client_secret_basic"})
	if r.status != http.StatusBadRequest || oauthErr(t, r) != "invalid_client_metadata" {
		t.Errorf("confidential registration = %d %s, want 400", r.status, r.body)
	}
	for _, ok := range []string{"https://app.example/cb", "http://127.0.0.1:8976/cb", "http://[::1]:1/cb", "http://localhost:3000/cb"} {
		registerClient(t, s, "Ok", ok)
	}
}

func TestOAuthRegistrationIsRateLimited(t *testing.T) {
	s := startServer(t, "", nil)
	for i := range 20 {
		registerClient(t, s, "c", "https://app.example/cb")
		_ = i
	}
	r := s.do(http.MethodPost, "/oauth/register", map[string]any{"redirect_uris": []string{"https://app.example/cb"}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("21st registration = %d %s, want 429 with Retry-After", r.status, r.body)
	}
}

func TestOAuthAuthorizationCodeFlow(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	cb := startCallback(t)
	clientID := registerClient(t, s, "Test Agent", cb.uri())

	// PKCE is required, S256 only: such requests go back to the client with an error.
	noPKCE := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {cb.uri()}, "state": {"state-12345678"}}
	plain := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {cb.uri()}, "state": {"state-12345678"},
		"code_challenge": {"abcdefghijabcdefghijabcdefghijabcdefghij123"}, "code_challenge_method": {"plain"}}
	for name, q := range map[string]url.Values{"no PKCE": noPKCE, "plain": plain} {
		r := newBrowser(s).noRedirect(t, http.MethodGet, "/oauth/authorize?"+q.Encode(), nil)
		loc, _ := url.Parse(r.header.Get("Location"))
		if r.status/100 != 3 || loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("%s: authorize = %d Location %v, want a redirect with error=invalid_request", name, r.status, loc)
		}
	}
	// Exact redirect URI: another loopback port is refused, without redirecting there.
	verifier, challenge := pkcePair()
	other := strings.Replace(cb.uri(), cb.srv.Listener.Addr().String(), "127.0.0.1:1", 1)
	if r := newBrowser(s).get("/oauth/authorize?" + authorizeQuery(s, clientID, other, challenge, "state-12345678")); r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
		t.Errorf("authorize with another port = %d Location %q, want 400 page", r.status, r.header.Get("Location"))
	}

	// A client ID is the signed registration: one with another redirect URI but the old
	// signature names no client.
	payload, sig, _ := strings.Cut(strings.TrimPrefix(clientID, "lhc_"), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	forgedPayload := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), cb.uri(), "https://evil.example/cb", 1)))
	forged := "lhc_" + forgedPayload + "." + sig
	if r := newBrowser(s).noRedirect(t, http.MethodGet, "/oauth/authorize?"+authorizeQuery(s, forged, "https://evil.example/cb", challenge, "state-12345678"), nil); r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
		t.Errorf("authorize with a forged client_id = %d Location %q, want 400 page", r.status, r.header.Get("Location"))
	}

	q := signInThroughPage(t, s, mb, cb, authorizeQuery(s, clientID, cb.uri(), challenge, "state-abcdefgh"), "agent@example.com")
	code := q.Get("code")
	if code == "" || q.Get("state") != "state-abcdefgh" || q.Get("iss") != s.srv.URL {
		t.Fatalf("callback query = %v", q)
	}
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb.uri()},
		"client_id": {clientID}, "code_verifier": {verifier}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range exchange {
			f[kk] = vv
		}
		f.Set(k, v)
		return f
	}
	wrongVerifier, _ := pkcePair()
	if r := tokenRequest(s, with("code_verifier", wrongVerifier)); r.status != http.StatusBadRequest || oauthErr(t, r) != "invalid_grant" {
		t.Errorf("wrong verifier = %d %s, want 400 invalid_grant", r.status, r.body)
	}
	if r := tokenRequest(s, with("redirect_uri", cb.srv.URL+"/other")); r.status != http.StatusBadRequest || oauthErr(t, r) != "invalid_grant" {
		t.Errorf("wrong redirect_uri = %d %s, want 400 invalid_grant", r.status, r.body)
	}
	other2 := registerClient(t, s, "Other", cb.uri())
	if r := tokenRequest(s, with("client_id", other2)); r.status != http.StatusBadRequest || oauthErr(t, r) != "invalid_grant" {
		t.Errorf("another client's code = %d %s, want 400 invalid_grant", r.status, r.body)
	}
	r := tokenRequest(s, exchange)
	if r.status != http.StatusOK {
		t.Fatalf("token = %d %s", r.status, r.body)
	}
	tok := r.json(t)
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	if !strings.HasPrefix(access, "lh_live_") || !strings.HasPrefix(refresh, "lh_refresh_") || tok["token_type"] != "bearer" && tok["token_type"] != "Bearer" {
		t.Fatalf("token answer = %s", r.body)
	}
	// The access token is an ordinary API key of the signed-in account.
	if u := s.do(http.MethodGet, "/v1/user", nil, bearer(access)); u.status != http.StatusOK || u.data(t)["email"] != "agent@example.com" {
		t.Fatalf("GET /v1/user with the access token = %d %s", u.status, u.body)
	}
	// The session the page's code verification opened is gone: the client's is the only one.
	waitFor(t, func() bool {
		var live int
		err := s.app.pool.QueryRow(t.Context(), `SELECT count(*) FROM sessions WHERE revoke_reason IS NULL`).Scan(&live)
		return err == nil && live == 1
	})
	// A code is single-use: its second use fails and ends the session the first one gave.
	if r := tokenRequest(s, exchange); r.status != http.StatusBadRequest || oauthErr(t, r) != "invalid_grant" {
		t.Errorf("code reuse = %d %s, want 400 invalid_grant", r.status, r.body)
	}
	if u := s.do(http.MethodGet, "/v1/user", nil, bearer(access)); u.status != http.StatusUnauthorized {
		t.Errorf("access token after code reuse = %d, want 401 (session revoked)", u.status)
	}
}

func TestOAuthRefreshRotatesAndRevokeEnds(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	cb := startCallback(t)
	clientID := registerClient(t, s, "Test Agent", cb.uri())
	tokens := func(email string) (string, string) {
		verifier, challenge := pkcePair()
		q := signInThroughPage(t, s, mb, cb, authorizeQuery(s, clientID, cb.uri(), challenge, "state-abcdefgh"), email)
		r := tokenRequest(s, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {cb.uri()},
			"client_id": {clientID}, "code_verifier": {verifier}})
		if r.status != http.StatusOK {
			t.Fatalf("token = %d %s", r.status, r.body)
		}
		m := r.json(t)
		return m["access_token"].(string), m["refresh_token"].(string)
	}
	access, refresh := tokens("refresh@example.com")
	r := tokenRequest(s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {clientID}})
	if r.status != http.StatusOK {
		t.Fatalf("refresh = %d %s", r.status, r.body)
	}
	m := r.json(t)
	access2, refresh2 := m["access_token"].(string), m["refresh_token"].(string)
	if access2 == access || refresh2 == refresh || !strings.HasPrefix(access2, "lh_live_") {
		t.Fatalf("refresh did not rotate: %s", r.body)
	}
	if u := s.do(http.MethodGet, "/v1/user", nil, bearer(access)); u.status != http.StatusUnauthorized {
		t.Errorf("rotated-away access token = %d, want 401", u.status)
	}
	if u := s.do(http.MethodGet, "/v1/user", nil, bearer(access2)); u.status != http.StatusOK {
		t.Errorf("new access token = %d, want 200", u.status)
	}
	// The old refresh token again is reuse: refused, and the whole session ends.
	r = tokenRequest(s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {clientID}})
	if r.status != http.StatusBadRequest || oauthErr(t, r) != "invalid_grant" {
		t.Errorf("refresh reuse = %d %s, want 400 invalid_grant", r.status, r.body)
	}
	if u := s.do(http.MethodGet, "/v1/user", nil, bearer(access2)); u.status != http.StatusUnauthorized {
		t.Errorf("access token after refresh reuse = %d, want 401", u.status)
	}

	// Revocation (RFC 7009) of an access token ends its session; of a refresh token too.
	revoke := func(token string) {
		t.Helper()
		form := url.Values{"token": {token}, "client_id": {clientID}}
		req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/oauth/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := s.send(req, []byte(form.Encode()), reqOpts{}); r.status != http.StatusOK {
			t.Fatalf("revoke = %d %s", r.status, r.body)
		}
	}
	access3, refresh3 := tokens("revoke@example.com")
	revoke(access3)
	if u := s.do(http.MethodGet, "/v1/user", nil, bearer(access3)); u.status != http.StatusUnauthorized {
		t.Errorf("revoked access token = %d, want 401", u.status)
	}
	if r := tokenRequest(s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh3}, "client_id": {clientID}}); r.status != http.StatusBadRequest {
		t.Errorf("refresh of a revoked session = %d, want 400", r.status)
	}
	access4, refresh4 := tokens("revoke2@example.com")
	revoke(refresh4)
	if u := s.do(http.MethodGet, "/v1/user", nil, bearer(access4)); u.status != http.StatusUnauthorized {
		t.Errorf("access token after revoking its refresh token = %d, want 401", u.status)
	}
	revoke("lh_refresh_unknown") // unknown tokens are fine (RFC 7009 §2.2)
}

func TestOAuthSignInPageRefusesCrossSiteAndForeignState(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	cb := startCallback(t)
	clientID := registerClient(t, s, "Test Agent", cb.uri())
	_, challenge := pkcePair()
	query := authorizeQuery(s, clientID, cb.uri(), challenge, "state-abcdefgh")
	b := newBrowser(s)
	r := b.get("/oauth/authorize?" + query)
	token := csrf(t, r)
	r = b.post("/oauth/authorize/email?"+query, url.Values{"csrf_token": {token}, "email": {"x@example.com"}}, header("Sec-Fetch-Site", "cross-site"))
	if r.status != http.StatusForbidden || mb.count("x@example.com") != 0 {
		t.Errorf("cross-site e-mail step = %d (mails %d), want 403 and none sent", r.status, mb.count("x@example.com"))
	}
	r = b.post("/oauth/authorize/email?"+query, url.Values{"csrf_token": {"forged"}, "email": {"x@example.com"}})
	if r.status != http.StatusForbidden {
		t.Errorf("forged CSRF token = %d, want 403", r.status)
	}
	// Consent without a signed-in state cookie of this very request is refused.
	r = b.postNoRedirect(t, "/oauth/authorize/consent?"+query, url.Values{"csrf_token": {token}, "decision": {"allow"}})
	if r.status != http.StatusBadRequest || r.header.Get("Location") != "" {
		t.Errorf("consent without sign-in = %d Location %q, want 400", r.status, r.header.Get("Location"))
	}
}

func TestOAuthSignInPageInBrowser(t *testing.T) {
	dir, err := filepath.Abs("testdata/browser")
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is missing: apt-get install -y nodejs npm (as .ci/run does)")
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("/usr/bin/chromium is missing: apt-get install -y chromium (as .ci/run does)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("playwright-core is missing: run PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci in %s (as .ci/run does)", dir)
	}
	s, mb := startWithMail(t, "", nil)
	cb := startCallback(t)
	clientID := registerClient(t, s, "Browser Agent", cb.uri())
	verifier, challenge := pkcePair()
	email := "oauth-browser@example.com"
	codes := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if code, ok := mb.lastCode(email); ok {
				_, _ = w.Write([]byte(code))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		http.Error(w, "no mail", http.StatusNotFound)
	}))
	defer codes.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	authorize := s.srv.URL + "/oauth/authorize?" + authorizeQuery(s, clientID, cb.uri(), challenge, "state-browser1")
	cmd := exec.CommandContext(ctx, node, "oauth.mjs", authorize, email, codes.URL, cb.uri())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("browser sign-in: %v\n%s", err, out)
	}
	q := cb.last(t)
	if q.Get("state") != "state-browser1" {
		t.Fatalf("callback query = %v", q)
	}
	r := tokenRequest(s, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {cb.uri()},
		"client_id": {clientID}, "code_verifier": {verifier}})
	if r.status != http.StatusOK {
		t.Fatalf("token after the browser sign-in = %d %s", r.status, r.body)
	}
	if u := s.do(http.MethodGet, "/v1/user", nil, bearer(r.json(t)["access_token"].(string))); u.status != http.StatusOK || u.data(t)["email"] != email {
		t.Errorf("GET /v1/user = %d %s", u.status, u.body)
	}
}

// TestOAuthStoresNoSecret: after registration, the sign-in page, a code exchange and a refresh,
// no table holds the authorization code (or its sealed body), the PKCE verifier, the issued
// tokens or their plain SHA-256: codes are sealed, client IDs signed, sessions keep only IDs.
func TestOAuthStoresNoSecret(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	cb := startCallback(t)
	clientID := registerClient(t, s, "Leak Check", cb.uri())
	verifier, challenge := pkcePair()
	q := signInThroughPage(t, s, mb, cb, authorizeQuery(s, clientID, cb.uri(), challenge, "state-abcdefgh"), "oauth-leak@example.com")
	r := tokenRequest(s, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {cb.uri()},
		"client_id": {clientID}, "code_verifier": {verifier}})
	if r.status != http.StatusOK {
		t.Fatalf("token = %d %s", r.status, r.body)
	}
	first := r.json(t)
	r = tokenRequest(s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}, "client_id": {clientID}})
	if r.status != http.StatusOK {
		t.Fatalf("refresh = %d %s", r.status, r.body)
	}
	second := r.json(t)
	needles := map[string]string{}
	add := func(what, v string) {
		needles[strings.ToLower(v)] = what
		sum := sha256.Sum256([]byte(v))
		needles[hex.EncodeToString(sum[:])] = "SHA-256 of the " + what
	}
	add("authorization code", q.Get("code"))
	add("sealed body of the code", strings.TrimPrefix(q.Get("code"), "lhcode_")[20:60])
	add("PKCE verifier", verifier)
	for i, tok := range []map[string]any{first, second} {
		add(fmt.Sprintf("access token %d", i), tok["access_token"].(string))
		add(fmt.Sprintf("refresh token %d", i), tok["refresh_token"].(string))
	}
	rows, err := s.app.pool.Query(t.Context(), `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
		FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	scanned := 0
	for _, table := range tables {
		rows, err := s.app.pool.Query(t.Context(), `SELECT lower(t::text) FROM `+table+` t`)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, row := range texts {
			scanned++
			for needle, what := range needles {
				if strings.Contains(row, needle) {
					t.Errorf("%s holds the %s: %.200s", table, what, row)
				}
			}
		}
	}
	if scanned < 10 {
		t.Fatalf("scanned %d rows of %v: too little to mean anything", scanned, tables)
	}
}

func TestOAuthTokenEndpointIsRateLimited(t *testing.T) {
	s := startServer(t, "", nil)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"lh_refresh_x"}, "client_id": {"lhc_x.y"}}
	for range 60 {
		if r := tokenRequest(s, form); r.status == http.StatusTooManyRequests {
			t.Fatalf("limited before 60 requests")
		}
	}
	if r := tokenRequest(s, form); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("61st token request = %d %s, want 429 with Retry-After", r.status, r.body)
	}
}
