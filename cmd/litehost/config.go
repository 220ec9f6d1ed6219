package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/litehost/litehost/events/secret"
)

// Config is the whole configuration, read from the environment by loadConfig (DESIGN §10).
type Config struct {
	HTTPAddr        string
	DatabaseURL     string `json:"-"`
	EventStore      string // "postgres" or "esdb"
	ESDBURL         string `json:"-"`
	DataDir         string
	SitesDomain     string
	PublicURL       string
	Secret          []byte `json:"-"`
	Dev             bool
	SMTPURL         string `json:"-"`
	MailFrom        string
	SMSURL          string
	SMSToken        string `json:"-"`
	OTPChannels     []string
	OTPAutoCreate   bool
	NATSURL         string
	AdminToken      string `json:"-"`
	TrustedProxies  []string
	DNSResolver     string // host:port of the resolver for domain verification; empty = system
	LogLevel        slog.Level
	LogFormat       string
	TempTTL         time.Duration
	ConsistencyWait time.Duration
	MaxUploadBytes  int64
	// AnalyticsRetention is how long page views are kept (LITEHOST_ANALYTICS_RETENTION).
	AnalyticsRetention time.Duration
}

// devSecret is used only with LITEHOST_DEV=true and no LITEHOST_SECRET, so a developer's keys
// survive restarts. It is public, hence never accepted outside dev mode.
const devSecret = "litehost-development-secret-do-not-use-in-production"

// loadConfig reads the configuration through getenv and reports every problem at once.
func loadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	str := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	boolean := func(key string, def bool) bool {
		v := str(key, "")
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: want true or false, got %q", key, v))
		}
		return b
	}
	duration := func(key string, def time.Duration) time.Duration {
		v := str(key, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a positive duration like 15m, got %q", key, v))
		}
		return d
	}
	list := func(key, def string) []string {
		var out []string
		for _, p := range strings.Split(str(key, def), ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}

	c := Config{
		HTTPAddr:        str("LITEHOST_HTTP_ADDR", ":8080"),
		DatabaseURL:     str("LITEHOST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/litehost?sslmode=disable"),
		EventStore:      str("LITEHOST_EVENT_STORE", "postgres"),
		ESDBURL:         str("LITEHOST_ESDB_URL", ""),
		DataDir:         str("LITEHOST_DATA_DIR", "./data"),
		SitesDomain:     strings.ToLower(str("LITEHOST_SITES_DOMAIN", "localhost")),
		PublicURL:       str("LITEHOST_PUBLIC_URL", ""),
		Dev:             boolean("LITEHOST_DEV", false),
		SMTPURL:         str("LITEHOST_SMTP_URL", ""),
		MailFrom:        str("LITEHOST_MAIL_FROM", "Litehost <no-reply@litehost.localhost>"),
		SMSURL:          str("LITEHOST_SMS_URL", ""),
		SMSToken:        str("LITEHOST_SMS_TOKEN", ""),
		OTPChannels:     list("LITEHOST_OTP_CHANNELS", "email"),
		OTPAutoCreate:   boolean("LITEHOST_OTP_AUTO_CREATE", true),
		NATSURL:         str("LITEHOST_NATS_URL", ""),
		AdminToken:      str("LITEHOST_ADMIN_TOKEN", ""),
		TrustedProxies:  list("LITEHOST_TRUSTED_PROXIES", ""),
		DNSResolver:     str("LITEHOST_DNS_RESOLVER", ""),
		LogFormat:       strings.ToLower(str("LOG_FORMAT", "json")),
		TempTTL:         duration("LITEHOST_TEMP_TTL", 15*time.Minute),
		ConsistencyWait: duration("LITEHOST_CONSISTENCY_WAIT", 5*time.Second),
		// 90 days, the usual window of link-open analytics; visits older than this are deleted.
		AnalyticsRetention: duration("LITEHOST_ANALYTICS_RETENTION", 90*24*time.Hour),
	}

	if mb := str("LITEHOST_MAX_UPLOAD_MB", "100"); mb != "" {
		n, err := strconv.ParseInt(mb, 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("LITEHOST_MAX_UPLOAD_MB: want a positive integer, got %q", mb))
		}
		c.MaxUploadBytes = n << 20
	}
	if err := c.LogLevel.UnmarshalText([]byte(str("LOG_LEVEL", "info"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: want debug, info, warn or error, got %q", getenv("LOG_LEVEL")))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT: want json or text, got %q", c.LogFormat))
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || strings.Trim(u.Path, "/") == "" {
		errs = append(errs, errors.New("LITEHOST_DATABASE_URL: want postgres://user@host:port/dbname"))
	}
	switch c.EventStore {
	case "postgres":
	case "esdb":
		if c.ESDBURL == "" {
			errs = append(errs, errors.New("LITEHOST_ESDB_URL: required with LITEHOST_EVENT_STORE=esdb (e.g. esdb://127.0.0.1:2113?tls=false)"))
		}
	default:
		errs = append(errs, fmt.Errorf("LITEHOST_EVENT_STORE: want postgres or esdb, got %q", c.EventStore))
	}
	switch s := getenv("LITEHOST_SECRET"); {
	case s != "" && len(s) < secret.MinKeyBytes:
		errs = append(errs, fmt.Errorf("LITEHOST_SECRET: want at least %d characters (e.g. openssl rand -hex 32)", secret.MinKeyBytes))
	case s != "":
		c.Secret = []byte(s)
	case c.Dev:
		c.Secret = []byte(devSecret)
	default:
		errs = append(errs, errors.New("LITEHOST_SECRET: required (at least 32 characters, e.g. openssl rand -hex 32), or set LITEHOST_DEV=true on a developer machine"))
	}
	for _, ch := range c.OTPChannels {
		if ch != "email" && ch != "phone" {
			errs = append(errs, fmt.Errorf("LITEHOST_OTP_CHANNELS: want email, phone or email,phone, got %q", ch))
		}
	}
	if len(c.OTPChannels) == 0 {
		errs = append(errs, errors.New("LITEHOST_OTP_CHANNELS: at least one channel"))
	}
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			errs = append(errs, errors.New("LITEHOST_SMTP_URL: want smtp://[user:pass@]host:port[?tls=none|starttls|tls]"))
		}
	}
	if c.SMSURL != "" {
		if u, err := url.Parse(c.SMSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, errors.New("LITEHOST_SMS_URL: want an http(s) URL"))
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, errors.New("LITEHOST_PUBLIC_URL: want an absolute http(s) URL"))
		}
	}
	if c.NATSURL != "" {
		if u, err := url.Parse(c.NATSURL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			errs = append(errs, fmt.Errorf("LITEHOST_NATS_URL: want nats://host:port, got %q", redactURL(c.NATSURL)))
		}
	}
	if c.DNSResolver != "" {
		if _, _, err := net.SplitHostPort(c.DNSResolver); err != nil {
			errs = append(errs, fmt.Errorf("LITEHOST_DNS_RESOLVER: want host:port, got %q", c.DNSResolver))
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("LITEHOST_ADMIN_TOKEN: want at least 16 characters"))
	}
	return c, errors.Join(errs...)
}

