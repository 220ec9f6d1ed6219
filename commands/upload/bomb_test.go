package upload

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

const mib = 1 << 20

// zerosDeflated returns a deflate stream of n zero bytes (n a multiple of 1 MiB) without
// compressing n bytes: after a sync flush, every further MiB of zeros compresses to the same bytes
// (all matches into the all-zero window), so the stream is the first chunk, the repeated chunk,
// and the final empty block. That keeps building a 1 GiB+ bomb fast even under -race.
func zerosDeflated(t testing.TB, n int64) (data []byte, crc uint32) {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, mib)
	chunk := func() []byte {
		fw.Write(zeros)
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		b := bytes.Clone(buf.Bytes())
		buf.Reset()
		return b
	}
	first, repeat, check := chunk(), chunk(), chunk()
	if !bytes.Equal(repeat, check) {
		t.Fatal("deflate output of repeated zero chunks differs; cannot build the bomb this way")
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	final := bytes.Clone(buf.Bytes())
	out := append([]byte{}, first...)
	for range n/mib - 1 {
		out = append(out, repeat...)
	}
	out = append(out, final...)
	for range n / mib {
		crc = crc32.Update(crc, crc32.IEEETable, zeros)
	}
	return out, crc
}

// bomb writes an archive of entries × entrySize zero bytes, streamed into a temp file, and returns
// its bytes (a few MiB at most: that is the point of a bomb).
func bomb(t testing.TB, entries int, entrySize int64, extra ...zipFile) []byte {
	t.Helper()
	data, crc := zerosDeflated(t, entrySize)
	f, err := os.Create(filepath.Join(t.TempDir(), "bomb.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := zip.NewWriter(f)
	for i := range entries {
		fw, err := w.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("zeros-%02d.bin", i), Method: zip.Deflate,
			CRC32: crc, CompressedSize64: uint64(len(data)), UncompressedSize64: uint64(entrySize)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range extra {
		fw, err := w.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(e.content)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// patchCentralSizes rewrites the declared uncompressed size of every central directory header:
// a bomb that lies about its sizes.
func patchCentralSizes(z []byte, size uint32) []byte {
	z = bytes.Clone(z)
	sig := []byte{'P', 'K', 1, 2}
	for i := 0; i+46 <= len(z); i++ {
		if bytes.Equal(z[i:i+4], sig) {
			binary.LittleEndian.PutUint32(z[i+24:], size)
		}
	}
	return z
}

// allocDuring reports the bytes allocated by fn (TotalAlloc delta, GC-independent).
func allocDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestZipBombRejected(t *testing.T) {
	// 11 × 100 MiB = 1.1 GiB of zeros in about 1 MiB of ZIP.
	z := bomb(t, 11, 100*mib, zf("index.html", "<p>hi</p>"))
	t.Logf("bomb: %d bytes compressed, %d bytes declared uncompressed", len(z), 11*100*mib)
	tests := []struct {
		name    string
		zip     []byte
		lim     Limits
		wantErr string
	}{
		{"default limits: ratio", z, DefaultLimits(), "413 UPLOAD_TOO_LARGE/compressionRatio"},
		{"lenient ratio: total uncompressed", z, Limits{MaxCompressionRatio: 1 << 20}, "413 UPLOAD_TOO_LARGE/uncompressedBytes"},
		{"lying headers", patchCentralSizes(z, 1000), Limits{MaxCompressionRatio: 1 << 20}, "422 files"},
		{"temp limits", bomb(t, 1, 10*mib), TempLimits(), "413 UPLOAD_TOO_LARGE/fileBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			body, ct := form(t, file("bomb.zip", tt.zip))
			var err error
			alloc := allocDuring(func() { _, err = parseBuild(t, s, tt.lim, body, ct) })
			if got := errKind(err); got != tt.wantErr {
				t.Fatalf("error = %q (%v), want %q", got, err, tt.wantErr)
			}
			assertNothingStored(t, s)
			t.Logf("allocated %d KiB while rejecting", alloc>>10)
			if alloc > 16*mib {
				t.Errorf("allocated %d MiB rejecting a bomb; memory must stay bounded", alloc>>20)
			}
		})
	}
}

// TestExtractCountsRealBytes bypasses the header checks (which refuse honest bombs before any
// decompression) to show that extraction itself stops at the limits, reading real bytes with
// bounded memory.
func TestExtractCountsRealBytes(t *testing.T) {
	z := bomb(t, 1, 200*mib)
	loose := Limits{MaxCompressionRatio: 1 << 30, MaxFileBytes: 1 << 30}.withDefaults()
	plan, err := inspectZip(bytes.NewReader(z), int64(len(z)), loose, "")
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	tests := []struct {
		name    string
		lim     Limits
		wantErr string
		maxOut  int64
	}{
		{"uncompressed total", Limits{MaxCompressionRatio: 1 << 30, MaxFileBytes: 1 << 30, MaxUncompressedBytes: 50 * mib}, "413 UPLOAD_TOO_LARGE/uncompressedBytes", 50*mib + 1},
		{"per-file", Limits{MaxCompressionRatio: 1 << 30, MaxFileBytes: 20 * mib}, "413 UPLOAD_TOO_LARGE/fileBytes", 20*mib + 1},
		{"ratio", Limits{MaxFileBytes: 1 << 30}, "413 UPLOAD_TOO_LARGE/compressionRatio", 100*int64(len(z)) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var err error
			alloc := allocDuring(func() { _, err = extractZip(t.Context(), osSpool{}, plan, int64(len(z)), tt.lim.withDefaults(), dir) })
			if got := errKind(err); got != tt.wantErr {
				t.Fatalf("error = %q (%v), want %q", got, err, tt.wantErr)
			}
			fi, err := os.Stat(filepath.Join(dir, "z00000"))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > tt.maxOut {
				t.Errorf("wrote %d bytes, limit allows %d", fi.Size(), tt.maxOut)
			}
			t.Logf("decompressed %d MiB, allocated %d KiB", fi.Size()>>20, alloc>>10)
			if alloc > 8*mib {
				t.Errorf("allocated %d MiB while streaming; must not grow with the output", alloc>>20)
			}
		})
	}
}

func TestZipEntryCountAndDirectoryLimits(t *testing.T) {
	var many []zipFile
	for i := range 11 {
		many = append(many, zf(fmt.Sprintf("f%02d-%s.txt", i, bytes.Repeat([]byte("n"), 60)), "x"))
	}
	z := zipOf(t, many...)
	// An end record that understates the count: archive/zip would still read every header.
	lying := bytes.Clone(z)
	eocd := bytes.LastIndex(lying, []byte{'P', 'K', 5, 6})
	binary.LittleEndian.PutUint16(lying[eocd+8:], 3)
	binary.LittleEndian.PutUint16(lying[eocd+10:], 3)
	tests := []struct {
		name    string
		zip     []byte
		lim     Limits
		wantErr string
	}{
		{"too many entries", z, Limits{MaxZipEntries: 10}, "413 UPLOAD_TOO_LARGE/zipEntries"},
		{"count understated", lying, Limits{MaxZipEntries: 10}, "413 UPLOAD_TOO_LARGE/zipEntries"},
		{"directory too large", z, Limits{MaxZipDirectoryBytes: 500}, "413 UPLOAD_TOO_LARGE/zipDirectoryBytes"},
		{"within limits", z, Limits{MaxZipEntries: 11}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			body, ct := form(t, file("m.zip", tt.zip))
			_, err := parseBuild(t, s, tt.lim, body, ct)
			if got := errKind(err); got != tt.wantErr {
				t.Fatalf("error = %q (%v), want %q", got, err, tt.wantErr)
			}
			if err != nil {
				assertNothingStored(t, s)
			}
		})
	}
}

func TestDefaultEntryLimitIs10000(t *testing.T) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := range 10001 {
		if _, err := w.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%d", i), Method: zip.Store}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	s := newStore(t)
	body, ct := form(t, file("m.zip", buf.Bytes()))
	_, err := parseBuild(t, s, DefaultLimits(), body, ct)
	if got := errKind(err); got != "413 UPLOAD_TOO_LARGE/zipEntries" {
		t.Fatalf("error = %q (%v)", got, err)
	}
	assertNothingStored(t, s)
}
