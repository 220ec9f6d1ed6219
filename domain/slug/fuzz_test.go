package slug_test

import (
	"testing"

	"github.com/litehost/litehost/domain/slug"
)

// isLabel is the documented slug grammar, ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$, written out by
// hand so the targets do not check the package's regexp against itself.
func isLabel(s string) bool {
	if len(s) < 1 || len(s) > slug.MaxLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// FuzzValidate: a slug is accepted exactly when it is a DNS label of the grammar and not a
// reserved word; the seeds are in testdata/fuzz/FuzzValidate.
func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		msg := slug.Validate(s)
		switch {
		case msg == "" && !isLabel(s):
			t.Fatalf("accepted %q, which is not a DNS label", s)
		case msg != "" && isLabel(s) && msg != "is reserved":
			t.Fatalf("refused the label %q: %s", s, msg)
		}
	})
}

// FuzzFromTitle: whatever the title, the derived base and every suffixed candidate of it are
// valid slugs, and deriving again from the base changes nothing.
func FuzzFromTitle(f *testing.F) {
	f.Fuzz(func(t *testing.T, title string) {
		base := slug.FromTitle(title)
		if msg := slug.Validate(base); msg != "" {
			t.Fatalf("FromTitle(%q) = %q: %s", title, base, msg)
		}
		for _, n := range []int{2, 10, 9999} {
			if c := slug.Candidate(base, n); slug.Validate(c) != "" {
				t.Fatalf("candidate %d of %q is %q: %s", n, base, c, slug.Validate(c))
			}
		}
		if again := slug.FromTitle(base); again != base {
			t.Fatalf("FromTitle(%q) = %q, but FromTitle of that is %q", title, base, again)
		}
	})
}
