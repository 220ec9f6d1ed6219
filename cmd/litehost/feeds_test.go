package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/litehost/litehost/commands/forwarder"
	"github.com/litehost/litehost/events"
)

// feedJourney is what TestPublicFeedsCarryNoSecrets did and must never see again on a feed.
type feedJourney struct {
	correlation string
	projects    []string // the owner's projects: protected, claimed
	key         string
	forbidden   []string // every secret, hash, nonce, address and request origin of the journey
}

// TestPublicFeedsCarryNoSecrets drives a journey (sign-in, a temporary project and its claim, a
// password-protected project, a custom domain) from a distinctive client address and user agent,
// then reads the SSE stream, the NATS messages and the audit log: none may hold the e-mail
// address, an OTP nonce, any hash (field or value), an argon2id string, the DNS challenge token,
// the client's address or its user agent, or a private stream's name.
func TestPublicFeedsCarryNoSecrets(t *testing.T) {
	const (
		clientIP  = "198.51.100.77"
		userAgent = "LeakProbe/1.0 (secret-device-4242; build 9731)"
		email     = "feed-owner@example.com"
		password  = "correct horse battery"
	)
	s, mb := startWithMail(t, "", map[string]string{
		"LITEHOST_ADMIN_TOKEN": testAdminToken, "LITEHOST_NATS_URL": "nats://127.0.0.1:4222",
		"LITEHOST_TRUSTED_PROXIES": "127.0.0.1/32",
	})
	started := time.Now().Add(-time.Second)
	j := feedJourney{correlation: "feed-journey-" + strings.ReplaceAll(uuid.NewString(), "-", "")}
	as := []reqOpt{header("User-Agent", userAgent), header("X-Forwarded-For", clientIP), header("X-Correlation-ID", j.correlation)}
	with := func(extra ...reqOpt) []reqOpt { return append(append([]reqOpt{}, as...), extra...) }

	// Sign in.
	if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": email}, as...); r.status != http.StatusOK {
		t.Fatalf("otp request = %d %s", r.status, r.body)
	}
	code := mb.waitCode(t, email, 1)
	r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": email, "code": code}, as...)
	if r.status != http.StatusOK {
		t.Fatalf("otp verify = %d %s", r.status, r.body)
	}
	j.key = r.data(t)["apiKey"].(string)
	refresh, _ := r.data(t)["refreshToken"].(string)
	if out, err := runCLI(t, s, "admin", "set-plan", email, "pro"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(j.key)).data(t)["plan"].(map[string]any)["tier"] == "pro"
	})

	// A temporary project, claimed.
	r = s.doUpload(http.MethodPost, "/v1/projects/temp", nil, []upload{{"index.html", []byte("<p>temp</p>")}}, as...)
	if r.status != http.StatusOK {
		t.Fatalf("temp = %d %s", r.status, r.body)
	}
	claimToken := r.data(t)["claimToken"].(string)
	temp := r.data(t)["projectId"].(string)
	if r := s.do(http.MethodPost, "/v1/projects/claim/"+claimToken, nil, with(bearer(j.key))...); r.status != http.StatusOK {
		t.Fatalf("claim = %d %s", r.status, r.body)
	}

	// A password-protected project.
	r = s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Protected"},
		[]upload{{"index.html", []byte("<p>secret</p>")}}, with(bearer(j.key))...)
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	protected := r.data(t)["projectId"].(string)
	if r := s.do(http.MethodPatch, "/v1/projects/"+protected, map[string]any{"access": "password", "password": password},
		with(bearer(j.key))...); r.status != http.StatusOK {
		t.Fatalf("protect = %d %s", r.status, r.body)
	}
	j.projects = []string{protected, temp}

	// A custom domain.
	addDomain := func() response {
		return s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "feeds.example.com"},
			with(bearer(j.key), header("Idempotency-Key", "feed-domain"))...)
	}
	r = addDomain()
	if r.status != http.StatusCreated {
		t.Fatalf("add domain = %d %s", r.status, r.body)
	}
	challenge := r.data(t)["verification"].(map[string]any)["value"].(string)
	dnsToken := strings.TrimPrefix(challenge, "litehost-verification=")
	if again := addDomain(); again.status != http.StatusCreated || !strings.Contains(string(again.body), challenge) {
		t.Errorf("retried domain add = %d %s, want the same answer", again.status, again.body)
	}
	// The token is derived from the server secret and the domain ID: no table holds it, not even
	// the idempotency table that answers the retry.
	for _, tbl := range tablesHolding(t, s, dnsToken) {
		t.Errorf("table %s holds the DNS challenge token", tbl)
	}

	// A marker closes the journey: the feeds are read up to it.
	marker := appendEvent(t, s, "slug-feed-marker", events.SlugReserved{Slug: "feed-marker", ProjectID: uuid.NewString(), At: time.Now().UTC()})

	j.forbidden = append(forbiddenOfLog(t, s), email, code, j.key, refresh, claimToken, password, dnsToken, challenge,
		clientIP, "198.51.100.", "LeakProbe", "secret-device", "$argon2id$", "Hash", "nonce", "clientIp", "clientNetwork", "userAgent")

	// The log itself keeps the client's network and the user agent's product tokens only.
	t.Run("stored metadata", func(t *testing.T) {
		recs := readLog(t, s)
		var sawNetwork bool
		for _, rec := range recs {
			md := string(rec.Metadata)
			for _, f := range []string{clientIP, "secret-device", "build 9731", "clientIp"} {
				if strings.Contains(md, f) {
					t.Errorf("%s@%d metadata holds %q: %s", rec.Stream, rec.Version, f, md)
				}
			}
			var stored struct{ ClientNetwork, UserAgent string }
			_ = json.Unmarshal(rec.Metadata, &stored)
			sawNetwork = sawNetwork || stored.ClientNetwork == "198.51.100.0/24" && stored.UserAgent == "LeakProbe/1.0"
		}
		if !sawNetwork {
			t.Error("no event stored the client's /24 and reduced user agent")
		}
	})

	t.Run("SSE", func(t *testing.T) {
		sse := openSSE(t, s, "/v1/events/stream", map[string]string{"Authorization": "Bearer " + testAdminToken})
		var body strings.Builder
		types := map[string]bool{}
		for {
			m := sse.next(t)
			body.WriteString("id: " + m.id + "\nevent: " + m.event + "\ndata: " + m.data + "\n\n")
			types[m.event] = true
			if m.id == marker.Position.String() {
				break
			}
		}
		j.check(t, "SSE stream", body.String())
		for _, want := range []string{events.TypeAccountRegistered, events.TypeProjectCreated, events.TypeProjectClaimed,
			events.TypeProjectSettingsUpdated, events.TypeDomainAdded} {
			if !types[want] {
				t.Errorf("SSE stream lacks %s (got %v)", want, types)
			}
		}
		if !strings.Contains(body.String(), `"passwordProtected":true`) {
			t.Error("SSE stream: the protected project's settings do not say passwordProtected")
		}
	})

	t.Run("NATS", func(t *testing.T) {
		js := natsJetStream(t)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		cons, err := js.OrderedConsumer(ctx, forwarder.DefaultStream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &started,
		})
		if err != nil {
			t.Fatalf("consumer: %v", err)
		}
		var mine strings.Builder
		n := 0
		for {
			msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				t.Fatalf("the marker did not arrive on NATS (%d of this journey's messages so far): %v", n, err)
			}
			all := msg.Subject() + "\n" + string(msg.Data())
			for k, v := range msg.Headers() {
				all += "\n" + k + ": " + strings.Join(v, ",")
			}
			// The stream is shared with every test instance on this NATS server: keep this
			// journey's messages, and any message that holds one of its values.
			if strings.Contains(all, j.correlation) || j.holdsOwnValue(all) {
				mine.WriteString(all + "\n\n")
				n++
			}
			if msg.Headers().Get(forwarder.HeaderPosition) == marker.Position.String() && msg.Headers().Get(forwarder.HeaderStream) == "slug-feed-marker" {
				break
			}
		}
		if n < 5 {
			t.Errorf("only %d messages of the journey on NATS:\n%s", n, mine.String())
		}
		j.check(t, "NATS messages", mine.String())
	})

	t.Run("audit", func(t *testing.T) {
		for _, id := range j.projects {
			r := s.do(http.MethodGet, "/v1/projects/"+id+"/events", nil, bearer(j.key))
			if r.status != http.StatusOK {
				t.Fatalf("audit %s = %d %s", id, r.status, r.body)
			}
			j.check(t, "audit log of "+id, string(r.body))
		}
	})
}

