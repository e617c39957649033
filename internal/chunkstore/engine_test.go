package chunkstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustEngine(t testing.TB, cfg Config) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	e, err := openEngine(cfg)
	if err != nil {
		t.Fatalf("openEngine: %v", err)
	}
	return e
}

func memEngine(t testing.TB) (*Store, *MemFS) {
	fs := NewMemFS()
	e := mustEngine(t, Config{FS: fs, Dir: "/d"})
	t.Cleanup(func() { e.Close() })
	return e, fs
}

func engCreate(t testing.TB, e *Store, m Meta) *Replica {
	t.Helper()
	r, err := e.Create(m)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return r
}

func engGet(t testing.TB, e *Store, h Handle) *Replica {
	t.Helper()
	r, err := e.Get(h)
	if err != nil {
		t.Fatalf("Get(%d): %v", h, err)
	}
	return r
}

func engCheck(t testing.TB, e *Store) {
	t.Helper()
	if err := e.check(); err != nil {
		t.Fatalf("engine check: %v", err)
	}
}

func engCheckAll(t testing.TB, r *Replica, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := r.ReadAt(got, 0); err != nil {
		t.Fatalf("ReadAt all: %v", err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("byte %d: got %d, want %d", i, got[i], want[i])
	}
}

func engSync(t testing.TB, s interface{ Sync() error }) {
	t.Helper()
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func engWrite(t testing.TB, r *Replica, p []byte, off int64) {
	t.Helper()
	if err := r.WriteAt(p, off); err != nil {
		t.Fatalf("WriteAt(%d, +%d): %v", off, len(p), err)
	}
}

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7) + seed | 1
	}
	return p
}

// engRandomOp applies one random write or zero to r and to ref.
func engRandomOp(t testing.TB, rng *rand.Rand, r *Replica, ref []byte) {
	t.Helper()
	size := int64(len(ref))
	off := rng.Int64N(size)
	n := min(rng.Int64N(3*BlockSize)+1, size-off)
	if rng.IntN(5) == 0 {
		if err := r.Zero(off, n); err != nil {
			t.Fatalf("Zero(%d, %d): %v", off, n, err)
		}
		clear(ref[off : off+n])
		return
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(rng.IntN(255) + 1)
	}
	engWrite(t, r, p, off)
	copy(ref[off:], p)
}

func TestEngineRoundTripRandom(t *testing.T) {
	for name, mk := range testFSes(t) {
		t.Run(name, func(t *testing.T) {
			fs, dir := mk()
			cfg := Config{FS: fs, Dir: dir, SegmentSize: MinSegmentSize}
			e := mustEngine(t, cfg)
			rng := rand.New(rand.NewPCG(1, 2))
			refs := map[Handle][]byte{}
			for h := Handle(1); h <= 3; h++ {
				engCreate(t, e, Meta{Handle: h, Epoch: 1, ChunkSize: testChunk, Chain: []uint64{1, 2}})
				refs[h] = make([]byte, testChunk)
			}
			for i := range 300 {
				h := Handle(rng.IntN(3) + 1)
				engRandomOp(t, rng, engGet(t, e, h), refs[h])
				if i%50 == 0 {
					engSync(t, e)
				}
			}
			for h, ref := range refs {
				engCheckAll(t, engGet(t, e, h), ref)
			}
			engCheck(t, e)
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e = mustEngine(t, cfg)
			defer e.Close()
			for h, ref := range refs {
				r := engGet(t, e, h)
				engCheckAll(t, r, ref)
				if err := r.Verify(); err != nil {
					t.Fatal(err)
				}
				if m := r.Meta(); m.Epoch != 1 || !slices.Equal(m.Chain, []uint64{1, 2}) {
					t.Fatalf("meta after reopen: %+v", m)
				}
			}
			engCheck(t, e)
		})
	}
}

