package chunkstore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

const testChunk = 2<<20 + 12345 // not a multiple of BlockSize: a partial last block

func mustOpen(t testing.TB, fs FS, dir string) *fileStore {
	t.Helper()
	s, err := openFileStore(fs, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustCreate(t testing.TB, s *fileStore, m Meta) *fileReplica {
	t.Helper()
	r, err := s.Create(m)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return r
}

func mustGet(t testing.TB, s *fileStore, h Handle) *fileReplica {
	t.Helper()
	r, err := s.Get(h)
	if err != nil {
		t.Fatalf("Get(%d): %v", h, err)
	}
	return r
}

// checkAll reads the whole replica and compares it to want.
func checkAll(t testing.TB, r *fileReplica, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := r.ReadAt(got, 0); err != nil {
		t.Fatalf("ReadAt all: %v", err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("byte %d: got %d, want %d", i, got[i], want[i])
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// randomOp applies one random write or zero to r and to the reference,
// returning the range it changed.
func randomOp(t testing.TB, rng *rand.Rand, r *fileReplica, ref []byte) (int64, int64) {
	t.Helper()
	size := int64(len(ref))
	off := rng.Int64N(size)
	n := min(rng.Int64N(3*BlockSize)+1, size-off)
	if rng.IntN(5) == 0 {
		if err := r.Zero(off, n); err != nil {
			t.Fatalf("Zero(%d, %d): %v", off, n, err)
		}
		clear(ref[off : off+n])
		return off, n
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.IntN(255) + 1)
	}
	if err := r.WriteAt(p, off); err != nil {
		t.Fatalf("WriteAt(%d, %d): %v", off, n, err)
	}
	copy(ref[off:], p)
	return off, n
}

func testFSes(t *testing.T) map[string]func() (FS, string) {
	return map[string]func() (FS, string){
		"mem": func() (FS, string) { return NewMemFS(), "/data" },
		"os":  func() (FS, string) { return OSFS, t.TempDir() },
	}
}

func TestRoundTripRandom(t *testing.T) {
	for name, mk := range testFSes(t) {
		t.Run(name, func(t *testing.T) {
			fs, dir := mk()
			s := mustOpen(t, fs, dir)
			m := Meta{Handle: 7, Epoch: 3, ChunkSize: testChunk, Chain: []uint64{1, 2, 3}}
			r := mustCreate(t, s, m)
			ref := make([]byte, testChunk)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 200 {
				randomOp(t, rng, r, ref)
				off := rng.Int64N(testChunk)
				n := min(rng.Int64N(2*BlockSize)+1, testChunk-off)
				got := make([]byte, n)
				if _, err := r.ReadAt(got, off); err != nil {
					t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
				}
				if !bytes.Equal(got, ref[off:off+n]) {
					t.Fatalf("op %d: ReadAt(%d, %d) differs from reference", i, off, n)
				}
				if i%50 == 0 {
					r.SetApplied(uint64(i))
					if err := r.Sync(); err != nil {
						t.Fatal(err)
					}
				}
			}
			checkAll(t, r, ref)
			if err := r.Verify(); err != nil {
				t.Fatal(err)
			}
			r.SetApplied(999)
			if err := r.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, fs, dir)
			defer s.Close()
			r = mustGet(t, s, 7)
			checkAll(t, r, ref)
			m.AppliedSeq = 999
			if got := r.Meta(); !metaEqual(got, m) {
				t.Fatalf("Meta after reopen = %+v, want %+v", got, m)
			}
		})
	}
}

func metaEqual(a, b Meta) bool {
	return a.Handle == b.Handle && a.Epoch == b.Epoch && a.ChunkSize == b.ChunkSize &&
		a.AppliedSeq == b.AppliedSeq && slices.Equal(a.Chain, b.Chain)
}

func TestRangeAndLifecycleErrors(t *testing.T) {
	fs := NewMemFS()
	s := mustOpen(t, fs, "/d")
	if _, err := s.Create(Meta{Handle: 1, ChunkSize: 0}); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("Create size 0: %v, want ErrInvalidMeta", err)
	}
	if _, err := s.Create(Meta{Handle: 1, ChunkSize: MaxChunkSize + 1}); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("Create too big: %v, want ErrInvalidMeta", err)
	}
	r := mustCreate(t, s, Meta{Handle: 1, ChunkSize: BlockSize})
	if _, err := s.Create(Meta{Handle: 1, ChunkSize: BlockSize}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	if err := r.WriteAt([]byte{1, 2}, BlockSize-1); !errors.Is(err, ErrRange) {
		t.Fatalf("WriteAt past end: %v, want ErrRange", err)
	}
	if _, err := r.ReadAt(make([]byte, 2), BlockSize-1); !errors.Is(err, ErrRange) {
		t.Fatalf("ReadAt past end: %v, want ErrRange", err)
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); !errors.Is(err, ErrRange) {
		t.Fatalf("ReadAt negative: %v, want ErrRange", err)
	}
	if err := r.Zero(10, BlockSize); !errors.Is(err, ErrRange) {
		t.Fatalf("Zero past end: %v, want ErrRange", err)
	}
	if _, err := s.Get(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: %v, want ErrNotFound", err)
	}
	mustCreate(t, s, Meta{Handle: 2, ChunkSize: BlockSize})
	if got := s.List(); len(got) != 2 || got[0].Handle != 1 || got[1].Handle != 2 {
		t.Fatalf("List = %+v", got)
	}
	if err := s.Delete(1); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteAt([]byte{1}, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteAt after Delete: %v, want ErrClosed", err)
	}
	if err := s.Delete(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	// Create and Delete are durable: a crash right after keeps only handle 2.
	c := mustOpen(t, fs.CrashClone(), "/d")
	if got := c.List(); len(got) != 1 || got[0].Handle != 2 {
		t.Fatalf("List after crash = %+v, want only handle 2", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(2); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
}

func TestFlippedDataByteDetected(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, OSFS, dir)
	r := mustCreate(t, s, Meta{Handle: 0xabc, ChunkSize: 4 * BlockSize})
	data := bytes.Repeat([]byte("catena!"), 4*BlockSize/7)
	if err := r.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()

	const at = 2*BlockSize + 100 // in block 2
	f, err := os.OpenFile(filepath.Join(dir, "chunks", fileName(0xabc)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, dataOff+at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, dataOff+at); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = mustOpen(t, OSFS, dir)
	defer s.Close()
	r = mustGet(t, s, 0xabc)
	got := make([]byte, 10)
	n, err := r.ReadAt(got, at-5)
	if !errors.Is(err, ErrCorrupt) || n != 0 {
		t.Fatalf("ReadAt of flipped block = %d, %v; want 0, ErrCorrupt", n, err)
	}
	if !isZero(got) {
		t.Fatal("ReadAt returned bytes along with ErrCorrupt")
	}
	// Other blocks still read fine.
	if _, err := r.ReadAt(got, BlockSize); err != nil {
		t.Fatalf("ReadAt of a good block: %v", err)
	}
	// A partial write must not launder the bad block.
	if err := r.WriteAt([]byte{1}, 2*BlockSize); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("partial WriteAt into a corrupt block: %v, want ErrCorrupt", err)
	}
	err = r.Verify()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify = %v, want ErrCorrupt", err)
	}
	if want := "bad blocks [2]"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Fatalf("Verify error %q does not name %q", err, want)
	}
	// A full-block overwrite repairs it.
	if err := r.WriteAt(data[:BlockSize], 2*BlockSize); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(); err != nil {
		t.Fatalf("Verify after rewrite: %v", err)
	}
}

func TestTornHeaderSlotFallsBack(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, OSFS, dir)
	r := mustCreate(t, s, Meta{Handle: 5, Epoch: 1, ChunkSize: BlockSize, Chain: []uint64{9}}) // gen 1, slot A
	r.SetApplied(10)
	if err := r.Sync(); err != nil { // gen 2, slot B
		t.Fatal(err)
	}
	r.SetApplied(20)
	r.SetConfig(2, []uint64{9, 8})
	if err := r.Sync(); err != nil { // gen 3, slot A
		t.Fatal(err)
	}
	s.Close()
	name := filepath.Join(dir, "chunks", fileName(5))

	// Tear slot A: its second half is garbage.
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, slotSize/2), slotSize/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s = mustOpen(t, OSFS, dir)
	m := mustGet(t, s, 5).Meta()
	if m.AppliedSeq != 10 || m.Epoch != 1 || !slices.Equal(m.Chain, []uint64{9}) {
		t.Fatalf("after torn slot A: %+v, want applied 10, epoch 1, chain [9]", m)
	}
	// The next Sync goes to the torn slot, keeping B.
	r = mustGet(t, s, 5)
	r.SetApplied(30)
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, OSFS, dir)
	if m := mustGet(t, s, 5).Meta(); m.AppliedSeq != 30 {
		t.Fatalf("after resync: applied %d, want 30", m.AppliedSeq)
	}
	s.Close()

	// Both slots bad: the file is moved aside, Open still succeeds.
	f, err = os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 2*slotSize), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s = mustOpen(t, OSFS, dir)
	defer s.Close()
	if _, err := s.Get(5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of headerless replica: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "corrupt", fileName(5))); err != nil {
		t.Fatalf("not moved aside: %v", err)
	}
}

