package upload

import (
	"archive/zip"
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/litehost/litehost/domain"
	"github.com/litehost/litehost/events/blobs"
)

// zipEntry is one ZIP entry that will become a file of the bundle.
type zipEntry struct {
	path string
	f    *zip.File
}

// zipPlan is what inspecting the central directory decided, before any byte is decompressed.
type zipPlan struct {
	entries   []zipEntry
	typ       string
	indexPath string
}

// inspectZip reads the archive's central directory and applies every rule that needs no
// decompression: entry count and directory size (checked by our own scan first, because
// archive/zip keeps the whole directory in memory), entry names, declared sizes and ratios,
// encryption and methods, and the spec §3 HTML detection. Nothing is extracted.
func inspectZip(r io.ReaderAt, size int64, lim Limits, indexHint string) (zipPlan, error) {
	if err := scanCentralDirectory(r, size, lim); err != nil {
		return zipPlan{}, err
	}
	zr, err := zip.NewReader(r, size)
	// ErrInsecurePath comes with a usable reader; our own path rules below give the precise error.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return zipPlan{}, notAZip()
	}
	if len(zr.File) > lim.MaxZipEntries {
		return zipPlan{}, tooLarge(LimitZipEntries, int64(lim.MaxZipEntries), "the ZIP has too many entries")
	}
	var (
		plan     zipPlan
		seen     = map[string]bool{}
		declared uint64
		html     []string
	)
	for _, f := range zr.File {
		p, dir, problem := cleanPath(f.Name)
		if problem == "" && f.Mode()&os.ModeSymlink != 0 {
			problem = "symbolic link"
		}
		if problem != "" {
			return zipPlan{}, badRequest(CodeZipInvalidPath,
				"ZIP entry "+strconv.Quote(f.Name)+" is not a safe relative path: "+problem,
				map[string]any{"path": f.Name})
		}
		if dir || f.Mode().IsDir() || ignored(p) {
			continue
		}
		if seen[p] {
			return zipPlan{}, badRequest(CodeZipInvalidPath, "ZIP has two entries named "+strconv.Quote(p),
				map[string]any{"path": f.Name})
		}
		seen[p] = true
		if f.Flags&0x1 != 0 {
			return zipPlan{}, domain.Invalid{FieldFiles: "encrypted ZIP entries are not supported (" + p + ")"}
		}
		if f.Method != zip.Store && f.Method != zip.Deflate {
			return zipPlan{}, domain.Invalid{FieldFiles: "ZIP entry " + p + " uses an unsupported compression method"}
		}
		// Declared sizes are only used to refuse early; extraction counts the real bytes.
		if f.UncompressedSize64 > uint64(lim.MaxFileBytes) {
			return zipPlan{}, tooLarge(LimitFileBytes, lim.MaxFileBytes, "ZIP entry "+p+" is too large")
		}
		declared += f.UncompressedSize64
		if declared > uint64(lim.MaxUncompressedBytes) {
			return zipPlan{}, tooLarge(LimitUncompressedBytes, lim.MaxUncompressedBytes, "the ZIP expands beyond the upload limit")
		}
		if ratioExceeded(f.UncompressedSize64, f.CompressedSize64, lim.MaxCompressionRatio) {
			return zipPlan{}, tooLarge(LimitCompressionRatio, lim.MaxCompressionRatio, "ZIP entry "+p+" is compressed suspiciously well")
		}
		plan.entries = append(plan.entries, zipEntry{path: p, f: f})
		if isHTML(p) {
			html = append(html, p)
		}
	}
	if ratioExceeded(declared, uint64(size), lim.MaxCompressionRatio) {
		return zipPlan{}, tooLarge(LimitCompressionRatio, lim.MaxCompressionRatio, "the ZIP is compressed suspiciously well")
	}
	if len(plan.entries) == 0 {
		return zipPlan{}, domain.Invalid{FieldFiles: "the ZIP contains no files"}
	}
	plan.typ, plan.indexPath, err = detect(html, indexHint)
	if err != nil {
		return zipPlan{}, err
	}
	return plan, nil
}

// detect applies spec §3 to the HTML files of a ZIP: none → file bundle; one → site with it as
// homepage; several → the hint must name one of them, else ZIP_MULTIPLE_HTML with the sorted list.
func detect(html []string, hint string) (typ, index string, err error) {
	switch {
	case len(html) == 0:
		return blobs.TypeFiles, "", nil
	case len(html) == 1:
		return blobs.TypeHTML, html[0], nil
	}
	slices.Sort(html)
	if h, _, problem := cleanPath(hint); problem == "" && slices.Contains(html, h) {
		return blobs.TypeHTML, h, nil
	}
	return "", "", badRequest(CodeZipMultipleHTML,
		"ZIP contains several HTML files; choose the homepage with zipIndexHtmlPath",
		map[string]any{"htmlPaths": html})
}

