package commands

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/litehost/litehost/events/secret"
)

// ErrIdempotencyKeyReused is returned when a command's events are already in its stream (the
// same caller and Idempotency-Key) but were appended for a different request: the request is
// neither executed nor answered as a replay. The HTTP layer answers 422 IDEMPOTENCY_KEY_REUSED.
var ErrIdempotencyKeyReused = errors.New("this Idempotency-Key was used with a different request; use a new key")

type fingerprintKey struct{}

// requestFingerprint is the fingerprint of the request a context serves, and whether a command
// of it appended events (so the middleware knows to record the fingerprint durably).
type requestFingerprint struct {
	value    string
	appended atomic.Bool
}

// WithRequestFingerprint returns a context whose writes record fp as their request's fingerprint.
func WithRequestFingerprint(ctx context.Context, fp string) context.Context {
	return context.WithValue(ctx, fingerprintKey{}, &requestFingerprint{value: fp})
}

// RequestFingerprintFrom returns the fingerprint set by WithRequestFingerprint, or "" (unknown:
// a request without an Idempotency-Key, or a process manager).
func RequestFingerprintFrom(ctx context.Context) string {
	if fp, ok := ctx.Value(fingerprintKey{}).(*requestFingerprint); ok {
		return fp.value
	}
	return ""
}

// markAppended notes that a command of ctx's request appended events.
func markAppended(ctx context.Context) {
	if fp, ok := ctx.Value(fingerprintKey{}).(*requestFingerprint); ok {
		fp.appended.Store(true)
	}
}

// appendedFrom reports whether a command of ctx's request appended events.
func appendedFrom(ctx context.Context) bool {
	fp, ok := ctx.Value(fingerprintKey{}).(*requestFingerprint)
	return ok && fp.appended.Load()
}

// redactedSecret replaces every secret in the fingerprinted form of a request. The handlers
// check those secrets themselves, on a replay too, so the fingerprint does not need them; and a
// fingerprint is stored (idempotency table, event metadata), so nothing of a secret may go in,
// not even keyed: a 6-digit code under a leaked server secret is 10^6 guesses.
const redactedSecret = "\x00redacted"

// secretField tells the JSON fields, multipart fields and path parameters that hold secrets.
// JSON field names are matched like encoding/json matches struct fields: case-insensitively.
func secretField(name string) bool {
	for _, s := range [...]string{"code", "refreshToken", "password", "claimToken", "token"} {
		if strings.EqualFold(name, s) {
			return true
		}
	}
	return false
}

// fingerprinter writes the canonical form of a request into a keyed hash. Every piece is
// length-prefixed so that no two different requests write the same bytes.
type fingerprinter struct {
	h hash.Hash
}

func newFingerprinter(keys *secret.Keyring) *fingerprinter {
	return &fingerprinter{h: keys.New(secret.PurposeFingerprint)}
}

func (f *fingerprinter) field(s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	f.h.Write(n[:])
	f.h.Write([]byte(s))
}

func (f *fingerprinter) sum() string { return hex.EncodeToString(f.h.Sum(nil)) }

// head writes what identifies the operation: method, route template (gin's FullPath, so two
// spellings of one path are one route), the path parameters with their values (another
// project is another request; a secret parameter such as a claim token is redacted), the
// canonical query and the media type (its parameters, such as a multipart boundary, differ
// between two sends of one request).
func (f *fingerprinter) head(c *gin.Context) {
	f.field(c.Request.Method)
	f.field(c.FullPath())
	for _, p := range c.Params {
		f.field(p.Key)
		switch {
		case p.Key == "token" && len(p.Value) == claimTokenLen:
			// A derived claim token is the project ID and a MAC of it: the ID names which project
			// is claimed (another project is another request), the MAC stays out.
			f.field(p.Value[:32])
		case secretField(p.Key):
			f.field(redactedSecret)
		default:
			f.field(p.Value)
		}
	}
	f.field(c.Request.URL.Query().Encode())
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(c.GetHeader("Content-Type")))
	}
	f.field(mt)
}

// jsonBody writes a JSON body canonically: decoded and re-encoded (object keys sorted, no
// insignificant whitespace, numbers kept as written), secret fields redacted. A body that is not
// JSON is written raw: no handler accepts it, so no secret in it is ever used.
func (f *fingerprinter) jsonBody(body []byte) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		f.field("raw")
		f.field(string(body))
		return
	}
	canon, err := json.Marshal(redactJSON(v))
	if err != nil { // decoded JSON always re-encodes
		f.field("raw")
		f.field(string(body))
		return
	}
	f.field("json")
	f.field(string(canon))
	// Whatever follows the first value (some handlers stop reading there) still counts.
	f.field(string(bytes.TrimSpace(body[dec.InputOffset():])))
}

func redactJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if secretField(k) && e != nil {
				t[k] = redactedSecret // a null stays null: removing a password is not setting one
				continue
			}
			t[k] = redactJSON(e)
		}
	case []any:
		for i, e := range t {
			t[i] = redactJSON(e)
		}
	}
	return v
}

// multipartBody writes a multipart/form-data body canonically, streaming it from open (memory
// or the spool file): each part's form name, raw file name (a path, as the upload reads it),
// content type and content, secret scalar fields redacted, boundaries left out. A body that does
// not parse as multipart is written raw after a marker: the upload parser refuses it anyway.
func (f *fingerprinter) multipartBody(contentType string, open func() (io.Reader, error)) error {
	r, err := open()
	if err != nil {
		return err
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err == nil && params["boundary"] != "" {
		if f.parts(multipart.NewReader(r, params["boundary"])) {
			return nil
		}
	}
	if r, err = open(); err != nil {
		return err
	}
	f.field("raw")
	_, err = io.Copy(f.h, r)
	return err
}

// parts writes every part and reports whether the body was valid multipart to its end.
func (f *fingerprinter) parts(mr *multipart.Reader) bool {
	var buf bytes.Buffer
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			f.field("end")
			return true
		}
		if err != nil {
			return false
		}
		_, cd, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		f.field("part")
		f.field(p.FormName())
		f.field(cd["filename"])
		f.field(p.Header.Get("Content-Type"))
		if _, isFile := cd["filename"]; !isFile && secretField(p.FormName()) {
			if _, err := io.Copy(io.Discard, p); err != nil {
				return false
			}
			f.field(redactedSecret)
			continue
		}
		// Content goes in fixed-size, length-prefixed chunks ending with an empty one, so a
		// large file is never held in memory and the chunking does not depend on read sizes.
		for {
			buf.Reset()
			n, err := io.CopyN(&buf, p, 32<<10)
			if n > 0 {
				f.field(buf.String())
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return false
			}
		}
		f.field("")
	}
}
