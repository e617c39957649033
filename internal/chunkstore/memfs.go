package chunkstore

import (
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"sync"
	"syscall"
	"time"
)

const memPageSize = 4096

// MemFS is an in-memory FS for tests. Files are sparse (4 KiB pages). It
// remembers what was made durable: file contents at their last Sync and
// directory entries at their directory's last SyncDir, so CrashClone can
// model a machine crash. Directories themselves are durable at once.
type MemFS struct {
	mu      sync.Mutex
	dirs    map[string]bool
	files   map[string]*memNode // live namespace
	durable map[string]*memNode // namespace as of each directory's last SyncDir
}

var _ FS = (*MemFS)(nil)

// NewMemFS returns an empty MemFS with the root directory "/".
func NewMemFS() *MemFS {
	return &MemFS{
		dirs:    map[string]bool{"/": true, ".": true},
		files:   make(map[string]*memNode),
		durable: make(map[string]*memNode),
	}
}

type memPage = [memPageSize]byte

type memNode struct {
	mu          sync.Mutex
	pages       map[int64]*memPage // live contents
	size        int64
	syncedPages map[int64]*memPage // contents as of the last Sync
	syncedSize  int64
	dirty       map[int64]bool // pages changed since the last Sync
}

func newMemNode() *memNode {
	return &memNode{
		pages:       make(map[int64]*memPage),
		syncedPages: make(map[int64]*memPage),
		dirty:       make(map[int64]bool),
	}
}

func clean(name string) string { return path.Clean(name) }

func (m *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[path.Dir(name)] {
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if m.dirs[name] {
		return nil, &os.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	}
	n, ok := m.files[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case !ok && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case !ok:
		n = newMemNode()
		m.files[name] = n
	}
	f := &memFile{name: name, n: n}
	if flag&os.O_TRUNC != 0 {
		if err := f.Truncate(0); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (m *MemFS) Remove(name string) error {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[name]; ok {
		delete(m.files, name)
		return nil
	}
	if m.dirs[name] {
		for p := range m.files {
			if path.Dir(p) == name {
				return &os.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
			}
		}
		delete(m.dirs, name)
		return nil
	}
	return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
}

func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = clean(oldname), clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.files[oldname]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	if !m.dirs[path.Dir(newname)] {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: fs.ErrNotExist}
	}
	delete(m.files, oldname)
	m.files[newname] = n
	return nil
}

func (m *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := dir; !m.dirs[d]; d = path.Dir(d) {
		if _, ok := m.files[d]; ok {
			return &os.PathError{Op: "mkdir", Path: d, Err: syscall.ENOTDIR}
		}
		m.dirs[d] = true
	}
	return nil
}

func (m *MemFS) ReadDir(dir string) ([]string, error) {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for p := range m.files {
		if path.Dir(p) == dir {
			names = append(names, path.Base(p))
		}
	}
	for d := range m.dirs {
		if d != dir && path.Dir(d) == dir {
			names = append(names, path.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	name = clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[name] {
		return memInfo{name: path.Base(name), dir: true}, nil
	}
	n, ok := m.files[name]
	if !ok {
		return nil, &os.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return memInfo{name: path.Base(name), size: n.size}, nil
}

func (m *MemFS) SyncDir(dir string) error {
	dir = clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return &os.PathError{Op: "sync", Path: dir, Err: fs.ErrNotExist}
	}
	for p := range m.durable {
		if path.Dir(p) == dir {
			delete(m.durable, p)
		}
	}
	for p, n := range m.files {
		if path.Dir(p) == dir {
			m.durable[p] = n
		}
	}
	return nil
}

// CrashClone returns a new MemFS holding only what was durable: the entries
// of each directory at its last SyncDir, with each file's contents at its
// last Sync. The receiver is unchanged and stays usable.
func (m *MemFS) CrashClone() *MemFS {
	return m.CrashCloneKeeping(func(string, int64) bool { return false })
}

// CrashCloneKeeping is CrashClone, except that each page written (or
// punched) since a file's last Sync survives when keep(path, pageIndex)
// returns true: a crash in which some unsynced writes reached the disk and
// others did not. Pages are 4 KiB, so a write spanning pages can be torn.
func (m *MemFS) CrashCloneKeeping(keep func(path string, page int64) bool) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := NewMemFS()
	for d := range m.dirs {
		c.dirs[d] = true
	}
	paths := make([]string, 0, len(m.durable))
	for p := range m.durable {
		paths = append(paths, p)
	}
	sort.Strings(paths) // keep is called in a deterministic order
	for _, p := range paths {
		n := m.durable[p]
		n.mu.Lock()
		cn := newMemNode()
		cn.size = n.syncedSize
		for i, pg := range n.syncedPages {
			cp := *pg
			cn.pages[i] = &cp
		}
		dirty := make([]int64, 0, len(n.dirty))
		for i := range n.dirty {
			dirty = append(dirty, i)
		}
		sort.Slice(dirty, func(a, b int) bool { return dirty[a] < dirty[b] })
		for _, i := range dirty {
			if !keep(p, i) {
				continue
			}
			if pg, ok := n.pages[i]; ok {
				cp := *pg
				cn.pages[i] = &cp
			} else {
				delete(cn.pages, i)
			}
			if end := (i + 1) * memPageSize; end > cn.size {
				cn.size = min(end, n.size)
			}
		}
		n.mu.Unlock()
		for i, pg := range cn.pages {
			cp := *pg
			cn.syncedPages[i] = &cp
		}
		cn.syncedSize = cn.size
		c.files[p] = cn
		c.durable[p] = cn
	}
	return c
}

type memFile struct {
	name string
	n    *memNode
}

var _ File = (*memFile)(nil)

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: syscall.EINVAL}
	}
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		if pos >= n.size {
			return done, io.EOF
		}
		pi, po := pos/memPageSize, pos%memPageSize
		chunk := min(int64(len(p)-done), memPageSize-po, n.size-pos)
		if pg, ok := n.pages[pi]; ok {
			copy(p[done:done+int(chunk)], pg[po:po+chunk])
		} else {
			clear(p[done : done+int(chunk)])
		}
		done += int(chunk)
	}
	return done, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EINVAL}
	}
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		pi, po := pos/memPageSize, pos%memPageSize
		chunk := min(int64(len(p)-done), memPageSize-po)
		pg, ok := n.pages[pi]
		if !ok {
			pg = new(memPage)
			n.pages[pi] = pg
		}
		copy(pg[po:po+chunk], p[done:done+int(chunk)])
		n.dirty[pi] = true
		done += int(chunk)
	}
	n.size = max(n.size, off+int64(len(p)))
	return done, nil
}

