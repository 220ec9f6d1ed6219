package main

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/readapi/analytics"
)

// visitPruneInterval is how often expired visits are deleted.
const visitPruneInterval = time.Hour

// analyticsParts are the pieces of link-open analytics (readapi/analytics): the hook in front of
// the site server, the asynchronous pipeline into PostgreSQL, the visit feed and the owner tokens.
type analyticsParts struct {
	recorder *analytics.Recorder
	pipeline *analytics.Pipeline
	feed     *analytics.Feed
	owner    *analytics.OwnerTokens
}

// openAnalytics builds the analytics parts and registers their metrics.
func (a *app) openAnalytics() error {
	feed, err := analytics.NewFeed(a.cfg.NATSURL, a.cfg.AdminToken, a.logger.With("component", "visit-feed"))
	if err != nil {
		return err
	}
	a.closers = append(a.closers, feed.Close)
	owner := analytics.NewOwnerTokens(a.keyring)
	store, err := analytics.NewStore(a.pool, analytics.NewClassifier(), owner, a.cfg.TrustedProxies, feed,
		a.logger.With("component", "visits"))
	if err != nil {
		return err
	}
	pipe := analytics.NewPipeline(store, analytics.PipelineConfig{}, a.logger.With("component", "visits"))
	scheme, _ := a.siteBase()
	a.analytics = analyticsParts{
		recorder: analytics.NewRecorder(pipe, owner, a.now, scheme == "https"),
		pipeline: pipe, feed: feed, owner: owner,
	}
	a.reg.MustRegister(pipe.Collectors()...)
	a.reg.MustRegister(store.Collectors()...)
	a.reg.MustRegister(feed.Collectors()...)
	return nil
}

// visitProcesses are the background parts: the batch writer and the retention prune.
func (a *app) visitProcesses() []func(context.Context) error {
	return []func(context.Context) error{
		a.analytics.pipeline.Run,
		func(ctx context.Context) error {
			return analytics.RunPrune(ctx, a.pool, a.cfg.AnalyticsRetention, visitPruneInterval, a.now,
				a.logger.With("process", "visit-prune"))
		},
	}
}

// registerAnalytics adds the analytics read routes (API key) and the visit stream (operator token).
func (a *app) registerAnalytics(v1 *gin.RouterGroup, require gin.HandlerFunc) {
	analytics.NewHandler(a.pool, a.analytics.owner, a.siteURL, a.domainSiteURL(), a.now).Register(v1, require)
	a.analytics.feed.Register(v1)
}

// serveSite serves a site request through the analytics hook; host is the site host the site
// server answers for (r.Host itself, or <slug>.<sites domain> for a custom domain).
func (a *app) serveSite(w http.ResponseWriter, r *http.Request, slug, host string) {
	a.siteMetrics.wrap(w, r, func(w http.ResponseWriter, r *http.Request) { a.serveSiteHost(w, r, slug, host) })
}

func (a *app) serveSiteHost(w http.ResponseWriter, r *http.Request, slug, host string) {
	if host == r.Host {
		a.analytics.recorder.Serve(w, r, slug, a.sites)
		return
	}
	a.analytics.recorder.Serve(w, r, slug, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.Clone(r.Context())
		r.Host = host
		a.sites.ServeHTTP(w, r)
	}))
}
