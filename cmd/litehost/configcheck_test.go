package main

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/litehost/litehost/events/pgtest"
)

// Development mode logs codes and may use the public development secret: never on https.
func TestDevModeRefusesHTTPSPublicURL(t *testing.T) {
	_, err := loadConfig(envOf(map[string]string{"LITEHOST_DEV": "true", "LITEHOST_PUBLIC_URL": "https://api.example.com"}))
	if err == nil || !strings.Contains(err.Error(), "LITEHOST_DEV") {
		t.Errorf("dev on https accepted: %v", err)
	}
	if _, err := loadConfig(envOf(map[string]string{"LITEHOST_DEV": "true", "LITEHOST_PUBLIC_URL": "http://localhost:8080"})); err != nil {
		t.Errorf("dev on http refused: %v", err)
	}
	if _, err := loadConfig(envOf(map[string]string{"LITEHOST_SECRET": strings.Repeat("s", 40), "LITEHOST_PUBLIC_URL": "https://api.example.com"})); err != nil {
		t.Errorf("production on https refused: %v", err)
	}
}

// Outside development a superuser role and a plain-text URL to another host are warned about.
func TestDatabaseWarnings(t *testing.T) {
	dsn := pgtest.NewDatabase(t) // the test cluster's postgres role is a superuser
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	prod := Config{DatabaseURL: dsn}
	ws := databaseWarnings(t.Context(), prod, pool)
	if len(ws) != 1 || !strings.Contains(ws[0], "superuser") {
		t.Errorf("warnings for a loopback superuser = %q, want the superuser one only", ws)
	}
	if ws := databaseWarnings(t.Context(), Config{DatabaseURL: dsn, Dev: true}, pool); len(ws) != 0 {
		t.Errorf("development warned: %q", ws)
	}
	for dsn, warn := range map[string]bool{
		"postgres://u@db.internal:5432/litehost":                      true,
		"postgres://u@db.internal:5432/litehost?sslmode=disable":      true,
		"postgres://u@db.internal:5432/litehost?sslmode=allow":        true,
		"postgres://u@10.0.0.5/litehost?sslmode=prefer":               true,
		"postgres://u@db.internal:5432/litehost?sslmode=require":      false,
		"postgres://u@db.internal:5432/litehost?sslmode=verify-full":  false,
		"postgres://u@127.0.0.1:5432/litehost?sslmode=disable":        false,
		"postgres://u@[::1]:5432/litehost":                            false,
		"postgres://u@localhost/litehost?sslmode=disable":             false,
		"postgres:///litehost?host=/var/run/postgresql&sslmode=allow": false,
	} {
		if got := plaintextDatabase(dsn) != ""; got != warn {
			t.Errorf("plaintextDatabase(%s) warns = %v, want %v", dsn, got, warn)
		}
	}
}

func TestLimitSettings(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"LITEHOST_DEV": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.ReadTimeout != 15*time.Second || c.MaxConnsPerClient != 64 || c.SitePasswordSlots < 2 ||
		c.SitePasswordFailures != 10 || c.DomainPendingTTL != 72*time.Hour {
		t.Errorf("limit defaults = %+v", c)
	}
	_, err = loadConfig(envOf(map[string]string{"LITEHOST_DEV": "true", "LITEHOST_READ_TIMEOUT": "0s",
		"LITEHOST_MAX_CONNS_PER_CLIENT": "-1", "LITEHOST_SITE_PASSWORD_SLOTS": "many",
		"LITEHOST_SITE_PASSWORD_FAILURES": "0", "LITEHOST_DOMAIN_PENDING_TTL": "forever"}))
	for _, want := range []string{"LITEHOST_READ_TIMEOUT", "LITEHOST_MAX_CONNS_PER_CLIENT", "LITEHOST_SITE_PASSWORD_SLOTS",
		"LITEHOST_SITE_PASSWORD_FAILURES", "LITEHOST_DOMAIN_PENDING_TTL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad %s accepted: %v", want, err)
		}
	}
}

func TestRenewalAndTrialSettings(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{"LITEHOST_DEV": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyIdleTTL != 2160*time.Hour || c.Trial != 168*time.Hour {
		t.Errorf("defaults: key idle %s, trial %s", c.KeyIdleTTL, c.Trial)
	}
	if c, err := loadConfig(envOf(map[string]string{"LITEHOST_DEV": "true", "LITEHOST_TRIAL": "0"})); err != nil || c.Trial != 0 {
		t.Errorf("LITEHOST_TRIAL=0: %s, %v", c.Trial, err)
	}
	_, err = loadConfig(envOf(map[string]string{"LITEHOST_DEV": "true", "LITEHOST_TRIAL": "-1h", "LITEHOST_KEY_IDLE_TTL": "1h"}))
	for _, want := range []string{"LITEHOST_TRIAL", "LITEHOST_KEY_IDLE_TTL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad %s accepted: %v", want, err)
		}
	}
}
