package commands

import (
	"time"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events"
)

// Identifier kinds: how a person is known and reached.
const (
	IdentifierEmail = "email"
	IdentifierPhone = "phone"
)

// Identifier is a person's verified e-mail address or phone number, normalised (lowercased,
// trimmed e-mail; E.164 phone).
type Identifier struct {
	Kind  string // IdentifierEmail or IdentifierPhone
	Value string
}

// SignInResult is what a successful sign-in issued. APIKey and RefreshToken are the only copies
// in clear: the events hold their HMACs.
type SignInResult struct {
	AccountID string
	// SessionID names the session started (set by StartSession).
	SessionID        string
	Email, Phone     string
	APIKey           string
	ExpiresAt        time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	AccountCreated   bool
	// Position is the global position of the last event the sign-in appended, for Reply to wait on.
	Position events.Position
}

// ErrSignupDisabled refuses a verified identifier that has no account while auto-create is off.
const ErrSignupDisabled = domain.Error("no account for this identifier and sign-up is disabled")
