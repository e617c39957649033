package chunkstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/testtools"
)

// The scale test (docs/benchmarks.md, "1 million replicas"): a disk with
// many small replicas, each one 4 KiB write into a 64 MiB chunk, must
// reopen fast and in little memory, after a clean Close and after a crash
// that left no checkpoint at close. The store is built on the real disk
// (OSFS); each reopen runs in a fresh process (this test binary again), so
// that its heap and resident size are the store's alone.
//
// It runs with 20,000 replicas by default (2,000 under -race or -short) and asserts only what the
// reopened store holds; CATENA_SCALE_REPLICAS=1000000 sets the count, and
// the figures are logged (go test -v).

// scaleReport is what one reopen measured, as the child process prints it.
type scaleReport struct {
	Replicas    int     `json:"replicas"`
	OpenSec     float64 `json:"open_s"`
	HeapBytes   uint64  `json:"heap_b"`      // HeapInuse+StackInuse after open and a GC
	RSSBytes    uint64  `json:"rss_b"`       // VmRSS after open and a GC
	PeakRSS     uint64  `json:"peak_b"`      // VmHWM: the process's peak
	RSSFreed    uint64  `json:"rss_freed_b"` // VmRSS once the runtime returned its free pages
	OpenAllocs  uint64  `json:"allocs"`      // heap objects allocated by the open
	OpenAllocB  uint64  `json:"alloc_b"`     // heap bytes allocated by the open
	CkptBytes   int64   `json:"ckpt_b"`      // size of the checkpoint file read
	CloseSec    float64 `json:"close_s"`     // Close, which writes a checkpoint
	ReplayBytes int64   `json:"replay_b"`    // log bytes after the checkpoint's position
}

const (
	scaleChunkSize = 64 << 20
	scaleBatch     = 1000 // replicas per Sync
)

func scaleReplicas() int {
	if v, err := strconv.Atoi(os.Getenv("CATENA_SCALE_REPLICAS")); err == nil && v > 0 {
		return v
	}
	if engineRace || testing.Short() {
		return 2000 // the race detector slows the build of the store tenfold
	}
	return 20000
}

// scaleData is replica h's 4 KiB: a pattern stamped with its handle.
func scaleData(buf []byte, h Handle) []byte {
	copy(buf, pattern(4096, 9))
	binary.LittleEndian.PutUint64(buf, uint64(h))
	return buf
}

// stopCheckpointer stops e's background checkpoints (waiting for one
// under way).
func stopCheckpointer(e *Store) {
	e.closing.Store(true)
	close(e.stop)
	e.wg.Wait()
}

// crashStore ends e, whose checkpointer is stopped, as a killed process
// would: no checkpoint, files closed. Everything synced stays on disk,
// and so does what was written and not synced (a process crash keeps the
// page cache).
func crashStore(e *Store) {
	e.cpRun.Lock()
	defer e.cpRun.Unlock()
	e.closed.Store(true)
	e.appendMu.Lock()
	defer e.appendMu.Unlock()
	for _, s := range e.segs {
		s.f.Close()
	}
}

