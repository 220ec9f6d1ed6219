package readapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Domains serves GET /v1/domains and GET /v1/domains/{id} (spec §4.5, DESIGN §12): the caller's
// custom domains, oldest first, with their project counts; one domain with its projects. Paid
// plans only. It also answers the site server's question which project a custom host names.
type Domains struct {
	pool       *pgxpool.Pool
	challenges ChallengeTokens
	siteURL    func(slug, hostname string) string
}

// ChallengeTokens derives a domain's DNS challenge token; *secret.Keyring implements it. The
// token is derived rather than read so that no table holds it.
type ChallengeTokens interface {
	DomainChallenge(domainID string) string
}

// NewDomains returns the domain read handlers over pool; challenges derives the verification
// record's token, siteURL renders the address of a site on a custom domain (DomainSiteURL).
func NewDomains(pool *pgxpool.Pool, challenges ChallengeTokens, siteURL func(slug, hostname string) string) *Domains {
	return &Domains{pool: pool, challenges: challenges, siteURL: siteURL}
}

// DomainSiteURL renders http(s)://<slug>.<hostname>[:port], the address of a site on a custom
// domain (spec §1.1); the port is left out when it is the scheme's default or 0.
func DomainSiteURL(scheme string, port int) func(slug, hostname string) string {
	suffix := ""
	if port != 0 && !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) {
		suffix = ":" + strconv.Itoa(port)
	}
	return func(slug, hostname string) string { return scheme + "://" + slug + "." + hostname + suffix }
}

// Register adds the routes to r (the /v1 group), each behind require.
func (d *Domains) Register(r gin.IRoutes, require gin.HandlerFunc) {
	r.GET("/domains", require, d.list)
	r.GET("/domains/:id", require, d.get)
}

// Domain is spec §5.3.
type Domain struct {
	ID           string `json:"id"`
	Domain       string `json:"domain"`
	Status       string `json:"status"`
	VerifiedAt   *Time  `json:"verifiedAt"`
	ProjectCount int    `json:"projectCount"`
	CreatedAt    Time   `json:"createdAt"`
}

// DomainProject is a project assigned to a domain.
type DomainProject struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Slug  string `json:"slug"`
	URL   string `json:"url"`
}

// VerificationRecord is the DNS TXT record that proves control of a domain.
type VerificationRecord struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// DomainDetail is GET /v1/domains/{id}: Domain, the projects assigned to it (oldest assignment
// first), and the verification record (DESIGN §12).
type DomainDetail struct {
	Domain
	Projects     []DomainProject    `json:"projects"`
	Verification VerificationRecord `json:"verification"`
}

type domainRow struct {
	ID           string
	Hostname     string
	Status       string
	VerifiedAt   *time.Time
	ProjectCount int
	CreatedAt    time.Time
}

func (r domainRow) domain() Domain {
	return Domain{ID: r.ID, Domain: r.Hostname, Status: r.Status, VerifiedAt: timePtr(r.VerifiedAt),
		ProjectCount: r.ProjectCount, CreatedAt: Time(r.CreatedAt)}
}

const domainColumns = `d.id::text AS id, d.hostname, d.status, d.verified_at,
	(SELECT count(*) FROM domain_projects p WHERE p.domain_id = d.id)::int AS project_count, d.created_at`

const domainsQuery = `SELECT ` + domainColumns + ` FROM custom_domains d WHERE d.owner_id = $1
	ORDER BY d.created_at, d.id`

func (d *Domains) list(c *gin.Context) {
	accountID, ok := paidCaller(c, d.pool)
	if !ok {
		return
	}
	got, err := QueryAll[domainRow](c.Request.Context(), d.pool, "list domains", domainsQuery, accountID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := make([]Domain, len(got))
	for i, r := range got {
		out[i] = r.domain()
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{"domains": out}})
}

const domainQuery = `SELECT ` + domainColumns + ` FROM custom_domains d WHERE d.id = $1 AND d.owner_id = $2`

const domainProjectsQuery = `SELECT project_id::text AS id, title, slug FROM domain_projects
	WHERE domain_id = $1 ORDER BY created_at, project_id`

type domainProjectRow struct {
	ID, Title, Slug string
}

func (d *Domains) get(c *gin.Context) {
	accountID, ok := paidCaller(c, d.pool)
	if !ok {
		return
	}
	id, ok := pathID(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	row, err := queryOne[domainRow](ctx, d.pool, "get domain", domainQuery, id, accountID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	ps, err := QueryAll[domainProjectRow](ctx, d.pool, "domain projects", domainProjectsQuery, id)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := DomainDetail{Domain: row.domain(), Projects: make([]DomainProject, len(ps)),
		Verification: VerificationRecord{Type: "TXT", Name: "_litehost-challenge." + row.Hostname,
			Value: "litehost-verification=" + d.challenges.DomainChallenge(row.ID)}}
	for i, p := range ps {
		out.Projects[i] = DomainProject{ID: p.ID, Title: p.Title, Slug: p.Slug, URL: d.siteURL(p.Slug, row.Hostname)}
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": out})
}

// customHostQuery finds the project a host <slug>.<hostname> names: assigned to that domain,
// and the domain active (a domain still waiting for its DNS challenge serves nothing).
const customHostQuery = `SELECT p.slug FROM domain_projects p JOIN custom_domains d ON d.id = p.domain_id
	WHERE d.hostname = $1 AND p.slug = $2 AND d.status IN ('active', 'ssl_active')`

// SlugForHost returns the slug of the project served at host (a Host header value, port
// allowed) on a custom domain, and false when host names none. The site server then serves that
// slug as it serves <slug>.<sites domain>, with the same rules (private, archived, expired → 404).
func (d *Domains) SlugForHost(ctx context.Context, host string) (string, bool, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	slug, hostname, ok := strings.Cut(host, ".")
	if !ok || slug == "" || !strings.Contains(hostname, ".") {
		return "", false, nil
	}
	var got string
	err := d.pool.QueryRow(ctx, customHostQuery, hostname, slug).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("custom host %s: %w", host, err)
	}
	return got, true, nil
}

// HostMiddleware lets the site server answer custom-domain hosts: a request whose Host is
// <slug>.<custom domain> of an active domain gets Host <slug>.<sitesDomain> (the port kept), so
// Sites.Middleware, which must come right after it, serves that project with its usual rules.
// Hosts of the API and of the sites domain pass through untouched, without a query.
func (d *Domains) HostMiddleware(sitesDomain string, apiHosts ...string) gin.HandlerFunc {
	suffix := "." + strings.ToLower(strings.TrimSuffix(sitesDomain, "."))
	skip := map[string]bool{}
	for _, h := range apiHosts {
		skip[strings.ToLower(h)] = true
	}
	return func(c *gin.Context) {
		host, port, err := net.SplitHostPort(c.Request.Host)
		if err != nil {
			host, port = c.Request.Host, ""
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if skip[host] || strings.HasSuffix(host, suffix) || net.ParseIP(host) != nil || !strings.Contains(host, ".") {
			c.Next()
			return
		}
		slug, ok, err := d.SlugForHost(c.Request.Context(), host)
		if err != nil {
			_ = c.Error(err)
			c.Abort()
			return
		}
		if ok {
			c.Request.Host = slug + suffix
			if port != "" {
				c.Request.Host = net.JoinHostPort(c.Request.Host, port)
			}
		}
		c.Next()
	}
}
