// Package secret derives the keyed hashes Litehost stores in place of secrets: OTP codes, API
// keys, refresh and claim tokens, and the e-mail addresses and phone numbers that appear in stream
// names. Everything is HMAC-SHA256 under LITEHOST_SECRET with a purpose label, so a hash made for
// one purpose can never be replayed as another.
package secret

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
)

// Purposes separate the uses of the one server secret.
const (
	PurposeIdentifier = "identifier"
	PurposeOTPCode    = "otp-code"
	PurposeAPIKey     = "api-key"
	PurposeRefresh    = "refresh-token"
	PurposeClaim      = "claim-token"
	PurposeIdempotent = "idempotency"
	// PurposeDomainChallenge derives a custom domain's DNS challenge token from its ID, so no
	// table holds the token and verification re-derives it (DomainChallenge).
	PurposeDomainChallenge = "domain-challenge-id"
	// PurposeFingerprint keys the fingerprint of a request made with an Idempotency-Key, kept
	// with its answer and in its events' metadata: keyed, so it cannot be inverted offline.
	PurposeFingerprint = "request-fingerprint"
	// PurposeClaimIssue derives a temporary project's claim token from its project ID, so a
	// replayed create shows the same token and nothing about the token needs to be stored.
	PurposeClaimIssue = "claim-token-issue"
	// PurposeRateBucket names rate-limit buckets in their table, so it holds no client address.
	PurposeRateBucket = "rate-bucket"
)

// MinKeyBytes is the shortest server secret accepted.
const MinKeyBytes = 32

// Keyring computes keyed hashes with the server secret.
type Keyring struct {
	key []byte
}

// New returns a Keyring over key, which must be at least MinKeyBytes long.
func New(key []byte) (*Keyring, error) {
	if len(key) < MinKeyBytes {
		return nil, errors.New("secret: key shorter than 32 bytes")
	}
	return &Keyring{key: append([]byte(nil), key...)}, nil
}

// Hash returns the hex HMAC-SHA256 of value for purpose.
func (k *Keyring) Hash(purpose, value string) string {
	return hex.EncodeToString(k.Sum(purpose, value))
}

// Sum returns the raw HMAC-SHA256 of value for purpose.
func (k *Keyring) Sum(purpose, value string) []byte {
	m := k.New(purpose)
	m.Write([]byte(value))
	return m.Sum(nil)
}

// New returns an HMAC-SHA256 for purpose to write a long value into piece by piece (a request
// body streamed from disk); its sum equals Sum(purpose, everything written).
func (k *Keyring) New(purpose string) hash.Hash {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	return m
}

// Equal compares a presented value with a stored hex hash in constant time.
func (k *Keyring) Equal(purpose, value, storedHex string) bool {
	want, err := hex.DecodeString(storedHex)
	if err != nil {
		return false
	}
	return hmac.Equal(k.Sum(purpose, value), want)
}

// DomainChallenge returns the DNS challenge token of the custom domain domainID: 32 hex
// characters (128 bits) of its HMAC. It is shown to the domain's owner only; anyone who knew it
// could not do more than the owner's DNS zone allows, but it names the domain's owner and stays
// off the feeds and out of the read models all the same.
func (k *Keyring) DomainChallenge(domainID string) string {
	return k.Hash(PurposeDomainChallenge, domainID)[:32]
}

// RandomHex returns n random bytes from crypto/rand, hex-encoded.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("secret: crypto/rand failed: " + err.Error()) // the OS CSPRNG never fails on Linux
	}
	return hex.EncodeToString(b)
}
