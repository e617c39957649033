package chunkstore

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
)

// reqs returns ids n..m-1 of client c, id i at seq i and offset 512*i.
func reqRange(c uint64, n, m int) []Request {
	var out []Request
	for i := n; i < m; i++ {
		out = append(out, Request{Client: c, ID: uint64(i), Seq: uint64(i), Offset: int64(512 * i)})
	}
	return out
}

func wantRequests(t testing.TB, what string, r *Replica, want []Request) {
	t.Helper()
	if got := r.Requests(); !slices.Equal(got, want) {
		t.Fatalf("%s: %d request ids %v, want %d %v", what, len(got), firstFew(got), len(want), firstFew(want))
	}
}

func firstFew(rs []Request) string {
	if len(rs) <= 4 {
		return fmt.Sprint(rs)
	}
	return fmt.Sprint(rs[:2], "...", rs[len(rs)-2:])
}

// crashReopen opens the crash clone of fs (what was synced) as cfg says.
func crashReopen(t testing.TB, fs *MemFS, cfg Config) *Store {
	t.Helper()
	cfg.FS = fs.CrashClone()
	e := mustEngine(t, cfg)
	t.Cleanup(func() { e.Close() })
	engCheck(t, e)
	return e
}

// TestEngineRequestsDurableWithApplied: request ids recorded with the
// applied seq that accounts for their updates survive a crash together
// with it (once synced), and are lost together with it (not synced),
// through markers, a checkpoint and markers after it.
func TestEngineRequestsDurableWithApplied(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	defer e.Close()
	r := engCreate(t, e, Meta{Handle: 1, Epoch: 1, ChunkSize: 1 << 20, Chain: []uint64{1}})
	engWrite(t, r, pattern(100, 1), 0)
	r.SetAppliedAt(1, 2, reqRange(7, 1, 3)...)
	engSync(t, r)
	engWrite(t, r, pattern(100, 2), 0)
	r.SetAppliedAt(1, 3, reqRange(7, 3, 4)...) // not synced
	wantRequests(t, "in memory", r, reqRange(7, 1, 4))

	e2 := crashReopen(t, fs, cfg)
	r2 := engGet(t, e2, 1)
	if m := r2.Meta(); m.AppliedSeq != 2 {
		t.Fatalf("applied seq %d after the crash, want 2", m.AppliedSeq)
	}
	wantRequests(t, "after a crash", r2, reqRange(7, 1, 3))

	// Synced, then a checkpoint, then more after it: each once.
	engSync(t, r)
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	r.SetAppliedAt(1, 4, reqRange(7, 4, 5)...)
	engSync(t, e)
	// Recorded before a checkpoint but carried by no marker yet: the
	// checkpoint holds them, and so does the marker after it.
	r.SetAppliedAt(1, 6, reqRange(7, 5, 7)...)
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	engSync(t, r)
	e3 := crashReopen(t, fs, cfg)
	wantRequests(t, "after checkpoints and markers", engGet(t, e3, 1), reqRange(7, 1, 7))
}

// TestEngineRequestsCloseReopen: Close's checkpoint keeps the ids, even
// those no Sync covered (as it keeps the applied seq).
func TestEngineRequestsCloseReopen(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	r := engCreate(t, e, Meta{Handle: 1, Epoch: 1, ChunkSize: 1 << 20, Chain: []uint64{1}})
	r.SetAppliedAt(1, 2, reqRange(7, 1, 3)...)
	engSync(t, e)
	r.SetAppliedAt(1, 3, reqRange(7, 3, 4)...)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := mustEngine(t, cfg)
	defer e2.Close()
	r2 := engGet(t, e2, 1)
	if m := r2.Meta(); m.AppliedSeq != 3 {
		t.Fatalf("applied seq %d after close, want 3", m.AppliedSeq)
	}
	wantRequests(t, "after close and reopen", r2, reqRange(7, 1, 4))
	// And a crash after the reopen, with a marker for a new id.
	r2.SetAppliedAt(1, 4, reqRange(7, 4, 5)...)
	engSync(t, r2)
	wantRequests(t, "crash after reopen", engGet(t, crashReopen(t, fs, cfg), 1), reqRange(7, 1, 5))
}