// checkDelivery is the part of the configuration only the server needs: outside development an
// enabled OTP channel must really reach people, with no silent fallback to the log. Operator
// commands (migrate, admin, projections) run without it.
func (c Config) checkDelivery() error {
	var errs []error
	if !c.Dev && c.hasChannel("email") && c.SMTPURL == "" {
		errs = append(errs, errors.New("LITEHOST_SMTP_URL: required for the email OTP channel (or set LITEHOST_DEV=true to log codes)"))
	}
	if !c.Dev && c.hasChannel("phone") && c.SMSURL == "" {
		errs = append(errs, errors.New("LITEHOST_SMS_URL: required for the phone OTP channel (or set LITEHOST_DEV=true to log codes)"))
	}
	return errors.Join(errs...)
}

// hasChannel reports whether OTP codes may be sent over ch.
func (c Config) hasChannel(ch string) bool {
	for _, x := range c.OTPChannels {
		if x == ch {
			return true
		}
	}
	return false
}

// logAttrs is the effective configuration with secrets left out, for the start-up log line.
func (c Config) logAttrs() []any {
	return []any{
		"http_addr", c.HTTPAddr, "database", redactURL(c.DatabaseURL), "event_store", c.EventStore,
		"esdb", redactURL(c.ESDBURL), "data_dir", c.DataDir, "sites_domain", c.SitesDomain,
		"public_url", c.PublicURL, "dev", c.Dev, "smtp", redactURL(c.SMTPURL), "sms", redactURL(c.SMSURL),
		"otp_channels", c.OTPChannels, "otp_auto_create", c.OTPAutoCreate, "nats", redactURL(c.NATSURL),
		"admin_token_set", c.AdminToken != "", "trusted_proxies", c.TrustedProxies, "temp_ttl", c.TempTTL,
		"analytics_retention", c.AnalyticsRetention,
	}
}

func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "<invalid>"
	}
	return u.Redacted()
}