func TestReopenKeepsMeta(t *testing.T) {
	for name, mk := range testFSes(t) {
		t.Run(name, func(t *testing.T) {
			fs, dir := mk()
			s := mustOpen(t, fs, dir)
			r := mustCreate(t, s, Meta{Handle: 42, Epoch: 1, ChunkSize: 1 << 20, Chain: []uint64{1, 2}})
			if err := r.WriteAt([]byte("hello"), 100000); err != nil {
				t.Fatal(err)
			}
			r.SetConfig(4, []uint64{2, 3, 1})
			r.SetApplied(77)
			if err := r.Sync(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = mustOpen(t, fs, dir)
			defer s.Close()
			r = mustGet(t, s, 42)
			want := Meta{Handle: 42, Epoch: 4, ChunkSize: 1 << 20, Chain: []uint64{2, 3, 1}, AppliedSeq: 77}
			if got := r.Meta(); !metaEqual(got, want) {
				t.Fatalf("Meta = %+v, want %+v", got, want)
			}
			got := make([]byte, 5)
			if _, err := r.ReadAt(got, 100000); err != nil || string(got) != "hello" {
				t.Fatalf("ReadAt = %q, %v", got, err)
			}
		})
	}
}

// history tracks, per block, every content the block had since the last
// Sync (index 0: the synced content).
type history struct {
	synced []byte
	cur    []byte
	states map[int64][][]byte
}

func newHistory(size int) *history {
	return &history{synced: make([]byte, size), cur: make([]byte, size), states: map[int64][][]byte{}}
}

func (h *history) block(buf []byte, b int64) []byte {
	lo := b * BlockSize
	return bytes.Clone(buf[lo:min(lo+BlockSize, int64(len(buf)))])
}

// touched records the state of blocks [first, last] after a change to cur.
func (h *history) touched(off, n int64) {
	for b := off / BlockSize; b <= (off+n-1)/BlockSize; b++ {
		if _, ok := h.states[b]; !ok {
			h.states[b] = [][]byte{h.block(h.synced, b)}
		}
		h.states[b] = append(h.states[b], h.block(h.cur, b))
	}
}

func (h *history) sync() {
	copy(h.synced, h.cur)
	h.states = map[int64][][]byte{}
}

// checkAfterCrash checks a recovered replica against the history: blocks
// untouched since the last Sync are exact; touched ones read as one of
// their states or ErrCorrupt.
func (h *history) checkAfterCrash(t *testing.T, r *fileReplica) (corrupt int) {
	t.Helper()
	nb := numBlocks(int64(len(h.cur)))
	for b := range nb {
		want := h.block(h.synced, b)
		got := make([]byte, len(want))
		_, err := r.ReadAt(got, b*BlockSize)
		states, touched := h.states[b]
		if !touched {
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("block %d untouched since Sync: err %v, equal %v", b, err, bytes.Equal(got, want))
			}
			continue
		}
		if errors.Is(err, ErrCorrupt) {
			corrupt++
			continue
		}
		if err != nil {
			t.Fatalf("block %d: %v", b, err)
		}
		if !slices.ContainsFunc(states, func(s []byte) bool { return bytes.Equal(s, got) }) {
			t.Fatalf("block %d reads bytes it never held", b)
		}
	}
	return corrupt
}

