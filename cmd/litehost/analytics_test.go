package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/readapi/analytics"
)

// User agents of real clients, as they send them.
const (
	uaChrome     = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaSafariIOS  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaFirefox    = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaSlackbot   = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
	uaWhatsApp   = "WhatsApp/2.23.20.0 A"
	uaIMessage   = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
	uaTwitterbot = "Twitterbot/1.0"
	uaDiscordbot = "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"
	uaTeams      = "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com"
	uaGooglebot  = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaGPTBot     = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)"
	uaClaudeUser = "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Claude-User/1.0; +Claude-User@anthropic.com)"
	uaScanner    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Barracuda Sentinel (EE)"
	uaCurl       = "curl/8.5.0"
)

// Client addresses with known countries in the embedded database.
const (
	ipSpain   = "80.58.61.250"
	ipBritain = "81.2.69.142"
	ipFrance  = "62.210.16.1"
)

// visitor sets the headers of one page request: its user agent and the client address that the
// trusted proxy (the test client on 127.0.0.1) forwards.
func visitor(ua, ip string) func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set("User-Agent", ua)
		r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		if ip != "" {
			r.Header.Set("X-Forwarded-For", ip)
		}
	}
}

// withHeader adds one header to a site request.
func withHeader(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// analyticsSetup is a running instance with a paid owner and one site.
type analyticsSetup struct {
	s        *testServer
	mb       *mailbox
	key      string
	id, slug string
}

func startAnalytics(t *testing.T, extra map[string]string) analyticsSetup {
	t.Helper()
	env := map[string]string{"LITEHOST_TRUSTED_PROXIES": "127.0.0.1", "LITEHOST_ADMIN_TOKEN": "operator-token-0123456789"}
	for k, v := range extra {
		env[k] = v
	}
	s, mb := startWithMail(t, "", env)
	key := signIn(t, s, mb, "opens@example.com")["apiKey"].(string)
	id, slug := createSite(t, s, key, "Proposal")
	return analyticsSetup{s: s, mb: mb, key: key, id: id, slug: slug}
}

func createSite(t *testing.T, s *testServer, key, title string) (string, string) {
	t.Helper()
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": title}, []upload{
		{"index.html", []byte("<!doctype html><title>p</title><p>proposal</p>")},
		{"about.html", []byte("<!doctype html><p>about</p>")},
		{"style.css", []byte("p{color:red}")},
	}, bearer(key))
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("create project = %d %s", r.status, r.body)
	}
	d := r.data(t)
	return d["projectId"].(string), d["slug"].(string)
}

// setPlan moves the owner to tier, as an operator does, and waits for the read models.
func setPlan(t *testing.T, s *testServer, email, tier string) {
	t.Helper()
	ctx := events.WithMetadata(t.Context(), operatorMetadata("test-set-plan"))
	pos, err := commands.NewAccounts(s.app.store, s.app.keyring, commands.NewPGRevocations(s.app.pool), s.app.now).
		SetPlan(ctx, commands.Identifier{Kind: otp.ChannelEmail, Value: email}, tier)
	if err != nil {
		t.Fatalf("set plan: %v", err)
	}
	if err := s.app.runner.WaitFor(ctx, pos); err != nil {
		t.Fatalf("wait for plan: %v", err)
	}
}

func (a analyticsSetup) report(t *testing.T) map[string]any {
	t.Helper()
	r := a.s.do(http.MethodGet, "/v1/projects/"+a.id+"/analytics", nil, bearer(a.key))
	if r.status != http.StatusOK {
		t.Fatalf("GET analytics = %d %s", r.status, r.body)
	}
	return r.data(t)
}

// count reads report[group][field] as an integer.
func count(rep map[string]any, group, field string) int {
	g, _ := rep[group].(map[string]any)
	n, _ := g[field].(float64)
	return int(n)
}

// waitVisits waits until the report shows n visits in total: the pipeline is asynchronous, and
// one writer stores hits in the order they were offered, so every earlier hit is decided then.
func (a analyticsSetup) waitVisits(t *testing.T, n int) map[string]any {
	t.Helper()
	var rep map[string]any
	waitFor(t, func() bool {
		rep = a.report(t)
		return count(rep, "visits", "total") >= n
	})
	if got := count(rep, "visits", "total"); got != n {
		t.Fatalf("visits.total = %d, want %d", got, n)
	}
	return rep
}

