package ha

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// nsLinDuration is how long TestNamespaceLinearizable runs its workload.
var nsLinDuration = flag.Duration("catena.nslin.duration", 40*time.Second,
	"how long TestNamespaceLinearizable runs its workload under master faults (e.g. 10m)")

// nsLinSeed, when non-zero, fixes the workload's and the nemesis's choices.
var nsLinSeed = flag.Uint64("catena.nslin.seed", 0, "seed of TestNamespaceLinearizable (0: random, logged)")

// The namespace is cut into groups of paths; a rename moves a file between
// two paths of one group, so each group is one porcupine object (a small
// map path -> inode) and groups are checked independently.
const (
	nsGroups     = 3
	nsGroupPaths = 3
	nsWorkers    = 6
	nsOpTimeout  = 4 * time.Second
)

// nsUnknownInode stands in the model for the inode of a file whose create
// had an unknown outcome: the server picked it, the client never saw it.
const nsUnknownInode = math.MaxUint64

// nsState is one group: the inode at each path, 0 when absent. An array,
// so porcupine compares states with ==.
type nsState [nsGroupPaths]uint64

type nsKind int

const (
	nsCreate nsKind = iota // create-if-absent
	nsRemove
	nsRename
	nsStat
)

type nsInput struct {
	kind     nsKind
	group    int
	path     int // the path; for a rename, its source
	dst      int // a rename's destination
	clientID int
}

// nsOutcome of an operation.
type nsOutcome int

const (
	nsOK       nsOutcome = iota
	nsExist              // ErrExist
	nsNotFound           // ErrNotFound
	nsUnknown            // timeout, unavailable, ...: may or may not have happened
)

type nsOutput struct {
	outcome nsOutcome
	inode   uint64 // create's new inode; stat's inode when nsOK
}

func nsPath(group, path int) string { return fmt.Sprintf("/g%d-p%d", group, path) }

// nsModel checks each group as a map path -> inode. acked holds every inode
// an acknowledged create returned: an inode of unknown origin seen by a
// stat may only be one no acknowledged create made.
func nsModel(acked map[uint64]bool) porcupine.Model {
	return porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			by := make([][]porcupine.Operation, nsGroups)
			for _, op := range h {
				g := op.Input.(nsInput).group
				by[g] = append(by[g], op)
			}
			var out [][]porcupine.Operation
			for _, ops := range by {
				if len(ops) > 0 {
					out = append(out, ops)
				}
			}
			return out
		},
		Init: func() any { return nsState{} },
		Step: func(state, input, output any) (bool, any) {
			return nsStep(state.(nsState), input.(nsInput), output.(nsOutput), acked)
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(nsInput), output.(nsOutput)
			var op string
			switch in.kind {
			case nsCreate:
				op = "create " + nsPath(in.group, in.path)
			case nsRemove:
				op = "remove " + nsPath(in.group, in.path)
			case nsRename:
				op = "rename " + nsPath(in.group, in.path) + " " + nsPath(in.group, in.dst)
			case nsStat:
				op = "stat " + nsPath(in.group, in.path)
			}
			switch out.outcome {
			case nsExist:
				return op + " -> exists"
			case nsNotFound:
				return op + " -> not found"
			case nsUnknown:
				return op + " -> unknown"
			}
			if in.kind == nsCreate || in.kind == nsStat {
				return fmt.Sprintf("%s -> inode %d", op, out.inode)
			}
			return op + " -> ok"
		},
		DescribeState: func(state any) string {
			var parts []string
			for i, ino := range state.(nsState) {
				switch ino {
				case 0:
				case nsUnknownInode:
					parts = append(parts, fmt.Sprintf("p%d=?", i))
				default:
					parts = append(parts, fmt.Sprintf("p%d=%d", i, ino))
				}
			}
			if len(parts) == 0 {
				return "{}"
			}
			return "{" + strings.Join(parts, " ") + "}"
		},
	}
}

