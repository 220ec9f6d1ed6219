package upload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
)

// The fuzz targets must stay cheap per input. When the fuzzer finds an input with new coverage it
// minimizes it before reporting anything, trying up to n²/2 shorter variants of an n-byte input
// for up to -fuzzminimizetime (60s by default), and the exec counter does not move meanwhile
// (golang/go#48820). With real spool files (~1 ms of file system calls per input here) and seeds
// of 1-2 KiB, every minimization hit that timeout and fuzzing looked stalled. Hence: spooling to
// memSpool, seeds of a few hundred bytes, and limits small enough that no input does much work.

// fuzzLimits are small, so the fuzzer reaches every limit with small inputs.
var fuzzLimits = Limits{
	MaxRequestBytes: 64 << 10, MaxFiles: 4, MaxFileBytes: 16 << 10, MaxTotalFileBytes: 32 << 10,
	MaxFormValueBytes: 256, MaxParts: 8, MaxZipEntries: 16, MaxZipDirectoryBytes: 4 << 10,
	MaxUncompressedBytes: 64 << 10, MaxCompressionRatio: 100,
}

// inputDeadline bounds one fuzz input. Every input is at most a few dozen KiB against small
// limits, so one taking seconds is unbounded work on hostile input: a bug. The Go fuzzer has no
// per-input timeout of its own (a hung input stalls the worker for good), so watchdog crashes the
// worker, which makes the fuzzer save the input under testdata/fuzz.
const inputDeadline = 10 * time.Second

// watchdog panics, naming the input, if the returned stop is not called within inputDeadline.
func watchdog(input []byte) (stop func()) {
	t := time.AfterFunc(inputDeadline, func() {
		panic(fmt.Sprintf("fuzz input still running after %v (unbounded work?): %q", inputDeadline, input))
	})
	return func() { t.Stop() }
}

// checkRejection fails unless err is one of the answers the API may give for bad input.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	var he *commands.HTTPError
	var inv domain.Invalid
	switch {
	case errors.As(err, &he):
		if he.Status != http.StatusBadRequest && he.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("unexpected status %d: %v", he.Status, err)
		}
	case errors.As(err, &inv):
	default:
		t.Fatalf("bad input produced an unclassified error: %v", err)
	}
}

// memSpool is an in-memory spoolFS with the semantics the package relies on: Create refuses an
// existing name, RemoveAll removes a directory's files. Not safe for concurrent use (each fuzz
// input gets its own).
type memSpool struct {
	files map[string]*bytes.Buffer
	dirs  int
}

func newMemSpool() *memSpool { return &memSpool{files: map[string]*bytes.Buffer{}} }

func (m *memSpool) MkdirTemp(dir, pattern string) (string, error) {
	m.dirs++
	return filepath.Join(dir, strings.Replace(pattern, "*", fmt.Sprint(m.dirs), 1)), nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (m *memSpool) Create(name string) (io.WriteCloser, error) {
	if _, ok := m.files[name]; ok {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	}
	b := &bytes.Buffer{}
	m.files[name] = b
	return nopCloser{b}, nil
}

type readerAtNopCloser struct{ *bytes.Reader }

func (readerAtNopCloser) Close() error { return nil }

func (m *memSpool) Open(name string) (spoolFile, error) {
	b, ok := m.files[name]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return readerAtNopCloser{bytes.NewReader(b.Bytes())}, nil
}

func (m *memSpool) RemoveAll(path string) error {
	for name := range m.files {
		if strings.HasPrefix(name, path+string(filepath.Separator)) {
			delete(m.files, name)
		}
	}
	return nil
}

// size is the size of a spooled file, -1 if there is none.
func (m *memSpool) size(name string) int64 {
	if b, ok := m.files[name]; ok {
		return int64(b.Len())
	}
	return -1
}

func FuzzInspectZip(f *testing.F) {
	f.Add(zipOf(f, zf("index.html", "<p>hi</p>"), zf("a/b.css", "body{}")))
	f.Add(zipOf(f, zf("index.html", "a"), zf("b.html", "b")))
	f.Add(zipOf(f, zf("../evil", "x")))
	f.Add(zipOf(f, zf("__MACOSX/._a", "x"), zf("a.txt", "y")))
	// Bombs as small as the fuzz limits allow: one that declares 64 KiB (over MaxFileBytes), and
	// one whose directory claims 100 bytes, which only extraction catches.
	small := zipOf(f, zipFile{"zeros.bin", make([]byte, 64<<10)})
	f.Add(small)
	f.Add(patchCentralSizes(small, 100))
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(data)()
		lim := fuzzLimits.withDefaults()
		plan, err := inspectZip(bytes.NewReader(data), int64(len(data)), lim, "index.html")
		if err != nil {
			checkRejection(t, err)
			return
		}
		if len(plan.entries) == 0 || len(plan.entries) > lim.MaxZipEntries {
			t.Fatalf("accepted %d entries", len(plan.entries))
		}
		spool := newMemSpool()
		files, err := extractZip(t.Context(), spool, plan, int64(len(data)), lim, "spool")
		if err != nil {
			checkRejection(t, err)
			return
		}
		var total int64
		for _, x := range files {
			if !fs.ValidPath(x.path) {
				t.Fatalf("accepted unsafe path %q", x.path)
			}
			if n := spool.size(x.spool); n != x.size || x.size > lim.MaxFileBytes {
				t.Fatalf("entry %q: size %d, spooled %d", x.path, x.size, n)
			}
			total += x.size
		}
		if total > lim.MaxUncompressedBytes {
			t.Fatalf("extracted %d bytes, limit %d", total, lim.MaxUncompressedBytes)
		}
	})
}