func TestCrashCloneKeepsSyncedNeverTorn(t *testing.T) {
	const size = 1 << 20
	var corrupt, rolledBack int
	for seed := range uint64(25) {
		rng := rand.New(rand.NewPCG(seed, 99))
		fs := NewMemFS()
		s := mustOpen(t, fs, "/d")
		r := mustCreate(t, s, Meta{Handle: 1, Epoch: 1, ChunkSize: size})
		h := newHistory(size)
		var prevApplied, applied uint64
		for i := range 1 + rng.IntN(6) {
			for range 1 + rng.IntN(8) {
				h.mutate(t, rng, r)
			}
			prevApplied, applied = applied, uint64(i+1)
			r.SetApplied(applied)
			if err := r.Sync(); err != nil {
				t.Fatal(err)
			}
			h.sync()
		}
		unsynced := rng.IntN(3) // 0: a crash right after Sync
		for range unsynced * 4 {
			h.mutate(t, rng, r)
		}
		keep := func(string, int64) bool { return rng.IntN(2) == 0 }
		if seed%4 == 0 {
			keep = func(string, int64) bool { return false }
		}
		cs := mustOpen(t, fs.CrashCloneKeeping(keep), "/d")
		cr := mustGet(t, cs, 1)
		got := cr.Meta().AppliedSeq
		switch {
		case got == applied:
		case got == prevApplied && unsynced > 0:
			rolledBack++ // conservative: the last Sync's blocks were overwritten since
		default:
			t.Fatalf("seed %d: applied %d after crash, want %d (or %d)", seed, got, applied, prevApplied)
		}
		if unsynced == 0 {
			checkAll(t, cr, h.synced)
		}
		corrupt += h.checkAfterCrash(t, cr)
		s.Close()
		cs.Close()
	}
	t.Logf("torn blocks detected: %d, metadata rolled back: %d", corrupt, rolledBack)
}

