package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/litehost/litehost/cmd/litehost/connector"
	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/commands/mailer"
	"github.com/litehost/litehost/docs"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/blobs"
	"github.com/litehost/litehost/events/pgstore"
	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/projections"
	"github.com/litehost/litehost/readapi"
	"github.com/litehost/litehost/readapi/analytics"
)

// version is the API version reported by GET /v1.
const version = "1.0.0"

// app is the composition root: every long-lived dependency, built once by openApp.
type app struct {
	cfg     Config
	logger  *slog.Logger
	pool    *pgxpool.Pool
	store   events.Store
	head    headReader
	keyring *secret.Keyring
	// limiter counts every per-client and per-identifier limit, its buckets keyed by the secret.
	limiter *commands.Limiter
	runner  *projections.Runner
	mailer  *mailer.Mailer
	// forward is the NATS forwarder's process (nil without LITEHOST_NATS_URL); built once with
	// the app so its metrics are registered once.
	forward func(context.Context) error
	// siteMetrics measures the site server (requests by status class, bytes, latency).
	siteMetrics *siteMetrics
	blobs       *blobs.Store
	projects    *commands.Projects
	sites       *readapi.Sites
	scopes      *commands.PGScopes
	domains     *commands.Domains
	// customHosts maps <slug>.<custom domain> hosts to projects (and serves the domain reads).
	customHosts *readapi.Domains
	// apiHost is the host name of the API itself (from LITEHOST_PUBLIC_URL), never a site.
	apiHost string
	reg     *prometheus.Registry
	// siteHashes counts the site password checks running at once (tests read its peak).
	siteHashes inFlight
	api        *gin.Engine // set by handler; tests list its routes
	// analytics records page views of the sites (link opens) off the serving path.
	analytics analyticsParts
	// contract is docs/openapi.yaml, parsed once: the MCP tools and /llms.txt are cut out of it.
	contract  *openapi3.T
	connector *connector.Connector // set by handler
	now       func() time.Time
	closers   []func()
}

// headReader gives the newest position of the log, for projector lag.
type headReader interface {
	Head(ctx context.Context) (events.Position, error)
}

