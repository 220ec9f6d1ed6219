package upload

import (
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"
)

// maxPathBytes bounds one file path; far above any real site and small enough for URLs.
const maxPathBytes = 1024

// cleanPath turns an entry or file name into the slash-separated relative path it is stored
// under, or says why it is unsafe. It never resolves "..": a name that tries to climb is refused,
// not reinterpreted, because the uploader meant something we cannot know. "./" prefixes and
// doubled slashes are harmless and normalised. dir reports a directory entry (trailing slash).
func cleanPath(name string) (p string, dir bool, problem string) {
	switch {
	case name == "":
		return "", false, "empty name"
	case len(name) > maxPathBytes:
		return "", false, "name longer than 1024 bytes"
	case !utf8.ValidString(name):
		return "", false, "name is not UTF-8"
	case strings.ContainsRune(name, '\\'):
		return "", false, "backslash in name"
	case strings.HasPrefix(name, "/"):
		return "", false, "absolute path"
	case len(name) >= 2 && name[1] == ':' && isLetter(name[0]):
		return "", false, "drive letter"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", false, "control character in name"
		}
	}
	if strings.HasSuffix(name, "/") {
		dir = true
		name = strings.TrimRight(name, "/")
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == ".." {
			return "", dir, "parent directory segment"
		}
	}
	p = path.Clean(name)
	if p == "." || p == "" {
		if dir {
			return "", true, "" // "./" is the root directory entry some tools write
		}
		return "", false, "empty name"
	}
	if !fs.ValidPath(p) {
		return "", dir, "invalid path"
	}
	return p, dir, ""
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// isHTML reports whether p names an HTML file: .html or .htm, in any case (DESIGN §7).
func isHTML(p string) bool {
	ext := strings.ToLower(path.Ext(p))
	return ext == ".html" || ext == ".htm"
}

// ignored reports entries that archivers add and nobody means to publish: macOS resource forks
// under __MACOSX/ and AppleDouble "._" files (DESIGN §7).
func ignored(p string) bool {
	return p == "__MACOSX" || strings.HasPrefix(p, "__MACOSX/") || strings.HasPrefix(path.Base(p), "._")
}
