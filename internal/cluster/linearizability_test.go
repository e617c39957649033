package cluster_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc64"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// linDuration is how long the workload runs under the nemesis.
var linDuration = flag.Duration("catena.lin.duration", 45*time.Second,
	"how long TestLinearizability runs its workload under faults (e.g. 10m)")

// The linearizability test treats each block of a file as a register.
const (
	linBlocks    = 8
	linBlockSize = 4 * kib
	linStride    = failFileSize / linBlocks // blocks spread over both chunks
	linWorkers   = 4
	linOpTimeout = 5 * time.Second
)

var crcTable = crc64.MakeTable(crc64.ECMA)

// encodeBlock fills a block for value v: v, filler derived from v, and a
// checksum of both, so a torn or mixed block cannot pass for a value.
func encodeBlock(v uint64) []byte {
	b := make([]byte, linBlockSize)
	binary.LittleEndian.PutUint64(b, v)
	r := rand.New(rand.NewPCG(v, v^0xa5a5))
	for i := 8; i < linBlockSize-8; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	binary.LittleEndian.PutUint64(b[linBlockSize-8:], crc64.Checksum(b[:linBlockSize-8], crcTable))
	return b
}

var errTornBlock = errors.New("torn or corrupt block")

// decodeBlock returns the value a block holds; all zeros is 0, the
// register's initial value.
func decodeBlock(b []byte) (uint64, error) {
	zero := true
	for _, x := range b {
		if x != 0 {
			zero = false
			break
		}
	}
	if zero {
		return 0, nil
	}
	if crc64.Checksum(b[:linBlockSize-8], crcTable) != binary.LittleEndian.Uint64(b[linBlockSize-8:]) {
		return 0, fmt.Errorf("%w: value field %#x", errTornBlock, binary.LittleEndian.Uint64(b))
	}
	return binary.LittleEndian.Uint64(b), nil
}

type linInput struct {
	block  int
	write  bool
	value  uint64 // written value
	worker int    // for the failure report only
}

type linOutput struct {
	value   uint64 // read value
	unknown bool   // a write whose outcome is unknown
}

// registerModel is one register per block, checked block by block.
var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := make([][]porcupine.Operation, linBlocks)
		for _, op := range h {
			b := op.Input.(linInput).block
			by[b] = append(by[b], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			if len(ops) > 0 {
				out = append(out, ops)
			}
		}
		return out
	},
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(linInput), output.(linOutput)
		if in.write {
			return true, in.value
		}
		return out.value == state.(uint64), state
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		switch {
		case in.write && out.unknown:
			return fmt.Sprintf("block %d: write %#x (unknown)", in.block, in.value)
		case in.write:
			return fmt.Sprintf("block %d: write %#x", in.block, in.value)
		}
		return fmt.Sprintf("block %d: read -> %#x", in.block, out.value)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%#x", state.(uint64)) },
}

// history collects the operations of every worker and the nemesis events.
type history struct {
	start  time.Time
	mu     sync.Mutex
	ops    []porcupine.Operation
	events []nemesisEvent
}

// nemesisEvent is a fault injected or undone, on the history's clock.
type nemesisEvent struct {
	at   int64
	what string
}

func (h *history) event(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, nemesisEvent{at: h.now(), what: what})
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

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

	h := &history{start: time.Now()}
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
			if err := linWorker(ctx, w, fw, wr, h); err != nil {
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

	h.mu.Lock()
	ops := h.ops
	h.mu.Unlock()
	writes, unknown := 0, 0
	for _, op := range ops {
		if op.Input.(linInput).write {
			writes++
			if op.Output.(linOutput).unknown {
				unknown++
			}
		}
	}
	t.Logf("history: %d operations, %d writes (%d of unknown outcome)", len(ops), writes, unknown)
	if writes-unknown < 10 || len(ops)-writes < 10 {
		t.Fatalf("too few completed operations to check anything: %d writes, %d reads", writes-unknown, len(ops)-writes)
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Logf("linearizability check timed out: no verdict")
	default:
		out, err := os.CreateTemp("", "catena-lin-*.html")
		if err != nil {
			t.Fatalf("history not linearizable (and no file for the visualization: %v)", err)
		}
		out.Close()
		if err := porcupine.VisualizePath(registerModel, info, out.Name()); err != nil {
			t.Logf("visualization: %v", err)
		}
		reportViolation(t, ops, h.events)
		t.Fatalf("history not linearizable; visualization in %s", out.Name())
	}
}

