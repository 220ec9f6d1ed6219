package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/litehost/litehost/events/blobs"
)

// BlobStore is the part of *blobs.Store that Build writes to.
type BlobStore interface {
	Ingest(ctx context.Context, path string) (hash string, size int64, err error)
	PutManifest(ctx context.Context, m blobs.Manifest) (string, error)
}

var _ BlobStore = (*blobs.Store)(nil)

// Bundle is a stored deployment: what the deployment event records and the quota checks count.
type Bundle struct {
	ManifestHash string
	Type         string // blobs.TypeHTML or blobs.TypeFiles
	IndexPath    string // the homepage of a TypeHTML bundle
	FileCount    int
	TotalBytes   int64 // sum of the stored file sizes (a ZIP counts expanded)
}

// Prepared is an upload that passed every rule of spec §3 and DESIGN §7, with every file spooled
// and hashed and its manifest computed, but nothing written to the blob store yet. Its Bundle
// already carries the manifest hash the stored manifest will have, so the project commands can
// decide (quotas, settings) and record the deployment before anything is stored.
type Prepared struct {
	Bundle
	manifest blobs.Manifest
	spools   map[string]string // manifest path → spooled file
}

// Prepare applies the detection rules of spec §3 to a parsed upload without storing anything:
//   - a single .zip (unless asFileBundle) is inspected and extracted, within every ZIP limit;
//   - other uploads are taken as they are: a site when they contain HTML, else a file bundle;
//   - asFileBundle=true always makes a file bundle, and stores a ZIP as the ZIP itself.
//
// Every rule is checked and every file spooled (under u's spool directory, which u.Cleanup
// removes) before Prepare returns, so an upload that Prepare accepts can only fail to store on an
// I/O error, and a write rejected after Prepare leaves the blob store untouched.
func Prepare(ctx context.Context, u *Upload) (*Prepared, error) {
	files, typ, index, err := u.plan(ctx)
	if err != nil {
		return nil, err
	}
	m := blobs.Manifest{Type: typ, IndexPath: index, Files: make([]blobs.ManifestFile, 0, len(files))}
	spools := make(map[string]string, len(files))
	for _, f := range files {
		m.Files = append(m.Files, blobs.ManifestFile{Path: f.path, SHA256: f.sha256, Size: f.size, ContentType: f.contentType})
		spools[f.path] = f.spool
	}
	mh, err := ManifestHash(m)
	if err != nil {
		return nil, err
	}
	return &Prepared{
		Bundle:   Bundle{ManifestHash: mh, Type: typ, IndexPath: index, FileCount: len(files), TotalBytes: m.TotalBytes()},
		manifest: m, spools: spools,
	}, nil
}

// Commit writes the prepared files and their manifest into store (the second phase of an
// upload). It moves the spooled files, so it runs at most once per Prepared; the caller still
// calls u.Cleanup. Blobs of a bundle whose deployment event is never appended are unreferenced
// and collected by blobs.Store.Sweep after its grace period.
func (p *Prepared) Commit(ctx context.Context, store BlobStore) (Bundle, error) {
	for _, f := range p.manifest.Files {
		h, n, err := store.Ingest(ctx, p.spools[f.Path])
		if err != nil {
			return Bundle{}, fmt.Errorf("store %s: %w", f.Path, err)
		}
		if h != f.SHA256 || n != f.Size {
			return Bundle{}, fmt.Errorf("store %s: spooled file changed before it was stored", f.Path)
		}
	}
	mh, err := store.PutManifest(ctx, p.manifest)
	if err != nil {
		return Bundle{}, fmt.Errorf("store manifest: %w", err)
	}
	if mh != p.ManifestHash {
		// The deployment event records p.ManifestHash: a different stored hash would point it
		// at nothing, so this is an error, not a detail.
		return Bundle{}, fmt.Errorf("store manifest: stored as %s, prepared as %s", mh, p.ManifestHash)
	}
	return p.Bundle, nil
}

// Build is Prepare followed by Commit: it checks every rule and spools every file before the
// first blob is written, so a rejected upload stores nothing.
func Build(ctx context.Context, u *Upload, store BlobStore) (Bundle, error) {
	p, err := Prepare(ctx, u)
	if err != nil {
		return Bundle{}, err
	}
	return p.Commit(ctx, store)
}

// ManifestHash is the hash blobs.Store.PutManifest gives m, computed without writing: the sha256
// of its canonical JSON (files sorted by path, never a nil list). It fails, as PutManifest does,
// for a manifest that breaks its invariants. Commit checks that the two agree.
func ManifestHash(m blobs.Manifest) (string, error) {
	files := slices.Clone(m.Files)
	if files == nil {
		files = []blobs.ManifestFile{}
	}
	slices.SortFunc(files, func(a, b blobs.ManifestFile) int { return strings.Compare(a.Path, b.Path) })
	m.Files = files
	if err := m.Validate(); err != nil {
		return "", err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode manifest: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// plan decides the bundle and spools every file, writing nothing to the store.
func (u *Upload) plan(ctx context.Context) ([]extracted, string, string, error) {
	fl := u.Fields
	if len(u.Files) == 1 && isZipName(u.Files[0].Path) && !fl.AsFileBundle {
		return u.planZip(ctx)
	}
	files := make([]extracted, 0, len(u.Files))
	var html []string
	for _, f := range u.Files {
		files = append(files, extracted{path: f.Path, spool: f.spool, sha256: f.SHA256, contentType: f.ContentType, size: f.Size})
		if isHTML(f.Path) {
			html = append(html, f.Path)
		}
	}
	if fl.AsFileBundle || len(html) == 0 {
		return files, blobs.TypeFiles, "", nil
	}
	return files, blobs.TypeHTML, plainIndex(html, fl.ZipIndexHTMLPath), nil
}

// plainIndex picks the homepage of a non-ZIP site: the file the client named, else a root
// index.html (or index.htm), else the first HTML file by path.
func plainIndex(html []string, hint string) string {
	slices.Sort(html)
	if h, _, problem := cleanPath(hint); problem == "" && slices.Contains(html, h) {
		return h
	}
	for _, want := range []string{"index.html", "index.htm"} {
		for _, h := range html {
			if strings.EqualFold(h, want) {
				return h
			}
		}
	}
	return html[0]
}

func (u *Upload) planZip(ctx context.Context) ([]extracted, string, string, error) {
	zf := u.Files[0]
	f, err := u.fs.Open(zf.spool)
	if err != nil {
		return nil, "", "", fmt.Errorf("open spooled zip: %w", err)
	}
	defer f.Close()
	plan, err := inspectZip(f, zf.Size, u.limits, u.Fields.ZipIndexHTMLPath)
	if err != nil {
		return nil, "", "", err
	}
	files, err := extractZip(ctx, u.fs, plan, zf.Size, u.limits, u.dir)
	if err != nil {
		return nil, "", "", err
	}
	return files, plan.typ, plan.indexPath, nil
}
