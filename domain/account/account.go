// Package account holds the rules of an account: its registration, its plan, and its sign-in
// sessions with their rotating API keys and refresh tokens.
//
// Rules:
//   - An account is registered once, by its first sign-in: on the free plan, or with a trial
//     length on TrialTier until then (account.trial_started.v1).
//   - A plan is one of the tiers below; changing to the current plan changes nothing, except
//     that any plan change during a trial ends the trial: the plan set stays.
//   - A trial that is due ends once: account.trial_ended.v1, then the move to free.
//   - A sign-in starts a session: one API key valid for the idle window (DefaultKeyIdleTTL) and
//     one refresh token valid at least RefreshTTL and never less than the key.
//   - A use of the current key renews the session (Extend) when its expiry is more than
//     RenewStep behind use+idle window: at most one event a day, never for a revoked, expired or
//     rotated-away key. The refresh token's expiry follows.
//   - Refreshing with a session's current refresh token rotates both: the old key and the old
//     refresh token stop working at once.
//   - Presenting a refresh token that was already rotated away means two parties hold it (one of
//     them a thief); the whole session is revoked.
//   - A revoked session never works again; revoking it twice changes nothing.
//
// Keys and tokens reach this package only as their IDs; it never sees them in clear. Sessions of
// the first release (account.session_started.v1 / session_refreshed.v1, which named credentials
// by HMAC) are not sessions here: their credentials were retired with that format.
package account

