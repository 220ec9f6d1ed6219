package events

import "time"

// OTP event type names (stream otp-<hmac of the identifier>).
const (
	TypeOTPRequested     = "otp.requested.v1"
	TypeOTPAttemptFailed = "otp.attempt_failed.v1"
	TypeOTPVerified      = "otp.verified.v1"
	TypeOTPCancelled     = "otp.cancelled.v1"
	TypeOTPLocked        = "otp.locked.v1"
)

// OTPRequested records that a one-time code was issued (Resend false) or that the open code was
// sent again (Resend true, same Nonce and CodeHash). The code itself is never stored: it is derived
// from Nonce with the server secret, and CodeHash lets verify check a presented code. Address is
// the normalised e-mail or E.164 phone number the mailer delivers to.
type OTPRequested struct {
	Channel     string    `json:"channel"` // "email" or "phone"
	Address     string    `json:"address"`
	Purpose     string    `json:"purpose"` // "signin" or "signup"
	Nonce       string    `json:"nonce"`
	CodeHash    string    `json:"codeHash"`
	Resend      bool      `json:"resend,omitempty"`
	RequestedAt time.Time `json:"requestedAt"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// EventType implements Event.
func (OTPRequested) EventType() string { return TypeOTPRequested }

// OTPAttemptFailed records a wrong code presented for the open code.
type OTPAttemptFailed struct {
	Nonce        string    `json:"nonce"`
	AttemptsLeft int       `json:"attemptsLeft"`
	At           time.Time `json:"at"`
}

// EventType implements Event.
func (OTPAttemptFailed) EventType() string { return TypeOTPAttemptFailed }

// OTPVerified records that the open code was presented correctly and is now consumed.
type OTPVerified struct {
	Nonce   string    `json:"nonce"`
	Channel string    `json:"channel"`
	Address string    `json:"address"`
	Purpose string    `json:"purpose"`
	At      time.Time `json:"at"`
}

// EventType implements Event.
func (OTPVerified) EventType() string { return TypeOTPVerified }

// OTPCancelled records that the open code can no longer be used (too many wrong attempts).
type OTPCancelled struct {
	Nonce  string    `json:"nonce"`
	Reason string    `json:"reason"` // "too_many_attempts"
	At     time.Time `json:"at"`
}

// EventType implements Event.
func (OTPCancelled) EventType() string { return TypeOTPCancelled }

// OTPLocked records that the identifier may not request codes until LockedUntil.
type OTPLocked struct {
	LockedUntil time.Time `json:"lockedUntil"`
	At          time.Time `json:"at"`
}

// EventType implements Event.
func (OTPLocked) EventType() string { return TypeOTPLocked }

// decodeOTP decodes the events of otp streams.
func decodeOTP(eventType string, data []byte) (Event, error) {
	switch eventType {
	case TypeOTPRequested:
		return unmarshal[OTPRequested](data)
	case TypeOTPAttemptFailed:
		return unmarshal[OTPAttemptFailed](data)
	case TypeOTPVerified:
		return unmarshal[OTPVerified](data)
	case TypeOTPCancelled:
		return unmarshal[OTPCancelled](data)
	case TypeOTPLocked:
		return unmarshal[OTPLocked](data)
	}
	return nil, ErrUnknownType
}
