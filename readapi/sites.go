package readapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/argon2"

	"github.com/litehost/litehost/events/blobs"
)

// SiteBlobs is the part of the blob store the site server reads.
type SiteBlobs interface {
	GetManifest(h string) (blobs.Manifest, error)
	Open(h string) (*os.File, int64, error)
}

// Sites serves the hosted sites (DESIGN §7): a request whose Host is <slug>.<sites domain> gets
// the active deployment of that project, from the blob store. Private, archived, expired and
// deleted projects are 404; password access is HTTP Basic (any user name). Files are served with
// their manifest content type and ETag = sha256, so conditional requests answer 304.
type Sites struct {
	pool   *pgxpool.Pool
	blobs  SiteBlobs
	suffix string // "." + sites domain, lowercase
	now    func() time.Time
	logger *slog.Logger

	mu        sync.Mutex
	manifests map[string]blobs.Manifest // by hash: immutable, so safe to keep
	passwords map[[32]byte]bool         // checked (hash, password) pairs: argon2id is slow by design
}

// siteCacheMax bounds each cache; when full it starts over rather than tracking recency.
const siteCacheMax = 1024

// NewSites returns the site server for hosts under sitesDomain.
func NewSites(pool *pgxpool.Pool, bs SiteBlobs, sitesDomain string, now func() time.Time, logger *slog.Logger) *Sites {
	return &Sites{pool: pool, blobs: bs, suffix: "." + strings.ToLower(strings.TrimSuffix(sitesDomain, ".")), now: now,
		logger: logger, manifests: map[string]blobs.Manifest{}, passwords: map[[32]byte]bool{}}
}

// Slug returns the site slug of a Host header value and whether it names a site at all.
func (s *Sites) Slug(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	label, ok := strings.CutSuffix(host, s.suffix)
	if !ok || label == "" || strings.Contains(label, ".") {
		return "", false
	}
	return label, true
}

// Middleware serves site hosts and passes every other request on to the API routes. It goes
// first in the engine so that a site path like /v1 is never mistaken for the API.
func (s *Sites) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		slug, ok := s.Slug(c.Request.Host)
		if !ok {
			c.Next()
			return
		}
		s.serve(c.Writer, c.Request, slug)
		c.Abort()
	}
}

// ServeHTTP serves r as a site request (404 when its host is not a site).
func (s *Sites) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	slug, ok := s.Slug(r.Host)
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.serve(w, r, slug)
}

type siteRow struct {
	Type, Status, Access, ManifestHash, Title string
	PasswordHash                              *string
	PageTitle                                 *string
	NoIndex, DisableDownloads                 bool
	Gone                                      bool
}

// siteQuery finds a servable project by slug; Gone covers archived and expired ones (expired by
// time even before the expiry process manager has recorded it).
const siteQuery = `SELECT type, status, access, manifest_hash, title, password_hash, page_title, no_index,
	disable_downloads,
	(archived_at IS NOT NULL OR expired_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at <= $2)) AS gone
	FROM projects WHERE slug = $1`

func siteNotFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("404 site or page not found\n"))
}

func (s *Sites) serve(w http.ResponseWriter, r *http.Request, slug string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var p siteRow
	err := s.pool.QueryRow(r.Context(), siteQuery, slug, s.now()).Scan(&p.Type, &p.Status, &p.Access, &p.ManifestHash,
		&p.Title, &p.PasswordHash, &p.PageTitle, &p.NoIndex, &p.DisableDownloads, &p.Gone)
	if errors.Is(err, pgx.ErrNoRows) {
		siteNotFound(w)
		return
	}
	if err != nil {
		s.fail(w, "read site", err)
		return
	}
	if p.Gone || p.Status == "private" || p.Access == "private" {
		siteNotFound(w)
		return
	}
	if p.Access == "password" {
		_, pw, ok := r.BasicAuth()
		if !ok || p.PasswordHash == nil || !s.checkPassword(*p.PasswordHash, pw) {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+slug+`", charset="UTF-8"`)
			http.Error(w, "password required", http.StatusUnauthorized)
			return
		}
	}
	if p.NoIndex {
		w.Header().Set("X-Robots-Tag", "noindex")
	}
	m, err := s.manifest(p.ManifestHash)
	if err != nil {
		s.fail(w, "read manifest", err)
		return
	}
	rel := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if rel == "" && m.Type == blobs.TypeFiles {
		s.listing(w, r, p, m)
		return
	}
	f, ok := lookup(m, rel, r.URL.Path)
	if !ok {
		siteNotFound(w)
		return
	}
	s.file(w, r, f)
}

