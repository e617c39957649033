package chunkstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
)

// countFS counts the files open at once and checks, per descriptor, that
// none is closed with writes its own fdatasync did not cover (a new
// descriptor's Sync might miss a writeback error of the old one).
type countFS struct {
	FS
	mu          sync.Mutex
	open        int
	maxOpen     int
	opens       int
	dirtyCloses int
}

func (c *countFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open++
	c.opens++
	c.maxOpen = max(c.maxOpen, c.open)
	return &countFile{File: f, c: c}, nil
}

// resetMax restarts the maximum at the current count.
func (c *countFS) resetMax() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxOpen = c.open
}

func (c *countFS) stats() (open, maxOpen, opens, dirtyCloses int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open, c.maxOpen, c.opens, c.dirtyCloses
}

type countFile struct {
	File
	c              *countFS
	mu             sync.Mutex
	writes, synced uint64
}

func (f *countFile) wrote() {
	f.mu.Lock()
	f.writes++
	f.mu.Unlock()
}

func (f *countFile) WriteAt(p []byte, off int64) (int, error) {
	defer f.wrote()
	return f.File.WriteAt(p, off)
}

func (f *countFile) PunchHole(off, n int64) error {
	defer f.wrote()
	return f.File.PunchHole(off, n)
}

func (f *countFile) Truncate(size int64) error {
	defer f.wrote()
	return f.File.Truncate(size)
}

func (f *countFile) Sync() error {
	f.mu.Lock()
	w := f.writes
	f.mu.Unlock()
	err := f.File.Sync()
	if err == nil {
		f.mu.Lock()
		f.synced = max(f.synced, w)
		f.mu.Unlock()
	}
	return err
}

func (f *countFile) Close() error {
	f.mu.Lock()
	dirty := f.writes > f.synced
	f.mu.Unlock()
	f.c.mu.Lock()
	f.c.open--
	if dirty {
		f.c.dirtyCloses++
	}
	f.c.mu.Unlock()
	return f.File.Close()
}

// modelReplica is a test's reference copy of a replica.
type modelReplica struct {
	mu      sync.RWMutex // writes and syncs exclusive, reads shared
	data    []byte
	applied uint64
}

