package customdomain_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/domain/customdomain"
)

// hostGrammar is the documented host-name grammar written out by hand: lowercase DNS labels of 1
// to 63 a-z, 0-9 and inner hyphens, at least two, at most 253 characters in all, the last label
// starting with a letter.
func hostGrammar(h string) bool {
	labels := strings.Split(h, ".")
	if len(h) > customdomain.MaxHostname || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) < 1 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	return tld[0] >= 'a' && tld[0] <= 'z'
}

// FuzzHostname: an accepted host name is the trimmed, lowercased input, matches the grammar, is
// never an IP address and normalises to itself; a refused one is a domain.Invalid on the field
// (422), never another error. The seeds are in testdata/fuzz/FuzzHostname.
func FuzzHostname(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := customdomain.Hostname("domain", raw)
		if err != nil {
			var inv domain.Invalid
			if !errors.As(err, &inv) || len(inv) != 1 || inv["domain"] == "" {
				t.Fatalf("Hostname(%q): %v is not a validation error on domain", raw, err)
			}
			return
		}
		if want := strings.ToLower(strings.TrimSpace(raw)); h != want {
			t.Fatalf("Hostname(%q) = %q, want %q", raw, h, want)
		}
		if !hostGrammar(h) {
			t.Fatalf("accepted %q, which breaks the grammar", h)
		}
		if net.ParseIP(h) != nil {
			t.Fatalf("accepted the IP address %q", h)
		}
		if again, err := customdomain.Hostname("domain", h); err != nil || again != h {
			t.Fatalf("Hostname(%q) = %q, %v; not idempotent", h, again, err)
		}
	})
}