// lookup maps a request path to a file: the exact path, the homepage for "/", then index.html
// inside a directory and a ".html" extension, the way static hosts resolve pretty URLs.
func lookup(m blobs.Manifest, rel, raw string) (blobs.ManifestFile, bool) {
	if rel == "" {
		return m.Lookup(m.IndexPath)
	}
	if !strings.HasSuffix(raw, "/") {
		if f, ok := m.Lookup(rel); ok {
			return f, true
		}
		if f, ok := m.Lookup(rel + ".html"); ok {
			return f, true
		}
	}
	return m.Lookup(rel + "/index.html")
}

func (s *Sites) file(w http.ResponseWriter, r *http.Request, f blobs.ManifestFile) {
	fh, _, err := s.blobs.Open(f.SHA256)
	if err != nil {
		s.fail(w, "open blob", err)
		return
	}
	defer fh.Close()
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	h.Set("ETag", `"`+f.SHA256+`"`)
	// Revalidate every time: a push changes what a URL serves, and the ETag makes it a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, fh)
}

var listingPage = template.Must(template.New("listing").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
{{if .NoIndex}}<meta name="robots" content="noindex">{{end}}
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}
table{width:100%;border-collapse:collapse}td{padding:.4rem;border-bottom:1px solid #ddd}td.size{text-align:right}</style>
</head><body><h1>{{.Title}}</h1>
<table>{{range .Files}}<tr><td>{{if $.Links}}<a href="/{{.Path}}" download>{{.Path}}</a>{{else}}{{.Path}}{{end}}</td><td class="size">{{.Size}} bytes</td></tr>
{{end}}</table></body></html>
`))

// listing is the page of a file bundle: every file with its size, linked unless downloads are
// disabled.
func (s *Sites) listing(w http.ResponseWriter, r *http.Request, p siteRow, m blobs.Manifest) {
	title := p.Title
	if p.PageTitle != nil && *p.PageTitle != "" {
		title = *p.PageTitle
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	err := listingPage.Execute(w, struct {
		Title   string
		NoIndex bool
		Links   bool
		Files   []blobs.ManifestFile
	}{title, p.NoIndex, !p.DisableDownloads, m.Files})
	if err != nil {
		s.logger.Debug("write listing", "error", err)
	}
}

func (s *Sites) manifest(h string) (blobs.Manifest, error) {
	s.mu.Lock()
	m, ok := s.manifests[h]
	s.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err := s.blobs.GetManifest(h)
	if err != nil {
		return m, err
	}
	s.mu.Lock()
	if len(s.manifests) >= siteCacheMax {
		clear(s.manifests)
	}
	s.manifests[h] = m
	s.mu.Unlock()
	return m, nil
}

// checkPassword verifies pw against an argon2id PHC string, remembering the outcome for the
// pair so a page's many asset requests pay the slow hash once.
func (s *Sites) checkPassword(phc, pw string) bool {
	key := sha256.Sum256([]byte(phc + "\x00" + pw))
	s.mu.Lock()
	ok, seen := s.passwords[key]
	s.mu.Unlock()
	if seen {
		return ok
	}
	ok = VerifySitePassword(phc, pw)
	s.mu.Lock()
	if len(s.passwords) >= siteCacheMax {
		clear(s.passwords)
	}
	s.passwords[key] = ok
	s.mu.Unlock()
	return ok
}

// VerifySitePassword checks pw against an argon2id PHC string as written by
// commands.HashSitePassword ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
func VerifySitePassword(phc, pw string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<20 || t > 16 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func (s *Sites) fail(w http.ResponseWriter, op string, err error) {
	s.logger.Error("serve site", "op", op, "error", err)
	http.Error(w, "something went wrong", http.StatusInternalServerError)
}
