package events

import "time"

// Event types of account streams ("account-<uuid>"): a user's identity, plan, and sign-in sessions.
const (
	TypeAccountRegistered = "account.registered.v1"
	TypePlanChanged       = "account.plan_changed.v1"
	TypeSessionStarted    = "account.session_started.v1"
	TypeSessionRefreshed  = "account.session_refreshed.v1"
	TypeSessionRevoked    = "account.session_revoked.v1"

	TypeSessionStartedV2   = "account.session_started.v2"
	TypeSessionRefreshedV2 = "account.session_refreshed.v2"

	TypeSessionExtended = "account.session_extended.v1"
	TypeTrialStarted    = "account.trial_started.v1"
	TypeTrialEnded      = "account.trial_ended.v1"
)

// PlanLimits are the quotas of a plan as they applied when the plan was granted. Events carry
// them so that the read model and every consumer see the limits the account actually has without
// consulting a tier table that may change later; -1 means unlimited.
type PlanLimits struct {
	MaxProjects         int   `json:"maxProjects"`
	MaxStorageBytes     int64 `json:"maxStorageBytes"`
	MaxFilesPerProject  int   `json:"maxFilesPerProject"`
	MaxVisitorsPerMonth int   `json:"maxVisitorsPerMonth"`
}

// AccountRegistered is the creation of an account by its first sign-in. Exactly one of Email and
// Phone is set (normalized: lowercase e-mail, E.164 phone).
type AccountRegistered struct {
	AccountID string     `json:"accountId"`
	Email     string     `json:"email,omitempty"`
	Phone     string     `json:"phone,omitempty"`
	Plan      string     `json:"plan"`
	Limits    PlanLimits `json:"limits"`
	At        time.Time  `json:"at"`
}

// EventType implements Event.
func (AccountRegistered) EventType() string { return TypeAccountRegistered }

// PlanChanged moves an account to another plan (litehost admin set-plan).
type PlanChanged struct {
	AccountID    string     `json:"accountId"`
	Plan         string     `json:"plan"`
	PreviousPlan string     `json:"previousPlan"`
	Limits       PlanLimits `json:"limits"`
	At           time.Time  `json:"at"`
}

// EventType implements Event.
func (PlanChanged) EventType() string { return TypePlanChanged }

// SessionStarted is a sign-in of the first release, superseded by account.session_started.v2: it
// carried HMACs of the key and refresh token. Still decoded; the credentials it names are no
// longer accepted (their holders sign in again).
type SessionStarted struct {
	AccountID        string    `json:"accountId"`
	SessionID        string    `json:"sessionId"`
	KeyHash          string    `json:"keyHash"`
	ExpiresAt        time.Time `json:"expiresAt"`
	RefreshHash      string    `json:"refreshHash"`
	RefreshExpiresAt time.Time `json:"refreshExpiresAt"`
	At               time.Time `json:"at"`
}

// EventType implements Event.
func (SessionStarted) EventType() string { return TypeSessionStarted }

// SessionRefreshed is a rotation of the first release, superseded by account.session_refreshed.v2:
// it carried HMACs of the keys and refresh tokens. Still decoded; no longer appended.
type SessionRefreshed struct {
	AccountID           string    `json:"accountId"`
	SessionID           string    `json:"sessionId"`
	PreviousKeyHash     string    `json:"previousKeyHash"`
	PreviousRefreshHash string    `json:"previousRefreshHash"`
	KeyHash             string    `json:"keyHash"`
	ExpiresAt           time.Time `json:"expiresAt"`
	RefreshHash         string    `json:"refreshHash"`
	RefreshExpiresAt    time.Time `json:"refreshExpiresAt"`
	At                  time.Time `json:"at"`
}

// EventType implements Event.
func (SessionRefreshed) EventType() string { return TypeSessionRefreshed }

// SessionStartedV2 is a sign-in: a new session with its first API key and refresh token. Both
// are named by their IDs only: a credential is its ID plus a MAC of the ID under the server
// secret, and the MAC is never stored, so nothing here is derived from a credential's secret part.
type SessionStartedV2 struct {
	AccountID string `json:"accountId"`
	SessionID string `json:"sessionId"`
	// KeyID names the session's API key (not a secret: the key is the ID plus a MAC of it).
	KeyID     string    `json:"keyId"`
	ExpiresAt time.Time `json:"expiresAt"`
	// RefreshTokenID names the session's refresh token (not a secret either).
	RefreshTokenID   string    `json:"refreshTokenId"`
	RefreshExpiresAt time.Time `json:"refreshExpiresAt"`
	At               time.Time `json:"at"`
}

