package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// recFS is an in-memory FS of directories that records every call.
type recFS struct {
	mu      sync.Mutex
	dirs    map[string]bool // existing directories (true) and files (false)
	calls   []string
	syncErr error
}

func newRecFS(existing ...string) *recFS {
	r := &recFS{dirs: map[string]bool{"/": true}}
	for _, d := range existing {
		r.dirs[d] = true
	}
	return r
}

func (r *recFS) MkdirAll(dir string, perm os.FileMode) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "mkdir "+dir)
	for p := dir; !r.dirs[p]; p = filepath.Dir(p) {
		r.dirs[p] = true
	}
	return nil
}

func (r *recFS) Stat(name string) (os.FileInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	isDir, ok := r.dirs[name]
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return fakeInfo{name: filepath.Base(name), dir: isDir}, nil
}

func (r *recFS) SyncDir(dir string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, "sync "+dir)
	return r.syncErr
}

type fakeInfo struct {
	name string
	dir  bool
}

func (f fakeInfo) Name() string { return f.name }
func (f fakeInfo) Size() int64  { return 0 }
func (f fakeInfo) Mode() fs.FileMode {
	if f.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.dir }
func (f fakeInfo) Sys() any           { return nil }

func TestMkdirAllSyncsEveryNewDirAndItsParent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing []string
		dir      string
		want     []string
	}{
		{
			name:     "three new components",
			existing: []string{"/srv"},
			dir:      "/srv/catena/cs1/chunks",
			want: []string{
				"mkdir /srv/catena", "sync /srv/catena", "sync /srv",
				"mkdir /srv/catena/cs1", "sync /srv/catena/cs1", "sync /srv/catena",
				"mkdir /srv/catena/cs1/chunks", "sync /srv/catena/cs1/chunks", "sync /srv/catena/cs1",
			},
		},
		{
			name:     "one new component",
			existing: []string{"/srv", "/srv/catena"},
			dir:      "/srv/catena/raft/",
			want:     []string{"mkdir /srv/catena/raft", "sync /srv/catena/raft", "sync /srv/catena"},
		},
		{
			name:     "exists already: nothing to do",
			existing: []string{"/srv", "/srv/catena"},
			dir:      "/srv/catena",
			want:     nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecFS(tc.existing...)
			if err := MkdirAllFS(r, tc.dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.calls, tc.want) {
				t.Fatalf("calls:\n%q\nwant:\n%q", r.calls, tc.want)
			}
			if _, err := r.Stat(filepath.Clean(tc.dir)); err != nil {
				t.Fatalf("%s not created: %v", tc.dir, err)
			}
		})
	}
}

func TestMkdirAllErrors(t *testing.T) {
	r := newRecFS("/srv")
	r.dirs["/srv/file"] = false
	if err := MkdirAllFS(r, "/srv/file/sub", 0o755); err == nil {
		t.Fatal("mkdir under a file succeeded")
	}
	r = newRecFS("/srv")
	r.syncErr = errors.New("EIO")
	if err := MkdirAllFS(r, "/srv/a", 0o755); !errors.Is(err, r.syncErr) {
		t.Fatalf("failed fsync: got %v, want it reported", err)
	}
}

func TestMkdirAllOS(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b", "c")
	if err := MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		t.Fatalf("stat %s: %v, %v", dir, st, err)
	}
	if err := MkdirAll(dir, 0o750); err != nil {
		t.Fatalf("second call: %v", err)
	}
	if err := SyncDir(filepath.Join(base, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory: %v", err)
	}
}
