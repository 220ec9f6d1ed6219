package upload

import (
	"context"
	"fmt"
	"os"
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

// Build applies the detection rules of spec §3 to a parsed upload and stores it:
//   - a single .zip (unless asFileBundle) is inspected and extracted, within every ZIP limit;
//   - other uploads are taken as they are: a site when they contain HTML, else a file bundle;
//   - asFileBundle=true always makes a file bundle, and stores a ZIP as the ZIP itself.
//
// Every rule is checked and every file spooled before the first blob is written, so a rejected
// upload stores nothing. Build moves the spooled files into store; the caller still calls
// u.Cleanup. Blobs of a bundle whose deployment event is never appended are unreferenced and
// collected by blobs.Store.Sweep after its grace period.
func Build(ctx context.Context, u *Upload, store BlobStore) (Bundle, error) {
	files, typ, index, err := u.plan(ctx)
	if err != nil {
		return Bundle{}, err
	}
	m := blobs.Manifest{Type: typ, IndexPath: index, Files: make([]blobs.ManifestFile, 0, len(files))}
	for _, f := range files {
		h, n, err := store.Ingest(ctx, f.spool)
		if err != nil {
			return Bundle{}, fmt.Errorf("store %s: %w", f.path, err)
		}
		if h != f.sha256 || n != f.size {
			return Bundle{}, fmt.Errorf("store %s: spooled file changed before it was stored", f.path)
		}
		m.Files = append(m.Files, blobs.ManifestFile{Path: f.path, SHA256: h, Size: n, ContentType: f.contentType})
	}
	mh, err := store.PutManifest(ctx, m)
	if err != nil {
		return Bundle{}, fmt.Errorf("store manifest: %w", err)
	}
	return Bundle{ManifestHash: mh, Type: typ, IndexPath: index, FileCount: len(files), TotalBytes: m.TotalBytes()}, nil
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
	f, err := os.Open(zf.spool)
	if err != nil {
		return nil, "", "", fmt.Errorf("open spooled zip: %w", err)
	}
	defer f.Close()
	plan, err := inspectZip(f, zf.Size, u.limits, u.Fields.ZipIndexHTMLPath)
	if err != nil {
		return nil, "", "", err
	}
	files, err := extractZip(ctx, plan, zf.Size, u.limits, u.dir)
	if err != nil {
		return nil, "", "", err
	}
	return files, plan.typ, plan.indexPath, nil
}
