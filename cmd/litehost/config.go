package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/litehost/litehost/events/esdbstore"
	"github.com/litehost/litehost/events/secret"
)

// Config is the whole configuration, read from the environment by loadConfig (DESIGN §10).
type Config struct {
	HTTPAddr      string
	DatabaseURL   string `json:"-"`
	EventStore    string // "postgres" or "esdb"
	ESDBURL       string `json:"-"`
	DataDir       string
	SitesDomain   string
	PublicURL     string
	Secret        []byte `json:"-"`
	Dev           bool
	SMTPURL       string `json:"-"`
	MailFrom      string
	SMSURL        string
	SMSToken      string `json:"-"`
	OTPChannels   []string
	SMSCountries  []string // country calling codes phone codes may go to
	OTPAutoCreate bool
	NATSURL       string
	AdminToken    string `json:"-"`
	// AdminAddr is an optional second listen address for operators: /metrics and the detail of
	// /health without a token (LITEHOST_ADMIN_ADDR); keep it off public networks.
	AdminAddr       string
	TrustedProxies  []string
	DNSResolver     string // host:port of the resolver for domain verification; empty = system
	LogLevel        slog.Level
	LogFormat       string
	TempTTL         time.Duration
	ConsistencyWait time.Duration
	MaxUploadBytes  int64
	// SitePasswordSlots bounds the protected-site password checks (argon2id, 19 MiB each)
	// running at once; SitePasswordFailures is the failed attempts allowed per client and site
	// per SitePasswordWindow.
	SitePasswordSlots    int
	SitePasswordFailures int
	// ReadTimeout is how long an ordinary request may take to send its body (upload routes get
	// more, by size); MaxConnsPerClient caps the open connections of one client.
	ReadTimeout       time.Duration
	MaxConnsPerClient int
	// DomainPendingTTL is how long an unverified custom domain holds its hostname.
	DomainPendingTTL time.Duration
	// AnalyticsRetention is how long page views are kept (LITEHOST_ANALYTICS_RETENTION).
	AnalyticsRetention time.Duration
	// KeyIdleTTL is how long a sign-in API key lives without use; each use renews it (at most
	// once a day). Trial is the Pro trial of a new account; 0 starts new accounts on free.
	KeyIdleTTL time.Duration
	Trial      time.Duration
}

