package blobs_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/events/blobs"
)

func sum(b string) string {
	h := sha256.Sum256([]byte(b))
	return hex.EncodeToString(h[:])
}

func newStore(t *testing.T) *blobs.Store {
	t.Helper()
	s, err := blobs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// blobFiles lists the blob files on disk (not temp files), by hash.
func blobFiles(t *testing.T, s *blobs.Store) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(s.Dir(), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(p, s.TempDir()) {
			out = append(out, d.Name())
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	return out
}

func tempFiles(t *testing.T, s *blobs.Store) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(s.TempDir(), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestPutOpenDedup(t *testing.T) {
	s := newStore(t)
	h, n, err := s.Put(t.Context(), strings.NewReader("hello"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if h != sum("hello") || n != 5 {
		t.Errorf("Put = %s, %d; want %s, 5", h, n, sum("hello"))
	}
	if want := filepath.Join(s.Dir(), h[:2], h[2:4], h); !fileExists(want) {
		t.Errorf("blob not at fan-out path %s", want)
	}
	h2, _, err := s.Put(t.Context(), strings.NewReader("hello"))
	if err != nil || h2 != h {
		t.Fatalf("second Put = %s, %v; want %s", h2, err, h)
	}
	if got := blobFiles(t, s); len(got) != 1 {
		t.Errorf("blobs on disk = %v, want one (deduplicated)", got)
	}
	if n := tempFiles(t, s); n != 0 {
		t.Errorf("%d temp files left behind", n)
	}
	f, size, err := s.Open(h)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if string(b) != "hello" || size != 5 {
		t.Errorf("Open = %q (%d), want hello (5)", b, size)
	}
	if ok, err := s.Exists(h); !ok || err != nil {
		t.Errorf("Exists = %v, %v", ok, err)
	}
}

func TestOpenErrors(t *testing.T) {
	s := newStore(t)
	if _, _, err := s.Open(sum("missing")); !errors.Is(err, blobs.ErrNotFound) {
		t.Errorf("Open missing: err = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"", "../../etc/passwd", strings.ToUpper(sum("x")), sum("x")[:63]} {
		if _, _, err := s.Open(bad); !errors.Is(err, blobs.ErrInvalidHash) {
			t.Errorf("Open(%q): err = %v, want ErrInvalidHash", bad, err)
		}
	}
	if ok, err := s.Exists(sum("missing")); ok || err != nil {
		t.Errorf("Exists missing = %v, %v", ok, err)
	}
}

func TestIngestMovesFileAndDedups(t *testing.T) {
	s := newStore(t)
	write := func(name, content string) string {
		p := filepath.Join(s.TempDir(), name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := write("a", "content")
	h, n, err := s.Ingest(t.Context(), p)
	if err != nil || h != sum("content") || n != 7 {
		t.Fatalf("Ingest = %s, %d, %v", h, n, err)
	}
	if fileExists(p) {
		t.Error("source still exists after Ingest")
	}
	p2 := write("b", "content")
	if h2, _, err := s.Ingest(t.Context(), p2); err != nil || h2 != h {
		t.Fatalf("Ingest dup = %s, %v", h2, err)
	}
	if fileExists(p2) {
		t.Error("duplicate source still exists after Ingest")
	}
	if got := blobFiles(t, s); len(got) != 1 {
		t.Errorf("blobs = %v, want one", got)
	}
	// From another directory tree (possibly another file system) it still works.
	other := filepath.Join(t.TempDir(), "c")
	if err := os.WriteFile(other, []byte("elsewhere"), 0o600); err != nil {
		t.Fatal(err)
	}
	if h3, _, err := s.Ingest(t.Context(), other); err != nil || h3 != sum("elsewhere") {
		t.Fatalf("Ingest other = %s, %v", h3, err)
	}
}

func TestDelete(t *testing.T) {
	s := newStore(t)
	h, _, _ := s.Put(t.Context(), strings.NewReader("x"))
	if err := s.Delete(h); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if ok, _ := s.Exists(h); ok {
		t.Error("blob exists after Delete")
	}
	if err := s.Delete(h); err != nil {
		t.Errorf("Delete again: %v", err)
	}
}

func TestManifestRoundTripCanonical(t *testing.T) {
	s := newStore(t)
	a := blobs.ManifestFile{Path: "index.html", SHA256: sum("a"), Size: 1, ContentType: "text/html; charset=utf-8"}
	b := blobs.ManifestFile{Path: "css/site.css", SHA256: sum("b"), Size: 2, ContentType: "text/css; charset=utf-8"}
	m1 := blobs.Manifest{Type: blobs.TypeHTML, IndexPath: "index.html", Files: []blobs.ManifestFile{a, b}}
	m2 := blobs.Manifest{Type: blobs.TypeHTML, IndexPath: "index.html", Files: []blobs.ManifestFile{b, a}}
	h1, err := s.PutManifest(t.Context(), m1)
	if err != nil {
		t.Fatalf("PutManifest: %v", err)
	}
	h2, err := s.PutManifest(t.Context(), m2)
	if err != nil || h1 != h2 {
		t.Fatalf("same manifest in another order: %s vs %s (%v)", h1, h2, err)
	}
	got, err := s.GetManifest(h1)
	if err != nil {
		t.Fatalf("GetManifest: %v", err)
	}
	want := blobs.Manifest{Type: blobs.TypeHTML, IndexPath: "index.html", Files: []blobs.ManifestFile{b, a}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	if f, ok := got.Lookup("index.html"); !ok || f.SHA256 != sum("a") {
		t.Errorf("Lookup(index.html) = %+v, %v", f, ok)
	}
	if _, ok := got.Lookup("nope"); ok {
		t.Error("Lookup(nope) found something")
	}
	if got.TotalBytes() != 3 {
		t.Errorf("TotalBytes = %d, want 3", got.TotalBytes())
	}
}

func TestManifestValidate(t *testing.T) {
	f := blobs.ManifestFile{Path: "a.txt", SHA256: sum("a"), Size: 1}
	tests := []struct {
		name string
		m    blobs.Manifest
	}{
		{"bad type", blobs.Manifest{Type: "site", Files: []blobs.ManifestFile{f}}},
		{"index missing", blobs.Manifest{Type: blobs.TypeHTML, IndexPath: "index.html", Files: []blobs.ManifestFile{f}}},
		{"bundle with index", blobs.Manifest{Type: blobs.TypeFiles, IndexPath: "a.txt", Files: []blobs.ManifestFile{f}}},
		{"dotdot", blobs.Manifest{Type: blobs.TypeFiles, Files: []blobs.ManifestFile{{Path: "../a", SHA256: sum("a")}}}},
		{"absolute", blobs.Manifest{Type: blobs.TypeFiles, Files: []blobs.ManifestFile{{Path: "/a", SHA256: sum("a")}}}},
		{"duplicate", blobs.Manifest{Type: blobs.TypeFiles, Files: []blobs.ManifestFile{f, f}}},
		{"bad hash", blobs.Manifest{Type: blobs.TypeFiles, Files: []blobs.ManifestFile{{Path: "a", SHA256: "zz"}}}},
	}
	s := newStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.PutManifest(t.Context(), tt.m); !errors.Is(err, blobs.ErrInvalidManifest) {
				t.Errorf("err = %v, want ErrInvalidManifest", err)
			}
		})
	}
	if got := blobFiles(t, s); len(got) != 0 {
		t.Errorf("invalid manifests stored blobs: %v", got)
	}
}

func TestGetManifestRejectsNonManifest(t *testing.T) {
	s := newStore(t)
	h, _, _ := s.Put(t.Context(), strings.NewReader("not json"))
	if _, err := s.GetManifest(h); !errors.Is(err, blobs.ErrInvalidManifest) {
		t.Errorf("err = %v, want ErrInvalidManifest", err)
	}
	if _, err := s.GetManifest(sum("none")); !errors.Is(err, blobs.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
}

func age(t *testing.T, s *blobs.Store, h string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(filepath.Join(s.Dir(), h[:2], h[2:4], h), old, old); err != nil {
		t.Fatal(err)
	}
}

func TestCollectKeepsReferencedAndYoung(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	put := func(c string) string {
		h, _, err := s.Put(ctx, strings.NewReader(c))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	live, dead, shared, young := put("live"), put("dead"), put("shared"), put("young")
	liveM, err := s.PutManifest(ctx, blobs.Manifest{Type: blobs.TypeFiles, Files: []blobs.ManifestFile{
		{Path: "a", SHA256: live, Size: 4}, {Path: "b", SHA256: shared, Size: 6}}})
	if err != nil {
		t.Fatal(err)
	}
	deadM, err := s.PutManifest(ctx, blobs.Manifest{Type: blobs.TypeFiles, Files: []blobs.ManifestFile{
		{Path: "a", SHA256: dead, Size: 4}, {Path: "b", SHA256: shared, Size: 6}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{live, dead, shared, liveM, deadM} {
		age(t, s, h, 2*time.Hour)
	}
	// A stale temp file from a crashed write, and a fresh one from a write in progress.
	staleTmp := filepath.Join(s.TempDir(), "upload-1", "f0")
	if err := os.MkdirAll(filepath.Dir(staleTmp), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(staleTmp, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	_ = os.Chtimes(staleTmp, old, old)
	freshTmp := filepath.Join(s.TempDir(), "put-fresh")
	if err := os.WriteFile(freshTmp, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	res, err := s.Collect(ctx, []string{liveM}, time.Hour)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	for _, h := range []string{live, shared, liveM, young} {
		if ok, _ := s.Exists(h); !ok {
			t.Errorf("kept blob %s was removed", h[:8])
		}
	}
	for _, h := range []string{dead, deadM} {
		if ok, _ := s.Exists(h); ok {
			t.Errorf("unreferenced old blob %s survived", h[:8])
		}
	}
	if fileExists(staleTmp) || !fileExists(freshTmp) {
		t.Errorf("temp files: stale exists=%v (want false), fresh exists=%v (want true)", fileExists(staleTmp), fileExists(freshTmp))
	}
	if res.Removed != 2 || res.TempRemoved != 1 {
		t.Errorf("result = %+v, want 2 removed, 1 temp removed", res)
	}

	// Deduplicating an old unreferenced blob refreshes it: a sweep right after keeps it.
	again := put("dead-again")
	age(t, s, again, 2*time.Hour)
	if h := put("dead-again"); h != again {
		t.Fatal("hash changed")
	}
	if _, err := s.Collect(ctx, []string{liveM}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Exists(again); !ok {
		t.Error("a just-deduplicated blob was collected")
	}
}

func TestCollectMissingManifestFails(t *testing.T) {
	s := newStore(t)
	h, _, _ := s.Put(t.Context(), strings.NewReader("x"))
	age(t, s, h, 2*time.Hour)
	if _, err := s.Collect(t.Context(), []string{sum("gone")}, time.Hour); !errors.Is(err, blobs.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if ok, _ := s.Exists(h); !ok {
		t.Error("a failed Collect removed blobs")
	}
}

func TestContentType(t *testing.T) {
	tests := []struct {
		name string
		head []byte
		want string
	}{
		{"index.HTML", nil, "text/html; charset=utf-8"},
		{"a.htm", nil, "text/html; charset=utf-8"},
		{"app.js", nil, "text/javascript; charset=utf-8"},
		{"style.css", nil, "text/css; charset=utf-8"},
		{"logo.svg", nil, "image/svg+xml"},
		{"doc.pdf", nil, "application/pdf"},
		{"README", []byte("plain words"), "text/plain; charset=utf-8"},
		{"blob", []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, "image/png"},
		{"data", bytes.Repeat([]byte{0}, 20), "application/octet-stream"},
	}
	for _, tt := range tests {
		if got := blobs.ContentType(tt.name, tt.head); got != tt.want {
			t.Errorf("ContentType(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
