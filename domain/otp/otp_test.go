package otp_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const addr = "you@example.com"

// requested is a fresh code issued at t with nonce n.
func requested(n string, t time.Time) events.OTPRequested {
	return events.OTPRequested{Channel: "email", Address: addr, Purpose: "signin", Nonce: n, CodeHash: "hash-" + n, RequestedAt: t, ExpiresAt: t.Add(otp.CodeTTL)}
}

func resent(n string, issued, t time.Time) events.OTPRequested {
	e := requested(n, issued)
	e.Resend, e.RequestedAt = true, t
	return e
}

func failed(n string, left int, t time.Time) events.OTPAttemptFailed {
	return events.OTPAttemptFailed{Nonce: n, AttemptsLeft: left, At: t}
}

func verified(n string, t time.Time) events.OTPVerified {
	return events.OTPVerified{Nonce: n, Channel: "email", Address: addr, Purpose: "signin", At: t}
}

func cancelled(n string, t time.Time) events.OTPCancelled {
	return events.OTPCancelled{Nonce: n, Reason: otp.CancelReasonTooManyAttempts, At: t}
}

// fiveWrong is a code issued at t and then cancelled by MaxAttempts wrong codes a second later.
func fiveWrong(n string, t time.Time) []events.Event {
	return fiveWrongAt(n, t, t.Add(time.Second))
}

// fiveWrongAt is a code issued at t and cancelled by MaxAttempts wrong codes at failAt.
func fiveWrongAt(n string, t, failAt time.Time) []events.Event {
	return append(wrongCodes(n, t, failAt, otp.MaxAttempts-1), failed(n, 0, failAt), cancelled(n, failAt))
}

// wrongCodes is a code issued at t followed by k wrong codes at failAt.
func wrongCodes(n string, t, failAt time.Time, k int) []events.Event {
	evs := []events.Event{requested(n, t)}
	for i := range k {
		evs = append(evs, failed(n, otp.MaxAttempts-1-i, failAt))
	}
	return evs
}

