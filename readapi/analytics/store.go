package analytics

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/phuslu/iploc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/litehost/litehost/events/pgmigrate"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate creates or updates the visit table (its own migration set and version table, so it
// evolves apart from the read models, which a rebuild may truncate: visits cannot be rebuilt).
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	return pgmigrate.Up(ctx, pool, sub, "analytics_goose_version")
}

// Visit is a stored page view: a row of site_visits and a message of the visit feed.
type Visit struct {
	ProjectID string    `json:"projectId"`
	At        time.Time `json:"at"`
	Kind      Kind      `json:"kind"`
	Entry     bool      `json:"entry"`
	Country   *string   `json:"country"`
	Device    *string   `json:"device"`
	Browser   *string   `json:"browser"`
	OS        *string   `json:"os"`
	Referrer  *string   `json:"referrer"`
	Path      string    `json:"path"`
}

// Open reports whether the visit counts as an open: a person (not the owner) arriving at the
// site, not moving between its pages.
func (v Visit) Open() bool { return v.Kind == KindPerson && v.Entry }

// Publisher receives the visits of every stored batch (the NATS and SSE feed).
type Publisher interface {
	Publish(visits []Visit)
}

// Store is the Sink that classifies hits and writes them to PostgreSQL with COPY.
type Store struct {
	pool       *pgxpool.Pool
	classifier *Classifier
	owner      *OwnerTokens
	trusted    []netip.Prefix
	feed       Publisher
	requests   *prometheus.CounterVec
	logger     *slog.Logger
}

// NewStore returns the sink. trustedProxies (LITEHOST_TRUSTED_PROXIES: addresses or CIDRs) are
// the peers whose X-Forwarded-For names the client; feed may be nil.
func NewStore(pool *pgxpool.Pool, classifier *Classifier, owner *OwnerTokens, trustedProxies []string, feed Publisher,
	logger *slog.Logger) (*Store, error) {
	s := &Store{pool: pool, classifier: classifier, owner: owner, feed: feed, logger: logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "litehost_analytics_page_requests_total",
			Help: "Page requests of analytics-enabled sites by kind (person, owner, preview, bot); bots are not stored.",
		}, []string{"kind"})}
	for _, p := range trustedProxies {
		if !strings.Contains(p, "/") {
			a, err := netip.ParseAddr(p)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", p, err)
			}
			s.trusted = append(s.trusted, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", p, err)
		}
		s.trusted = append(s.trusted, pfx.Masked())
	}
	return s, nil
}

// Collectors are the store's metrics.
func (s *Store) Collectors() []prometheus.Collector { return []prometheus.Collector{s.requests} }

type siteProject struct {
	ID, Owner string
	Enabled   bool
}

// resolveQuery maps the slugs of a batch to their projects; projects with analytics off are
// skipped at once, before any hit of theirs is even classified.
const resolveQuery = `SELECT slug, id::text, COALESCE(owner_id::text, ''), analytics_enabled
	FROM projects WHERE slug = ANY($1)`

