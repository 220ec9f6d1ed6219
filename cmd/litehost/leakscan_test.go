package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/litehost/litehost/commands/forwarder"
)

// secretPurposes are the keyring purposes a stored value could have been hashed under. A hash of
// a secret under any of them, or a plain SHA-256 of it, counts as the secret itself.
var secretPurposes = []string{
	"identifier", "otp-code", "otp-code-check", "api-key", "refresh-token", "claim-token", "idempotency",
	"issue-api-key", "issue-refresh-token", "api-key-mac", "refresh-token-mac", "claim-token-issue",
	"domain-challenge-id", "request-fingerprint", "site-password-seal", "otp-client",
}

// leakPatterns are shapes no stored row or feed may hold whatever the values: password hashes in
// clear and JSON fields that carry a secret, a hash of one or a nonce. Content hashes of uploaded files
// (manifestHash, hashes inside manifests) are not secrets and are not matched.
var leakPatterns = []*regexp.Regexp{
	regexp.MustCompile(`\$argon2(id|i|d)\$`),
	regexp.MustCompile(`"(nonce|codeHash|keyHash|refreshHash|previousKeyHash|previousRefreshHash|claimTokenHash|challengeToken|tokenHash)"\s*:\s*"[^"]+"`),
	// A site password's hash is stored sealed (AES-GCM under the server secret); a bare PHC
	// string ($argon2id$…, $2a$…) would be crackable offline from a copy of the log.
	regexp.MustCompile(`"passwordHash"\s*:\s*"\$`),
}

// collector keeps everything a feed delivered.
type collector struct {
	mu   sync.Mutex
	text strings.Builder
	n    int
	last time.Time
}

func (c *collector) add(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.text.WriteString(s)
	c.text.WriteByte('\n')
	c.n++
	c.last = time.Now()
}

func (c *collector) snapshot() (string, int, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.text.String(), c.n, c.last
}