// nsStep applies one operation to a group. An operation of unknown outcome
// is checked as if it happened: porcupine may place it after every other
// operation (its return is open-ended), which is the same as never.
func nsStep(s nsState, in nsInput, out nsOutput, acked map[uint64]bool) (bool, nsState) {
	p := in.path
	switch in.kind {
	case nsCreate:
		switch out.outcome {
		case nsOK:
			if s[p] != 0 {
				return false, s
			}
			s[p] = out.inode
			return true, s
		case nsExist:
			return s[p] != 0, s
		case nsUnknown:
			if s[p] == 0 {
				s[p] = nsUnknownInode
			}
			return true, s
		}
	case nsRemove:
		switch out.outcome {
		case nsOK, nsUnknown:
			if out.outcome == nsOK && s[p] == 0 {
				return false, s
			}
			s[p] = 0
			return true, s
		case nsNotFound:
			return s[p] == 0, s
		}
	case nsRename:
		src, dst := s[p], s[in.dst]
		switch out.outcome {
		case nsOK, nsUnknown:
			if src == 0 || dst != 0 {
				// An unknown outcome failed here: no change.
				return out.outcome == nsUnknown, s
			}
			s[in.dst], s[p] = src, 0
			return true, s
		case nsNotFound:
			return src == 0, s
		case nsExist:
			return src != 0 && dst != 0, s
		}
	case nsStat:
		switch out.outcome {
		case nsNotFound:
			return s[p] == 0, s
		case nsOK:
			if s[p] == out.inode {
				return true, s
			}
			if s[p] != nsUnknownInode || acked[out.inode] {
				return false, s
			}
			for _, ino := range s {
				if ino == out.inode { // one inode, two names: impossible here
					return false, s
				}
			}
			s[p] = out.inode // the unknown create's inode, learnt now
			return true, s
		}
	}
	return false, s
}

// nsHistory collects every worker's operations on one clock.
type nsHistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (h *nsHistory) now() int64 { return int64(time.Since(h.start)) }