func concat(parts ...[]events.Event) []events.Event {
	var out []events.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestRequest(t *testing.T) {
	newCode := otp.RequestInput{Channel: "email", Address: addr, Purpose: "signin", Nonce: "n2", CodeHash: "hash-n2"}
	resend := newCode
	resend.Resend = true

	tests := []struct {
		name      string
		given     []events.Event
		in        otp.RequestInput
		now       time.Time
		want      []events.Event
		wantErr   error
		wantRetry time.Duration
	}{
		{name: "first request issues a code valid 10 minutes", in: newCode, now: t0,
			want: []events.Event{requested("n2", t0)}},
		{name: "plain request while a code is open sends nothing", given: []events.Event{requested("n1", t0)}, in: newCode, now: at(2 * time.Minute)},
		{name: "plain request inside the cooldown while a code is open still sends nothing", given: []events.Event{requested("n1", t0)}, in: newCode, now: at(10 * time.Second)},
		{name: "resend inside the cooldown is refused", given: []events.Event{requested("n1", t0)}, in: resend, now: at(59 * time.Second),
			wantErr: otp.ErrCooldown, wantRetry: time.Second},
		{name: "resend after the cooldown re-sends the same open code", given: []events.Event{requested("n1", t0)}, in: resend, now: at(60 * time.Second),
			want: []events.Event{resent("n1", t0, at(60*time.Second))}},
		{name: "resend with no open code issues a new one", given: []events.Event{requested("n1", t0)}, in: resend, now: at(11 * time.Minute),
			want: []events.Event{requested("n2", at(11*time.Minute))}},
		{name: "request after expiry issues a new code", given: []events.Event{requested("n1", t0)}, in: newCode, now: at(otp.CodeTTL),
			want: []events.Event{requested("n2", at(otp.CodeTTL))}},
		{name: "request after the code was used, inside the cooldown, is refused", given: []events.Event{requested("n1", t0), verified("n1", at(30*time.Second))},
			in: newCode, now: at(45 * time.Second), wantErr: otp.ErrCooldown, wantRetry: 15 * time.Second},
		{name: "request after the code was used, after the cooldown, issues a new code", given: []events.Event{requested("n1", t0), verified("n1", at(30*time.Second))},
			in: newCode, now: at(61 * time.Second), want: []events.Event{requested("n2", at(61*time.Second))}},
		{name: "fourth send within the hour is refused until the window ends",
			given: []events.Event{requested("n1", t0), resent("n1", t0, at(time.Minute)), resent("n1", t0, at(2*time.Minute))},
			in:    resend, now: at(5 * time.Minute), wantErr: otp.ErrTooManyRequests, wantRetry: 55 * time.Minute},
		{name: "the window is fixed from its first request, not sliding",
			given: []events.Event{requested("n1", t0), resent("n1", t0, at(time.Minute)), requested("n3", at(55*time.Minute))},
			in:    resend, now: at(time.Hour), want: []events.Event{resent("n3", at(55*time.Minute), at(time.Hour))}},
		{name: "a request one second before the window ends is still refused",
			given: []events.Event{requested("n1", t0), resent("n1", t0, at(time.Minute)), resent("n1", t0, at(2*time.Minute))},
			in:    newCode, now: at(time.Hour - time.Second), wantErr: otp.ErrTooManyRequests, wantRetry: time.Second},
		{name: "a new window starts at the first request after the old one ended",
			given: []events.Event{requested("n1", t0), resent("n1", t0, at(time.Minute)), resent("n1", t0, at(2*time.Minute)), requested("n3", at(70*time.Minute))},
			in:    resend, now: at(72 * time.Minute), want: []events.Event{resent("n3", at(70*time.Minute), at(72*time.Minute))}},
		{name: "locked identifier cannot request", given: []events.Event{events.OTPLocked{LockedUntil: at(15 * time.Minute), At: t0}},
			in: newCode, now: at(5 * time.Minute), wantErr: otp.ErrLocked, wantRetry: 10 * time.Minute},
		{name: "lock lifts after 15 minutes", given: []events.Event{events.OTPLocked{LockedUntil: at(15 * time.Minute), At: t0}},
			in: newCode, now: at(15 * time.Minute), want: []events.Event{requested("n2", at(15*time.Minute))}},
		{name: "unknown purpose is refused", in: otp.RequestInput{Channel: "email", Address: addr, Purpose: "admin", Nonce: "n", CodeHash: "h"}, now: t0, wantErr: otp.ErrPurposeNotKnown},
		{name: "unknown channel is refused", in: otp.RequestInput{Channel: "fax", Address: addr, Purpose: "signin", Nonce: "n", CodeHash: "h"}, now: t0, wantErr: otp.ErrChannelNotKnown},
		{name: "missing address is refused", in: otp.RequestInput{Channel: "email", Purpose: "signin", Nonce: "n", CodeHash: "h"}, now: t0, wantErr: otp.ErrAddressMissing},
		{name: "a new code needs a nonce", in: otp.RequestInput{Channel: "email", Address: addr, Purpose: "signin"}, now: t0, wantErr: otp.ErrNonceRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := otp.Request(otp.Replay(tt.given), tt.in, tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantRetry != 0 {
				var le *otp.LimitError
				if !errors.As(err, &le) {
					t.Fatalf("err = %T, want *otp.LimitError", err)
				}
				if le.RetryAfter != tt.wantRetry || !le.Reset.Equal(tt.now.Add(tt.wantRetry)) {
					t.Errorf("retry after %v (reset %v), want %v", le.RetryAfter, le.Reset, tt.wantRetry)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	right := func(h string) bool { return h == "hash-n1" }
	wrong := func(string) bool { return false }
	fourWrong := []events.Event{requested("n1", t0), failed("n1", 4, at(time.Second)), failed("n1", 3, at(time.Second)), failed("n1", 2, at(time.Second)), failed("n1", 1, at(time.Second))}
	now := at(2 * time.Minute)

	tests := []struct {
		name         string
		given        []events.Event
		check        otp.CodeCheck
		now          time.Time
		want         []events.Event
		wantErr      error // from Verify
		wantOutcome  error // from Outcome
		attemptsLeft int
	}{
		{name: "right code verifies", given: []events.Event{requested("n1", t0)}, check: right, now: now,
			want: []events.Event{verified("n1", now)}},
		{name: "right code one instant before expiry verifies", given: []events.Event{requested("n1", t0)}, check: right, now: at(otp.CodeTTL - time.Millisecond),
			want: []events.Event{verified("n1", at(otp.CodeTTL-time.Millisecond))}},
		{name: "right code at expiry is expired", given: []events.Event{requested("n1", t0)}, check: right, now: at(otp.CodeTTL), wantErr: otp.ErrExpired},
		{name: "no code ever requested is expired", check: right, now: now, wantErr: otp.ErrExpired},
		{name: "a code is single use", given: []events.Event{requested("n1", t0), verified("n1", at(time.Minute))}, check: right, now: now, wantErr: otp.ErrExpired},
		{name: "a re-sent code keeps its first expiry", given: []events.Event{requested("n1", t0), resent("n1", t0, at(5*time.Minute))}, check: right, now: at(otp.CodeTTL), wantErr: otp.ErrExpired},
		{name: "a re-sent code verifies", given: []events.Event{requested("n1", t0), resent("n1", t0, at(time.Minute))}, check: right, now: now,
			want: []events.Event{verified("n1", now)}},
		{name: "wrong code records the attempt with attempts left", given: []events.Event{requested("n1", t0)}, check: wrong, now: now,
			want: []events.Event{failed("n1", 4, now)}, wantOutcome: otp.ErrInvalidCode, attemptsLeft: 4},
		{name: "fifth wrong code cancels the code", given: fourWrong, check: wrong, now: now,
			want: []events.Event{failed("n1", 0, now), cancelled("n1", now)}, wantOutcome: otp.ErrTooManyAttempts},
		{name: "a cancelled code no longer verifies", given: fiveWrong("n1", t0), check: right, now: now, wantErr: otp.ErrExpired},
		{name: "after four wrong codes the right one still verifies", given: fourWrong, check: right, now: now,
			want: []events.Event{verified("n1", now)}},
		{name: "third cancelled code within an hour locks for 15 minutes",
			given: concat(fiveWrong("a", t0), fiveWrong("b", at(10*time.Minute)), wrongCodes("n1", at(15*time.Minute), at(16*time.Minute), 4)), check: wrong, now: at(20 * time.Minute),
			want:        []events.Event{failed("n1", 0, at(20*time.Minute)), cancelled("n1", at(20*time.Minute)), events.OTPLocked{LockedUntil: at(35 * time.Minute), At: at(20 * time.Minute)}},
			wantOutcome: otp.ErrTooManyAttempts},
		{name: "cancellations older than an hour do not count toward the lock",
			given: concat(fiveWrong("a", t0), fiveWrong("b", at(10*time.Minute)), []events.Event{requested("n1", at(61*time.Minute))},
				[]events.Event{failed("n1", 4, at(62*time.Minute)), failed("n1", 3, at(62*time.Minute)), failed("n1", 2, at(62*time.Minute)), failed("n1", 1, at(62*time.Minute))}),
			check: wrong, now: at(62 * time.Minute),
			want: []events.Event{failed("n1", 0, at(62*time.Minute)), cancelled("n1", at(62*time.Minute))}, wantOutcome: otp.ErrTooManyAttempts},
		{name: "cancellations before a lock do not count toward the next lock",
			given: concat(fiveWrong("a", t0), fiveWrong("b", t0), fiveWrong("c", t0), []events.Event{events.OTPLocked{LockedUntil: at(15 * time.Minute), At: t0}}, fiveWrong("d", at(16*time.Minute)),
				[]events.Event{requested("n1", at(17*time.Minute)), failed("n1", 4, at(17*time.Minute)), failed("n1", 3, at(17*time.Minute)), failed("n1", 2, at(17*time.Minute)), failed("n1", 1, at(17*time.Minute))}),
			check: wrong, now: at(18 * time.Minute),
			want: []events.Event{failed("n1", 0, at(18*time.Minute)), cancelled("n1", at(18*time.Minute))}, wantOutcome: otp.ErrTooManyAttempts},
		{name: "no check is a programming error", given: []events.Event{requested("n1", t0)}, now: now, wantErr: otp.ErrCheckNotProvided},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := otp.Verify(otp.Replay(tt.given), tt.check, tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			_, left, err := otp.Outcome(got)
			if !errors.Is(err, tt.wantOutcome) {
				t.Errorf("outcome = %v, want %v", err, tt.wantOutcome)
			}
			if left != tt.attemptsLeft {
				t.Errorf("attempts left = %d, want %d", left, tt.attemptsLeft)
			}
		})
	}
}

func TestLockedIdentifierCannotRequestAfterThirdCancel(t *testing.T) {
	// The whole path: three codes cancelled within an hour (the third in a new request window, so
	// the hourly request limit does not already block), then requests inside and after the lock.
	history := concat(fiveWrongAt("a", t0, at(9*time.Minute)), fiveWrongAt("b", at(55*time.Minute), at(56*time.Minute)))
	history = append(history, requested("c", at(61*time.Minute)))
	for range otp.MaxAttempts {
		evs, err := otp.Verify(otp.Replay(history), func(string) bool { return false }, at(62*time.Minute))
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		history = append(history, evs...)
	}
	in := otp.RequestInput{Channel: "email", Address: addr, Purpose: "signin", Nonce: "d", CodeHash: "hash-d"}
	if _, err := otp.Request(otp.Replay(history), in, at(76*time.Minute)); !errors.Is(err, otp.ErrLocked) {
		t.Fatalf("request inside the lock: err = %v, want ErrLocked", err)
	}
	got, err := otp.Request(otp.Replay(history), in, at(77*time.Minute))
	if err != nil {
		t.Fatalf("request after the lock: %v", err)
	}
	if diff := cmp.Diff([]events.Event{requested("d", at(77*time.Minute))}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestNormalize(t *testing.T) {
	emails := []struct{ in, want string }{
		{"  You@Example.COM ", "you@example.com"},
		{"a.b+tag@sub.example.org", "a.b+tag@sub.example.org"},
		{"", ""}, {"no-at.example.com", ""}, {"a@localhost", ""}, {"A <a@example.com>", ""},
		{"a@@example.com", ""}, {"a@example..com", ""}, {"a b@example.com", ""}, {"a@.example.com", ""},
	}
	for _, tt := range emails {
		got, err := otp.NormalizeEmail(tt.in)
		if tt.want == "" {
			if !errors.Is(err, otp.ErrEmailInvalid) {
				t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrEmailInvalid", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	phones := []struct{ in, want string }{
		{" +919876543210 ", "+919876543210"}, {"+12345678", "+12345678"}, {"+123456789012345", "+123456789012345"},
		{"919876543210", ""}, {"+1234567", ""}, {"+1234567890123456", ""}, {"+0123456789", ""}, {"+1 234 567 890", ""}, {"+12345678a", ""},
	}
	for _, tt := range phones {
		got, err := otp.NormalizePhone(tt.in)
		if tt.want == "" {
			if !errors.Is(err, otp.ErrPhoneInvalid) {
				t.Errorf("NormalizePhone(%q) = %q, %v; want ErrPhoneInvalid", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
