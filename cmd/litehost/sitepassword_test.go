package main

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/litehost/litehost/domain/project"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/internal/sitepassword"
)

// starter signs email in on the starter plan (password access is a paid feature).
func starter(t *testing.T, s *testServer, mb *mailbox, email string) string {
	t.Helper()
	key := signIn(t, s, mb, email)["apiKey"].(string)
	if out, err := runCLI(t, s, "admin", "set-plan", email, "starter"); err != nil {
		t.Fatalf("set-plan: %v %s", err, out)
	}
	waitFor(t, func() bool {
		return s.do(http.MethodGet, "/v1/user", nil, bearer(key)).data(t)["plan"].(map[string]any)["tier"] == "starter"
	})
	return key
}

// protectedSite creates a project with password access and returns its ID and slug.
func protectedSite(t *testing.T, s *testServer, key, title, password string) (string, string) {
	t.Helper()
	r := s.doUpload(http.MethodPost, "/v1/projects", map[string]string{"title": title},
		[]upload{{"index.html", []byte("<p>secret</p>")}}, bearer(key))
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.status, r.body)
	}
	id, slug := r.data(t)["projectId"].(string), r.data(t)["slug"].(string)
	if r := s.do(http.MethodPatch, "/v1/projects/"+id, map[string]any{"access": "password", "password": password}, bearer(key)); r.status != http.StatusOK {
		t.Fatalf("patch = %d %s", r.status, r.body)
	}
	return id, slug
}

func withPassword(pw string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth("visitor", pw) }
}

// A guesser costs at most Slots argon2id checks at once and SitePasswordFailures checks per
// window: the rest get 429 with Retry-After before any hash, even with the right password.
func TestSitePasswordGuessesAreBounded(t *testing.T) {
	const slots, failures = 2, 10
	s, mb := startWithMail(t, "", map[string]string{
		"LITEHOST_SITE_PASSWORD_SLOTS":    strconv.Itoa(slots),
		"LITEHOST_SITE_PASSWORD_FAILURES": strconv.Itoa(failures),
	})
	key := starter(t, s, mb, "guard@example.com")
	_, slug := protectedSite(t, s, key, "Guarded", "right horse battery")

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
		retry  []string
	)
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, hdr := s.site(slug, "/", withPassword("wrong guess "+strconv.Itoa(i)))
			mu.Lock()
			counts[code]++
			if code == http.StatusTooManyRequests {
				retry = append(retry, hdr.Get("Retry-After"))
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if peak := s.app.siteHashes.max(); peak > slots || peak == 0 {
		t.Errorf("argon2id checks at once: peak %d, want 1..%d", peak, slots)
	}
	// Every guess within the limit is checked (401) or, when no slot frees up within the wait
	// (a loaded machine, -race), shed with 503; every guess past it is 429 unchecked.
	if counts[http.StatusUnauthorized] == 0 || counts[http.StatusUnauthorized]+counts[http.StatusServiceUnavailable] != failures ||
		counts[http.StatusTooManyRequests] != 24-failures {
		t.Errorf("answers to 24 wrong guesses = %v, want %d × 401 (or 503) and %d × 429", counts, failures, 24-failures)
	}
	for _, ra := range retry {
		if n, err := strconv.Atoi(ra); err != nil || n <= 0 {
			t.Errorf("429 with Retry-After %q, want positive seconds", ra)
			break
		}
	}
	// The limit comes before the work: past it even the right password is refused unchecked.
	before := s.app.siteHashes.max()
	if code, _, hdr := s.site(slug, "/", withPassword("right horse battery")); code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Errorf("right password past the limit = %d (Retry-After %q), want 429", code, hdr.Get("Retry-After"))
	}
	// After the window it is let through, and a right password does not count as a failure.
	s.advance(sitePasswordWindow + 1)
	for range failures + 2 {
		if code, body, _ := s.site(slug, "/", withPassword("right horse battery")); code != http.StatusOK || body != "<p>secret</p>" {
			t.Fatalf("right password after the window = %d %q", code, body)
		}
	}
	if peak := s.app.siteHashes.max(); peak > slots {
		t.Errorf("peak %d rose above the %d slots (was %d)", peak, slots, before)
	}
}