func TestEngineRangeAndLifecycleErrors(t *testing.T) {
	e, _ := memEngine(t)
	if _, err := e.Create(Meta{Handle: 1, ChunkSize: 0}); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("Create of size 0: %v", err)
	}
	if _, err := e.Create(Meta{Handle: 1, ChunkSize: 10, Chain: make([]uint64, MaxChainLen+1)}); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("Create with a long chain: %v", err)
	}
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: 100})
	if _, err := e.Create(Meta{Handle: 1, ChunkSize: 100}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v", err)
	}
	if _, err := e.Get(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of missing: %v", err)
	}
	if err := e.Delete(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of missing: %v", err)
	}
	if _, err := e.Clone(2, 3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Clone of missing: %v", err)
	}
	if _, err := e.Clone(1, 1); !errors.Is(err, ErrExists) {
		t.Fatalf("Clone onto existing: %v", err)
	}
	for _, c := range []struct{ off, n int64 }{{-1, 1}, {0, 101}, {100, 1}, {99, 2}} {
		if err := r.WriteAt(make([]byte, c.n), c.off); !errors.Is(err, ErrRange) {
			t.Fatalf("WriteAt(%d, +%d): %v", c.off, c.n, err)
		}
		if _, err := r.ReadAt(make([]byte, c.n), c.off); !errors.Is(err, ErrRange) {
			t.Fatalf("ReadAt(%d, +%d): %v", c.off, c.n, err)
		}
		if err := r.Zero(c.off, c.n); !errors.Is(err, ErrRange) {
			t.Fatalf("Zero(%d, +%d): %v", c.off, c.n, err)
		}
		if err := r.Invalidate(c.off, c.n); !errors.Is(err, ErrRange) {
			t.Fatalf("Invalidate(%d, +%d): %v", c.off, c.n, err)
		}
	}
	if err := r.WriteAt(nil, 100); err != nil {
		t.Fatalf("empty write at the end: %v", err)
	}
	r.SetConfig(2, make([]uint64, MaxChainLen+1))
	if err := r.Sync(); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("Sync with a long chain: %v", err)
	}
	if err := e.Sync(); err != nil {
		t.Fatalf("engine Sync with one replica's chain too long: %v", err)
	}
	r.SetConfig(2, []uint64{1})
	engSync(t, r)
	if err := e.Delete(1); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteAt([]byte{1}, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Delete: %v", err)
	}
	r2 := engCreate(t, e, Meta{Handle: 1, ChunkSize: 100})
	if m := e.List(); len(m) != 1 || m[0].Handle != 1 {
		t.Fatalf("List: %+v", m)
	}
	e.Close()
	if _, err := r2.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if _, err := e.Create(Meta{Handle: 5, ChunkSize: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Create after Close: %v", err)
	}
}

func TestEngineHolesTakeNoSpace(t *testing.T) {
	e, _ := memEngine(t)
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: 8 * BlockSize})
	if err := r.WriteAt(pattern(3*BlockSize, 1), BlockSize); err != nil {
		t.Fatal(err)
	}
	if got := e.UsedBytes(); got != 3*BlockSize {
		t.Fatalf("UsedBytes after 3 blocks: %d", got)
	}
	// A whole-block zero drops the block; a partial one stores nothing.
	if err := r.Zero(BlockSize, BlockSize+100); err != nil {
		t.Fatal(err)
	}
	if got := e.UsedBytes(); got != 2*BlockSize {
		t.Fatalf("UsedBytes after zeroing a block: %d, want %d", got, 2*BlockSize)
	}
	want := make([]byte, 8*BlockSize)
	copy(want[BlockSize:], pattern(3*BlockSize, 1))
	clear(want[BlockSize : 2*BlockSize+100])
	engCheckAll(t, r, want)
	if err := r.Zero(0, 8*BlockSize); err != nil {
		t.Fatal(err)
	}
	if got, rg := e.UsedBytes(), r.UsedBytes(); got != 0 || rg != 0 {
		t.Fatalf("UsedBytes after zeroing all: engine %d, replica %d", got, rg)
	}
	engCheckAll(t, r, make([]byte, 8*BlockSize))
	if len(r.blocks) != 0 {
		t.Fatalf("block map after zeroing all: %d entries", len(r.blocks))
	}
	engCheck(t, e)
}

// Many partial writes into one block: its list stays short (rewritten
// whole past engineMaxPieces) and reads right.
func TestEngineLongPieceListRewrittenWhole(t *testing.T) {
	e, _ := memEngine(t)
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: 2 * BlockSize})
	want := make([]byte, 2*BlockSize)
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range 100 {
		off, n := rng.Int64N(BlockSize-600), rng.Int64N(500)+1
		p := pattern(int(n), byte(i))
		engWrite(t, r, p, off)
		copy(want[off:], p)
		if l := listOf(r.blocks, 0); len(l.pieces) > engineMaxPieces+1 {
			t.Fatalf("list of %d pieces", len(l.pieces))
		}
		if i%10 == 0 {
			zo := rng.Int64N(BlockSize - 100)
			if err := r.Zero(zo, 50); err != nil {
				t.Fatal(err)
			}
			clear(want[zo : zo+50])
		}
	}
	engCheckAll(t, r, want)
	engCheck(t, e)
}

