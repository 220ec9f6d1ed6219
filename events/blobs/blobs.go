// Package blobs is the content-addressed file store behind deployments: every file is kept once,
// named by the SHA-256 of its bytes, under <LITEHOST_DATA_DIR>/blobs/ab/cd/<hash>. A deployment
// points at a manifest blob (see Manifest), which lists the file blobs by path.
//
// It lives under events/ because both the write side (commands/upload) and the site server
// (readapi) read it, and readapi may import only events. It imports nothing but the standard
// library.
//
// Writes are crash-safe: bytes go to a temp file in the same file system, are fsynced and renamed
// into place, and the directory is fsynced. A blob that already exists is kept (deduplication)
// and the temp file removed.
package blobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrNotFound is returned for a blob the store does not hold.
var ErrNotFound = errors.New("blob not found")

// ErrInvalidHash is returned for a string that is not a lowercase sha256 hex digest.
var ErrInvalidHash = errors.New("invalid blob hash")

// Store is a content-addressed blob store rooted at one directory.
type Store struct {
	dir string
	tmp string
	now func() time.Time

	// mu orders Put/Ingest (readers of the lock) against the removals of Sweep (the writer), so
	// a blob that a write has just confirmed or refreshed is never removed under it in this process.
	mu sync.RWMutex
}

// New opens (creating if needed) the store rooted at dir, e.g. <LITEHOST_DATA_DIR>/blobs.
func New(dir string) (*Store, error) {
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("create blob dir: %w", err)
	}
	return &Store{dir: dir, tmp: tmp, now: time.Now}, nil
}

// Dir is the root directory of the store.
func (s *Store) Dir() string { return s.dir }

// TempDir is where uploads should spool: it shares the store's file system, so Ingest renames
// instead of copying, and Sweep removes what a crashed request left there after the grace period.
func (s *Store) TempDir() string { return s.tmp }

// ValidHash reports whether h is a lowercase hex sha256 digest, the only form of blob name.
func ValidHash(h string) bool {
	if len(h) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (s *Store) path(h string) string {
	return filepath.Join(s.dir, h[0:2], h[2:4], h)
}

// Put stores the bytes of r and returns their sha256 hex digest and length.
func (s *Store) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("create temp blob: %w", err)
	}
	name := f.Name()
	defer os.Remove(name) // a no-op after the rename; cleans up every failure path
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxReader{ctx: ctx, r: r})
	if err != nil {
		f.Close()
		return "", 0, fmt.Errorf("write temp blob: %w", err)
	}
	if err := syncClose(f); err != nil {
		return "", 0, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := s.commit(name, sum); err != nil {
		return "", 0, err
	}
	return sum, n, nil
}

// Ingest moves the file at path into the store: it hashes the file, fsyncs it and renames it into
// place (copying when path is on another file system). On success path no longer exists. The
// caller gives up the file, which is why a spool directory under Dir() makes uploads cheap.
func (s *Store) Ingest(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("open %s: %w", filepath.Base(path), err)
	}
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx: ctx, r: f})
	if err == nil {
		// The file may have been written without fsync (a spool file): make it durable before
		// it becomes visible under its hash.
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", filepath.Base(path), err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := s.commit(path, sum); err != nil {
		var le *os.LinkError
		if !errors.As(err, &le) {
			return "", 0, err
		}
		// Another file system: copy through Put, which writes its own temp file here.
		src, oerr := os.Open(path)
		if oerr != nil {
			return "", 0, fmt.Errorf("open %s: %w", filepath.Base(path), oerr)
		}
		defer src.Close()
		got, n2, perr := s.Put(ctx, src)
		if perr != nil {
			return "", 0, perr
		}
		if got != sum || n2 != n {
			return "", 0, fmt.Errorf("ingest %s: file changed while copying", filepath.Base(path))
		}
		src.Close()
		_ = os.Remove(path)
	}
	return sum, n, nil
}

// commit renames the finished temp file src to the blob named sum, or drops src when the blob is
// already there (deduplication). A kept blob's mtime is refreshed so the sweeper's grace period
// protects it until the caller has recorded a reference to it.
func (s *Store) commit(src, sum string) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	dst := s.path(sum)
	now := s.now()
	if _, err := os.Stat(dst); err == nil {
		if err := os.Chtimes(dst, now, now); err != nil {
			return fmt.Errorf("touch blob: %w", err)
		}
		if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove duplicate: %w", err)
		}
		return nil
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create blob dir: %w", err)
	}
	if err := os.Rename(src, dst); err != nil {
		return err // *os.LinkError: Ingest falls back to a copy on EXDEV
	}
	// The rename keeps the source's mtime; a fresh one starts the grace period now.
	if err := os.Chtimes(dst, now, now); err != nil {
		return fmt.Errorf("touch blob: %w", err)
	}
	return syncDir(dir)
}

