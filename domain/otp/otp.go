// Package otp holds the rules of one-time sign-in codes for one identifier (an e-mail address or
// a phone number). All per-identifier limits live in the identifier's own stream, so they hold
// across API instances through optimistic concurrency. A client is the keyed hash of the
// requester's network (IPv4 address or IPv6 /64); the domain only compares them.
//
// Rules:
//   - A code is valid for CodeTTL and is consumed by the first correct verify.
//   - At most MaxRequests sends per identifier per client per RequestWindow; the window is fixed
//     and starts at the client's first send after its previous window ended. Re-sends count as
//     sends. Counting per client means a stranger's requests never use up the owner's.
//   - At least Cooldown between two sends to one identifier, whoever asks (it bounds the messages
//     one inbox can receive).
//   - A plain request while a code is open sends nothing new: the code in the inbox stays valid.
//     A request with resend sends the same open code again (subject to the limits above); with no
//     code open it issues a new one.
//   - Wrong codes are charged to the client that sent them: after MaxAttempts wrong codes on one
//     code a client may not try that code again (it requests a new one). Another client's
//     attempts on the same code are unaffected, so a stranger cannot spend the owner's code.
//   - The identifier counts consecutive wrong codes, from any client; only a verified code resets
//     the count (NIST SP 800-63B §5.2.2). Once it reaches MaxConsecutiveFailures the identifier
//     is guarded: a client that sent a wrong code within SuspectFor may not try at all, and any
//     other client gets GuardedAttempts per code. The owner, who has not been failing, still
//     signs in; a guesser needs a new network for every further guess.
//   - No rule locks the identifier itself. Locks recorded by otp.locked.v1 are still honoured
//     until they lift.
//   - Verify with no open code (none issued, expired, consumed or cancelled) fails with ErrExpired.
package otp