func flipFileByte(t testing.TB, fs FS, name string, at int64) {
	t.Helper()
	f, err := fs.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestEngineFlippedByteDetected(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	r := engCreate(t, e, Meta{Handle: 7, ChunkSize: 4 * BlockSize})
	data := pattern(4*BlockSize, 3)
	engWrite(t, r, data, 0)
	engWrite(t, r, pattern(100, 9), BlockSize+10) // a second piece in block 1
	copy(data[BlockSize+10:], pattern(100, 9))
	engSync(t, e)
	p, off, err := e.Locate(7, BlockSize+20)
	if err != nil {
		t.Fatal(err)
	}
	flipFileByte(t, fs, p, off)
	buf := make([]byte, 4*BlockSize)
	_, err = r.ReadAt(buf, 0)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "0000000000000007 block 1") {
		t.Fatalf("read over a flipped byte: %v", err)
	}
	if !bytes.Equal(buf, make([]byte, len(buf))) {
		t.Fatal("a failed read handed out data")
	}
	if bad := r.BadBlocks(); !slices.Equal(bad, []int64{1}) {
		t.Fatalf("BadBlocks = %v", bad)
	}
	// The other blocks still serve; a partial write into the bad block
	// fails, a whole-block one heals it.
	if _, err := r.ReadAt(buf[:BlockSize], 2*BlockSize); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteAt([]byte{1}, BlockSize); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("partial write into a bad block: %v", err)
	}
	if err := r.Zero(BlockSize, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("partial zero of a bad block: %v", err)
	}
	if err := r.Verify(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify: %v", err)
	}
	// Found again after a crash and a restart: replay meets the damaged
	// piece, and a later record (written after its Sync) proves that it
	// was synced, so it stays and reads fail.
	engWrite(t, engCreate(t, e, Meta{Handle: 8, ChunkSize: 10}), []byte("later"), 0)
	engSync(t, e)
	cfg.FS = fs.CrashClone()
	e2 := mustEngine(t, cfg)
	r2 := engGet(t, e2, 7)
	if bad := r2.BadBlocks(); !slices.Equal(bad, []int64{1}) {
		t.Fatalf("BadBlocks after restart = %v", bad)
	}
	if _, err := r2.ReadAt(buf[:10], BlockSize+15); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read after restart: %v", err)
	}
	e2.Close()

	engWrite(t, r, data[BlockSize:2*BlockSize], BlockSize)
	if bad := r.BadBlocks(); len(bad) != 0 {
		t.Fatalf("BadBlocks after a whole-block write = %v", bad)
	}
	engCheckAll(t, r, data)
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	engCheck(t, e)
	e.Close()
}

func TestEngineInvalidate(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	size := int64(3*BlockSize + 500)
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: size})
	data := pattern(int(size), 5)
	engWrite(t, r, data, 0)
	if err := r.Invalidate(BlockSize+5, 10); err != nil {
		t.Fatal(err)
	}
	if err := r.Invalidate(3*BlockSize, 1); err != nil {
		t.Fatal(err)
	}
	engSync(t, e)
	check := func(r *Replica) {
		t.Helper()
		if bad := r.BadBlocks(); !slices.Equal(bad, []int64{1, 3}) {
			t.Fatalf("BadBlocks = %v", bad)
		}
		if _, err := r.ReadAt(make([]byte, 1), BlockSize+100); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read of an invalidated block: %v", err)
		}
		if _, err := r.ReadAt(make([]byte, BlockSize), 0); err != nil {
			t.Fatalf("read of a good block: %v", err)
		}
		if err := r.WriteAt([]byte{1}, BlockSize); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("partial write: %v", err)
		}
	}
	check(r)
	cfg.FS = fs.CrashClone()
	e2 := mustEngine(t, cfg)
	check(engGet(t, e2, 1))
	e2.Close()
	// Writing whole blocks heals them; the chunk's short last block is
	// whole from its start to the end of the chunk.
	engWrite(t, r, data[BlockSize:2*BlockSize], BlockSize)
	engWrite(t, r, data[3*BlockSize:], 3*BlockSize)
	engCheckAll(t, r, data)
	if bad := r.BadBlocks(); len(bad) != 0 {
		t.Fatalf("BadBlocks after healing = %v", bad)
	}
	engCheck(t, e)
	e.Close()
}

