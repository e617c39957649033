package chunkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
)

// writeHistory builds a replica with a few synced rounds of random writes
// and zeros, then leaves some unsynced ones; it returns the history.
func writeHistory(t *testing.T, rng *rand.Rand, r *fileReplica, size int) (h *history, applied uint64) {
	h, applied, _ = writeHistoryStates(t, rng, r, size)
	return h, applied
}

// writeHistoryStates is writeHistory, also returning the content as of
// each synced seq.
func writeHistoryStates(t *testing.T, rng *rand.Rand, r *fileReplica, size int) (h *history, applied uint64, states map[uint64][]byte) {
	t.Helper()
	h = newHistory(size)
	states = map[uint64][]byte{0: make([]byte, size)}
	for i := range 1 + rng.IntN(4) {
		for range 1 + rng.IntN(8) {
			h.mutate(t, rng, r)
		}
		applied = uint64(i + 1)
		r.SetApplied(applied)
		if err := r.Sync(); err != nil {
			t.Fatal(err)
		}
		h.sync()
		states[applied] = bytes.Clone(h.cur)
	}
	for range 1 + rng.IntN(12) {
		h.mutate(t, rng, r)
	}
	return h, applied, states
}

// A process crash (SIGKILL) keeps the page cache: every write that
// completed is on "disk" though not synced. Recovery must adopt it through
// the pending table: no block reads as corrupt, every block holds its
// newest content, the applied seq is the synced one, and the blocks newer
// than it are listed as ahead.
func TestProcessCrashAdoptsUnsyncedWrites(t *testing.T) {
	const size = 1<<20 + 777
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		fs := NewMemFS()
		s := mustOpen(t, fs, "/d")
		r := mustCreate(t, s, Meta{Handle: 1, Epoch: 1, ChunkSize: size})
		h, applied, states := writeHistoryStates(t, rng, r, size)

		cs := mustOpen(t, fs.CrashCloneKeeping(func(string, int64) bool { return true }), "/d")
		cr := mustGet(t, cs, 1)
		// The previous Sync's seq when a block of the last Sync was since
		// rewritten to its old content (doc.go: conservative).
		if got := cr.Meta().AppliedSeq; got != applied && got != applied-1 {
			t.Fatalf("seed %d: applied %d after crash, want %d (or %d)", seed, got, applied, applied-1)
		}
		if bad := cr.BadBlocks(); len(bad) > 0 {
			t.Fatalf("seed %d: bad blocks %v after a process crash", seed, bad)
		}
		checkAll(t, cr, h.cur)
		// Ahead: exactly what the recovered seq does not explain (the
		// listing may include blocks rewritten to their old content).
		ahead := cr.AheadBlocks()
		at := states[cr.Meta().AppliedSeq]
		for b := range numBlocks(size) {
			if !bytes.Equal(h.block(at, b), h.block(h.cur, b)) && !slices.Contains(ahead, b) {
				t.Fatalf("seed %d: block %d is newer than applied seq %d but is not listed ahead (%v)", seed, b, cr.Meta().AppliedSeq, ahead)
			}
		}
		for _, b := range ahead {
			if _, ok := h.states[b]; !ok && bytes.Equal(h.block(h.synced, b), h.block(at, b)) {
				t.Fatalf("seed %d: block %d listed ahead but untouched since applied seq %d", seed, b, cr.Meta().AppliedSeq)
			}
		}
		// The adopted checksums become durable with the next Sync.
		if err := cr.Sync(); err != nil {
			t.Fatal(err)
		}
		again := mustOpen(t, cs.fs.(*MemFS).CrashClone(), "/d")
		checkAll(t, mustGet(t, again, 1), h.cur)
		s.Close()
		cs.Close()
		again.Close()
	}
}