// sitePasswordWindow is the window of SitePasswordFailures.
const sitePasswordWindow = 15 * time.Minute

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
	positive := func(key string, def int) int {
		v := str(key, "")
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a positive integer, got %q", key, v))
		}
		return n
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
		SMSCountries:    list("LITEHOST_SMS_COUNTRIES", ""),
		OTPAutoCreate:   boolean("LITEHOST_OTP_AUTO_CREATE", true),
		NATSURL:         str("LITEHOST_NATS_URL", ""),
		AdminToken:      str("LITEHOST_ADMIN_TOKEN", ""),
		AdminAddr:       str("LITEHOST_ADMIN_ADDR", ""),
		TrustedProxies:  list("LITEHOST_TRUSTED_PROXIES", ""),
		DNSResolver:     str("LITEHOST_DNS_RESOLVER", ""),
		LogFormat:       strings.ToLower(str("LOG_FORMAT", "json")),
		TempTTL:         duration("LITEHOST_TEMP_TTL", 15*time.Minute),
		ConsistencyWait: duration("LITEHOST_CONSISTENCY_WAIT", 5*time.Second),
		// 90 days, the usual window of link-open analytics; visits older than this are deleted.
		AnalyticsRetention: duration("LITEHOST_ANALYTICS_RETENTION", 90*24*time.Hour),
	}
	c.SitePasswordSlots = positive("LITEHOST_SITE_PASSWORD_SLOTS", max(runtime.NumCPU(), 2))
	c.SitePasswordFailures = positive("LITEHOST_SITE_PASSWORD_FAILURES", 10)
	c.ReadTimeout = duration("LITEHOST_READ_TIMEOUT", 15*time.Second)
	c.MaxConnsPerClient = positive("LITEHOST_MAX_CONNS_PER_CLIENT", 64)
	c.DomainPendingTTL = duration("LITEHOST_DOMAIN_PENDING_TTL", 72*time.Hour)
	c.KeyIdleTTL = duration("LITEHOST_KEY_IDLE_TTL", 90*24*time.Hour)
	if c.KeyIdleTTL > 0 && c.KeyIdleTTL < 48*time.Hour {
		// Renewals happen at most daily, so a shorter window would let a key in daily use lapse.
		errs = append(errs, fmt.Errorf("LITEHOST_KEY_IDLE_TTL: want at least 48h, got %s", c.KeyIdleTTL))
	}
	c.Trial = 168 * time.Hour
	if v := str("LITEHOST_TRIAL", ""); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("LITEHOST_TRIAL: want a duration like 168h, or 0 for no trial, got %q", v))
		}
		c.Trial = d
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
		} else if _, err := esdbstore.ParseConnectionString(c.ESDBURL); err != nil {
			// Checked with the client's own parser at start-up, so a typo fails here and not at
			// the first append; the message keeps credentials out.
			errs = append(errs, fmt.Errorf("LITEHOST_ESDB_URL: %w; want esdb://host:2113?tls=false, "+
				"esdb+discover://host:2113 or esdb://host1:2113,host2:2113,host3:2113 (optionally &nodePreference=leader|follower|random|readonlyreplica)", err))
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
	for _, cc := range c.SMSCountries {
		if !countryCode.MatchString(cc) {
			errs = append(errs, fmt.Errorf("LITEHOST_SMS_COUNTRIES: want country calling codes such as 1,44,49 (no +), got %q", cc))
		}
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
	if c.Dev && strings.HasPrefix(strings.ToLower(c.PublicURL), "https://") {
		// Development mode logs sign-in codes and may run on the public development secret: on a
		// public https address that is a production server with its keys in the open.
		errs = append(errs, errors.New("LITEHOST_DEV: must not be true when LITEHOST_PUBLIC_URL is https (development mode logs sign-in codes and may use the public development secret)"))
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
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("LITEHOST_ADMIN_ADDR: want host:port, got %q", c.AdminAddr))
		} else if c.AdminAddr == c.HTTPAddr {
			errs = append(errs, errors.New("LITEHOST_ADMIN_ADDR: must differ from LITEHOST_HTTP_ADDR"))
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
	// Every SMS costs money, and premium-rate prefixes pay whoever triggers them (toll fraud):
	// the operator names the countries it is willing to pay for. No default list would suit
	// every operator, and a guessed one would silently open paid prefixes.
	if c.hasChannel("phone") && len(c.SMSCountries) == 0 && (!c.Dev || c.SMSURL != "") {
		errs = append(errs, errors.New("LITEHOST_SMS_COUNTRIES: required for the phone OTP channel: the country calling codes to send codes to, e.g. 1,44,49"))
	}
	return errors.Join(errs...)
}

// countryCode is one ITU-T E.164 country calling code: one to three digits, not starting with 0.
var countryCode = regexp.MustCompile(`^[1-9][0-9]{0,2}$`)

// smsCountries is the allow-list the OTP handler gets. In development with codes only logged
// (no SMS provider) an unset list allows every number: nothing is paid for.
func (c Config) smsCountries() []string {
	if len(c.SMSCountries) == 0 && c.Dev && c.SMSURL == "" {
		return []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}
	}
	return c.SMSCountries
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
		"otp_channels", c.OTPChannels, "sms_countries", c.SMSCountries, "otp_auto_create", c.OTPAutoCreate, "nats", redactURL(c.NATSURL),
		"admin_token_set", c.AdminToken != "", "admin_addr", c.AdminAddr, "trusted_proxies", c.TrustedProxies, "temp_ttl", c.TempTTL, "key_idle_ttl", c.KeyIdleTTL, "trial", c.Trial,
		"read_timeout", c.ReadTimeout, "max_conns_per_client", c.MaxConnsPerClient,
		"site_password_slots", c.SitePasswordSlots, "site_password_failures", c.SitePasswordFailures,
		"domain_pending_ttl", c.DomainPendingTTL,
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

// superuserQuery tells whether the connected role bypasses every permission check.
const superuserQuery = `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`

// databaseWarnings returns what a production operator should fix about the database connection
// (nothing in development): a superuser role, which turns any SQL injection or compromise into
// the whole cluster, and a URL that allows plain text to a host that is not this machine.
func databaseWarnings(ctx context.Context, c Config, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) []string {
	if c.Dev {
		return nil
	}
	var out []string
	var super bool
	if err := q.QueryRow(ctx, superuserQuery).Scan(&super); err != nil {
		out = append(out, "could not check the database role: "+err.Error())
	} else if super {
		out = append(out, "LITEHOST_DATABASE_URL connects as a superuser; use a role that owns only the litehost database")
	}
	if w := plaintextDatabase(c.DatabaseURL); w != "" {
		out = append(out, w)
	}
	return out
}

// plaintextDatabase warns about a database URL whose sslmode lets the connection go without TLS
// (disable, allow, prefer, or none given: pgx then prefers) to a host beyond loopback.
func plaintextDatabase(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	host := u.Hostname()
	if h := u.Query().Get("host"); h != "" {
		host = h
	}
	if host == "" || strings.HasPrefix(host, "/") || host == "localhost" {
		return "" // a unix socket or this machine
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	switch mode := u.Query().Get("sslmode"); mode {
	case "", "disable", "allow", "prefer":
		if mode == "" {
			mode = "prefer (the default)"
		}
		return fmt.Sprintf("LITEHOST_DATABASE_URL: sslmode=%s to %s may send credentials and data in clear; use sslmode=verify-full", mode, host)
	}
	return ""
}
