package upload

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkUpload10MiB compares Parse+Build of a 10 MiB upload (10 files of 1 MiB, spooled,
// hashed, fsynced into the blob store, manifest written) with the baseline of copying the same
// body to one file on the same disk and fsyncing it.
func BenchmarkUpload10MiB(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 7))
	var parts []part
	for i := range 10 {
		content := make([]byte, mib)
		for j := range content {
			content[j] = byte(r.UintN(256))
		}
		parts = append(parts, file(fmt.Sprintf("f%d.bin", i), content))
	}
	body, ct := form(b, parts...)

	b.Run("baseline-copy", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(int64(len(body)))
		for i := 0; b.Loop(); i++ {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("copy-%d", i)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(f, bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			os.Remove(f.Name())
		}
	})
	b.Run("parse-build", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			b.StopTimer()
			s := newStore(b) // a fresh store, so no iteration is a free deduplicated write
			b.StartTimer()
			if _, err := parseBuild(b, s, DefaultLimits(), body, ct); err != nil {
				b.Fatal(err)
			}
		}
	})
}
