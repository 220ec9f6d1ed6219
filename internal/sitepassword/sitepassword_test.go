package sitepassword_test

import (
	"strings"
	"testing"

	"github.com/litehost/litehost/events/secret"
	"github.com/litehost/litehost/internal/sitepassword"
)

func keyring(t *testing.T, s string) *secret.Keyring {
	t.Helper()
	kr, err := secret.New([]byte(strings.Repeat(s, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestHashSealOpenVerify(t *testing.T) {
	kr := keyring(t, "k")
	phc, err := sitepassword.Hash("open sesame")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash = %s, want OWASP's m=19 MiB, t=2, p=1", phc)
	}
	sealed := sitepassword.Seal(kr, phc)
	if strings.Contains(sealed, "argon2") || strings.Contains(sealed, phc[len(phc)-20:]) {
		t.Errorf("sealed value shows the hash: %s", sealed)
	}
	opened, err := sitepassword.Open(kr, sealed)
	if err != nil || opened != phc {
		t.Fatalf("Open = %q, %v", opened, err)
	}
	if !sitepassword.Verify(opened, "open sesame") || sitepassword.Verify(opened, "open sesame!") {
		t.Error("Verify does not tell the right password from a wrong one")
	}
	if sitepassword.NeedsRehash(sealed, opened) {
		t.Error("a sealed current hash needs a rehash")
	}
	if _, err := sitepassword.Open(keyring(t, "x"), sealed); err == nil {
		t.Error("a value sealed under another secret opened")
	}
	if _, err := sitepassword.Open(kr, sealed[:len(sealed)-2]+"AA"); err == nil {
		t.Error("a tampered sealed value opened")
	}
	if _, err := sitepassword.Open(kr, "plaintext"); err == nil {
		t.Error("garbage opened")
	}
}

// Hashes written before sealing (and with the old 64 MiB parameters) still check, and ask for a
// rehash.
func TestOldUnsealedHash(t *testing.T) {
	old, err := sitepassword.HashWith("pw", sitepassword.Params{Memory: 64 * 1024, Time: 1, Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	phc, err := sitepassword.Open(nil, old)
	if err != nil || phc != old || !sitepassword.Verify(phc, "pw") {
		t.Fatalf("old hash does not open and verify: %v", err)
	}
	if !sitepassword.NeedsRehash(old, phc) {
		t.Error("an unsealed 64 MiB hash does not need a rehash")
	}
	cur, _ := sitepassword.Hash("pw")
	if !sitepassword.NeedsRehash(cur, cur) {
		t.Error("an unsealed current hash does not need sealing")
	}
	kr := keyring(t, "k")
	if !sitepassword.NeedsRehash(sitepassword.Seal(kr, old), old) {
		t.Error("a sealed old-parameter hash does not need a rehash")
	}
	huge := "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	if sitepassword.Verify(huge, "pw") {
		t.Error("a 4 GiB hash was computed")
	}
}