// TestEngineRequestsReplaced: ReplaceRequestsAt replaces the table with
// the applied seq, durably in one step; a crash before its Sync keeps
// the old table and the old seq.
func TestEngineRequestsReplaced(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	defer e.Close()
	r := engCreate(t, e, Meta{Handle: 1, Epoch: 1, ChunkSize: 1 << 20, Chain: []uint64{1}})
	r.SetAppliedAt(1, 5, reqRange(7, 1, 6)...)
	engSync(t, r)
	r.ReplaceRequestsAt(2, 4, reqRange(8, 1, 5))
	e2 := crashReopen(t, fs, cfg)
	wantRequests(t, "replaced, not synced, crash", engGet(t, e2, 1), reqRange(7, 1, 6))
	engSync(t, r)
	wantRequests(t, "in memory", r, reqRange(8, 1, 5))
	e3 := crashReopen(t, fs, cfg)
	r3 := engGet(t, e3, 1)
	if m := r3.Meta(); m.AppliedSeq != 4 || m.AppliedEpoch != 2 {
		t.Fatalf("applied (%d, %d), want (2, 4)", m.AppliedEpoch, m.AppliedSeq)
	}
	wantRequests(t, "replaced, synced, crash", r3, reqRange(8, 1, 5))
	// Replaced by none: empty after a crash too.
	r.ReplaceRequestsAt(2, 4, nil)
	engSync(t, r)
	wantRequests(t, "replaced by none", engGet(t, crashReopen(t, fs, cfg), 1), nil)
}

// TestEngineRequestsCloned: a clone takes its source's ids, durably,
// whether the source's markers carried them before the clone or not; it
// and its source go their own ways after; a deleted replica's are gone.
func TestEngineRequestsCloned(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	defer e.Close()
	src := engCreate(t, e, Meta{Handle: 1, Epoch: 1, ChunkSize: 1 << 20, Chain: []uint64{1}})
	src.SetAppliedAt(1, 2, reqRange(7, 1, 3)...)
	engSync(t, e)
	src.SetAppliedAt(1, 3, reqRange(7, 3, 4)...) // in no marker at the clone
	dst, err := e.Clone(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	dst.SetAppliedAt(1, 4, reqRange(9, 4, 5)...)
	engSync(t, dst)
	e2 := crashReopen(t, fs, cfg)
	wantRequests(t, "source", engGet(t, e2, 1), reqRange(7, 1, 4))
	wantRequests(t, "clone", engGet(t, e2, 2), append(reqRange(7, 1, 4), reqRange(9, 4, 5)...))

	// Cloned while the source's table was replaced and not yet in a marker.
	src.ReplaceRequestsAt(2, 3, reqRange(8, 1, 4))
	if _, err := e.Clone(1, 3); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete(2); err != nil {
		t.Fatal(err)
	}
	engSync(t, e)
	e3 := crashReopen(t, fs, cfg)
	wantRequests(t, "replaced source", engGet(t, e3, 1), reqRange(8, 1, 4))
	wantRequests(t, "clone of the replaced source", engGet(t, e3, 3), reqRange(8, 1, 4))
	if _, err := e3.Get(2); err == nil {
		t.Fatal("deleted clone back")
	}
	if e.reqLive != 6 {
		t.Fatalf("%d ids kept, want 6 (the deleted clone's forgotten)", e.reqLive)
	}
}

// TestEngineRequestsBounded: a replica keeps its newest MaxRequests ids,
// and the store its newest RequestMemory, the oldest of any replica
// forgotten first; the bounds hold after a reopen.
func TestEngineRequestsBounded(t *testing.T) {
	fs := NewMemFS()
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger(), RequestMemory: MaxRequests + 100}
	e := mustEngine(t, cfg)
	defer e.Close()
	a := engCreate(t, e, Meta{Handle: 1, Epoch: 1, ChunkSize: 1 << 20, Chain: []uint64{1}})
	b := engCreate(t, e, Meta{Handle: 2, Epoch: 1, ChunkSize: 1 << 20, Chain: []uint64{1}})
	all := reqRange(7, 1, MaxRequests+501)
	for i := 0; i < len(all); i += 250 {
		a.SetAppliedAt(1, uint64(i+250), all[i:min(i+250, len(all))]...)
		engSync(t, e)
	}
	wantRequests(t, "per replica", a, all[500:])
	b.SetAppliedAt(1, 300, reqRange(8, 1, 301)...)
	engSync(t, e)
	// 4096 + 300 ids in a store bounded at 4196: a's oldest 200 go.
	wantRequests(t, "store-wide, the older replica", a, all[700:])
	wantRequests(t, "store-wide, the newer replica", b, reqRange(8, 1, 301))
	if e.reqLive != MaxRequests+100 {
		t.Fatalf("%d ids kept, want %d", e.reqLive, MaxRequests+100)
	}
	// Replayed from the log (markers carried more than the bound keeps):
	// the same bounds.
	e2 := crashReopen(t, fs, cfg)
	if n := len(engGet(t, e2, 1).Requests()) + len(engGet(t, e2, 2).Requests()); n != MaxRequests+100 {
		t.Fatalf("%d ids after replay, want %d", n, MaxRequests+100)
	}
	wantRequests(t, "after replay, the newer replica", engGet(t, e2, 2), reqRange(8, 1, 301))
	// From a checkpoint: the same ids, in the same order.
	if err := e.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	e3 := crashReopen(t, fs, cfg)
	wantRequests(t, "after a checkpoint", engGet(t, e3, 1), all[700:])
	wantRequests(t, "after a checkpoint", engGet(t, e3, 2), reqRange(8, 1, 301))
	// The order survives the checkpoint: new ids push a's oldest out first.
	engGet(t, e3, 2).SetAppliedAt(1, 310, reqRange(8, 301, 311)...)
	wantRequests(t, "bound after a checkpoint", engGet(t, e3, 1), all[710:])
	// Many forgotten ids do not make the store-wide order grow without
	// bound.
	for i := range 20 {
		b.ReplaceRequestsAt(1, 300, reqRange(uint64(10+i), 1, 301))
	}
	if n := len(e.reqFIFO) - e.reqHead; n > 2*e.reqLive+4096 {
		t.Fatalf("store-wide order of %d refs for %d ids", n, e.reqLive)
	}
}

