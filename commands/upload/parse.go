package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"unicode/utf8"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events/blobs"
)

// Field names of the multipart form (spec §4.4).
const (
	FieldFiles            = "files"
	FieldTitle            = "title"
	FieldSlug             = "slug"
	FieldDomainID         = "domainId"
	FieldWorkspaceID      = "workspaceId"
	FieldAccess           = "access"
	FieldPassword         = "password"
	FieldExpiresIn        = "expiresIn"
	FieldZipIndexHTMLPath = "zipIndexHtmlPath"
	FieldAsFileBundle     = "asFileBundle"
)

// Fields are the scalar form fields, raw: the project commands validate their meaning. Unknown
// fields are read (within the limits) and dropped.
type Fields struct {
	Title, Slug, DomainID, WorkspaceID, Access, Password, ExpiresIn, ZipIndexHTMLPath string
	AsFileBundle                                                                      bool
	// Present holds the names of the fields the request carried, so "sent empty" and "not sent"
	// differ (e.g. a PUT that sends no asFileBundle).
	Present map[string]bool
}

func (f *Fields) slot(name string) *string {
	switch name {
	case FieldTitle:
		return &f.Title
	case FieldSlug:
		return &f.Slug
	case FieldDomainID:
		return &f.DomainID
	case FieldWorkspaceID:
		return &f.WorkspaceID
	case FieldAccess:
		return &f.Access
	case FieldPassword:
		return &f.Password
	case FieldExpiresIn:
		return &f.ExpiresIn
	case FieldZipIndexHTMLPath:
		return &f.ZipIndexHTMLPath
	}
	return nil
}

// File is one uploaded file, spooled to disk and hashed while it streamed in.
type File struct {
	Path        string // safe relative path from the part's filename
	Size        int64
	SHA256      string
	ContentType string
	spool       string
}

// Upload is a parsed request: its fields and spooled files. Call Cleanup when done, whatever
// happened; Build moves files out of the spool, Cleanup removes the rest.
type Upload struct {
	Fields Fields
	Files  []File
	limits Limits
	fs     spoolFS
	dir    string
	seen   map[string]bool
	buf    []byte // io.CopyBuffer's buffer, shared by the parts instead of one per part
}

// TotalBytes is the sum of the uploaded file sizes (as uploaded: a ZIP counts compressed).
func (u *Upload) TotalBytes() int64 {
	var n int64
	for _, f := range u.Files {
		n += f.Size
	}
	return n
}

// Cleanup removes the spool directory and everything still in it.
func (u *Upload) Cleanup() error {
	if u == nil || u.dir == "" {
		return nil
	}
	if err := u.fs.RemoveAll(u.dir); err != nil {
		return fmt.Errorf("remove upload spool: %w", err)
	}
	return nil
}

// ParseRequest is Parse over an HTTP request, refusing a declared Content-Length over the limit
// before reading anything.
func ParseRequest(ctx context.Context, r *http.Request, lim Limits, spoolDir string) (*Upload, error) {
	lim = lim.withDefaults()
	if r.ContentLength > lim.MaxRequestBytes {
		return nil, tooLarge(LimitRequestBytes, lim.MaxRequestBytes, "request body is larger than the upload limit")
	}
	return Parse(ctx, r.Body, r.Header.Get("Content-Type"), lim, spoolDir)
}

// Parse streams a multipart/form-data body: each `files` part goes to a spool file in a new
// directory under spoolDir (hashed while written), scalar fields are collected. Memory stays at a
// few buffers whatever the body holds; every limit is enforced as the bytes arrive. On error
// nothing is left in spoolDir. Use blobs.Store.TempDir() as spoolDir so Build can rename spooled
// files into the store instead of copying them.
func Parse(ctx context.Context, body io.Reader, contentType string, lim Limits, spoolDir string) (*Upload, error) {
	return parse(ctx, body, contentType, lim, osSpool{}, spoolDir)
}

// parse is Parse spooling to fsys.
func parse(ctx context.Context, body io.Reader, contentType string, lim Limits, fsys spoolFS, spoolDir string) (_ *Upload, err error) {
	lim = lim.withDefaults()
	mt, params, perr := mime.ParseMediaType(contentType)
	if perr != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, badRequest(CodeBadRequest, "the body must be multipart/form-data", nil)
	}
	dir, err := fsys.MkdirTemp(spoolDir, "upload-*")
	if err != nil {
		return nil, fmt.Errorf("create upload spool: %w", err)
	}
	u := &Upload{limits: lim, fs: fsys, dir: dir, Fields: Fields{Present: map[string]bool{}}, seen: map[string]bool{}}
	defer func() {
		if err != nil {
			_ = u.Cleanup() // the error is what the caller needs; a leftover is swept later
		}
	}()

	cb := &cappedBody{ctx: ctx, r: body, left: lim.MaxRequestBytes}
	mr := multipart.NewReader(cb, params["boundary"])
	var parts int
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readError(ctx, cb, lim, err)
		}
		parts++
		if parts > lim.MaxParts {
			return nil, tooLarge(LimitParts, int64(lim.MaxParts), "too many form parts")
		}
		if err := u.readPart(ctx, cb, p); err != nil {
			return nil, err
		}
	}
	if len(u.Files) == 0 {
		return nil, domain.Invalid{FieldFiles: "at least one file is required"}
	}
	return u, nil
}

