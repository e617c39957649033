package client

import (
	"bytes"
	"context"
	"testing"

	"github.com/catena-io/catena/api"
)

// newLazyFile returns a fake cluster whose master creates no replica (a
// chunk's first write does) and /f in it, of 1 MiB chunks.
func newLazyFile(t *testing.T) (*fakeCluster, *File) {
	t.Helper()
	fc := newFakeCluster(t)
	fc.m.mu.Lock()
	fc.m.lazy = true
	fc.m.mu.Unlock()
	c := newTestClient(t, Config{Masters: []string{fc.m.addr}})
	f, err := c.Create(context.Background(), "/f", CreateOptions{ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return fc, f
}

// TestWriteCarriesCreationInfo: a write carries the chunk size and chain
// the master gave, so that a head without a replica (a new chunk) creates
// it; the master creates none.
func TestWriteCarriesCreationInfo(t *testing.T) {
	fc, f := newLazyFile(t)
	data := bytes.Repeat([]byte("a"), 5000)
	if _, err := f.WriteAt(data, 1<<20-100); err != nil { // two chunks
		t.Fatal(err)
	}
	head := fc.css[0]
	head.mu.Lock()
	writes := head.writes
	head.mu.Unlock()
	if len(writes) != 2 {
		t.Fatalf("%d writes at the head", len(writes))
	}
	for _, w := range writes {
		spec := w.GetCreate()
		if spec.GetChunkSize() != 1<<20 || len(spec.GetChain()) != 3 || spec.GetChain()[0].GetAddr() != head.addr {
			t.Fatalf("write %d carries %v", w.GetHandle(), spec)
		}
	}
	got := make([]byte, len(data))
	if _, err := f.ReadAt(got, 1<<20-100); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReadChunkNoWriteReached: a chunk allocated but never written has no
// replica; its tail says it never held one, and once the master confirms
// that it is still the tail at that epoch the range reads as zeros. When
// the chain moved meanwhile, the read goes to the new chain.
func TestReadChunkNoWriteReached(t *testing.T) {
	fc, f := newLazyFile(t)
	ctx := context.Background()
	// Allocate chunk 0 as a writer that died before its write would.
	if _, err := fc.m.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: f.info.Inode, Index: 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := fc.m.SetSize(ctx, &api.SetSizeRequest{Inode: f.info.Inode, Size: 4096, Mode: api.SetSizeMode_EXTEND}); err != nil {
		t.Fatal(err)
	}
	g, err := f.c.Open(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	buf := bytes.Repeat([]byte{0xff}, 4096)
	if n, err := g.ReadAt(buf, 0); err != nil || n != 4096 || !bytes.Equal(buf, make([]byte, 4096)) {
		t.Fatalf("read of a chunk no write reached: %d, %v", n, err)
	}

	// The chain moved to a tail that holds data: the stale tail's answer
	// is not taken for zeros.
	fc.css[1].createReplica(1, 2)
	if err := fc.css[1].apply(&api.WriteRequest{Handle: 1, Epoch: 2, Data: []byte("new"), ClientId: 5, RequestId: 1}); err != nil {
		t.Fatal(err)
	}
	fc.m.mu.Lock()
	ci := fc.m.nodes["/f"].chunks[0]
	ci.Epoch, ci.Chain = 2, ci.Chain[:2] // tail: css[1]
	fc.m.mu.Unlock()
	// g's cache still names css[2] the tail at epoch 1.
	got := make([]byte, 3)
	if _, err := g.ReadAt(got, 0); err != nil || string(got) != "new" {
		t.Fatalf("read after the chain moved: %q, %v", got, err)
	}
}