func TestEngineMetaSurvivesOnlyOnceSynced(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	r := engCreate(t, e, Meta{Handle: 1, Epoch: 1, ChunkSize: BlockSize, Chain: []uint64{1}})
	engSync(t, e)
	r.SetConfig(4, []uint64{3, 2, 1})
	r.SetAppliedAt(4, 17)
	engSync(t, r)
	want := Meta{Handle: 1, Epoch: 4, ChunkSize: BlockSize, Chain: []uint64{3, 2, 1}, AppliedSeq: 17, AppliedEpoch: 4}
	r.SetApplied(18) // not synced
	cfg.FS = fs.CrashClone()
	e2 := mustEngine(t, cfg)
	if m := engGet(t, e2, 1).Meta(); !metaEqual(m, want) {
		t.Fatalf("meta after crash: %+v, want %+v", m, want)
	}
	e2.Close()
	// A checkpoint covers it too; then the log after it.
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	r.SetApplied(19)
	engSync(t, e)
	want.AppliedSeq = 19
	cfg.FS = fs.CrashClone()
	e3 := mustEngine(t, cfg)
	if m := engGet(t, e3, 1).Meta(); !metaEqual(m, want) {
		t.Fatalf("meta after checkpoint, sync and crash: %+v, want %+v", m, want)
	}
	e3.Close()
	e.Close()
}

func TestEngineNoSpaceChangesNothing(t *testing.T) {
	mem := NewMemFS()
	var full atomic.Bool
	efs := &ErrorFS{FS: mem, Inject: func(op Op, _ string, _ int64) error {
		if full.Load() && (op == OpAllocate || op == OpWrite || op == OpOpen) {
			return &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
		}
		return nil
	}}
	e := mustEngine(t, Config{FS: efs, Dir: "/d", SegmentSize: MinSegmentSize})
	defer e.Close()
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: 8 * BlockSize})
	data := pattern(BlockSize, 1)
	engWrite(t, r, data, 0)
	engSync(t, e)
	// Fill the reserved space so that the next write must allocate.
	e.appendMu.Lock()
	e.tail.reserved = e.tailOff
	e.appendMu.Unlock()
	full.Store(true)
	if err := r.WriteAt(pattern(BlockSize, 2), 0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write on a full disk: %v", err)
	}
	if _, err := e.Create(Meta{Handle: 2, ChunkSize: 1}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("create on a full disk: %v", err)
	}
	engCheckAll(t, r, append(data, make([]byte, 7*BlockSize)...))
	full.Store(false)
	engWrite(t, r, pattern(BlockSize, 2), 0)
	engSync(t, e)
	engCheck(t, e)
}

func TestEngineSyncFailureFailsEngine(t *testing.T) {
	mem := NewMemFS()
	var failSync atomic.Bool
	efs := &ErrorFS{FS: mem, Inject: func(op Op, _ string, _ int64) error {
		if failSync.Load() && op == OpSync {
			return syscall.EIO
		}
		return nil
	}}
	cfg := Config{FS: efs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: BlockSize})
	engWrite(t, r, []byte("synced"), 0)
	engSync(t, e)
	engWrite(t, r, []byte("lost"), 0)
	failSync.Store(true)
	if err := r.Sync(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Sync with a failing fdatasync: %v", err)
	}
	if err := r.WriteAt([]byte{1}, 0); !errors.Is(err, ErrFailed) {
		t.Fatalf("write after a failed sync: %v", err)
	}
	if _, err := r.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrFailed) {
		t.Fatalf("read after a failed sync: %v", err)
	}
	e.Close()
	failSync.Store(false)
	cfg.FS = mem.CrashClone()
	e2 := mustEngine(t, cfg)
	defer e2.Close()
	got := make([]byte, 6)
	if _, err := engGet(t, e2, 1).ReadAt(got, 0); err != nil || string(got) != "synced" {
		t.Fatalf("after reopening: %q, %v", got, err)
	}
}

