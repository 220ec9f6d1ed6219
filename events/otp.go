package events

import "time"

// OTP event type names (stream otp-<hmac of the identifier>).
const (
	TypeOTPRequested     = "otp.requested.v1"
	TypeOTPAttemptFailed = "otp.attempt_failed.v1"
	TypeOTPVerified      = "otp.verified.v1"
	TypeOTPCancelled     = "otp.cancelled.v1"
	TypeOTPLocked        = "otp.locked.v1"

	TypeOTPRequestedV2     = "otp.requested.v2"
	TypeOTPAttemptFailedV2 = "otp.attempt_failed.v2"
	TypeOTPVerifiedV2      = "otp.verified.v2"
)

// OTPRequested (superseded by otp.requested.v2, still decoded so open v1 codes verify) records
// that a one-time code was issued (Resend false) or that the open code was sent again (Resend
// true, same Nonce and CodeHash). The code itself is never stored: it is derived
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

// OTPAttemptFailed (superseded by otp.attempt_failed.v2) records a wrong code presented for the
// open code.
type OTPAttemptFailed struct {
	Nonce        string    `json:"nonce"`
	AttemptsLeft int       `json:"attemptsLeft"`
	At           time.Time `json:"at"`
}

// EventType implements Event.
func (OTPAttemptFailed) EventType() string { return TypeOTPAttemptFailed }

// OTPVerified (superseded by otp.verified.v2) records that the open code was presented correctly
// and is now consumed.
type OTPVerified struct {
	Nonce   string    `json:"nonce"`
	Channel string    `json:"channel"`
	Address string    `json:"address"`
	Purpose string    `json:"purpose"`
	At      time.Time `json:"at"`
}

// EventType implements Event.
func (OTPVerified) EventType() string { return TypeOTPVerified }

// OTPCancelled (no longer written: wrong codes now exhaust the failing client's attempts, not the
// code) records that the open code can no longer be used (too many wrong attempts).
type OTPCancelled struct {
	Nonce  string    `json:"nonce"`
	Reason string    `json:"reason"` // "too_many_attempts"
	At     time.Time `json:"at"`
}

// EventType implements Event.
func (OTPCancelled) EventType() string { return TypeOTPCancelled }

// OTPLocked (no longer written: a stranger could lock an owner out with it) records that the
// identifier may not request codes until LockedUntil.
type OTPLocked struct {
	LockedUntil time.Time `json:"lockedUntil"`
	At          time.Time `json:"at"`
}

// EventType implements Event.
func (OTPLocked) EventType() string { return TypeOTPLocked }

// OTPRequestedV2 records that a one-time code was issued (Resend false) or that the open code was
// sent again (Resend true, same CodeSeq and IssuedAt). It holds no secret and nothing a code can be
// computed from without the server secret: the code is derived with the server secret from the
// identifier, Code and IssuedAt, and verify derives it again to compare. Address is the
// normalised e-mail or E.164 phone number the mailer delivers to.
type OTPRequestedV2 struct {
	Channel string `json:"channel"` // "email" or "phone"
	Address string `json:"address"`
	Purpose string `json:"purpose"` // "signin" or "signup"
	// CodeSeq numbers the identifier's codes: 1 for its first code, then one more for each new
	// code (a re-send keeps the number).
	CodeSeq int `json:"codeSeq"`
	// IssuedAt is when this code was first issued (UTC); a re-send keeps it.
	IssuedAt time.Time `json:"issuedAt"`
	// Client is the keyed hash of the requesting client's network (IPv4 address or IPv6 /64),
	// so request limits count per client; never the address itself.
	Client      string    `json:"client"`
	Resend      bool      `json:"resend,omitempty"`
	RequestedAt time.Time `json:"requestedAt"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// EventType implements Event.
func (OTPRequestedV2) EventType() string { return TypeOTPRequestedV2 }

// OTPAttemptFailedV2 records a wrong code presented for the open code by one client. Failures
// count per client (the client that fails is the one throttled) and, for the identifier, as
// consecutive failures that only a verified code ends.
type OTPAttemptFailedV2 struct {
	// CodeSeq is the number of the code the attempt was for (see otp.requested.v2).
	CodeSeq int `json:"codeSeq"`
	// Client is the keyed hash of the failing client's network (IPv4 address or IPv6 /64).
	Client string `json:"client"`
	// AttemptsLeft is how many more wrong codes this client may try on this code.
	AttemptsLeft int `json:"attemptsLeft"`
	// ConsecutiveFailures counts the identifier's wrong codes since its last verified code,
	// this one included.
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	At                  time.Time `json:"at"`
}

// EventType implements Event.
func (OTPAttemptFailedV2) EventType() string { return TypeOTPAttemptFailedV2 }

// OTPVerifiedV2 records that the open code was presented correctly and is now consumed; it ends
// the identifier's run of consecutive failures.
type OTPVerifiedV2 struct {
	// CodeSeq is the number of the consumed code (see otp.requested.v2).
	CodeSeq int       `json:"codeSeq"`
	Channel string    `json:"channel"`
	Address string    `json:"address"`
	Purpose string    `json:"purpose"`
	At      time.Time `json:"at"`
}

// EventType implements Event.
func (OTPVerifiedV2) EventType() string { return TypeOTPVerifiedV2 }

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
	case TypeOTPRequestedV2:
		return unmarshal[OTPRequestedV2](data)
	case TypeOTPAttemptFailedV2:
		return unmarshal[OTPAttemptFailedV2](data)
	case TypeOTPVerifiedV2:
		return unmarshal[OTPVerifiedV2](data)
	}
	return nil, ErrUnknownType
}
