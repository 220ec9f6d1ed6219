package analytics

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events/secret"
)

func testTokens(t *testing.T, key string) *OwnerTokens {
	t.Helper()
	kr, err := secret.New([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return NewOwnerTokens(kr)
}

func TestOwnerCookie(t *testing.T) {
	o := testTokens(t, "owner-test-secret-owner-test-secret-0123")
	project, owner, other := uuid.NewString(), uuid.NewString(), uuid.NewString()
	now := time.Now()
	c := o.Cookie(project, owner, now)
	if strings.Contains(c, "lh_live_") {
		t.Fatalf("cookie %q carries a key", c)
	}
	for _, tc := range []struct {
		name          string
		values        []string
		project, user string
		at            time.Time
		want          bool
	}{
		{"valid", []string{c}, project, owner, now, true},
		{"among others", []string{"junk", c}, project, owner, now, true},
		{"another project", []string{c}, uuid.NewString(), owner, now, false},
		{"project changed owner", []string{c}, project, other, now, false},
		{"expired", []string{c}, project, owner, now.Add(OwnerCookieTTL + time.Minute), false},
		{"tampered", []string{c[:len(c)-2] + "AA"}, project, owner, now, false},
		{"a link token is not a cookie", []string{o.Link(project, owner, now.Add(time.Hour))}, project, owner, now, false},
		{"another server's cookie", []string{testTokens(t, "another-secret-another-secret-another-0").Cookie(project, owner, now)}, project, owner, now, false},
		{"empty", nil, project, owner, now, false},
	} {
		if got := o.IsOwner(tc.values, tc.project, tc.user, tc.at); got != tc.want {
			t.Errorf("%s: IsOwner = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOwnerLinkRedirectStaysOnTheSite(t *testing.T) {
	o := testTokens(t, "owner-test-secret-owner-test-secret-0123")
	now := time.Now()
	tok := o.Link(uuid.NewString(), uuid.NewString(), now.Add(time.Minute))
	for to, want := range map[string]string{
		"":                     "/",
		"/about":               "/about",
		"/a?b=c":               "/a?b=c",
		"//evil.example":       "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"about":                "/",
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, OwnerPath+"?"+url.Values{"token": {tok}, "to": {to}}.Encode(), nil)
		o.ServeLink(w, r, now, true)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
			t.Errorf("to=%q: %d Location %q, want %q", to, w.Code, w.Header().Get("Location"), want)
		}
		c := w.Header().Get("Set-Cookie")
		if !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "Secure") || !strings.Contains(c, "SameSite=Lax") ||
			strings.Contains(strings.ToLower(c), "domain=") {
			t.Errorf("to=%q: cookie %q", to, c)
		}
	}
	for name, q := range map[string]string{
		"expired": url.Values{"token": {o.Link(uuid.NewString(), uuid.NewString(), now.Add(-time.Second))}}.Encode(),
		"forged":  url.Values{"token": {tok + "x"}}.Encode(),
		"none":    "",
	} {
		w := httptest.NewRecorder()
		o.ServeLink(w, httptest.NewRequest(http.MethodGet, OwnerPath+"?"+q, nil), now, true)
		if w.Code != http.StatusForbidden || w.Header().Get("Set-Cookie") != "" {
			t.Errorf("%s token: %d %v", name, w.Code, w.Header())
		}
	}
}