// A power cut keeps any subset of the unsynced pages: blocks may be torn.
// A torn block is listed as bad at load and never read; every other block
// holds its synced or its newest content, nothing older and nothing mixed.
// Rewriting a bad block whole heals it.
func TestPowerCutTornBlocksListedAndHealed(t *testing.T) {
	const size = 1 << 20
	var torn, ahead int
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 11))
		fs := NewMemFS()
		s := mustOpen(t, fs, "/d")
		r := mustCreate(t, s, Meta{Handle: 1, Epoch: 1, ChunkSize: size})
		h, _ := writeHistory(t, rng, r, size)

		cs := mustOpen(t, fs.CrashCloneKeeping(func(string, int64) bool { return rng.IntN(2) == 0 }), "/d")
		cr := mustGet(t, cs, 1)
		bad := cr.BadBlocks()
		for b := range numBlocks(size) {
			got := make([]byte, BlockSize)
			_, err := cr.ReadAt(got, b*BlockSize)
			if errors.Is(err, ErrCorrupt) {
				// Listed at load when its pending entry reached the disk,
				// else from the read that found it.
				if !slices.Contains(cr.BadBlocks(), b) {
					t.Fatalf("seed %d: block %d reads corrupt but is not listed bad %v", seed, b, cr.BadBlocks())
				}
				torn++
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(bad, b) {
				t.Fatalf("seed %d: block %d listed bad but verifies", seed, b)
			}
			synced, newest := h.block(h.synced, b), h.block(h.cur, b)
			if !bytes.Equal(got, synced) && !bytes.Equal(got, newest) {
				t.Fatalf("seed %d: block %d holds neither its synced nor its newest content", seed, b)
			}
			if !bytes.Equal(got, synced) {
				ahead++
			}
		}
		for _, b := range cr.BadBlocks() {
			if err := cr.WriteAt(h.block(h.cur, b), b*BlockSize); err != nil {
				t.Fatalf("seed %d: rewrite bad block %d: %v", seed, b, err)
			}
		}
		if got := cr.BadBlocks(); len(got) > 0 {
			t.Fatalf("seed %d: still bad after rewrite: %v", seed, got)
		}
		if err := cr.Verify(); err != nil {
			t.Fatalf("seed %d: verify after heal: %v", seed, err)
		}
		s.Close()
		cs.Close()
	}
	if torn == 0 || ahead == 0 {
		t.Fatalf("the cuts exercised too little: %d torn blocks, %d adopted", torn, ahead)
	}
	t.Logf("torn blocks: %d, adopted newer blocks: %d", torn, ahead)
}

// A partial write into a bad block fails with ErrCorrupt and changes
// nothing; reads of other blocks go on.
func TestPartialWriteIntoBadBlockRefused(t *testing.T) {
	fs := NewMemFS()
	s := mustOpen(t, fs, "/d")
	defer s.Close()
	r := mustCreate(t, s, Meta{Handle: 1, Epoch: 1, ChunkSize: 4 * BlockSize})
	if err := r.WriteAt(bytes.Repeat([]byte{7}, 4*BlockSize), 0); err != nil {
		t.Fatal(err)
	}
	flipDataByte(t, fs, "/d", 1, BlockSize+5)
	if err := r.WriteAt([]byte{1, 2, 3}, BlockSize+100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("partial write into a bad block: %v, want ErrCorrupt", err)
	}
	if got := r.BadBlocks(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("bad blocks %v, want [1]", got)
	}
	p := make([]byte, BlockSize)
	if _, err := r.ReadAt(p, 2*BlockSize); err != nil {
		t.Fatalf("read of a good block: %v", err)
	}
}

// Replicas written in format 2 (no pending table, data at 72 KiB) are
// still read and written in their own layout.
func TestFormatV2ReplicaStillServed(t *testing.T) {
	fs := NewMemFS()
	if err := fs.MkdirAll("/d/chunks", 0o755); err != nil {
		t.Fatal(err)
	}
	const size = 3 * BlockSize
	f, err := fs.OpenFile("/d/chunks/"+fileName(5), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{9}, BlockSize)
	entry := blockEntry(data, zeroBlockCRC())
	if _, err := f.WriteAt(encodeHeader(header{Version: formatV2, Gen: 1, Meta: Meta{Handle: 5, Epoch: 2, ChunkSize: size, AppliedSeq: 4}}), 0); err != nil {
		t.Fatal(err)
	}
	var e [4]byte
	binary.LittleEndian.PutUint32(e[:], entry)
	if _, err := f.WriteAt(e[:], tableOff+4); err != nil { // block 1
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, dataOffV2+BlockSize); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(dataOffV2 + size); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir("/d/chunks"); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, fs, "/d")
	r := mustGet(t, s, 5)
	want := make([]byte, size)
	copy(want[BlockSize:], data)
	checkAll(t, r, want)
	copy(want[10:], "hello")
	if err := r.WriteAt([]byte("hello"), 10); err != nil {
		t.Fatal(err)
	}
	r.SetApplied(5)
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := mustOpen(t, fs.CrashClone(), "/d")
	defer s2.Close()
	r2 := mustGet(t, s2, 5)
	checkAll(t, r2, want)
	if m := r2.Meta(); m.AppliedSeq != 5 || r2.lay.version != formatV2 {
		t.Fatalf("after reopen: applied %d, format %d; want 5, format 2", m.AppliedSeq, r2.lay.version)
	}
}

// flipDataByte flips one byte of replica h's data at chunk offset at,
// behind the store's back (a disk error).
func flipDataByte(t *testing.T, fs FS, dir string, h Handle, at int64) {
	t.Helper()
	f, err := fs.OpenFile(dir+"/chunks/"+fileName(h), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, dataOff+at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, dataOff+at); err != nil {
		t.Fatal(err)
	}
}

