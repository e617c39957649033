package cluster_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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

// The snapshot linearizability test: registers as in TestLinearizability
// (lincheck), few enough to check the whole history at once, since a
// snapshot reads every register at a single point.
const (
	snapBlocks  = 4
	snapStride  = failFileSize / snapBlocks // blocks spread over both chunks
	snapWorkers = 3
)

// snapInput is a snapshot taken (Call to Return: the snapshot call) and
// read back whole afterwards (it no longer changes).
type snapInput struct{ Name string }

// snapOutput is what the snapshot holds, register by register.
type snapOutput struct{ Values [snapBlocks]uint64 }

// snapModel: the state is every register; a snapshot must equal it at
// one point of its call.
var snapModel = porcupine.Model{
	Init: func() any { return [snapBlocks]uint64{} },
	Step: func(state, input, output any) (bool, any) {
		st := state.([snapBlocks]uint64)
		switch in := input.(type) {
		case snapInput:
			return output.(snapOutput).Values == st, st
		case lincheck.Input:
			if in.Write {
				st[in.Block] = in.Value
				return true, st
			}
			return output.(lincheck.Output).Value == st[in.Block], st
		}
		return false, st
	},
	Equal: func(a, b any) bool { return a.([snapBlocks]uint64) == b.([snapBlocks]uint64) },
	DescribeOperation: func(input, output any) string {
		switch in := input.(type) {
		case snapInput:
			return fmt.Sprintf("snapshot %s -> %#x", in.Name, output.(snapOutput).Values)
		case lincheck.Input:
			return lincheck.Model.DescribeOperation(input, output)
		}
		return "?"
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%#x", state.([snapBlocks]uint64)) },
}

// TestSnapshotLinearizable: writers of single blocks of a file and of a
// volume while snapshots of each are taken and read back, under a
// nemesis that kills, restarts, pauses and partitions chunkservers. The
// history (with the snapshots) must be linearizable: every snapshot
// equals the content at one point between its call and its return, and
// reads and writes of the live file and volume stay linearizable across
// the forks of their shared chunks.
func TestSnapshotLinearizable(t *testing.T) {
	dur := 15 * time.Second
	if testing.Short() {
		dur = 8 * time.Second
	}
	cfg := failureConfig(5)
	cfg.ColdAfter = 2*linOpTimeout + time.Second
	c := clustertest.New(t, cfg)
	setup := clustertest.Client(t, c)
	r := newRand(t)
	if err := setup.Mkdir(t.Context(), "/s", 0o755); err != nil {
		t.Fatal(err)
	}
	f := create(t, setup, "/s/lin")
	writeAt(t, f, []byte{0}, failFileSize-1)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := setup.CreateVolume(t.Context(), "lin", failFileSize, client.VolumeOptions{ChunkSize: chunkSize}); err != nil {
		t.Fatal(err)
	}

	type target struct {
		name     string
		open     func(cl *client.Client) (lincheck.BlockIO, error)
		snapshot func(ctx context.Context, cl *client.Client, name string) error
		read     func(ctx context.Context, cl *client.Client, name string) (lincheck.BlockIO, error)
	}
	targets := []target{{
		name: "file",
		open: func(cl *client.Client) (lincheck.BlockIO, error) { return cl.Open(t.Context(), "/s/lin") },
		snapshot: func(ctx context.Context, cl *client.Client, name string) error {
			_, err := cl.Snapshot(ctx, "/s/lin", name)
			return err
		},
		read: func(ctx context.Context, cl *client.Client, name string) (lincheck.BlockIO, error) {
			return cl.Open(ctx, "/s/.snapshot/"+name+"/lin")
		},
	}, {
		name: "volume",
		open: func(cl *client.Client) (lincheck.BlockIO, error) { return cl.OpenVolume(t.Context(), "lin") },
		snapshot: func(ctx context.Context, cl *client.Client, name string) error {
			_, err := cl.SnapshotVolume(ctx, "lin", name)
			return err
		},
		read: func(ctx context.Context, cl *client.Client, name string) (lincheck.BlockIO, error) {
			return cl.OpenVolume(ctx, "lin@"+name)
		},
	}}

	hists := make([]*lincheck.History, len(targets))
	ctx, stop := context.WithTimeout(t.Context(), dur)
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	snaps := make([]int, len(targets))
	for ti, tg := range targets {
		h := lincheck.NewHistory()
		hists[ti] = h
		wl := lincheck.Workload{Blocks: snapBlocks, Stride: snapStride, Workers: snapWorkers + 1, OpTimeout: linOpTimeout}
		for w := range snapWorkers {
			io, err := tg.open(clustertest.Client(t, c))
			if err != nil {
				t.Fatal(err)
			}
			wr := rand.New(rand.NewPCG(r.Uint64(), uint64(w)))
			wg.Go(func() {
				if err := wl.Run(ctx, w, io, wr, h); err != nil {
					errs <- fmt.Errorf("%s: %w", tg.name, err)
				}
			})
		}
		cl := clustertest.Client(t, c)
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("s%d", i)
				sctx, cancel := context.WithTimeout(context.Background(), 2*linOpTimeout)
				call := h.Now()
				err := tg.snapshot(sctx, cl, name)
				ret := h.Now()
				cancel()
				if err != nil {
					// It may exist, at a point after its call: not checked.
					t.Logf("%s: snapshot %s: %v", tg.name, name, err)
					continue
				}
				vals, err := readSnapshot(tg.read, cl, name)
				if err != nil {
					errs <- fmt.Errorf("%s: snapshot %s: %w", tg.name, name, err)
					return
				}
				h.Add(porcupine.Operation{ClientId: snapWorkers, Input: snapInput{Name: name}, Output: snapOutput{Values: vals},
					Call: call, Return: ret})
				snaps[ti]++
			}
		})
	}
	nemesis(ctx, t, c, rand.New(rand.NewPCG(r.Uint64(), 99)), hists[0])
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for ti, tg := range targets {
		if snaps[ti] < 3 {
			t.Errorf("%s: only %d snapshots taken and read", tg.name, snaps[ti])
		}
		t.Logf("%s: %d snapshots taken and read", tg.name, snaps[ti])
		checkSnapshots(t, tg.name, hists[ti])
	}
}

