package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/litehost/litehost/projections"
	"github.com/litehost/litehost/readapi"
)

// Health is what GET /health answers. The public answer has only Status, which a load balancer
// needs; the rest (versions, dependencies, projector checkpoints and last errors) tells an
// attacker what runs and what is failing, so only operators get it.
type Health struct {
	Status     string                        `json:"status"` // "ok" or "degraded"
	Version    string                        `json:"version,omitempty"`
	Checks     map[string]gin.H              `json:"checks,omitzero"`
	Projectors []projections.ProjectorStatus `json:"projectors,omitzero"`
}

// health checks the database, the event store and every projector. It answers 503 when a
// dependency is down or a projector has failed, so a load balancer stops routing to the instance.
func (a *app) health(ctx context.Context) (Health, int) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	h := Health{Status: "ok", Version: version, Checks: map[string]gin.H{}}
	code := http.StatusOK
	degrade := func() { h.Status, code = "degraded", http.StatusServiceUnavailable }
	if err := a.pool.Ping(ctx); err != nil {
		h.Checks["database"] = gin.H{"status": "down"}
		degrade()
	} else {
		h.Checks["database"] = gin.H{"status": "up"}
	}
	if _, err := a.head.Head(ctx); err != nil {
		h.Checks["eventStore"] = gin.H{"status": "down", "kind": a.cfg.EventStore}
		degrade()
	} else {
		h.Checks["eventStore"] = gin.H{"status": "up", "kind": a.cfg.EventStore}
	}
	sts, err := a.runner.Status(ctx)
	if err != nil {
		a.logger.Error("projector status", "error", err)
	}
	if sts == nil {
		sts = []projections.ProjectorStatus{}
	}
	h.Projectors = sts
	if ok, _ := a.runner.Healthy(); !ok || err != nil {
		degrade()
	}
	return h, code
}

// publicHealth serves GET /health on the API listener: {"status":"ok"|"degraded"} with 200 or
// 503 for anyone, the whole report for a request bearing the operator token. A request that sends
// a token that is not the operator's is refused (401), so an operator's typo is not mistaken for
// a healthy instance with nothing to report.
func (a *app) publicHealth(admin readapi.AdminToken) gin.HandlerFunc {
	return func(c *gin.Context) {
		detail := false
		if admin.Enabled() && c.GetHeader("Authorization") != "" {
			if err := admin.Check(c.Request); err != nil {
				_ = c.Error(err)
				return
			}
			detail = true
		}
		h, code := a.health(c.Request.Context())
		if !detail {
			h = Health{Status: h.Status}
		}
		c.JSON(code, h)
	}
}

// metrics serves the Prometheus registry.
func (a *app) metrics() gin.HandlerFunc {
	return gin.WrapH(promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
}

// adminHandler is the operators' listener (LITEHOST_ADMIN_ADDR): /metrics and the whole /health
// report without a token, since the address itself is the protection.
func (a *app) adminHandler() http.Handler {
	e := gin.New()
	e.Use(recovery(a.logger), errorMiddleware(a.logger))
	e.NoRoute(notFound)
	e.GET("/health", func(c *gin.Context) {
		h, code := a.health(c.Request.Context())
		c.JSON(code, h)
	})
	e.GET("/metrics", a.metrics())
	return e
}

// serveAdmin runs the operators' listener until ctx ends; without LITEHOST_ADMIN_ADDR it only
// waits.
func (a *app) serveAdmin(ctx context.Context) error {
	if a.cfg.AdminAddr == "" {
		return nil
	}
	srv := &http.Server{Addr: a.cfg.AdminAddr, Handler: a.adminHandler(), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() {
		a.logger.Info("operators listening", "addr", a.cfg.AdminAddr)
		errc <- srv.ListenAndServe()
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin server shutdown: %w", err)
		}
		return nil
	}
}
