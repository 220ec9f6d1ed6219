// Package webpage renders the few server-side HTML pages of Litehost (the claim page, later the
// OAuth sign-in page) and holds their browser protections in one place:
//
//   - every page is one of a small set of embedded html/template pages (an e-mail step, a code
//     step, a message, a retry-later page), filled from a View; no script, no third-party
//     resource, one inline style sheet allowed by a per-response CSP nonce;
//   - every answer carries a strict Content-Security-Policy, Referrer-Policy: no-referrer (page
//     URLs may hold tokens), nosniff, no-store and noindex;
//   - forms are protected against cross-site request forgery twice: net/http's
//     CrossOriginProtection (Sec-Fetch-Site / Origin) and a form token bound to a signed,
//     HttpOnly, SameSite=Strict cookie;
//   - short-lived state between two steps of a form lives in a signed, HttpOnly, SameSite=Strict
//     cookie with its own expiry.
package webpage

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

// Page names: the templates a View can be rendered with.
const (
	PageEmail   = "email"   // facts and an e-mail field
	PageCode    = "code"    // a 6-digit code field
	PageMessage = "message" // a result or an error, with optional links
	PageRetry   = "retry"   // 429: when to try again
)

// CSRFField is the name of the hidden form field that carries the CSRF token.
const CSRFField = "csrf_token"

// MaxFormBytes bounds a form body: the pages' forms hold an address, a code and a token.
const MaxFormBytes = 8 << 10

// ErrForbidden is returned by Pages.Check for a request that fails the CSRF protections.
var ErrForbidden = errors.New("cross-site request refused")

// Fact is one line of a page's definition list; Href makes its value a link.
type Fact struct {
	Term, Value, Href string
}

// Link is a secondary navigation link of a page.
type Link struct {
	Text, Href string
}

// View is what a page shows. Render fills Nonce and CSRF.
type View struct {
	Title string
	// Lead are the paragraphs under the heading.
	Lead  []string
	Facts []Fact
	// Action is the URL the page's form posts to; Submit its button label.
	Action, Submit string
	// Alert is a page-level error, announced to screen readers (role="alert").
	Alert string
	// Errors are per-field errors, keyed by field name ("email", "code"); Values refill fields.
	Errors map[string]string
	Values map[string]string
	Links  []Link
	// RetryAfter is the wait of a PageRetry page.
	RetryAfter time.Duration

	Nonce, CSRF string
}

// Config configures Pages.
type Config struct {
	// Key signs the cookies and derives the CSRF tokens; at least 32 bytes.
	Key []byte
	// Secure marks the cookies Secure and gives them the __Host- prefix (HTTPS deployments).
	Secure bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Pages renders the pages and checks their forms.
type Pages struct {
	pages  map[string]*template.Template
	key    []byte
	secure bool
	now    func() time.Time
	cop    *http.CrossOriginProtection
}

// New parses the embedded templates.
func New(cfg Config) (*Pages, error) {
	if len(cfg.Key) < 32 {
		return nil, errors.New("webpage: key must be at least 32 bytes")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	funcs := template.FuncMap{"wait": humanWait}
	p := &Pages{pages: map[string]*template.Template{}, key: cfg.Key, secure: cfg.Secure, now: cfg.Now,
		cop: http.NewCrossOriginProtection()}
	for _, name := range []string{PageEmail, PageCode, PageMessage, PageRetry} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		p.pages[name] = t
	}
	return p, nil
}

// Render writes page with status. Pages with a form get a CSRF token (and its cookie, when the
// request has none that is valid).
func (p *Pages) Render(w http.ResponseWriter, r *http.Request, status int, page string, v View) error {
	t, ok := p.pages[page]
	if !ok {
		return fmt.Errorf("webpage: no page %q", page)
	}
	v.Nonce = randomToken(18)
	if v.Action != "" {
		v.CSRF = p.csrfToken(w, r)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// No script may run and nothing is loaded from anywhere: the one style sheet is inline, under
	// this response's nonce. Forms may only post back to us; no site may frame the page.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+v.Nonce+"'; form-action 'self'; "+
		"frame-ancestors 'none'; base-uri 'none'")
	// Page URLs carry tokens (the claim link): no Referer may ever leak them to another site.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	if page == PageRetry && v.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((v.RetryAfter+time.Second-1)/time.Second)))
	}
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return fmt.Errorf("render page %s: %w", page, err)
	}
	w.WriteHeader(status)
	_, err := w.Write([]byte(b.String()))
	return err
}