// mutate applies a random op to r and records it.
func (h *history) mutate(t *testing.T, rng *rand.Rand, r *fileReplica) {
	t.Helper()
	h.mutateOff(t, rng, r)
}

func (h *history) mutateOff(t *testing.T, rng *rand.Rand, r *fileReplica) (int64, int64) {
	t.Helper()
	off, n := randomOp(t, rng, r, h.cur)
	h.touched(off, n)
	return off, n
}

func TestCrashDuringSync(t *testing.T) {
	// The fdatasync of the last Sync never happens; any subset of its pages
	// (data, checksums, header) reaches the disk. Recovery must never claim
	// the new applied seq unless every block of that Sync is there.
	const size = 1 << 20
	var newSeen, oldSeen int
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 7))
		mem := NewMemFS()
		var failSync atomic.Bool
		efs := &ErrorFS{FS: mem, Inject: func(op Op, _ string, _ int64) error {
			if op == OpSync && failSync.Load() {
				return syscall.EIO
			}
			return nil
		}}
		s := mustOpen(t, efs, "/d")
		r := mustCreate(t, s, Meta{Handle: 1, Epoch: 1, ChunkSize: size})
		h := newHistory(size)
		all := newHistory(size) // every state since creation
		for range 3 {
			off, n := h.mutateOff(t, rng, r)
			copy(all.cur, h.cur)
			all.touched(off, n)
		}
		r.SetApplied(1)
		if err := r.Sync(); err != nil {
			t.Fatal(err)
		}
		h.sync()
		synced := bytes.Clone(h.synced)
		for range 1 + rng.IntN(5) {
			off, n := h.mutateOff(t, rng, r)
			copy(all.cur, h.cur)
			all.touched(off, n)
		}
		r.SetApplied(2)
		failSync.Store(true)
		if err := r.Sync(); !errors.Is(err, ErrFailed) {
			t.Fatalf("Sync with failing fdatasync: %v, want ErrFailed", err)
		}
		if err := r.WriteAt([]byte{1}, 0); !errors.Is(err, ErrFailed) {
			t.Fatalf("WriteAt after failed Sync: %v, want ErrFailed", err)
		}
		keep := func(string, int64) bool { return rng.IntN(2) == 0 }
		cs := mustOpen(t, mem.CrashCloneKeeping(keep), "/d")
		cr := mustGet(t, cs, 1)
		switch cr.Meta().AppliedSeq {
		case 2:
			// Trusted the new header: every block reads as its new content
			// or, where torn, ErrCorrupt; never as its old content.
			newSeen++
			for b := range numBlocks(size) {
				got := make([]byte, BlockSize)
				_, err := cr.ReadAt(got, b*BlockSize)
				if errors.Is(err, ErrCorrupt) {
					continue
				}
				if err != nil || !bytes.Equal(got, h.block(h.cur, b)) {
					t.Fatalf("seed %d: applied 2 but block %d is not its new content (err %v)", seed, b, err)
				}
			}
		case 1:
			oldSeen++
			h.synced = synced
			h.checkAfterCrash(t, cr)
		case 0:
			// The last Sync's header was lost and a block of the Sync before
			// went back to its older content: conservative, rare.
			oldSeen++
			all.checkAfterCrash(t, cr)
		default:
			t.Fatalf("seed %d: applied %d", seed, cr.Meta().AppliedSeq)
		}
		s.Close()
		cs.Close()
	}
	t.Logf("recovered new header %d times, old %d times", newSeen, oldSeen)
	if newSeen == 0 || oldSeen == 0 {
		t.Fatalf("crash outcomes not exercised: new %d, old %d", newSeen, oldSeen)
	}
}