// check fails the test for every forbidden value in body.
func (j feedJourney) check(t *testing.T, what, body string) {
	t.Helper()
	for _, f := range j.forbidden {
		if strings.Contains(body, f) {
			t.Errorf("%s holds %q", what, f)
		}
	}
	if t.Failed() {
		t.Logf("%s:\n%s", what, body)
	}
}

// holdsOwnValue tells whether s holds one of the journey's own secrets (long enough to be
// unique to it, unlike "Hash").
func (j feedJourney) holdsOwnValue(s string) bool {
	for _, f := range j.forbidden {
		if len(f) >= 16 && strings.Contains(s, f) {
			return true
		}
	}
	return false
}

// forbiddenOfLog collects from the raw log what must not leave: the values of every field that
// names a secret, a hash, a nonce, a token or an address, and the names of the streams whose
// name is derived from an address (otp-, identity-).
func forbiddenOfLog(t *testing.T, s *testServer) []string {
	t.Helper()
	var out []string
	for _, rec := range readLog(t, s) {
		if c := events.Category(rec.Stream); c == "otp" || c == "identity" {
			out = append(out, rec.Stream, strings.TrimPrefix(rec.Stream, c+"-"))
		}
		var v any
		if err := json.Unmarshal(rec.Data, &v); err != nil {
			continue
		}
		collectSecrets(v, "", &out)
	}
	return out
}