func (f *memFile) Sync() error {
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range n.dirty {
		if pg, ok := n.pages[i]; ok {
			cp := *pg
			n.syncedPages[i] = &cp
		} else {
			delete(n.syncedPages, i)
		}
	}
	clear(n.dirty)
	n.syncedSize = n.size
	return nil
}

func (f *memFile) Truncate(size int64) error {
	if size < 0 {
		return &os.PathError{Op: "truncate", Path: f.name, Err: syscall.EINVAL}
	}
	n := f.n
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, pg := range n.pages {
		start := i * memPageSize
		switch {
		case start >= size:
			delete(n.pages, i)
			n.dirty[i] = true
		case start+memPageSize > size:
			clear(pg[size-start:])
			n.dirty[i] = true
		}
	}
	n.size = size
	return nil
}

func (f *memFile) Close() error { return nil }

func (f *memFile) Stat() (os.FileInfo, error) {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return memInfo{name: path.Base(f.name), size: f.n.size}, nil
}

func (f *memFile) PunchHole(off, n int64) error {
	if off < 0 || n < 0 {
		return &os.PathError{Op: "fallocate", Path: f.name, Err: syscall.EINVAL}
	}
	nd := f.n
	nd.mu.Lock()
	defer nd.mu.Unlock()
	end := min(off+n, nd.size)
	for pos := off; pos < end; {
		pi, po := pos/memPageSize, pos%memPageSize
		chunk := min(memPageSize-po, end-pos)
		if pg, ok := nd.pages[pi]; ok {
			if chunk == memPageSize {
				delete(nd.pages, pi)
			} else {
				clear(pg[po : po+chunk])
			}
			nd.dirty[pi] = true
		}
		pos += chunk
	}
	return nil
}

func (f *memFile) Allocate(off, n int64) error {
	if off < 0 || n < 0 {
		return &os.PathError{Op: "fallocate", Path: f.name, Err: syscall.EINVAL}
	}
	nd := f.n
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if n == 0 {
		return nil
	}
	for pi := off / memPageSize; pi <= (off+n-1)/memPageSize; pi++ {
		if _, ok := nd.pages[pi]; !ok {
			nd.pages[pi] = new(memPage)
			nd.dirty[pi] = true
		}
	}
	return nil
}

func (f *memFile) Allocated() int64 {
	f.n.mu.Lock()
	defer f.n.mu.Unlock()
	return int64(len(f.n.pages)) * memPageSize
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() os.FileMode {
	if i.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }
