// Package sitepassword hashes and checks the passwords of protected sites, and seals the hash
// for storage.
//
// Hashes are argon2id in the PHC string format ($argon2id$v=19$m=…,t=…,p=…$salt$hash) with the
// parameters of OWASP's Password Storage Cheat Sheet (m=19 MiB, t=2, p=1): memory-hard enough
// for offline attacks, and small enough that the site server can afford a bounded number of
// checks at once. argon2id rather than bcrypt because site passwords may be 255 characters and
// bcrypt reads 72 bytes.
//
// A stored hash is sealed (AES-256-GCM under a key derived from the server secret), so the event
// log, the read models and every feed built from them carry no crackable hash: without the
// secret a sealed value is noise. Values stored before sealing are plain PHC strings and still
// open; a successful login rehashes them (NeedsRehash).
package sitepassword

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/litehost/litehost/events/secret"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// Current are the parameters new hashes get: OWASP's first recommended argon2id configuration.
var Current = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	keyLen  = 32
	saltLen = 16
	// Bounds on what a stored string may ask for, so a corrupt or hostile value cannot make one
	// check cost gigabytes.
	maxMemory = 256 * 1024
	maxTime   = 16
)

// Hash returns the argon2id PHC string of pw with a random salt and the Current parameters.
func Hash(pw string) (string, error) {
	return hashWith(pw, Current)
}

// HashWith hashes with explicit parameters (tests make old-style hashes with it).
func HashWith(pw string, p Params) (string, error) { return hashWith(pw, p) }

func hashWith(pw string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash site password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

type parsed struct {
	params    Params
	salt, key []byte
}

func parse(phc string) (parsed, bool) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return parsed{}, false
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > maxMemory || p.Time > maxTime {
		return parsed{}, false
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return parsed{}, false
	}
	key, err := enc.DecodeString(parts[5])
	if err != nil || len(key) == 0 || len(key) > 64 {
		return parsed{}, false
	}
	return parsed{params: p, salt: salt, key: key}, true
}

// Verify checks pw against a PHC string written by Hash (any parameters within bounds).
func Verify(phc, pw string) bool {
	h, ok := parse(phc)
	if !ok {
		return false
	}
	got := argon2.IDKey([]byte(pw), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// NeedsRehash reports whether a stored value, opened to phc, should be replaced after a
// successful login: it was stored unsealed, or made with other than the Current parameters.
func NeedsRehash(stored, phc string) bool {
	h, ok := parse(phc)
	return !strings.HasPrefix(stored, sealedPrefix) || !ok || h.params != Current
}

// sealedPrefix marks a sealed value; a PHC string starts with "$".
const sealedPrefix = "sealed:v1:"

// purposeSeal labels the key derived from the server secret for sealing site password hashes.
const purposeSeal = "site-password-seal"

// ErrCannotOpen is a stored value that is neither a PHC string nor sealed under this secret.
var ErrCannotOpen = errors.New("site password hash cannot be opened")

func aead(kr *secret.Keyring) cipher.AEAD {
	block, err := aes.NewCipher(kr.Sum(purposeSeal, "aes-256-gcm"))
	if err != nil {
		panic("sitepassword: " + err.Error()) // a 32-byte key always makes a cipher
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("sitepassword: " + err.Error())
	}
	return g
}

// Seal encrypts a PHC string for storage: "sealed:v1:" + base64url(nonce ‖ ciphertext).
func Seal(kr *secret.Keyring, phc string) string {
	g := aead(kr)
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("sitepassword: crypto/rand failed: " + err.Error()) // the OS CSPRNG never fails on Linux
	}
	out := g.Seal(nonce, nonce, []byte(phc), []byte(purposeSeal))
	return sealedPrefix + base64.RawURLEncoding.EncodeToString(out)
}

// Open returns the PHC string of a stored value: a sealed one is decrypted (kr may then not be
// nil), a plain PHC string from before sealing is returned as it is.
func Open(kr *secret.Keyring, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		if strings.HasPrefix(stored, "$argon2id$") {
			return stored, nil
		}
		return "", ErrCannotOpen
	}
	if kr == nil {
		return "", ErrCannotOpen
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	g := aead(kr)
	if err != nil || len(b) < g.NonceSize() {
		return "", ErrCannotOpen
	}
	phc, err := g.Open(nil, b[:g.NonceSize()], b[g.NonceSize():], []byte(purposeSeal))
	if err != nil {
		return "", ErrCannotOpen
	}
	return string(phc), nil
}