func TestBoundedOpenFilesConcurrent(t *testing.T) {
	const (
		limit    = 4
		replicas = 50
		size     = 4*BlockSize + 1000
		workers  = 8
		opsEach  = 300
	)
	mem := NewMemFS()
	cfs := &countFS{FS: mem}
	s, err := openFileStoreConfig(Config{FS: cfs, Dir: "/d", MaxOpenFiles: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	models := make([]*modelReplica, replicas)
	for i := range models {
		mustCreate(t, s, Meta{Handle: Handle(i + 1), Epoch: 1, ChunkSize: size})
		models[i] = &modelReplica{data: make([]byte, size)}
	}
	if _, maxOpen, _, _ := cfs.stats(); maxOpen > limit {
		t.Fatalf("%d files open at once while creating, limit %d", maxOpen, limit)
	}

	// Phase 1: random reads, writes, zeros and syncs from several
	// goroutines; a write is not always synced at once.
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range opsEach {
				i := rng.IntN(replicas)
				if err := randomStoreOp(rng, s, Handle(i+1), models[i]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i := range models {
		models[i].applied++
		r := mustGet(t, s, Handle(i+1))
		r.SetApplied(models[i].applied)
		if err := r.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	open, _, opens, dirtyCloses := cfs.stats()
	if dirtyCloses != 0 {
		t.Fatalf("%d files closed with unsynced writes", dirtyCloses)
	}
	if open > limit || s.files.openFiles() > limit {
		t.Fatalf("%d files open (store counts %d) with every replica synced, limit %d", open, s.files.openFiles(), limit)
	}
	if opens < 2*replicas {
		t.Fatalf("only %d opens for %d replicas: files were not evicted and reopened", opens, replicas)
	}

	// Phase 2: every replica clean; readers (no more than the limit) and
	// verifiers never take more than the limit.
	cfs.resetMax()
	for w := range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 8))
			for range 200 {
				i := rng.IntN(replicas)
				r, err := s.Get(Handle(i + 1))
				if err != nil {
					t.Error(err)
					return
				}
				if rng.IntN(10) == 0 {
					if err := r.Verify(); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if err := checkRead(rng, r, models[i]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if _, maxOpen, _, _ := cfs.stats(); maxOpen > limit {
		t.Fatalf("%d files open at once with every replica clean, limit %d", maxOpen, limit)
	}

	// Phase 3: one writer that syncs each write stays within the limit too.
	rng := rand.New(rand.NewPCG(3, 3))
	for range 200 {
		i := rng.IntN(replicas)
		if err := writeAndSync(rng, s, Handle(i+1), models[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, maxOpen, _, dirtyCloses := cfs.stats(); maxOpen > limit || dirtyCloses != 0 {
		t.Fatalf("one writer syncing each write: %d files open at once (limit %d), %d closed dirty", maxOpen, limit, dirtyCloses)
	}

	// A crash now keeps everything: all was synced, though most files were
	// closed and reopened in between.
	cs, err := openFileStoreConfig(Config{FS: mem.CrashClone(), Dir: "/d", MaxOpenFiles: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for i, m := range models {
		r := mustGet(t, cs, Handle(i+1))
		checkAll(t, r, m.data)
		if got := r.Meta().AppliedSeq; got != m.applied {
			t.Fatalf("replica %d: applied %d after crash, want %d", i+1, got, m.applied)
		}
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
	}
	if n := cs.files.openFiles(); n > limit {
		t.Fatalf("reopened store holds %d files, limit %d", n, limit)
	}
}

// randomStoreOp applies a random read, write, zero or sync to replica h
// and its model.
func randomStoreOp(rng *rand.Rand, s *fileStore, h Handle, m *modelReplica) error {
	r, err := s.Get(h)
	if err != nil {
		return err
	}
	switch op := rng.IntN(10); {
	case op < 5:
		return checkRead(rng, r, m)
	case op < 7:
		m.mu.Lock()
		defer m.mu.Unlock()
		off, p := randomWrite(rng, len(m.data))
		if err := r.WriteAt(p, off); err != nil {
			return fmt.Errorf("WriteAt(%d, %d) of %d: %w", off, len(p), h, err)
		}
		copy(m.data[off:], p)
		if rng.IntN(2) == 0 {
			return r.Sync()
		}
	case op < 8:
		m.mu.Lock()
		defer m.mu.Unlock()
		off := rng.Int64N(int64(len(m.data)))
		n := min(rng.Int64N(2*BlockSize)+1, int64(len(m.data))-off)
		if err := r.Zero(off, n); err != nil {
			return fmt.Errorf("Zero(%d, %d) of %d: %w", off, n, h, err)
		}
		clear(m.data[off : off+n])
	default:
		m.mu.Lock()
		defer m.mu.Unlock()
		m.applied++
		r.SetApplied(m.applied)
		return r.Sync()
	}
	return nil
}

func writeAndSync(rng *rand.Rand, s *fileStore, h Handle, m *modelReplica) error {
	r, err := s.Get(h)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	off, p := randomWrite(rng, len(m.data))
	if err := r.WriteAt(p, off); err != nil {
		return err
	}
	copy(m.data[off:], p)
	return r.Sync()
}

func randomWrite(rng *rand.Rand, size int) (int64, []byte) {
	off := rng.IntN(size)
	p := make([]byte, min(rng.IntN(2*BlockSize)+1, size-off))
	for i := range p {
		p[i] = byte(rng.IntN(255) + 1)
	}
	return int64(off), p
}

func checkRead(rng *rand.Rand, r *fileReplica, m *modelReplica) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	off := rng.IntN(len(m.data))
	p := make([]byte, min(rng.IntN(3*BlockSize)+1, len(m.data)-off))
	if _, err := r.ReadAt(p, int64(off)); err != nil {
		return fmt.Errorf("ReadAt(%d, %d) of %d: %w", off, len(p), r.h, err)
	}
	if !bytes.Equal(p, m.data[off:off+len(p)]) {
		return fmt.Errorf("ReadAt(%d, %d) of %d: data differs from what was written", off, len(p), r.h)
	}
	return nil
}

func TestDirtyReplicasStayOpenBeyondLimit(t *testing.T) {
	const limit, n = 2, 6
	mem := NewMemFS()
	cfs := &countFS{FS: mem}
	s, err := openFileStoreConfig(Config{FS: cfs, Dir: "/d", MaxOpenFiles: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rs []*fileReplica
	for i := range n {
		rs = append(rs, mustCreate(t, s, Meta{Handle: Handle(i + 1), Epoch: 1, ChunkSize: 2 * BlockSize}))
	}
	want := bytes.Repeat([]byte{7}, BlockSize+10)
	for _, r := range rs {
		if err := r.WriteAt(want, 100); err != nil {
			t.Fatal(err)
		}
	}
	// Every replica has unsynced writes: none may be closed.
	if open, _, _, dirty := cfs.stats(); open != n || dirty != 0 {
		t.Fatalf("%d files open, %d closed dirty; want all %d open", open, dirty, n)
	}
	used := make([]int64, n)
	for i, r := range rs {
		if err := r.Sync(); err != nil {
			t.Fatal(err)
		}
		used[i] = r.UsedBytes()
		if used[i] < int64(len(want)) {
			t.Fatalf("replica %d uses %d bytes after writing %d", i+1, used[i], len(want))
		}
	}
	if open, _, _, dirty := cfs.stats(); open > limit || dirty != 0 {
		t.Fatalf("after syncing all: %d files open (limit %d), %d closed dirty", open, limit, dirty)
	}
	// UsedBytes of a closed file does not reopen it.
	_, _, opens, _ := cfs.stats()
	for i, r := range rs {
		if got := r.UsedBytes(); got != used[i] {
			t.Fatalf("replica %d: UsedBytes %d once evicted, %d before", i+1, got, used[i])
		}
	}
	if _, _, opens2, _ := cfs.stats(); opens2 != opens {
		t.Fatalf("UsedBytes opened %d files", opens2-opens)
	}
	cs := mustOpen(t, mem.CrashClone(), "/d")
	defer cs.Close()
	for i := range n {
		got := make([]byte, len(want))
		if _, err := mustGet(t, cs, Handle(i+1)).ReadAt(got, 100); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("replica %d after crash: %v, data equal %v", i+1, err, bytes.Equal(got, want))
		}
	}

	// Delete and Close release every file.
	if err := s.Delete(1); err != nil {
		t.Fatal(err)
	}
	if _, err := rs[0].ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("ReadAt of a deleted replica succeeded")
	}
	s.Close()
	if open, _, _, _ := cfs.stats(); open != 0 {
		t.Fatalf("%d files open after Close", open)
	}
}

func TestOpenStoreWithManyReplicasStaysWithinLimit(t *testing.T) {
	const limit, n = 3, 20
	mem := NewMemFS()
	s := mustOpen(t, mem, "/d")
	for i := range n {
		r := mustCreate(t, s, Meta{Handle: Handle(i + 1), Epoch: 1, ChunkSize: BlockSize})
		if err := r.WriteAt([]byte{byte(i + 1)}, 0); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	cfs := &countFS{FS: mem}
	s2, err := openFileStoreConfig(Config{FS: cfs, Dir: "/d", MaxOpenFiles: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, maxOpen, _, _ := cfs.stats(); maxOpen > limit {
		t.Fatalf("Open of %d replicas held %d files at once, limit %d", n, maxOpen, limit)
	}
	for i := range n {
		b := make([]byte, 1)
		if _, err := mustGet(t, s2, Handle(i+1)).ReadAt(b, 0); err != nil || b[0] != byte(i+1) {
			t.Fatalf("replica %d: %v, byte %d", i+1, err, b[0])
		}
	}
}
