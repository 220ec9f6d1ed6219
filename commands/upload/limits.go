// Package upload turns a multipart upload into a deployment bundle: it streams the parts to spool
// files with every size limit enforced while reading (Parse), then inspects a ZIP or takes the
// files as they are, applies the spec §3 detection rules, and only when everything is valid moves
// the files into the blob store and writes the manifest (Build). A rejected upload stores nothing.
//
// Errors are *commands.HTTPError (400 BAD_REQUEST / INVALID_PATH / ZIP_INVALID_PATH /
// ZIP_MULTIPLE_HTML, 413 UPLOAD_TOO_LARGE with the limit that was hit) or domain.Invalid (422
// VALIDATION_FAILED), ready for the API's error middleware.
package upload

import (
	"net/http"

	"github.com/litehost/litehost/commands"
)

// Error codes this package answers with (besides domain.Invalid → 422 VALIDATION_FAILED).
const (
	CodeBadRequest      = "BAD_REQUEST"       // 400: not multipart/form-data, or a malformed body
	CodeInvalidPath     = "INVALID_PATH"      // 400: a file part's name is not a safe relative path
	CodeZipInvalidPath  = "ZIP_INVALID_PATH"  // 400: a ZIP entry name is absolute, has .., a drive letter, …
	CodeZipMultipleHTML = "ZIP_MULTIPLE_HTML" // 400: several HTML files and no (matching) zipIndexHtmlPath
	CodeTooLarge        = "UPLOAD_TOO_LARGE"  // 413: any size or count limit, named in the "limit" detail
)

// Names of the limits, as reported in the "limit" detail of a 413 UPLOAD_TOO_LARGE.
const (
	LimitRequestBytes      = "requestBytes"
	LimitFiles             = "files"
	LimitFileBytes         = "fileBytes"
	LimitTotalFileBytes    = "totalFileBytes"
	LimitFormValueBytes    = "formValueBytes"
	LimitParts             = "parts"
	LimitZipEntries        = "zipEntries"
	LimitZipDirectoryBytes = "zipDirectoryBytes"
	LimitUncompressedBytes = "uncompressedBytes"
	LimitCompressionRatio  = "compressionRatio"
)

// Limits bounds one upload. Zero fields take the DefaultLimits value.
type Limits struct {
	MaxRequestBytes   int64 // the whole multipart body, headers and boundaries included
	MaxFiles          int   // `files` parts in one request
	MaxFileBytes      int64 // one uploaded file, and one extracted ZIP entry
	MaxTotalFileBytes int64 // sum of the uploaded file contents
	MaxFormValueBytes int64 // one scalar field (title, password, …)
	MaxParts          int   // all parts, so a body of thousands of tiny fields is refused early

	MaxZipEntries int // entries in the ZIP's central directory, ignored ones included
	// MaxZipDirectoryBytes bounds the central directory, which archive/zip holds in memory whole.
	MaxZipDirectoryBytes int64
	MaxUncompressedBytes int64 // sum of the extracted entries
	// MaxCompressionRatio bounds uncompressed/compressed, per entry and for the whole archive, once
	// the uncompressed size passes ratioFloor (small, very compressible files are normal).
	MaxCompressionRatio int64
}

// ratioFloor is the uncompressed size below which the compression ratio is not checked: a 100 KiB
// file of spaces compresses 1000:1 and is still harmless.
const ratioFloor = 1 << 20

// DefaultLimits are the limits of authenticated uploads (DESIGN §7).
func DefaultLimits() Limits {
	return Limits{
		MaxRequestBytes:      100 << 20,
		MaxFiles:             1000, // the largest plan's maxFilesPerProject
		MaxFileBytes:         100 << 20,
		MaxTotalFileBytes:    100 << 20,
		MaxFormValueBytes:    64 << 10,
		MaxParts:             1100,
		MaxZipEntries:        10000,
		MaxZipDirectoryBytes: 16 << 20,
		MaxUncompressedBytes: 1 << 30,
		MaxCompressionRatio:  100,
	}
}

// TempLimits are the limits of anonymous temporary uploads: at most 5 files and 2 MiB (2 097 152
// bytes) of file content (DESIGN §12). A ZIP may expand to 20 MiB: the spec limits the upload, and
// this keeps an anonymous site small without refusing ordinary compressed sites.
func TempLimits() Limits {
	l := DefaultLimits()
	l.MaxFiles = 5
	l.MaxTotalFileBytes = 2 << 20
	l.MaxFileBytes = 2 << 20
	l.MaxRequestBytes = 2<<20 + 256<<10 // room for boundaries, headers and the scalar fields
	l.MaxParts = 32
	l.MaxUncompressedBytes = 20 << 20
	return l
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxRequestBytes, d.MaxRequestBytes)
	set(&l.MaxFileBytes, d.MaxFileBytes)
	set(&l.MaxTotalFileBytes, d.MaxTotalFileBytes)
	set(&l.MaxFormValueBytes, d.MaxFormValueBytes)
	set(&l.MaxZipDirectoryBytes, d.MaxZipDirectoryBytes)
	set(&l.MaxUncompressedBytes, d.MaxUncompressedBytes)
	set(&l.MaxCompressionRatio, d.MaxCompressionRatio)
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	if l.MaxZipEntries <= 0 {
		l.MaxZipEntries = d.MaxZipEntries
	}
	return l
}

// tooLarge is the 413 for one limit; max is the limit's value (bytes, files or ratio).
func tooLarge(limit string, max int64, msg string) *commands.HTTPError {
	return &commands.HTTPError{
		Status:  http.StatusRequestEntityTooLarge,
		Code:    CodeTooLarge,
		Message: msg,
		Details: map[string]any{"limit": limit, "max": max},
	}
}

func badRequest(code, msg string, details map[string]any) *commands.HTTPError {
	return &commands.HTTPError{Status: http.StatusBadRequest, Code: code, Message: msg, Details: details}
}