// view fetches path of the site and checks it was served.
func (a analyticsSetup) view(t *testing.T, path string, opts ...func(*http.Request)) http.Header {
	t.Helper()
	code, _, h := a.s.site(a.slug, path, opts...)
	if code != http.StatusOK {
		t.Fatalf("GET %s on the site = %d", path, code)
	}
	return h
}

// siteNoRedirect fetches path of the site without following a redirect.
func (a analyticsSetup) siteNoRedirect(t *testing.T, path string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = a.slug + "." + a.s.app.cfg.SitesDomain
	visitor(uaChrome, ipSpain)(req)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func TestLinkOpens(t *testing.T) {
	a := startAnalytics(t, nil)
	s := a.s

	// Free plan: the report and the owner link are locked.
	for _, p := range []string{"/analytics", "/analytics/owner-link"} {
		r := s.do(http.MethodGet, "/v1/projects/"+a.id+p, nil, bearer(a.key))
		if r.status != http.StatusForbidden || r.code(t) != "FEATURE_LOCKED" || r.json(t)["requiredTier"] != "starter" {
			t.Fatalf("free GET %s = %d %s", p, r.status, r.body)
		}
	}
	setPlan(t, s, "opens@example.com", "starter")
	rep := a.report(t)
	if rep["analyticsEnabled"] != true || count(rep, "opens", "total") != 0 || rep["lastOpenedAt"] != nil ||
		len(rep["recentOpens"].([]any)) != 0 || count(rep, "ownerOpens", "total") != 0 {
		t.Fatalf("empty report = %v", rep)
	}

	// Three people open the link in three browsers.
	a.view(t, "/", visitor(uaChrome, ipSpain))
	a.view(t, "/", visitor(uaFirefox, ipBritain))
	a.view(t, "/", visitor(uaSafariIOS, ipSpain), withHeader("Referer", "https://mail.example.com/inbox?id=42"))
	// Link previews are visits, not opens.
	for _, ua := range []string{uaSlackbot, uaWhatsApp, uaIMessage, uaTwitterbot, uaDiscordbot, uaTeams} {
		a.view(t, "/", visitor(ua, ipFrance))
	}
	// Bots, AI fetchers, a mail scanner and scripts are neither.
	for _, ua := range []string{uaGooglebot, uaGPTBot, uaClaudeUser, uaScanner, uaCurl, ""} {
		a.view(t, "/", visitor(ua, ipFrance))
	}
	// An asset is not a page; a HEAD is not a view; a navigation inside the site is a visit only.
	a.view(t, "/style.css", visitor(uaChrome, ipSpain))
	if code, _, _ := s.site(a.slug, "/missing", visitor(uaChrome, ipSpain)); code != http.StatusNotFound {
		t.Fatalf("missing page = %d", code)
	}
	siteOrigin := "http://" + a.slug + "." + s.app.cfg.SitesDomain // the Host the test client sends
	a.view(t, "/about", visitor(uaChrome, ipSpain), withHeader("Referer", siteOrigin+"/"))

	rep = a.waitVisits(t, 3+6+1)
	if got := count(rep, "opens", "total"); got != 3 {
		t.Errorf("opens.total = %d, want 3 (people only)", got)
	}
	if count(rep, "opens", "last24h") != 3 || count(rep, "opens", "last7d") != 3 {
		t.Errorf("opens windows = %v", rep["opens"])
	}
	recent := rep["recentOpens"].([]any)
	if len(recent) != 3 {
		t.Fatalf("recentOpens = %v", recent)
	}
	last := recent[0].(map[string]any)
	want := map[string]any{"country": "ES", "device": "mobile", "browser": "Safari", "os": "iOS", "referrer": "https://mail.example.com"}
	for k, v := range want {
		if last[k] != v {
			t.Errorf("recentOpens[0].%s = %v, want %v", k, last[k], v)
		}
	}
	if rep["lastOpenedAt"] != last["at"] {
		t.Errorf("lastOpenedAt %v, newest open at %v", rep["lastOpenedAt"], last["at"])
	}
	if first := recent[2].(map[string]any); first["browser"] != "Chrome" || first["os"] != "Windows" || first["device"] != "desktop" || first["referrer"] != nil {
		t.Errorf("recentOpens[2] = %v", first)
	}
	if !equalJSON(rep["topCountries"], []any{map[string]any{"country": "ES", "opens": 2}, map[string]any{"country": "GB", "opens": 1}}) {
		t.Errorf("topCountries = %v", rep["topCountries"])
	}

	// The owner opens the site through the owner link: the cookie is HttpOnly and host-only, the
	// token leaves the address bar, and the owner's views are ownerOpens, not opens.
	r := s.do(http.MethodGet, "/v1/projects/"+a.id+"/analytics/owner-link?to=/about", nil, bearer(a.key))
	if r.status != http.StatusOK {
		t.Fatalf("owner-link = %d %s", r.status, r.body)
	}
	link, err := url.Parse(r.data(t)["url"].(string))
	if err != nil || link.Path != analytics.OwnerPath || strings.Contains(link.RawQuery, a.key) {
		t.Fatalf("owner link %v (%v)", link, err)
	}
	code, h := a.siteNoRedirect(t, link.RequestURI())
	cookie := h.Get("Set-Cookie")
	if code != http.StatusSeeOther || h.Get("Location") != "/about" || !strings.Contains(cookie, "HttpOnly") ||
		strings.Contains(strings.ToLower(cookie), "domain=") || !strings.HasPrefix(cookie, analytics.OwnerCookie+"=") {
		t.Fatalf("owner link answer = %d %v", code, h)
	}
	ownerCookie := strings.SplitN(cookie, ";", 2)[0]
	a.view(t, "/", visitor(uaChrome, ipSpain), withHeader("Cookie", ownerCookie))
	// A forged or tampered cookie is a stranger's view: an open.
	a.view(t, "/", visitor(uaFirefox, ipFrance), withHeader("Cookie", ownerCookie+"x"))
	rep = a.waitVisits(t, 12)
	if count(rep, "ownerOpens", "total") != 1 || count(rep, "opens", "total") != 4 {
		t.Errorf("after the owner's view: ownerOpens %v, opens %v", rep["ownerOpens"], rep["opens"])
	}
	// An expired or forged owner link sets nothing.
	s.advance(analytics.OwnerLinkTTL + time.Second)
	code, h = a.siteNoRedirect(t, link.RequestURI())
	if code != http.StatusForbidden || h.Get("Set-Cookie") != "" {
		t.Errorf("expired owner link = %d %v", code, h)
	}

	// Windows: a day later and a week later.
	s.advance(25 * time.Hour)
	a.view(t, "/", visitor(uaChrome, ipFrance))
	rep = a.waitVisits(t, 13)
	if count(rep, "opens", "total") != 5 || count(rep, "opens", "last24h") != 1 || count(rep, "opens", "last7d") != 5 {
		t.Errorf("a day later: opens %v", rep["opens"])
	}
	if count(rep, "visits", "last24h") != 1 || count(rep, "visits", "last7d") != 13 {
		t.Errorf("a day later: visits %v", rep["visits"])
	}
	s.advance(7 * 24 * time.Hour)
	a.key = signIn(t, s, a.mb, "opens@example.com")["apiKey"].(string) // the first key has expired
	a.view(t, "/", visitor(uaChrome, ipFrance))
	rep = a.waitVisits(t, 14)
	if count(rep, "opens", "total") != 6 || count(rep, "opens", "last24h") != 1 || count(rep, "opens", "last7d") != 1 {
		t.Errorf("a week later: opens %v", rep["opens"])
	}

	// Retention: the prune deletes what is older than the cutoff.
	n, err := analytics.Prune(t.Context(), s.app.pool, s.app.now().Add(-time.Hour))
	if err != nil || n != 13 {
		t.Errorf("prune = %d, %v; want the 13 visits older than an hour", n, err)
	}
	if rep = a.report(t); count(rep, "visits", "total") != 1 || count(rep, "opens", "total") != 1 {
		t.Errorf("after the prune: %v", rep)
	}
}

// With analyticsEnabled off nothing is recorded (not in the table, not on the feed); a second
// site shows the writer got past it.
func TestLinkOpensDisabledRecordsNothing(t *testing.T) {
	a := startAnalytics(t, nil)
	setPlan(t, a.s, "opens@example.com", "starter")
	r := a.s.do(http.MethodPatch, "/v1/projects/"+a.id, map[string]any{"analyticsEnabled": false}, bearer(a.key))
	if r.status != http.StatusOK {
		t.Fatalf("PATCH = %d %s", r.status, r.body)
	}
	other := analyticsSetup{s: a.s, key: a.key}
	other.id, other.slug = createSite(t, a.s, a.key, "Marker")

	// Without NATS the operators' stream carries this instance's visits.
	sse := openSSE(t, a.s, "/v1/visits/stream", map[string]string{"Authorization": "Bearer operator-token-0123456789"})
	a.view(t, "/", visitor(uaChrome, ipSpain))
	other.view(t, "/", visitor(uaChrome, ipSpain))
	other.waitVisits(t, 1)
	if m := sse.next(t); m.event != "visit" || !strings.Contains(m.data, `"projectId":"`+other.id+`"`) {
		t.Errorf("SSE message = %+v, want the marker site's visit only", m)
	}
	rep := a.report(t)
	if rep["analyticsEnabled"] != false || count(rep, "visits", "total") != 0 || count(rep, "opens", "total") != 0 {
		t.Errorf("disabled project recorded: %v", rep)
	}
}

// Stored visits reach NATS (litehost.visits.<projectId>) and the operators' SSE stream.
func TestVisitFeed(t *testing.T) {
	a := startAnalytics(t, map[string]string{"LITEHOST_NATS_URL": "nats://127.0.0.1:4222"})
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatalf("connect NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	msgs := make(chan *nats.Msg, 10)
	sub, err := nc.ChanSubscribe(analytics.SubjectPrefix+"."+a.id, msgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if r := a.s.do(http.MethodGet, "/v1/visits/stream", nil); r.status != http.StatusUnauthorized || r.code(t) != "ADMIN_TOKEN_MISSING" {
		t.Errorf("stream without token = %d %s", r.status, r.body)
	}
	if r := a.s.do(http.MethodGet, "/v1/visits/stream", nil, bearer(a.key)); r.status != http.StatusUnauthorized || r.code(t) != "ADMIN_TOKEN_INVALID" {
		t.Errorf("stream with an API key = %d %s", r.status, r.body)
	}
	sse := openSSE(t, a.s, "/v1/visits/stream?projectId="+a.id, map[string]string{"Authorization": "Bearer operator-token-0123456789"})

	a.view(t, "/", visitor(uaSafariIOS, ipSpain))
	select {
	case m := <-msgs:
		var v map[string]any
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatal(err)
		}
		if v["projectId"] != a.id || v["kind"] != "person" || v["country"] != "ES" || v["browser"] != "Safari" {
			t.Errorf("NATS visit = %v", v)
		}
		for _, k := range []string{"ip", "clientIp", "userAgent"} {
			if _, ok := v[k]; ok {
				t.Errorf("NATS visit carries %s", k)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no visit on NATS within 10 s")
	}
	m := sse.next(t)
	if m.event != "visit" || !strings.Contains(m.data, `"projectId":"`+a.id+`"`) {
		t.Errorf("SSE message = %+v", m)
	}
}

func TestAnalyticsRetentionConfig(t *testing.T) {
	base := map[string]string{"LITEHOST_DEV": "true"}
	cfg, err := loadConfig(envOf(base))
	if err != nil || cfg.AnalyticsRetention != 90*24*time.Hour {
		t.Fatalf("default retention = %v (%v), want 90 days", cfg.AnalyticsRetention, err)
	}
	for _, bad := range []string{"90d", "0", "-1h", "soon"} {
		base["LITEHOST_ANALYTICS_RETENTION"] = bad
		if _, err := loadConfig(envOf(base)); err == nil || !strings.Contains(err.Error(), "LITEHOST_ANALYTICS_RETENTION") {
			t.Errorf("retention %q: %v", bad, err)
		}
	}
	base["LITEHOST_ANALYTICS_RETENTION"] = "720h"
	if cfg, err := loadConfig(envOf(base)); err != nil || cfg.AnalyticsRetention != 720*time.Hour {
		t.Errorf("retention 720h = %v, %v", cfg.AnalyticsRetention, err)
	}
}
