// Package lincheck is the register workload and checker the
// linearizability tests share: each 4 KiB block of a file or volume is a
// register; workers write self-checking values and read them back
// through any front end (client.File, an NBD export, ...), recording a
// History that porcupine checks block by block. A write that failed or
// timed out may take effect at any time after its call: it is recorded
// with an open-ended return.
package lincheck

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// BlockSize is the size of one register.
const BlockSize = 4096

var crcTable = crc64.MakeTable(crc64.ECMA)

// Encode fills a block for value v: v, filler derived from v, and a
// checksum of both, so a torn or mixed block cannot pass for a value.
func Encode(v uint64) []byte {
	b := make([]byte, BlockSize)
	binary.LittleEndian.PutUint64(b, v)
	r := rand.New(rand.NewPCG(v, v^0xa5a5))
	for i := 8; i < BlockSize-8; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	binary.LittleEndian.PutUint64(b[BlockSize-8:], crc64.Checksum(b[:BlockSize-8], crcTable))
	return b
}

// ErrTorn is a block that is neither zeros nor one whole value.
var ErrTorn = errors.New("torn or corrupt block")

// Decode returns the value a block holds; all zeros is 0, the register's
// initial value.
func Decode(b []byte) (uint64, error) {
	if len(b) != BlockSize {
		return 0, fmt.Errorf("%w: %d bytes", ErrTorn, len(b))
	}
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
	if crc64.Checksum(b[:BlockSize-8], crcTable) != binary.LittleEndian.Uint64(b[BlockSize-8:]) {
		return 0, fmt.Errorf("%w: value field %#x", ErrTorn, binary.LittleEndian.Uint64(b))
	}
	return binary.LittleEndian.Uint64(b), nil
}

// Input is one register operation.
type Input struct {
	Block  int
	Write  bool
	Value  uint64 // written value
	Worker int    // for the failure report only
}

// Output is its result.
type Output struct {
	Value   uint64 // read value
	Unknown bool   // a write whose outcome is unknown
}

// Model is one register per block, checked block by block.
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range h {
			b := op.Input.(Input).Block
			by[b] = append(by[b], op)
		}
		blocks := slices.Sorted(maps.Keys(by))
		out := make([][]porcupine.Operation, 0, len(blocks))
		for _, b := range blocks {
			out = append(out, by[b])
		}
		return out
	},
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(Input), output.(Output)
		if in.Write {
			return true, in.Value
		}
		return out.Value == state.(uint64), state
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		switch {
		case in.Write && out.Unknown:
			return fmt.Sprintf("block %d: write %#x (unknown)", in.Block, in.Value)
		case in.Write:
			return fmt.Sprintf("block %d: write %#x", in.Block, in.Value)
		}
		return fmt.Sprintf("block %d: read -> %#x", in.Block, out.Value)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%#x", state.(uint64)) },
}

// History collects the operations of every worker and the faults
// injected, on one clock.
type History struct {
	start  time.Time
	mu     sync.Mutex
	ops    []porcupine.Operation
	events []Event
}

// Event is a fault injected or undone, on the history's clock.
type Event struct {
	At   int64
	What string
}

// NewHistory starts a history's clock.
func NewHistory() *History { return &History{start: time.Now()} }

// Event records a fault.
func (h *History) Event(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, Event{At: h.Now(), What: what})
}

// Now is the history's clock.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Add records an operation.
func (h *History) Add(op porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// Ops returns the operations recorded so far.
func (h *History) Ops() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// Events returns the faults recorded so far.
func (h *History) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// BlockIO is a front end's positional I/O.
type BlockIO interface {
	WriteAtContext(ctx context.Context, p []byte, off int64) (int, error)
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
}

// Workload says which registers workers use and how.
type Workload struct {
	Blocks    int           // registers
	Base      int64         // register b is at Base + b*Stride
	Stride    int64         //
	Workers   int           // workers in all (client ids are w + k*Workers)
	OpTimeout time.Duration // each operation's deadline
}

// Run reads and writes random registers of f as worker w until ctx ends.
// It returns an error only for a torn block, which no fault excuses.
func (wl Workload) Run(ctx context.Context, w int, f BlockIO, r *rand.Rand, h *History) error {
	clientID := w
	buf := make([]byte, BlockSize)
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		b := r.IntN(wl.Blocks)
		off := wl.Base + int64(b)*wl.Stride
		opCtx, cancel := context.WithTimeout(context.Background(), wl.OpTimeout)
		if r.IntN(2) == 0 {
			v := uint64(w+1)<<40 | seq
			call := h.Now()
			_, err := f.WriteAtContext(opCtx, Encode(v), off)
			ret := h.Now()
			cancel()
			op := porcupine.Operation{ClientId: clientID, Input: Input{Block: b, Write: true, Value: v, Worker: w}, Call: call, Return: ret, Output: Output{}}
			if err != nil {
				// It may still take effect, at any time from now on.
				op.Return, op.Output = math.MaxInt64, Output{Unknown: true}
				clientID += wl.Workers // a new process, as in Jepsen
			}
			h.Add(op)
			continue
		}
		call := h.Now()
		_, err := f.ReadAtContext(opCtx, buf, off)
		ret := h.Now()
		cancel()
		if err != nil {
			continue // a failed read has no effect
		}
		v, err := Decode(buf)
		if err != nil {
			return fmt.Errorf("worker %d: read of block %d: %w", w, b, err)
		}
		h.Add(porcupine.Operation{ClientId: clientID, Input: Input{Block: b, Worker: w}, Call: call, Return: ret, Output: Output{Value: v}})
	}
	return nil
}