// Store classifies hits, drops bots and projects whose analytics are off, and COPYs the rest.
func (s *Store) Store(ctx context.Context, hits []Hit) error {
	slugs := make([]string, 0, len(hits))
	seen := map[string]bool{}
	for _, h := range hits {
		if !seen[h.Slug] {
			seen[h.Slug] = true
			slugs = append(slugs, h.Slug)
		}
	}
	rows, err := s.pool.Query(ctx, resolveQuery, slugs)
	if err != nil {
		return fmt.Errorf("resolve sites: %w", err)
	}
	projects := map[string]siteProject{}
	var slug string
	var p siteProject
	_, err = pgx.ForEachRow(rows, []any{&slug, &p.ID, &p.Owner, &p.Enabled}, func() error {
		projects[slug] = p
		return nil
	})
	if err != nil {
		return fmt.Errorf("resolve sites: %w", err)
	}
	visits := make([]Visit, 0, len(hits))
	for _, h := range hits {
		p, ok := projects[h.Slug]
		if !ok || !p.Enabled {
			continue
		}
		v, ok := s.visit(h, p)
		s.requests.WithLabelValues(string(v.Kind)).Inc()
		if ok {
			visits = append(visits, v)
		}
	}
	if len(visits) == 0 {
		return nil
	}
	_, err = s.pool.CopyFrom(ctx, pgx.Identifier{"site_visits"},
		[]string{"project_id", "at", "kind", "entry", "country", "device", "browser", "os", "referrer", "path"},
		pgx.CopyFromSlice(len(visits), func(i int) ([]any, error) {
			v := visits[i]
			return []any{v.ProjectID, v.At, string(v.Kind), v.Entry, v.Country, v.Device, v.Browser, v.OS, v.Referrer, v.Path}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy visits: %w", err)
	}
	if s.feed != nil {
		s.feed.Publish(visits)
	}
	return nil
}

// visit turns a hit of project p into a visit; false for a bot, which is not stored.
func (s *Store) visit(h Hit, p siteProject) (Visit, bool) {
	a := s.classifier.Classify(h.UserAgent)
	v := Visit{ProjectID: p.ID, At: h.At.UTC(), Kind: a.Kind, Path: h.Path, Entry: true}
	if a.Kind == KindBot {
		return v, false
	}
	if a.Kind == KindPerson && h.OwnerCookie != "" && p.Owner != "" &&
		s.owner.IsOwner(strings.Fields(h.OwnerCookie), p.ID, p.Owner, h.At) {
		v.Kind = KindOwner
	}
	if a.Kind != KindPreview {
		v.Browser, v.OS, v.Device = optional(a.Browser), optional(a.OS), optional(a.Device)
	}
	if ref, err := url.Parse(h.Referrer); err == nil && (ref.Scheme == "http" || ref.Scheme == "https") && ref.Host != "" {
		origin := ref.Scheme + "://" + strings.ToLower(ref.Host)
		v.Referrer = &origin
		v.Entry = !strings.EqualFold(ref.Host, h.Host)
	}
	v.Country = optional(country(s.clientAddr(h)))
	return v, true
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// clientAddr is the peer, or the nearest untrusted address of X-Forwarded-For when the peer is
// a trusted proxy (the rule gin applies to API requests).
func (s *Store) clientAddr(h Hit) netip.Addr {
	host, _, err := net.SplitHostPort(h.RemoteAddr)
	if err != nil {
		host = h.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	addr = addr.Unmap()
	if !s.isTrusted(addr) || h.ForwardedFor == "" {
		return addr
	}
	hops := strings.Split(h.ForwardedFor, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		a = a.Unmap()
		if !s.isTrusted(a) || i == 0 {
			return a
		}
	}
	return addr
}

func (s *Store) isTrusted(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// country maps an address to its ISO country code with the database embedded in iploc; private,
// loopback and unknown addresses have none.
func country(a netip.Addr) string {
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() {
		return ""
	}
	c := iploc.IPCountry(a)
	if len(c) != 2 || c == "ZZ" || c == "XX" || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return ""
	}
	return c
}

// pruneQuery deletes visits older than the retention, a bounded number per statement so that
// one prune never holds a long transaction.
const pruneQuery = `DELETE FROM site_visits WHERE ctid = ANY (ARRAY(
	SELECT ctid FROM site_visits WHERE at < $1 LIMIT 10000))`

// Prune deletes the visits recorded before cutoff and returns how many.
func Prune(ctx context.Context, pool *pgxpool.Pool, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := pool.Exec(ctx, pruneQuery, cutoff)
		if err != nil {
			return total, fmt.Errorf("prune visits: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return total, nil
		}
	}
}

// RunPrune prunes visits older than retention at start and then every interval until ctx ends.
// Every instance may run it: the deletes are idempotent.
func RunPrune(ctx context.Context, pool *pgxpool.Pool, retention, interval time.Duration, now func() time.Time,
	logger *slog.Logger) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := Prune(ctx, pool, now().Add(-retention)); err != nil && ctx.Err() == nil {
			logger.Warn("prune visits", "error", err)
		} else if n > 0 {
			logger.Info("pruned visits", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
