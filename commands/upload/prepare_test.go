package upload

import (
	"bytes"
	"strings"
	"testing"

	"github.com/litehost/litehost/events/blobs"
)

// TestPrepareStoresNothingAndCommitMatches: Prepare writes no blob and already knows the manifest
// hash; Commit stores exactly that manifest, for a plain upload and a ZIP alike.
func TestPrepareStoresNothingAndCommitMatches(t *testing.T) {
	for name, files := range map[string][]part{
		"plain": {fileS("b.html", "<p>b</p>"), fileS("a/index.html", "<p>a</p>"), fileS("c.css", "c")},
		"zip":   {file("s.zip", zipOf(t, zf("index.html", "<p>z</p>"), zf("img/x.txt", "x")))},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			body, ct := form(t, files...)
			u, err := Parse(t.Context(), bytes.NewReader(body), ct, DefaultLimits(), s.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := u.Cleanup(); err != nil {
					t.Errorf("Cleanup: %v", err)
				}
			}()
			p, err := Prepare(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range stored(t, s) {
				if !strings.HasPrefix(f, "tmp") {
					t.Errorf("Prepare stored %s", f)
				}
			}
			b, err := p.Commit(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}
			if b != p.Bundle || b.ManifestHash == "" {
				t.Errorf("Commit = %+v, prepared %+v", b, p.Bundle)
			}
			m, err := s.GetManifest(b.ManifestHash)
			if err != nil {
				t.Fatalf("the prepared hash names no manifest: %v", err)
			}
			if len(m.Files) != b.FileCount || m.TotalBytes() != b.TotalBytes || m.Type != b.Type || m.IndexPath != b.IndexPath {
				t.Errorf("stored manifest %+v, bundle %+v", m, b)
			}
		})
	}
}

// TestManifestHashIsPutManifest: the pure hash is the hash PutManifest stores under, whatever the
// order of the files, and an invalid manifest is refused by both.
func TestManifestHashIsPutManifest(t *testing.T) {
	s := newStore(t)
	h := func(c string) string { return strings.Repeat(c, 64) }
	ms := []blobs.Manifest{
		{Type: blobs.TypeFiles},
		{Type: blobs.TypeHTML, IndexPath: "index.html", Files: []blobs.ManifestFile{
			{Path: "z.css", SHA256: h("a"), Size: 3, ContentType: "text/css; charset=utf-8"},
			{Path: "index.html", SHA256: h("b"), Size: 10, ContentType: "text/html; charset=utf-8"},
		}},
	}
	for _, m := range ms {
		want, err := s.PutManifest(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ManifestHash(m); err != nil || got != want {
			t.Errorf("ManifestHash = %s, %v; PutManifest stored %s", got, err, want)
		}
	}
	bad := blobs.Manifest{Type: blobs.TypeHTML, IndexPath: "missing.html"}
	if _, err := ManifestHash(bad); err == nil {
		t.Error("ManifestHash accepted a manifest without its index page")
	}
}
