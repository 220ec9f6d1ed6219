package readapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/events/blobs"
	"github.com/litehost/litehost/events/pgtest"
	"github.com/litehost/litehost/projections"
	"github.com/litehost/litehost/readapi"
)

type siteFile struct{ path, body string }

// putSite stores files and a manifest and inserts the project row the projects projector would.
func putSite(t *testing.T, pool *pgxpool.Pool, bs *blobs.Store, slug, typ, index string, files []siteFile, set string, args ...any) {
	t.Helper()
	m := blobs.Manifest{Type: typ, IndexPath: index}
	for _, f := range files {
		h, n, err := bs.Put(t.Context(), strings.NewReader(f.body))
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		m.Files = append(m.Files, blobs.ManifestFile{Path: f.path, SHA256: h, Size: n, ContentType: blobs.ContentType(f.path, nil)})
	}
	mh, err := bs.PutManifest(t.Context(), m)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	_, err = pool.Exec(t.Context(), `INSERT INTO projects (id, owner_id, temporary, title, slug, type, status, access,
		no_index, disable_downloads, analytics_enabled, active_deployment_id, manifest_hash, index_path, file_count,
		size_bytes, created_at, updated_at)
		VALUES ($1, $2, false, $3, $3, $4, 'public', 'public', false, false, true, $5, $6, $7, 1, 1, now(), now())`,
		uuid.NewString(), uuid.NewString(), slug, typ, uuid.NewString(), mh, index)
	if err != nil {
		t.Fatalf("insert project: %v", err)
	}
	if set != "" {
		if _, err := pool.Exec(t.Context(), `UPDATE projects SET `+set+` WHERE slug = $1`, append([]any{slug}, args...)...); err != nil {
			t.Fatalf("update project: %v", err)
		}
	}
}

