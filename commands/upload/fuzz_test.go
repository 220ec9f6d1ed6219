package upload

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
)

// fuzzLimits are small, so the fuzzer reaches every limit with small inputs.
var fuzzLimits = Limits{
	MaxRequestBytes: 64 << 10, MaxFiles: 4, MaxFileBytes: 16 << 10, MaxTotalFileBytes: 32 << 10,
	MaxFormValueBytes: 256, MaxParts: 8, MaxZipEntries: 16, MaxZipDirectoryBytes: 4 << 10,
	MaxUncompressedBytes: 64 << 10, MaxCompressionRatio: 100,
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

func FuzzInspectZip(f *testing.F) {
	f.Add(zipOf(f, zf("index.html", "<p>hi</p>"), zf("a/b.css", "body{}")))
	f.Add(zipOf(f, zf("index.html", "a"), zf("b.html", "b")))
	f.Add(zipOf(f, zf("../evil", "x")))
	f.Add(zipOf(f, zf("__MACOSX/._a", "x"), zf("a.txt", "y")))
	f.Add(bomb(f, 2, mib))
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Add([]byte{})
	// One directory for the whole run: t.TempDir per input slows fuzzing to a crawl.
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := fuzzLimits.withDefaults()
		plan, err := inspectZip(bytes.NewReader(data), int64(len(data)), lim, "index.html")
		if err != nil {
			checkRejection(t, err)
			return
		}
		if len(plan.entries) == 0 || len(plan.entries) > lim.MaxZipEntries {
			t.Fatalf("accepted %d entries", len(plan.entries))
		}
		dir, err := os.MkdirTemp(base, "x")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		files, err := extractZip(t.Context(), plan, int64(len(data)), lim, dir)
		if err != nil {
			checkRejection(t, err)
			return
		}
		var total int64
		for _, x := range files {
			if !fs.ValidPath(x.path) {
				t.Fatalf("accepted unsafe path %q", x.path)
			}
			fi, err := os.Stat(x.spool)
			if err != nil || fi.Size() != x.size || x.size > lim.MaxFileBytes {
				t.Fatalf("entry %q: size %d (%v)", x.path, x.size, err)
			}
			total += x.size
		}
		if total > lim.MaxUncompressedBytes {
			t.Fatalf("extracted %d bytes, limit %d", total, lim.MaxUncompressedBytes)
		}
	})
}

func FuzzParseMultipart(f *testing.F) {
	seed := func(parts ...part) {
		body, _ := form(f, parts...)
		f.Add(body)
	}
	seed(field(FieldTitle, "t"), fileS("index.html", "<p>"))
	seed(fileS("a", "1"), fileS("b", "2"), fileS("c", "3"), fileS("d", "4"), fileS("e", "5"))
	seed(fileS("../x", "1"))
	seed(field(FieldAsFileBundle, "yes"), fileS("a", "1"))
	seed(file("s.zip", zipOf(f, zf("index.html", "a"), zf("b.html", "b"))))
	f.Add([]byte("--zzz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a\"\r\n\r\nabc"))
	f.Add([]byte{})
	spool := f.TempDir()
	f.Fuzz(func(t *testing.T, body []byte) {
		// Every seed was written with a random boundary; use the one it carries, if any.
		ct := "multipart/form-data; boundary=zzz"
		if i := bytes.Index(body, []byte("\r\n")); bytes.HasPrefix(body, []byte("--")) && i > 2 {
			ct = "multipart/form-data; boundary=" + string(body[2:i])
		}
		u, err := Parse(t.Context(), bytes.NewReader(body), ct, fuzzLimits, spool)
		if err != nil {
			checkRejection(t, err)
			if left, _ := os.ReadDir(spool); len(left) != 0 {
				t.Fatalf("rejected upload left %d spool entries", len(left))
			}
			return
		}
		defer func() {
			if err := u.Cleanup(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(spool); len(left) != 0 {
				t.Fatalf("Cleanup left %d spool entries", len(left))
			}
		}()
		if len(u.Files) == 0 || len(u.Files) > fuzzLimits.MaxFiles || u.TotalBytes() > fuzzLimits.MaxTotalFileBytes {
			t.Fatalf("accepted %d files, %d bytes", len(u.Files), u.TotalBytes())
		}
		for _, f := range u.Files {
			if !fs.ValidPath(f.Path) || filepath.Dir(f.spool) != u.dir {
				t.Fatalf("file %+v", f)
			}
		}
	})
}
