// Package otp holds the rules of one-time sign-in codes for one identifier (an e-mail address or
// a phone number). All per-identifier limits live in the identifier's own stream, so they hold
// across API instances through optimistic concurrency.
//
// Rules:
//   - A code is valid for CodeTTL and is consumed by the first correct verify.
//   - At most MaxRequests sends per identifier per RequestWindow; the window is fixed and starts at
//     the first send after the previous window ended. Re-sends count as sends.
//   - At least Cooldown between two sends to one identifier.
//   - A plain request while a code is open sends nothing new: the code in the inbox stays valid.
//     A request with resend sends the same open code again (subject to the limits above); with no
//     code open it issues a new one.
//   - MaxAttempts wrong codes cancel the open code.
//   - MaxCancels cancelled codes within LockWindow lock the identifier for LockDuration: no code can
//     be requested while locked.
//   - Verify with no open code (none issued, expired, consumed or cancelled) fails with ErrExpired.
package otp

import (
	"time"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// The numbers of the rules above (DESIGN §6, spec §6).
const (
	CodeTTL       = 10 * time.Minute
	RequestWindow = time.Hour
	MaxRequests   = 3
	Cooldown      = 60 * time.Second
	MaxAttempts   = 5
	LockWindow    = time.Hour
	MaxCancels    = 3
	LockDuration  = 15 * time.Minute
)

// Purposes of a code. They are advisory: they change the wording of the message, never the answer.
const (
	PurposeSignIn = "signin"
	PurposeSignUp = "signup"
)

// CancelReasonTooManyAttempts is the OTPCancelled reason after MaxAttempts wrong codes.
const CancelReasonTooManyAttempts = "too_many_attempts"

// Rule errors.
const (
	ErrTooManyRequests  = domain.Error("too many codes requested for this identifier; try again later")
	ErrCooldown         = domain.Error("a code was sent moments ago; wait before asking for another")
	ErrLocked           = domain.Error("too many failed codes; this identifier is locked for a while")
	ErrExpired          = domain.Error("no open code for this identifier: it expired, was used, or was never requested")
	ErrInvalidCode      = domain.Error("the code is not correct")
	ErrTooManyAttempts  = domain.Error("too many wrong codes; the code was cancelled, request a new one")
	ErrNonceRequired    = domain.Error("a new code needs a nonce and a code hash")
	ErrPurposeNotKnown  = domain.Error("purpose must be signin or signup")
	ErrChannelNotKnown  = domain.Error("channel must be email or phone")
	ErrAddressMissing   = domain.Error("an address is required")
	ErrCheckNotProvided = domain.Error("verify needs a code check")
)

// Code is an issued code as far as the stream knows it.
type Code struct {
	Nonce     string
	CodeHash  string
	Channel   string
	Address   string
	Purpose   string
	ExpiresAt time.Time
	Failed    int
	Closed    bool // verified or cancelled
}

// State is what the history of one identifier's stream says.
type State struct {
	Code        Code // the latest code; zero when none was issued
	WindowStart time.Time
	WindowCount int
	LastSentAt  time.Time
	Cancels     []time.Time // cancellations since the last lock
	LockedUntil time.Time
}

// Open reports whether the latest code can still be verified at now.
func (s State) Open(now time.Time) bool {
	return s.Code.Nonce != "" && !s.Code.Closed && now.Before(s.Code.ExpiresAt)
}

// Evolve applies one event. It never fails and never validates.
func Evolve(s State, e events.Event) State {
	switch e := e.(type) {
	case events.OTPRequested:
		if e.RequestedAt.Before(s.WindowStart.Add(RequestWindow)) && !s.WindowStart.IsZero() {
			s.WindowCount++
		} else {
			s.WindowStart, s.WindowCount = e.RequestedAt, 1
		}
		s.LastSentAt = e.RequestedAt
		if !e.Resend || e.Nonce != s.Code.Nonce {
			s.Code = Code{Nonce: e.Nonce, CodeHash: e.CodeHash, Channel: e.Channel, Address: e.Address, Purpose: e.Purpose, ExpiresAt: e.ExpiresAt}
		}
	case events.OTPAttemptFailed:
		if e.Nonce == s.Code.Nonce {
			s.Code.Failed++
		}
	case events.OTPVerified:
		if e.Nonce == s.Code.Nonce {
			s.Code.Closed = true
		}
	case events.OTPCancelled:
		if e.Nonce == s.Code.Nonce {
			s.Code.Closed = true
		}
		s.Cancels = append(s.Cancels[:len(s.Cancels):len(s.Cancels)], e.At)
	case events.OTPLocked:
		s.LockedUntil = e.LockedUntil
		s.Cancels = nil
	}
	return s
}

// Replay folds a history into a State.
func Replay(history []events.Event) State {
	var s State
	for _, e := range history {
		s = Evolve(s, e)
	}
	return s
}

// RequestInput is a request for a code. Nonce and CodeHash describe the new code to issue if one
// is needed; they are ignored when the open code is re-sent.
type RequestInput struct {
	Channel  string
	Address  string
	Purpose  string
	Resend   bool
	Nonce    string
	CodeHash string
}

// LimitError is a request refused by a time-based limit: the rule, and how long until it lifts.
type LimitError struct {
	Rule       domain.Error
	RetryAfter time.Duration
	Limit      int       // the request limit the rule enforces (for X-RateLimit-Limit)
	Reset      time.Time // when the limit lifts
}

// Error implements error with the rule's text.
func (e *LimitError) Error() string { return e.Rule.Error() }

// Unwrap lets errors.Is match the rule.
func (e *LimitError) Unwrap() error { return e.Rule }

func limited(rule domain.Error, limit int, reset, now time.Time) *LimitError {
	return &LimitError{Rule: rule, RetryAfter: reset.Sub(now), Limit: limit, Reset: reset}
}

// Request decides what a request for a code appends. No events and no error means a code is
// already open and nothing new is sent (the caller answers with the open code's expiry).
func Request(s State, in RequestInput, now time.Time) ([]events.Event, error) {
	switch {
	case in.Channel != "email" && in.Channel != "phone":
		return nil, ErrChannelNotKnown
	case in.Address == "":
		return nil, ErrAddressMissing
	case in.Purpose != PurposeSignIn && in.Purpose != PurposeSignUp:
		return nil, ErrPurposeNotKnown
	}
	if now.Before(s.LockedUntil) {
		return nil, limited(ErrLocked, MaxCancels, s.LockedUntil, now)
	}
	open := s.Open(now)
	if open && !in.Resend {
		return nil, nil
	}
	if windowEnd := s.WindowStart.Add(RequestWindow); s.WindowCount >= MaxRequests && now.Before(windowEnd) {
		return nil, limited(ErrTooManyRequests, MaxRequests, windowEnd, now)
	}
	if next := s.LastSentAt.Add(Cooldown); !s.LastSentAt.IsZero() && now.Before(next) {
		return nil, limited(ErrCooldown, 1, next, now)
	}
	if open {
		c := s.Code
		return []events.Event{events.OTPRequested{
			Channel: c.Channel, Address: c.Address, Purpose: c.Purpose, Nonce: c.Nonce, CodeHash: c.CodeHash,
			Resend: true, RequestedAt: now, ExpiresAt: c.ExpiresAt,
		}}, nil
	}
	if in.Nonce == "" || in.CodeHash == "" {
		return nil, ErrNonceRequired
	}
	return []events.Event{events.OTPRequested{
		Channel: in.Channel, Address: in.Address, Purpose: in.Purpose, Nonce: in.Nonce, CodeHash: in.CodeHash,
		RequestedAt: now, ExpiresAt: now.Add(CodeTTL),
	}}, nil
}

// CodeCheck reports whether the presented code matches the stored code hash. The caller computes
// it with the server secret in constant time; the domain only sees the verdict.
type CodeCheck func(codeHash string) bool

// Verify decides what presenting a code appends. A wrong code is not an error here: it appends
// OTPAttemptFailed (and, at the last attempt, OTPCancelled and maybe OTPLocked), which must be
// stored; Outcome then tells the caller which answer the events mean.
func Verify(s State, matches CodeCheck, now time.Time) ([]events.Event, error) {
	if matches == nil {
		return nil, ErrCheckNotProvided
	}
	if !s.Open(now) {
		return nil, ErrExpired
	}
	c := s.Code
	if matches(c.CodeHash) {
		return []events.Event{events.OTPVerified{Nonce: c.Nonce, Channel: c.Channel, Address: c.Address, Purpose: c.Purpose, At: now}}, nil
	}
	left := MaxAttempts - c.Failed - 1
	evs := []events.Event{events.OTPAttemptFailed{Nonce: c.Nonce, AttemptsLeft: left, At: now}}
	if left > 0 {
		return evs, nil
	}
	evs = append(evs, events.OTPCancelled{Nonce: c.Nonce, Reason: CancelReasonTooManyAttempts, At: now})
	recent := 1
	for _, at := range s.Cancels {
		if now.Sub(at) < LockWindow {
			recent++
		}
	}
	if recent >= MaxCancels {
		evs = append(evs, events.OTPLocked{LockedUntil: now.Add(LockDuration), At: now})
	}
	return evs, nil
}

// Outcome reads the events Verify returned: the verified event on success, otherwise
// ErrTooManyAttempts (the code was cancelled) or ErrInvalidCode with the attempts left.
func Outcome(evs []events.Event) (verified events.OTPVerified, attemptsLeft int, err error) {
	err = ErrExpired
	for _, e := range evs {
		switch e := e.(type) {
		case events.OTPVerified:
			return e, 0, nil
		case events.OTPAttemptFailed:
			attemptsLeft, err = e.AttemptsLeft, ErrInvalidCode
		case events.OTPCancelled:
			return events.OTPVerified{}, 0, ErrTooManyAttempts
		}
	}
	return events.OTPVerified{}, attemptsLeft, err
}
