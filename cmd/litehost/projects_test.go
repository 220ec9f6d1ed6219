package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litehost/litehost/events"
)

// upload is one file of a multipart request.
type upload struct {
	name    string
	content []byte
}

// multipartBody builds a multipart/form-data body with the fields and files.
func multipartBody(t *testing.T, fields map[string]string, files ...upload) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		part, err := w.CreateFormFile("files", f.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := part.Write(f.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), w.FormDataContentType()
}

// doUpload sends a multipart request validated like every other exchange.
func (s *testServer) doUpload(method, path string, fields map[string]string, files []upload, opts ...reqOpt) response {
	s.t.Helper()
	body, ctype := multipartBody(s.t, fields, files...)
	req, err := http.NewRequest(method, s.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	var o reqOpts
	for _, opt := range opts {
		opt(req, &o)
	}
	return s.send(req, body, o)
}

// site fetches path of the site at slug through the instance, by Host header, as a browser would.
func (s *testServer) site(slug, path string, opts ...func(*http.Request)) (int, string, http.Header) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.srv.URL+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Host = slug + "." + s.app.cfg.SitesDomain
	for _, o := range opts {
		o(req)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, content := range files {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// countEvents counts the events in the instance's global log.
func countEvents(t *testing.T, s *testServer) int {
	t.Helper()
	n := 0
	for from := events.Start; ; {
		recs, err := s.app.store.ReadAll(t.Context(), from, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if !strings.HasPrefix(r.Type, "$") {
				n++
			}
		}
		if len(recs) < 500 {
			return n
		}
		from = recs[len(recs)-1].Position
	}
}

func TestProjectsWalkthrough(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "owner@example.com")["apiKey"].(string)
	s.advance(61 * time.Second)
	otherKey := signIn(t, s, mb, "other@example.com")["apiKey"].(string)

	// Create on the free plan: version 1 is live at once.
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "My Site"},
		[]upload{{"index.html", []byte("<h1>v1</h1>")}, {"style.css", []byte("h1{}")}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	d := r.data(t)
	id, slug := d["projectId"].(string), d["slug"].(string)
	if slug != "my-site" || d["type"] != "html" {
		t.Errorf("create data = %v", d)
	}
	if q := d["quota"].(map[string]any)["projects"].(map[string]any); q["used"] != float64(1) {
		t.Errorf("quota after create = %v", q)
	}
	if code, body, hdr := s.site(slug, "/"); code != http.StatusOK || body != "<h1>v1</h1>" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("site = %d %q %v", code, body, hdr)
	}
	if code, _, hdr := s.site(slug, "/style.css"); code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/css") {
		t.Errorf("css = %d %v", code, hdr)
	}
	if want := s.app.siteURL(slug); d["url"] != want {
		t.Errorf("url = %v, want %s", d["url"], want)
	}

	// Free plan: pushing, history and archiving are paid features.
	r = s.doUpload(http.MethodPut, "/v1/projects/"+id, nil, []upload{{"index.html", []byte("v2")}}, bearer(key))
	if r.status != http.StatusForbidden || r.code(t) != "FREE_TIER_RESTRICTED" || r.json(t)["requiredTier"] != "starter" {
		t.Errorf("free push = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/projects/"+id+"/status", nil, bearer(key)); r.status != http.StatusForbidden {
		t.Errorf("free history = %d %s", r.status, r.body)
	}
	if out, err := runCLI(t, s, "admin", "set-plan", "owner@example.com", "starter"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)["plan"].(map[string]any)["tier"] == "starter"
	})

	// Push twice, then roll back to version 1: history has N+1 entries, newest first, one active.
	for _, v := range []string{"v2", "v3"} {
		r = s.doUpload(http.MethodPut, "/v1/projects/"+id, nil, []upload{{"index.html", []byte("<h1>" + v + "</h1>")}}, bearer(key))
		if r.status != http.StatusOK {
			t.Fatalf("push %s = %d %s", v, r.status, r.body)
		}
		if _, body, _ := s.site(slug, "/"); body != "<h1>"+v+"</h1>" {
			t.Errorf("after push %s the site serves %q", v, body)
		}
	}
	hist := historyOf(t, s, id, key)
	if len(hist) != 3 || hist[0]["version"] != float64(3) || hist[2]["version"] != float64(1) || activeCount(hist) != 1 || hist[0]["status"] != "active" {
		t.Fatalf("history = %v", hist)
	}
	r = s.do(http.MethodPost, "/v1/projects/"+id+"/rollback", map[string]any{"deploymentId": hist[2]["deploymentId"]}, bearer(key))
	if r.status != http.StatusOK {
		t.Fatalf("rollback = %d %s", r.status, r.body)
	}
	if _, body, _ := s.site(slug, "/"); body != "<h1>v1</h1>" {
		t.Errorf("after rollback the site serves %q", body)
	}
	if hist = historyOf(t, s, id, key); len(hist) != 4 || activeCount(hist) != 1 {
		t.Errorf("history after rollback = %v", hist)
	}

	// Archive hides the site and frees the quota; both directions are idempotent.
	for i := 0; i < 2; i++ {
		if r := s.do(http.MethodPost, "/v1/projects/"+id+"/archive", nil, bearer(key)); r.status != http.StatusOK {
			t.Fatalf("archive = %d %s", r.status, r.body)
		}
	}
	if code, _, _ := s.site(slug, "/"); code != http.StatusNotFound {
		t.Errorf("archived site = %d", code)
	}
	if r := s.doUpload(http.MethodPut, "/v1/projects/"+id, nil, []upload{{"index.html", []byte("x")}}, bearer(key)); r.status != http.StatusConflict || r.code(t) != "PROJECT_ARCHIVED" {
		t.Errorf("push to archived = %d %s", r.status, r.body)
	}
	list := s.do(http.MethodGet, "/v1/projects?archived=true", nil, bearer(key)).data(t)["projects"].([]any)
	if len(list) != 1 {
		t.Errorf("archived list = %v", list)
	}
	if r := s.do(http.MethodPost, "/v1/projects/"+id+"/unarchive", nil, bearer(key)); r.status != http.StatusOK || r.data(t)["archived"] != false {
		t.Fatalf("unarchive = %d %s", r.status, r.body)
	}
	if code, _, _ := s.site(slug, "/"); code != http.StatusOK {
		t.Errorf("unarchived site = %d", code)
	}

	// PATCH: password access needs HTTP Basic on the site.
	r = s.do(http.MethodPatch, "/v1/projects/"+id, map[string]any{"access": "password", "password": "s3cret", "noIndex": true}, bearer(key))
	if r.status != http.StatusOK {
		t.Fatalf("patch = %d %s", r.status, r.body)
	}
	if code, _, _ := s.site(slug, "/"); code != http.StatusUnauthorized {
		t.Errorf("password site without credentials = %d", code)
	}
	code, body, hdr := s.site(slug, "/", func(r *http.Request) { r.SetBasicAuth("anyone", "s3cret") })
	if code != http.StatusOK || body != "<h1>v1</h1>" || hdr.Get("X-Robots-Tag") == "" {
		t.Errorf("password site with credentials = %d %q %v", code, body, hdr)
	}
	if r := s.do(http.MethodPatch, "/v1/projects/"+id, map[string]any{"title": ""}, bearer(key)); r.status != http.StatusUnprocessableEntity || r.code(t) != "VALIDATION_FAILED" {
		t.Errorf("empty title = %d %s", r.status, r.body)
	}

	// Tenancy: the other account sees nothing, everywhere.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/projects/" + id}, {http.MethodGet, "/v1/projects/" + id + "/status"},
		{http.MethodDelete, "/v1/projects/" + id}, {http.MethodPost, "/v1/projects/" + id + "/archive"},
		{http.MethodPost, "/v1/projects/" + id + "/unarchive"},
	} {
		if r := s.do(c.method, c.path, nil, bearer(otherKey)); r.status != http.StatusNotFound && r.status != http.StatusForbidden {
			t.Errorf("%s %s as another account = %d %s", c.method, c.path, r.status, r.body)
		} else if r.status == http.StatusForbidden && r.code(t) != "FREE_TIER_RESTRICTED" {
			t.Errorf("%s %s as another account = %d %s", c.method, c.path, r.status, r.body)
		}
	}
	if r := s.do(http.MethodPatch, "/v1/projects/"+id, map[string]any{"title": "mine"}, bearer(otherKey)); r.status == http.StatusOK {
		t.Errorf("PATCH as another account succeeded")
	}
	if list := s.do(http.MethodGet, "/v1/projects?archived=all", nil, bearer(otherKey)).data(t)["projects"].([]any); len(list) != 0 {
		t.Errorf("other account lists %v", list)
	}

	// Bad list queries are 422.
	for _, q := range []string{"limit=0", "limit=101", "archived=maybe", "offset=-1"} {
		if r := s.do(http.MethodGet, "/v1/projects?"+q, nil, bearer(key), malformed()); r.status != http.StatusUnprocessableEntity {
			t.Errorf("list ?%s = %d %s", q, r.status, r.body)
		}
	}

	// Delete: gone from the API and the site; deleting again is 404.
	if r := s.do(http.MethodDelete, "/v1/projects/"+id, nil, bearer(key)); r.status != http.StatusOK {
		t.Fatalf("delete = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodGet, "/v1/projects/"+id, nil, bearer(key)); r.status != http.StatusNotFound {
		t.Errorf("get deleted = %d", r.status)
	}
	if r := s.do(http.MethodDelete, "/v1/projects/"+id, nil, bearer(key)); r.status != http.StatusNotFound {
		t.Errorf("delete again = %d", r.status)
	}
	if code, _, _ := s.site(slug, "/"); code != http.StatusNotFound {
		t.Errorf("deleted site = %d", code)
	}
}

