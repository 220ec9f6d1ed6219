package commands

import (
	"encoding/binary"
	"fmt"

	"github.com/litehost/litehost/events/secret"
)

// purposeOTPCheck separates the hash stored in events (to check a presented code) from the HMAC
// that derives the code from its nonce, so neither can be computed from the other.
const purposeOTPCheck = secret.PurposeOTPCode + "-check"

// OTPStream is the stream of an identifier's codes: "otp-" and the keyed hash of the normalised
// identifier, so the address never appears in a stream name.
func OTPStream(keys *secret.Keyring, normalized string) string {
	return "otp-" + OTPIdentifierHash(keys, normalized)
}

// OTPIdentifierHash is the keyed hash of a normalised identifier: the id part of its otp stream.
func OTPIdentifierHash(keys *secret.Keyring, normalized string) string {
	return keys.Hash(secret.PurposeIdentifier, normalized)
}

// OTPCode derives the six-digit code of a nonce. Only the nonce is stored (in otp.requested.v1):
// the request path and the mailer both derive the code from it with the server secret, so the code
// itself is never written anywhere. Reducing 64 random bits mod 10^6 has a bias below 10^-13.
func OTPCode(keys *secret.Keyring, nonce string) string {
	sum := keys.Sum(secret.PurposeOTPCode, nonce)
	return fmt.Sprintf("%06d", binary.BigEndian.Uint64(sum[:8])%1_000_000)
}

// otpCodeHash is what otp.requested.v1 stores to check a presented code. It binds the code to the
// identifier, so equal codes of two identifiers have unrelated hashes.
func otpCodeHash(keys *secret.Keyring, normalized, code string) string {
	return keys.Hash(purposeOTPCheck, OTPIdentifierHash(keys, normalized)+":"+code)
}

// otpCodeMatches compares a presented code with a stored hash in constant time.
func otpCodeMatches(keys *secret.Keyring, normalized, code, codeHash string) bool {
	return keys.Equal(purposeOTPCheck, OTPIdentifierHash(keys, normalized)+":"+code, codeHash)
}