import (
	"maps"
	"time"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// Lifetimes of the credentials of a session (DESIGN §6, §12, spec §4.2 [S4]). A key lives the
// idle window (LITEHOST_KEY_IDLE_TTL, DefaultKeyIdleTTL) from its issue or its last renewal; a
// refresh token lives at least RefreshTTL and never less than the key it came with.
const (
	DefaultKeyIdleTTL = 90 * 24 * time.Hour
	RefreshTTL        = 30 * 24 * time.Hour
	// RenewStep is how far behind "now + idle window" a key's expiry may fall before a use
	// renews it: the bound of one renewal event per session and day.
	RenewStep = 24 * time.Hour
)

// TrialTier is the plan a trial gives (spec §2.1 [S4]: a 7-day Pro trial).
const TrialTier = TierPro

// Rule errors.
const (
	ErrNotRegistered   = domain.Error("account not found")
	ErrRefreshInvalid  = domain.Error("refresh token is invalid or revoked")
	ErrRefreshExpired  = domain.Error("refresh token has expired; sign in again")
	ErrRefreshReused   = domain.Error("refresh token was already used; the session has been revoked, sign in again")
	ErrSessionNotFound = domain.Error("session not found")
	// ErrSessionRetired answers a retried sign-in whose session was started under the first
	// release's credential format: that key cannot be shown again.
	ErrSessionRetired = domain.Error("this sign-in was answered with a credential format that is no longer accepted; sign in again")
)

// Session is one sign-in of an account. Its credentials are known here by their IDs only.
type Session struct {
	ID               string
	KeyID            string
	ExpiresAt        time.Time
	RefreshID        string
	RefreshExpiresAt time.Time
	// RotatedRefresh holds every refresh token ID this session has rotated away, to recognise reuse.
	RotatedRefresh []string
	Revoked        bool
	StartedAt      time.Time
}

// Trial is an account's running trial; zero when it has none.
type Trial struct {
	Plan   string
	EndsAt time.Time
}

// State is an account as its events leave it.
type State struct {
	Registered bool
	ID         string
	Email      string
	Phone      string
	Plan       string
	Limits     events.PlanLimits
	Trial      Trial
	Sessions   map[string]Session
}

// Replay folds a stream's history into a State.
func Replay(history []events.Event) State {
	var s State
	for _, e := range history {
		s = Evolve(s, e)
	}
	return s
}

// Evolve applies one event. It never fails and ignores events of other aggregates. The session
// map is copied before a change so that earlier States stay untouched.
func Evolve(s State, e events.Event) State {
	switch e := e.(type) {
	case events.AccountRegistered:
		s.Registered = true
		s.ID, s.Email, s.Phone = e.AccountID, e.Email, e.Phone
		s.Plan, s.Limits = e.Plan, e.Limits
	case events.PlanChanged:
		s.Plan, s.Limits = e.Plan, e.Limits
	case events.TrialStarted:
		s.Trial = Trial{Plan: e.Plan, EndsAt: e.EndsAt}
	case events.TrialEnded:
		s.Trial = Trial{}
	case events.SessionExtended:
		ss, ok := s.Sessions[e.SessionID]
		if !ok || ss.KeyID != e.KeyID {
			return s
		}
		ss.ExpiresAt, ss.RefreshExpiresAt = e.ExpiresAt, e.RefreshExpiresAt
		s.Sessions = maps.Clone(s.Sessions)
		s.Sessions[e.SessionID] = ss
	case events.SessionStartedV2:
		s.Sessions = maps.Clone(s.Sessions)
		if s.Sessions == nil {
			s.Sessions = map[string]Session{}
		}
		s.Sessions[e.SessionID] = Session{
			ID: e.SessionID, KeyID: e.KeyID, ExpiresAt: e.ExpiresAt,
			RefreshID: e.RefreshTokenID, RefreshExpiresAt: e.RefreshExpiresAt, StartedAt: e.At,
		}
	case events.SessionRefreshedV2:
		ss, ok := s.Sessions[e.SessionID]
		if !ok {
			return s
		}
		ss.RotatedRefresh = append(ss.RotatedRefresh[:len(ss.RotatedRefresh):len(ss.RotatedRefresh)], e.PreviousRefreshTokenID)
		ss.KeyID, ss.ExpiresAt = e.KeyID, e.ExpiresAt
		ss.RefreshID, ss.RefreshExpiresAt = e.RefreshTokenID, e.RefreshExpiresAt
		s.Sessions = maps.Clone(s.Sessions)
		s.Sessions[e.SessionID] = ss
	case events.SessionRevoked:
		ss, ok := s.Sessions[e.SessionID]
		if !ok {
			return s
		}
		ss.Revoked = true
		s.Sessions = maps.Clone(s.Sessions)
		s.Sessions[e.SessionID] = ss
	}
	return s
}

// Register creates the account: on the free plan, or, when trial is positive, on TrialTier with
// a trial that ends trial from now. An account that exists is left as it is. Exactly one of
// email and phone is expected, already normalized.
func Register(s State, accountID, email, phone string, trial time.Duration, now time.Time) ([]events.Event, error) {
	if s.Registered {
		return nil, nil
	}
	bad := domain.Invalid{}
	if accountID == "" {
		bad["accountId"] = "required"
	}
	if (email == "") == (phone == "") {
		bad["identifier"] = "exactly one of email and phone is required"
	}
	if len(bad) > 0 {
		return nil, bad
	}
	now = now.UTC()
	tier := TierFree
	if trial > 0 {
		tier = TrialTier
	}
	limits, _ := Limits(tier)
	out := []events.Event{events.AccountRegistered{
		AccountID: accountID, Email: email, Phone: phone, Plan: tier, Limits: limits, At: now,
	}}
	if trial > 0 {
		out = append(out, events.TrialStarted{AccountID: accountID, Plan: tier, EndsAt: now.Add(trial), At: now})
	}
	return out, nil
}

// EndTrial ends the account's trial once it is due (now at or after its end): the trial ends and
// the account moves to the free plan. No trial, or one not due yet, changes nothing.
func EndTrial(s State, now time.Time) ([]events.Event, error) {
	now = now.UTC()
	if !s.Registered || s.Trial.EndsAt.IsZero() || now.Before(s.Trial.EndsAt) {
		return nil, nil
	}
	out := []events.Event{events.TrialEnded{AccountID: s.ID, Reason: events.TrialEndReasonExpired, At: now}}
	if s.Plan != TierFree {
		limits, _ := Limits(TierFree)
		out = append(out, events.PlanChanged{AccountID: s.ID, Plan: TierFree, PreviousPlan: s.Plan, Limits: limits, At: now})
	}
	return out, nil
}

// keyLifetimes returns the expiries of a key and refresh token issued or renewed at now.
func keyLifetimes(idle time.Duration, now time.Time) (key, refresh time.Time) {
	if idle <= 0 {
		idle = DefaultKeyIdleTTL
	}
	return now.Add(idle), now.Add(max(idle, RefreshTTL))
}

// Extend renews the session whose current key is keyID after a use at now: the key then expires
// idle after now, and the refresh token no earlier. It decides nothing when the key's expiry is
// within RenewStep of that already (renewed today), or when the session is revoked, the key was
// rotated away, or the key has expired: an expired key is never brought back.
func Extend(s State, sessionID, keyID string, idle time.Duration, now time.Time) ([]events.Event, error) {
	now = now.UTC()
	ss, ok := s.Sessions[sessionID]
	switch {
	case !s.Registered, !ok:
		return nil, ErrSessionNotFound
	case ss.Revoked, ss.KeyID != keyID, !now.Before(ss.ExpiresAt):
		return nil, nil
	}
	key, refresh := keyLifetimes(idle, now)
	if key.Sub(ss.ExpiresAt) <= RenewStep {
		return nil, nil
	}
	refresh = later(refresh, ss.RefreshExpiresAt)
	return []events.Event{events.SessionExtended{
		AccountID: s.ID, SessionID: ss.ID, KeyID: keyID, ExpiresAt: key, RefreshExpiresAt: refresh, At: now,
	}}, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// StartSession opens a new session whose key and refresh token have the given IDs; the key lives
// idle (DefaultKeyIdleTTL when not positive) unless renewed.
func StartSession(s State, sessionID, keyID, refreshID string, idle time.Duration, now time.Time) ([]events.Event, error) {
	if !s.Registered {
		return nil, ErrNotRegistered
	}
	if _, ok := s.Sessions[sessionID]; ok {
		return nil, nil // the same session started again: already done
	}
	now = now.UTC()
	key, refresh := keyLifetimes(idle, now)
	return []events.Event{events.SessionStartedV2{
		AccountID: s.ID, SessionID: sessionID, KeyID: keyID, ExpiresAt: key,
		RefreshTokenID: refreshID, RefreshExpiresAt: refresh, At: now,
	}}, nil
}

// Refresh rotates the session whose current refresh token has the ID refreshID. A refresh
// token that was rotated away before revokes its session: the decision is then that one
// SessionRevoked event, and callers report ErrRefreshReused once it is stored.
func Refresh(s State, refreshID, newKeyID, newRefreshID string, idle time.Duration, now time.Time) ([]events.Event, error) {
	now = now.UTC()
	ss, current, ok := s.sessionByRefresh(refreshID)
	switch {
	case !ok:
		return nil, ErrRefreshInvalid
	case ss.Revoked:
		return nil, ErrRefreshInvalid
	case !current:
		return reuse(s, ss, now), nil
	case !now.Before(ss.RefreshExpiresAt):
		return nil, ErrRefreshExpired
	}
	key, refresh := keyLifetimes(idle, now)
	return []events.Event{events.SessionRefreshedV2{
		AccountID: s.ID, SessionID: ss.ID,
		PreviousKeyID: ss.KeyID, PreviousRefreshTokenID: ss.RefreshID,
		KeyID: newKeyID, ExpiresAt: key,
		RefreshTokenID: newRefreshID, RefreshExpiresAt: refresh, At: now,
	}}, nil
}

// RefreshAgain decides a refresh that was already applied, presented again: done is the rotation
// it made. Showing that rotation's credentials again is safe only while they are still the
// session's current ones and the caller is known to be the one that sent the first request
// (confirmed: a retry within the idempotency window, or a first attempt that was never answered).
// Otherwise the presented token is one that was rotated away, so it is treated as reuse: the
// session is revoked. No events and no error means: show done's credentials again.
func RefreshAgain(s State, done events.SessionRefreshedV2, confirmed bool, now time.Time) ([]events.Event, error) {
	now = now.UTC()
	ss, ok := s.Sessions[done.SessionID]
	switch {
	case !ok, ss.Revoked:
		return nil, ErrRefreshInvalid
	case ss.RefreshID != done.RefreshTokenID, !confirmed:
		return reuse(s, ss, now), nil
	case !now.Before(ss.RefreshExpiresAt):
		return nil, ErrRefreshExpired
	}
	return nil, nil
}

func reuse(s State, ss Session, now time.Time) []events.Event {
	return []events.Event{events.SessionRevoked{
		AccountID: s.ID, SessionID: ss.ID, Reason: events.RevokeReasonRefreshReuse, At: now,
	}}
}

// SessionByRefresh finds the session a refresh token ID belongs to, current or rotated away.
func (s State) SessionByRefresh(refreshID string) (Session, bool) {
	ss, _, ok := s.sessionByRefresh(refreshID)
	return ss, ok
}

func (s State) sessionByRefresh(id string) (ss Session, current, ok bool) {
	if id == "" {
		return Session{}, false, false
	}
	for _, ss := range s.Sessions {
		if ss.RefreshID == id {
			return ss, true, true
		}
		for _, old := range ss.RotatedRefresh {
			if old == id {
				return ss, false, true
			}
		}
	}
	return Session{}, false, false
}

// Revoke ends a session for reason; an already revoked session is left as it is.
func Revoke(s State, sessionID, reason string, now time.Time) ([]events.Event, error) {
	ss, ok := s.Sessions[sessionID]
	switch {
	case !s.Registered, !ok:
		return nil, ErrSessionNotFound
	case ss.Revoked:
		return nil, nil
	}
	return []events.Event{events.SessionRevoked{AccountID: s.ID, SessionID: sessionID, Reason: reason, At: now.UTC()}}, nil
}

// ChangePlan moves the account to tier with that tier's current limits. During a trial it ends
// the trial first, even when tier is the trial's own plan: what an operator set is not undone
// when the trial would have ended.
func ChangePlan(s State, tier string, now time.Time) ([]events.Event, error) {
	limits, ok := Limits(tier)
	switch {
	case !ok:
		return nil, domain.Invalid{"tier": "unknown tier; one of " + tierList()}
	case !s.Registered:
		return nil, ErrNotRegistered
	}
	now = now.UTC()
	var out []events.Event
	if !s.Trial.EndsAt.IsZero() {
		out = append(out, events.TrialEnded{AccountID: s.ID, Reason: events.TrialEndReasonPlanSet, At: now})
	}
	if s.Plan != tier {
		out = append(out, events.PlanChanged{AccountID: s.ID, Plan: tier, PreviousPlan: s.Plan, Limits: limits, At: now})
	}
	return out, nil
}