import (
	"time"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// The numbers of the rules above (DESIGN §6, spec §6).
const (
	CodeTTL                = 10 * time.Minute
	RequestWindow          = time.Hour
	MaxRequests            = 3
	Cooldown               = 60 * time.Second
	MaxAttempts            = 5
	MaxConsecutiveFailures = 100
	GuardedAttempts        = 1
	SuspectFor             = 24 * time.Hour
)

// Purposes of a code. They are advisory: they change the wording of the message, never the answer.
const (
	PurposeSignIn = "signin"
	PurposeSignUp = "signup"
)

// CancelReasonTooManyAttempts is the reason of otp.cancelled.v1 events (no longer written).
const CancelReasonTooManyAttempts = "too_many_attempts"

// Rule errors.
const (
	ErrTooManyRequests  = domain.Error("too many codes requested for this identifier; try again later")
	ErrCooldown         = domain.Error("a code was sent moments ago; wait before asking for another")
	ErrLocked           = domain.Error("too many failed codes; this identifier is locked for a while")
	ErrGuarded          = domain.Error("too many wrong codes for this identifier from this network; try again later")
	ErrExpired          = domain.Error("no open code for this identifier: it expired, was used, or was never requested")
	ErrInvalidCode      = domain.Error("the code is not correct")
	ErrTooManyAttempts  = domain.Error("too many wrong codes for this code; request a new one")
	ErrPurposeNotKnown  = domain.Error("purpose must be signin or signup")
	ErrChannelNotKnown  = domain.Error("channel must be email or phone")
	ErrAddressMissing   = domain.Error("an address is required")
	ErrClientMissing    = domain.Error("a client is required")
	ErrCheckNotProvided = domain.Error("verify needs a code check")
)

// Code is an issued code as far as the stream knows it. Seq numbers the identifier's codes; a
// v1 code also has the Nonce and CodeHash it was issued with, a v2 code only Seq and IssuedAt,
// from which the caller derives it with the server secret.
type Code struct {
	Seq       int
	IssuedAt  time.Time
	Nonce     string // v1 codes only
	CodeHash  string // v1 codes only
	Channel   string
	Address   string
	Purpose   string
	ExpiresAt time.Time
	FailedBy  map[string]int // wrong codes per client (v2 attempts)
	Closed    bool           // verified or cancelled
}

// window is one client's fixed request window.
type window struct {
	start time.Time
	count int
}

// State is what the history of one identifier's stream says.
type State struct {
	Code        Code // the latest code; zero when none was issued
	Windows     map[string]window
	LastSentAt  time.Time
	Consecutive int                  // wrong codes since the last verified one
	Suspects    map[string]time.Time // client → its latest wrong code since the last verified one
	LockedUntil time.Time            // from otp.locked.v1 only
}

// Open reports whether the latest code can still be verified at now.
func (s State) Open(now time.Time) bool {
	return s.Code.Seq != 0 && !s.Code.Closed && now.Before(s.Code.ExpiresAt)
}

// Guarded reports whether the identifier has reached MaxConsecutiveFailures.
func (s State) Guarded() bool { return s.Consecutive >= MaxConsecutiveFailures }

// v1Client is the client of v1 requests, which did not record one: they share one window.
const v1Client = ""

// Evolve applies one event. It never fails and never validates; it copies the maps it changes,
// so a State passed to it is not modified.
func Evolve(s State, e events.Event) State {
	switch e := e.(type) {
	case events.OTPRequested:
		s = s.sent(v1Client, e.RequestedAt)
		if !e.Resend || e.Nonce != s.Code.Nonce {
			s.Code = Code{Seq: s.Code.Seq + 1, IssuedAt: e.RequestedAt, Nonce: e.Nonce, CodeHash: e.CodeHash,
				Channel: e.Channel, Address: e.Address, Purpose: e.Purpose, ExpiresAt: e.ExpiresAt}
		}
	case events.OTPRequestedV2:
		s = s.sent(e.Client, e.RequestedAt)
		if !e.Resend || e.CodeSeq != s.Code.Seq {
			s.Code = Code{Seq: e.CodeSeq, IssuedAt: e.IssuedAt, Channel: e.Channel, Address: e.Address, Purpose: e.Purpose, ExpiresAt: e.ExpiresAt}
		}
	case events.OTPAttemptFailed:
		s.Consecutive++
	case events.OTPAttemptFailedV2:
		s.Consecutive++
		s.Suspects = suspect(s.Suspects, e.Client, e.At)
		if e.CodeSeq == s.Code.Seq {
			s.Code.FailedBy = with(s.Code.FailedBy, e.Client, s.Code.FailedBy[e.Client]+1)
		}
	case events.OTPVerified:
		s = s.verified(e.Nonce != "" && e.Nonce == s.Code.Nonce)
	case events.OTPVerifiedV2:
		s = s.verified(e.CodeSeq == s.Code.Seq)
	case events.OTPCancelled:
		if e.Nonce == s.Code.Nonce {
			s.Code.Closed = true
		}
	case events.OTPLocked:
		s.LockedUntil = e.LockedUntil
	}
	return s
}

func (s State) sent(client string, at time.Time) State {
	w := s.Windows[client]
	if !w.start.IsZero() && at.Before(w.start.Add(RequestWindow)) {
		w.count++
	} else {
		w = window{start: at, count: 1}
	}
	// Windows that have ended decide nothing: dropping them keeps the map to the clients of the
	// last hour however long the stream grows.
	windows := make(map[string]window, len(s.Windows)+1)
	for k, v := range s.Windows {
		if at.Before(v.start.Add(RequestWindow)) {
			windows[k] = v
		}
	}
	windows[client] = w
	s.Windows = windows
	s.LastSentAt = at
	return s
}

func (s State) verified(latest bool) State {
	if latest {
		s.Code.Closed = true
	}
	s.Consecutive, s.Suspects = 0, nil
	return s
}

// suspect records client's wrong code at at, dropping suspicions that have lapsed (they decide
// nothing any more), so the map holds one day's failing clients at most.
func suspect(m map[string]time.Time, client string, at time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(m)+1)
	for k, last := range m {
		if at.Before(last.Add(SuspectFor)) {
			out[k] = last
		}
	}
	out[client] = at
	return out
}

// with returns a copy of m with k set to v (States are values: Evolve must not write into a map
// an earlier State shares).
func with[V any](m map[string]V, k string, v V) map[string]V {
	out := make(map[string]V, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}

// Replay folds a history into a State.
func Replay(history []events.Event) State {
	var s State
	for _, e := range history {
		s = Evolve(s, e)
	}
	return s
}

// RequestInput is a request for a code from one client.
type RequestInput struct {
	Channel string
	Address string
	Purpose string
	Resend  bool
	Client  string
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
	case in.Channel != ChannelEmail && in.Channel != ChannelPhone:
		return nil, ErrChannelNotKnown
	case in.Address == "":
		return nil, ErrAddressMissing
	case in.Purpose != PurposeSignIn && in.Purpose != PurposeSignUp:
		return nil, ErrPurposeNotKnown
	case in.Client == "":
		return nil, ErrClientMissing
	}
	if now.Before(s.LockedUntil) {
		return nil, limited(ErrLocked, MaxAttempts, s.LockedUntil, now)
	}
	open := s.Open(now)
	if open && !in.Resend {
		return nil, nil
	}
	if w := s.Windows[in.Client]; w.count >= MaxRequests && now.Before(w.start.Add(RequestWindow)) {
		return nil, limited(ErrTooManyRequests, MaxRequests, w.start.Add(RequestWindow), now)
	}
	if next := s.LastSentAt.Add(Cooldown); !s.LastSentAt.IsZero() && now.Before(next) {
		return nil, limited(ErrCooldown, 1, next, now)
	}
	// An open v1 code is not re-sent: that would write its nonce again. A new code replaces it.
	if c := s.Code; open && c.Nonce == "" {
		return []events.Event{events.OTPRequestedV2{
			Channel: c.Channel, Address: c.Address, Purpose: c.Purpose, CodeSeq: c.Seq, IssuedAt: c.IssuedAt,
			Client: in.Client, Resend: true, RequestedAt: now, ExpiresAt: c.ExpiresAt,
		}}, nil
	}
	return []events.Event{events.OTPRequestedV2{
		Channel: in.Channel, Address: in.Address, Purpose: in.Purpose, CodeSeq: s.Code.Seq + 1, IssuedAt: now,
		Client: in.Client, RequestedAt: now, ExpiresAt: now.Add(CodeTTL),
	}}, nil
}