func TestZeroPunchesHoles(t *testing.T) {
	for name, mk := range testFSes(t) {
		t.Run(name, func(t *testing.T) {
			fs, dir := mk()
			s := mustOpen(t, fs, dir)
			defer s.Close()
			r := mustCreate(t, s, Meta{Handle: 3, ChunkSize: 4 << 20})
			ref := make([]byte, 4<<20)
			data := make([]byte, 2<<20)
			for i := range data {
				data[i] = byte(i%251 + 1)
			}
			if err := r.WriteAt(data, 0); err != nil {
				t.Fatal(err)
			}
			copy(ref, data)
			if err := r.Sync(); err != nil {
				t.Fatal(err)
			}
			before := s.UsedBytes()
			if before < 2<<20 {
				t.Fatalf("UsedBytes %d after writing 2 MiB", before)
			}
			// Aligned 1 MiB plus unaligned edges.
			off, n := int64(512<<10-1000), int64(1<<20+3000)
			if err := r.Zero(off, n); err != nil {
				t.Fatal(err)
			}
			clear(ref[off : off+n])
			// A small unaligned zero inside one page.
			if err := r.Zero(1800<<10+5, 17); err != nil {
				t.Fatal(err)
			}
			clear(ref[1800<<10+5 : 1800<<10+22])
			if err := r.Sync(); err != nil {
				t.Fatal(err)
			}
			after := s.UsedBytes()
			if after > before-(1<<20) {
				t.Fatalf("UsedBytes %d -> %d: zeroing 1 MiB freed less than 1 MiB", before, after)
			}
			checkAll(t, r, ref)
			if err := r.Verify(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNoSpaceChangesNothing(t *testing.T) {
	mem := NewMemFS()
	var full atomic.Bool
	efs := &ErrorFS{FS: mem, Inject: func(op Op, _ string, _ int64) error {
		if full.Load() && (op == OpWrite || op == OpAllocate || op == OpTruncate) {
			return &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
		}
		return nil
	}}
	s := mustOpen(t, efs, "/d")
	defer s.Close()
	r := mustCreate(t, s, Meta{Handle: 1, ChunkSize: 1 << 20})
	ref := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(5, 5))
	for range 20 {
		randomOp(t, rng, r, ref)
	}
	r.SetApplied(3)
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}

	full.Store(true)
	if err := r.WriteAt(bytes.Repeat([]byte{9}, 100000), 1000); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("WriteAt on full disk: %v, want ErrNoSpace", err)
	}
	if _, err := s.Create(Meta{Handle: 2, ChunkSize: 1 << 20}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Create on full disk: %v, want ErrNoSpace", err)
	}
	if _, err := s.Get(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failed Create left a replica: %v", err)
	}
	r.SetApplied(4)
	if err := r.Sync(); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Sync on full disk: %v, want ErrNoSpace", err)
	}
	checkAll(t, r, ref)
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	// Durable state is untouched too.
	cs := mustOpen(t, mem.CrashClone(), "/d")
	cr := mustGet(t, cs, 1)
	checkAll(t, cr, ref)
	if got := cr.Meta().AppliedSeq; got != 3 {
		t.Fatalf("applied after crash %d, want 3", got)
	}
	cs.Close()

	full.Store(false) // space freed: the store carries on
	if err := r.Sync(); err != nil {
		t.Fatalf("Sync after space freed: %v", err)
	}
	if err := r.WriteAt([]byte{1}, 0); err != nil {
		t.Fatal(err)
	}
}

func TestOneFdatasyncPerSync(t *testing.T) {
	mem := NewMemFS()
	var syncs atomic.Int64
	efs := &ErrorFS{FS: mem, Inject: func(op Op, _ string, _ int64) error {
		if op == OpSync {
			syncs.Add(1)
		}
		return nil
	}}
	s := mustOpen(t, efs, "/d")
	defer s.Close()
	r := mustCreate(t, s, Meta{Handle: 1, ChunkSize: 32 << 20})
	for i := range 10 {
		if err := r.WriteAt([]byte("x"), int64(i)*4096); err != nil {
			t.Fatal(err)
		}
	}
	r.SetApplied(10)
	syncs.Store(0)
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 1 {
		t.Fatalf("Sync did %d fdatasyncs, want 1", n)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 1 {
		t.Fatalf("Sync with nothing new did an fdatasync (%d total)", n)
	}
	// Too many blocks for the header's list: data first, then header.
	if err := r.WriteAt(make([]byte, 32<<20), 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 3 {
		t.Fatalf("large Sync: %d fdatasyncs in total, want 3", n)
	}
}

func TestConcurrentReadsNeverSeeHalfWrites(t *testing.T) {
	s := mustOpen(t, NewMemFS(), "/d")
	defer s.Close()
	r := mustCreate(t, s, Meta{Handle: 1, ChunkSize: 1 << 20})
	const span = 3 * BlockSize // every write fills [off, off+span) with one byte value
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := range 3 {
		wg.Go(func() {
			for i := range 60 {
				v := byte(w*60 + i + 1)
				if err := r.WriteAt(bytes.Repeat([]byte{v}, span), 5000); err != nil {
					errc <- err
					return
				}
				if i%10 == 0 {
					if err := r.Sync(); err != nil {
						errc <- err
						return
					}
				}
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			buf := make([]byte, span)
			for range 100 {
				if _, err := r.ReadAt(buf, 5000); err != nil {
					errc <- err
					return
				}
				for _, c := range buf {
					if c != buf[0] {
						errc <- fmt.Errorf("read saw a mix of %d and %d", buf[0], c)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
}