// openApp connects to PostgreSQL (creating the database if needed), opens the configured event
// store and applies every migration set. Close releases what it opened.
// now is the clock of every command and process manager (tests pass one they can move on).
func openApp(ctx context.Context, cfg Config, logger *slog.Logger, now func() time.Time) (*app, error) {
	a := &app{cfg: cfg, logger: logger, now: now}
	kr, err := secret.New(cfg.Secret)
	if err != nil {
		return nil, err
	}
	a.keyring = kr
	if a.contract, err = docs.OpenAPI(ctx); err != nil {
		return nil, err
	}
	for _, dir := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "tmp")} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	pool, err := openPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	a.pool = pool
	a.closers = append(a.closers, pool.Close)
	a.limiter = commands.NewLimiter(pool).WithKeys(kr)

	switch cfg.EventStore {
	case "postgres":
		s := pgstore.New(pool, logger.With("component", "pgstore"))
		if err := s.Migrate(ctx); err != nil {
			a.Close()
			return nil, err
		}
		a.store, a.head = s, s
	default:
		st, closeFn, err := openESDB(ctx, cfg, logger)
		if err != nil {
			a.Close()
			return nil, err
		}
		a.closers = append(a.closers, closeFn)
		a.store, a.head = st, st
	}
	if err := migrateReadSide(ctx, pool); err != nil {
		a.Close()
		return nil, err
	}
	a.reg = prometheus.NewRegistry()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.store = newMeteredStore(a.store, cfg.EventStore, a.reg)
	a.runner = projections.NewRunner(pool, a.store, logger.With("component", "projections"), a.projectors()...)
	a.runner.WaitTimeout = cfg.ConsistencyWait
	a.reg.MustRegister(a.runner.Collectors()...)
	if a.mailer, err = a.newMailer(); err != nil {
		a.Close()
		return nil, err
	}
	a.reg.MustRegister(a.mailer.Collectors()...)
	a.forward = a.newForwarder()
	a.siteMetrics = newSiteMetrics(a.reg)
	if a.blobs, err = blobs.New(filepath.Join(cfg.DataDir, "blobs")); err != nil {
		a.Close()
		return nil, err
	}
	a.scopes = commands.NewPGScopes(pool)
	a.projects = commands.NewProjects(a.store, commands.NewPGProjectLookup(pool), a.scopes, a.keyring, cfg.TempTTL, a.now,
		logger.With("component", "projects")).WithQuotaGate(commands.NewPGQuotaGate(pool, a.runner))
	a.domains = commands.NewDomains(a.store, a.keyring, commands.NewDNSResolver(cfg.DNSResolver), a.scopes, a.now,
		logger.With("component", "domains")).WithPendingTTL(cfg.DomainPendingTTL)
	a.customHosts = readapi.NewDomains(pool, a.keyring, a.domainSiteURL())
	if u, err := url.Parse(cfg.PublicURL); err == nil {
		a.apiHost = strings.ToLower(u.Hostname())
	}
	a.sites = readapi.NewSites(pool, a.blobs, cfg.SitesDomain, a.now, logger.With("component", "sites")).
		WithPasswords(readapi.SitePasswords{
			Keyring:  a.keyring,
			Slots:    cfg.SitePasswordSlots,
			Attempts: commands.NewFailedAttempts(a.limiter, cfg.SitePasswordFailures, sitePasswordWindow),
			Rehash:   a.projects,
			ClientIP: parseTrustedProxies(cfg.TrustedProxies).clientIP,
			OnHash:   a.siteHashes.add,
		})
	if err := a.openAnalytics(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// migrateReadSide applies the read-model, command-side and visit (analytics) migration sets.
func migrateReadSide(ctx context.Context, pool *pgxpool.Pool) error {
	if err := projections.Migrate(ctx, pool); err != nil {
		return err
	}
	if err := analytics.Migrate(ctx, pool); err != nil {
		return err
	}
	return commands.Migrate(ctx, pool)
}

// Close releases the app's connections, newest first.
func (a *app) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// projectors lists every read model, in no particular order: each has its own checkpoint.
func (a *app) projectors() []projections.Projector {
	return []projections.Projector{
		projections.Accounts(),
		projections.Projects(),
		projections.Workspaces(),
		projections.Domains(),
	}
}

// serve runs the HTTP server, the projectors and the process managers until ctx ends, then
// shuts them down within a bounded time.
func (a *app) serve(ctx context.Context) error {
	srv := a.httpServer(a.handler())
	l, err := a.listen(a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http server: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		a.logger.Info("listening", "addr", l.Addr().String())
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 15*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return a.runBackground(gctx) })
	g.Go(func() error { return a.serveAdmin(gctx) })
	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// processManagers are the background processes that react to events or time.
func (a *app) processManagers() []func(context.Context) error {
	expiry := commands.NewExpiry(a.projects, a.pool, time.Second, a.logger.With("process", "expiry"))
	cleanup := commands.NewWorkspaceCleanup(a.store, a.store, a.pool, a.runner, a.now, a.logger.With("process", "workspace-cleanup"))
	trials := commands.NewTrialEnd(a.store, a.pool, commands.DefaultTrialInterval, a.now, a.logger)
	pms := append([]func(context.Context) error{a.mailer.Run, expiry.Run, cleanup.Run, trials.Run, a.housekeeping}, a.visitProcesses()...)
	return append(pms, a.analyticsProcesses()...)
}

// housekeeping drops rate-limit windows and idempotent answers that can no longer matter. Every
// instance may run it; the deletes are idempotent.
func (a *app) housekeeping(ctx context.Context) error {
	limiter := a.limiter
	idem := commands.NewIdempotency(a.pool, a.keyring, "", a.logger, a.now, nil)
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		if _, err := limiter.Prune(ctx, a.now().Add(-2*time.Hour)); err != nil && ctx.Err() == nil {
			a.logger.Warn("prune rate limits", "error", err)
		}
		if _, err := idem.Prune(ctx); err != nil && ctx.Err() == nil {
			a.logger.Warn("prune idempotency keys", "error", err)
		}
		if _, err := commands.NewPGRevocations(a.pool).Prune(ctx, a.now()); err != nil && ctx.Err() == nil {
			a.logger.Warn("prune revoked credentials", "error", err)
		}
		a.collectBlobs(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// newMailer builds the OTP delivery process manager: SMTP and the HTTP SMS provider when
// configured, the log otherwise (development only; loadConfig refuses neither channel in
// production, so the log sender warns loudly on every code).
func (a *app) newMailer() (*mailer.Mailer, error) {
	cfg := mailer.Config{AutoCreate: a.cfg.OTPAutoCreate, Now: a.now}
	if a.cfg.SMTPURL != "" {
		smtp, err := mailer.NewSMTP(a.cfg.SMTPURL, a.cfg.MailFrom)
		if err != nil {
			return nil, err
		}
		cfg.Email = smtp
	}
	if a.cfg.SMSURL != "" {
		cfg.SMS = mailer.NewHTTPSMS(a.cfg.SMSURL, a.cfg.SMSToken, &http.Client{Timeout: 15 * time.Second})
	}
	lookup := mailer.NewIdentityLookup(a.store, a.keyring)
	return mailer.New(a.store, a.pool, a.keyring, lookup, cfg, a.logger), nil
}

// runBackground runs the projectors and process managers (everything serve runs but the HTTP
// listener) until ctx ends.
func (a *app) runBackground(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.runner.Run(gctx) })
	for _, pm := range a.processManagers() {
		g.Go(func() error { return pm(gctx) })
	}
	err := g.Wait()
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

// siteURL is the address a project's site is served at: <slug>.<sites domain>, with the scheme
// and port of the public URL (or of the listen address when no public URL is set).
func (a *app) siteURL(slug string) string {
	scheme, port := a.siteBase()
	host := slug + "." + a.cfg.SitesDomain
	if port != "" && !(scheme == "http" && port == "80") && !(scheme == "https" && port == "443") {
		host = net.JoinHostPort(host, port)
	}
	return scheme + "://" + host
}

// siteBase returns the scheme and port that site URLs carry.
func (a *app) siteBase() (scheme string, port string) {
	scheme = "http"
	if u, err := url.Parse(a.cfg.PublicURL); err == nil && u.Host != "" {
		return u.Scheme, u.Port()
	}
	if _, p, err := net.SplitHostPort(a.cfg.HTTPAddr); err == nil {
		port = p
	}
	return scheme, port
}

// domainSiteURL renders the address of a project on a custom domain: <slug>.<domain>.
func (a *app) domainSiteURL() func(slug, hostname string) string {
	scheme, port := a.siteBase()
	n, _ := strconv.Atoi(port)
	return readapi.DomainSiteURL(scheme, n)
}

// blobGrace protects blobs written by uploads still in flight (and not yet referenced by an
// event) from collection; it is far above the longest upload request.
const blobGrace = 2 * time.Hour

// collectBlobs deletes content no live deployment references any more (after deletes and purges).
func (a *app) collectBlobs(ctx context.Context) {
	live, err := commands.NewPGProjectLookup(a.pool).LiveManifests(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Warn("collect blobs: live manifests", "error", err)
		}
		return
	}
	res, err := a.blobs.Collect(ctx, live, blobGrace)
	if err != nil && ctx.Err() == nil {
		a.logger.Warn("collect blobs", "error", err)
		return
	}
	a.logger.Debug("collected blobs", "result", res)
}