// EventType implements Event.
func (SessionStartedV2) EventType() string { return TypeSessionStartedV2 }

// SessionRefreshedV2 rotates a session's API key and refresh token: the previous key and refresh
// token stop working, and presenting that refresh token again revokes the session.
type SessionRefreshedV2 struct {
	AccountID string `json:"accountId"`
	SessionID string `json:"sessionId"`
	// PreviousKeyID names the API key this rotation retired.
	PreviousKeyID string `json:"previousKeyId"`
	// PreviousRefreshTokenID names the refresh token this rotation retired.
	PreviousRefreshTokenID string `json:"previousRefreshTokenId"`
	// KeyID names the new API key.
	KeyID     string    `json:"keyId"`
	ExpiresAt time.Time `json:"expiresAt"`
	// RefreshTokenID names the new refresh token.
	RefreshTokenID   string    `json:"refreshTokenId"`
	RefreshExpiresAt time.Time `json:"refreshExpiresAt"`
	At               time.Time `json:"at"`
}

// EventType implements Event.
func (SessionRefreshedV2) EventType() string { return TypeSessionRefreshedV2 }

// SessionExtended renews a session in use: its current API key (and the refresh token with it)
// now expires later, LITEHOST_KEY_IDLE_TTL after a use. Appended at most once a day per session,
// when a use finds the stored expiry more than a day behind, so a key expires only after that
// long without use and requests do not each write.
type SessionExtended struct {
	AccountID string `json:"accountId"`
	SessionID string `json:"sessionId"`
	// KeyID names the API key whose use renewed the session.
	KeyID            string    `json:"keyId"`
	ExpiresAt        time.Time `json:"expiresAt"`
	RefreshExpiresAt time.Time `json:"refreshExpiresAt"`
	At               time.Time `json:"at"`
}

// EventType implements Event.
func (SessionExtended) EventType() string { return TypeSessionExtended }

// TrialStarted gives a new account a paid plan for a while (LITEHOST_TRIAL): the account was
// registered on Plan, and at EndsAt the trial process moves it to the free plan unless the
// plan was set otherwise first.
type TrialStarted struct {
	AccountID string    `json:"accountId"`
	Plan      string    `json:"plan"`
	EndsAt    time.Time `json:"endsAt"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (TrialStarted) EventType() string { return TypeTrialStarted }

// Reasons a trial ends.
const (
	TrialEndReasonExpired = "expired"  // its time ran out; an account.plan_changed.v1 to free follows
	TrialEndReasonPlanSet = "plan_set" // an operator set the plan during the trial; that plan stays
)

// TrialEnded closes an account's trial: no later plan change comes from it.
type TrialEnded struct {
	AccountID string    `json:"accountId"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (TrialEnded) EventType() string { return TypeTrialEnded }

// Reasons a session ends.
const (
	RevokeReasonClient       = "client_revoked" // POST /v1/auth/revoke
	RevokeReasonRefreshReuse = "refresh_reuse"  // an already-rotated refresh token came back: likely stolen
)

// SessionRevoked ends a session: its API key and refresh token stop working for good.
type SessionRevoked struct {
	AccountID string    `json:"accountId"`
	SessionID string    `json:"sessionId"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (SessionRevoked) EventType() string { return TypeSessionRevoked }

// decodeAccount decodes the events of account streams.
func decodeAccount(eventType string, data []byte) (Event, error) {
	switch eventType {
	case TypeAccountRegistered:
		return unmarshal[AccountRegistered](data)
	case TypePlanChanged:
		return unmarshal[PlanChanged](data)
	case TypeSessionStarted:
		return unmarshal[SessionStarted](data)
	case TypeSessionRefreshed:
		return unmarshal[SessionRefreshed](data)
	case TypeSessionRevoked:
		return unmarshal[SessionRevoked](data)
	case TypeSessionStartedV2:
		return unmarshal[SessionStartedV2](data)
	case TypeSessionRefreshedV2:
		return unmarshal[SessionRefreshedV2](data)
	case TypeSessionExtended:
		return unmarshal[SessionExtended](data)
	case TypeTrialStarted:
		return unmarshal[TrialStarted](data)
	case TypeTrialEnded:
		return unmarshal[TrialEnded](data)
	}
	return nil, ErrUnknownType
}