// A hash stored before sealing, with the old 64 MiB parameters, still opens the site; the login
// replaces it with a sealed current one (as the system), once.
func TestSitePasswordRehashedAfterLogin(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := starter(t, s, mb, "rehash@example.com")
	id, slug := protectedSite(t, s, key, "Old hash", "placeholder")

	// Stand in for a project saved by an older version: unsealed, m=64 MiB, t=1, p=2.
	old, err := sitepassword.HashWith("old secret", sitepassword.Params{Memory: 64 * 1024, Time: 1, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.app.store.ReadStream(t.Context(), project.Stream(id), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var st project.State
	for _, rec := range recs {
		ev, err := events.Decode(rec.Type, rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		st = project.Evolve(st, ev)
	}
	set := st.Settings
	set.PasswordHash = old
	ed, err := events.Encode(events.ProjectSettingsUpdated{ProjectID: id, Settings: set, Changed: []string{"password"}, At: s.app.now()},
		uuid.New(), events.Metadata{Actor: "system:test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.app.store.Append(t.Context(), project.Stream(id), events.Exact(uint64(len(recs)-1)), []events.EventData{ed}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		code, _, _ := s.site(slug, "/", withPassword("placeholder"))
		return code == http.StatusUnauthorized
	})

	for range 3 {
		if code, _, _ := s.site(slug, "/", withPassword("old secret")); code != http.StatusOK {
			t.Fatalf("old hash with the right password = %d", code)
		}
	}
	recs, err = s.app.store.ReadStream(t.Context(), project.Stream(id), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var rehashes int
	var last events.ProjectSettingsUpdated
	for _, rec := range recs {
		md, _ := events.ParseMetadata(rec.Metadata)
		if md.Actor != events.SystemActor("site-password-rehash") {
			continue
		}
		rehashes++
		ev, _ := events.Decode(rec.Type, rec.Data)
		last = ev.(events.ProjectSettingsUpdated)
	}
	if rehashes != 1 {
		t.Fatalf("rehash events = %d, want 1", rehashes)
	}
	for _, rec := range recs {
		if bytes.Contains(rec.Data, []byte("$argon2id$")) && rec.Version > uint64(len(recs)-2) {
			t.Errorf("the rehashed value is stored in clear: %s", rec.Data)
		}
	}
	phc, err := sitepassword.Open(s.app.keyring, last.Settings.PasswordHash)
	if err != nil || !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") || !sitepassword.Verify(phc, "old secret") {
		t.Errorf("rehashed value %q opens to %q (%v), want a current hash of the same password", last.Settings.PasswordHash, phc, err)
	}
	waitFor(t, func() bool { code, _, _ := s.site(slug, "/", withPassword("old secret")); return code == http.StatusOK })
	if code, _, _ := s.site(slug, "/", withPassword("not it")); code != http.StatusUnauthorized {
		t.Errorf("wrong password after the rehash = %d", code)
	}
}

// What a password PATCH stores is sealed: no event carries an argon2id string.
func TestSitePasswordStoredSealed(t *testing.T) {
	s, mb := startWithMail(t, "", nil)
	key := starter(t, s, mb, "sealed@example.com")
	id, slug := protectedSite(t, s, key, "Sealed", "pw pw pw")
	recs, err := s.app.store.ReadStream(t.Context(), project.Stream(id), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if bytes.Contains(rec.Data, []byte("$argon2id$")) {
			t.Errorf("event %s holds a clear argon2id hash: %s", rec.Type, rec.Data)
		}
	}
	var stored string
	if err := s.app.pool.QueryRow(t.Context(), `SELECT password_hash FROM projects WHERE id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, "$argon2id$") || !strings.HasPrefix(stored, "sealed:v1:") {
		t.Errorf("read model password_hash = %q, want a sealed value", stored)
	}
	if code, _, _ := s.site(slug, "/", withPassword("pw pw pw")); code != http.StatusOK {
		t.Errorf("sealed password does not open the site: %d", code)
	}
}