// TestNoSecretLeaksAfterJourney runs a whole user journey (sign-in, projects, a temporary project
// and its claim, a password-protected site, workspaces, a custom domain, refresh, revoke) and then
// scans the server log (at debug level), every row of every table in the database, the SSE feed
// and the NATS feed for the credentials the journey handled: API keys, refresh tokens, OTP codes,
// the claim token, the site password, the DNS challenge and the operator token, each also as a
// SHA-256 or a keyring hash, plus the shapes in leakPatterns.
func TestNoSecretLeaksAfterJourney(t *testing.T) {
	start := time.Now().Add(-time.Second)
	s, mb := startWithMail(t, "", map[string]string{
		"LITEHOST_ADMIN_TOKEN": testAdminToken,
		"LITEHOST_NATS_URL":    "nats://127.0.0.1:4222",
		"LOG_LEVEL":            "debug",
	})

	sse := &collector{}
	stream := openSSE(t, s, "/v1/events/stream?from=0/0", map[string]string{"Authorization": "Bearer " + testAdminToken})
	go func() {
		for m := range stream.messages {
			sse.add(m.id + " " + m.event + " " + m.data)
		}
	}()
	feed := &collector{}
	subscribeNATS(t, start, feed)

	var secrets []string
	addresses := []string{"leak-owner@example.com", "leak-claimer@example.com"}
	signInCode := func(email string) map[string]any {
		t.Helper()
		before := mb.count(email)
		if r := s.do(http.MethodPost, "/v1/auth/otp/request", map[string]any{"email": email}); r.status != http.StatusOK {
			t.Fatalf("otp request = %d %s", r.status, r.body)
		}
		code := mb.waitCode(t, email, before+1)
		r := s.do(http.MethodPost, "/v1/auth/otp/verify", map[string]any{"email": email, "code": code})
		if r.status != http.StatusOK {
			t.Fatalf("otp verify = %d %s", r.status, r.body)
		}
		d := r.data(t)
		secrets = append(secrets, code, d["apiKey"].(string), d["refreshToken"].(string))
		return d
	}

	owner := signInCode(addresses[0])
	key := owner["apiKey"].(string)
	// Paid features ahead: passwords, workspaces, custom domains.
	if out, err := runCLI(t, s, "admin", "set-plan", addresses[0], "pro"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)["plan"].(map[string]any)["tier"] == "pro"
	})

	// A project, then a password on its site; the site opens with the password only.
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": "Leak scan"},
		[]upload{{"index.html", []byte("<p>scan</p>")}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	id, slug := r.data(t)["projectId"].(string), r.data(t)["slug"].(string)
	const password = "correct-horse-battery-leak"
	secrets = append(secrets, password)
	if r := s.do(http.MethodPatch, "/v1/projects/"+id, map[string]any{"access": "password", "password": password}, bearer(key)); r.status != http.StatusOK {
		t.Fatalf("set password = %d %s", r.status, r.body)
	}
	if code, _, _ := s.site(slug, "/", func(r *http.Request) { r.SetBasicAuth("visitor", password) }); code != http.StatusOK {
		t.Errorf("protected site with the password = %d", code)
	}
	if code, _, _ := s.site(slug, "/", func(r *http.Request) { r.SetBasicAuth("visitor", "wrong") }); code != http.StatusUnauthorized {
		t.Errorf("protected site with a wrong password = %d", code)
	}

	// A temporary project, claimed by a second account.
	r = s.doUpload(http.MethodPost, "/v1/projects/temp", nil, []upload{{"index.html", []byte("<p>temp</p>")}},
		header("Idempotency-Key", "leak-temp-1"))
	if r.status != http.StatusOK {
		t.Fatalf("temp = %d %s", r.status, r.body)
	}
	claimToken := r.data(t)["claimToken"].(string)
	secrets = append(secrets, claimToken)
	s.advance(61 * time.Second)
	claimer := signInCode(addresses[1])
	if r := s.do(http.MethodPost, "/v1/projects/claim/"+claimToken, nil, bearer(claimer["apiKey"].(string))); r.status != http.StatusOK {
		t.Fatalf("claim = %d %s", r.status, r.body)
	}

	// A workspace and a custom domain with its DNS challenge.
	if r := s.do(http.MethodPost, "/v1/workspaces", map[string]any{"name": "Scan team"}, bearer(key)); r.status != http.StatusCreated {
		t.Fatalf("workspace = %d %s", r.status, r.body)
	}
	r = s.do(http.MethodPost, "/v1/domains", map[string]any{"domain": "leakscan.example.com"}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("add domain = %d %s", r.status, r.body)
	}
	challenge := r.data(t)["verification"].(map[string]any)["value"].(string)
	secrets = append(secrets, challenge, strings.TrimPrefix(challenge, "litehost-verification="))

	// Refresh, then revoke the new session.
	r = s.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": owner["refreshToken"]})
	if r.status != http.StatusOK {
		t.Fatalf("refresh = %d %s", r.status, r.body)
	}
	fresh := r.data(t)
	secrets = append(secrets, fresh["apiKey"].(string), fresh["refreshToken"].(string))
	if r := s.do(http.MethodPost, "/v1/auth/revoke", nil, bearer(fresh["apiKey"].(string))); r.status != http.StatusOK {
		t.Fatalf("revoke = %d %s", r.status, r.body)
	}
	secrets = append(secrets, testAdminToken)

	// Let both feeds catch up: they are quiet for a second once every event has been delivered.
	waitQuiet(t, sse)
	waitQuiet(t, feed)

	needles := map[string]string{} // needle → what it is
	for i, v := range secrets {
		what := fmt.Sprintf("secret #%d (%.12s…)", i, v)
		needles[v] = what
		sum := sha256.Sum256([]byte(v))
		needles[hex.EncodeToString(sum[:])] = "sha256 of " + what
		for _, p := range secretPurposes {
			needles[s.app.keyring.Hash(p, v)] = p + " hash of " + what
		}
	}
	sseText, sseN, _ := sse.snapshot()
	natsText, natsN, _ := feed.snapshot()
	if sseN == 0 || natsN == 0 {
		t.Fatalf("feeds delivered nothing (SSE %d, NATS %d): the scan would prove nothing", sseN, natsN)
	}
	sources := map[string]string{
		"server log": s.logs.String(),
		"SSE feed":   sseText,
		"NATS feed":  natsText,
	}
	for table, rows := range dumpDatabase(t, s) {
		sources["table "+table] = rows
	}
	for where, text := range sources {
		for needle, what := range needles {
			if len(needle) >= 6 && containsToken(text, needle) {
				t.Errorf("%s holds %s", where, what)
			}
		}
		for _, p := range leakPatterns {
			if m := p.FindString(text); m != "" {
				t.Errorf("%s holds %q", where, m)
			}
		}
	}
	// No table keeps the client's address: limits count by a keyed bucket name, metadata keeps
	// the network only.
	for where, text := range sources {
		if strings.HasPrefix(where, "table ") && strings.Contains(text, "127.0.0.1") {
			t.Errorf("%s holds the client address 127.0.0.1", where)
		}
	}
	// Personal addresses never leave the service: the feeds name accounts by ID.
	for _, where := range []string{"SSE feed", "NATS feed"} {
		for _, a := range addresses {
			if strings.Contains(sources[where], a) {
				t.Errorf("%s holds the address %s", where, a)
			}
		}
	}
}