func (h *nsHistory) add(op porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// TestNamespaceLinearizable runs clients doing create-if-absent, remove,
// rename and stat on a few paths of a 3-master cluster while a nemesis
// kills and restarts the leader, isolates it, or cuts it from the other
// masters only (clients still reach it: a stale leader must not answer),
// and checks the history with porcupine. An operation that failed with
// anything but ErrExist/ErrNotFound may have happened at any time after its
// call: it is recorded with an open-ended return. Run longer with
// -catena.nslin.duration=10m.
func TestNamespaceLinearizable(t *testing.T) {
	dur := *nsLinDuration
	if testing.Short() {
		dur = min(dur, 10*time.Second)
	}
	seed := *nsLinSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (rerun with -catena.nslin.seed=%d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 0x6e736c696e))

	c := clustertest.New(t, cluster.Config{Masters: 3, Chunkservers: 1})
	h := &nsHistory{start: time.Now()}
	ctx, stop := context.WithTimeout(t.Context(), dur)
	defer stop()
	var wg sync.WaitGroup
	for w := range nsWorkers {
		cl, err := c.NewClientConfig(client.Config{OpTimeout: nsOpTimeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		wr := rand.New(rand.NewPCG(r.Uint64(), uint64(w)))
		wg.Go(func() { nsWorker(ctx, w, cl, wr, h) })
	}
	faults := nsNemesis(ctx, t, c, rand.New(rand.NewPCG(r.Uint64(), 77)), h)
	wg.Wait()

	h.mu.Lock()
	ops := h.ops
	h.mu.Unlock()
	acked := make(map[uint64]bool)
	var done, unknown [4]int
	for _, op := range ops {
		in, out := op.Input.(nsInput), op.Output.(nsOutput)
		if out.outcome == nsUnknown {
			unknown[in.kind]++
			continue
		}
		done[in.kind]++
		if in.kind == nsCreate && out.outcome == nsOK {
			acked[out.inode] = true
		}
	}
	t.Logf("history: %d operations; completed create/remove/rename/stat %v, unknown %v; %d faults",
		len(ops), done, unknown, faults)
	for k, n := range done {
		if n < 20 {
			t.Fatalf("only %d completed operations of kind %d: the check would prove little", n, k)
		}
	}
	if faults == 0 {
		t.Fatal("the nemesis injected no fault")
	}

	model := nsModel(acked)
	res, info := porcupine.CheckOperationsVerbose(model, ops, 3*time.Minute)
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatalf("linearizability check timed out: no verdict on %d operations", len(ops))
	default:
		f, err := os.CreateTemp("", "catena-nslin-*.html")
		if err != nil {
			t.Fatalf("history not linearizable (and no file for the visualization: %v)", err)
		}
		f.Close()
		if err := porcupine.VisualizePath(model, info, f.Name()); err != nil {
			t.Logf("visualization: %v", err)
		}
		t.Fatalf("history not linearizable; visualization in %s", f.Name())
	}
}

// nsWorker runs random operations on random groups until ctx ends.
func nsWorker(ctx context.Context, w int, cl *client.Client, r *rand.Rand, h *nsHistory) {
	clientID := w
	for ctx.Err() == nil {
		in := nsInput{group: r.IntN(nsGroups), path: r.IntN(nsGroupPaths), clientID: clientID}
		switch x := r.IntN(10); {
		case x < 3:
			in.kind = nsCreate
		case x < 5:
			in.kind = nsRemove
		case x < 7:
			in.kind = nsRename
			in.dst = (in.path + 1 + r.IntN(nsGroupPaths-1)) % nsGroupPaths
		default:
			in.kind = nsStat
		}
		// Not ctx: an operation under way when the run ends completes.
		opCtx, cancel := context.WithTimeout(context.Background(), 2*nsOpTimeout)
		call := h.now()
		out := nsDo(opCtx, cl, in)
		ret := h.now()
		cancel()
		if out.outcome == nsUnknown {
			if in.kind == nsStat {
				continue // a read that failed has no effect
			}
			// It may still take effect, at any time from now on.
			ret = math.MaxInt64
			clientID += nsWorkers // a new process, as in Jepsen
		}
		h.add(porcupine.Operation{ClientId: in.clientID, Input: in, Call: call, Output: out, Return: ret})
	}
}

// nsDo runs one operation and classifies its result.
func nsDo(ctx context.Context, cl *client.Client, in nsInput) nsOutput {
	p := nsPath(in.group, in.path)
	var (
		err error
		ino uint64
	)
	switch in.kind {
	case nsCreate:
		var f *client.File
		f, err = cl.Create(ctx, p, client.CreateOptions{Replication: 1})
		if err == nil {
			fi, serr := f.Stat()
			if serr != nil {
				panic(fmt.Sprintf("stat of a just created file: %v", serr)) // a client bug
			}
			ino = fi.Inode
			f.Close() // nothing written: no master call
		}
	case nsRemove:
		err = cl.Remove(ctx, p)
	case nsRename:
		err = cl.Rename(ctx, p, nsPath(in.group, in.dst))
	case nsStat:
		var fi *client.FileInfo
		fi, err = cl.Stat(ctx, p)
		if err == nil {
			ino = fi.Inode
		}
	}
	switch {
	case err == nil:
		return nsOutput{outcome: nsOK, inode: ino}
	case errors.Is(err, client.ErrExist):
		return nsOutput{outcome: nsExist}
	case errors.Is(err, client.ErrNotFound):
		return nsOutput{outcome: nsNotFound}
	}
	return nsOutput{outcome: nsUnknown}
}

// nsNemesis injects one master fault at a time until ctx ends and returns
// how many it injected: kill the leader (restart it after a while), isolate
// it from everyone, or cut it from the other masters only.
func nsNemesis(ctx context.Context, t *testing.T, c *cluster.Cluster, r *rand.Rand, h *nsHistory) int {
	logf := func(format string, args ...any) {
		t.Logf("nemesis at %.3fs: %s", time.Duration(h.now()).Seconds(), fmt.Sprintf(format, args...))
	}
	wait := func(d time.Duration) bool {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-tm.C: // load between faults: no event to await
			return true
		}
	}
	awaitLeader := func() int {
		lctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		i, err := c.AwaitLeader(lctx)
		if err != nil {
			t.Errorf("nemesis: %v", err)
		}
		return i
	}
	faults := 0
	for {
		if !wait(time.Duration(300+r.IntN(700)) * time.Millisecond) {
			return faults
		}
		old := awaitLeader()
		if old < 0 {
			return faults
		}
		faults++
		var undo func()
		switch r.IntN(3) {
		case 0:
			logf("kill leader %d", old)
			if err := c.KillMaster(old); err != nil {
				t.Errorf("nemesis: kill %d: %v", old, err)
			}
			undo = func() {
				logf("restart %d", old)
				rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := c.RestartMaster(rctx, old); err != nil {
					t.Errorf("nemesis: restart %d: %v", old, err)
				}
			}
		case 1:
			logf("isolate leader %d", old)
			c.IsolateMaster(old)
			undo = func() { logf("rejoin %d", old); c.RejoinMaster(old) }
		case 2:
			logf("cut leader %d from the other masters", old)
			for i := range c.NumMasters() {
				if i != old {
					c.Network().Partition(cluster.MasterNodeName(old), cluster.MasterNodeName(i))
				}
			}
			undo = func() { logf("heal"); c.Heal() }
		}
		wait(time.Duration(500+r.IntN(1500)) * time.Millisecond)
		undo()
	}
}

