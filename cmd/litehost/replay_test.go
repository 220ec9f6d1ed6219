package main

import (
	"bytes"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litehost/litehost/commands/projectsupload"
)

// forgetIdempotencyRows stands in for the 24 h after which (or the 5xx after which) a key's row
// is gone: only the command's own records are left to tell a replay from another request.
func forgetIdempotencyRows(t *testing.T, s *testServer) {
	t.Helper()
	if _, err := s.app.pool.Exec(t.Context(), `DELETE FROM idempotency_keys`); err != nil {
		t.Fatal(err)
	}
}

// The probes, with the row deleted: a PATCH under a reused key with another body is
// refused and the first change stays; the same body replays; a sign-in under a reused key for
// another address is refused, not run.
func TestReplayMustBeTheSameRequest(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "replay@example.com")["apiKey"].(string)
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Zero"},
		[]upload{{"index.html", []byte("<p>0</p>")}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	id := r.data(t)["projectId"].(string)
	path := "/v1/projects/" + id
	if out, err := runCLI(t, s, "admin", "set-plan", "replay@example.com", "starter"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)["plan"].(map[string]any)["tier"] == "starter"
	})
	title := func() any { return s.do(http.MethodGet, path, nil, bearer(key)).data(t)["title"] }

	if r := s.do(http.MethodPatch, path, map[string]any{"title": "One", "noIndex": true}, bearer(key), header("Idempotency-Key", "patch-1")); r.status != http.StatusOK {
		t.Fatalf("patch = %d %s", r.status, r.body)
	}
	forgetIdempotencyRows(t, s)
	before := countEvents(t, s)
	r = s.do(http.MethodPatch, path, map[string]any{"title": "Two"}, bearer(key), header("Idempotency-Key", "patch-1"))
	if r.status != http.StatusUnprocessableEntity || r.code(t) != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("patch with a reused key and another body = %d %s", r.status, r.body)
	}
	if got := title(); got != "One" {
		t.Errorf("title = %v after a refused patch, want One", got)
	}
	// The same request, however its JSON is spelled, is the first answer again.
	r = s.do(http.MethodPatch, path, "{ \"noIndex\" : true,\n  \"title\": \"One\" }", bearer(key), header("Idempotency-Key", "patch-1"))
	if r.status != http.StatusOK || r.data(t)["updated"] != true {
		t.Errorf("same patch replayed = %d %s", r.status, r.body)
	}
	// Without the durable record, the fingerprint in the events' metadata still refuses it.
	forgetIdempotencyRows(t, s)
	if _, err := s.app.pool.Exec(t.Context(), `DELETE FROM command_fingerprints`); err != nil {
		t.Fatal(err)
	}
	r = s.do(http.MethodPatch, path, map[string]any{"title": "Two"}, bearer(key), header("Idempotency-Key", "patch-1"))
	if r.status != http.StatusUnprocessableEntity || r.code(t) != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("patch refused by event metadata = %d %s", r.status, r.body)
	}
	if got, after := title(), countEvents(t, s); got != "One" || after != before {
		t.Errorf("after refused patches: title %v, %d events appended", got, after-before)
	}

	// A password is left out of the fingerprint, so a replay re-checks it against the stored slow
	// hash: another password under the key is refused and the site keeps the first one.
	slug := s.do(http.MethodGet, path, nil, bearer(key)).data(t)["slug"].(string)
	pw := map[string]any{"access": "password", "password": "first-password"}
	if r := s.do(http.MethodPatch, path, pw, bearer(key), header("Idempotency-Key", "patch-pw")); r.status != http.StatusOK {
		t.Fatalf("set password = %d %s", r.status, r.body)
	}
	forgetIdempotencyRows(t, s)
	if r := s.do(http.MethodPatch, path, pw, bearer(key), header("Idempotency-Key", "patch-pw")); r.status != http.StatusOK {
		t.Errorf("same password replayed = %d %s", r.status, r.body)
	}
	forgetIdempotencyRows(t, s)
	other := map[string]any{"access": "password", "password": "second-password"}
	if r := s.do(http.MethodPatch, path, other, bearer(key), header("Idempotency-Key", "patch-pw")); r.status != http.StatusUnprocessableEntity || r.code(t) != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("another password under the key = %d %s", r.status, r.body)
	}
	basic := func(p string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth("v", p) } }
	if code, _, _ := s.site(slug, "/", basic("first-password")); code != http.StatusOK {
		t.Errorf("site with the first password = %d", code)
	}
	if code, _, _ := s.site(slug, "/", basic("second-password")); code != http.StatusUnauthorized {
		t.Errorf("site with the refused password = %d", code)
	}

	// Sign-in under a reused key: another address (with its own valid code) is another request.
	s.advance(61 * time.Second)
	for _, email := range []string{"first@example.com", "second@example.com"} {
		if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": email}); r.status != http.StatusOK {
			t.Fatalf("otp request %s = %d %s", email, r.status, r.body)
		}
	}
	code1, code2 := mb.waitCode(t, "first@example.com", 1), mb.waitCode(t, "second@example.com", 1)
	if r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": "first@example.com", "code": code1}, header("Idempotency-Key", "verify-1")); r.status != http.StatusOK {
		t.Fatalf("verify = %d %s", r.status, r.body)
	}
	forgetIdempotencyRows(t, s)
	r = s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": "second@example.com", "code": code2}, header("Idempotency-Key", "verify-1"))
	if r.status != http.StatusUnprocessableEntity || r.code(t) != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("verify of another address under a reused key = %d %s", r.status, r.body)
	}
	// Its code was not consumed: under a key of its own it signs in.
	if r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": "second@example.com", "code": code2}, header("Idempotency-Key", "verify-2")); r.status != http.StatusOK {
		t.Errorf("verify under a new key = %d %s", r.status, r.body)
	}
}