// ratioExceeded reports uncompressed/compressed > ratio for sizes past ratioFloor, without
// overflowing on hostile 64-bit header values.
func ratioExceeded(uncompressed, compressed uint64, ratio int64) bool {
	if uncompressed <= ratioFloor {
		return false
	}
	if compressed > math.MaxUint64/uint64(ratio) {
		return false
	}
	return uncompressed > compressed*uint64(ratio)
}

func notAZip() error {
	return domain.Invalid{FieldFiles: "the uploaded .zip is not a valid ZIP archive"}
}

// extracted is an entry written to the spool.
type extracted struct {
	path, spool, sha256, contentType string
	size                             int64
}

// budget tracks the real decompressed bytes against the limits while extracting.
type budget struct {
	lim     Limits
	zipSize int64
	total   int64
	buf     []byte // io.CopyBuffer's buffer, shared by the entries
}

// extractEntry decompresses one entry to dst, counting the real bytes through a LimitReader: the
// header sizes were only a first filter, and the limits hold whatever the headers claim.
func extractEntry(ctx context.Context, fsys spoolFS, e zipEntry, dst string, b *budget) (extracted, error) {
	lim := b.lim
	allowed, limit, max := lim.MaxFileBytes, LimitFileBytes, lim.MaxFileBytes
	if left := lim.MaxUncompressedBytes - b.total; left < allowed {
		allowed, limit, max = left, LimitUncompressedBytes, lim.MaxUncompressedBytes
	}
	if r := ratioAllowance(e.f.CompressedSize64, lim.MaxCompressionRatio); r < allowed {
		allowed, limit, max = r, LimitCompressionRatio, lim.MaxCompressionRatio
	}
	if r := ratioAllowance(uint64(b.zipSize), lim.MaxCompressionRatio) - b.total; r < allowed {
		allowed, limit, max = r, LimitCompressionRatio, lim.MaxCompressionRatio
	}
	rc, err := e.f.Open()
	if err != nil {
		return extracted{}, notAZip()
	}
	defer rc.Close()
	out, err := fsys.Create(dst)
	if err != nil {
		return extracted{}, fmt.Errorf("create spool file: %w", err)
	}
	head := &headWriter{}
	hw := blobs.NewHashingWriter(io.MultiWriter(out, head))
	n, err := io.CopyBuffer(hw, io.LimitReader(ctxReader{ctx: ctx, r: rc}, allowed+1), b.buf)
	if cerr := out.Close(); err == nil && cerr != nil {
		return extracted{}, fmt.Errorf("write spool file: %w", cerr)
	}
	b.total += n
	switch {
	case n > allowed:
		return extracted{}, tooLarge(limit, max, "ZIP entry "+e.path+" expands beyond the upload limits")
	case ctx.Err() != nil:
		return extracted{}, ctx.Err()
	case isPathError(err):
		return extracted{}, fmt.Errorf("spool ZIP entry: %w", err)
	case err != nil:
		return extracted{}, domain.Invalid{FieldFiles: "ZIP entry " + e.path + " is corrupt"}
	}
	return extracted{path: e.path, spool: dst, sha256: hw.Sum(), size: n, contentType: blobs.ContentType(e.path, head.b)}, nil
}

// ratioAllowance is how many bytes compressed bytes may expand to: the ratio, or ratioFloor.
func ratioAllowance(compressed uint64, ratio int64) int64 {
	if compressed > uint64(math.MaxInt64/ratio) {
		return math.MaxInt64
	}
	return max(int64(compressed)*ratio, ratioFloor)
}

