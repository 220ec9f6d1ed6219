package readapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"html/template"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/semaphore"

	"github.com/litehost/litehost/events/blobs"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/internal/clientip"
	"github.com/litehost/litehost/internal/sitepassword"
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

	pw        SitePasswords
	hashSlots *semaphore.Weighted // bounds the argon2id checks running at once

	mu        sync.Mutex
	manifests map[string]blobs.Manifest // by hash: immutable, so safe to keep
	passwords map[[32]byte]bool         // checked (hash, client, password): argon2id is slow by design
}

// SitePasswords configures the password check of protected sites. Every argon2id check costs
// about 19 MiB and tens of milliseconds, so a guesser must not be able to run them without
// bound: failed attempts are limited per client and site before any hash is computed, and the
// checks running at once are bounded.
type SitePasswords struct {
	// Keyring opens sealed hashes; without it only old unsealed hashes can be checked.
	Keyring *secret.Keyring
	// Slots is how many checks may run at once (default: the number of CPUs).
	Slots int
	// SlotWait is how long a request waits for a free slot before a 503 (default 2 s).
	SlotWait time.Duration
	// Attempts limits failed attempts per bucket; nil: no limit (tests of other things).
	Attempts AttemptLimiter
	// Rehash replaces an outdated stored hash after a successful login; nil: never.
	Rehash PasswordRehasher
	// ClientIP returns the client address of a request as seen through the trusted proxies;
	// nil: the TCP peer.
	ClientIP func(*http.Request) string
	// OnHash, when set, is called with +1 before and -1 after every argon2id check (tests watch
	// the concurrency with it).
	OnHash func(delta int)
}

// AttemptLimiter counts failed password attempts across instances (commands.FailedAttempts).
type AttemptLimiter interface {
	// Reserve counts one attempt in bucket; a positive retryAfter refuses it.
	Reserve(ctx context.Context, bucket string, now time.Time) (retryAfter time.Duration, err error)
	// Refund gives back an attempt that was not a failure.
	Refund(ctx context.Context, bucket string) error
}

// PasswordRehasher replaces a project's stored password hash old, just checked against
// password, with a current one (commands.Projects).
type PasswordRehasher interface {
	RehashSitePassword(ctx context.Context, projectID, old, password string) error
}

// siteCacheMax bounds each cache; when full it starts over rather than tracking recency.
const siteCacheMax = 1024

// NewSites returns the site server for hosts under sitesDomain.
func NewSites(pool *pgxpool.Pool, bs SiteBlobs, sitesDomain string, now func() time.Time, logger *slog.Logger) *Sites {
	s := &Sites{pool: pool, blobs: bs, suffix: "." + strings.ToLower(strings.TrimSuffix(sitesDomain, ".")), now: now,
		logger: logger, manifests: map[string]blobs.Manifest{}, passwords: map[[32]byte]bool{}}
	return s.WithPasswords(SitePasswords{})
}

// WithPasswords sets how protected sites check passwords (see SitePasswords for the defaults).
func (s *Sites) WithPasswords(pw SitePasswords) *Sites {
	if pw.Slots <= 0 {
		pw.Slots = runtime.NumCPU()
	}
	if pw.SlotWait <= 0 {
		pw.SlotWait = 2 * time.Second
	}
	if pw.ClientIP == nil {
		pw.ClientIP = func(r *http.Request) string {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				return r.RemoteAddr
			}
			return host
		}
	}
	s.pw = pw
	s.hashSlots = semaphore.NewWeighted(int64(pw.Slots))
	return s
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
	ID, Type, Status, Access, ManifestHash, Title string
	PasswordHash                                  *string
	PageTitle                                     *string
	NoIndex, DisableDownloads                     bool
	Gone                                          bool
}

