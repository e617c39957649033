package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/lincheck"
)

// Power cuts at the storage level: every chunkserver of every chain loses
// power at once, in the middle of concurrent writes, and comes back with
// what its disk kept (chunkstore.MemFS crash clones). Cases:
//
//   - "process": each disk keeps every page written (the page cache of a
//     SIGKILLed process survives): nothing acknowledged may be lost and no
//     block may be bad.
//   - "mixed": each server independently keeps all its unsynced pages or a
//     random subset (torn writes), at least one server keeping all: still
//     nothing acknowledged lost.
//   - "power": every server keeps a random subset of its unsynced pages.
//     A 64 KiB block overwritten in place while the power went out can be
//     torn on every replica at once; then its acknowledged bytes cannot be
//     proven and the block must be reported lost (status names the chunk
//     and the file), never served. Every other block must hold an allowed
//     value.
//
// After each cut the cluster must return to health by itself, and every
// 4 KiB register must read its last acknowledged value or the value of a
// later write whose outcome was unknown, never an older value, never a
// torn one.
func TestPowerCutAllReplicas(t *testing.T) {
	for _, mode := range []string{"process", "mixed", "power"} {
		t.Run(mode, func(t *testing.T) { testPowerCut(t, mode) })
	}
}

const (
	pcFileSize = 3 * chunkSize
	pcReg      = 4 * kib  // one register
	pcGroup    = 64 * kib // a checksum block; groups are owned by one writer
	pcWriters  = 4        // writer w owns the groups g with g % pcWriters == w
	pcCycles   = 4        // power cuts per mode
	pcStorm    = 300 * time.Millisecond
	pcOpWait   = 3 * time.Second
	pcRecover  = 60 * time.Second
	// pcDiskDelay is added to every data write and sync.
	pcDiskDelay = time.Millisecond
)

// pcRegister is the history of one 4 KiB register, written by one writer.
type pcRegister struct {
	acked   uint64   // last acknowledged value (0: none yet)
	unknown []uint64 // values written after it whose outcome is unknown
}

type pcHistory struct {
	mu               sync.Mutex
	regs             []pcRegister
	nAcked, nUnknown int
}

func (h *pcHistory) acked(first int, vals []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nAcked++
	for i, v := range vals {
		h.regs[first+i] = pcRegister{acked: v}
	}
}

func (h *pcHistory) failed(first int, vals []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nUnknown++
	for i, v := range vals {
		r := &h.regs[first+i]
		r.unknown = append(r.unknown, v)
	}
}

