package cluster_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/lincheck"
)

// linDuration is how long the workload runs under the nemesis.
var linDuration = flag.Duration("catena.lin.duration", 45*time.Second,
	"how long TestLinearizability runs its workload under faults (e.g. 10m)")

// The linearizability test treats each block of a file as a register.
const (
	linBlocks    = 8
	linStride    = failFileSize / linBlocks // blocks spread over both chunks
	linWorkers   = 4
	linOpTimeout = 5 * time.Second
)

// TestLinearizability runs readers and writers of single blocks under a
// nemesis that kills, restarts, pauses and partitions chunkservers, and
// checks the history with porcupine. A write that failed or timed out may
// have taken effect at any time after its call: it is recorded with an
// open-ended return. Run longer with -catena.lin.duration=10m.
func TestLinearizability(t *testing.T) {
	dur := *linDuration
	if testing.Short() {
		dur = min(dur, 10*time.Second)
	}
	cfg := failureConfig(5)
	// Replicas the nemesis takes out of a chain go cold and come back
	// through activation; longer than any retry of the workload's
	// clients (a retry older than ColdAfter may apply twice).
	cfg.ColdAfter = 2*linOpTimeout + time.Second
	c := clustertest.New(t, cfg)
	setup := clustertest.Client(t, c)
	r := newRand(t)
	f := create(t, setup, "/lin")
	writeAt(t, f, []byte{0}, failFileSize-1) // size: every block readable
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	h := lincheck.NewHistory()
	wl := lincheck.Workload{Blocks: linBlocks, Stride: linStride, Workers: linWorkers, OpTimeout: linOpTimeout}
	ctx, stop := context.WithTimeout(t.Context(), dur)
	defer stop()
	var wg sync.WaitGroup
	torn := make(chan error, linWorkers)
	for w := range linWorkers {
		cl := clustertest.Client(t, c)
		fw, err := cl.Open(t.Context(), "/lin")
		if err != nil {
			t.Fatal(err)
		}
		wr := rand.New(rand.NewPCG(r.Uint64(), uint64(w)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := wl.Run(ctx, w, fw, wr, h); err != nil {
				torn <- err
			}
		}()
	}
	nemesis(ctx, t, c, rand.New(rand.NewPCG(r.Uint64(), 99)), h)
	wg.Wait()
	close(torn)
	for err := range torn {
		t.Error(err)
	}

	lincheck.Check(t, h, 10)
}

// nemesis injects one fault at a time on one or two chunkservers until ctx
// ends, each for a random while, then undoes it.
func nemesis(ctx context.Context, t *testing.T, c *cluster.Cluster, r *rand.Rand, h *lincheck.History) {
	// Logged with the history's clock, to match a violation to a fault.
	logf := func(format string, args ...any) {
		what := fmt.Sprintf(format, args...)
		h.Event(what)
		t.Logf("nemesis at %.3fs: %s", time.Duration(h.Now()).Seconds(), what)
	}
	wait := func(d time.Duration) bool {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-tm.C: // the fault's duration: there is no event to await
			return true
		}
	}
	n := c.NumChunkservers()
	for faults := 0; ; faults++ {
		if !wait(time.Duration(200+r.IntN(800)) * time.Millisecond) {
			t.Logf("nemesis: %d faults", faults)
			return
		}
		a, b := r.IntN(n), r.IntN(n)
		var undo func()
		switch k := r.IntN(4); k {
		case 0, 1: // kill one, or two
			victims := []int{a}
			if k == 1 && b != a {
				victims = append(victims, b)
			}
			logf("kill %v", victims)
			for _, v := range victims {
				if err := c.Kill(v); err != nil {
					t.Errorf("nemesis: kill %d: %v", v, err)
				}
			}
			undo = func() {
				logf("restart %v", victims)
				for _, v := range victims {
					rctx, cancel := context.WithTimeout(context.Background(), failTimeout)
					if err := c.Restart(rctx, v); err != nil {
						t.Errorf("nemesis: restart %d: %v", v, err)
					}
					cancel()
				}
			}
		case 2:
			logf("pause %d", a)
			if err := c.Pause(a); err != nil {
				t.Errorf("nemesis: pause %d: %v", a, err)
			}
			undo = func() { logf("resume %d", a); c.Resume(a) }
		case 3:
			if a == b {
				b = (a + 1) % n
			}
			logf("partition %d from %d", a, b)
			c.Partition(c.ChunkserverNode(a), c.ChunkserverNode(b))
			undo = func() { logf("heal"); c.Heal() }
		}
		wait(time.Duration(300+r.IntN(1500)) * time.Millisecond)
		undo()
	}
}

// TestReadSeesChunkAllocatedElsewhere: a reader whose cached chunk map says
// a chunk is a hole must still see a write that another client completed
// there before the read began (the violation TestLinearizability found at
// the start of its workload: a worker that loaded the chunk map before
// chunk 0 was allocated read zeros from its cache long after another
// worker's write there was acknowledged and read back).
func TestReadSeesChunkAllocatedElsewhere(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	setup := clustertest.Client(t, c)
	f := create(t, setup, "/hole")
	writeAt(t, f, []byte{1}, 2*chunkSize-1) // chunk 1 allocated, chunk 0 a hole
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rf, err := clustertest.Client(t, c).Open(t.Context(), "/hole")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := rf.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, make([]byte, 4)) {
		t.Fatalf("read of the hole: %q, %v; want zeros", buf, err)
	}
	wf, err := clustertest.Client(t, c).Open(t.Context(), "/hole")
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, wf, []byte("data"), 0) // allocates chunk 0
	if _, err := rf.ReadAt(buf, 0); err != nil || string(buf) != "data" {
		t.Fatalf("read after another client's acknowledged write: %q, %v; want %q", buf, err, "data")
	}
}