// containsToken reports whether text holds needle as a whole token: a 6-digit code inside a
// longer run of digits (a timestamp, a position) is not that code.
func containsToken(text, needle string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], needle)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(needle)
		if !isDigit(needle[0]) || ((j == 0 || !isDigit(text[j-1])) && (end == len(text) || !isDigit(text[end]))) {
			return true
		}
		i = j + 1
	}
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// waitQuiet waits until c has received something and then nothing for a second.
func waitQuiet(t *testing.T, c *collector) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, n, last := c.snapshot()
		if n > 0 && time.Since(last) > time.Second {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// subscribeNATS collects every message the forwarder stored since start (other tests share the
// JetStream stream; the scan only looks for this test's own secrets).
func subscribeNATS(t *testing.T, start time.Time, c *collector) {
	t.Helper()
	js := natsJetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var cons jetstream.Consumer
	waitFor(t, func() bool { // the forwarder creates the stream when it starts
		st, err := js.Stream(ctx, forwarder.DefaultStream)
		if err != nil {
			return false
		}
		cons, err = st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
		})
		return err == nil
	})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var hdr strings.Builder
		for k, vs := range m.Headers() {
			hdr.WriteString(k + "=" + strings.Join(vs, ",") + " ")
		}
		c.add(m.Subject() + " " + hdr.String() + string(m.Data()))
	})
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	t.Cleanup(cc.Stop)
}

// dumpDatabase returns every row of every table of the instance's database, one text per table;
// byte columns are read as text so stored bodies are scanned too.
func dumpDatabase(t *testing.T, s *testServer) map[string]string {
	t.Helper()
	ctx := t.Context()
	rows, err := s.app.pool.Query(ctx, `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
		FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	out := map[string]string{}
	for _, table := range tables {
		rows, err := s.app.pool.Query(ctx, "SELECT * FROM "+table)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		var b strings.Builder
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			for _, v := range vals {
				switch v := v.(type) {
				case []byte:
					b.Write(v)
				case string:
					b.WriteString(v)
				case map[string]any, []any: // jsonb: scanned as the JSON it stores
					j, _ := json.Marshal(v)
					b.Write(j)
				default:
					fmt.Fprintf(&b, "%v", v)
				}
				b.WriteByte('\t')
			}
			b.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		out[table] = b.String()
	}
	if len(out) == 0 {
		t.Fatal("no tables dumped")
	}
	return out
}
