package upload

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"os"
	"path/filepath"
	"testing"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events/blobs"
)

type part struct {
	field, filename string // filename set → a file part
	content         []byte
}

func field(name, value string) part { return part{field: name, content: []byte(value)} }
func file(name string, content []byte) part {
	return part{field: FieldFiles, filename: name, content: content}
}
func fileS(name, content string) part { return file(name, []byte(content)) }

// form builds a multipart/form-data body; filenames are written raw so tests can send paths.
func form(t testing.TB, parts ...part) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		if p.filename != "" {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, p.field, p.filename))
			h.Set("Content-Type", "application/octet-stream")
		} else {
			h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, p.field))
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write(p.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

type zipFile struct {
	name    string
	content []byte
}

func zf(name, content string) zipFile { return zipFile{name, []byte(content)} }

// zipOf builds an archive; names are written as given (archive/zip does not check them).
func zipOf(t testing.TB, files ...zipFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, f := range files {
		fw, err := w.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(f.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newStore(t testing.TB) *blobs.Store {
	t.Helper()
	s, err := blobs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// parseBuild runs the whole pipeline the way a handler does, cleanup included.
func parseBuild(t testing.TB, s *blobs.Store, lim Limits, body []byte, ct string) (Bundle, error) {
	t.Helper()
	u, err := Parse(t.Context(), bytes.NewReader(body), ct, lim, s.TempDir())
	if err != nil {
		return Bundle{}, err
	}
	defer func() {
		if err := u.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	}()
	return Build(t.Context(), u, s)
}

// stored lists every file under the store (blobs and temp files alike).
func stored(t testing.TB, s *blobs.Store) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(s.Dir(), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != s.TempDir() && p != s.Dir() {
			rel, _ := filepath.Rel(s.Dir(), p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertNothingStored(t testing.TB, s *blobs.Store) {
	t.Helper()
	if got := stored(t, s); len(got) != 0 {
		t.Errorf("a rejected upload left files behind: %v", got)
	}
}

// errKind describes an error as the API would answer it: "400 CODE", "413 UPLOAD_TOO_LARGE/limit",
// "422 field", or "other: …".
func errKind(err error) string {
	var he *commands.HTTPError
	var inv domain.Invalid
	switch {
	case err == nil:
		return ""
	case errors.As(err, &he):
		if l, ok := he.Details["limit"]; ok {
			return fmt.Sprintf("%d %s/%s", he.Status, he.Code, l)
		}
		return fmt.Sprintf("%d %s", he.Status, he.Code)
	case errors.As(err, &inv):
		for k := range inv {
			return "422 " + k
		}
	}
	return "other: " + err.Error()
}

func readBlob(t testing.TB, s *blobs.Store, h string) string {
	t.Helper()
	f, _, err := s.Open(h)
	if err != nil {
		t.Fatalf("open blob: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func symlinkZip(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "link"}
	h.SetMode(os.ModeSymlink | 0o777)
	fw, err := w.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write([]byte("/etc/passwd"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