// ParseForm reads a bounded url-encoded form body.
func ParseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		return fmt.Errorf("parse form: %w", err)
	}
	return nil
}

// Check applies both CSRF protections to a form post (after ParseForm): the request must come
// from our own origin (or from no browser context at all), and carry the form token of the
// request's signed CSRF cookie. Any failure is ErrForbidden.
func (p *Pages) Check(r *http.Request) error {
	if err := p.cop.Check(r); err != nil {
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	id, ok := p.csrfCookie(r)
	if !ok {
		return fmt.Errorf("%w: no valid CSRF cookie", ErrForbidden)
	}
	want := p.mac("csrf-form", id)
	got := r.PostFormValue(CSRFField)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return fmt.Errorf("%w: wrong CSRF token", ErrForbidden)
	}
	return nil
}

// csrfToken returns the form token of the request's CSRF cookie, setting a new cookie when the
// request has no valid one.
func (p *Pages) csrfToken(w http.ResponseWriter, r *http.Request) string {
	id, ok := p.csrfCookie(r)
	if !ok {
		id = randomToken(32)
		p.setCookie(w, "csrf", id+"."+p.mac("csrf-cookie", id), 2*time.Hour)
	}
	return p.mac("csrf-form", id)
}

func (p *Pages) csrfCookie(r *http.Request) (string, bool) {
	c, err := r.Cookie(p.cookieName("csrf"))
	if err != nil {
		return "", false
	}
	id, sig, ok := strings.Cut(c.Value, ".")
	if !ok || id == "" || !hmac.Equal([]byte(sig), []byte(p.mac("csrf-cookie", id))) {
		return "", false
	}
	return id, true
}

// SetState stores value in the signed state cookie name for ttl. The value is readable by the
// client (only signed, not encrypted): keep secrets out of it.
func (p *Pages) SetState(w http.ResponseWriter, name, value string, ttl time.Duration) {
	exp := strconv.FormatInt(p.now().Add(ttl).Unix(), 10)
	payload := base64.RawURLEncoding.EncodeToString([]byte(value)) + "." + exp
	p.setCookie(w, "state-"+name, payload+"."+p.mac("state-"+name, payload), ttl)
}

// State returns the value of the state cookie name, if it is present, signed by us and not
// expired.
func (p *Pages) State(r *http.Request, name string) (string, bool) {
	c, err := r.Cookie(p.cookieName("state-" + name))
	if err != nil {
		return "", false
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := c.Value[:i], c.Value[i+1:]
	if !hmac.Equal([]byte(sig), []byte(p.mac("state-"+name, payload))) {
		return "", false
	}
	enc, expText, ok := strings.Cut(payload, ".")
	if !ok {
		return "", false
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || !p.now().Before(time.Unix(exp, 0)) {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	return string(raw), true
}

// ClearState removes the state cookie name.
func (p *Pages) ClearState(w http.ResponseWriter, name string) {
	p.setCookie(w, "state-"+name, "", -1)
}

func (p *Pages) cookieName(name string) string {
	if p.secure {
		// __Host-: only set over HTTPS, for this host and path /, so a sibling sub-domain (a
		// hosted site) cannot plant one.
		return "__Host-lh-" + name
	}
	return "lh-" + name
}

func (p *Pages) setCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	c := &http.Cookie{Name: p.cookieName(name), Value: value, Path: "/", HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteStrictMode}
	if ttl < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(ttl / time.Second)
	}
	http.SetCookie(w, c)
}

// mac is the keyed MAC of value for one purpose, base64url.
func (p *Pages) mac(purpose, value string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// humanWait renders a wait for people: "1 minute", "42 minutes", "2 hours".
func humanWait(d time.Duration) string {
	switch m := int((d + time.Minute - 1) / time.Minute); {
	case d < time.Minute:
		s := max(int((d+time.Second-1)/time.Second), 1)
		return plural(s, "second")
	case m < 120:
		return plural(m, "minute")
	default:
		return plural(int((d+time.Hour-1)/time.Hour), "hour")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