// reportViolation checks each block's history alone and logs, for the
// first one that is not linearizable, the operations around the point
// where its longest linearizable prefix stops, with the nemesis events of
// that window.
func reportViolation(t *testing.T, ops []porcupine.Operation, events []nemesisEvent) {
	t.Helper()
	by := make(map[int][]porcupine.Operation)
	for _, op := range ops {
		b := op.Input.(linInput).block
		by[b] = append(by[b], op)
	}
	for b := range linBlocks {
		bops := by[b]
		res, info := porcupine.CheckOperationsVerbose(registerModel, bops, time.Minute)
		if res != porcupine.Illegal {
			continue
		}
		// The longest partial linearization; the op that cannot follow it
		// is the earliest-returning op outside it.
		in := map[int]bool{}
		for _, part := range info.PartialLinearizations() {
			for _, lin := range part {
				if len(lin) > len(in) {
					clear(in)
					for _, i := range lin {
						in[i] = true
					}
				}
			}
		}
		stuck := -1
		for i, op := range bops {
			if !in[i] && (stuck < 0 || op.Return < bops[stuck].Return) {
				stuck = i
			}
		}
		if stuck < 0 {
			t.Logf("block %d: not linearizable, no stuck operation found", b)
			return
		}
		order := make([]int, len(bops))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(x, y int) int { return cmp.Compare(bops[x].Call, bops[y].Call) })
		k := slices.Index(order, stuck)
		from, to := max(0, k-30), min(len(order), k+6)
		sec := func(ns int64) string {
			if ns == math.MaxInt64 {
				return "      never"
			}
			return fmt.Sprintf("%10.6fs", time.Duration(ns).Seconds())
		}
		t.Logf("block %d: not linearizable; %d of %d operations linearize; around the first that cannot:", b, len(in), len(bops))
		lo, hi := bops[order[from]].Call, bops[stuck].Return
		for _, i := range order[from:to] {
			op := bops[i]
			hi = max(hi, min(op.Return, bops[order[to-1]].Call))
			mark := "  "
			if i == stuck {
				mark = "=>"
			}
			t.Logf("%s call %s return %s worker %d: %s", mark, sec(op.Call), sec(op.Return), op.Input.(linInput).worker,
				registerModel.DescribeOperation(op.Input, op.Output))
		}
		for _, e := range events {
			if e.at >= lo-int64(2*time.Second) && e.at <= hi {
				t.Logf("   nemesis at %s: %s", sec(e.at), e.what)
			}
		}
		return
	}
	t.Logf("every block is linearizable on its own")
}

// linWorker reads and writes random blocks until ctx ends. It returns an
// error only for a torn block, which no fault excuses.
func linWorker(ctx context.Context, w int, f *client.File, r *rand.Rand, h *history) error {
	clientID := w
	buf := make([]byte, linBlockSize)
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		b := r.IntN(linBlocks)
		off := int64(b * linStride)
		opCtx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
		if r.IntN(2) == 0 {
			v := uint64(w+1)<<40 | seq
			call := h.now()
			_, err := f.WriteAtContext(opCtx, encodeBlock(v), off)
			ret := h.now()
			cancel()
			op := porcupine.Operation{ClientId: clientID, Input: linInput{block: b, write: true, value: v, worker: w}, Call: call, Return: ret, Output: linOutput{}}
			if err != nil {
				// It may still take effect, at any time from now on.
				op.Return, op.Output = math.MaxInt64, linOutput{unknown: true}
				clientID += linWorkers // a new process, as in Jepsen
			}
			h.add(op)
			continue
		}
		call := h.now()
		_, err := f.ReadAtContext(opCtx, buf, off)
		ret := h.now()
		cancel()
		if err != nil {
			continue // a failed read has no effect
		}
		v, err := decodeBlock(buf)
		if err != nil {
			return fmt.Errorf("worker %d: read of block %d: %w", w, b, err)
		}
		h.add(porcupine.Operation{ClientId: clientID, Input: linInput{block: b, worker: w}, Call: call, Return: ret, Output: linOutput{value: v}})
	}
	return nil
}

