package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/litehost/litehost/domain/otp"
)

// tempProject creates a temporary project and returns its answer's data.
func tempProject(t *testing.T, s *testServer) map[string]any {
	t.Helper()
	r := s.doUpload(http.MethodPost, "/v1/projects/temp", nil, []upload{{"index.html", []byte("<p>temp</p>")}})
	if r.status != http.StatusOK {
		t.Fatalf("temp = %d %s", r.status, r.body)
	}
	return r.data(t)
}

// browser is a cookie-keeping client of the HTML pages; every exchange is validated against
// openapi.yaml like the API's.
type browser struct {
	s       *testServer
	cookies map[string]*http.Cookie
}

func newBrowser(s *testServer) *browser { return &browser{s: s, cookies: map[string]*http.Cookie{}} }

// get and post load a page. post sends form url-encoded; opts add headers.
func (b *browser) get(path string, opts ...reqOpt) response {
	b.s.t.Helper()
	return b.send(http.MethodGet, path, nil, opts...)
}

func (b *browser) post(path string, form url.Values, opts ...reqOpt) response {
	b.s.t.Helper()
	return b.send(http.MethodPost, path, form, opts...)
}

func (b *browser) send(method, path string, form url.Values, opts ...reqOpt) response {
	b.s.t.Helper()
	var raw []byte
	if form != nil {
		raw = []byte(form.Encode())
	}
	req, err := http.NewRequest(method, b.s.srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		b.s.t.Fatalf("request: %v", err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	// What a browser sends for a form of the page itself.
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	var o reqOpts
	for _, opt := range opts {
		opt(req, &o)
	}
	r := b.s.send(req, raw, o)
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
			continue
		}
		b.cookies[c.Name] = &http.Cookie{Name: c.Name, Value: c.Value}
	}
	return r
}

var csrfPattern = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf returns the form token of a page.
func csrf(t *testing.T, r response) string {
	t.Helper()
	m := csrfPattern.FindSubmatch(r.body)
	if m == nil {
		t.Fatalf("no csrf_token in the page:\n%s", r.body)
	}
	return string(m[1])
}

func has(r response, s string) bool { return strings.Contains(string(r.body), s) }

// claimPath is the path of a claim URL on the test server.
func claimPath(t *testing.T, s *testServer, claimURL string) string {
	t.Helper()
	if !strings.HasPrefix(claimURL, s.srv.URL+"/claim/") {
		t.Fatalf("claimUrl = %q, want %s/claim/<token>", claimURL, s.srv.URL)
	}
	return strings.TrimPrefix(claimURL, s.srv.URL)
}

// unclaimed checks through the page that the project can still be claimed.
func unclaimed(t *testing.T, s *testServer, path string) {
	t.Helper()
	if r := newBrowser(s).get(path); r.status != http.StatusOK || !has(r, "Claim your project") {
		t.Errorf("claim page after a refused step = %d, want the unclaimed project:\n%s", r.status, r.body)
	}
}

