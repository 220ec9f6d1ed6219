package blobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
)

// Bundle types: a static site served from its index page, or a set of files shown as a list.
const (
	TypeHTML  = "html"
	TypeFiles = "files"
)

// ErrInvalidManifest is returned for a manifest that breaks its invariants.
var ErrInvalidManifest = errors.New("invalid manifest")

// maxManifestBytes bounds what GetManifest reads: a manifest of the largest allowed upload (10 000
// entries with long paths) is a few MiB, so anything far larger is not a manifest.
const maxManifestBytes = 64 << 20

// Manifest lists the files of one deployment. It is stored as a blob in canonical JSON (files
// sorted by path), so equal deployments share one manifest hash.
type Manifest struct {
	Type      string         `json:"type"`                // TypeHTML or TypeFiles
	IndexPath string         `json:"indexPath,omitempty"` // the homepage, for TypeHTML
	Files     []ManifestFile `json:"files"`
}

// ManifestFile is one file of a deployment: its path relative to the site root (slash-separated,
// no leading slash), the blob holding its bytes, and how to serve it.
type ManifestFile struct {
	Path        string `json:"path"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
}

// TotalBytes is the sum of the file sizes (what counts against storage quota).
func (m Manifest) TotalBytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Lookup finds the file at p (exact, case-sensitive match). Files must be sorted, as they are in
// any manifest that went through PutManifest or GetManifest.
func (m Manifest) Lookup(p string) (ManifestFile, bool) {
	i, ok := slices.BinarySearchFunc(m.Files, p, func(f ManifestFile, p string) int { return strings.Compare(f.Path, p) })
	if !ok {
		return ManifestFile{}, false
	}
	return m.Files[i], true
}

// Validate checks the invariants every stored manifest keeps: a known type, valid unique relative
// paths, valid hashes, non-negative sizes, and an index page that is one of the files.
func (m Manifest) Validate() error {
	if m.Type != TypeHTML && m.Type != TypeFiles {
		return fmt.Errorf("%w: type %q", ErrInvalidManifest, m.Type)
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		switch {
		case !fs.ValidPath(f.Path) || f.Path == ".":
			return fmt.Errorf("%w: path %q", ErrInvalidManifest, f.Path)
		case seen[f.Path]:
			return fmt.Errorf("%w: duplicate path %q", ErrInvalidManifest, f.Path)
		case !ValidHash(f.SHA256):
			return fmt.Errorf("%w: hash of %q", ErrInvalidManifest, f.Path)
		case f.Size < 0:
			return fmt.Errorf("%w: size of %q", ErrInvalidManifest, f.Path)
		}
		seen[f.Path] = true
	}
	if m.Type == TypeHTML && !seen[m.IndexPath] {
		return fmt.Errorf("%w: index %q is not a file", ErrInvalidManifest, m.IndexPath)
	}
	if m.Type == TypeFiles && m.IndexPath != "" {
		return fmt.Errorf("%w: a file bundle has no index", ErrInvalidManifest)
	}
	return nil
}

// canonical returns the manifest with files sorted by path, and no nil slice, so its JSON is a
// function of its content alone.
func (m Manifest) canonical() Manifest {
	files := slices.Clone(m.Files)
	if files == nil {
		files = []ManifestFile{}
	}
	slices.SortFunc(files, func(a, b ManifestFile) int { return strings.Compare(a.Path, b.Path) })
	m.Files = files
	return m
}

// PutManifest validates m and stores it as a canonical JSON blob, returning its hash (the value a
// deployment event records).
func (s *Store) PutManifest(ctx context.Context, m Manifest) (string, error) {
	m = m.canonical()
	if err := m.Validate(); err != nil {
		return "", err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode manifest: %w", err)
	}
	h, _, err := s.Put(ctx, bytes.NewReader(data))
	return h, err
}

// GetManifest reads and validates the manifest blob h. A missing blob is ErrNotFound.
func (s *Store) GetManifest(h string) (Manifest, error) {
	f, _, err := s.Open(h)
	if err != nil {
		return Manifest{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	if len(data) > maxManifestBytes {
		return Manifest{}, fmt.Errorf("%w: too large", ErrInvalidManifest)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	m = m.canonical()
	if err := m.Validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// webTypes pins the types a static site depends on, so serving does not vary with the host's
// /etc/mime.types (which mime.TypeByExtension consults).
func webType(ext string) string {
	switch ext {
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".json", ".map":
		return "application/json"
	case ".webmanifest":
		return "application/manifest+json"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".avif":
		return "image/avif"
	case ".ico":
		return "image/x-icon"
	case ".txt", ".md":
		return "text/plain; charset=utf-8"
	case ".xml":
		return "application/xml"
	case ".pdf":
		return "application/pdf"
	case ".wasm":
		return "application/wasm"
	case ".woff":
		return "font/woff"
	case ".woff2":
		return "font/woff2"
	case ".ttf":
		return "font/ttf"
	case ".otf":
		return "font/otf"
	case ".mp4":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".mp3":
		return "audio/mpeg"
	case ".zip":
		return "application/zip"
	case ".csv":
		return "text/csv; charset=utf-8"
	}
	return ""
}

// ContentType picks the type a file is served with: by extension (case-insensitive) from a fixed
// web table, then the standard library's table, then by sniffing head (the first bytes, up to 512)
// as browsers would.
func ContentType(name string, head []byte) string {
	ext := strings.ToLower(path.Ext(name))
	if t := webType(ext); t != "" {
		return t
	}
	if ext != "" {
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
	}
	return http.DetectContentType(head)
}
