package main

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/projectsupload"
	"github.com/litehost/litehost/docs"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/projections"
	"github.com/litehost/litehost/readapi"
)

// handler is the whole HTTP surface: the API, and the hosted sites selected by Host header.
// main and the tests both use it.
func (a *app) handler() http.Handler {
	api := a.engine()
	a.api = api
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slug, ok := a.sites.Slug(r.Host); ok {
			a.serveSite(w, r, slug, r.Host)
			return
		}
		if host, ok := a.customSiteHost(r); ok {
			slug, _ := a.sites.Slug(host)
			a.serveSite(w, r, slug, host)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// customSiteHost maps a request for <slug>.<custom domain> of an active domain to the site
// host <slug>.<sites domain>. The API's own host, IP addresses and single-label names never
// cost a query.
func (a *app) customSiteHost(r *http.Request) (string, bool) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, ""
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == a.apiHost || net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return "", false
	}
	slug, ok, err := a.customHosts.SlugForHost(r.Context(), host)
	if err != nil || !ok {
		if err != nil {
			a.logger.Warn("custom host lookup", "error", err)
		}
		return "", false
	}
	h := slug + "." + a.cfg.SitesDomain
	if port != "" {
		h = net.JoinHostPort(h, port)
	}
	return h, true
}

// engine builds the Gin engine of the API.
func (a *app) engine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	if err := e.SetTrustedProxies(a.cfg.TrustedProxies); err != nil {
		// loadConfig validated the list; a failure here is a programming error.
		panic("trusted proxies: " + err.Error())
	}
	metrics := newHTTPMetrics(a.reg)
	e.Use(recovery(a.logger), metrics.middleware(), requestMetadata(), errorMiddleware(a.logger))
	e.NoRoute(notFound)
	e.NoMethod(methodNotAllowed)

	e.GET("/health", a.health)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{})))
	v1 := e.Group("/v1")
	v1.GET("", a.apiInfo)
	v1.GET("/openapi.json", a.openAPI)
	a.eventStream().Register(v1) // operator token, not API keys

	// Authentication runs before idempotency: keys are scoped to the caller.
	auth := readapi.NewAuthenticator(a.pool, a.keyring, a.now)
	idem := commands.NewIdempotency(a.pool, filepath.Join(a.cfg.DataDir, "tmp"), a.logger, a.now, renderErrors(a.logger))
	// Sign-in answers carry keys shown once: retries re-derive them instead of storing them.
	signIn := v1.Group("", idem.SecretAnswers())

	accounts := commands.NewAccounts(a.store, a.keyring, a.now)
	otp := commands.NewOTP(a.store, a.keyring, commands.NewLimiter(a.pool), accounts, a.runner, commands.OTPConfig{
		Channels:   a.cfg.OTPChannels,
		AutoCreate: a.cfg.OTPAutoCreate,
		Now:        a.now,
	}, a.logger.With("component", "otp"))
	otp.Register(e.Group("", idem.SecretAnswers())) // registers absolute paths
	// Refresh takes no key (a client refreshes because its key expired); revoke takes either.
	commands.NewAccountRoutes(accounts, a.runner).Register(signIn, auth.Optional())
	readapi.NewAccounts(a.pool).Register(v1, auth.Require())

	// Project writes: the key (when sent) is checked before the idempotency key is scoped to
	// it; routes that need an account then only check that one was found.
	writes := v1.Group("", auth.Optional(), idem.Middleware())
	recv := projectsupload.New(a.blobs).WithMaxRequestBytes(a.cfg.MaxUploadBytes)
	commands.NewProjectRoutes(a.projects, recv, commands.NewLimiter(a.pool), a.runner, a.siteURL, nil).
		Register(writes, requirePrincipal)
	readapi.NewProjects(a.pool, a.siteURL).WithDomainURL(a.domainSiteURL()).Register(v1, auth.Require())
	readapi.NewAudit(a.store).Register(v1, auth.Require())
	a.registerAnalytics(v1, auth.Require())

	workspaces := commands.NewWorkspaces(a.store, a.now)
	commands.NewWorkspaceRoutes(workspaces, a.scopes, a.runner).Register(writes, requirePrincipal)
	readapi.NewWorkspaces(a.pool).Register(v1, auth.Require())
	commands.NewDomainRoutes(a.domains, a.runner).Register(writes, requirePrincipal)
	a.customHosts.Register(v1, auth.Require())
	return e
}

// requirePrincipal refuses a request that an earlier Authenticator.Optional let through
// without a key.
func requirePrincipal(c *gin.Context) {
	if _, ok := events.PrincipalFrom(c.Request.Context()); !ok {
		_ = c.Error(readapi.AuthError{Code: readapi.CodeAPIKeyMissing})
		c.Abort()
		return
	}
	c.Next()
}

// apiInfo answers GET /v1 (DESIGN §12: name, version, docs URL).
func (a *app) apiInfo(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "success", "data": gin.H{
		"name":    "Litehost Connect API",
		"version": version,
		"docs":    "/v1/openapi.json",
	}})
}

// openAPI serves docs/openapi.yaml as JSON.
func (a *app) openAPI(c *gin.Context) {
	b, err := docs.OpenAPIJSON(c.Request.Context())
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", b)
}

// health reports liveness, the database, the event store and every projector. It answers 503
// when a dependency is down or a projector has failed, so a load balancer stops routing to it.
func (a *app) health(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	status, code := "ok", http.StatusOK
	checks := gin.H{}
	if err := a.pool.Ping(ctx); err != nil {
		checks["database"] = gin.H{"status": "down"}
		status, code = "degraded", http.StatusServiceUnavailable
	} else {
		checks["database"] = gin.H{"status": "up"}
	}
	if _, err := a.head.Head(ctx); err != nil {
		checks["eventStore"] = gin.H{"status": "down", "kind": a.cfg.EventStore}
		status, code = "degraded", http.StatusServiceUnavailable
	} else {
		checks["eventStore"] = gin.H{"status": "up", "kind": a.cfg.EventStore}
	}
	sts, err := a.runner.Status(ctx)
	if err != nil {
		a.logger.Error("projector status", "error", err)
	}
	if sts == nil {
		sts = []projections.ProjectorStatus{}
	}
	if ok, _ := a.runner.Healthy(); !ok || err != nil {
		status, code = "degraded", http.StatusServiceUnavailable
	}
	c.JSON(code, gin.H{"status": "success", "data": gin.H{"status": status, "version": version,
		"checks": checks, "projectors": sts}})
}