// readLog reads the instance's whole log.
func readLog(t *testing.T, s *testServer) []events.RecordedEvent {
	t.Helper()
	var out []events.RecordedEvent
	from := events.Start
	for {
		page, err := s.app.store.ReadAll(t.Context(), from, 500)
		if err != nil {
			t.Fatalf("read log: %v", err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		from = page[len(page)-1].Position
	}
}

func collectSecrets(v any, key string, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			collectSecrets(x, k, out)
		}
	case []any:
		for _, x := range v {
			collectSecrets(x, key, out)
		}
	case string:
		l := strings.ToLower(key)
		for _, p := range []string{"hash", "nonce", "token", "email", "phone", "address"} {
			if strings.Contains(l, p) && len(v) >= 8 {
				*out = append(*out, v)
			}
		}
	}
}

func natsJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		t.Fatalf("connect NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

// tablesHolding returns the tables of the instance's database with a row whose text holds v, in
// clear or, in a bytea column, hex-encoded.
func tablesHolding(t *testing.T, s *testServer, v string) []string {
	t.Helper()
	rows, err := s.app.pool.Query(t.Context(), `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
		FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tbl := range tables {
		var n int
		if err := s.app.pool.QueryRow(t.Context(), `SELECT count(*) FROM `+tbl+` x WHERE strpos(x::text, $1) > 0 OR strpos(x::text, encode(convert_to($1, 'UTF8'), 'hex')) > 0`, v).Scan(&n); err != nil {
			t.Fatalf("scan %s: %v", tbl, err)
		}
		if n > 0 {
			out = append(out, tbl)
		}
	}
	return out
}
