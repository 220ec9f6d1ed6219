package upload

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/litehost/litehost/commands"
	"github.com/litehost/litehost/events/blobs"
)

func TestBuildDetection(t *testing.T) {
	multi := zipOf(t, zf("index.html", "a"), zf("docs/index.html", "b"), zf("about.HTML", "c"), zf("x.css", "d"))
	tests := []struct {
		name      string
		parts     []part
		wantType  string
		wantIndex string
		wantPaths []string
		wantErr   string
	}{
		{"zip single html anywhere", []part{file("site.zip", zipOf(t, zf("dist/home.html", "<h1>"), zf("dist/a.css", "x")))},
			blobs.TypeHTML, "dist/home.html", []string{"dist/a.css", "dist/home.html"}, ""},
		{"zip no html", []part{file("docs.zip", zipOf(t, zf("a.pdf", "%PDF"), zf("b/c.png", "png")))},
			blobs.TypeFiles, "", []string{"a.pdf", "b/c.png"}, ""},
		{"zip .HTM counts", []part{file("s.zip", zipOf(t, zf("PAGE.HTM", "x"), zf("a.txt", "t")))},
			blobs.TypeHTML, "PAGE.HTM", []string{"PAGE.HTM", "a.txt"}, ""},
		{"zip upper-case extension", []part{file("SITE.ZIP", zipOf(t, zf("index.html", "x")))},
			blobs.TypeHTML, "index.html", []string{"index.html"}, ""},
		{"zip ignores __MACOSX and ._", []part{file("s.zip", zipOf(t, zf("index.html", "x"), zf("__MACOSX/._index.html", "junk"),
			zf("__MACOSX/other.html", "junk"), zf("sub/._page.html", "junk"), zf("sub/", "")))},
			blobs.TypeHTML, "index.html", []string{"index.html"}, ""},
		{"zip ./ prefix normalised", []part{file("s.zip", zipOf(t, zf("./", ""), zf("./index.html", "x"), zf("a//b.css", "y")))},
			blobs.TypeHTML, "index.html", []string{"a/b.css", "index.html"}, ""},
		{"zip multiple html without hint", []part{file("s.zip", multi)}, "", "", nil, "400 ZIP_MULTIPLE_HTML"},
		{"zip multiple html wrong hint", []part{file("s.zip", multi), field(FieldZipIndexHTMLPath, "nope.html")}, "", "", nil, "400 ZIP_MULTIPLE_HTML"},
		{"zip multiple html hint", []part{file("s.zip", multi), field(FieldZipIndexHTMLPath, "docs/index.html")},
			blobs.TypeHTML, "docs/index.html", []string{"about.HTML", "docs/index.html", "index.html", "x.css"}, ""},
		{"zip multiple html asFileBundle keeps the zip", []part{file("s.zip", multi), field(FieldAsFileBundle, "true")},
			blobs.TypeFiles, "", []string{"s.zip"}, ""},
		{"zip with only directories", []part{file("s.zip", zipOf(t, zf("a/", ""), zf("__MACOSX/x", "y")))}, "", "", nil, "422 files"},
		{"zip that is not a zip", []part{fileS("s.zip", "PK but not really")}, "", "", nil, "422 files"},
		{"zip duplicate entries", []part{file("s.zip", zipOf(t, zf("a.txt", "1"), zf("./a.txt", "2")))}, "", "", nil, "400 ZIP_INVALID_PATH"},
		{"zip symlink", []part{file("s.zip", symlinkZip(t))}, "", "", nil, "400 ZIP_INVALID_PATH"},

		{"files with index.html", []part{fileS("about.html", "a"), fileS("index.html", "i"), fileS("style.css", "c")},
			blobs.TypeHTML, "index.html", []string{"about.html", "index.html", "style.css"}, ""},
		{"files first html by path", []part{fileS("b.html", "b"), fileS("a.htm", "a")}, blobs.TypeHTML, "a.htm", []string{"a.htm", "b.html"}, ""},
		{"files hint honoured", []part{fileS("b.html", "b"), fileS("index.html", "a"), field(FieldZipIndexHTMLPath, "b.html")},
			blobs.TypeHTML, "b.html", []string{"b.html", "index.html"}, ""},
		{"files without html", []part{fileS("doc.pdf", "%PDF"), fileS("pic.png", "png")}, blobs.TypeFiles, "", []string{"doc.pdf", "pic.png"}, ""},
		{"files asFileBundle", []part{fileS("index.html", "x"), field(FieldAsFileBundle, "1")}, blobs.TypeFiles, "", []string{"index.html"}, ""},
		{"zip among other files is a file", []part{file("a.zip", multi), fileS("b.txt", "t")}, blobs.TypeFiles, "", []string{"a.zip", "b.txt"}, ""},
		{"files keep relative paths", []part{fileS("css/site.css", "c"), fileS("index.html", "i")},
			blobs.TypeHTML, "index.html", []string{"css/site.css", "index.html"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			body, ct := form(t, tt.parts...)
			b, err := parseBuild(t, s, DefaultLimits(), body, ct)
			if got := errKind(err); got != tt.wantErr {
				t.Fatalf("error = %q (%v), want %q", got, err, tt.wantErr)
			}
			if tt.wantErr != "" {
				assertNothingStored(t, s)
				return
			}
			if b.Type != tt.wantType || b.IndexPath != tt.wantIndex {
				t.Errorf("bundle = %s %q, want %s %q", b.Type, b.IndexPath, tt.wantType, tt.wantIndex)
			}
			m, err := s.GetManifest(b.ManifestHash)
			if err != nil {
				t.Fatalf("GetManifest: %v", err)
			}
			var paths []string
			var total int64
			for _, f := range m.Files {
				paths = append(paths, f.Path)
				total += f.Size
				if ok, _ := s.Exists(f.SHA256); !ok {
					t.Errorf("blob of %s missing", f.Path)
				}
			}
			if diff := cmp.Diff(tt.wantPaths, paths); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if b.FileCount != len(paths) || b.TotalBytes != total || m.Type != b.Type || m.IndexPath != b.IndexPath {
				t.Errorf("bundle %+v does not match manifest %+v", b, m)
			}
			if got := stored(t, s); len(got) == 0 || strings.Contains(strings.Join(got, " "), "upload-") {
				t.Errorf("spool left behind or nothing stored: %v", got)
			}
		})
	}
}

