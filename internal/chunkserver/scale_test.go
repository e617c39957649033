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
	"github.com/catena-io/catena/internal/testtools"
)

// TestServerScale starts a chunkserver on a disk of many small replicas
// (each one 4 KiB write into a 64 MiB chunk, chain of 3) and checks that it
// holds all of them cold (no chain node) through its first full report and
// the verification of every replica loaded; that a replica activated by
// use serves as a reloaded one (fenced until it rejoins); and that a sweep
// makes the activated ones cold again. It logs how long Start took and
// the memory the server holds (docs/benchmarks.md, "1 million replicas");
// the count is 5,000 unless CATENA_SCALE_REPLICAS sets it, and no figure
// is asserted:
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

	m := startFakeMaster(t)
	// The fake master runs in this process: it keeps no heartbeat and
	// counts a full report's handles in a bitmap (a few hundred KB), so the
	// process's peak is the server's own but for the page being decoded.
	m.noHistory = true
	m.paged = true
	var before runtime.MemStats
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&before)
	peakReset := testtools.ResetPeakRSS()
	heapSince := func() int64 {
		var now runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&now)
		return int64(now.HeapInuse+now.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	}
	start := time.Now()
	s := startServer(t, dir, m.addr)
	took := time.Since(start)
	heapStart := heapSince()

	// The first report is the whole inventory; every loaded replica is
	// then verified, cold.
	long := 10*time.Second + time.Duration(n)*50*time.Microsecond
	waitWithin(t, long, "full report", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.fullCount[s.ID()] == n
	})
	if pages, want := s.Metrics().ReportPages, uint64((n-1)/reportPage); pages != want {
		t.Fatalf("full report in %d pages and the last, want %d and the last", pages, want)
	}
	verified := func() bool { // every replica (handles 1 to n), and no state kept for it
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.loadedVerified > chunkstore.Handle(n) && len(s.unverified) == 0 && len(s.cold) == 0
	}
	waitWithin(t, long, "verified", verified)
	if got := s.Metrics(); got.Active != 0 || got.Activated != 0 {
		t.Fatalf("after start, report and verification: %+v, want no replica active", got)
	}
	heapCold := heapSince()
	rss, peak := testtools.ProcStatus("VmRSS"), testtools.ProcStatus("VmHWM")
	debug.FreeOSMemory()
	rssFreed := testtools.ProcStatus("VmRSS")
	if !peakReset {
		peak = 0
	}
	t.Logf("%d replicas: Start %v; heap after Start %.1f MiB; after the full report and verification: heap %.1f MiB (%d B/replica), RSS %.1f MiB, %.1f MiB once free pages are returned, peak since Start %.1f MiB; %d goroutines",
		n, took.Round(time.Millisecond), float64(heapStart)/(1<<20), float64(heapCold)/(1<<20), heapCold/int64(n),
		float64(rss)/(1<<20), float64(rssFreed)/(1<<20), float64(peak)/(1<<20), runtime.NumGoroutine())

	if got := s.Store().Len(); got != n {
		t.Fatalf("%d replicas held, want %d", got, n)
	}
	// One in ten used: activated as reloaded ones, then cold again.
	for i := 0; i < n; i += 10 {
		h := chunkstore.Handle(i + 1)
		r := s.replica(h)
		if r == nil {
			t.Fatalf("replica %d not loaded", h)
		}
		got := make([]byte, 8)
		if _, err := r.store.ReadAt(got, 0); err != nil || binary.LittleEndian.Uint64(got) != uint64(h) {
			t.Fatalf("replica %d holds %x, %v", h, got, err)
		}
		r.mu.Lock()
		st, verified := r.node.Status(), r.verified
		r.mu.Unlock()
		if !st.Fenced || !st.Rejoining || !verified || st.Applied != 1 {
			t.Fatalf("replica %d activated as %+v (verified %v), want a verified reloaded one at seq 1, fenced until it rejoins", h, st, verified)
		}
	}
	active := s.Metrics().Active
	if want := (n + 9) / 10; active != want {
		t.Fatalf("%d replicas active, want %d", active, want)
	}
	heapActive := heapSince()
	if cold := s.sweepCold(); cold != 0 { // the first sweep finds them used
		t.Fatalf("first sweep made %d just-used replicas cold, want none", cold)
	}
	// Later sweeps make them cold; one a heartbeat is reporting at that
	// moment is held (pinned), and goes at a later sweep.
	cold := 0
	waitWithin(t, long, "activated replicas cold", func() bool {
		cold += s.sweepCold()
		return cold >= active
	})
	if cold != active {
		t.Fatalf("sweeps made %d replicas cold, want %d", cold, active)
	}
	t.Logf("%d of them active: heap %.1f MiB (%d B per active replica)", active, float64(heapActive)/(1<<20),
		(heapActive-heapCold)/int64(active))
	if got := s.Metrics(); got.Active != 0 || !verified() {
		t.Fatalf("after the sweeps: %+v, want none active, and no cold state kept", got)
	}
}