// nemesis injects one fault at a time on one or two chunkservers until ctx
// ends, each for a random while, then undoes it.
func nemesis(ctx context.Context, t *testing.T, c *cluster.Cluster, r *rand.Rand, h *history) {
	// Logged with the history's clock, to match a violation to a fault.
	logf := func(format string, args ...any) {
		what := fmt.Sprintf(format, args...)
		h.event(what)
		t.Logf("nemesis at %.3fs: %s", time.Duration(h.now()).Seconds(), what)
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

// TestBlockCodec: a block decodes to its value; a flipped byte anywhere is
// detected; zeros are the initial value.
func TestBlockCodec(t *testing.T) {
	for _, v := range []uint64{1, 1<<40 | 7, math.MaxUint64} {
		b := encodeBlock(v)
		if got, err := decodeBlock(b); err != nil || got != v {
			t.Fatalf("decode(encode(%#x)) = %#x, %v", v, got, err)
		}
		for _, i := range []int{0, 100, linBlockSize - 1} {
			c := append([]byte(nil), b...)
			c[i] ^= 1
			if _, err := decodeBlock(c); !errors.Is(err, errTornBlock) {
				t.Fatalf("flip at %d: %v, want errTornBlock", i, err)
			}
		}
		mixed := append(append([]byte(nil), b[:linBlockSize/2]...), encodeBlock(v + 1)[linBlockSize/2:]...)
		if _, err := decodeBlock(mixed); !errors.Is(err, errTornBlock) {
			t.Fatalf("half of two values: %v, want errTornBlock", err)
		}
	}
	if v, err := decodeBlock(make([]byte, linBlockSize)); v != 0 || err != nil {
		t.Fatalf("zeros: %#x, %v", v, err)
	}
}

// FuzzDecodeBlock: the encoding of any value decodes to it, and any
// single flipped bit of it is detected.
func FuzzDecodeBlock(f *testing.F) {
	f.Add(uint64(5), uint16(0), uint8(1))
	f.Add(uint64(math.MaxUint64), uint16(linBlockSize-1), uint8(0x80))
	f.Fuzz(func(t *testing.T, v uint64, at uint16, bit uint8) {
		if v == 0 {
			return // the initial value is the all-zero block
		}
		b := encodeBlock(v)
		if got, err := decodeBlock(b); err != nil || got != v {
			t.Fatalf("decode(encode(%#x)) = %#x, %v", v, got, err)
		}
		b[int(at)%linBlockSize] ^= 1 << (bit % 8)
		if _, err := decodeBlock(b); !errors.Is(err, errTornBlock) {
			t.Fatalf("flipped bit accepted: %v", err)
		}
	})
}

// TestRegisterModel: the checker accepts a linearizable history, rejects a
// stale read, and lets a write of unknown outcome take effect late.
func TestRegisterModel(t *testing.T) {
	w := func(block int, v uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: linInput{block: block, write: true, value: v}, Output: linOutput{}, Call: call, Return: ret}
	}
	rd := func(block int, v uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: linInput{block: block}, Output: linOutput{value: v}, Call: call, Return: ret}
	}
	unknown := porcupine.Operation{Input: linInput{block: 0, write: true, value: 9}, Output: linOutput{unknown: true}, Call: 40, Return: math.MaxInt64}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want bool
	}{
		{"ok", []porcupine.Operation{w(0, 1, 0, 10), rd(0, 1, 11, 12), rd(1, 0, 13, 14)}, true},
		{"stale read", []porcupine.Operation{w(0, 1, 0, 10), w(0, 2, 11, 20), rd(0, 1, 21, 22)}, false},
		{"read of a value never written", []porcupine.Operation{rd(0, 5, 0, 1)}, false},
		{"unknown write lands late", []porcupine.Operation{w(0, 1, 0, 10), unknown, rd(0, 1, 50, 60), rd(0, 9, 100, 110)}, true},
		{"unknown write cannot undo itself", []porcupine.Operation{w(0, 1, 0, 10), unknown, rd(0, 9, 50, 60), rd(0, 1, 100, 110)}, false},
	} {
		if got := porcupine.CheckOperations(registerModel, tc.ops); got != tc.want {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.want)
		}
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
