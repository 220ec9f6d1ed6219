package webpage

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newPages(t *testing.T, c *clock, secure bool) *Pages {
	t.Helper()
	p, err := New(Config{Key: []byte(strings.Repeat("k", 32)), Secure: secure, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cookiesOf returns the cookies a response set, as a browser would send them back.
func cookiesOf(w *httptest.ResponseRecorder) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range w.Result().Cookies() {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func TestKeyTooShort(t *testing.T) {
	if _, err := New(Config{Key: []byte("short")}); err == nil {
		t.Error("a short key was accepted")
	}
}

func TestStateCookie(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	p := newPages(t, c, false)
	w := httptest.NewRecorder()
	p.SetState(w, "flow", "email=a%40example.com", time.Minute)
	set := cookiesOf(w)
	if len(set) != 1 || set[0].Name != "lh-state-flow" {
		t.Fatalf("cookies = %v", set)
	}
	read := func(v string) (string, bool) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: "lh-state-flow", Value: v})
		return p.State(r, "flow")
	}
	if got, ok := read(set[0].Value); !ok || got != "email=a%40example.com" {
		t.Errorf("State = %q, %v", got, ok)
	}
	// Another value under the same signature, or another signature, is no state.
	payload, _, _ := strings.Cut(set[0].Value, ".")
	for name, v := range map[string]string{
		"tampered value": strings.Replace(set[0].Value, payload, payload+"x", 1),
		"tampered sig":   set[0].Value + "x",
		"no sig":         payload,
		"empty":          "",
	} {
		if _, ok := read(v); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	// Another purpose's cookie (the name is signed in) is no state either.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "lh-state-other", Value: set[0].Value})
	if _, ok := p.State(r, "other"); ok {
		t.Error("a state cookie of another name was accepted")
	}
	c.t = c.t.Add(time.Minute)
	if _, ok := read(set[0].Value); ok {
		t.Error("an expired state was accepted")
	}
}

func TestCheck(t *testing.T) {
	c := &clock{t: time.Now()}
	p := newPages(t, c, false)
	// A page with a form issues the cookie and its token.
	w := httptest.NewRecorder()
	if err := p.Render(w, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusOK, PageEmail, View{Title: "T", Action: "/x", Submit: "Go"}); err != nil {
		t.Fatal(err)
	}
	cookies := cookiesOf(w)
	token := ""
	if i := strings.Index(w.Body.String(), `name="csrf_token" value="`); i >= 0 {
		rest := w.Body.String()[i+len(`name="csrf_token" value="`):]
		token = rest[:strings.IndexByte(rest, '"')]
	}
	if len(cookies) != 1 || token == "" {
		t.Fatalf("cookies %v, token %q", cookies, token)
	}
	w2 := httptest.NewRecorder()
	_ = p.Render(w2, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusOK, PageEmail, View{Title: "T", Action: "/x"})
	otherCookie := cookiesOf(w2)[0]

	post := func(form url.Values, cookie *http.Cookie, hdr map[string]string) error {
		r := httptest.NewRequest(http.MethodPost, "http://example.test/x", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		if cookie != nil {
			r.AddCookie(cookie)
		}
		if err := ParseForm(httptest.NewRecorder(), r); err != nil {
			t.Fatal(err)
		}
		return p.Check(r)
	}
	ok := url.Values{CSRFField: {token}}
	same := map[string]string{"Sec-Fetch-Site": "same-origin"}
	if err := post(ok, cookies[0], same); err != nil {
		t.Errorf("own form refused: %v", err)
	}
	for name, err := range map[string]error{
		"no token":            post(url.Values{}, cookies[0], same),
		"wrong token":         post(url.Values{CSRFField: {token + "x"}}, cookies[0], same),
		"no cookie":           post(ok, nil, same),
		"another cookie":      post(ok, otherCookie, same),
		"forged cookie":       post(ok, &http.Cookie{Name: cookies[0].Name, Value: "abc.def"}, same),
		"cross-site":          post(ok, cookies[0], map[string]string{"Sec-Fetch-Site": "cross-site"}),
		"same-site (sibling)": post(ok, cookies[0], map[string]string{"Sec-Fetch-Site": "same-site"}),
		"foreign origin":      post(ok, cookies[0], map[string]string{"Origin": "http://evil.test"}),
	} {
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("%s: err = %v, want ErrForbidden", name, err)
		}
	}
}

func TestRenderHeadersAndEscaping(t *testing.T) {
	p := newPages(t, &clock{t: time.Now()}, true)
	w := httptest.NewRecorder()
	err := p.Render(w, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusTooManyRequests, PageRetry,
		View{Title: "<b>x</b>", Lead: []string{`"><script>alert(1)</script>`}, RetryAfter: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	body := w.Body.String()
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>x</b>") {
		t.Errorf("text not escaped:\n%s", body)
	}
	if !strings.Contains(body, "try again in 2 minutes") {
		t.Errorf("retry page:\n%s", body)
	}
	h := w.Header()
	nonce := h.Get("Content-Security-Policy")
	if !strings.Contains(nonce, "default-src 'none'") || h.Get("Retry-After") != "90" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers = %v", h)
	}
	if !strings.Contains(body, `<style nonce="`) {
		t.Error("the style sheet has no nonce")
	}
	// HTTPS: the cookie is __Host-, Secure.
	w = httptest.NewRecorder()
	_ = p.Render(w, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusOK, PageCode, View{Title: "T", Action: "/x"})
	set := w.Header().Get("Set-Cookie")
	if !strings.HasPrefix(set, "__Host-lh-csrf=") || !strings.Contains(set, "Secure") || !strings.Contains(set, "Path=/") {
		t.Errorf("Set-Cookie = %q", set)
	}
}

func TestHumanWait(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second: "1 second", 30 * time.Second: "30 seconds", time.Minute: "1 minute",
		59*time.Minute + time.Second: "60 minutes", 3 * time.Hour: "3 hours",
	} {
		if got := humanWait(d); got != want {
			t.Errorf("humanWait(%v) = %q, want %q", d, got, want)
		}
	}
}
