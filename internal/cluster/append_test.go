package cluster_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/lincheck"
)

// appendDuration is how long TestRecordAppend's workload runs.
var appendDuration = flag.Duration("catena.append.duration", 12*time.Second,
	"how long TestRecordAppend runs its workload under faults (e.g. 5m)")

const (
	appendProducers = 8
	appendReaders   = 2
)

// appendRecord is the record of id: id, then filler derived from it, of a
// length derived from it (so a record read back proves its whole self).
func appendRecord(id uint64) []byte {
	r := rand.New(rand.NewPCG(id, 0x5eed))
	b := make([]byte, 8+r.IntN(6*kib))
	binary.LittleEndian.PutUint64(b, id)
	for i := 8; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// appendID is the id of a record read back, or an error when it is not
// exactly appendRecord's.
func appendID(rec []byte) (uint64, error) {
	if len(rec) < 8 {
		return 0, fmt.Errorf("record of %d bytes", len(rec))
	}
	id := binary.LittleEndian.Uint64(rec)
	if !bytes.Equal(rec, appendRecord(id)) {
		return 0, fmt.Errorf("record %#x is not the one appended", id)
	}
	return id, nil
}

// appendIn, appendOut: a porcupine operation on the record file. An
// append of id answered off; a read of chunk saw the records seen
// (offset -> id).
type appendIn struct {
	read  bool
	id    uint64
	size  int64 // the frame's
	chunk int64
}

type appendOut struct {
	off  int64
	seen map[int64]uint64
}

// appendEntry is a record in a chunk's state: its frame's offset and end,
// and its id. The state is a sorted []appendEntry, never changed in place.
type appendEntry struct {
	off, end int64
	id       uint64
}

func appendModel() porcupine.Model {
	chunkOf := func(op porcupine.Operation) int64 {
		in := op.Input.(appendIn)
		if in.read {
			return in.chunk
		}
		return op.Output.(appendOut).off / chunkSize
	}
	return porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			by := map[int64][]porcupine.Operation{}
			for _, op := range h {
				by[chunkOf(op)] = append(by[chunkOf(op)], op)
			}
			var out [][]porcupine.Operation
			for _, k := range slices.Sorted(func(yield func(int64) bool) {
				for k := range by {
					if !yield(k) {
						return
					}
				}
			}) {
				out = append(out, by[k])
			}
			return out
		},
		Init:  func() any { return []appendEntry(nil) },
		Equal: func(a, b any) bool { return slices.Equal(a.([]appendEntry), b.([]appendEntry)) },
		Step: func(state, input, output any) (bool, any) {
			es := state.([]appendEntry)
			in, out := input.(appendIn), output.(appendOut)
			if in.read {
				if len(out.seen) != len(es) {
					return false, state
				}
				for _, e := range es {
					if out.seen[e.off] != e.id {
						return false, state
					}
				}
				return true, state
			}
			e := appendEntry{off: out.off, end: out.off + in.size, id: in.id}
			for _, x := range es {
				if e.off < x.end && x.off < e.end {
					return false, state // overlapping records
				}
			}
			i, _ := slices.BinarySearchFunc(es, e.off, func(x appendEntry, off int64) int { return cmp.Compare(x.off, off) })
			return true, slices.Insert(slices.Clip(es), i, e)
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(appendIn), output.(appendOut)
			if in.read {
				return fmt.Sprintf("read chunk %d -> %d records", in.chunk, len(out.seen))
			}
			return fmt.Sprintf("append %#x -> %d", in.id, out.off)
		},
	}
}

