package commands

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/litehost/litehost/domain/otp"
	"github.com/litehost/litehost/events"
	"github.com/litehost/litehost/events/secret"
)

// purposeOTPCheck separates the hash stored in otp.requested.v1 (to check a presented code) from
// the HMAC that derives the code from its nonce, so neither can be computed from the other.
const purposeOTPCheck = secret.PurposeOTPCode + "-check"

// purposeOTPCodeV2 derives the codes of otp.requested.v2 from stream data; a separate purpose
// keeps its inputs apart from v1's nonces.
const purposeOTPCodeV2 = secret.PurposeOTPCode + "-v2"

// purposeOTPClient hashes a client's network for the otp stream: limits compare clients, and the
// stream never holds an IP address.
const purposeOTPClient = "otp-client"

// OTPStream is the stream of an identifier's codes: "otp-" and the keyed hash of the normalised
// identifier, so the address never appears in a stream name.
func OTPStream(keys *secret.Keyring, normalized string) string {
	return "otp-" + OTPIdentifierHash(keys, normalized)
}

// OTPIdentifierHash is the keyed hash of a normalised identifier: the id part of its otp stream.
func OTPIdentifierHash(keys *secret.Keyring, normalized string) string {
	return keys.Hash(secret.PurposeIdentifier, normalized)
}

// otpClient is how the otp stream names a client: the keyed hash of its limit group (IPv4
// address or IPv6 /64, see clientip.Group).
func otpClient(keys *secret.Keyring, group string) string {
	return keys.Hash(purposeOTPClient, group)
}

// OTPCode derives the six-digit code of a v1 nonce (otp.requested.v1, still verified until its
// open codes expire). Reducing 64 random bits mod 10^6 has a bias below 10^-13.
func OTPCode(keys *secret.Keyring, nonce string) string {
	return sixDigitsOf(keys.Sum(secret.PurposeOTPCode, nonce))
}

// OTPCodeV2 derives the code of an otp.requested.v2 event from the identifier, the code's number
// and its issue time, all of which the stream already holds: nothing derived from the code (no
// nonce, no hash of it) is ever stored, and without the server secret the inputs say nothing
// about the code. The number and the nanosecond issue time together never repeat for one
// identifier.
func OTPCodeV2(keys *secret.Keyring, normalized string, seq int, issuedAt time.Time) string {
	in := OTPIdentifierHash(keys, normalized) + "|" + strconv.Itoa(seq) + "|" + issuedAt.UTC().Format(time.RFC3339Nano)
	return sixDigitsOf(keys.Sum(purposeOTPCodeV2, in))
}

func sixDigitsOf(sum []byte) string {
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(sum[:8])%1_000_000)
}

// OTPCodeOf is the code an otp.requested event (v1 or v2) delivers; ok is false for any other
// event. The mailer sends it; tests read it from the stream the same way.
func OTPCodeOf(keys *secret.Keyring, ev events.Event) (code string, ok bool) {
	switch e := ev.(type) {
	case events.OTPRequested:
		return OTPCode(keys, e.Nonce), true
	case events.OTPRequestedV2:
		return OTPCodeV2(keys, e.Address, e.CodeSeq, e.IssuedAt), true
	}
	return "", false
}

// otpCodeHash is what otp.requested.v1 stored to check a presented code. It binds the code to the
// identifier, so equal codes of two identifiers have unrelated hashes.
func otpCodeHash(keys *secret.Keyring, normalized, code string) string {
	return keys.Hash(purposeOTPCheck, OTPIdentifierHash(keys, normalized)+":"+code)
}

// otpCodeCheck checks a presented code against an issued one in constant time: a v1 code by its
// stored hash, a v2 code by deriving it again.
func otpCodeCheck(keys *secret.Keyring, normalized, presented string) otp.CodeCheck {
	return func(c otp.Code) bool {
		if c.Nonce != "" {
			return c.CodeHash != "" && keys.Equal(purposeOTPCheck, OTPIdentifierHash(keys, normalized)+":"+presented, c.CodeHash)
		}
		want := OTPCodeV2(keys, normalized, c.Seq, c.IssuedAt)
		return subtle.ConstantTimeCompare([]byte(want), []byte(presented)) == 1
	}
}