func TestZipMultipleHTMLListsSortedPaths(t *testing.T) {
	s := newStore(t)
	z := zipOf(t, zf("index.html", "a"), zf("docs/index.html", "b"), zf("about.html", "c"), zf("__MACOSX/x.html", "d"))
	body, ct := form(t, file("s.zip", z))
	_, err := parseBuild(t, s, DefaultLimits(), body, ct)
	var he *commands.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest || he.Code != CodeZipMultipleHTML {
		t.Fatalf("err = %v, want 400 ZIP_MULTIPLE_HTML", err)
	}
	if diff := cmp.Diff([]string{"about.html", "docs/index.html", "index.html"}, he.Details["htmlPaths"]); diff != "" {
		t.Errorf("htmlPaths (-want +got):\n%s", diff)
	}
	assertNothingStored(t, s)
}

func TestZipSlipRejected(t *testing.T) {
	for _, name := range []string{"../evil", "/etc/passwd", `C:\x`, "C:/x", "a/../../b", `a\b`, "a/..", "x\x00y", "..", "ok/../../../etc/cron"} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			z := zipOf(t, zf("index.html", "fine"), zf(name, "owned"))
			body, ct := form(t, file("s.zip", z))
			_, err := parseBuild(t, s, DefaultLimits(), body, ct)
			if got := errKind(err); got != "400 ZIP_INVALID_PATH" {
				t.Fatalf("error = %q (%v), want 400 ZIP_INVALID_PATH", got, err)
			}
			assertNothingStored(t, s)
		})
	}
}

