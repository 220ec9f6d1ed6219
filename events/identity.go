package events

import "time"

// TypeIdentityClaimed is the only event of identity streams ("identity-<hmac of the normalized
// e-mail or phone>"). It is appended with NoStream, so one identifier belongs to one account
// even when two first sign-ins race.
const TypeIdentityClaimed = "identity.claimed.v1"

// IdentityClaimed reserves an identifier for an account. The identifier itself is not repeated
// here: the stream name holds its HMAC and the account's registration holds it in clear.
type IdentityClaimed struct {
	AccountID string    `json:"accountId"`
	Kind      string    `json:"kind"` // "email" or "phone"
	At        time.Time `json:"at"`
}

// EventType implements Event.
func (IdentityClaimed) EventType() string { return TypeIdentityClaimed }

// decodeIdentity decodes the events of identity streams.
func decodeIdentity(eventType string, data []byte) (Event, error) {
	switch eventType {
	case TypeIdentityClaimed:
		return unmarshal[IdentityClaimed](data)
	}
	return nil, ErrUnknownType
}
