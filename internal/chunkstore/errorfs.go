package chunkstore

import "os"

// Op names an FS or File operation for ErrorFS.
type Op int

// Operations ErrorFS can fail.
const (
	OpOpen Op = iota
	OpRemove
	OpRename
	OpMkdir
	OpReadDir
	OpStat
	OpSyncDir
	OpRead
	OpWrite
	OpSync
	OpTruncate
	OpPunchHole
	OpAllocate
)

// ErrorFS wraps an FS and fails the operations Inject chooses: Inject is
// called before each operation with its kind, path and file offset (0 for
// namespace operations); a non-nil result is returned instead of
// performing the operation, which then has no effect. Inject must be safe
// for concurrent use.
type ErrorFS struct {
	FS     FS
	Inject func(op Op, path string, off int64) error
}

var _ FS = (*ErrorFS)(nil)

func (e *ErrorFS) inject(op Op, name string, off int64) error {
	if e.Inject == nil {
		return nil
	}
	return e.Inject(op, name, off)
}

func (e *ErrorFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if err := e.inject(OpOpen, name, 0); err != nil {
		return nil, err
	}
	f, err := e.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &errorFile{e: e, name: name, f: f}, nil
}

func (e *ErrorFS) Remove(name string) error {
	if err := e.inject(OpRemove, name, 0); err != nil {
		return err
	}
	return e.FS.Remove(name)
}

func (e *ErrorFS) Rename(oldname, newname string) error {
	if err := e.inject(OpRename, oldname, 0); err != nil {
		return err
	}
	return e.FS.Rename(oldname, newname)
}

func (e *ErrorFS) MkdirAll(dir string, perm os.FileMode) error {
	if err := e.inject(OpMkdir, dir, 0); err != nil {
		return err
	}
	return e.FS.MkdirAll(dir, perm)
}

func (e *ErrorFS) ReadDir(dir string) ([]string, error) {
	if err := e.inject(OpReadDir, dir, 0); err != nil {
		return nil, err
	}
	return e.FS.ReadDir(dir)
}

func (e *ErrorFS) Stat(name string) (os.FileInfo, error) {
	if err := e.inject(OpStat, name, 0); err != nil {
		return nil, err
	}
	return e.FS.Stat(name)
}

func (e *ErrorFS) SyncDir(dir string) error {
	if err := e.inject(OpSyncDir, dir, 0); err != nil {
		return err
	}
	return e.FS.SyncDir(dir)
}

type errorFile struct {
	e    *ErrorFS
	name string
	f    File
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.e.inject(OpRead, f.name, off); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

func (f *errorFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.e.inject(OpWrite, f.name, off); err != nil {
		return 0, err
	}
	return f.f.WriteAt(p, off)
}

func (f *errorFile) Sync() error {
	if err := f.e.inject(OpSync, f.name, 0); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *errorFile) Truncate(size int64) error {
	if err := f.e.inject(OpTruncate, f.name, size); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *errorFile) PunchHole(off, n int64) error {
	if err := f.e.inject(OpPunchHole, f.name, off); err != nil {
		return err
	}
	return f.f.PunchHole(off, n)
}

func (f *errorFile) Allocate(off, n int64) error {
	if err := f.e.inject(OpAllocate, f.name, off); err != nil {
		return err
	}
	return f.f.Allocate(off, n)
}

func (f *errorFile) Close() error               { return f.f.Close() }
func (f *errorFile) Stat() (os.FileInfo, error) { return f.f.Stat() }
func (f *errorFile) Allocated() int64           { return f.f.Allocated() }