// TestNamespaceModel: the model accepts legal histories and rejects a
// stale read, a lost create and a double apply, so a pass of
// TestNamespaceLinearizable means something.
func TestNamespaceModel(t *testing.T) {
	type step struct {
		in       nsInput
		out      nsOutput
		call, rt int64
	}
	mk := func(steps ...step) []porcupine.Operation {
		var ops []porcupine.Operation
		for i, s := range steps {
			ops = append(ops, porcupine.Operation{ClientId: i, Input: s.in, Output: s.out, Call: s.call, Return: s.rt})
		}
		return ops
	}
	create := nsInput{kind: nsCreate}
	stat := nsInput{kind: nsStat}
	statDst := nsInput{kind: nsStat, path: 1}
	rename := nsInput{kind: nsRename, dst: 1}
	remove := nsInput{kind: nsRemove}
	ok := func(ino uint64) nsOutput { return nsOutput{outcome: nsOK, inode: ino} }
	unknown := nsOutput{outcome: nsUnknown}
	notFound := nsOutput{outcome: nsNotFound}
	exist := nsOutput{outcome: nsExist}
	const never = math.MaxInt64
	for _, tc := range []struct {
		name  string
		ops   []porcupine.Operation
		acked map[uint64]bool
		want  porcupine.CheckResult
	}{
		{"create, rename, stat", mk(
			step{create, ok(7), 0, 1}, step{rename, ok(0), 2, 3}, step{statDst, ok(7), 4, 5}, step{stat, notFound, 4, 5},
		), map[uint64]bool{7: true}, porcupine.Ok},
		{"stale read after remove", mk(
			step{create, ok(7), 0, 1}, step{remove, ok(0), 2, 3}, step{stat, ok(7), 4, 5},
		), map[uint64]bool{7: true}, porcupine.Illegal},
		{"lost create", mk(
			step{create, ok(7), 0, 1}, step{stat, notFound, 2, 3},
		), map[uint64]bool{7: true}, porcupine.Illegal},
		{"double create", mk(
			step{create, ok(7), 0, 1}, step{create, ok(8), 2, 3},
		), map[uint64]bool{7: true, 8: true}, porcupine.Illegal},
		{"exists without a create", mk(
			step{create, exist, 0, 1},
		), nil, porcupine.Illegal},
		{"unknown create seen later", mk(
			step{create, unknown, 0, never}, step{stat, ok(9), 2, 3}, step{create, exist, 4, 5},
		), nil, porcupine.Ok},
		{"unknown create never happened", mk(
			step{create, unknown, 0, never}, step{stat, notFound, 2, 3},
		), nil, porcupine.Ok},
		{"unknown create cannot show an acked inode", mk(
			step{create, ok(7), 0, 1}, step{remove, ok(0), 2, 3}, step{create, unknown, 4, never}, step{stat, ok(7), 6, 7},
		), map[uint64]bool{7: true}, porcupine.Illegal},
		{"unknown remove", mk(
			step{create, ok(7), 0, 1}, step{remove, unknown, 2, never}, step{stat, ok(7), 4, 5}, step{stat, notFound, 6, 7},
		), map[uint64]bool{7: true}, porcupine.Ok},
		{"read goes back in time", mk(
			step{create, ok(7), 0, 1}, step{remove, unknown, 2, never}, step{stat, notFound, 4, 5}, step{stat, ok(7), 6, 7},
		), map[uint64]bool{7: true}, porcupine.Illegal},
		{"rename onto an existing path", mk(
			step{create, ok(7), 0, 1}, step{nsInput{kind: nsCreate, path: 1}, ok(8), 0, 1}, step{rename, ok(0), 2, 3},
		), map[uint64]bool{7: true, 8: true}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(nsModel(tc.acked), tc.ops); got != (tc.want == porcupine.Ok) {
				t.Fatalf("linearizable = %v, want %v", got, tc.want == porcupine.Ok)
			}
		})
	}
}