// siteQuery finds a servable project by slug; Gone covers archived and expired ones (expired by
// time even before the expiry process manager has recorded it).
const siteQuery = `SELECT id::text, type, status, access, manifest_hash, title, password_hash, page_title, no_index,
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
	err := s.pool.QueryRow(r.Context(), siteQuery, slug, s.now()).Scan(&p.ID, &p.Type, &p.Status, &p.Access, &p.ManifestHash,
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
	if p.Access == "password" && !s.authorize(w, r, slug, p) {
		return
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

// authorize checks the Basic password of a protected site and answers the request itself when
// it does not pass: 401 for a wrong or missing password, 429 with Retry-After once the client has
// used up its failed attempts on this site, 503 when every hashing slot stays busy. The order
// matters: the limit is taken before any hash is computed, so an attacker over the limit costs
// one upsert, and even a right password waits out the window (else the limit would be an oracle).
func (s *Sites) authorize(w http.ResponseWriter, r *http.Request, slug string, p siteRow) bool {
	challenge := func() {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+slug+`", charset="UTF-8"`)
		http.Error(w, "password required", http.StatusUnauthorized)
	}
	_, pw, ok := r.BasicAuth()
	if !ok || p.PasswordHash == nil {
		challenge() // nothing presented: no attempt, no work
		return false
	}
	stored := *p.PasswordHash
	client := clientip.Group(s.pw.ClientIP(r))
	// The cache is per client group: a right password that someone else already used must not
	// answer 200 to a guesser who is over the limit (that would be an oracle past the limit).
	key := sha256.Sum256([]byte(stored + "\x00" + client + "\x00" + pw))
	s.mu.Lock()
	known, seen := s.passwords[key]
	s.mu.Unlock()
	if seen && known {
		return true // a page's assets after its first request: checked already, no attempt
	}
	ctx := r.Context()
	bucket := "site-password:" + p.ID + ":" + client
	refund := func() {}
	if s.pw.Attempts != nil {
		retry, err := s.pw.Attempts.Reserve(ctx, bucket, s.now())
		if err != nil {
			s.fail(w, "count password attempt", err)
			return false
		}
		if retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry.Seconds()))))
			http.Error(w, "too many wrong passwords; try again later", http.StatusTooManyRequests)
			return false
		}
		refund = func() {
			if err := s.pw.Attempts.Refund(context.WithoutCancel(ctx), bucket); err != nil {
				s.logger.Warn("refund password attempt", "error", err)
			}
		}
	}
	if seen { // the same wrong password again: a failure, but the answer is known
		challenge()
		return false
	}
	phc, err := sitepassword.Open(s.pw.Keyring, stored)
	if err != nil {
		refund()
		s.fail(w, "open site password hash", err)
		return false
	}
	wait, cancel := context.WithTimeout(ctx, s.pw.SlotWait)
	err = s.hashSlots.Acquire(wait, 1)
	cancel()
	if err != nil {
		// Every slot stayed busy: shed the request rather than queue it (and the memory) without
		// bound. It was no failure of the client's.
		refund()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy; try again shortly", http.StatusServiceUnavailable)
		return false
	}
	good := s.verify(phc, pw)
	if good && s.pw.Rehash != nil && sitepassword.NeedsRehash(stored, phc) {
		// Still inside the slot: the rehash costs one more hash.
		if err := s.pw.Rehash.RehashSitePassword(context.WithoutCancel(ctx), p.ID, stored, pw); err != nil {
			s.logger.Warn("rehash site password", "project_id", p.ID, "error", err)
		}
	}
	s.hashSlots.Release(1)
	s.mu.Lock()
	if len(s.passwords) >= siteCacheMax {
		clear(s.passwords)
	}
	s.passwords[key] = good
	s.mu.Unlock()
	if !good {
		challenge()
		return false
	}
	refund()
	return true
}

func (s *Sites) verify(phc, pw string) bool {
	if s.pw.OnHash != nil {
		s.pw.OnHash(+1)
		defer s.pw.OnHash(-1)
	}
	return sitepassword.Verify(phc, pw)
}

// VerifySitePassword checks pw against an argon2id PHC string as written by
// commands.HashSitePassword ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
func VerifySitePassword(phc, pw string) bool { return sitepassword.Verify(phc, pw) }

func (s *Sites) fail(w http.ResponseWriter, op string, err error) {
	s.logger.Error("serve site", "op", op, "error", err)
	http.Error(w, "something went wrong", http.StatusInternalServerError)
}
