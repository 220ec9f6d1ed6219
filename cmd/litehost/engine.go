package main

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/oauth"
	"github.com/litehost/litehost/commands/projectsupload"
	"github.com/litehost/litehost/docs"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/internal/webpage"
	"github.com/litehost/litehost/readapi"
)

// handler is the whole HTTP surface: the API, and the hosted sites selected by Host header.
// main and the tests both use it.
func (a *app) handler() http.Handler {
	api := a.engine()
	a.api = api
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The API's own host wins over every site: with LITEHOST_PUBLIC_URL on api.<sites domain>
		// a project holding the slug "api" would otherwise take over the API (and its sign-ins).
		if a.isAPIHost(r.Host) {
			api.ServeHTTP(w, r)
			return
		}
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

// isAPIHost reports whether a Host header value names the API itself (LITEHOST_PUBLIC_URL).
func (a *app) isAPIHost(hostport string) bool {
	if a.apiHost == "" {
		return false
	}
	return normalHost(hostport) == a.apiHost
}

// normalHost is a Host header value without its port, lowercase, without a trailing dot.
func normalHost(hostport string) string {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
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
	e.Use(recovery(a.logger), metrics.middleware(), noStore(), requestMetadata(), errorMiddleware(a.logger))
	e.NoRoute(notFound)
	e.NoMethod(methodNotAllowed)

	// Operators' views: the public /health says only up or down; its detail and /metrics need
	// the operator token here, or come without one on LITEHOST_ADMIN_ADDR (admin.go).
	admin := readapi.NewAdminToken(a.cfg.AdminToken)
	e.GET("/health", a.publicHealth(admin))
	e.GET("/metrics", admin.Require(), a.metrics())
	v1 := e.Group("/v1")
	v1.GET("", a.apiInfo)
	v1.GET("/openapi.json", a.openAPI)
	a.eventStream().Register(v1) // operator token, not API keys

	// Authentication runs before idempotency: keys are scoped to the caller.
	auth := readapi.NewAuthenticator(a.pool, a.keyring, a.now)
	recv := projectsupload.New(a.blobs).WithMaxRequestBytes(a.cfg.MaxUploadBytes)
	idem := commands.NewIdempotency(a.pool, a.keyring, filepath.Join(a.cfg.DataDir, "tmp"), a.logger, a.now, renderErrors(a.logger)).
		WithRoutes(writeRoutes(recv))
	// Sign-in answers carry keys shown once: retries re-derive them instead of storing them.
	signIn := v1.Group("", idem.SecretAnswers())

	accounts := commands.NewAccounts(a.store, a.keyring, commands.NewPGRevocations(a.pool), a.now).
		WithKeyIdleTTL(a.cfg.KeyIdleTTL).WithTrial(a.cfg.Trial)
	// Keys renew in use: a use more than a day after the last renewal appends one event.
	auth.WithRenewal(accounts, accounts.KeyIdleTTL(), a.logger.With("component", "auth"))
	otp := commands.NewOTP(a.store, a.keyring, a.limiter, accounts, a.runner, commands.OTPConfig{
		Channels:     a.cfg.OTPChannels,
		SMSCountries: a.cfg.smsCountries(),
		AutoCreate:   a.cfg.OTPAutoCreate,
		KeyIdleTTL:   accounts.KeyIdleTTL(),
		Now:          a.now,
	}, a.logger.With("component", "otp"))
	otp.Register(e.Group("", idem.SecretAnswers())) // registers absolute paths
	// Refresh takes no key (a client refreshes because its key expired); revoke takes either.
	commands.NewAccountRoutes(accounts, a.runner).Register(signIn, auth.Optional())
	readapi.NewAccounts(a.pool).WithRenewal(auth).Register(v1, auth.Require())

	// Project writes: the key (when sent) is checked before the idempotency key is scoped to
	// it; routes that need an account then only check that one was found.
	writes := v1.Group("", auth.Optional(), idem.Middleware())
	commands.NewProjectRoutes(a.projects, recv, a.limiter, a.runner, a.siteURL, a.claimURL).
		Register(writes, requirePrincipal)
	// The browser page of claimUrl: HTML, no key, the same OTP handlers and claim command.
	a.claimPage(otp, accounts).Register(e)
	// The MCP connector's OAuth authorization server and its sign-in page (the same pages).
	a.oauthServer(otp, accounts, auth).Register(e)
	readapi.NewProjects(a.pool, a.siteURL).WithDomainURL(a.domainSiteURL()).Register(v1, auth.Require())
	readapi.NewAudit(a.store).Register(v1, auth.Require())
	a.registerAnalytics(v1, auth.Require())

	workspaces := commands.NewWorkspaces(a.store, a.now)
	commands.NewWorkspaceRoutes(workspaces, a.scopes, a.runner).Register(writes, requirePrincipal)
	readapi.NewWorkspaces(a.pool).Register(v1, auth.Require())
	// Domain answers carry the DNS challenge token, which is derived, never stored: like sign-in,
	// a retry re-derives its answer rather than reading it back from the idempotency table.
	domainWrites := v1.Group("", auth.Optional(), idem.SecretAnswers())
	commands.NewDomainRoutes(a.domains, a.runner).Register(domainWrites, requirePrincipal)
	a.customHosts.Register(v1, auth.Require())
	readapi.NewQRCodes(a.pool, a.siteURL, a.domainSiteURL(), a.now).Register(e) // no key: the link is public
	a.registerAgents(e, auth)
	return e
}

// writeRoutes declares every write route's own body limit, applied before its body is
// fingerprinted, spooled or handed to the handler; only the uploads stream to disk.
// TestEveryWriteRouteHasABodyLimit fails for a served write route missing here.
func writeRoutes(recv *projectsupload.Receiver) commands.WriteRoutes {
	const (
		otpBody  = 16 << 10 // OTP request and verify: real bodies are under 200 bytes
		authBody = 4 << 10  // refresh and revoke: a refresh token is ~110 bytes
		jsonBody = 1 << 20  // the JSON bodies of project, workspace and domain writes
		noBody   = 4 << 10  // routes that read no body: room for an empty JSON object or so
	)
	upload := commands.WriteRoute{MaxBody: recv.MaxRequestBytes(false), Upload: true}
	return commands.WriteRoutes{
		"POST /v1/auth/otp/request": {MaxBody: otpBody},
		"POST /v1/auth/otp/verify":  {MaxBody: otpBody},
		"POST /v1/auth/refresh":     {MaxBody: authBody},
		"POST /v1/auth/revoke":      {MaxBody: authBody},
		// The temporary create's answer holds the claim token: never stored, a replay re-derives it.
		"POST /v1/projects/temp":          {MaxBody: recv.MaxRequestBytes(true), Upload: true, SecretAnswer: true},
		"POST /v1/projects":               upload,
		"PUT /v1/projects/:id":            upload,
		"PATCH /v1/projects/:id":          {MaxBody: jsonBody},
		"DELETE /v1/projects/:id":         {MaxBody: noBody},
		"POST /v1/projects/:id/archive":   {MaxBody: noBody},
		"POST /v1/projects/:id/unarchive": {MaxBody: noBody},
		"POST /v1/projects/:id/rollback":  {MaxBody: jsonBody},
		"POST /v1/projects/claim/:token":  {MaxBody: noBody},
		"POST /v1/workspaces":             {MaxBody: jsonBody},
		"PATCH /v1/workspaces/:id":        {MaxBody: jsonBody},
		"DELETE /v1/workspaces/:id":       {MaxBody: noBody},
		"POST /v1/domains":                {MaxBody: jsonBody},
		"POST /v1/domains/:id/verify":     {MaxBody: noBody},
		"DELETE /v1/domains/:id":          {MaxBody: noBody},
		// The MCP connector: its tool calls carry inline files; each call's API request then
		// meets that route's own limit.
		"POST /mcp": {MaxBody: mcpMaxBody},
		// The claim page's forms (an address or a code and the CSRF token); no idempotency key.
		"POST /claim/:token/email": {MaxBody: webpage.MaxFormBytes},
		"POST /claim/:token/code":  {MaxBody: webpage.MaxFormBytes},
		// OAuth: the sign-in page's forms, and small OAuth forms and JSON (no idempotency key:
		// a code is single-use and a refresh rotates, by design).
		"POST /oauth/authorize/email":   {MaxBody: webpage.MaxFormBytes},
		"POST /oauth/authorize/code":    {MaxBody: webpage.MaxFormBytes},
		"POST /oauth/authorize/consent": {MaxBody: webpage.MaxFormBytes},
		"POST /oauth/register":          {MaxBody: oauth.MaxBody},
		"POST /oauth/token":             {MaxBody: oauth.MaxBody},
		"POST /oauth/revoke":            {MaxBody: oauth.MaxBody},
	}
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
		"llms":    "/llms.txt", // the agent guide
		"mcp":     "/mcp",      // the MCP connector
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
