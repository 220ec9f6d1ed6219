package otp_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const addr = "you@example.com"

// Clients are the keyed hashes of requesters' networks; the domain only compares them.
const (
	owner    = "client-owner"
	stranger = "client-stranger"
)

// requested is code n issued at t to client c.
func requested(n int, t time.Time, c string) events.OTPRequestedV2 {
	return events.OTPRequestedV2{Channel: "email", Address: addr, Purpose: "signin", CodeSeq: n, IssuedAt: t, Client: c, RequestedAt: t, ExpiresAt: t.Add(otp.CodeTTL)}
}

func resent(n int, issued, t time.Time, c string) events.OTPRequestedV2 {
	e := requested(n, issued, c)
	e.Resend, e.RequestedAt = true, t
	return e
}

func failed(n int, c string, left, consecutive int, t time.Time) events.OTPAttemptFailedV2 {
	return events.OTPAttemptFailedV2{CodeSeq: n, Client: c, AttemptsLeft: left, ConsecutiveFailures: consecutive, At: t}
}

func verified(n int, t time.Time) events.OTPVerifiedV2 {
	return events.OTPVerifiedV2{CodeSeq: n, Channel: "email", Address: addr, Purpose: "signin", At: t}
}

// wrongCodes is client c sending k wrong codes for code n at t, the identifier having had
// before consecutive failures.
func wrongCodes(n int, c string, k, before int, t time.Time) []events.Event {
	var evs []events.Event
	for i := range k {
		evs = append(evs, failed(n, c, otp.MaxAttempts-1-i, before+i+1, t))
	}
	return evs
}

// failures is a history of `total` wrong codes spread over codes 1.. (5 per code, each from its
// own client, one code every 11 minutes so each is issued after the last expired), ending at
// the returned time; the latest code is still open then.
func failures(total int) ([]events.Event, time.Time) {
	var evs []events.Event
	now := t0
	for n := 1; total > 0; n++ {
		c := fmt.Sprintf("bot-%d", n)
		now = t0.Add(time.Duration(n-1) * 11 * time.Minute)
		evs = append(evs, requested(n, now, c))
		k := min(total, otp.MaxAttempts)
		evs = append(evs, wrongCodes(n, c, k, len(evs)-n, now.Add(time.Second))...)
		total -= k
	}
	return evs, now.Add(time.Second)
}