// describe decodes the register values a CheckReplicas problem shows
// ("page at OFF starts V1 / V2") into their writes' histories.
func (h *pcHistory) describe(problem string) string {
	var off int64
	var a, b string
	i := strings.Index(problem, "page at ")
	if i < 0 {
		return ""
	}
	if _, err := fmt.Sscanf(problem[i:], "page at %d starts %s / %s", &off, &a, &b); err != nil {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("values %s / %s (little endian); register history (chunk offset %d: the register is at that offset in some chunk): %+v",
		a, b, off, h.regsAt(off))
}

// regsAt returns the registers at chunk offset off in every chunk.
func (h *pcHistory) regsAt(off int64) map[int]pcRegister {
	out := map[int]pcRegister{}
	for ci := range pcFileSize / chunkSize {
		reg := (ci*chunkSize + int(off)) / pcReg
		out[reg] = h.regs[reg]
	}
	return out
}

// check compares one register's read value with its history.
func (h *pcHistory) check(reg int, got uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.regs[reg]
	if got == r.acked || slices.Contains(r.unknown, got) {
		return nil
	}
	return fmt.Errorf("register %d (offset %d) holds %#x; acknowledged %#x, unknown %x", reg, reg*pcReg, got, r.acked, r.unknown)
}

func testPowerCut(t *testing.T, mode string) {
	rng := newRand(t)
	cfg := failureConfig(3)
	cfg.MemDisks = true
	cfg.ScrubInterval = -1 // the verification of reloaded replicas is what is under test
	c := clustertest.New(t, cfg)
	for i := range 3 {
		// A disk whose writes and syncs take time, as real ones do: the
		// cut then finds writes applied but not yet synced on every member.
		if err := c.SlowDisk(i, pcDiskDelay); err != nil {
			t.Fatal(err)
		}
	}
	// The file is filled (its chunks created on every replica by their
	// first writes) with the default timeout: that is not under test, and
	// under the race detector it can take longer than pcOpWait.
	fill, err := c.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer fill.Close()
	ff := create(t, fill, "/powercut")
	writeAt(t, ff, make([]byte, pcFileSize), 0)
	if err := ff.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := ff.Close(); err != nil {
		t.Fatal(err)
	}
	cl, err := c.NewClientConfig(client.Config{OpTimeout: pcOpWait})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f, err := cl.Open(t.Context(), "/powercut")
	if err != nil {
		t.Fatal(err)
	}
	h := &pcHistory{regs: make([]pcRegister, pcFileSize/pcReg)}
	lostSeen := 0
	for cycle := range pcCycles {
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range pcWriters {
			wr := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
			wg.Go(func() { pcWriter(ctx, f, h, w, cycle, wr) })
		}
		// The cut comes while the writers are busy: wait for a few acks.
		time.Sleep(pcStorm) // the storm's length is the workload, not a wait for an event
		keep := pcKeep(mode, rng)
		if err := c.PowerCut(context.Background(), keep); err != nil {
			t.Fatalf("cycle %d: power cut: %v", cycle, err)
		}
		stop()
		wg.Wait()

		rctx, cancel := context.WithTimeout(context.Background(), pcRecover)
		lost, err := pcAwaitHealthy(rctx, c, mode)
		cancel()
		if err != nil {
			t.Fatalf("cycle %d (%s): %v", cycle, mode, err)
		}
		lostSeen += len(lost)
		pcVerify(t, cl, h, lost, cycle)
		// Reconfigure pushes may still be landing: the epochs converge; a
		// difference of bytes would not.
		clustertest.Eventually(t, 10*time.Second, func() error {
			cctx, cancel := context.WithTimeout(context.Background(), pcRecover)
			defer cancel()
			if err := c.CheckReplicas(cctx); err != nil {
				return fmt.Errorf("cycle %d (%s): %w\n%s", cycle, mode, err, h.describe(err.Error()))
			}
			return nil
		})
	}
	t.Logf("%s: %d power cuts, %d writes acknowledged, %d unknown, %d lost 64 KiB blocks reported", mode, pcCycles, h.nAcked, h.nUnknown, lostSeen)
	if h.nAcked == 0 {
		t.Fatal("no write was acknowledged: the test exercised nothing")
	}
}

// pcKeep returns, for the mode, which unsynced pages of each server
// survive the cut.
func pcKeep(mode string, rng *rand.Rand) func(server int, path string, page int64) bool {
	var mu sync.Mutex
	coin := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.IntN(2) == 0
	}
	switch mode {
	case "process":
		return func(int, string, int64) bool { return true }
	case "mixed":
		intact := rng.IntN(3)
		torn := [3]bool{}
		for i := range torn {
			torn[i] = i != intact && rng.IntN(2) == 0
		}
		return func(server int, _ string, _ int64) bool { return !torn[server%3] || coin() }
	}
	return func(int, string, int64) bool { return coin() }
}

