package analytics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/readapi"
)

// ErrFeatureLocked is the answer of the analytics routes to an owner on the free plan: 403
// FEATURE_LOCKED (spec §2.4, [S4]).
var ErrFeatureLocked = readapi.ErrFeatureLocked{
	Message: "Link opens are not available on the free plan. Upgrade to a paid plan (starter or higher) to see them."}

// Limits of the lists in the answer.
const (
	recentOpensMax  = 20
	topCountriesMax = 10
)

// Handler serves GET /v1/projects/{id}/analytics and its owner link.
type Handler struct {
	pool      *pgxpool.Pool
	owner     *OwnerTokens
	siteURL   func(slug string) string
	domainURL func(slug, hostname string) string
	now       func() time.Time
}

// NewHandler returns the routes; siteURL and domainURL render a project's address as the project
// routes do (domainURL may be nil).
func NewHandler(pool *pgxpool.Pool, owner *OwnerTokens, siteURL func(string) string, domainURL func(string, string) string,
	now func() time.Time) *Handler {
	return &Handler{pool: pool, owner: owner, siteURL: siteURL, domainURL: domainURL, now: now}
}

// Register adds the routes to r (the /v1 group), each behind require.
func (h *Handler) Register(r gin.IRoutes, require gin.HandlerFunc) {
	r.GET("/projects/:id/analytics", require, h.get)
	r.GET("/projects/:id/analytics/owner-link", require, h.ownerLink)
}

// Count is a number of page views in the retention period and in the last day and week.
type Count struct {
	Total   int64 `json:"total"`
	Last24h int64 `json:"last24h"`
	Last7d  int64 `json:"last7d"`
}

// Open is one entry of recentOpens.
type Open struct {
	At       readapi.Time `json:"at"`
	Country  *string      `json:"country"`
	Device   *string      `json:"device"`
	Browser  *string      `json:"browser"`
	OS       *string      `json:"os"`
	Referrer *string      `json:"referrer"`
}

// CountryOpens is one entry of topCountries.
type CountryOpens struct {
	Country string `json:"country"`
	Opens   int64  `json:"opens"`
}

// OwnerOpens counts the owner's own views.
type OwnerOpens struct {
	Total int64 `json:"total"`
}

// Report is the data of GET /v1/projects/{id}/analytics (spec [S4] "Link opens").
type Report struct {
	ProjectID        string         `json:"projectId"`
	AnalyticsEnabled bool           `json:"analyticsEnabled"`
	Opens            Count          `json:"opens"`
	LastOpenedAt     *readapi.Time  `json:"lastOpenedAt"`
	RecentOpens      []Open         `json:"recentOpens"`
	TopCountries     []CountryOpens `json:"topCountries"`
	Visits           Count          `json:"visits"`
	OwnerOpens       OwnerOpens     `json:"ownerOpens"`
}

// gateQuery finds the caller's project, its address and whether the caller's plan is paid.
const gateQuery = `SELECT p.analytics_enabled, p.slug,
	(SELECT d.hostname FROM custom_domains d WHERE d.id = p.domain_id),
	COALESCE((SELECT a.plan <> 'free' FROM accounts a WHERE a.id = $2), false)
	FROM projects p WHERE p.id = $1 AND p.owner_id = $2`

type gate struct {
	enabled, paid bool
	slug          string
	domain        *string
}

// gate answers 404 for a project that is not the caller's and FEATURE_LOCKED on the free plan.
func (h *Handler) gate(c *gin.Context) (string, string, gate, bool) {
	pr, ok := events.PrincipalFrom(c.Request.Context())
	if !ok {
		_ = c.Error(readapi.AuthError{Code: readapi.CodeAPIKeyMissing})
		return "", "", gate{}, false
	}
	id := c.Param("id")
	if uuid.Validate(id) != nil {
		_ = c.Error(readapi.ErrNotFound)
		return "", "", gate{}, false
	}
	var g gate
	err := h.pool.QueryRow(c.Request.Context(), gateQuery, id, pr.AccountID).Scan(&g.enabled, &g.slug, &g.domain, &g.paid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_ = c.Error(readapi.ErrNotFound)
		return "", "", g, false
	case err != nil:
		_ = c.Error(fmt.Errorf("analytics gate: %w", err))
		return "", "", g, false
	case !g.paid:
		_ = c.Error(ErrFeatureLocked)
		return "", "", g, false
	}
	return id, pr.AccountID, g, true
}