// TestRecordAppend: eight producers append records to one file while
// readers read its chunks and a nemesis kills, restarts, pauses and
// partitions chunkservers. Checked with porcupine, per chunk: every
// acknowledged append is at its returned offset and, with every read,
// linearizable (a read of a chunk sees exactly the records appended to
// it so far); records never overlap; readers see only whole records; at
// the end every acknowledged record is in the file exactly once, and one
// whose append failed at most once.
func TestRecordAppend(t *testing.T) {
	dur := *appendDuration
	if testing.Short() {
		dur = min(dur, 6*time.Second)
	}
	cfg := failureConfig(5)
	cfg.ColdAfter = 2*linOpTimeout + time.Second // see TestLinearizability
	c := clustertest.New(t, cfg)
	setup := clustertest.Client(t, c)
	f, err := setup.Create(t.Context(), "/log", client.CreateOptions{ChunkSize: chunkSize, Replication: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r := newRand(t)
	h := lincheck.NewHistory()
	ctx, stop := context.WithTimeout(t.Context(), dur)
	defer stop()
	var mu sync.Mutex
	unknown := map[uint64]porcupine.Operation{} // appends of unknown outcome, by id
	var wg sync.WaitGroup
	errs := make(chan error, appendProducers+appendReaders)
	for p := range appendProducers {
		cl := clustertest.Client(t, c)
		fp, err := cl.Open(t.Context(), "/log")
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := uint64(1); ctx.Err() == nil; i++ {
				id := uint64(p+1)<<32 | i
				rec := appendRecord(id)
				in := appendIn{id: id, size: int64(len(rec)) + 16}
				call := h.Now()
				octx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
				off, err := fp.Append(octx, rec)
				cancel()
				op := porcupine.Operation{ClientId: p, Input: in, Call: call, Return: h.Now(), Output: appendOut{off: off}}
				if err != nil {
					mu.Lock()
					unknown[id] = op
					mu.Unlock()
					continue
				}
				h.Add(op)
			}
		})
	}
	for rd := range appendReaders {
		cl := clustertest.Client(t, c)
		fr, err := cl.Open(t.Context(), "/log")
		if err != nil {
			t.Fatal(err)
		}
		rr := rand.New(rand.NewPCG(r.Uint64(), uint64(rd)))
		wg.Go(func() {
			buf := make([]byte, chunkSize)
			for ctx.Err() == nil {
				call := h.Now()
				octx, cancel := context.WithTimeout(context.Background(), linOpTimeout)
				seen, chunk, err := readChunk(octx, fr, rr, buf)
				cancel()
				if errors.Is(err, errNotWhole) {
					errs <- err
					return
				}
				if err != nil {
					continue // a failed read says nothing
				}
				h.Add(porcupine.Operation{ClientId: appendProducers + rd, Input: appendIn{read: true, chunk: chunk},
					Call: call, Return: h.Now(), Output: appendOut{seen: seen}})
			}
		})
	}
	nemesis(ctx, t, c, rand.New(rand.NewPCG(r.Uint64(), 98)), h)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The file as it ends: every record whole, none twice.
	final := clustertest.Client(t, c)
	ff, err := final.Open(t.Context(), "/log")
	if err != nil {
		t.Fatal(err)
	}
	rr, err := ff.Records(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	at := map[uint64]int64{}
	for {
		rec, err := rr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		id, err := appendID(rec.Data)
		if err != nil {
			t.Fatalf("at %d: %v", rec.Offset, err)
		}
		if prev, dup := at[id]; dup {
			t.Fatalf("record %#x twice, at %d and %d", id, prev, rec.Offset)
		}
		at[id] = rec.Offset
	}
	ops := h.Ops()
	acked, reads := 0, 0
	for _, op := range ops {
		in := op.Input.(appendIn)
		if in.read {
			reads++
			continue
		}
		acked++
		if off, ok := at[in.id]; !ok || off != op.Output.(appendOut).off {
			t.Fatalf("acknowledged append %#x at %d: in the file at %d (found %v)", in.id, op.Output.(appendOut).off, off, ok)
		}
	}
	// An append of unknown outcome took effect if its record is there:
	// at that offset, at any time after its call.
	landed := 0
	for id, op := range unknown {
		if off, ok := at[id]; ok {
			op.Output, op.Return = appendOut{off: off}, math.MaxInt64
			ops = append(ops, op)
			landed++
		}
	}
	if len(at) != acked+landed {
		t.Fatalf("%d records in the file: %d acknowledged, %d of %d failed appends landed", len(at), acked, landed, len(unknown))
	}
	t.Logf("history: %d appends acknowledged, %d failed (%d landed), %d chunk reads; %d records in %d chunks",
		acked, len(unknown), landed, reads, len(at), ff.Size()/chunkSize+1)
	if acked < 50 || reads < 10 {
		t.Fatalf("too few operations to check anything: %d appends, %d reads", acked, reads)
	}
	res, info := porcupine.CheckOperationsVerbose(appendModel(), ops, time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Logf("linearizability check timed out: no verdict")
	default:
		out, err := os.CreateTemp("", "catena-append-*.html")
		if err != nil {
			t.Fatalf("appends and chunk reads not linearizable (and no file for the visualization: %v)", err)
		}
		out.Close()
		if err := porcupine.VisualizePath(appendModel(), info, out.Name()); err != nil {
			t.Logf("visualization: %v", err)
		}
		t.Fatalf("appends and chunk reads not linearizable; visualization in %s", out.Name())
	}
}

var errNotWhole = errors.New("a reader saw a record that is not whole")

// readChunk reads one chunk of f (one read at its tail) and returns the
// records in it; errNotWhole when one is not a record appended.
func readChunk(ctx context.Context, f *client.File, r *rand.Rand, buf []byte) (map[int64]uint64, int64, error) {
	if err := f.Reload(ctx); err != nil {
		return nil, 0, err
	}
	size := f.Size()
	chunk := r.Int64N(size/chunkSize + 1)
	n := min(chunkSize, size-chunk*chunkSize)
	if n <= 0 {
		return map[int64]uint64{}, chunk, nil
	}
	got, err := f.ReadAtContext(ctx, buf[:n], chunk*chunkSize)
	if err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
		return nil, 0, err
	}
	seen := map[int64]uint64{}
	for _, rec := range client.ParseRecords(buf[:n], chunk*chunkSize, chunkSize) {
		id, err := appendID(rec.Data)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: at %d: %v", errNotWhole, rec.Offset, err)
		}
		seen[rec.Offset] = id
	}
	return seen, chunk, nil
}