// pcWriter writes runs of registers inside the groups writer w owns, each
// register with a unique value, until ctx ends.
func pcWriter(ctx context.Context, f *client.File, h *pcHistory, w, cycle int, r *rand.Rand) {
	groups := pcFileSize / pcGroup
	per := pcGroup / pcReg
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		g := w + pcWriters*r.IntN(groups/pcWriters)
		first := g*per + r.IntN(per)
		n := 1 + r.IntN(g*per+per-first)
		vals := make([]uint64, n)
		buf := make([]byte, 0, n*pcReg)
		for i := range vals {
			vals[i] = uint64(w+1)<<56 | uint64(cycle+1)<<48 | seq<<8 | uint64(i)
			buf = append(buf, lincheck.Encode(vals[i])...)
		}
		octx, cancel := context.WithTimeout(ctx, pcOpWait)
		_, err := f.WriteAtContext(octx, buf, int64(first*pcReg))
		cancel()
		if err != nil {
			h.failed(first, vals)
			continue
		}
		h.acked(first, vals)
	}
}

// pcAwaitHealthy waits for every chain to be whole and repairs to end,
// and returns the chunks status reports lost blocks of (only allowed in
// mode "power").
func pcAwaitHealthy(ctx context.Context, c *cluster.Cluster, mode string) (map[uint64][]int64, error) {
	var last string
	for {
		st, err := c.Status(ctx)
		if err == nil {
			lost := map[uint64][]int64{}
			var why []string
			for _, p := range st.GetChunks().GetProblems() {
				if len(p.GetLostBlocks()) > 0 {
					lost[p.GetHandle()] = p.GetLostBlocks()
					if mode != "power" {
						return nil, fmt.Errorf("chunk %d: %s (%v): lost blocks after a %s crash", p.GetHandle(), p.GetReason(), p.GetPaths(), mode)
					}
					if !slices.Contains(p.GetPaths(), "/powercut") {
						return nil, fmt.Errorf("chunk %d: lost blocks reported without the file: %v", p.GetHandle(), p.GetPaths())
					}
					continue
				}
				why = append(why, fmt.Sprintf("chunk %d: %s", p.GetHandle(), p.GetReason()))
			}
			cs := st.GetChunks()
			if cs.GetUnderReplicated() == 0 && cs.GetReReplicating() == 0 && len(why) == 0 {
				return lost, nil
			}
			last = fmt.Sprintf("%d under-replicated, %d re-replicating, problems %v", cs.GetUnderReplicated(), cs.GetReReplicating(), why)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no return to health: %s", last)
		case <-time.After(20 * time.Millisecond): // polling the status, bounded by ctx
		}
	}
}

// pcVerify reads every register: an allowed value, or a data-loss error
// inside a block status reported lost.
func pcVerify(t *testing.T, cl *client.Client, h *pcHistory, lost map[uint64][]int64, cycle int) {
	t.Helper()
	f, err := cl.Open(t.Context(), "/powercut")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lostRegs := map[int]bool{}
	for _, blocks := range lost {
		// Handles are not offsets: a lost block is accepted in any chunk,
		// at its place within the chunk (the file's chunks are all of one
		// size), and only where reads actually fail.
		for _, b := range blocks {
			for ci := range pcFileSize / chunkSize {
				for r := range pcGroup / pcReg {
					lostRegs[(ci*chunkSize+int(b)*pcGroup)/pcReg+r] = true
				}
			}
		}
	}
	buf := make([]byte, pcReg)
	for reg := range pcFileSize / pcReg {
		_, err := f.ReadAt(buf, int64(reg*pcReg))
		if err != nil {
			if lostRegs[reg] && errors.Is(err, client.ErrCorrupt) {
				if !strings.Contains(err.Error(), "chunk ") || !strings.Contains(err.Error(), "block ") {
					t.Fatalf("cycle %d: a read of a lost block does not name the chunk and the block: %v", cycle, err)
				}
				continue
			}
			t.Fatalf("cycle %d: read register %d: %v", cycle, reg, err)
		}
		v, err := lincheck.Decode(buf)
		if err != nil {
			t.Fatalf("cycle %d: register %d: %v", cycle, reg, err)
		}
		if err := h.check(reg, v); err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
	}
}