func TestClaimPageSignsInAndClaims(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	d := tempProject(t, s)
	token, slug, id := d["claimToken"].(string), d["slug"].(string), d["projectId"].(string)
	path := claimPath(t, s, d["claimUrl"].(string))
	if path != "/claim/"+token {
		t.Fatalf("claim path = %q", path)
	}
	b := newBrowser(s)

	r := b.get(path)
	if r.status != http.StatusOK {
		t.Fatalf("GET claim page = %d %s", r.status, r.body)
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'nonce-", "form-action 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if got := r.header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q", got)
	}
	for _, want := range []string{`<html lang="en">`, `<label for="email">`, `id="email"`, slug, s.app.siteURL(slug)} {
		if !has(r, want) {
			t.Errorf("claim page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", " src=", "<link"} {
		if has(r, banned) {
			t.Errorf("claim page has %q: no scripts or outside resources", banned)
		}
	}
	setCookies := strings.Join(r.header.Values("Set-Cookie"), "\n")
	if !strings.Contains(setCookies, "HttpOnly") || !strings.Contains(setCookies, "SameSite=Strict") {
		t.Errorf("CSRF cookie = %q, want HttpOnly and SameSite=Strict", setCookies)
	}

	// E-mail step: the code goes out, the page asks for it.
	email := "page@example.com"
	r = b.post(path+"/email", url.Values{"csrf_token": {csrf(t, r)}, "email": {"Page@Example.com"}})
	if r.status != http.StatusOK || !has(r, "Enter your code") || !has(r, `<label for="code">`) {
		t.Fatalf("POST email = %d\n%s", r.status, r.body)
	}
	if strings.Contains(strings.Join(r.header.Values("Set-Cookie"), ";"), token) {
		t.Error("the state cookie holds the claim token")
	}
	code := mb.waitCode(t, email, 1)

	// A wrong code: announced, tied to its field, nothing claimed.
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	r = b.post(path+"/code", url.Values{"csrf_token": {csrf(t, r)}, "code": {wrong}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("wrong code = %d\n%s", r.status, r.body)
	}
	for _, want := range []string{`id="code-error" role="alert"`, `aria-describedby="code-hint code-error"`, `aria-invalid="true"`, "not correct"} {
		if !has(r, want) {
			t.Errorf("wrong-code page lacks %q:\n%s", want, r.body)
		}
	}
	unclaimed(t, s, path)

	// The state cookie belongs to this claim link only: on another project's page it is no
	// sign-in, and the code stays unspent.
	other := claimPath(t, s, tempProject(t, s)["claimUrl"].(string))
	if r := b.post(other+"/code", url.Values{"csrf_token": {csrf(t, b.get(other))}, "code": {code}}); r.status != http.StatusBadRequest || !has(r, `id="email"`) {
		t.Errorf("code on another claim link = %d, want 400 and the e-mail step:\n%s", r.status, r.body)
	}
	unclaimed(t, s, other)

	// The right code signs in and claims in the same request.
	r = b.post(path+"/code", url.Values{"csrf_token": {csrf(t, r)}, "code": {code[:3] + " " + code[3:]}})
	if r.status != http.StatusOK || !has(r, "Project claimed") || !has(r, s.app.siteURL(slug)) || !has(r, email) {
		t.Fatalf("right code = %d\n%s", r.status, r.body)
	}
	if _, ok := b.cookies["lh-state-claim"]; ok {
		t.Error("the state cookie outlives the claim")
	}
	// No credential outlives the request: the session the page opened is already revoked.
	var sessions, live int
	if err := s.app.pool.QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE s.revoked_at IS NULL)
		FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE a.email = $1`, email).Scan(&sessions, &live); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 || live != 0 {
		t.Errorf("sessions of %s after the page's claim: %d, %d live; want 1, 0 live", email, sessions, live)
	}

	// The API shows the project in that account (a sign-in of the same address).
	s.advance(61 * time.Second)
	key := signIn(t, s, mb, email)["apiKey"].(string)
	if got := s.do(http.MethodGet, "/v1/projects/"+id, nil, bearer(key)); got.status != http.StatusOK {
		t.Errorf("GET claimed project = %d %s", got.status, got.body)
	}
	if r := newBrowser(s).get(path); r.status != http.StatusConflict || !has(r, "Already claimed") {
		t.Errorf("claim page after the claim = %d\n%s", r.status, r.body)
	}
	if r := newBrowser(s).get("/claim/" + strings.Repeat("x", 32)); r.status != http.StatusNotFound {
		t.Errorf("unknown token = %d", r.status)
	}
	if strings.Contains(s.logs.String(), token) {
		t.Error("the claim token is in the server log")
	}
}

func TestClaimPageRefusesCrossSiteForms(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	path := claimPath(t, s, tempProject(t, s)["claimUrl"].(string))
	email := "csrf@example.com"
	b := newBrowser(s)
	token := csrf(t, b.get(path))

	refused := func(name string, r response) {
		t.Helper()
		if r.status != http.StatusForbidden || !has(r, "not accepted") {
			t.Errorf("%s = %d, want 403:\n%s", name, r.status, r.body)
		}
	}
	form := url.Values{"csrf_token": {token}, "email": {email}}
	refused("e-mail without the token", b.post(path+"/email", url.Values{"email": {email}}, malformed()))
	refused("e-mail with a wrong token", b.post(path+"/email", url.Values{"csrf_token": {token + "x"}, "email": {email}}))
	refused("e-mail without the cookie", newBrowser(s).post(path+"/email", form))
	refused("e-mail from another site", b.post(path+"/email", form, header("Sec-Fetch-Site", "cross-site")))
	refused("e-mail from a sibling site", b.post(path+"/email", form, header("Sec-Fetch-Site", "same-site")))
	refused("e-mail with a foreign Origin", b.post(path+"/email", form, header("Sec-Fetch-Site", ""), header("Origin", "http://evil.example")))

	r := b.post(path+"/email", form)
	if r.status != http.StatusOK {
		t.Fatalf("POST email = %d %s", r.status, r.body)
	}
	code := mb.waitCode(t, email, 1)
	if n := mb.count(email); n != 1 {
		t.Errorf("%d mails sent, want 1: a refused form must send none", n)
	}

	// Refused code steps spend nothing: the same code then claims.
	form = url.Values{"csrf_token": {csrf(t, r)}, "code": {code}}
	refused("code without the token", b.post(path+"/code", url.Values{"code": {code}}, malformed()))
	refused("code from another site", b.post(path+"/code", form, header("Sec-Fetch-Site", "cross-site")))
	refused("code with another visitor's token", b.post(path+"/code", url.Values{"csrf_token": {csrf(t, newBrowser(s).get(path))}, "code": {code}}))
	unclaimed(t, s, path)
	if r := b.post(path+"/code", form); r.status != http.StatusOK || !has(r, "Project claimed") {
		t.Errorf("code after the refused ones = %d\n%s", r.status, r.body)
	}
}

func TestClaimPageLimits(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	path := claimPath(t, s, tempProject(t, s)["claimUrl"].(string))
	b := newBrowser(s)
	r := b.get(path)

	// Bad input is the form again with the error tied to the field.
	r = b.post(path+"/email", url.Values{"csrf_token": {csrf(t, r)}, "email": {"not an address"}})
	if r.status != http.StatusUnprocessableEntity || !has(r, `id="email-error" role="alert"`) || !has(r, `aria-describedby="email-hint email-error"`) {
		t.Errorf("bad e-mail = %d\n%s", r.status, r.body)
	}

	// The API's per-client limit on code requests (10 an hour) holds for the page: the 11th
	// request from this address is a 429 page saying when to retry. (The refused bad e-mail
	// above never reached the command.)
	for i := range 10 {
		r = b.post(path+"/email", url.Values{"csrf_token": {csrf(t, r)}, "email": {"limit" + string(rune('a'+i)) + "@example.com"}})
		if r.status != http.StatusOK {
			t.Fatalf("request %d = %d\n%s", i+1, r.status, r.body)
		}
	}
	r = b.post(path+"/email", url.Values{"csrf_token": {csrf(t, r)}, "email": {"limitk@example.com"}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !has(r, "Please try again in") || !has(r, `role="alert"`) {
		t.Fatalf("11th code request = %d %v\n%s", r.status, r.header, r.body)
	}
	if mb.count("limitk@example.com") != 0 {
		t.Error("a code was sent past the limit")
	}

	// Wrong codes: the code is cancelled after the API's attempt cap, and the page says so.
	code := mb.waitCode(t, "limitj@example.com", 1)
	b2 := newBrowser(s)
	p := b2.get(path)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	// The state cookie of the last accepted e-mail step names limitj; b holds it.
	b2.cookies = b.cookies
	got := 0
	for range 6 {
		p = b2.post(path+"/code", url.Values{"csrf_token": {csrf(t, b2.get(path))}, "code": {wrong}})
		got = p.status
		if got == http.StatusTooManyRequests {
			break
		}
		if got != http.StatusUnprocessableEntity {
			t.Fatalf("wrong code = %d\n%s", got, p.body)
		}
	}
	if got != http.StatusTooManyRequests || !has(p, "try again in") {
		t.Errorf("after repeated wrong codes = %d\n%s", got, p.body)
	}
	unclaimed(t, s, path)
}

// The page's code checks count in the API's per-client wrong-code limit: a client that spent it
// on the API cannot go on guessing through the page.
func TestClaimPageSharesTheWrongCodeLimit(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	for i := range 4 {
		email := "guess" + string(rune('a'+i)) + "@example.com"
		if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": email}); r.status != http.StatusOK {
			t.Fatalf("request: %d %s", r.status, r.body)
		}
		code := mb.waitCode(t, email, 1)
		wrong := "000000"
		if code == wrong {
			wrong = "000001"
		}
		for range otp.MaxAttempts {
			s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": email, "code": wrong})
		}
	}
	path := claimPath(t, s, tempProject(t, s)["claimUrl"].(string))
	b := newBrowser(s)
	r := b.post(path+"/email", url.Values{"csrf_token": {csrf(t, b.get(path))}, "email": {"guesse@example.com"}})
	if r.status != http.StatusOK {
		t.Fatalf("POST email = %d\n%s", r.status, r.body)
	}
	code := mb.waitCode(t, "guesse@example.com", 1)
	r = b.post(path+"/code", url.Values{"csrf_token": {csrf(t, r)}, "code": {code}})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !has(r, "try again in") {
		t.Fatalf("page verify after 20 wrong codes from this client = %d\n%s", r.status, r.body)
	}
	unclaimed(t, s, path)
}

// browserTools returns node and the browser scripts' folder, with playwright-core installed there
// from its lockfile (never a browser: Debian's Chromium is used). .ci/run installs node and
// Chromium; a machine without them fails here with what to install, rather than skipping.
func browserTools(t *testing.T) (node, dir string) {
	t.Helper()
	dir, err := filepath.Abs("testdata/browser")
	if err != nil {
		t.Fatal(err)
	}
	node, err = exec.LookPath("node")
	if err != nil {
		t.Fatal("node is missing: apt-get install -y nodejs npm (as .ci/run does)")
	}
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatal("/usr/bin/chromium is missing: apt-get install -y chromium (as .ci/run does)")
	}
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err == nil {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			npmErr = fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
	return node, dir
}

var (
	npmOnce sync.Once
	npmErr  error
)

// TestClaimPageInBrowser claims a project in Debian's Chromium driven by Playwright
// (testdata/browser/claim.mjs): by keyboard, through the real mail.
func TestClaimPageInBrowser(t *testing.T) {
	node, dir := browserTools(t)

	s, mb := startWithMail(t, "", nil)
	d := tempProject(t, s)
	email := "browser@example.com"
	// The script asks this loopback endpoint for the code the server mailed.
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
	cmd := exec.CommandContext(ctx, node, "claim.mjs", d["claimUrl"].(string), email, codes.URL)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("browser claim: %v\n%s", err, out)
	}
	t.Logf("%s", out)

	s.advance(61 * time.Second)
	key := signIn(t, s, mb, email)["apiKey"].(string)
	r := s.do(http.MethodGet, "/v1/projects/"+d["projectId"].(string), nil, bearer(key))
	if r.status != http.StatusOK || r.data(t)["slug"] != d["slug"] {
		t.Errorf("project after the browser claim = %d %s", r.status, r.body)
	}
}

// lastCode returns the code in the newest message to rcpt.
func (mb *mailbox) lastCode(rcpt string) (string, bool) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	for i := len(mb.msgs) - 1; i >= 0; i-- {
		for _, to := range mb.msgs[i].to {
			if strings.EqualFold(to, rcpt) {
				if m := codePattern.FindStringSubmatch(mb.msgs[i].data); m != nil {
					return m[1], true
				}
			}
		}
	}
	return "", false
}