func historyOf(t *testing.T, s *testServer, id, key string) []map[string]any {
	t.Helper()
	r := s.do(http.MethodGet, "/v1/projects/"+id+"/status", nil, bearer(key))
	if r.status != http.StatusOK {
		t.Fatalf("history = %d %s", r.status, r.body)
	}
	var out []map[string]any
	for _, d := range r.json(t)["data"].([]any) {
		out = append(out, d.(map[string]any))
	}
	return out
}

func activeCount(hist []map[string]any) int {
	n := 0
	for _, d := range hist {
		if d["status"] == "active" {
			n++
		}
	}
	return n
}

func TestUploadRulesAndBadInputChangeNothing(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := signIn(t, s, mb, "zips@example.com")["apiKey"].(string)
	blobDir := filepath.Join(s.app.cfg.DataDir, "blobs")

	before, blobsBefore := countEvents(t, s), countFiles(t, blobDir)
	bad := []struct {
		name   string
		fields map[string]string
		files  []upload
		status int
		code   string
	}{
		{"several html", map[string]string{"title": "z"}, []upload{{"site.zip", zipOf(t, map[string]string{"index.html": "a", "docs/index.html": "b", "about.htm": "c"})}}, 400, "ZIP_MULTIPLE_HTML"},
		{"wrong index", map[string]string{"title": "z", "zipIndexHtmlPath": "nope.html"}, []upload{{"site.zip", zipOf(t, map[string]string{"index.html": "a", "b.html": "b"})}}, 400, "ZIP_MULTIPLE_HTML"},
		{"zip slip", map[string]string{"title": "z"}, []upload{{"evil.zip", zipOf(t, map[string]string{"../../etc/passwd": "x"})}}, 400, "ZIP_INVALID_PATH"},
		{"absolute path", map[string]string{"title": "z"}, []upload{{"evil.zip", zipOf(t, map[string]string{"/etc/passwd": "x"})}}, 400, "ZIP_INVALID_PATH"},
		{"no title", nil, []upload{{"index.html", []byte("x")}}, 422, "VALIDATION_FAILED"},
		{"no files", map[string]string{"title": "z"}, nil, 422, "VALIDATION_FAILED"},
		{"bad slug", map[string]string{"title": "z", "slug": "Not A Label"}, []upload{{"index.html", []byte("x")}}, 422, "VALIDATION_FAILED"},
		{"reserved slug", map[string]string{"title": "z", "slug": "admin"}, []upload{{"index.html", []byte("x")}}, 422, "VALIDATION_FAILED"},
		{"password access without password", map[string]string{"title": "z", "access": "password"}, []upload{{"index.html", []byte("x")}}, 422, "VALIDATION_FAILED"},
		{"bad expiresIn", map[string]string{"title": "z", "expiresIn": "forever"}, []upload{{"index.html", []byte("x")}}, 422, "VALIDATION_FAILED"},
	}
	for _, c := range bad {
		r := s.doUpload(http.MethodPost, "/v1/projects", c.fields, c.files, bearer(key), malformed())
		if r.status != c.status || r.code(t) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
		if c.code == "ZIP_MULTIPLE_HTML" {
			if paths, _ := r.json(t)["htmlPaths"].([]any); len(paths) < 2 {
				t.Errorf("%s: htmlPaths = %v", c.name, r.json(t)["htmlPaths"])
			}
		}
	}
	if r := s.do(http.MethodPost, "/v1/projects", `{"title":"json is not multipart"}`, bearer(key), malformed()); r.status != http.StatusBadRequest && r.status != http.StatusUnsupportedMediaType {
		t.Errorf("JSON body = %d %s", r.status, r.body)
	}
	if after := countEvents(t, s); after != before {
		t.Errorf("rejected uploads appended %d events", after-before)
	}
	if after := countFiles(t, blobDir); after != blobsBefore {
		t.Errorf("rejected uploads left %d files in the blob store", after-blobsBefore)
	}

	// The multi-HTML ZIP works once the homepage is named; a ZIP without HTML is a file bundle.
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Docs", "zipIndexHtmlPath": "docs/index.html"},
		[]upload{{"site.zip", zipOf(t, map[string]string{"index.html": "<p>root</p>", "docs/index.html": "<p>docs</p>"})}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("zip with index = %d %s", r.status, r.body)
	}
	if _, body, _ := s.site(r.data(t)["slug"].(string), "/"); body != "<p>docs</p>" {
		t.Errorf("zip homepage = %q", body)
	}
	r = s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Files"},
		[]upload{{"bundle.zip", zipOf(t, map[string]string{"a.pdf": "%PDF", "b.txt": "hello"})}}, bearer(key))
	if r.status != http.StatusCreated || r.data(t)["type"] != "files" {
		t.Fatalf("bundle = %d %s", r.status, r.body)
	}
	if code, body, _ := s.site(r.data(t)["slug"].(string), "/"); code != http.StatusOK || !strings.Contains(body, "b.txt") {
		t.Errorf("bundle listing = %d %q", code, body)
	}
	// The free plan's third project is its last.
	r = s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Third", "slug": "handbook"}, []upload{{"index.html", []byte("x")}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("third = %d %s", r.status, r.body)
	}
	r = s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Fourth"}, []upload{{"index.html", []byte("x")}}, bearer(key))
	if r.status != http.StatusForbidden || r.code(t) != "PROJECT_LIMIT_REACHED" {
		t.Errorf("fourth on free = %d %s", r.status, r.body)
	}
	// Slugs are unique across accounts: another account asking for a taken slug gets 409.
	s.advance(61 * time.Second)
	other := signIn(t, s, mb, "second@example.com")["apiKey"].(string)
	r = s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Mine", "slug": "handbook"}, []upload{{"index.html", []byte("x")}}, bearer(other))
	if r.status != http.StatusConflict || r.code(t) != "SLUG_TAKEN" {
		t.Errorf("taken slug = %d %s", r.status, r.body)
	}
}

