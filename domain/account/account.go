// Package account holds the rules of an account: its registration, its plan, and its sign-in
// sessions with their rotating API keys and refresh tokens.
//
// Rules:
//   - An account is registered once, on the free plan, by its first sign-in.
//   - A plan is one of the tiers below; changing to the current plan changes nothing.
//   - A sign-in starts a session: one API key valid KeyTTL and one refresh token valid RefreshTTL.
//   - Refreshing with a session's current refresh token rotates both: the old key and the old
//     refresh token stop working at once.
//   - Presenting a refresh token that was already rotated away means two parties hold it (one of
//     them a thief); the whole session is revoked.
//   - A revoked session never works again; revoking it twice changes nothing.
//
// Keys and tokens reach this package only as HMACs; it never sees them in clear.
package account

import (
	"maps"
	"time"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// Lifetimes of the credentials of a session (DESIGN §6, §12).
const (
	KeyTTL     = 7 * 24 * time.Hour
	RefreshTTL = 30 * 24 * time.Hour
)

// Rule errors.
const (
	ErrNotRegistered   = domain.Error("account not found")
	ErrRefreshInvalid  = domain.Error("refresh token is invalid or revoked")
	ErrRefreshExpired  = domain.Error("refresh token has expired; sign in again")
	ErrRefreshReused   = domain.Error("refresh token was already used; the session has been revoked, sign in again")
	ErrSessionNotFound = domain.Error("session not found")
)

// Session is one sign-in of an account.
type Session struct {
	ID               string
	KeyHash          string
	ExpiresAt        time.Time
	RefreshHash      string
	RefreshExpiresAt time.Time
	// RotatedRefresh holds every refresh hash this session has rotated away, to recognise reuse.
	RotatedRefresh []string
	Revoked        bool
	StartedAt      time.Time
}

// State is an account as its events leave it.
type State struct {
	Registered bool
	ID         string
	Email      string
	Phone      string
	Plan       string
	Limits     events.PlanLimits
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
	case events.SessionStarted:
		s.Sessions = maps.Clone(s.Sessions)
		if s.Sessions == nil {
			s.Sessions = map[string]Session{}
		}
		s.Sessions[e.SessionID] = Session{
			ID: e.SessionID, KeyHash: e.KeyHash, ExpiresAt: e.ExpiresAt,
			RefreshHash: e.RefreshHash, RefreshExpiresAt: e.RefreshExpiresAt, StartedAt: e.At,
		}
	case events.SessionRefreshed:
		ss, ok := s.Sessions[e.SessionID]
		if !ok {
			return s
		}
		ss.RotatedRefresh = append(ss.RotatedRefresh[:len(ss.RotatedRefresh):len(ss.RotatedRefresh)], e.PreviousRefreshHash)
		ss.KeyHash, ss.ExpiresAt = e.KeyHash, e.ExpiresAt
		ss.RefreshHash, ss.RefreshExpiresAt = e.RefreshHash, e.RefreshExpiresAt
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

// Register creates the account on the free plan; an account that exists is left as it is.
// Exactly one of email and phone is expected, already normalized.
func Register(s State, accountID, email, phone string, now time.Time) ([]events.Event, error) {
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
	limits, _ := Limits(TierFree)
	return []events.Event{events.AccountRegistered{
		AccountID: accountID, Email: email, Phone: phone, Plan: TierFree, Limits: limits, At: now.UTC(),
	}}, nil
}

// StartSession opens a new session whose key and refresh token have the given HMACs.
func StartSession(s State, sessionID, keyHash, refreshHash string, now time.Time) ([]events.Event, error) {
	if !s.Registered {
		return nil, ErrNotRegistered
	}
	if _, ok := s.Sessions[sessionID]; ok {
		return nil, nil // the same session started again: already done
	}
	now = now.UTC()
	return []events.Event{events.SessionStarted{
		AccountID: s.ID, SessionID: sessionID, KeyHash: keyHash, ExpiresAt: now.Add(KeyTTL),
		RefreshHash: refreshHash, RefreshExpiresAt: now.Add(RefreshTTL), At: now,
	}}, nil
}

// Refresh rotates the session whose current refresh token has the HMAC refreshHash. A refresh
// token that was rotated away before revokes its session: the decision is then that one
// SessionRevoked event, and callers report ErrRefreshReused once it is stored.
func Refresh(s State, refreshHash, newKeyHash, newRefreshHash string, now time.Time) ([]events.Event, error) {
	now = now.UTC()
	ss, current, ok := s.sessionByRefresh(refreshHash)
	switch {
	case !ok:
		return nil, ErrRefreshInvalid
	case ss.Revoked:
		return nil, ErrRefreshInvalid
	case !current:
		return []events.Event{events.SessionRevoked{
			AccountID: s.ID, SessionID: ss.ID, Reason: events.RevokeReasonRefreshReuse, At: now,
		}}, nil
	case !now.Before(ss.RefreshExpiresAt):
		return nil, ErrRefreshExpired
	}
	return []events.Event{events.SessionRefreshed{
		AccountID: s.ID, SessionID: ss.ID,
		PreviousKeyHash: ss.KeyHash, PreviousRefreshHash: ss.RefreshHash,
		KeyHash: newKeyHash, ExpiresAt: now.Add(KeyTTL),
		RefreshHash: newRefreshHash, RefreshExpiresAt: now.Add(RefreshTTL), At: now,
	}}, nil
}

// SessionByRefresh finds the session a refresh HMAC belongs to, current or rotated away.
func (s State) SessionByRefresh(refreshHash string) (Session, bool) {
	ss, _, ok := s.sessionByRefresh(refreshHash)
	return ss, ok
}

func (s State) sessionByRefresh(h string) (ss Session, current, ok bool) {
	if h == "" {
		return Session{}, false, false
	}
	for _, ss := range s.Sessions {
		if ss.RefreshHash == h {
			return ss, true, true
		}
		for _, old := range ss.RotatedRefresh {
			if old == h {
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

// ChangePlan moves the account to tier with that tier's current limits.
func ChangePlan(s State, tier string, now time.Time) ([]events.Event, error) {
	limits, ok := Limits(tier)
	switch {
	case !ok:
		return nil, domain.Invalid{"tier": "unknown tier; one of " + tierList()}
	case !s.Registered:
		return nil, ErrNotRegistered
	case s.Plan == tier:
		return nil, nil
	}
	return []events.Event{events.PlanChanged{
		AccountID: s.ID, Plan: tier, PreviousPlan: s.Plan, Limits: limits, At: now.UTC(),
	}}, nil
}