func (u *Upload) readPart(ctx context.Context, cb *cappedBody, p *multipart.Part) error {
	defer p.Close()
	lim := u.limits
	name := p.FormName()
	if name == FieldFiles {
		return u.readFile(ctx, cb, p)
	}
	value, err := io.ReadAll(io.LimitReader(p, lim.MaxFormValueBytes+1))
	if err != nil {
		return readError(ctx, cb, lim, err)
	}
	if int64(len(value)) > lim.MaxFormValueBytes {
		return tooLarge(LimitFormValueBytes, lim.MaxFormValueBytes, fmt.Sprintf("form field %q is too long", name))
	}
	if name == FieldAsFileBundle {
		if u.Fields.Present[name] {
			return domain.Invalid{name: "sent more than once"}
		}
		u.Fields.Present[name] = true
		s := string(value)
		if s == "" {
			return nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return domain.Invalid{name: "must be true or false"}
		}
		u.Fields.AsFileBundle = b
		return nil
	}
	slot := u.Fields.slot(name)
	if slot == nil {
		return nil // unknown field: read within the limit, then dropped
	}
	if u.Fields.Present[name] {
		return domain.Invalid{name: "sent more than once"}
	}
	if !utf8.Valid(value) {
		return domain.Invalid{name: "must be UTF-8 text"}
	}
	u.Fields.Present[name] = true
	*slot = string(value)
	return nil
}

func (u *Upload) readFile(ctx context.Context, cb *cappedBody, p *multipart.Part) error {
	lim := u.limits
	if len(u.Files) >= lim.MaxFiles {
		return tooLarge(LimitFiles, int64(lim.MaxFiles), fmt.Sprintf("at most %d files per upload", lim.MaxFiles))
	}
	// The raw filename, not p.FileName(): that one keeps only the base name, and a client that
	// sends "css/site.css" means the path. It is checked like a ZIP entry name.
	_, cd, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	raw, ok := cd["filename"]
	if !ok || raw == "" {
		return domain.Invalid{FieldFiles: "every files part needs a filename"}
	}
	clean, dir, problem := cleanPath(raw)
	if problem == "" && dir {
		problem = "names a directory"
	}
	if problem != "" {
		return badRequest(CodeInvalidPath, "file name "+strconv.Quote(raw)+" is not a safe relative path: "+problem,
			map[string]any{"path": raw})
	}
	if u.seen[clean] {
		return domain.Invalid{FieldFiles: "two files are named " + strconv.Quote(clean)}
	}
	u.seen[clean] = true

	allowed := min(lim.MaxFileBytes, lim.MaxTotalFileBytes-u.TotalBytes())
	spool := filepath.Join(u.dir, fmt.Sprintf("f%05d", len(u.Files)))
	f, err := u.fs.Create(spool)
	if err != nil {
		return fmt.Errorf("create spool file: %w", err)
	}
	head := &headWriter{}
	hw := blobs.NewHashingWriter(io.MultiWriter(f, head))
	if u.buf == nil {
		u.buf = make([]byte, min(copyBufferSize, lim.MaxFileBytes+1))
	}
	n, err := io.CopyBuffer(hw, io.LimitReader(p, allowed+1), u.buf)
	if cerr := f.Close(); err == nil && cerr != nil {
		return fmt.Errorf("write spool file: %w", cerr)
	}
	if err != nil {
		return readError(ctx, cb, lim, err)
	}
	if n > allowed {
		if allowed == lim.MaxFileBytes {
			return tooLarge(LimitFileBytes, lim.MaxFileBytes, fmt.Sprintf("%s is larger than %d bytes", clean, lim.MaxFileBytes))
		}
		return tooLarge(LimitTotalFileBytes, lim.MaxTotalFileBytes, fmt.Sprintf("the files add up to more than %d bytes", lim.MaxTotalFileBytes))
	}
	u.Files = append(u.Files, File{
		Path:        clean,
		Size:        n,
		SHA256:      hw.Sum(),
		ContentType: blobs.ContentType(clean, head.b),
		spool:       spool,
	})
	return nil
}

// readError classifies a failure while reading the body: the request cap, a cancelled request,
// a local write failure, or a malformed body.
func readError(ctx context.Context, cb *cappedBody, lim Limits, err error) error {
	switch {
	case cb.over:
		return tooLarge(LimitRequestBytes, lim.MaxRequestBytes, "request body is larger than the upload limit")
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, os.ErrClosed), isPathError(err):
		return fmt.Errorf("spool upload: %w", err)
	}
	return badRequest(CodeBadRequest, "malformed multipart body", nil)
}

func isPathError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

// cappedBody reads at most left bytes of the body, then fails (and remembers why), and stops when
// the request's context ends.
type cappedBody struct {
	ctx  context.Context
	r    io.Reader
	left int64
	over bool
}

var errBodyTooLarge = errors.New("request body too large")

func (c *cappedBody) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.left <= 0 {
		// One byte more tells an over-long body from one that ends exactly at the cap.
		var one [1]byte
		for {
			n, err := c.r.Read(one[:])
			if n > 0 {
				c.over = true
				return 0, errBodyTooLarge
			}
			if err != nil {
				return 0, err
			}
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// copyBufferSize is io.Copy's own buffer size.
const copyBufferSize = 32 << 10

// headWriter keeps the first 512 bytes, what content sniffing looks at.
type headWriter struct{ b []byte }

func (h *headWriter) Write(p []byte) (int, error) {
	if room := 512 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