func TestFileNamesChecked(t *testing.T) {
	for _, name := range []string{"../evil.html", "/abs.html", `C:\fakepath\a.html`, "dir/"} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			body, ct := form(t, fileS("ok.txt", "x"), fileS(name, "x"))
			_, err := parseBuild(t, s, DefaultLimits(), body, ct)
			if got := errKind(err); got != "400 INVALID_PATH" {
				t.Fatalf("error = %q (%v), want 400 INVALID_PATH", got, err)
			}
			assertNothingStored(t, s)
		})
	}
}

func TestParseLimitsAndErrors(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2<<20)
	tests := []struct {
		name    string
		lim     Limits
		parts   []part
		ct      string // overrides the multipart content type
		body    []byte // overrides the body
		wantErr string
	}{
		{"temp: six files", TempLimits(), []part{fileS("1", "a"), fileS("2", "a"), fileS("3", "a"), fileS("4", "a"), fileS("5", "a"), fileS("6", "a")}, "", nil, "413 UPLOAD_TOO_LARGE/files"},
		{"temp: five files ok", TempLimits(), []part{fileS("1", "a"), fileS("2", "a"), fileS("3", "a"), fileS("4", "a"), fileS("5", "a")}, "", nil, ""},
		{"temp: exactly 2 MiB ok", TempLimits(), []part{file("a", big[:1<<20]), file("b", big[:1<<20])}, "", nil, ""},
		{"temp: 2 MiB + 1", TempLimits(), []part{file("a", big[:1<<20]), file("b", big[:1<<20+1])}, "", nil, "413 UPLOAD_TOO_LARGE/totalFileBytes"},
		{"per-file limit", Limits{MaxFileBytes: 10}, []part{fileS("a", "0123456789x")}, "", nil, "413 UPLOAD_TOO_LARGE/fileBytes"},
		{"request limit", Limits{MaxRequestBytes: 1000}, []part{file("a", big[:2000])}, "", nil, "413 UPLOAD_TOO_LARGE/requestBytes"},
		{"form value limit", Limits{MaxFormValueBytes: 4}, []part{field(FieldTitle, "hello"), fileS("a", "x")}, "", nil, "413 UPLOAD_TOO_LARGE/formValueBytes"},
		{"unknown field limit", Limits{MaxFormValueBytes: 4}, []part{field("junk", "hello"), fileS("a", "x")}, "", nil, "413 UPLOAD_TOO_LARGE/formValueBytes"},
		{"too many parts", Limits{MaxParts: 2}, []part{field("a", ""), field("b", ""), fileS("a", "x")}, "", nil, "413 UPLOAD_TOO_LARGE/parts"},
		{"no files", Limits{}, []part{field(FieldTitle, "t")}, "", nil, "422 files"},
		{"file part without filename", Limits{}, []part{{field: FieldFiles, content: []byte("x")}}, "", nil, "422 files"},
		{"duplicate file names", Limits{}, []part{fileS("a", "1"), fileS("./a", "2")}, "", nil, "422 files"},
		{"title twice", Limits{}, []part{field(FieldTitle, "a"), field(FieldTitle, "b"), fileS("a", "x")}, "", nil, "422 title"},
		{"asFileBundle not a bool", Limits{}, []part{field(FieldAsFileBundle, "maybe"), fileS("a", "x")}, "", nil, "422 asFileBundle"},
		{"not multipart", Limits{}, nil, "application/json", []byte(`{"title":"x"}`), "400 BAD_REQUEST"},
		{"no boundary", Limits{}, nil, "multipart/form-data", []byte("x"), "400 BAD_REQUEST"},
		{"garbage body", Limits{}, nil, "multipart/form-data; boundary=zzz", []byte("--zzz\r\nnot a header line\r\n\r\n"), "400 BAD_REQUEST"},
		{"truncated body", Limits{}, nil, "multipart/form-data; boundary=zzz", []byte("--zzz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a\"\r\n\r\nabc"), "400 BAD_REQUEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			body, ct := form(t, tt.parts...)
			if tt.ct != "" {
				ct = tt.ct
			}
			if tt.body != nil {
				body = tt.body
			}
			u, err := Parse(t.Context(), bytes.NewReader(body), ct, tt.lim, s.TempDir())
			if got := errKind(err); got != tt.wantErr {
				t.Fatalf("error = %q (%v), want %q", got, err, tt.wantErr)
			}
			if err != nil {
				if u != nil {
					t.Error("Parse returned an upload with an error")
				}
				assertNothingStored(t, s)
				return
			}
			if err := u.Cleanup(); err != nil {
				t.Fatal(err)
			}
			assertNothingStored(t, s)
		})
	}
}