// extractZip writes every planned entry to spool files under dir in fsys.
func extractZip(ctx context.Context, fsys spoolFS, plan zipPlan, zipSize int64, lim Limits, dir string) ([]extracted, error) {
	b := &budget{lim: lim, zipSize: zipSize, buf: make([]byte, min(copyBufferSize, lim.MaxFileBytes+1))}
	out := make([]extracted, 0, len(plan.entries))
	for i, e := range plan.entries {
		x, err := extractEntry(ctx, fsys, e, filepath.Join(dir, fmt.Sprintf("z%05d", i)), b)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// Signatures and sizes of the ZIP records scanCentralDirectory reads (APPNOTE 4.3.12-4.3.16).
const (
	sigDirEnd       = 0x06054b50
	sigDir64Locator = 0x07064b50
	sigDir64End     = 0x06064b50
	sigDirHeader    = 0x02014b50
	dirEndLen       = 22
	dir64LocatorLen = 20
	dir64EndLen     = 56
	dirHeaderLen    = 46
)

// scanCentralDirectory counts the central directory's headers and bytes with constant memory and
// refuses an archive over MaxZipEntries or MaxZipDirectoryBytes before archive/zip reads the
// directory into memory (it reads every header present, whatever count the end record states).
// It starts where archive/zip would (trying both offsets of its prefixed-data heuristic) and
// counts at least as many headers as it will. An archive it cannot make sense of is left for
// zip.NewReader to refuse.
func scanCentralDirectory(r io.ReaderAt, size int64, lim Limits) error {
	tailLen := min(size, dirEndLen+math.MaxUint16)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil && !errors.Is(err, io.EOF) {
		return notAZip()
	}
	pos := -1
	for i := len(tail) - dirEndLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(tail[i:]) == sigDirEnd {
			pos = i
			break
		}
	}
	if pos < 0 {
		return notAZip()
	}
	end := tail[pos:]
	endOffset := size - tailLen + int64(pos)
	records := uint64(binary.LittleEndian.Uint16(end[10:]))
	dirSize := uint64(binary.LittleEndian.Uint32(end[12:]))
	dirOffset := uint64(binary.LittleEndian.Uint32(end[16:]))
	if records == 0xffff || dirSize == 0xffffffff || dirOffset == 0xffffffff {
		if loc := endOffset - dir64LocatorLen; loc >= 0 {
			var lb [dir64LocatorLen]byte
			if _, err := r.ReadAt(lb[:], loc); err == nil && binary.LittleEndian.Uint32(lb[:]) == sigDir64Locator {
				off := int64(binary.LittleEndian.Uint64(lb[8:]))
				var eb [dir64EndLen]byte
				if off >= 0 && off < size {
					if _, err := r.ReadAt(eb[:], off); err == nil && binary.LittleEndian.Uint32(eb[:]) == sigDir64End {
						endOffset = off
						records = binary.LittleEndian.Uint64(eb[32:])
						dirSize = binary.LittleEndian.Uint64(eb[40:])
						dirOffset = binary.LittleEndian.Uint64(eb[48:])
					}
				}
			}
		}
	}
	if records > uint64(lim.MaxZipEntries) {
		return tooLarge(LimitZipEntries, int64(lim.MaxZipEntries), "the ZIP has too many entries")
	}
	if dirSize > math.MaxInt64 || dirOffset > math.MaxInt64 {
		return notAZip()
	}
	starts := []int64{int64(dirOffset)}
	if base := endOffset - int64(dirSize) - int64(dirOffset); base != 0 {
		starts = append(starts, base+int64(dirOffset))
	}
	for _, start := range starts {
		if start < 0 || start >= size {
			continue
		}
		if err := scanHeaders(io.NewSectionReader(r, start, size-start), lim); err != nil {
			return err
		}
	}
	return nil
}

func scanHeaders(r io.Reader, lim Limits) error {
	br := bufio.NewReader(r)
	var (
		hdr      [dirHeaderLen]byte
		count    int
		dirBytes int64
	)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil // the directory ends here (or is truncated, which zip.NewReader reports)
		}
		if binary.LittleEndian.Uint32(hdr[:]) != sigDirHeader {
			return nil
		}
		count++
		if count > lim.MaxZipEntries {
			return tooLarge(LimitZipEntries, int64(lim.MaxZipEntries), "the ZIP has too many entries")
		}
		variable := int64(binary.LittleEndian.Uint16(hdr[28:])) + int64(binary.LittleEndian.Uint16(hdr[30:])) +
			int64(binary.LittleEndian.Uint16(hdr[32:]))
		dirBytes += dirHeaderLen + variable
		if dirBytes > lim.MaxZipDirectoryBytes {
			return tooLarge(LimitZipDirectoryBytes, lim.MaxZipDirectoryBytes, "the ZIP's central directory is too large")
		}
		if _, err := br.Discard(int(variable)); err != nil {
			return nil
		}
	}
}

// ctxReader stops a long decompression when the request is cancelled.
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

// isZipName reports a file that is inspected as a ZIP: by extension, case-insensitive.
func isZipName(p string) bool {
	return strings.EqualFold(path.Ext(p), ".zip")
}
