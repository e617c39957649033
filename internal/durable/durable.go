package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FS is the file-system surface MkdirAllFS needs. Implementations are safe
// for concurrent use.
type FS interface {
	// MkdirAll creates dir and any missing parent.
	MkdirAll(dir string, perm os.FileMode) error
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the creations, removals and renames of entries in dir
	// durable.
	SyncDir(dir string) error
}

// OS is the operating system's file system. It is a value of an
// unexported, stateless type, so it cannot be reassigned to anything else.
var OS osFS

type osFS struct{}

var _ FS = osFS{}

func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) Stat(name string) (os.FileInfo, error)       { return os.Stat(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncDir fsyncs the directory dir, making its entries (files created,
// renamed or removed in it) durable.
func SyncDir(dir string) error {
	if err := OS.SyncDir(dir); err != nil {
		return fmt.Errorf("durable: sync directory %s: %w", dir, err)
	}
	return nil
}

// MkdirAll is MkdirAllFS on the operating system's file system.
func MkdirAll(dir string, perm os.FileMode) error { return MkdirAllFS(OS, dir, perm) }

// MkdirAllFS creates dir and every missing parent like os.MkdirAll, then
// fsyncs each directory it created and the parent of each, top down, so
// that the whole path survives a power cut. A path that already exists
// costs one Stat and no fsync: what an earlier call created was made
// durable then.
func MkdirAllFS(fsys FS, dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	// The missing components, deepest first.
	var missing []string
	for p := dir; ; {
		st, err := fsys.Stat(p)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("durable: mkdir %s: %s is not a directory", dir, p)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("durable: mkdir %s: %w", dir, err)
		}
		missing = append(missing, p)
		parent := filepath.Dir(p)
		if parent == p {
			break // a root that does not exist: MkdirAll reports it
		}
		p = parent
	}
	for i := len(missing) - 1; i >= 0; i-- {
		p := missing[i]
		// The parent exists, so this creates p alone (or finds that
		// someone else just did: the entry still needs the fsync).
		if err := fsys.MkdirAll(p, perm); err != nil {
			return fmt.Errorf("durable: mkdir %s: %w", dir, err)
		}
		if err := fsys.SyncDir(p); err != nil {
			return fmt.Errorf("durable: mkdir %s: %w", dir, err)
		}
		if err := fsys.SyncDir(filepath.Dir(p)); err != nil {
			return fmt.Errorf("durable: mkdir %s: %w", dir, err)
		}
	}
	return nil
}