// Open returns the blob for reading (an *os.File, so http.ServeContent can seek it) and its size.
// The caller closes it. A missing blob is ErrNotFound.
func (s *Store) Open(h string) (*os.File, int64, error) {
	if !ValidHash(h) {
		return nil, 0, ErrInvalidHash
	}
	f, err := os.Open(s.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open blob: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat blob: %w", err)
	}
	return f, fi.Size(), nil
}

// Exists reports whether the store holds blob h.
func (s *Store) Exists(h string) (bool, error) {
	if !ValidHash(h) {
		return false, ErrInvalidHash
	}
	_, err := os.Stat(s.path(h))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("stat blob: %w", err)
	}
}

// Delete removes blob h; deleting a missing blob is not an error. Prefer Sweep, which knows what is
// still referenced.
func (s *Store) Delete(h string) error {
	if !ValidHash(h) {
		return ErrInvalidHash
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.path(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob: %w", err)
	}
	return nil
}

// SweepResult counts what a sweep did.
type SweepResult struct {
	Kept, Removed int
	RemovedBytes  int64
	TempRemoved   int
}

// Sweep removes every blob that keep rejects and whose modification time is older than grace, and
// temp files older than grace (left by crashed writes). The grace period covers blobs that were
// written (or deduplicated, which refreshes their mtime) but whose deployment event is not yet
// appended: give it comfortably more than the longest upload request. keep is typically
// References(…).Has over the manifests of all live deployments.
//
// Within one process Sweep never races a Put: the final check and removal happen under the
// store's lock. Several processes sharing one data directory must not sweep concurrently with
// uploads younger than grace (the grace period is what protects them).
func (s *Store) Sweep(ctx context.Context, keep func(hash string) bool, grace time.Duration) (SweepResult, error) {
	var res SweepResult
	cutoff := s.now().Add(-grace)
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed concurrently
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		inTmp := strings.HasPrefix(p, s.tmp+string(filepath.Separator))
		if !inTmp && (!ValidHash(name) || keep(name)) {
			res.Kept++
			return nil
		}
		removed, size, err := s.removeIfOld(p, cutoff)
		if err != nil {
			return err
		}
		switch {
		case !removed && !inTmp:
			res.Kept++
		case removed && inTmp:
			res.TempRemoved++
		case removed:
			res.Removed++
			res.RemovedBytes += size
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("sweep blobs: %w", err)
	}
	return res, nil
}

func (s *Store) removeIfOld(p string, cutoff time.Time) (bool, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	if !fi.ModTime().Before(cutoff) {
		return false, 0, nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, 0, err
	}
	return true, fi.Size(), nil
}

// Hashes is a set of blob hashes.
type Hashes map[string]struct{}

// Has reports whether h is in the set; it is the keep function for Sweep.
func (hs Hashes) Has(h string) bool {
	_, ok := hs[h]
	return ok
}

// References expands manifest hashes into the set of every blob they reference: the manifests
// themselves and all their files. A listed manifest that is missing is an error, so a sweep never
// runs on an incomplete set.
func (s *Store) References(ctx context.Context, manifests []string) (Hashes, error) {
	set := Hashes{}
	for _, mh := range manifests {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if set.Has(mh) {
			continue
		}
		m, err := s.GetManifest(mh)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", mh, err)
		}
		set[mh] = struct{}{}
		for _, f := range m.Files {
			set[f.SHA256] = struct{}{}
		}
	}
	return set, nil
}

// Collect removes every blob not referenced by the given live manifests and older than grace:
// References followed by Sweep.
func (s *Store) Collect(ctx context.Context, liveManifests []string, grace time.Duration) (SweepResult, error) {
	keep, err := s.References(ctx, liveManifests)
	if err != nil {
		return SweepResult{}, err
	}
	return s.Sweep(ctx, keep.Has, grace)
}

func syncClose(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close blob: %w", err)
	}
	return nil
}

// syncDir makes a rename into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open blob dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync blob dir: %w", err)
	}
	return nil
}

// ctxReader stops a long copy when the request is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// HashingWriter tees writes into a sha256 so a caller streaming bytes elsewhere learns the blob
// name they would get without reading them twice.
type HashingWriter struct {
	W io.Writer
	h hash.Hash
	n int64
}

// NewHashingWriter wraps w.
func NewHashingWriter(w io.Writer) *HashingWriter { return &HashingWriter{W: w, h: sha256.New()} }

// Write implements io.Writer, hashing what it passes on.
func (hw *HashingWriter) Write(p []byte) (int, error) {
	n, err := hw.W.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

// Sum is the hex sha256 of everything written so far.
func (hw *HashingWriter) Sum() string { return hex.EncodeToString(hw.h.Sum(nil)) }

// Size is the number of bytes written so far.
func (hw *HashingWriter) Size() int64 { return hw.n }