// readSnapshot reads every register of snapshot name, retrying through
// faults (a snapshot does not change: any later read is its content).
func readSnapshot(open func(context.Context, *client.Client, string) (lincheck.BlockIO, error), cl *client.Client, name string) ([snapBlocks]uint64, error) {
	var vals [snapBlocks]uint64
	ctx, cancel := context.WithTimeout(context.Background(), failTimeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		io, err := open(ctx, cl, name)
		if err == nil {
			buf := make([]byte, lincheck.BlockSize)
			for b := range snapBlocks {
				if _, err = io.ReadAtContext(ctx, buf, int64(b)*snapStride); err != nil {
					break
				}
				if vals[b], err = lincheck.Decode(buf); err != nil {
					return vals, err // torn: no fault excuses it
				}
			}
			if cl, ok := io.(interface{ Close() error }); ok {
				cl.Close()
			}
			if err == nil {
				return vals, nil
			}
		}
		last = err
	}
	return vals, fmt.Errorf("not readable within %s: %w", failTimeout, errors.Join(last, ctx.Err()))
}

// checkSnapshots checks a history with snapshots as one whole.
func checkSnapshots(t *testing.T, what string, h *lincheck.History) {
	t.Helper()
	ops := h.Ops()
	writes, unknown := 0, 0
	for _, op := range ops {
		if in, ok := op.Input.(lincheck.Input); ok && in.Write {
			writes++
			if op.Return == math.MaxInt64 {
				unknown++
			}
		}
	}
	t.Logf("%s: %d operations, %d writes (%d of unknown outcome)", what, len(ops), writes, unknown)
	if writes-unknown < 10 {
		t.Fatalf("%s: too few completed writes to check anything: %d", what, writes-unknown)
	}
	seen := lincheck.ReadValues(ops)
	for _, op := range ops {
		if out, ok := op.Output.(snapOutput); ok {
			for _, v := range out.Values {
				seen[v] = true
			}
		}
	}
	ops = lincheck.DropUnobserved(ops, func(v uint64) bool { return seen[v] })
	res, info := porcupine.CheckOperationsVerbose(snapModel, ops, 2*time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatalf("%s: the check found no verdict in time (history too large)", what)
	default:
		out, err := os.CreateTemp("", "catena-snapshot-lin-*.html")
		if err != nil {
			t.Fatalf("%s: history with snapshots not linearizable (no file for the visualization: %v)", what, err)
		}
		out.Close()
		path := out.Name()
		if err := porcupine.VisualizePath(snapModel, info, path); err != nil {
			t.Logf("visualization: %v", err)
		}
		for _, e := range h.Events() {
			t.Logf("fault at %.3fs: %s", time.Duration(e.At).Seconds(), e.What)
		}
		// Narrow it down: the reads and writes alone, then each snapshot
		// with them.
		var rw []porcupine.Operation
		var snaps []porcupine.Operation
		for _, op := range ops {
			if _, ok := op.Input.(snapInput); ok {
				snaps = append(snaps, op)
			} else {
				rw = append(rw, op)
			}
		}
		if porcupine.CheckOperations(lincheck.Model, rw) {
			t.Logf("%s: the reads and writes alone are linearizable", what)
			logSnapshotViolation(t, what, rw, snaps)
		} else {
			t.Logf("%s: the reads and writes alone are not linearizable:", what)
			rh := lincheck.NewHistory()
			for _, op := range rw {
				rh.Add(op)
			}
			for _, e := range h.Events() {
				rh.Event(e.What)
			}
			lincheck.Check(t, rh, 0) // fails t with the operations around the violation
		}
		t.Fatalf("%s: history with snapshots not linearizable; visualization in %s", what, path)
	}
}

