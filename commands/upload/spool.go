package upload

import (
	"io"
	"os"
)

// spoolFS is where an upload's files are spooled while it is parsed and checked. Production
// spools to real files (osSpool), which Commit moves into the blob store by path. The fuzz
// targets spool to memory: a handful of file system calls per input cost about a millisecond,
// enough to turn the fuzzer's quadratic minimization of one interesting input into minutes
// during which no progress shows (golang/go#48820).
type spoolFS interface {
	MkdirTemp(dir, pattern string) (string, error)
	// Create makes a new file for writing and fails if name already exists.
	Create(name string) (io.WriteCloser, error)
	Open(name string) (spoolFile, error)
	RemoveAll(path string) error
}

// spoolFile is a spooled file opened for reading; archive/zip needs ReadAt.
type spoolFile interface {
	io.ReaderAt
	io.Closer
}

// osSpool spools to the operating system's file system.
type osSpool struct{}

func (osSpool) MkdirTemp(dir, pattern string) (string, error) { return os.MkdirTemp(dir, pattern) }

func (osSpool) Create(name string) (io.WriteCloser, error) {
	return os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
}

func (osSpool) Open(name string) (spoolFile, error) { return os.Open(name) }

func (osSpool) RemoveAll(path string) error { return os.RemoveAll(path) }