func FuzzParseMultipart(f *testing.F) {
	// Seeds are kept short (see the comment at the top): form's random 60-character boundary
	// becomes "z" (no seed content contains "\r\n--z") and the file parts' Content-Type header,
	// which Parse does not read, goes.
	seed := func(parts ...part) {
		body, ct := form(f, parts...)
		_, params, err := mime.ParseMediaType(ct)
		if err != nil {
			f.Fatal(err)
		}
		body = bytes.ReplaceAll(body, []byte(params["boundary"]), []byte("z"))
		f.Add(bytes.ReplaceAll(body, []byte("Content-Type: application/octet-stream\r\n"), nil))
	}
	seed(field(FieldTitle, "t"), fileS("index.html", "<p>"))
	seed(fileS("a", "1"), fileS("b", "2"), fileS("c", "3"), fileS("d", "4"), fileS("e", "5"))
	seed(fileS("../x", "1"))
	seed(field(FieldAsFileBundle, "yes"), fileS("a", "1"))
	seed(file("s.zip", zipOf(f, zf("index.html", "a"), zf("b.html", "b"))))
	f.Add([]byte("--zzz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a\"\r\n\r\nabc"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		defer watchdog(body)()
		// Use the boundary the body starts with, if any.
		ct := "multipart/form-data; boundary=zzz"
		if i := bytes.Index(body, []byte("\r\n")); bytes.HasPrefix(body, []byte("--")) && i > 2 {
			ct = "multipart/form-data; boundary=" + string(body[2:i])
		}
		spool := newMemSpool()
		u, err := parse(t.Context(), bytes.NewReader(body), ct, fuzzLimits, spool, "spool")
		if err != nil {
			checkRejection(t, err)
			if len(spool.files) != 0 {
				t.Fatalf("rejected upload left %d spool files", len(spool.files))
			}
			return
		}
		defer func() {
			if err := u.Cleanup(); err != nil {
				t.Fatal(err)
			}
			if len(spool.files) != 0 {
				t.Fatalf("Cleanup left %d spool files", len(spool.files))
			}
		}()
		if len(u.Files) == 0 || len(u.Files) > fuzzLimits.MaxFiles || u.TotalBytes() > fuzzLimits.MaxTotalFileBytes {
			t.Fatalf("accepted %d files, %d bytes", len(u.Files), u.TotalBytes())
		}
		for _, f := range u.Files {
			if !fs.ValidPath(f.Path) || filepath.Dir(f.spool) != u.dir || spool.size(f.spool) != f.Size {
				t.Fatalf("file %+v (spooled %d bytes)", f, spool.size(f.spool))
			}
		}
		// The detection rules and, for a single .zip, inspection and extraction from the spool.
		p, err := Prepare(t.Context(), u)
		if err != nil {
			checkRejection(t, err)
			return
		}
		if p.FileCount == 0 || p.TotalBytes > fuzzLimits.MaxUncompressedBytes {
			t.Fatalf("prepared %d files, %d bytes", p.FileCount, p.TotalBytes)
		}
		for _, path := range p.spools {
			if spool.size(path) < 0 {
				t.Fatalf("prepared file %s is not spooled", path)
			}
		}
	})
}