// Concurrent Syncs share one fdatasync: while one is in fdatasync, the
// others' writes queue up and are covered together by the next.
func TestEngineGroupCommit(t *testing.T) {
	mem := NewMemFS()
	var syncs atomic.Int64
	gate := make(chan struct{})
	var blocked atomic.Bool
	entered := make(chan struct{}) // the first Sync is inside its fdatasync
	efs := &ErrorFS{FS: mem, Inject: func(op Op, name string, _ int64) error {
		if op == OpSync && strings.HasSuffix(name, ".seg") {
			syncs.Add(1)
			if blocked.CompareAndSwap(true, false) {
				close(entered)
				<-gate
			}
		}
		return nil
	}}
	e := mustEngine(t, Config{FS: efs, Dir: "/d"})
	defer e.Close()
	const n = 10
	rs := make([]*Replica, n+1)
	for i := range rs {
		rs[i] = engCreate(t, e, Meta{Handle: Handle(i + 1), ChunkSize: BlockSize})
	}
	engSync(t, e)
	syncs.Store(0)
	blocked.Store(true)
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	wg.Add(1)
	go func() { // the first Sync, held inside its fdatasync
		defer wg.Done()
		if err := rs[0].WriteAt([]byte("first"), 0); err != nil {
			errs <- err
			return
		}
		errs <- rs[0].Sync()
	}()
	<-entered
	e.appendMu.Lock()
	start := e.nextLSN
	e.appendMu.Unlock()
	// Each writer appends its write (no meta record: nothing set its
	// applied seq).
	appended := awaitLog(e, func() bool { return e.nextLSN >= start+n })
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rs[i].WriteAt([]byte("later"), 0); err != nil {
				errs <- err
				return
			}
			errs <- rs[i].Sync()
		}()
	}
	<-appended
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := syncs.Load(); got != 2 {
		t.Fatalf("%d fdatasyncs for %d concurrent Syncs, want 2", got, n+1)
	}
	// And a Sync with nothing new does no I/O.
	engSync(t, e)
	if got := syncs.Load(); got != 2 {
		t.Fatalf("an idle Sync did an fdatasync (%d)", got)
	}
}

func TestEngineConcurrentReadsNeverSeeHalfWrites(t *testing.T) {
	e, _ := memEngine(t)
	const size = 3*BlockSize + 999
	rs := []*Replica{
		engCreate(t, e, Meta{Handle: 1, ChunkSize: size}),
		engCreate(t, e, Meta{Handle: 2, ChunkSize: size}),
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 8)
	for _, r := range rs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for v := byte(1); ; v++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := r.WriteAt(bytes.Repeat([]byte{v}, size), 0); err != nil {
					errc <- err
					return
				}
				if v%16 == 0 {
					if err := r.Sync(); err != nil {
						errc <- err
						return
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			p := make([]byte, size)
			for range 300 {
				if _, err := r.ReadAt(p, 0); err != nil {
					errc <- err
					return
				}
				for i := range p {
					if p[i] != p[0] {
						errc <- fmt.Errorf("replica %d: byte %d is %d, byte 0 is %d: half a write", r.h, i, p[i], p[0])
						return
					}
				}
			}
		}()
	}
	checkpointed := make(chan struct{})
	go func() {
		defer close(checkpointed)
		for range 5 {
			if err := e.Checkpoint(); err != nil {
				errc <- err
			}
		}
	}()
	<-checkpointed // five checkpoints ran among the writers and readers
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	engCheck(t, e)
}

