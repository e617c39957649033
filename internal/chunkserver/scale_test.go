package chunkserver

import (
	"encoding/binary"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/chunkstore"
)

// TestServerScale starts a chunkserver on a disk of many small replicas
// (each one 4 KiB write into a 64 MiB chunk, chain of 3) and checks that it
// serves all of them, reloaded (fenced until they rejoin). It logs how
// long Start took and the heap it holds (docs/benchmarks.md, "1 million
// replicas"); the count is 5,000 unless CATENA_SCALE_REPLICAS sets it,
// and no figure is asserted:
//
//	CATENA_SCALE_REPLICAS=1000000 go test -run TestServerScale -v -timeout 60m ./internal/chunkserver/
func TestServerScale(t *testing.T) {
	n := 5000
	if v, err := strconv.Atoi(os.Getenv("CATENA_SCALE_REPLICAS")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	st, err := chunkstore.OpenConfig(chunkstore.Config{FS: chunkstore.OSFS, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for i := range n {
		h := chunkstore.Handle(i + 1)
		r, err := st.Create(chunkstore.Meta{Handle: h, Epoch: 1, ChunkSize: 64 << 20, Chain: []uint64{1, 2, 3}})
		if err != nil {
			t.Fatal(err)
		}
		binary.LittleEndian.PutUint64(buf, uint64(h))
		if err := r.WriteAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		r.SetAppliedAt(1, 1)
		if i%1000 == 999 || i == n-1 {
			if err := st.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := startFakeMaster(t)
	start := time.Now()
	s := startServer(t, dir, m.addr)
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	debug.FreeOSMemory()
	t.Logf("%d replicas: Start %v, heap %.1f MiB (%d B/replica), %d goroutines",
		n, took.Round(time.Millisecond), float64(heap)/(1<<20), heap/int64(n), runtime.NumGoroutine())

	if got := len(s.allReplicas()); got != n {
		t.Fatalf("%d replicas served, want %d", got, n)
	}
	for _, h := range []chunkstore.Handle{1, chunkstore.Handle(n/2 + 1), chunkstore.Handle(n)} {
		r := s.replica(h)
		if r == nil {
			t.Fatalf("replica %d not loaded", h)
		}
		got := make([]byte, 8)
		if _, err := r.store.ReadAt(got, 0); err != nil || binary.LittleEndian.Uint64(got) != uint64(h) {
			t.Fatalf("replica %d holds %x, %v", h, got, err)
		}
		r.mu.Lock()
		fenced := r.node.Status().Fenced
		r.mu.Unlock()
		if !fenced {
			t.Fatalf("replica %d: a reloaded replica serves before it rejoined", h)
		}
	}
}