func TestSites(t *testing.T) {
	pool := pgtest.NewPool(t)
	if err := projections.Migrate(t.Context(), pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	bs, err := blobs.New(t.TempDir())
	if err != nil {
		t.Fatalf("blobs: %v", err)
	}
	now := time.Now()
	html := []siteFile{{"index.html", "<h1>home</h1>"}, {"css/site.css", "body{}"}, {"about/index.html", "about"}, {"docs.html", "docs"}}
	putSite(t, pool, bs, "site", "html", "index.html", html, "no_index = true")
	putSite(t, pool, bs, "nested", "html", "dist/home.html", []siteFile{{"dist/home.html", "nested home"}}, "")
	putSite(t, pool, bs, "bundle", "files", "", []siteFile{{"report.pdf", "%PDF"}, {"data.csv", "a,b"}}, "")
	putSite(t, pool, bs, "nodl", "files", "", []siteFile{{"report.pdf", "%PDF"}}, "disable_downloads = true")
	putSite(t, pool, bs, "archived", "html", "index.html", html, "archived_at = now()")
	putSite(t, pool, bs, "private", "html", "index.html", html, "status = 'private'")
	putSite(t, pool, bs, "privacc", "html", "index.html", html, "access = 'private'")
	putSite(t, pool, bs, "timeout", "html", "index.html", html, "expires_at = $2", now.Add(-time.Second))
	putSite(t, pool, bs, "expired", "html", "index.html", html, "expired_at = now()")
	hash, err := commands.HashSitePassword("open sesame")
	if err != nil {
		t.Fatalf("hash: %v", err)
	}
	putSite(t, pool, bs, "locked", "html", "index.html", html, "access = 'password', password_hash = $2", hash)

	sites := readapi.NewSites(pool, bs, "sites.test", func() time.Time { return now }, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(sites)
	t.Cleanup(srv.Close)

	get := func(host, path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+path, nil)
		req.Host = host
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", host, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	tests := []struct {
		host, path  string
		status      int
		body, ctype string
	}{
		{"site.sites.test:8080", "/", 200, "<h1>home</h1>", "text/html; charset=utf-8"},
		{"SITE.sites.test", "/css/site.css", 200, "body{}", "text/css; charset=utf-8"},
		{"site.sites.test", "/about/", 200, "about", ""},
		{"site.sites.test", "/about", 200, "about", ""},
		{"site.sites.test", "/docs", 200, "docs", ""},
		{"site.sites.test", "/../index.html", 200, "<h1>home</h1>", ""},
		{"site.sites.test", "/missing.html", 404, "", ""},
		{"nested.sites.test", "/", 200, "nested home", ""},
		{"bundle.sites.test", "/data.csv", 200, "a,b", "text/csv; charset=utf-8"},
		{"nobody.sites.test", "/", 404, "", ""},
		{"archived.sites.test", "/", 404, "", ""},
		{"private.sites.test", "/", 404, "", ""},
		{"privacc.sites.test", "/", 404, "", ""},
		{"timeout.sites.test", "/", 404, "", ""},
		{"expired.sites.test", "/", 404, "", ""},
		{"locked.sites.test", "/", 401, "", ""},
		{"a.b.sites.test", "/", 404, "", ""},
		{"other.example", "/", 404, "", ""},
	}
	for _, tt := range tests {
		res, body := get(tt.host, tt.path)
		if res.StatusCode != tt.status {
			t.Errorf("%s%s = %d, want %d", tt.host, tt.path, res.StatusCode, tt.status)
			continue
		}
		if tt.body != "" && body != tt.body {
			t.Errorf("%s%s body = %q, want %q", tt.host, tt.path, body, tt.body)
		}
		if tt.ctype != "" && res.Header.Get("Content-Type") != tt.ctype {
			t.Errorf("%s%s type = %q, want %q", tt.host, tt.path, res.Header.Get("Content-Type"), tt.ctype)
		}
	}

	// ETag and conditional GET; noindex header.
	res, _ := get("site.sites.test", "/")
	etag := res.Header.Get("ETag")
	if len(etag) != 66 || res.Header.Get("X-Robots-Tag") != "noindex" {
		t.Errorf("etag %q, robots %q", etag, res.Header.Get("X-Robots-Tag"))
	}
	if res, _ := get("site.sites.test", "/", "If-None-Match", etag); res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET = %d, want 304", res.StatusCode)
	}
	if res, _ := get("bundle.sites.test", "/"); res.Header.Get("X-Robots-Tag") != "" {
		t.Errorf("robots header without noIndex")
	}

	// Password access: HTTP Basic, any user name.
	req := func(user, pw string) int {
		r, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/", nil)
		r.Host = "locked.sites.test"
		r.SetBasicAuth(user, pw)
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatalf("locked: %v", err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := req("anyone", "open sesame"); got != 200 {
		t.Errorf("right password = %d", got)
	}
	if got := req("x", "open sesame"); got != 200 {
		t.Errorf("right password again (cached) = %d", got)
	}
	if got := req("anyone", "wrong"); got != 401 {
		t.Errorf("wrong password = %d", got)
	}

	// Bundle listing: links unless downloads are disabled.
	_, page := get("bundle.sites.test", "/")
	if !strings.Contains(page, `href="/report.pdf"`) || !strings.Contains(page, "data.csv") {
		t.Errorf("listing = %s", page)
	}
	_, page = get("nodl.sites.test", "/")
	if strings.Contains(page, "href=") || !strings.Contains(page, "report.pdf") {
		t.Errorf("listing without downloads = %s", page)
	}

	r, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/", nil)
	r.Host = "site.sites.test"
	if res, err := http.DefaultClient.Do(r); err != nil || res.StatusCode != 405 {
		t.Errorf("POST to a site = %v, %v", res, err)
	}
}

func TestVerifySitePassword(t *testing.T) {
	h, err := commands.HashSitePassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	if !readapi.VerifySitePassword(h, "pw") || readapi.VerifySitePassword(h, "pw2") {
		t.Errorf("verify mismatch")
	}
	for _, bad := range []string{"", "$bcrypt$x", strings.Replace(h, "m=19456", "m=0", 1), h[:len(h)-3] + "!!!"} {
		if readapi.VerifySitePassword(bad, "pw") {
			t.Errorf("verified against %q", bad)
		}
	}
}