// The opens are the person rows that enter the site; visits are every stored row (people,
// previews and the owner: every non-bot page request).
const countsQuery = `SELECT
	count(*) FILTER (WHERE kind = 'person' AND entry),
	count(*) FILTER (WHERE kind = 'person' AND entry AND at > $2::timestamptz - interval '24 hours'),
	count(*) FILTER (WHERE kind = 'person' AND entry AND at > $2::timestamptz - interval '7 days'),
	max(at) FILTER (WHERE kind = 'person' AND entry),
	count(*),
	count(*) FILTER (WHERE at > $2::timestamptz - interval '24 hours'),
	count(*) FILTER (WHERE at > $2::timestamptz - interval '7 days'),
	count(*) FILTER (WHERE kind = 'owner' AND entry)
	FROM site_visits WHERE project_id = $1`

const recentQuery = `SELECT at, country, device, browser, os, referrer FROM site_visits
	WHERE project_id = $1 AND kind = 'person' AND entry ORDER BY at DESC LIMIT $2`

const countriesQuery = `SELECT country, count(*) AS opens FROM site_visits
	WHERE project_id = $1 AND kind = 'person' AND entry AND country IS NOT NULL
	GROUP BY country ORDER BY opens DESC, country LIMIT $2`

func (h *Handler) get(c *gin.Context) {
	id, _, g, ok := h.gate(c)
	if !ok {
		return
	}
	rep, err := h.report(c.Request.Context(), id)
	if err != nil {
		_ = c.Error(err)
		return
	}
	rep.AnalyticsEnabled = g.enabled
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": rep})
}

// report reads the three parts of the answer in one round trip.
func (h *Handler) report(ctx context.Context, id string) (Report, error) {
	rep := Report{ProjectID: id, RecentOpens: []Open{}, TopCountries: []CountryOpens{}}
	b := &pgx.Batch{}
	b.Queue(countsQuery, id, h.now()).QueryRow(func(row pgx.Row) error {
		var last *time.Time
		err := row.Scan(&rep.Opens.Total, &rep.Opens.Last24h, &rep.Opens.Last7d, &last,
			&rep.Visits.Total, &rep.Visits.Last24h, &rep.Visits.Last7d, &rep.OwnerOpens.Total)
		if last != nil {
			t := readapi.Time(*last)
			rep.LastOpenedAt = &t
		}
		return err
	})
	b.Queue(recentQuery, id, recentOpensMax).Query(func(rows pgx.Rows) error {
		var o Open
		var at time.Time
		_, err := pgx.ForEachRow(rows, []any{&at, &o.Country, &o.Device, &o.Browser, &o.OS, &o.Referrer}, func() error {
			o.At = readapi.Time(at)
			rep.RecentOpens = append(rep.RecentOpens, o)
			return nil
		})
		return err
	})
	b.Queue(countriesQuery, id, topCountriesMax).Query(func(rows pgx.Rows) error {
		var co CountryOpens
		_, err := pgx.ForEachRow(rows, []any{&co.Country, &co.Opens}, func() error {
			rep.TopCountries = append(rep.TopCountries, co)
			return nil
		})
		return err
	})
	if err := h.pool.SendBatch(ctx, b).Close(); err != nil {
		return Report{}, fmt.Errorf("analytics report: %w", err)
	}
	return rep, nil
}

// OwnerLink is the data of GET /v1/projects/{id}/analytics/owner-link.
type OwnerLink struct {
	URL       string       `json:"url"`
	ExpiresAt readapi.Time `json:"expiresAt"`
}

// ownerLink hands the owner a short-lived link to their own site that marks their browser, on
// that site's host only, so that their own views are not counted as opens.
func (h *Handler) ownerLink(c *gin.Context) {
	id, account, g, ok := h.gate(c)
	if !ok {
		return
	}
	base := h.siteURL(g.slug)
	if g.domain != nil && h.domainURL != nil {
		base = h.domainURL(g.slug, *g.domain)
	}
	exp := h.now().Add(OwnerLinkTTL)
	q := url.Values{"token": {h.owner.Link(id, account, exp)}}
	if to := c.Query("to"); to != "" {
		q.Set("to", localPath(to))
	}
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": OwnerLink{URL: base + OwnerPath + "?" + q.Encode(),
		ExpiresAt: readapi.Time(exp)}})
}
