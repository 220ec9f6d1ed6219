package otp

import (
	"net/mail"
	"strings"

	"github.com/litehost/litehost/domain"
)

// Channels a code can be delivered on.
const (
	ChannelEmail = "email"
	ChannelPhone = "phone"
)

// Identifier problems.
const (
	ErrEmailInvalid = domain.Error("email must be a valid address")
	ErrPhoneInvalid = domain.Error("phone must be in E.164 form: + and 8 to 15 digits")
)

// maxEmailLen is the longest address SMTP can carry in a path (RFC 5321 §4.5.3.1.3).
const maxEmailLen = 254

// NormalizeEmail trims and lowercases an e-mail address and checks that it is a bare address
// (no display name) with a dotted domain.
func NormalizeEmail(raw string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(raw))
	// Brackets too: a domain literal (a@[10.0.0.1]) would send codes to an IP address.
	if s == "" || len(s) > maxEmailLen || strings.ContainsAny(s, " \t\r\n<>\"[]") {
		return "", ErrEmailInvalid
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", ErrEmailInvalid
	}
	local, host, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.Contains(host, "@") || !strings.Contains(host, ".") ||
		strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") || strings.Contains(host, "..") {
		return "", ErrEmailInvalid
	}
	return s, nil
}

// NormalizePhone trims a phone number and checks the E.164 form: "+", a non-zero digit, and 8 to
// 15 digits in all.
func NormalizePhone(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	digits, ok := strings.CutPrefix(s, "+")
	if !ok || len(digits) < 8 || len(digits) > 15 || digits[0] == '0' {
		return "", ErrPhoneInvalid
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return "", ErrPhoneInvalid
		}
	}
	return s, nil
}
