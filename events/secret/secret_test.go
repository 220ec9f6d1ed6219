package secret

import (
	"strings"
	"testing"
)

func TestHashSeparatesPurposesAndKeys(t *testing.T) {
	k1, err := New([]byte(strings.Repeat("a", 32)))
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := New([]byte(strings.Repeat("b", 32)))
	h := k1.Hash(PurposeAPIKey, "v")
	if h == k1.Hash(PurposeRefresh, "v") {
		t.Error("same hash for two purposes")
	}
	if h == k2.Hash(PurposeAPIKey, "v") {
		t.Error("same hash under two keys")
	}
	if !k1.Equal(PurposeAPIKey, "v", h) || k1.Equal(PurposeAPIKey, "w", h) || k1.Equal(PurposeAPIKey, "v", "zz") {
		t.Error("Equal disagrees with Hash")
	}
	if _, err := New([]byte("short")); err == nil {
		t.Error("short key accepted")
	}
	if a, b := RandomHex(16), RandomHex(16); a == b || len(a) != 32 {
		t.Errorf("RandomHex gave %q and %q", a, b)
	}
}
