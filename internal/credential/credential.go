// Package credential builds and checks the bearer credentials Litehost hands out: API keys and
// refresh tokens. Each one is an ID plus a MAC of that ID under the server secret. Only the ID
// is ever stored (events, read models); the MAC is recomputed to check a presented credential,
// so nothing derived from a credential's secret part rests anywhere, and a forged credential is
// refused by the MAC before any lookup.
//
// Formats (public, unchanged from the first release):
//   - API key: "lh_live_" + 64 lowercase hex, the last 8 being the CRC-32 of the first 56, so a
//     secret scanner can tell a real leaked key from random hex without asking us. The 56 hex are
//     the 16-byte key ID and a 12-byte MAC.
//   - Refresh token: "lh_refresh_" + account UUID as 32 hex + "_" + 64 hex: the 16-byte token ID
//     and a 16-byte MAC over the account and the token ID. It names its account so a refresh can
//     load the account's stream directly.
package credential

import (
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events/secret"
)

// Prefixes of the two credential kinds.
const (
	APIKeyPrefix       = "lh_live_"
	RefreshTokenPrefix = "lh_refresh_"
)

// Keyring purposes of the MACs. They differ from secret.PurposeAPIKey and secret.PurposeRefresh
// (the purposes of the hashes the first release stored), so no old hash equals a new MAC.
const (
	purposeKeyMAC     = "api-key-mac"
	purposeRefreshMAC = "refresh-token-mac"
)

const (
	keyMACBytes     = 12 // 16-byte ID + 12-byte MAC = the 56 hex before the checksum
	refreshMACBytes = 16 // 16-byte ID + 16-byte MAC = 64 hex
)

// NewAPIKey returns the API key whose ID is id.
func NewAPIKey(k *secret.Keyring, id uuid.UUID) string {
	body := hex.EncodeToString(id[:]) + hex.EncodeToString(keyMAC(k, id))
	return APIKeyPrefix + body + checksum(body)
}

// WellFormedAPIKey reports whether s has the shape and checksum of an API key; it says nothing
// about whether we issued it.
func WellFormedAPIKey(s string) bool {
	body, ok := strings.CutPrefix(s, APIKeyPrefix)
	return ok && len(body) == 64 && lowerHex(body) && checksum(body[:56]) == body[56:]
}

// ParseAPIKey returns the ID of an API key this server issued (the MAC checked in constant
// time); ok is false for anything else.
func ParseAPIKey(k *secret.Keyring, s string) (id uuid.UUID, ok bool) {
	if !WellFormedAPIKey(s) {
		return uuid.UUID{}, false
	}
	body := strings.TrimPrefix(s, APIKeyPrefix)
	raw, err := hex.DecodeString(body[:56])
	if err != nil {
		return uuid.UUID{}, false
	}
	copy(id[:], raw[:16])
	if !hmac.Equal(raw[16:], keyMAC(k, id)) {
		return uuid.UUID{}, false
	}
	return id, true
}

// NewRefreshToken returns the refresh token of account whose ID is id.
func NewRefreshToken(k *secret.Keyring, account, id uuid.UUID) string {
	return RefreshTokenPrefix + hex.EncodeToString(account[:]) + "_" +
		hex.EncodeToString(id[:]) + hex.EncodeToString(refreshMAC(k, account, id))
}

// ParseRefreshToken returns the account and token ID of a refresh token this server issued (the
// MAC checked in constant time); ok is false for anything else.
func ParseRefreshToken(k *secret.Keyring, s string) (account, id uuid.UUID, ok bool) {
	rest, found := strings.CutPrefix(s, RefreshTokenPrefix)
	if !found || len(rest) != 32+1+64 || rest[32] != '_' || !lowerHex(rest[:32]) || !lowerHex(rest[33:]) {
		return uuid.UUID{}, uuid.UUID{}, false
	}
	acc, err1 := hex.DecodeString(rest[:32])
	raw, err2 := hex.DecodeString(rest[33:])
	if err1 != nil || err2 != nil {
		return uuid.UUID{}, uuid.UUID{}, false
	}
	copy(account[:], acc)
	copy(id[:], raw[:16])
	if !hmac.Equal(raw[16:], refreshMAC(k, account, id)) {
		return uuid.UUID{}, uuid.UUID{}, false
	}
	return account, id, true
}

func keyMAC(k *secret.Keyring, id uuid.UUID) []byte {
	return k.Sum(purposeKeyMAC, id.String())[:keyMACBytes]
}

// refreshMAC binds the token to its account, so a token ID cannot be moved to another account.
func refreshMAC(k *secret.Keyring, account, id uuid.UUID) []byte {
	return k.Sum(purposeRefreshMAC, account.String()+"/"+id.String())[:refreshMACBytes]
}

func checksum(body string) string {
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body)))
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