// logSnapshotViolation narrows a violation down to the snapshots that
// cause it: the first snapshot that fits no point of its call with the
// reads and writes alone, or else the first pair of snapshots that cannot
// both hold; it logs them with the reads and writes around them.
func logSnapshotViolation(t *testing.T, what string, rw, snaps []porcupine.Operation) {
	t.Helper()
	slices.SortFunc(snaps, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	culprits := func() []porcupine.Operation {
		for _, s := range snaps {
			if !porcupine.CheckOperations(snapModel, append(slices.Clone(rw), s)) {
				return []porcupine.Operation{s}
			}
		}
		for k := 1; k < len(snaps); k++ {
			if porcupine.CheckOperations(snapModel, append(slices.Clone(rw), snaps[:k+1]...)) {
				continue
			}
			for j := k - 1; j >= 0; j-- {
				if !porcupine.CheckOperations(snapModel, append(slices.Clone(rw), snaps[j], snaps[k])) {
					return []porcupine.Operation{snaps[j], snaps[k]}
				}
			}
			return snaps[:k+1]
		}
		return nil
	}()
	if len(culprits) == 0 || len(culprits) > 2 {
		t.Logf("%s: no single snapshot or pair of snapshots explains it (%d snapshots)", what, len(culprits))
		return
	}
	from, to := culprits[0].Call, culprits[len(culprits)-1].Return
	for _, s := range culprits {
		t.Logf("%s: %s (call %.6fs, return %.6fs)", what, snapModel.DescribeOperation(s.Input, s.Output),
			time.Duration(s.Call).Seconds(), time.Duration(s.Return).Seconds())
	}
	t.Logf("%s: cannot hold together with the reads and writes; those around them:", what)
	const around = int64(500 * time.Millisecond)
	for _, op := range rw {
		end := op.Return
		if end == math.MaxInt64 {
			end = op.Call
		}
		if end >= from-around && op.Call <= to+around {
			in := op.Input.(lincheck.Input)
			t.Logf("   call %.6fs return %.6fs worker %d: %s", time.Duration(op.Call).Seconds(),
				time.Duration(min(op.Return, int64(time.Hour))).Seconds(), in.Worker, lincheck.Model.DescribeOperation(op.Input, op.Output))
		}
	}
}
