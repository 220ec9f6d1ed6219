package otp_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/litehost/litehost/domain/otp"
)

// e164 is the documented phone grammar written out by hand: "+", a non-zero digit, 8 to 15
// ASCII digits in all.
func e164(s string) bool {
	digits, ok := strings.CutPrefix(s, "+")
	if !ok || len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// FuzzNormalizePhone: an accepted number is the trimmed input in E.164 form and normalises to
// itself; a refused one is ErrPhoneInvalid (400 INVALID_REQUEST). Seeds: testdata/fuzz.
func FuzzNormalizePhone(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := otp.NormalizePhone(raw)
		if err != nil {
			if !errors.Is(err, otp.ErrPhoneInvalid) {
				t.Fatalf("NormalizePhone(%q): %v", raw, err)
			}
			return
		}
		if v != strings.TrimSpace(raw) || !e164(v) {
			t.Fatalf("NormalizePhone(%q) = %q, not E.164", raw, v)
		}
		if again, err := otp.NormalizePhone(v); err != nil || again != v {
			t.Fatalf("NormalizePhone(%q) = %q, %v; not idempotent", v, again, err)
		}
	})
}

// FuzzNormalizeEmail: an accepted address is the trimmed, lowercased input, a bare address of
// one @ and a dotted domain within the SMTP length, and normalises to itself; a refused one is
// ErrEmailInvalid (400 INVALID_REQUEST).
func FuzzNormalizeEmail(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := otp.NormalizeEmail(raw)
		if err != nil {
			if !errors.Is(err, otp.ErrEmailInvalid) {
				t.Fatalf("NormalizeEmail(%q): %v", raw, err)
			}
			return
		}
		if v != strings.ToLower(strings.TrimSpace(raw)) {
			t.Fatalf("NormalizeEmail(%q) = %q, not the trimmed lowercase input", raw, v)
		}
		local, host, _ := strings.Cut(v, "@")
		if len(v) > 254 || strings.Count(v, "@") != 1 || local == "" || !strings.Contains(host, ".") ||
			strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") || strings.Contains(host, "..") {
			t.Fatalf("accepted %q", v)
		}
		// A bare address: no display name, comment, quoting, domain literal or route, so no
		// space, control character or RFC 5322 special other than the one @ and dots.
		for _, r := range v {
			if r < 0x21 || r == 0x7f || strings.ContainsRune(`()<>[]\,;:"`, r) {
				t.Fatalf("accepted %q, with a space, control character or special", v)
			}
		}
		if again, err := otp.NormalizeEmail(v); err != nil || again != v {
			t.Fatalf("NormalizeEmail(%q) = %q, %v; not idempotent", v, again, err)
		}
	})
}
