package analytics

import (
	"crypto/hmac"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// OwnerPath is the site path that turns an owner link into the owner cookie. It sits under
// /.well-known/ (RFC 8615), where no site keeps pages of its own.
const OwnerPath = "/.well-known/litehost-owner"

// OwnerCookie is the name of the cookie that marks the owner's own browser on a site's host.
const OwnerCookie = "litehost_owner"

// Lifetimes of the owner link (a URL the API hands out) and of the cookie it sets.
const (
	OwnerLinkTTL   = 10 * time.Minute
	OwnerCookieTTL = 365 * 24 * time.Hour
)

// Purposes of the owner MACs: a link token can never be used as a cookie or the reverse.
const (
	purposeOwnerLink   = "analytics-owner-link"
	purposeOwnerCookie = "analytics-owner-cookie"
)

// Keyring is the part of the secret keyring the owner tokens need.
type Keyring interface {
	Sum(purpose, value string) []byte
}

// OwnerTokens signs and checks owner links and cookies: "<projectId>.<accountId>.<unix>.<mac>",
// where unix is the link's expiry or the cookie's issue time and mac is HMAC-SHA256 of the rest
// under the server secret. Neither carries an API key; both name one project and one account,
// and a cookie counts only while that account still owns that project.
type OwnerTokens struct {
	keys Keyring
}

// NewOwnerTokens returns the signer over keys.
func NewOwnerTokens(keys Keyring) *OwnerTokens { return &OwnerTokens{keys: keys} }

func (o *OwnerTokens) sign(purpose, projectID, accountID string, at time.Time) string {
	payload := projectID + "." + accountID + "." + strconv.FormatInt(at.Unix(), 10)
	mac := o.keys.Sum(purpose, payload)[:16]
	return payload + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// parse checks the MAC of a token and returns its parts.
func (o *OwnerTokens) parse(purpose, tok string) (projectID, accountID string, at time.Time, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || uuid.Validate(parts[0]) != nil || uuid.Validate(parts[1]) != nil {
		return "", "", time.Time{}, false
	}
	sec, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", "", time.Time{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return "", "", time.Time{}, false
	}
	want := o.keys.Sum(purpose, parts[0]+"."+parts[1]+"."+parts[2])[:16]
	if !hmac.Equal(got, want) {
		return "", "", time.Time{}, false
	}
	return parts[0], parts[1], time.Unix(sec, 0), true
}

// Link returns the token of an owner link that expires at exp.
func (o *OwnerTokens) Link(projectID, accountID string, exp time.Time) string {
	return o.sign(purposeOwnerLink, projectID, accountID, exp)
}

// Cookie returns the owner cookie value issued at now.
func (o *OwnerTokens) Cookie(projectID, accountID string, now time.Time) string {
	return o.sign(purposeOwnerCookie, projectID, accountID, now)
}

// IsOwner reports whether one of the cookie values is a valid, unexpired owner cookie of
// projectID issued to ownerID.
func (o *OwnerTokens) IsOwner(values []string, projectID, ownerID string, now time.Time) bool {
	for _, v := range values {
		p, a, iat, ok := o.parse(purposeOwnerCookie, v)
		if ok && p == projectID && a == ownerID && now.Before(iat.Add(OwnerCookieTTL)) {
			return true
		}
	}
	return false
}

// ServeLink answers OwnerPath: a valid, unexpired token sets the owner cookie on this host only
// (no Domain attribute, HttpOnly so the site's scripts never see it) and redirects to the path in
// "to" (default "/"), dropping the token from the address bar; anything else is 403 and sets
// nothing.
func (o *OwnerTokens) ServeLink(w http.ResponseWriter, r *http.Request, now time.Time, secure bool) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	q := r.URL.Query()
	p, a, exp, ok := o.parse(purposeOwnerLink, q.Get("token"))
	if !ok || !now.Before(exp) {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("This owner link is invalid or has expired. Get a new one with GET /v1/projects/{id}/analytics/owner-link.\n"))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: OwnerCookie, Value: o.Cookie(p, a, now), Path: "/", MaxAge: int(OwnerCookieTTL / time.Second),
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, localPath(q.Get("to")), http.StatusSeeOther)
}

// localPath keeps a redirect on the site: only an absolute path of this host ("/x", never
// "//evil" or "/\evil", which browsers read as another host).
func localPath(to string) string {
	if to == "" || to[0] != '/' || strings.HasPrefix(to, "//") || strings.HasPrefix(to, "/\\") {
		return "/"
	}
	u, err := url.Parse(to)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return to
}