func TestEngineScale(t *testing.T) {
	n := scaleReplicas()
	dir := t.TempDir()
	e := mustEngine(t, Config{FS: OSFS, Dir: dir})
	start := time.Now()
	chain := []uint64{1, 2, 3}
	buf := make([]byte, 4096)
	// The crash comes as late as the background checkpoints allow: the
	// last replicas, about DefaultCheckpointBytes of log, are written
	// after the last checkpoint, and recovery replays them.
	last := Handle(n - min(n/2, DefaultCheckpointBytes/4400))
	for h := Handle(1); h <= Handle(n); h++ {
		if h == last+1 {
			engSync(t, e)
			stopCheckpointer(e)
			if err := e.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
		r := engCreate(t, e, Meta{Handle: h, Epoch: 1, ChunkSize: scaleChunkSize, Chain: chain})
		engWrite(t, r, scaleData(buf, h), 0)
		r.SetAppliedAt(1, 1)
		if h%scaleBatch == 0 {
			engSync(t, e)
		}
	}
	engSync(t, e)
	t.Logf("%d replicas written in %.1f s, the last %d after the last checkpoint", n, time.Since(start).Seconds(), Handle(n)-last)
	crashStore(e)

	for _, phase := range []string{"crash", "clean"} {
		rep := scaleChild(t, dir, n)
		t.Logf("reopen after %s: %d replicas in %.2f s (%.4f of 10 s); heap %.1f MiB (%.3f of 512 MiB, %.0f B/replica); RSS %.1f MiB (%.3f), %.1f MiB (%.3f) once free pages are returned, peak %.1f MiB (%.3f); open allocated %d objects, %.1f MiB; checkpoint %.1f MiB, replayed %.1f MiB of log; Close %.2f s",
			phase, rep.Replicas, rep.OpenSec, rep.OpenSec/10,
			mib(rep.HeapBytes), float64(rep.HeapBytes)/(512<<20), float64(rep.HeapBytes)/float64(n),
			mib(rep.RSSBytes), float64(rep.RSSBytes)/(512<<20), mib(rep.RSSFreed), float64(rep.RSSFreed)/(512<<20), mib(rep.PeakRSS), float64(rep.PeakRSS)/(512<<20),
			rep.OpenAllocs, mib(rep.OpenAllocB), mib(uint64(rep.CkptBytes)), mib(uint64(rep.ReplayBytes)), rep.CloseSec)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// scaleChild reopens the store of dir in a new process (TestEngineScaleOpen),
// which checks it, closes it (checkpointing) and reports.
func scaleChild(t *testing.T, dir string, n int) scaleReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEngineScaleOpen$", "-test.v")
	cmd.Env = append(os.Environ(), "CATENA_SCALE_OPEN="+dir, "CATENA_SCALE_REPLICAS="+strconv.Itoa(n))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("reopen in a child process: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "SCALE "); ok {
			var rep scaleReport
			if err := json.Unmarshal([]byte(line), &rep); err != nil {
				t.Fatal(err)
			}
			return rep
		}
	}
	t.Fatalf("no report from the child process:\n%s", out)
	return scaleReport{}
}

// TestEngineScaleOpen is TestEngineScale's child: skipped unless
// CATENA_SCALE_OPEN names a store's directory.
func TestEngineScaleOpen(t *testing.T) {
	dir := os.Getenv("CATENA_SCALE_OPEN")
	if dir == "" {
		t.Skip("the child of TestEngineScale")
	}
	n := scaleReplicas()
	var rep scaleReport
	rep.CkptBytes, rep.ReplayBytes = scaleLogState(t, dir)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	e, err := OpenConfig(Config{FS: OSFS, Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	rep.OpenSec = time.Since(start).Seconds()
	runtime.ReadMemStats(&after)
	rep.OpenAllocs, rep.OpenAllocB = after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	rep.HeapBytes = after.HeapInuse + after.StackInuse
	rep.RSSBytes, rep.PeakRSS = testtools.ProcStatus("VmRSS"), testtools.ProcStatus("VmHWM")
	debug.FreeOSMemory()
	rep.RSSFreed = testtools.ProcStatus("VmRSS")

	// What it holds: every replica, its metadata and its data, none ahead.
	if got := len(e.List()); got != n {
		t.Fatalf("%d replicas, want %d", got, n)
	}
	buf, got := make([]byte, 4096), make([]byte, 4096)
	for _, h := range []Handle{1, Handle(n/2 + 1), Handle(n)} {
		r := engGet(t, e, h)
		if m := r.Meta(); m.AppliedSeq != 1 || m.AppliedEpoch != 1 || m.Epoch != 1 || len(m.Chain) != 3 || m.ChunkSize != scaleChunkSize {
			t.Fatalf("replica %d: meta %+v", h, m)
		}
		if _, err := r.ReadAt(got, 0); err != nil || !bytes.Equal(got, scaleData(buf, h)) {
			t.Fatalf("replica %d: data differs (%v)", h, err)
		}
		if a := r.AheadBlocks(); len(a) != 0 {
			t.Fatalf("replica %d: ahead blocks %v", h, a)
		}
	}
	engCheck(t, e)
	start = time.Now()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	rep.CloseSec = time.Since(start).Seconds()
	rep.Replicas = n
	b, _ := json.Marshal(rep)
	fmt.Printf("SCALE %s\n", b)
}

// scaleLogState returns the size of the checkpoint of the store in dir
// and how many bytes of log lie after its replay position.
func scaleLogState(t *testing.T, dir string) (ckptBytes, replay int64) {
	edir := path.Join(dir, engineDirName)
	b, err := os.ReadFile(path.Join(edir, ckptName))
	if err != nil || len(b) < ckptHeaderSize {
		t.Fatalf("read the checkpoint: %v", err)
	}
	seg, off := binary.LittleEndian.Uint64(b[32:]), int64(binary.LittleEndian.Uint64(b[40:]))
	names, err := OSFS.ReadDir(edir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		id, ok := parseSegName(name)
		if !ok || id < seg {
			continue
		}
		fi, err := os.Stat(path.Join(edir, name))
		if err != nil {
			t.Fatal(err)
		}
		replay += fi.Size()
		if id == seg {
			replay -= off
		}
	}
	return int64(len(b)), replay
}