func TestEngineCloneAndDiff(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	size := int64(6 * BlockSize)
	src := engCreate(t, e, Meta{Handle: 1, Epoch: 3, ChunkSize: size, Chain: []uint64{9}})
	data := pattern(int(size), 1)
	engWrite(t, src, data, 0)
	src.SetAppliedAt(3, 40)
	used := e.UsedBytes()
	dst, err := e.Clone(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if m := dst.Meta(); m.Handle != 2 || m.AppliedSeq != 40 || m.Epoch != 3 || !slices.Equal(m.Chain, []uint64{9}) {
		t.Fatalf("clone's meta: %+v", m)
	}
	if e.UsedBytes() != used {
		t.Fatalf("a clone used space: %d -> %d", used, e.UsedBytes())
	}
	if d, err := e.Diff(1, 2); err != nil || len(d) != 0 {
		t.Fatalf("Diff right after Clone: %v, %v", d, err)
	}
	// The first write to a shared block stores only what it writes.
	engWrite(t, dst, []byte("new"), 2*BlockSize+5)
	if err := src.Zero(4*BlockSize, BlockSize); err != nil {
		t.Fatal(err)
	}
	if got := e.UsedBytes(); got != used+3 {
		t.Fatalf("UsedBytes after a 3-byte write to a shared block: %d, want %d", got, used+3)
	}
	if d, _ := e.Diff(1, 2); !slices.Equal(d, []int64{2, 4}) {
		t.Fatalf("Diff = %v, want [2 4]", d)
	}
	// Own bytes: the clone's 3 new bytes; the source's block 4, which it
	// zeroed (zeros store nothing), holds none of its own, and the
	// clone's old block 4 is now only the clone's.
	if got := dst.OwnBytes(); got != 3+BlockSize {
		t.Fatalf("clone's own bytes %d, want %d", got, 3+BlockSize)
	}
	if got := src.OwnBytes(); got != 0 {
		t.Fatalf("source's own bytes %d, want 0", got)
	}
	want := slices.Clone(data)
	copy(want[2*BlockSize+5:], "new")
	engCheckAll(t, dst, want)
	clear(data[4*BlockSize : 5*BlockSize])
	engCheckAll(t, src, data)
	engCheck(t, e)
	engSync(t, e)
	// Sharing survives a crash and a checkpoint.
	cfg.FS = fs.CrashClone()
	e2 := mustEngine(t, cfg)
	if d, _ := e2.Diff(1, 2); !slices.Equal(d, []int64{2, 4}) {
		t.Fatalf("Diff after crash = %v", d)
	}
	engCheck(t, e2)
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	e3 := mustEngine(t, cfg)
	if d, _ := e3.Diff(1, 2); !slices.Equal(d, []int64{2, 4}) {
		t.Fatalf("Diff after checkpoint = %v", d)
	}
	if got := e3.UsedBytes(); got != used+3 {
		t.Fatalf("UsedBytes after reopen: %d, want %d", got, used+3)
	}
	// Deleting the source keeps the clone's blocks, now all its own.
	if err := e3.Delete(1); err != nil {
		t.Fatal(err)
	}
	engCheckAll(t, engGet(t, e3, 2), want)
	if got := engGet(t, e3, 2).OwnBytes(); got != engGet(t, e3, 2).UsedBytes() {
		t.Fatalf("clone alone: own bytes %d, used %d", got, engGet(t, e3, 2).UsedBytes())
	}
	if got := e3.UsedBytes(); got != size+3-BlockSize+BlockSize {
		// dst holds all 6 blocks: 5 shared ones, block 4 (zeroed only in
		// src) and its own 3 bytes in block 2.
		t.Fatalf("UsedBytes after deleting the source: %d", got)
	}
	engCheck(t, e3)
	e3.Close()
	e.Close()
}

// Dead pieces are punched once a checkpoint covers their death, and dead
// segments behind the checkpoint are removed.
func TestEngineSpaceReclaimed(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", SegmentSize: MinSegmentSize, CheckpointBytes: 1 << 40, Logger: quietLogger()}
	e := mustEngine(t, cfg)
	defer e.Close()
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: 4 * BlockSize})
	for i := range 200 {
		engWrite(t, r, pattern(4096, byte(i)), int64(i%16)*4096)
	}
	engWrite(t, r, pattern(4*BlockSize, 1), 0)
	for h := Handle(10); h < 40; h++ {
		x := engCreate(t, e, Meta{Handle: h, ChunkSize: BlockSize})
		engWrite(t, x, pattern(4096, byte(h)), 0)
	}
	for h := Handle(10); h < 40; h++ {
		if err := e.Delete(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Another checkpoint moves the replay position past the records of
	// the first one's segment.
	engWrite(t, r, []byte{1}, 0)
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	engCheck(t, e)
	names, _ := fs.ReadDir("/d/engine")
	var alloc int64
	for _, n := range names {
		f, err := fs.OpenFile(path.Join("/d/engine", n), os.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		alloc += f.Allocated()
		f.Close()
	}
	live := e.UsedBytes()
	t.Logf("files %v: %d bytes allocated for %d live", names, alloc, live)
	// Live data, at most a reserved allocation step, and a few pages of
	// heads and page edges.
	if alloc > live+engineAllocStep+64<<10 {
		t.Fatalf("%d bytes allocated for %d live bytes", alloc, live)
	}
	want := pattern(4*BlockSize, 1)
	want[0] = 1
	engCheckAll(t, r, want)
	e2 := mustEngine(t, Config{FS: fs.CrashClone(), Dir: "/d", SegmentSize: MinSegmentSize})
	engCheckAll(t, engGet(t, e2, 1), want)
	engCheck(t, e2)
	e2.Close()
}

func TestEngineBackgroundCheckpoint(t *testing.T) {
	fs := NewMemFS()
	e := mustEngine(t, Config{FS: fs, Dir: "/d", SegmentSize: MinSegmentSize, CheckpointBytes: 512 << 10})
	defer e.Close()
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: 4 * BlockSize})
	p := pattern(BlockSize, 4)
	for i := range 40 {
		engWrite(t, r, p, int64(i%4)*BlockSize)
	}
	engSync(t, e)
	select {
	case <-awaitLog(e, func() bool { return e.cpLSN > 1 }):
	case <-time.After(10 * time.Second):
		t.Fatal("no checkpoint after 2.5 MiB of log with CheckpointBytes 512 KiB")
	}
	engCheck(t, e)
}

