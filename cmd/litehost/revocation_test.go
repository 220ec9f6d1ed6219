package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/litehost/litehost/events/secret"
)

// session is one signed-in client: its key and refresh token.
type session struct{ key, refresh string }

func signInSession(t *testing.T, s *testServer, mb *mailbox, email string) session {
	t.Helper()
	d := signIn(t, s, mb, email)
	return session{key: d["apiKey"].(string), refresh: d["refreshToken"].(string)}
}

// keyWorks reports whether key is accepted by s (GET /v1/auth/session), failing on anything but
// 200 and 401 API_KEY_INVALID.
func keyWorks(t *testing.T, s *testServer, key string) bool {
	t.Helper()
	r := s.do(http.MethodGet, "/v1/auth/session", nil, bearer(key))
	switch {
	case r.status == http.StatusOK:
		return true
	case r.status == http.StatusUnauthorized && r.code(t) == "API_KEY_INVALID":
		return false
	}
	t.Fatalf("GET /v1/auth/session = %d %s", r.status, r.body)
	return false
}

// stallAccounts holds the accounts projector's checkpoint row locked, as a stuck projector
// would: every instance's accounts projector waits on it until the test ends.
func stallAccounts(t *testing.T, s *testServer) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), s.app.cfg.DatabaseURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM projection_checkpoints WHERE name = 'accounts' FOR UPDATE`); err != nil {
		t.Fatalf("lock the accounts checkpoint: %v", err)
	}
	t.Cleanup(func() { // runs before the servers stop (cleanups run last-registered first)
		_ = tx.Rollback(context.Background())
		_ = conn.Close(context.Background())
	})
}

// failAccounts makes every change of api_keys fail, so the accounts projector stops in state
// failed at the next key rotation or revocation.
func failAccounts(t *testing.T, s *testServer) {
	t.Helper()
	mustExec(t, s, `CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`)
	mustExec(t, s, `CREATE TRIGGER test_refuse BEFORE INSERT OR UPDATE ON api_keys FOR EACH ROW EXECUTE FUNCTION test_refuse()`)
}

func mustExec(t *testing.T, s *testServer, sql string) {
	t.Helper()
	if _, err := s.app.pool.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestRevocationHoldsAcrossInstancesWithoutTheProjector: with the accounts projector stalled or
// failed, a key that an answer called revoked (revoke, rotation by refresh, reuse detection) is
// refused at once, also by a second instance over the same database.
func TestRevocationHoldsAcrossInstancesWithoutTheProjector(t *testing.T) {
	for name, stop := range map[string]func(*testing.T, *testServer){"stalled": stallAccounts, "failed": failAccounts} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"LITEHOST_CONSISTENCY_WAIT": "200ms"}
			s1, mb := startWithMail(t, "", env)
			s2 := startServer(t, s1.app.cfg.DatabaseURL, env)
			revoked := signInSession(t, s1, mb, "revoke@example.com")
			rotated := signInSession(t, s1, mb, "rotate@example.com")
			reused := signInSession(t, s1, mb, "reuse@example.com")
			// reused's first token is rotated while the projector runs: its current key works.
			r := s1.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": reused.refresh})
			if r.status != http.StatusOK {
				t.Fatalf("refresh = %d %s", r.status, r.body)
			}
			current := r.data(t)["apiKey"].(string)
			for _, k := range []string{revoked.key, rotated.key, current} {
				if !keyWorks(t, s2, k) {
					t.Fatalf("a live key is refused by the second instance")
				}
			}

			stop(t, s1)

			if r := s1.do(http.MethodPost, "/v1/auth/revoke", nil, bearer(revoked.key)); r.status != http.StatusOK {
				t.Fatalf("revoke = %d %s", r.status, r.body)
			}
			if keyWorks(t, s2, revoked.key) || keyWorks(t, s1, revoked.key) {
				t.Error("a revoked key still works")
			}
			if r := s1.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": rotated.refresh}); r.status != http.StatusOK {
				t.Fatalf("refresh = %d %s", r.status, r.body)
			}
			if keyWorks(t, s2, rotated.key) {
				t.Error("the key a refresh rotated away still works")
			}
			r = s1.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": reused.refresh})
			if r.status != http.StatusUnauthorized || r.code(t) != "REFRESH_TOKEN_REUSED" {
				t.Fatalf("reused refresh token = %d %s", r.status, r.body)
			}
			if keyWorks(t, s2, current) {
				t.Error("the current key of a session revoked for reuse still works")
			}
		})
	}
}

// TestRevocationThatCannotBeRecordedIsNotASuccess: when the revocation cannot be recorded for
// every instance, revoke and refresh answer 503 (not a success, no new credentials), and a retry
// with the same Idempotency-Key completes them.
func TestRevocationThatCannotBeRecordedIsNotASuccess(t *testing.T) {
	s, mb := startWithMail(t, "", map[string]string{"LITEHOST_CONSISTENCY_WAIT": "200ms"})
	a := signInSession(t, s, mb, "a@example.com")
	b := signInSession(t, s, mb, "b@example.com")
	// With the projector stalled only the revocation record can stop a key: the 503 is honest.
	stallAccounts(t, s)
	mustExec(t, s, `CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`)
	mustExec(t, s, `CREATE TRIGGER test_refuse BEFORE INSERT ON revoked_credentials FOR EACH ROW EXECUTE FUNCTION test_refuse()`)

	unconfirmed := func(what string, r response) {
		t.Helper()
		if r.status != http.StatusServiceUnavailable || r.code(t) != "REVOCATION_UNCONFIRMED" || r.header.Get("Retry-After") == "" {
			t.Errorf("%s while revocations cannot be written = %d %v %s", what, r.status, r.header, r.body)
		}
	}
	unconfirmed("revoke", s.do(http.MethodPost, "/v1/auth/revoke", nil, bearer(a.key), header("Idempotency-Key", "rv-1")))
	unconfirmed("refresh", s.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": b.refresh}, header("Idempotency-Key", "rf-1")))

	if !keyWorks(t, s, a.key) || !keyWorks(t, s, b.key) {
		t.Fatal("a key stopped working although its revocation was not recorded: the test shows nothing")
	}

	mustExec(t, s, `DROP TRIGGER test_refuse ON revoked_credentials`)
	if r := s.do(http.MethodPost, "/v1/auth/revoke", nil, bearer(a.key), header("Idempotency-Key", "rv-1")); r.status != http.StatusOK {
		t.Errorf("revoke retried = %d %s", r.status, r.body)
	}
	if keyWorks(t, s, a.key) {
		t.Error("the revoked key still works after the retry")
	}
	r := s.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": b.refresh}, header("Idempotency-Key", "rf-1"))
	if r.status != http.StatusOK {
		t.Fatalf("refresh retried = %d %s", r.status, r.body)
	}
	if keyWorks(t, s, b.key) {
		t.Error("after the completed refresh the old key still works")
	}
}

// TestRefreshReplayAfterTheIdempotencyWindowIsReuse: a refresh answered before, sent again
// under its Idempotency-Key once the stored answer is gone (as after 24 h), presents a token
// that was rotated away: the session is revoked, nothing is shown. Within the window the same
// retry gets the same credentials.
func TestRefreshReplayAfterTheIdempotencyWindowIsReuse(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	in := signInSession(t, s, mb, "replay@example.com")
	body := map[string]any{"refreshToken": in.refresh}
	first := s.do(http.MethodPost, "/v1/auth/refresh", body, header("Idempotency-Key", "r-1"))
	retry := s.do(http.MethodPost, "/v1/auth/refresh", body, header("Idempotency-Key", "r-1"))
	if first.status != http.StatusOK || retry.status != http.StatusOK {
		t.Fatalf("refresh %d, retry %d: %s %s", first.status, retry.status, first.body, retry.body)
	}
	got := first.data(t)
	if again := retry.data(t); again["apiKey"] != got["apiKey"] || again["refreshToken"] != got["refreshToken"] {
		t.Errorf("a retry within the window got other credentials: %v vs %v", again, got)
	}

	mustExec(t, s, `DELETE FROM idempotency_keys`)
	r := s.do(http.MethodPost, "/v1/auth/refresh", body, header("Idempotency-Key", "r-1"))
	if r.status != http.StatusUnauthorized || r.code(t) != "REFRESH_TOKEN_REUSED" {
		t.Fatalf("replay after the window = %d %s", r.status, r.body)
	}
	if keyWorks(t, s, got["apiKey"].(string)) {
		t.Error("the session's current key works after the replay was taken as reuse")
	}
	if r := s.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": got["refreshToken"]}); r.status != http.StatusUnauthorized {
		t.Errorf("the session's current refresh token after reuse = %d %s", r.status, r.body)
	}
}

// TestNoCredentialRestsInTheDatabase: after sign-in, two refreshes and a revoke, no table of the
// database (event log and read models included) holds an issued API key or refresh token, their
// secret parts, or a hash of them: the keyring HMACs the first release stored
// (secret.PurposeAPIKey / secret.PurposeRefresh) or a plain SHA-256.
func TestNoCredentialRestsInTheDatabase(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	in := signInSession(t, s, mb, "leak@example.com")
	issued := []session{in}
	for range 2 {
		r := s.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": issued[len(issued)-1].refresh},
			header("Idempotency-Key", "refresh-"+strconv.Itoa(len(issued))))
		if r.status != http.StatusOK {
			t.Fatalf("refresh = %d %s", r.status, r.body)
		}
		issued = append(issued, session{key: r.data(t)["apiKey"].(string), refresh: r.data(t)["refreshToken"].(string)})
	}
	last := issued[len(issued)-1]
	if r := s.do(http.MethodPost, "/v1/auth/revoke", map[string]any{"refreshToken": last.refresh}, bearer(last.key)); r.status != http.StatusOK {
		t.Fatalf("revoke = %d %s", r.status, r.body)
	}

	needles := map[string]string{} // needle → what it is
	add := func(what, v string) {
		needles[strings.ToLower(v)] = what
		needles[hex.EncodeToString([]byte(v))] = what + " (as bytes)"
	}
	kr := s.app.keyring
	for i, c := range issued {
		keyBody := strings.TrimPrefix(c.key, "lh_live_")
		refreshTail := c.refresh[len(c.refresh)-64:]
		add(fmt.Sprintf("API key %d", i), c.key)
		add(fmt.Sprintf("API key %d without its prefix", i), keyBody)
		add(fmt.Sprintf("MAC of API key %d", i), keyBody[32:56])
		add(fmt.Sprintf("refresh token %d", i), c.refresh)
		add(fmt.Sprintf("secret part of refresh token %d", i), refreshTail)
		add(fmt.Sprintf("MAC of refresh token %d", i), refreshTail[32:])
		add(fmt.Sprintf("keyring hash of API key %d", i), kr.Hash(secret.PurposeAPIKey, c.key))
		add(fmt.Sprintf("keyring hash of refresh token %d", i), kr.Hash(secret.PurposeRefresh, c.refresh))
		k, r := sha256.Sum256([]byte(c.key)), sha256.Sum256([]byte(c.refresh))
		add(fmt.Sprintf("SHA-256 of API key %d", i), hex.EncodeToString(k[:]))
		add(fmt.Sprintf("SHA-256 of refresh token %d", i), hex.EncodeToString(r[:]))
	}

	rows, err := s.app.pool.Query(t.Context(), `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
		FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	scanned := 0
	for _, table := range tables {
		rows, err := s.app.pool.Query(t.Context(), `SELECT lower(t::text) FROM `+table+` t`)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, row := range texts {
			scanned++
			for needle, what := range needles {
				if strings.Contains(row, needle) {
					t.Errorf("%s holds the %s: %.200s", table, what, row)
				}
			}
		}
	}
	t.Logf("scanned %d rows of %v", scanned, tables)
	if scanned < 10 || !slices.Contains(tables, "public.api_keys") {
		t.Fatalf("scanned %d rows of %v: the scan saw too little to mean anything", scanned, tables)
	}
}