// endless is a JSON body far larger than any route accepts; read counts what the server took
// (atomically: the client's transport may go on writing after the answer arrived).
type endless struct {
	size int64
	read atomic.Int64
}

func (e *endless) Read(p []byte) (int, error) {
	done := e.read.Load()
	if done >= e.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), e.size-done)
	for i := range p[:n] {
		p[i] = ' '
	}
	if done == 0 {
		p[0] = '{'
	}
	e.read.Add(n)
	return int(n), nil
}

// A body over a route's own limit is refused before it is hashed or stored: with an
// Idempotency-Key, an OTP request of 64 MiB (limit 16 KiB) gets 413, nothing is spooled, no row
// is kept, and the server stops reading long before the end.
func TestBodyLimitBeforeIdempotency(t *testing.T) {
	s := startServer(t, "", nil)
	spool := filepath.Join(s.app.cfg.DataDir, "tmp")
	for _, chunked := range []bool{false, true} {
		body := &endless{size: 64 << 20}
		req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/v1/auth/otp/request", body)
		if err != nil {
			t.Fatal(err)
		}
		if !chunked {
			req.ContentLength = body.size
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "big-1")
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(b, []byte(`"BODY_TOO_LARGE"`)) {
			t.Errorf("chunked=%v: %d %s", chunked, resp.StatusCode, b)
		}
		if n := body.read.Load(); n > 8<<20 {
			t.Errorf("chunked=%v: the server read %d bytes of a body over a 16 KiB limit", chunked, n)
		}
	}
	if n := countFiles(t, spool); n != 0 {
		t.Errorf("%d files in the spool", n)
	}
	var rows int
	if err := s.app.pool.QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%d idempotency rows kept (%v)", rows, err)
	}
	// Just under the limit, the route works as before (the contract is checked by s.do).
	if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": "small@example.com", "resend": false}, header("Idempotency-Key", "small")); r.status != http.StatusOK {
		t.Errorf("small otp request = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/auth/otp/request", `{"email":"a@example.com","x":"`+strings.Repeat("y", 17<<10)+`"}`, malformed()); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("17 KiB otp request without a key = %d %s", r.status, r.body)
	}
}

// Uploads keep streaming: with a key, a body past the in-memory head is spooled to disk to be
// fingerprinted, handed on whole, replayed, and the spool is empty afterwards.
func TestUploadWithKeyStreamsAndReplays(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "uploader@example.com")["apiKey"].(string)
	big := bytes.Repeat([]byte("<p>spooled</p>\n"), 150<<10) // 2.2 MiB
	files := []upload{{"index.html", big}}
	first := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Big"}, files, bearer(key), header("Idempotency-Key", "up-1"))
	if first.status != http.StatusCreated {
		t.Fatalf("create = %d %s", first.status, first.body)
	}
	// Another multipart boundary is the same request.
	again := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Big"}, files, bearer(key), header("Idempotency-Key", "up-1"))
	if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" ||
		again.data(t)["projectId"] != first.data(t)["projectId"] {
		t.Errorf("replay = %d %v %s", again.status, again.header, again.body)
	}
	if code, body, _ := s.site(first.data(t)["slug"].(string), "/"); code != http.StatusOK || len(body) != len(big) {
		t.Errorf("site = %d, %d bytes; want %d", code, len(body), len(big))
	}
	if n := countFiles(t, filepath.Join(s.app.cfg.DataDir, "tmp")); n != 0 {
		t.Errorf("%d files left in the spool", n)
	}
	other := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Other"}, files, bearer(key), header("Idempotency-Key", "up-1"))
	if other.status != http.StatusUnprocessableEntity || other.code(t) != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("another upload under the key = %d %s", other.status, other.body)
	}
}