// CodeCheck reports whether the presented code is the given code. The caller derives or hashes
// it with the server secret and compares in constant time; the domain only sees the verdict.
type CodeCheck func(Code) bool

// Verify decides what one client presenting a code appends. A wrong code is not an error here: it
// appends OTPAttemptFailedV2, which must be stored; Outcome then tells the caller which answer
// the events mean. Refusals that check nothing (no open code, the client's attempts spent, a
// guarded identifier) are errors and append nothing.
func Verify(s State, client string, matches CodeCheck, now time.Time) ([]events.Event, error) {
	switch {
	case matches == nil:
		return nil, ErrCheckNotProvided
	case client == "":
		return nil, ErrClientMissing
	case !s.Open(now):
		return nil, ErrExpired
	}
	allowed := MaxAttempts
	if s.Guarded() {
		if last, ok := s.Suspects[client]; ok && now.Before(last.Add(SuspectFor)) {
			return nil, limited(ErrGuarded, GuardedAttempts, last.Add(SuspectFor), now)
		}
		allowed = GuardedAttempts
	}
	c := s.Code
	left := allowed - c.FailedBy[client]
	if left <= 0 {
		return nil, ErrTooManyAttempts
	}
	if matches(c) {
		return []events.Event{events.OTPVerifiedV2{CodeSeq: c.Seq, Channel: c.Channel, Address: c.Address, Purpose: c.Purpose, At: now}}, nil
	}
	return []events.Event{events.OTPAttemptFailedV2{CodeSeq: c.Seq, Client: client, AttemptsLeft: left - 1,
		ConsecutiveFailures: s.Consecutive + 1, At: now}}, nil
}

// Consumed returns the code that the verified event at history[i] consumed, as it was just
// before (ok false when history[i] is not a verified event). A replayed verify checks the
// presented code against it again.
func Consumed(history []events.Event, i int) (Code, bool) {
	s := Replay(history[:i])
	switch e := history[i].(type) {
	case events.OTPVerifiedV2:
		return s.Code, e.CodeSeq == s.Code.Seq
	case events.OTPVerified:
		return s.Code, e.Nonce != "" && e.Nonce == s.Code.Nonce
	}
	return Code{}, false
}

// Verified is a consumed code as Outcome reports it.
type Verified struct {
	Channel, Address, Purpose string
}

// Outcome reads the events Verify returned (or that a replay found): the verified code on
// success, otherwise ErrInvalidCode with the attempts left, or ErrTooManyAttempts when that was
// the client's last attempt on the code.
func Outcome(evs []events.Event) (verified Verified, attemptsLeft int, err error) {
	err = ErrExpired
	for _, e := range evs {
		switch e := e.(type) {
		case events.OTPVerifiedV2:
			return Verified{Channel: e.Channel, Address: e.Address, Purpose: e.Purpose}, 0, nil
		case events.OTPVerified:
			return Verified{Channel: e.Channel, Address: e.Address, Purpose: e.Purpose}, 0, nil
		case events.OTPAttemptFailedV2:
			if e.AttemptsLeft == 0 {
				return Verified{}, 0, ErrTooManyAttempts
			}
			attemptsLeft, err = e.AttemptsLeft, ErrInvalidCode
		case events.OTPAttemptFailed:
			attemptsLeft, err = e.AttemptsLeft, ErrInvalidCode
		case events.OTPCancelled:
			return Verified{}, 0, ErrTooManyAttempts
		}
	}
	return Verified{}, attemptsLeft, err
}