func concat(parts ...[]events.Event) []events.Event {
	var out []events.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestRequest(t *testing.T) {
	newCode := otp.RequestInput{Channel: "email", Address: addr, Purpose: "signin", Client: owner}
	resend := newCode
	resend.Resend = true
	strangerResend := resend
	strangerResend.Client = stranger

	tests := []struct {
		name      string
		given     []events.Event
		in        otp.RequestInput
		now       time.Time
		want      []events.Event
		wantErr   error
		wantRetry time.Duration
	}{
		{name: "first request issues code 1, valid 10 minutes", in: newCode, now: t0,
			want: []events.Event{requested(1, t0, owner)}},
		{name: "plain request while a code is open sends nothing", given: []events.Event{requested(1, t0, owner)}, in: newCode, now: at(2 * time.Minute)},
		{name: "plain request inside the cooldown while a code is open still sends nothing", given: []events.Event{requested(1, t0, owner)}, in: newCode, now: at(10 * time.Second)},
		{name: "resend inside the cooldown is refused", given: []events.Event{requested(1, t0, owner)}, in: resend, now: at(59 * time.Second),
			wantErr: otp.ErrCooldown, wantRetry: time.Second},
		{name: "the cooldown holds whoever asks", given: []events.Event{requested(1, t0, owner)}, in: strangerResend, now: at(30 * time.Second),
			wantErr: otp.ErrCooldown, wantRetry: 30 * time.Second},
		{name: "resend after the cooldown re-sends the same open code", given: []events.Event{requested(1, t0, owner)}, in: resend, now: at(60 * time.Second),
			want: []events.Event{resent(1, t0, at(60*time.Second), owner)}},
		{name: "resend with no open code issues the next code", given: []events.Event{requested(1, t0, owner)}, in: resend, now: at(11 * time.Minute),
			want: []events.Event{requested(2, at(11*time.Minute), owner)}},
		{name: "request after expiry issues a new code", given: []events.Event{requested(1, t0, owner)}, in: newCode, now: at(otp.CodeTTL),
			want: []events.Event{requested(2, at(otp.CodeTTL), owner)}},
		{name: "request after the code was used, inside the cooldown, is refused", given: []events.Event{requested(1, t0, owner), verified(1, at(30*time.Second))},
			in: newCode, now: at(45 * time.Second), wantErr: otp.ErrCooldown, wantRetry: 15 * time.Second},
		{name: "request after the code was used, after the cooldown, issues a new code", given: []events.Event{requested(1, t0, owner), verified(1, at(30*time.Second))},
			in: newCode, now: at(61 * time.Second), want: []events.Event{requested(2, at(61*time.Second), owner)}},
		{name: "a client's fourth send within the hour is refused until its window ends",
			given: []events.Event{requested(1, t0, owner), resent(1, t0, at(time.Minute), owner), resent(1, t0, at(2*time.Minute), owner)},
			in:    resend, now: at(5 * time.Minute), wantErr: otp.ErrTooManyRequests, wantRetry: 55 * time.Minute},
		{name: "a stranger's three sends do not use up the owner's",
			given: []events.Event{requested(1, t0, stranger), resent(1, t0, at(time.Minute), stranger), resent(1, t0, at(2*time.Minute), stranger)},
			in:    resend, now: at(5 * time.Minute), want: []events.Event{resent(1, t0, at(5*time.Minute), owner)}},
		{name: "the window is fixed from its first request, not sliding",
			given: []events.Event{requested(1, t0, owner), resent(1, t0, at(time.Minute), owner), requested(2, at(55*time.Minute), owner)},
			in:    resend, now: at(time.Hour), want: []events.Event{resent(2, at(55*time.Minute), at(time.Hour), owner)}},
		{name: "a request one second before the window ends is still refused",
			given: []events.Event{requested(1, t0, owner), resent(1, t0, at(time.Minute), owner), resent(1, t0, at(2*time.Minute), owner)},
			in:    newCode, now: at(time.Hour - time.Second), wantErr: otp.ErrTooManyRequests, wantRetry: time.Second},
		{name: "a new window starts at the first request after the old one ended",
			given: []events.Event{requested(1, t0, owner), resent(1, t0, at(time.Minute), owner), resent(1, t0, at(2*time.Minute), owner), requested(2, at(70*time.Minute), owner)},
			in:    resend, now: at(72 * time.Minute), want: []events.Event{resent(2, at(70*time.Minute), at(72*time.Minute), owner)}},
		{name: "wrong codes never stop the owner requesting", given: concat([]events.Event{requested(1, t0, stranger)}, wrongCodes(1, stranger, 5, 0, at(time.Second))),
			in: newCode, now: at(otp.CodeTTL), want: []events.Event{requested(2, at(otp.CodeTTL), owner)}},
		{name: "an old v1 lock is honoured until it lifts", given: []events.Event{events.OTPLocked{LockedUntil: at(15 * time.Minute), At: t0}},
			in: newCode, now: at(5 * time.Minute), wantErr: otp.ErrLocked, wantRetry: 10 * time.Minute},
		{name: "an old v1 lock lifts after its time", given: []events.Event{events.OTPLocked{LockedUntil: at(15 * time.Minute), At: t0}},
			in: newCode, now: at(15 * time.Minute), want: []events.Event{requested(1, at(15*time.Minute), owner)}},
		{name: "an open v1 code is replaced, not re-sent (a re-send would store its nonce again)",
			given: []events.Event{v1Requested("n1", t0)}, in: resend, now: at(2 * time.Minute),
			want: []events.Event{requested(2, at(2*time.Minute), owner)}},
		{name: "a plain request while a v1 code is open sends nothing", given: []events.Event{v1Requested("n1", t0)}, in: newCode, now: at(2 * time.Minute)},
		{name: "unknown purpose is refused", in: otp.RequestInput{Channel: "email", Address: addr, Purpose: "admin", Client: owner}, now: t0, wantErr: otp.ErrPurposeNotKnown},
		{name: "unknown channel is refused", in: otp.RequestInput{Channel: "fax", Address: addr, Purpose: "signin", Client: owner}, now: t0, wantErr: otp.ErrChannelNotKnown},
		{name: "missing address is refused", in: otp.RequestInput{Channel: "email", Purpose: "signin", Client: owner}, now: t0, wantErr: otp.ErrAddressMissing},
		{name: "missing client is refused", in: otp.RequestInput{Channel: "email", Address: addr, Purpose: "signin"}, now: t0, wantErr: otp.ErrClientMissing},
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

// v1Requested is an otp.requested.v1 code as the stream may still hold one.
func v1Requested(n string, t time.Time) events.OTPRequested {
	return events.OTPRequested{Channel: "email", Address: addr, Purpose: "signin", Nonce: n, CodeHash: "hash-" + n, RequestedAt: t, ExpiresAt: t.Add(otp.CodeTTL)}
}

func TestVerify(t *testing.T) {
	right := func(c otp.Code) bool { return c.Seq == 1 }
	wrong := func(otp.Code) bool { return false }
	now := at(2 * time.Minute)
	code1 := []events.Event{requested(1, t0, owner)}
	hundred, afterHundred := failures(otp.MaxConsecutiveFailures)
	ninetyNine, after99 := failures(otp.MaxConsecutiveFailures - 1)
	last := len(hundred) / (otp.MaxAttempts + 1) // the open code's number after 100 failures
	rightLast := func(c otp.Code) bool { return c.Seq == last }

	tests := []struct {
		name         string
		given        []events.Event
		client       string
		check        otp.CodeCheck
		now          time.Time
		want         []events.Event
		wantErr      error // from Verify
		wantRetry    time.Duration
		wantOutcome  error // from Outcome
		attemptsLeft int
	}{
		{name: "right code verifies", given: code1, client: owner, check: right, now: now,
			want: []events.Event{verified(1, now)}},
		{name: "right code one instant before expiry verifies", given: code1, client: owner, check: right, now: at(otp.CodeTTL - time.Millisecond),
			want: []events.Event{verified(1, at(otp.CodeTTL-time.Millisecond))}},
		{name: "right code at expiry is expired", given: code1, client: owner, check: right, now: at(otp.CodeTTL), wantErr: otp.ErrExpired},
		{name: "no code ever requested is expired", client: owner, check: right, now: now, wantErr: otp.ErrExpired},
		{name: "a code is single use", given: []events.Event{requested(1, t0, owner), verified(1, at(time.Minute))}, client: owner, check: right, now: now, wantErr: otp.ErrExpired},
		{name: "a re-sent code keeps its first expiry", given: []events.Event{requested(1, t0, owner), resent(1, t0, at(5*time.Minute), owner)}, client: owner, check: right, now: at(otp.CodeTTL), wantErr: otp.ErrExpired},
		{name: "a re-sent code verifies", given: []events.Event{requested(1, t0, owner), resent(1, t0, at(time.Minute), owner)}, client: owner, check: right, now: now,
			want: []events.Event{verified(1, now)}},
		{name: "wrong code records the attempt, the client's attempts left and the run of failures", given: code1, client: owner, check: wrong, now: now,
			want: []events.Event{failed(1, owner, 4, 1, now)}, wantOutcome: otp.ErrInvalidCode, attemptsLeft: 4},
		{name: "a client's fifth wrong code is its last on this code", given: concat(code1, wrongCodes(1, stranger, 4, 0, at(time.Second))), client: stranger, check: wrong, now: now,
			want: []events.Event{failed(1, stranger, 0, 5, now)}, wantOutcome: otp.ErrTooManyAttempts},
		{name: "a client with no attempts left is refused without a check", given: concat(code1, wrongCodes(1, stranger, 5, 0, at(time.Second))), client: stranger, check: right, now: now,
			wantErr: otp.ErrTooManyAttempts},
		{name: "a stranger's five wrong codes leave the owner's code open to the owner", given: concat(code1, wrongCodes(1, stranger, 5, 0, at(time.Second))), client: owner, check: right, now: now,
			want: []events.Event{verified(1, now)}},
		{name: "the run of failures counts every client", given: concat(code1, wrongCodes(1, stranger, 5, 0, at(time.Second))), client: owner, check: wrong, now: now,
			want: []events.Event{failed(1, owner, 4, 6, now)}, wantOutcome: otp.ErrInvalidCode, attemptsLeft: 4},
		{name: "expiry does not end the run of failures", given: concat(code1, wrongCodes(1, stranger, 5, 0, at(time.Second)), []events.Event{requested(2, at(20*time.Minute), owner)}),
			client: owner, check: wrong, now: at(21 * time.Minute), want: []events.Event{failed(2, owner, 4, 6, at(21*time.Minute))}, wantOutcome: otp.ErrInvalidCode, attemptsLeft: 4},
		{name: "only a verified code ends the run of failures",
			given:  concat(code1, wrongCodes(1, stranger, 3, 0, at(time.Second)), []events.Event{verified(1, at(time.Minute)), requested(2, at(20*time.Minute), owner)}),
			client: stranger, check: wrong, now: at(21 * time.Minute), want: []events.Event{failed(2, stranger, 4, 1, at(21*time.Minute))}, wantOutcome: otp.ErrInvalidCode, attemptsLeft: 4},
		{name: "below the limit of consecutive failures a new client has five attempts", given: ninetyNine, client: "fresh", check: wrong, now: after99,
			want: []events.Event{failed(last, "fresh", 4, 100, after99)}, wantOutcome: otp.ErrInvalidCode, attemptsLeft: 4},
		{name: "at 100 consecutive failures a client that failed is refused without a check", given: hundred, client: fmt.Sprintf("bot-%d", last), check: rightLast, now: afterHundred,
			wantErr: otp.ErrGuarded, wantRetry: otp.SuspectFor - 0},
		{name: "at 100 consecutive failures a client that failed long ago is not a suspect any more", given: hundred, client: "bot-1", check: wrong, now: t0.Add(otp.SuspectFor + 2*time.Second),
			wantErr: otp.ErrExpired}, // the open code has long expired: only the suspicion was checked
		{name: "at 100 consecutive failures the owner still signs in", given: hundred, client: owner, check: rightLast, now: afterHundred,
			want: []events.Event{verified(last, afterHundred)}},
		{name: "at 100 consecutive failures a new client's wrong code is its last on this code", given: hundred, client: "fresh", check: wrong, now: afterHundred,
			want: []events.Event{failed(last, "fresh", 0, 101, afterHundred)}, wantOutcome: otp.ErrTooManyAttempts},
		{name: "after 100 consecutive failures a verified code lifts the guard", given: concat(hundred, []events.Event{verified(last, afterHundred), requested(last+1, afterHundred.Add(time.Hour), "bot-1")}),
			client: "bot-1", check: wrong, now: afterHundred.Add(time.Hour + time.Second),
			want: []events.Event{failed(last+1, "bot-1", 4, 1, afterHundred.Add(time.Hour+time.Second))}, wantOutcome: otp.ErrInvalidCode, attemptsLeft: 4},
		{name: "an open v1 code verifies", given: []events.Event{v1Requested("n1", t0)}, client: owner, check: func(c otp.Code) bool { return c.CodeHash == "hash-n1" }, now: now,
			want: []events.Event{verified(1, now)}},
		{name: "a cancelled v1 code no longer verifies", given: []events.Event{v1Requested("n1", t0), events.OTPCancelled{Nonce: "n1", Reason: otp.CancelReasonTooManyAttempts, At: at(time.Minute)}},
			client: owner, check: right, now: now, wantErr: otp.ErrExpired},
		{name: "v1 failures count in the run of failures", given: []events.Event{v1Requested("n1", t0), events.OTPAttemptFailed{Nonce: "n1", AttemptsLeft: 4, At: at(time.Minute)}},
			client: owner, check: wrong, now: now, want: []events.Event{failed(1, owner, 4, 2, now)}, wantOutcome: otp.ErrInvalidCode, attemptsLeft: 4},
		{name: "no check is a programming error", given: code1, client: owner, now: now, wantErr: otp.ErrCheckNotProvided},
		{name: "no client is a programming error", given: code1, check: right, now: now, wantErr: otp.ErrClientMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := otp.Verify(otp.Replay(tt.given), tt.client, tt.check, tt.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantRetry != 0 {
				var le *otp.LimitError
				if !errors.As(err, &le) || le.RetryAfter != tt.wantRetry {
					t.Errorf("err = %#v, want a limit lifting in %v", err, tt.wantRetry)
				}
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

// TestStrangerCannotKeepOwnerOut plays the old lockout attack for a day: every few minutes a
// stranger asks for a code for the owner's address and spends all its attempts on it. The owner
// can always ask for a code and sign in with it, and the stranger's guesses stop at the limit of
// consecutive failures.
func TestStrangerCannotKeepOwnerOut(t *testing.T) {
	var history []events.Event
	apply := func(evs []events.Event) { history = append(history, evs...) }
	guesses := 0
	for i := range 24 * 4 {
		now := t0.Add(time.Duration(i) * 15 * time.Minute)
		bot := fmt.Sprintf("bot-%d", i) // a new network every time
		evs, err := otp.Request(otp.Replay(history), otp.RequestInput{Channel: "email", Address: addr, Purpose: "signin", Client: bot}, now)
		if err != nil {
			t.Fatalf("stranger's request %d: %v", i, err)
		}
		apply(evs)
		for range otp.MaxAttempts {
			evs, err := otp.Verify(otp.Replay(history), bot, func(otp.Code) bool { return false }, now.Add(time.Second))
			if err != nil {
				break
			}
			guesses++
			apply(evs)
		}
		if i%8 != 7 {
			continue
		}
		// Every two hours the owner checks they can still get in (then the stranger starts over).
		ownerAt := now.Add(2 * time.Minute)
		evs, err = otp.Request(otp.Replay(history), otp.RequestInput{Channel: "email", Address: addr, Purpose: "signin", Client: owner}, ownerAt)
		if err != nil {
			t.Fatalf("hour %d: the owner cannot request: %v", i/4, err)
		}
		apply(evs)
		s := otp.Replay(history)
		evs, err = otp.Verify(s, owner, func(c otp.Code) bool { return c.Seq == s.Code.Seq }, ownerAt.Add(time.Minute))
		if _, _, oerr := otp.Outcome(evs); err != nil || oerr != nil {
			t.Fatalf("hour %d: the owner cannot sign in: %v %v", i/4, err, oerr)
		}
		apply(evs)
	}
	t.Logf("%d wrong codes in a day from 96 networks", guesses)
	if s := otp.Replay(history); s.Consecutive != 0 { // the day ends with the owner's sign-in
		t.Errorf("consecutive failures after the owner signed in = %d, want 0", s.Consecutive)
	}
}

func TestGuessesStopAtTheLimitOfConsecutiveFailures(t *testing.T) {
	// One stranger network keeps trying, a new code whenever allowed: without a success the
	// identifier takes no more than MaxConsecutiveFailures of its wrong codes, for a week.
	var history []events.Event
	guesses := 0
	for i := range 7 * 24 * 6 {
		now := t0.Add(time.Duration(i) * 10 * time.Minute)
		evs, err := otp.Request(otp.Replay(history), otp.RequestInput{Channel: "email", Address: addr, Purpose: "signin", Client: stranger}, now)
		if err == nil {
			history = append(history, evs...)
		}
		for range otp.MaxAttempts {
			evs, err := otp.Verify(otp.Replay(history), stranger, func(otp.Code) bool { return false }, now.Add(time.Second))
			if err != nil {
				break
			}
			guesses++
			history = append(history, evs...)
		}
	}
	t.Logf("%d wrong codes in a week", guesses)
	if guesses > otp.MaxConsecutiveFailures+7 { // after 100, one guess a day once its suspicion lapses
		t.Errorf("%d wrong codes from one network in a week, want at most %d", guesses, otp.MaxConsecutiveFailures+7)
	}
}

func TestConsumed(t *testing.T) {
	h := []events.Event{requested(1, t0, owner), failed(1, stranger, 4, 1, at(time.Second)), verified(1, at(time.Minute)), requested(2, at(5*time.Minute), owner)}
	c, ok := otp.Consumed(h, 2)
	if !ok || c.Seq != 1 || !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(at(otp.CodeTTL)) {
		t.Errorf("Consumed = %+v, %v; want code 1", c, ok)
	}
	if _, ok := otp.Consumed(h, 1); ok {
		t.Error("a failure consumed a code")
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

// TestEvolveLeavesEarlierStatesAlone: States are values; deciding from one must not change another
// that shares its history (the executor re-decides from a reloaded State on a conflict).
func TestEvolveLeavesEarlierStatesAlone(t *testing.T) {
	s1 := otp.Replay(concat([]events.Event{requested(1, t0, owner)}, wrongCodes(1, stranger, 1, 0, at(time.Second))))
	s2 := otp.Evolve(s1, failed(1, stranger, 3, 2, at(2*time.Second)))
	s2 = otp.Evolve(s2, requested(2, at(otp.CodeTTL), stranger))
	if s1.Code.FailedBy[stranger] != 1 || len(s1.Windows) != 1 || !s1.Suspects[stranger].Equal(at(time.Second)) || s1.Consecutive != 1 {
		t.Errorf("the earlier State changed: %+v", s1)
	}
	if s2.Consecutive != 2 || s2.Code.Seq != 2 || len(s2.Windows) != 2 {
		t.Errorf("the later State: %+v", s2)
	}
}
