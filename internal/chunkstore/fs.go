package chunkstore

import (
	"errors"
	"os"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/catena-io/catena/internal/durable"
)

// FS is the small file-system surface the store needs. OSFS is the real one,
// MemFS an in-memory twin for tests, ErrorFS a fault-injecting wrapper.
// Implementations are safe for concurrent use.
type FS interface {
	// OpenFile opens name with os.O_* flags (O_CREATE, O_EXCL, O_TRUNC, ...).
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir returns the names in dir, sorted.
	ReadDir(dir string) ([]string, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the creations, removals and renames of entries in dir
	// durable.
	SyncDir(dir string) error
}

// File is an open file. ReadAt and WriteAt may be called concurrently on
// disjoint ranges; the caller owns the File and closes it once.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes the file's data durable (fdatasync): written bytes, punched
	// holes and the size, not necessarily times.
	Sync() error
	Truncate(size int64) error
	Close() error
	Stat() (os.FileInfo, error)
	// PunchHole deallocates [off, off+n), which then reads as zeros; the size
	// is kept. Errors with errors.ErrUnsupported where the FS cannot.
	PunchHole(off, n int64) error
	// Allocate reserves space for [off, off+n) without changing contents or
	// size, so later writes there do not fail for lack of space. Errors with
	// errors.ErrUnsupported where the FS cannot.
	Allocate(off, n int64) error
	// Allocated returns the bytes allocated on disk (holes count nothing),
	// or 0 if it cannot be determined.
	Allocated() int64
}

// OSFS is the operating system's file system. It is a value of an
// unexported, stateless type, so it cannot be reassigned to anything else.
var OSFS osFS

type osFS struct{}

var _ FS = osFS{}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error        { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) Stat(name string) (os.FileInfo, error)       { return os.Stat(name) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error { return durable.OS.SyncDir(dir) }

type osFile struct{ *os.File }

var _ File = osFile{}

func (f osFile) Sync() error {
	return ignoreEINTR(func() error { return unix.Fdatasync(int(f.Fd())) })
}

func (f osFile) PunchHole(off, n int64) error {
	return fallocate(f.File, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

func (f osFile) Allocate(off, n int64) error {
	return fallocate(f.File, unix.FALLOC_FL_KEEP_SIZE, off, n)
}

func (f osFile) Allocated() int64 {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0
	}
	return st.Blocks * 512
}

func fallocate(f *os.File, mode uint32, off, n int64) error {
	if n <= 0 {
		return nil
	}
	err := ignoreEINTR(func() error { return unix.Fallocate(int(f.Fd()), mode, off, n) })
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return errors.Join(errors.ErrUnsupported, err)
	}
	if err != nil {
		return &os.PathError{Op: "fallocate", Path: f.Name(), Err: err}
	}
	return nil
}

func ignoreEINTR(fn func() error) error {
	for {
		err := fn()
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