// DropUnobserved returns ops without the writes of unknown outcome whose
// value no operation observed (seen reports whether one did). The check's
// verdict is the same with or without them, and it is reached far
// faster: such a write may be linearized last (its return is unbounded,
// and nothing after it reads its value), and in a linearization with it
// every read after it returns a later write's value (values are unique),
// which stays so without it. Each one left in doubles what the checker
// may have to try.
func DropUnobserved(ops []porcupine.Operation, seen func(v uint64) bool) []porcupine.Operation {
	return slices.DeleteFunc(slices.Clone(ops), func(op porcupine.Operation) bool {
		in, ok := op.Input.(Input)
		out, _ := op.Output.(Output)
		return ok && in.Write && out.Unknown && !seen(in.Value)
	})
}

// ReadValues is the set of values the reads among ops returned.
func ReadValues(ops []porcupine.Operation) map[uint64]bool {
	seen := map[uint64]bool{}
	for _, op := range ops {
		if in, ok := op.Input.(Input); ok && !in.Write {
			seen[op.Output.(Output).Value] = true
		}
	}
	return seen
}

// Check checks h with porcupine and fails t if it is not linearizable,
// writing a visualization and logging the operations and faults around
// the first that cannot be linearized. It also fails t if fewer than
// minOps writes or reads completed (nothing would have been checked).
func Check(t testing.TB, h *History, minOps int) {
	t.Helper()
	ops := h.Ops()
	writes, unknown := 0, 0
	for _, op := range ops {
		if op.Input.(Input).Write {
			writes++
			if op.Output.(Output).Unknown {
				unknown++
			}
		}
	}
	t.Logf("history: %d operations, %d writes (%d of unknown outcome)", len(ops), writes, unknown)
	if writes-unknown < minOps || len(ops)-writes < minOps {
		t.Fatalf("too few completed operations to check anything: %d writes, %d reads", writes-unknown, len(ops)-writes)
	}
	seen := ReadValues(ops)
	ops = DropUnobserved(ops, func(v uint64) bool { return seen[v] })
	res, info := porcupine.CheckOperationsVerbose(Model, ops, time.Minute)
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
		if err := porcupine.VisualizePath(Model, info, out.Name()); err != nil {
			t.Logf("visualization: %v", err)
		}
		reportViolation(t, ops, h.Events())
		t.Fatalf("history not linearizable; visualization in %s", out.Name())
	}
}

// reportViolation checks each block's history alone and logs, for the
// first one that is not linearizable, the operations around the point
// where its longest linearizable prefix stops, with the faults of that
// window.
func reportViolation(t testing.TB, ops []porcupine.Operation, events []Event) {
	t.Helper()
	by := make(map[int][]porcupine.Operation)
	for _, op := range ops {
		b := op.Input.(Input).Block
		by[b] = append(by[b], op)
	}
	for _, b := range slices.Sorted(maps.Keys(by)) {
		bops := by[b]
		res, info := porcupine.CheckOperationsVerbose(Model, bops, time.Minute)
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
			t.Logf("%s call %s return %s worker %d: %s", mark, sec(op.Call), sec(op.Return), op.Input.(Input).Worker,
				Model.DescribeOperation(op.Input, op.Output))
		}
		for _, e := range events {
			if e.At >= lo-int64(2*time.Second) && e.At <= hi {
				t.Logf("   fault at %s: %s", sec(e.At), e.What)
			}
		}
		return
	}
	t.Logf("every block is linearizable on its own")
}