// The temporary create's answer holds the claim token: it is never stored; a replay re-derives
// the same token from the project, and the token still claims.
func TestTemporaryCreateAnswerNotStored(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	files := []upload{{"index.html", []byte("<p>temp</p>")}}
	first := s.doUpload(http.MethodPost, "/v1/projects/temp", nil, files, header("Idempotency-Key", "temp-1"))
	if first.status != http.StatusOK {
		t.Fatalf("temp = %d %s", first.status, first.body)
	}
	token := first.data(t)["claimToken"].(string)
	var status int
	var body []byte
	if err := s.app.pool.QueryRow(t.Context(), `SELECT status, body FROM idempotency_keys WHERE key = 'temp-1'`).Scan(&status, &body); err != nil {
		t.Fatal(err)
	}
	if body != nil || status != -1 {
		t.Errorf("stored answer: status %d, body %q; want none", status, body)
	}
	var leaks int
	if err := s.app.pool.QueryRow(t.Context(), `SELECT count(*) FROM idempotency_keys WHERE coalesce(body::text, '') || coalesce(headers::text, '') LIKE $1`,
		"%"+token[32:]+"%").Scan(&leaks); err != nil || leaks != 0 {
		t.Errorf("%d rows hold the claim token (%v)", leaks, err)
	}
	again := s.doUpload(http.MethodPost, "/v1/projects/temp", nil, files, header("Idempotency-Key", "temp-1"))
	if again.status != http.StatusOK || again.data(t)["claimToken"] != token || again.data(t)["slug"] != first.data(t)["slug"] {
		t.Errorf("replay = %d %s, first %s", again.status, again.body, first.body)
	}
	// The row gone, the project's creation still answers the same request.
	forgetIdempotencyRows(t, s)
	if r := s.doUpload(http.MethodPost, "/v1/projects/temp", nil, files, header("Idempotency-Key", "temp-1")); r.status != http.StatusOK || r.data(t)["claimToken"] != token {
		t.Errorf("replay without the row = %d %s", r.status, r.body)
	}
	key := signIn(t, s, mb, "claims@example.com")["apiKey"].(string)
	wrong := token[:32] + strings.Repeat("0", 32)
	if r := s.do(http.MethodPost, "/v1/projects/claim/"+wrong, nil, bearer(key)); r.status != http.StatusNotFound {
		t.Errorf("wrong claim token = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/projects/claim/"+token, nil, bearer(key), header("Idempotency-Key", "claim-1")); r.status != http.StatusOK {
		t.Errorf("claim = %d %s", r.status, r.body)
	}
	// Another project claimed under the same key, once the row is gone, is another request: the
	// fingerprint keeps the project half of the token (the MAC half stays out).
	s.advance(61 * time.Second) // past the per-client window of temporary uploads
	second := s.doUpload(http.MethodPost, "/v1/projects/temp", nil, files)
	if second.status != http.StatusOK {
		t.Fatalf("second temp = %d %s", second.status, second.body)
	}
	forgetIdempotencyRows(t, s)
	other := second.data(t)["claimToken"].(string)
	if r := s.do(http.MethodPost, "/v1/projects/claim/"+other, nil, bearer(key), header("Idempotency-Key", "claim-1")); r.status != http.StatusUnprocessableEntity || r.code(t) != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("claim of another project under a reused key = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/projects/claim/"+token, nil, bearer(key), header("Idempotency-Key", "claim-1")); r.status != http.StatusOK {
		t.Errorf("the same claim replayed = %d %s", r.status, r.body)
	}
}

// Every served write route declares its body limit; a new one without a row fails here.
func TestEveryWriteRouteHasABodyLimit(t *testing.T) {
	s := startServer(t, "", nil)
	table := writeRoutes(projectsupload.New(s.app.blobs))
	served := map[string]bool{}
	for _, r := range s.app.api.Routes() {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			k := r.Method + " " + r.Path
			served[k] = true
			if row, ok := table[k]; !ok || row.MaxBody <= 0 {
				t.Errorf("%s has no body limit in writeRoutes", k)
			}
		}
	}
	for k := range table {
		if !served[k] {
			t.Errorf("writeRoutes lists %s, which is not served", k)
		}
	}
}
