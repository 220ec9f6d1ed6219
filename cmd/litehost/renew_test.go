package main

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/events"
)

const day = 24 * time.Hour

// advanceAll moves the clocks of every instance forward by d together.
func advanceAll(d time.Duration, ss ...*testServer) {
	for _, s := range ss {
		s.advance(d)
	}
}

// accountEvents loads the account's stream from the event store.
func accountEvents(t *testing.T, s *testServer, accountID string) []events.Event {
	t.Helper()
	st, err := commands.Load(context.Background(), s.app.store, "account-"+accountID)
	if err != nil {
		t.Fatalf("load account stream: %v", err)
	}
	return st.Events
}

// extensions counts the session_extended events of one session.
func extensions(t *testing.T, s *testServer, accountID, sessionID string) int {
	t.Helper()
	n := 0
	for _, e := range accountEvents(t, s, accountID) {
		if e, ok := e.(events.SessionExtended); ok && e.SessionID == sessionID {
			n++
		}
	}
	return n
}

// storedExpiry is the key's expiry in the api_keys read model.
func storedExpiry(t *testing.T, s *testServer, sessionID string) time.Time {
	t.Helper()
	var at time.Time
	if err := s.app.pool.QueryRow(context.Background(),
		`SELECT max(expires_at) FROM api_keys WHERE session_id = $1 AND revoked_at IS NULL`, sessionID).Scan(&at); err != nil {
		t.Fatalf("read api_keys: %v", err)
	}
	return at
}