// A write larger than a segment is cut into records that each fit.
func TestEngineLargeWriteSmallSegments(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", SegmentSize: MinSegmentSize, Logger: quietLogger()}
	e := mustEngine(t, cfg)
	size := int64(40*BlockSize + 3)
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: size})
	data := pattern(int(size-100), 8)
	engWrite(t, r, data, 50)
	engSync(t, e)
	want := make([]byte, size)
	copy(want[50:], data)
	engCheckAll(t, r, want)
	e2 := mustEngine(t, Config{FS: fs.CrashClone(), Dir: "/d", SegmentSize: MinSegmentSize})
	engCheckAll(t, engGet(t, e2, 1), want)
	engCheck(t, e2)
	e2.Close()
	e.Close()
}

// A damaged record of the last Sync before a crash cannot be told from a
// torn write (nothing written after that Sync vouches for it): the log
// ends there, and the replicas come back consistently as of the Sync
// before, metadata included, never with a bad block.
func TestEngineDamageInLastSyncEndsLog(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: BlockSize})
	engWrite(t, r, []byte("old"), 0)
	r.SetApplied(1)
	engSync(t, e)
	engWrite(t, r, []byte("new"), 0)
	r.SetApplied(2)
	engSync(t, e)
	p, off, err := e.Locate(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	flipFileByte(t, fs, p, off)
	cfg.FS = fs.CrashClone()
	e2 := mustEngine(t, cfg)
	defer e2.Close()
	r2 := engGet(t, e2, 1)
	got := make([]byte, 3)
	if _, err := r2.ReadAt(got, 0); err != nil || string(got) != "old" || r2.Meta().AppliedSeq != 1 {
		t.Fatalf("after the crash: %q, %v, applied %d; want \"old\", applied 1", got, err, r2.Meta().AppliedSeq)
	}
	engCheck(t, e2)
	e.Close()
}

// A record head of a synced record damaged, with later synced records
// behind it: the log cannot be replayed past it, and openEngine says so
// rather than drop synced records.
func TestEngineDamagedSyncedHeadFailsOpen(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: BlockSize})
	engWrite(t, r, []byte("first"), 0)
	engSync(t, e)
	engWrite(t, r, []byte("second"), 0)
	engSync(t, e)
	p, off, err := e.Locate(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	engWrite(t, r, []byte("third"), 0)
	engSync(t, e)
	flipFileByte(t, fs, p, off-recPieceSize-8-20) // in the head of "second"'s record
	cfg.FS = fs.CrashClone()
	if e2, err := openEngine(cfg); !errors.Is(err, ErrCorrupt) {
		if e2 != nil {
			e2.Close()
		}
		t.Fatalf("openEngine over a damaged synced head: %v, want ErrCorrupt", err)
	}
	e.Close()
}

// awaitLog returns a channel closed once cond holds of e's log; cond runs
// with appendMu held, now and whenever the log's LSN or checkpoint moves.
func awaitLog(e *Store, cond func() bool) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	check := func() {
		if cond() {
			once.Do(func() { close(ch) })
		}
	}
	e.appendMu.Lock()
	e.onAdvance = check
	check()
	e.appendMu.Unlock()
	return ch
}