func TestTemporaryProjectAndClaim(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	r := s.doUpload(http.MethodPost, "/v1/projects/temp", nil, []upload{{"index.html", []byte("<p>temp</p>")}})
	if r.status != http.StatusOK {
		t.Fatalf("temp = %d %s", r.status, r.body)
	}
	d := r.data(t)
	token, slug := d["claimToken"].(string), d["slug"].(string)
	if _, body, _ := s.site(slug, "/"); body != "<p>temp</p>" {
		t.Errorf("temp site = %q", body)
	}
	if r := s.do(http.MethodPost, "/v1/projects/claim/"+token, nil); r.status != http.StatusUnauthorized {
		t.Errorf("claim without key = %d", r.status)
	}
	key := signIn(t, s, mb, "claimer@example.com")["apiKey"].(string)
	r = s.do(http.MethodPost, "/v1/projects/claim/"+token, nil, bearer(key))
	if r.status != http.StatusOK || r.data(t)["expiresAt"] == nil {
		t.Fatalf("claim = %d %s (free plan: expires in 7 days)", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/projects/claim/"+token, nil, bearer(key)); r.status != http.StatusConflict || r.code(t) != "ALREADY_CLAIMED" {
		t.Errorf("claim again = %d %s", r.status, r.body)
	}
	if r := s.do(http.MethodPost, "/v1/projects/claim/not-a-token", nil, bearer(key)); r.status != http.StatusNotFound {
		t.Errorf("unknown token = %d %s", r.status, r.body)
	}
	list := s.do(http.MethodGet, "/v1/projects", nil, bearer(key)).data(t)["projects"].([]any)
	if len(list) != 1 {
		t.Errorf("claimed project not listed: %v", list)
	}

	// Temporary limits: more than 5 files is refused, and an unclaimed project expires.
	six := make([]upload, 6)
	for i := range six {
		six[i] = upload{fmt.Sprintf("f%d.txt", i), []byte("x")}
	}
	if r := s.doUpload(http.MethodPost, "/v1/projects/temp", nil, six); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("6 files = %d %s", r.status, r.body)
	}
	r = s.doUpload(http.MethodPost, "/v1/projects/temp", nil, []upload{{"index.html", []byte("bye")}})
	if r.status != http.StatusOK {
		t.Fatalf("temp 2 = %d %s", r.status, r.body)
	}
	gone, token2 := r.data(t)["slug"].(string), r.data(t)["claimToken"].(string)
	// Per-IP limit: 3 uploads a minute (the refused one counted too), shared by every instance.
	limited := s.doUpload(http.MethodPost, "/v1/projects/temp", nil, []upload{{"index.html", []byte("x")}})
	if limited.status != http.StatusTooManyRequests || limited.code(t) != "RATE_LIMITED" || limited.header.Get("Retry-After") == "" {
		t.Errorf("4th temp upload in a minute = %d %v %s", limited.status, limited.header, limited.body)
	}
	s.advance(16 * time.Minute)
	waitFor(t, func() bool { code, _, _ := s.site(gone, "/"); return code == http.StatusNotFound })
	if r := s.do(http.MethodPost, "/v1/projects/claim/"+token2, nil, bearer(key)); r.status != http.StatusNotFound {
		t.Errorf("claim after expiry = %d %s", r.status, r.body)
	}
}