func TestParseFields(t *testing.T) {
	s := newStore(t)
	body, ct := form(t,
		field(FieldTitle, "My Site"), field(FieldSlug, "my-site"), field(FieldAccess, "password"),
		field(FieldPassword, "pw"), field(FieldExpiresIn, "1h"), field(FieldDomainID, "d"), field(FieldWorkspaceID, "w"),
		field(FieldZipIndexHTMLPath, "x/index.html"), field(FieldAsFileBundle, "false"), field("ignored", "v"),
		fileS("index.html", "<p>hi</p>"))
	u, err := Parse(t.Context(), bytes.NewReader(body), ct, Limits{}, s.TempDir())
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	defer u.Cleanup()
	want := Fields{Title: "My Site", Slug: "my-site", Access: "password", Password: "pw", ExpiresIn: "1h", DomainID: "d",
		WorkspaceID: "w", ZipIndexHTMLPath: "x/index.html", Present: map[string]bool{
			FieldTitle: true, FieldSlug: true, FieldAccess: true, FieldPassword: true, FieldExpiresIn: true, FieldDomainID: true,
			FieldWorkspaceID: true, FieldZipIndexHTMLPath: true, FieldAsFileBundle: true}}
	if diff := cmp.Diff(want, u.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if len(u.Files) != 1 || u.Files[0].Path != "index.html" || u.Files[0].Size != 9 ||
		u.Files[0].ContentType != "text/html; charset=utf-8" || u.Files[0].SHA256 == "" {
		t.Errorf("files = %+v", u.Files)
	}
}

func TestParseRequestRefusesDeclaredLength(t *testing.T) {
	s := newStore(t)
	body, ct := form(t, fileS("a", "x"))
	r := httptest.NewRequest(http.MethodPost, "/v1/projects", bytes.NewReader(body))
	r.Header.Set("Content-Type", ct)
	r.ContentLength = 1 << 40
	_, err := ParseRequest(t.Context(), r, Limits{}, s.TempDir())
	if got := errKind(err); got != "413 UPLOAD_TOO_LARGE/requestBytes" {
		t.Fatalf("error = %q (%v)", got, err)
	}
	assertNothingStored(t, s)
}

func TestParseCancelled(t *testing.T) {
	s := newStore(t)
	body, ct := form(t, fileS("a", "x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Parse(ctx, bytes.NewReader(body), ct, Limits{}, s.TempDir())
	if !errors.Is(err, ctx.Err()) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	assertNothingStored(t, s)
}

func TestBuildDeduplicatesAcrossUploads(t *testing.T) {
	s := newStore(t)
	body, ct := form(t, fileS("index.html", "same"), fileS("a.css", "css"))
	b1, err := parseBuild(t, s, Limits{}, body, ct)
	if err != nil {
		t.Fatal(err)
	}
	z := zipOf(t, zf("index.html", "same"), zf("a.css", "css"))
	body2, ct2 := form(t, file("s.zip", z))
	b2, err := parseBuild(t, s, Limits{}, body2, ct2)
	if err != nil {
		t.Fatal(err)
	}
	if b1.ManifestHash != b2.ManifestHash {
		t.Errorf("same files gave two manifests: %s vs %s", b1.ManifestHash, b2.ManifestHash)
	}
	if got := stored(t, s); len(got) != 3*3 { // 3 blobs (2 files + manifest), each with 2 fan-out dirs
		t.Errorf("store holds %v, want 3 blobs", got)
	}
	m, _ := s.GetManifest(b1.ManifestHash)
	idx, _ := m.Lookup("index.html")
	if got := readBlob(t, s, idx.SHA256); got != "same" {
		t.Errorf("index.html = %q", got)
	}
}