// TestEngineAheadSurvivesAnUncoveringMarker is the case a whole-cluster
// power cut found: a write lands, then a Sync (another replica's, or any
// meta change's) or a checkpoint writes this replica's metadata before its
// SetAppliedAt accounts for the write. After a crash the write is there,
// the applied seq is the older one, and the write's block must be ahead;
// once SetAppliedAt covers it and a Sync follows, it is not.
func TestEngineAheadSurvivesAnUncoveringMarker(t *testing.T) {
	for _, viaCheckpoint := range []bool{false, true} {
		t.Run(fmt.Sprint("checkpoint=", viaCheckpoint), func(t *testing.T) {
			fs := NewMemFS()
			cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
			e := mustEngine(t, cfg)
			defer e.Close()
			r := engCreate(t, e, Meta{Handle: 1, Epoch: 1, ChunkSize: 4 * BlockSize, Chain: []uint64{1}})
			other := engCreate(t, e, Meta{Handle: 2, Epoch: 1, ChunkSize: BlockSize, Chain: []uint64{1}})
			if err := r.WriteAt([]byte("seq 1"), 10); err != nil {
				t.Fatal(err)
			}
			r.SetAppliedAt(1, 1)
			engSync(t, e)
			if err := r.WriteAt([]byte("seq 2"), 2*BlockSize+10); err != nil {
				t.Fatal(err)
			}
			r.SetConfig(2, []uint64{1}) // a marker for r without the write's seq
			other.SetAppliedAt(1, 5)
			if viaCheckpoint {
				if err := e.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			} else {
				engSync(t, other)
			}
			reopen := func() *Replica {
				t.Helper()
				cfg.FS = fs.CrashClone()
				e2 := mustEngine(t, cfg)
				t.Cleanup(func() { e2.Close() })
				if err := e2.check(); err != nil {
					t.Fatal(err)
				}
				return engGet(t, e2, 1)
			}
			r2 := reopen()
			if m := r2.Meta(); m.AppliedSeq != 1 || m.Epoch != 2 {
				t.Fatalf("meta after crash: %+v, want applied seq 1 at epoch 2", m)
			}
			got := make([]byte, 5)
			if _, err := r2.ReadAt(got, 2*BlockSize+10); err != nil || string(got) != "seq 2" {
				t.Fatalf("read %q, %v: the synced write is lost", got, err)
			}
			if a := r2.AheadBlocks(); !slices.Equal(a, []int64{2}) {
				t.Fatalf("ahead %v, want [2]: the write is newer than the applied seq", a)
			}
			// The recovered engine keeps it ahead across its own Syncs and
			// checkpoints until SetAppliedAt covers it.
			e2 := r2.e
			engSync(t, e2)
			if err := e2.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			fs = cfg.FS.(*MemFS)
			if a := reopen().AheadBlocks(); !slices.Equal(a, []int64{2}) {
				t.Fatalf("ahead after a sync and checkpoint of the recovered engine: %v, want [2]", a)
			}
			// Covered now.
			r.SetAppliedAt(2, 2)
			engSync(t, e)
			fs = e.fs.(*MemFS)
			r3 := reopen()
			if a, m := r3.AheadBlocks(), r3.Meta(); len(a) != 0 || m.AppliedSeq != 2 {
				t.Fatalf("after SetAppliedAt and Sync: ahead %v, applied %d; want none, 2", a, m.AppliedSeq)
			}
		})
	}
}

// TestEngineReclaimsDeathsInAnyOrder: pieces that die in an order other
// than their place in the log (a later write's block trimmed first) are
// all punched out once a checkpoint covers them.
func TestEngineReclaimsDeathsInAnyOrder(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", CheckpointBytes: 1 << 40, Logger: quietLogger()}
	e := mustEngine(t, cfg)
	defer e.Close()
	r := engCreate(t, e, Meta{Handle: 1, ChunkSize: 32 * BlockSize})
	for b := int64(0); b < 32; b += 8 { // four records of 8 blocks, in order
		engWrite(t, r, pattern(8*BlockSize, byte(b+1)), b*BlockSize)
	}
	allocated := func() int64 {
		f, err := fs.OpenFile("/d/engine/"+segName(1), os.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return f.Allocated()
	}
	before := allocated()
	// Trim the last record's blocks first, then the first's.
	for _, b := range []int64{24, 16, 8, 0} {
		if err := r.Zero(b*BlockSize, 8*BlockSize); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	engCheck(t, e)
	if after := allocated(); before-after < 32*BlockSize-16<<10 {
		t.Fatalf("allocated %d -> %d after trimming %d bytes", before, after, 32*BlockSize)
	}
}