// TestEngineSyncDuringCheckpoint: a Sync that runs while a checkpoint is
// being written makes the replicas' metadata and request ids durable by
// itself: a crash before the checkpoint lands keeps them.
func TestEngineSyncDuringCheckpoint(t *testing.T) {
	mem := NewMemFS()
	reached, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool // after the open's own checkpoint
	fs := &ErrorFS{FS: mem, Inject: func(op Op, name string, _ int64) error {
		if op == OpOpen && name == "/d/engine/"+ckptName+".tmp" && armed.CompareAndSwap(true, false) {
			close(reached)
			<-release
		}
		return nil
	}}
	cfg := Config{FS: fs, Dir: "/d", Logger: quietLogger()}
	e := mustEngine(t, cfg)
	defer e.Close()
	armed.Store(true)
	r := engCreate(t, e, Meta{Handle: 1, Epoch: 1, ChunkSize: 1 << 20, Chain: []uint64{1}})
	engWrite(t, r, pattern(100, 1), 0)
	engSync(t, r)
	engWrite(t, r, pattern(100, 2), 0)
	r.SetAppliedAt(1, 2, reqRange(7, 2, 3)...)
	done := make(chan error, 1)
	go func() { done <- e.Checkpoint() }()
	<-reached // the checkpoint took its snapshot, and is writing it
	engSync(t, r)
	cfg2 := Config{FS: mem.CrashClone(), Dir: "/d", Logger: quietLogger()}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e2 := mustEngine(t, cfg2)
	defer e2.Close()
	r2 := engGet(t, e2, 1)
	if m := r2.Meta(); m.AppliedSeq != 2 {
		t.Fatalf("applied seq %d after a crash before the checkpoint landed, want the synced 2", m.AppliedSeq)
	}
	wantRequests(t, "after a crash before the checkpoint landed", r2, reqRange(7, 2, 3))
}