// A power cut at any point of Create leaves no replica, or the whole
// empty one: never a half-made file under the replica's name. A leftover
// *.tmp is ignored by Open and replaced by the next Create.
func TestCrashDuringCreate(t *testing.T) {
	for _, cutAt := range []Op{OpTruncate, OpAllocate, OpWrite, OpSync, OpRename, OpSyncDir} {
		mem := NewMemFS()
		var cut atomic.Bool
		efs := &ErrorFS{FS: mem, Inject: func(op Op, _ string, _ int64) error {
			if cut.Load() && op == cutAt {
				return syscall.EIO // the power went out here
			}
			return nil
		}}
		s := mustOpen(t, efs, "/d")
		cut.Store(true)
		_, err := s.Create(Meta{Handle: 3, Epoch: 1, ChunkSize: 1 << 20})
		for _, keep := range []bool{false, true} {
			cs := mustOpen(t, mem.CrashCloneKeeping(func(string, int64) bool { return keep }), "/d")
			r, gerr := cs.Get(3)
			switch {
			case gerr == nil && err != nil && cutAt != OpSyncDir:
				t.Fatalf("cut at %v: Create failed (%v) but the replica exists after the crash", cutAt, err)
			case gerr == nil:
				checkAll(t, r, make([]byte, 1<<20))
			case !errors.Is(gerr, ErrNotFound):
				t.Fatalf("cut at %v: %v", cutAt, gerr)
			}
			cs.Close()
		}
		cut.Store(false)
		s.Close()
		// The next Create of the handle (on the crashed disk) succeeds.
		cs := mustOpen(t, mem.CrashClone(), "/d")
		if _, err := cs.Get(3); errors.Is(err, ErrNotFound) {
			r := mustCreate(t, cs, Meta{Handle: 3, Epoch: 2, ChunkSize: 1 << 20})
			if err := r.WriteAt([]byte("x"), 0); err != nil {
				t.Fatal(err)
			}
		}
		cs.Close()
	}
}

// TestAheadBlocksAfterCutDuringSync: the power goes out during a Sync (its
// fdatasync never happens; any subset of its pages and of the unsynced
// writes before it lands). Whatever the recovered applied seq, every block
// that verifies and whose bytes are not those of that seq is listed by
// AheadBlocks: a delta resync from that seq re-sends it, so replicas that
// claim the same seq never differ silently.
func TestAheadBlocksAfterCutDuringSync(t *testing.T) {
	const size = 1 << 20
	listedAhead := 0
	for seed := range uint64(150) {
		rng := rand.New(rand.NewPCG(seed, 23))
		mem := NewMemFS()
		var cut atomic.Bool
		efs := &ErrorFS{FS: mem, Inject: func(op Op, _ string, _ int64) error {
			if cut.Load() && op == OpSync {
				return syscall.EIO
			}
			return nil
		}}
		s := mustOpen(t, efs, "/d")
		r := mustCreate(t, s, Meta{Handle: 1, Epoch: 1, ChunkSize: size})
		h := newHistory(size)
		states := map[uint64][]byte{0: make([]byte, size)}
		rounds := 2 + rng.IntN(4)
		for i := range rounds {
			for range 1 + rng.IntN(8) {
				h.mutate(t, rng, r)
			}
			seq := uint64(i + 1)
			r.SetApplied(seq)
			if i == rounds-1 {
				cut.Store(true) // this Sync is cut
			}
			err := r.Sync()
			if i < rounds-1 {
				if err != nil {
					t.Fatal(err)
				}
				h.sync()
			}
			states[seq] = bytes.Clone(h.cur)
		}
		cs := mustOpen(t, mem.CrashCloneKeeping(func(string, int64) bool { return rng.IntN(2) == 0 }), "/d")
		cr := mustGet(t, cs, 1)
		applied := cr.Meta().AppliedSeq
		want, ok := states[applied]
		if !ok || applied < uint64(rounds-2) {
			t.Fatalf("seed %d: recovered applied seq %d after a cut during Sync %d", seed, applied, rounds)
		}
		ahead := cr.AheadBlocks()
		for b := range numBlocks(size) {
			got := make([]byte, BlockSize)
			if _, err := cr.ReadAt(got, b*BlockSize); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatal(err)
				}
				continue
			}
			if !bytes.Equal(got, h.block(want, b)) {
				if !slices.Contains(ahead, b) {
					t.Fatalf("seed %d: block %d verifies with bytes newer than applied seq %d but is not listed ahead %v", seed, b, applied, ahead)
				}
				listedAhead++
			}
		}
		s.Close()
		cs.Close()
	}
	if listedAhead == 0 {
		t.Fatal("no cut left a block ahead of its seq: the test exercised nothing")
	}
}