// TestKeyRenewsInUse: an OTP key used on days 1, 30, 60, 89 and 119 keeps working, across two
// instances on one database, each renewal one event however many requests a day brings; a key
// unused for 91 days is expired; a revoked key is not renewed; the refresh token follows.
func TestKeyRenewsInUse(t *testing.T) {
	s1, mb := startWithMail(t, "", nil)
	s2 := startServer(t, s1.app.cfg.DatabaseURL, nil)
	both := []*testServer{s1, s2}

	d := signIn(t, s1, mb, "renew@example.com")
	key, refresh := d["apiKey"].(string), d["refreshToken"].(string)
	if d["message"] != "Account ready. This API key renews each time it is used and expires after 90 days without use. Use it as your Bearer token — it is shown only once." {
		t.Errorf("verify message = %v", d["message"])
	}
	expires, _ := time.Parse(time.RFC3339, d["expiresAt"].(string))
	if got := expires.Sub(s1.clock.now()); got < 90*day-time.Minute || got > 90*day {
		t.Errorf("verify expiresAt = %s, want in 90 days", expires)
	}
	r := s1.do(http.MethodGet, "/v1/auth/session", nil, bearer(key))
	if r.status != http.StatusOK {
		t.Fatalf("session = %d %s", r.status, r.body)
	}
	accountID, sessionID := r.data(t)["accountId"].(string), r.data(t)["sessionId"].(string)

	advanceAll(61*time.Second, both...)
	unused := signInSession(t, s1, mb, "renew@example.com")
	advanceAll(61*time.Second, both...)
	revoked := signInSession(t, s1, mb, "renew@example.com")
	if r := s1.do(http.MethodPost, "/v1/auth/revoke", nil, bearer(revoked.key)); r.status != http.StatusOK {
		t.Fatalf("revoke = %d %s", r.status, r.body)
	}

	elapsed := time.Duration(0)
	want := 0
	for _, useDay := range []int{1, 30, 60, 89, 119} {
		advanceAll(time.Duration(useDay)*day-elapsed, both...)
		elapsed = time.Duration(useDay) * day
		// Many requests on the day, on both instances at once: one renewal.
		var wg sync.WaitGroup
		codes := make([]int, 20)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i] = both[i%2].do(http.MethodGet, "/v1/user", nil, bearer(key)).status
			}()
		}
		wg.Wait()
		for i, c := range codes {
			if c != http.StatusOK {
				t.Fatalf("day %d, request %d: key refused with %d", useDay, i, c)
			}
		}
		want++
		waitFor(t, func() bool { return extensions(t, s1, accountID, sessionID) >= want })
		waitFor(t, func() bool { return s1.clock.now().Add(90*day).Sub(storedExpiry(t, s1, sessionID)) < day })
		// More uses later that day append nothing.
		advanceAll(time.Hour, both...)
		elapsed += time.Hour
		for _, s := range both {
			if r := s.do(http.MethodGet, "/v1/user", nil, bearer(key)); r.status != http.StatusOK {
				t.Fatalf("day %d: %d %s", useDay, r.status, r.body)
			}
		}
		time.Sleep(100 * time.Millisecond) // a background renewal would be done by now
		if n := extensions(t, s1, accountID, sessionID); n != want {
			t.Fatalf("day %d: %d renewals, want %d", useDay, n, want)
		}
		if useDay == 119 { // meanwhile the key signed in on day 0 and never used has expired
			r := s2.do(http.MethodGet, "/v1/auth/session", nil, bearer(unused.key))
			if r.status != http.StatusUnauthorized || r.code(t) != "API_KEY_EXPIRED" {
				t.Errorf("key unused for 119 days = %d %s", r.status, r.body)
			}
		}
	}
	// GET /v1/auth/session shows the effective expiry: 90 days after the last renewal.
	r = s2.do(http.MethodGet, "/v1/auth/session", nil, bearer(key))
	got, _ := time.Parse(time.RFC3339, r.data(t)["expiresAt"].(string))
	if wantAt := s2.clock.now().Add(90 * day); got.Before(wantAt.Add(-2*time.Hour)) || got.After(wantAt) {
		t.Errorf("session expiresAt = %s, want about %s", got, wantAt)
	}
	// The revoked key was never renewed.
	revokedSession := ""
	for _, e := range accountEvents(t, s1, accountID) {
		if e, ok := e.(events.SessionRevoked); ok {
			revokedSession = e.SessionID
		}
	}
	if revokedSession == "" || extensions(t, s1, accountID, revokedSession) != 0 {
		t.Errorf("revoked session %q was renewed", revokedSession)
	}

	// The refresh token follows the renewals: on day 200 (110 days after issue) it still works.
	advanceAll(200*day-elapsed, both...)
	elapsed = 200 * day
	r = s1.do(http.MethodPost, "/v1/auth/refresh", map[string]any{"refreshToken": refresh})
	if r.status != http.StatusOK {
		t.Fatalf("refresh on day 200 = %d %s", r.status, r.body)
	}
	newKey := r.data(t)["apiKey"].(string)
	if !keyWorks(t, s2, newKey) {
		t.Error("the refreshed key is refused")
	}

	// 91 days without use: expired, on every instance, and never renewed again.
	advanceAll(91*day, both...)
	for _, s := range both {
		r := s.do(http.MethodGet, "/v1/user", nil, bearer(newKey))
		if r.status != http.StatusUnauthorized || r.code(t) != "API_KEY_EXPIRED" {
			t.Errorf("key unused for 91 days = %d %s", r.status, r.body)
		}
	}
}

// TestRenewalIsOneEventAcrossInstances: two instances renewing the same key on the same day at
// the same moment append one event.
func TestRenewalIsOneEventAcrossInstances(t *testing.T) {
	s1, mb := startWithMail(t, "", nil)
	s2 := startServer(t, s1.app.cfg.DatabaseURL, nil)
	d := signIn(t, s1, mb, "twice@example.com")
	r := s1.do(http.MethodGet, "/v1/auth/session", nil, bearer(d["apiKey"].(string)))
	p := r.data(t)
	accountID, sessionID := p["accountId"].(string), p["sessionId"].(string)
	advanceAll(10*day, s1, s2)

	var keyID string
	if err := s1.app.pool.QueryRow(context.Background(), `SELECT key_id::text FROM api_keys WHERE session_id = $1`, sessionID).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		s := []*testServer{s1, s2}[i%2]
		acc := commands.NewAccounts(s.app.store, s.app.keyring, commands.NewPGRevocations(s.app.pool), s.clock.now)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = acc.RenewKey(context.Background(), accountID, sessionID, keyID)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("renewal %d: %v", i, err)
		}
	}
	if n := extensions(t, s1, accountID, sessionID); n != 1 {
		t.Errorf("%d renewal events, want 1", n)
	}
}
