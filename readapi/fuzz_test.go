package readapi_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/litehost/litehost/domain/slug"
	"github.com/litehost/litehost/readapi"
)

// FuzzSiteSlug checks the Host → site mapping: a host names a site exactly when it is
// <label>.<sites domain> (any case, an optional trailing dot and port), the label is one DNS
// label, and mapping <label>.<sites domain> again gives the same label. A label that is no valid
// slug is still handed on: no project has it, so the site answers 404. Seeds: testdata/fuzz.
func FuzzSiteSlug(f *testing.F) {
	sites := readapi.NewSites(nil, nil, "Sites.Test.", time.Now, nil)
	f.Fuzz(func(t *testing.T, host string) {
		label, ok := sites.Slug(host)
		h := host
		if hp, _, err := net.SplitHostPort(host); err == nil {
			h = hp
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		want, wantOK := strings.CutSuffix(h, ".sites.test")
		wantOK = wantOK && want != "" && !strings.Contains(want, ".")
		if ok != wantOK || ok && label != want {
			t.Fatalf("Slug(%q) = %q, %v; want %q, %v", host, label, ok, want, wantOK)
		}
		if !ok {
			return
		}
		if again, ok := sites.Slug(label + ".sites.test"); !ok || again != label {
			t.Fatalf("Slug(%q) = %q, %v; not stable", label+".sites.test", again, ok)
		}
		if slug.Validate(label) == "" {
			upper := strings.ToUpper(label) + ".SITES.test.:8443"
			if again, ok := sites.Slug(upper); !ok || again != label {
				t.Fatalf("Slug(%q) = %q, %v; want %q", upper, again, ok, label)
			}
		}
	})
}
