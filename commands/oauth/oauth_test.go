package oauth

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events/secret"
)

func testCodec(t *testing.T, now *time.Time) *codec {
	t.Helper()
	kr, err := secret.New(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	return newCodec(kr, func() time.Time { return *now })
}

func TestCodeIsSealedAndExpires(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := testCodec(t, &now)
	g := grant{ID: uuid.New(), ClientID: "lhc_x", Redirect: "https://app.example/cb", Challenge: "abc", Method: "S256",
		AccountID: uuid.NewString(), Scopes: []string{Scope}, Expires: now.Add(CodeTTL).Unix()}
	code := c.seal(g)
	if strings.Contains(code, g.AccountID) || strings.Contains(code, "app.example") {
		t.Fatalf("code %q shows its grant in clear", code)
	}
	got, ok := c.open(code)
	if !ok || got.ID != g.ID || got.AccountID != g.AccountID || got.Redirect != g.Redirect {
		t.Fatalf("open = %+v %v", got, ok)
	}
	// One changed character anywhere breaks the seal.
	b := []byte(code)
	b[len(b)/2] ^= 1
	if _, ok := c.open(string(b)); ok {
		t.Error("a tampered code opened")
	}
	other := testCodec(t, &now)
	other.aead = newCodec(mustKeyring(t, "z"), other.now).aead
	if _, ok := other.open(code); ok {
		t.Error("a code opened under another server secret")
	}
	now = now.Add(CodeTTL)
	if _, ok := c.open(code); ok {
		t.Error("an expired code opened")
	}
}

func mustKeyring(t *testing.T, b string) *secret.Keyring {
	t.Helper()
	kr, err := secret.New(bytes.Repeat([]byte(b), 32))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestClientIDIsSigned(t *testing.T) {
	now := time.Now()
	c := testCodec(t, &now)
	id := c.clientID(registration{Name: "App", RedirectURIs: []string{"https://app.example/cb"}, IssuedAt: 1})
	if r, ok := c.registration(id); !ok || r.Name != "App" || r.RedirectURIs[0] != "https://app.example/cb" {
		t.Fatalf("registration = %+v %v", r, ok)
	}
	b := []byte(id)
	if b[6] == 'A' { // a character of the payload, changed to another base64url one
		b[6] = 'B'
	} else {
		b[6] = 'A'
	}
	if _, ok := c.registration(string(b)); ok {
		t.Error("a changed client ID is accepted")
	}
	if _, ok := newCodec(mustKeyring(t, "z"), c.now).registration(id); ok {
		t.Error("a client ID of another server secret is accepted")
	}
}

func TestSecureRedirect(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://app.example/cb": true, "http://127.0.0.1:8080/cb": true, "http://[::1]/cb": true,
		"http://localhost:3000/cb": true, "http://app.example/cb": false, "https://app.example/cb#f": false,
		"https://u:p@app.example/cb": false, "cursor://cb": false, "javascript:alert(1)": false,
		"http://127.0.0.1.evil.example/cb": false, "/relative": false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := SecureRedirect(u); got != want {
			t.Errorf("SecureRedirect(%q) = %v, want %v", raw, got, want)
		}
	}
}
