package credential

import (
	"fmt"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/litehost/litehost/events/secret"
)

func keyring(t *testing.T, b byte) *secret.Keyring {
	t.Helper()
	k, err := secret.New([]byte(strings.Repeat(string(rune(b)), 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAPIKey(t *testing.T) {
	k, other := keyring(t, 'a'), keyring(t, 'b')
	id := uuid.New()
	key := NewAPIKey(k, id)
	body, _ := strings.CutPrefix(key, APIKeyPrefix)
	if len(body) != 64 || !lowerHex(body) || fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body[:56]))) != body[56:] {
		t.Fatalf("key %q breaks the public format", key)
	}
	if got, ok := ParseAPIKey(k, key); !ok || got != id {
		t.Errorf("ParseAPIKey = %v, %v; want %v", got, ok, id)
	}
	if NewAPIKey(k, id) != key {
		t.Error("the same ID gave another key")
	}
	if _, ok := ParseAPIKey(other, key); ok {
		t.Error("a key of another server secret was accepted")
	}
	// A forged key: another ID with a valid checksum but no MAC of ours.
	forged := hexOf(uuid.New()) + body[32:56]
	forged = APIKeyPrefix + forged + fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(forged)))
	if !WellFormedAPIKey(forged) {
		t.Fatal("forged key is not well-formed; the test shows nothing")
	}
	if _, ok := ParseAPIKey(k, forged); ok {
		t.Error("a key with a valid checksum but a wrong MAC was accepted")
	}
	for _, bad := range []string{"", "lh_live_", key[:len(key)-1], strings.ToUpper(key), key + "0", strings.Replace(key, "lh_live_", "lh_test_", 1)} {
		if _, ok := ParseAPIKey(k, bad); ok {
			t.Errorf("ParseAPIKey(%q) accepted", bad)
		}
	}
}

func TestRefreshToken(t *testing.T) {
	k, other := keyring(t, 'a'), keyring(t, 'b')
	acc, id := uuid.New(), uuid.New()
	tok := NewRefreshToken(k, acc, id)
	if !strings.HasPrefix(tok, RefreshTokenPrefix+hexOf(acc)+"_") || len(tok) != len(RefreshTokenPrefix)+32+1+64 {
		t.Fatalf("token %q breaks the public format", tok)
	}
	if a, i, ok := ParseRefreshToken(k, tok); !ok || a != acc || i != id {
		t.Errorf("ParseRefreshToken = %v %v %v", a, i, ok)
	}
	if _, _, ok := ParseRefreshToken(other, tok); ok {
		t.Error("a token of another server secret was accepted")
	}
	moved := RefreshTokenPrefix + hexOf(uuid.New()) + tok[len(RefreshTokenPrefix)+32:]
	if _, _, ok := ParseRefreshToken(k, moved); ok {
		t.Error("a token moved to another account was accepted")
	}
	for _, bad := range []string{"", tok[:len(tok)-1], strings.ToUpper(tok), tok[:len(tok)-1] + "g"} {
		if _, _, ok := ParseRefreshToken(k, bad); ok {
			t.Errorf("ParseRefreshToken(%q) accepted", bad)
		}
	}
}

func hexOf(id uuid.UUID) string { return strings.ReplaceAll(id.String(), "-", "") }
