package mirror

import (
	"context"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/mirror"
)

// The nemesis run for a directory tree (issue 13: "the same for a
// directory tree with creates, renames and removes"): TestMirrorNemesis's
// clusters of real processes (A on the host's loopback, B's master and 4
// chunkservers inside a network namespace), its fault kinds and its
// schedule, with the tree treeDir in place of a volume. treeWriter
// (tree_test.go) changes the tree at A through the library (creates,
// writes, truncates, renames of files and directories, removes,
// symlinks, chmods) while catena mirror run ships checkpoints of it to B
// and the nemesis SIGKILLs the mirror, B's chunkservers and B's master
// and cuts A<->B. B's tree is read over and over from the host through
// the library, by inode (readTreeAt): a read that errors (a fault is
// active) or spans an activation is void; every other read must equal
// one of A's checkpoints (kept with --keep-source-checkpoints, read as
// trees at the end) between the one B's record said was applied before
// the read and the one after the record said after it. After each
// step's faults are healed the mirror must apply a checkpoint; at the
// end B's tree equals A's.
//
// The writer is not throttled: on a 2-core machine it makes 55 to 80
// operations a second (each lists the whole tree first), the tree stays
// at a few hundred entries, and a checkpoint with no fault active ships
// about 3 MB and applies in under a second (logged as "checkpoints with
// no fault active").
//
//	CATENA_MIRROR_NEMESIS=1 go test -count=1 -run 'TestMirrorTreeNemesis$' -v ./tests/mirror
//
// The knobs are TestMirrorNemesis's: CATENA_MIRROR_NEMESIS_DURATION (the
// writer's run, default 60s), CATENA_MIRROR_NEMESIS_SEED (the schedule's
// and the writer's seed), CATENA_MIRROR_NEMESIS_KEEP=1.

// treeNemSample is one read of B's tree, between two reads of B's record.
type treeNemSample struct {
	before, after uint64
	at            time.Duration
	tree          map[string]node
}

// treeNemSampler reads B's tree over and over until halted. It differs
// from tree_test.go's treeSampler in what a nemesis needs: each read is
// bounded by a timeout (a cut must void it, not hang it), framed by B's
// record, and followed by a pause (the mirror shares this machine's
// cores).
type treeNemSampler struct {
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	samples []treeNemSample
	void    int
	lastErr string
}

func (e *nemEnv) startTreeSampling() *treeNemSampler {
	s := &treeNemSampler{stop: make(chan struct{}), done: make(chan struct{})}
	one := func(ctx context.Context) (treeNemSample, error) {
		r1, err := mirror.ReadRecord(ctx, e.cb, treeDir)
		if err != nil {
			return treeNemSample{}, err
		}
		at := time.Since(e.start)
		tr, err := readTreeAt(ctx, e.cb, treeDir)
		if err != nil {
			return treeNemSample{}, err
		}
		r2, err := mirror.ReadRecord(ctx, e.cb, treeDir)
		if err != nil {
			return treeNemSample{}, err
		}
		return treeNemSample{before: r1.Applied, after: r2.Applied, at: at, tree: tr}, nil
	}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			smp, err := one(ctx)
			cancel()
			s.mu.Lock()
			if err != nil {
				s.void++
				s.lastErr = err.Error()
			} else {
				s.samples = append(s.samples, smp)
			}
			s.mu.Unlock()
			pause := nemSamplePause
			if err != nil {
				pause = 100 * time.Millisecond
			}
			select {
			case <-s.stop:
				return
			case <-time.After(pause):
			}
		}
	}()
	return s
}

// halt stops the sampler (again is a no-op) and returns its samples.
func (s *treeNemSampler) halt() []treeNemSample {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// TestMirrorTreeNemesis: see the comment at the top of this file.
func TestMirrorTreeNemesis(t *testing.T) {
	nemesisGate(t, "TestMirrorTreeNemesis", "the mirror's nemesis run of a directory tree takes over a minute")
	dur := nemDuration(t)
	seed := nemSeed(t)
	t.Logf("nemesis seed %d (CATENA_MIRROR_NEMESIS_SEED=%d reproduces the schedule and the writer's choices), tree writer for %s",
		seed, seed, dur)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x6e656d65))
	e := newNemEnv(t, treeDir, seed)

	if err := e.ca.MkdirAll(t.Context(), treeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The writer at A, through the library (the nemesis never touches
	// A). It runs for dur; it is checked between the steps, so that an
	// error of it stops the run at once.
	w := startTreeWriter(t, e.ca, seed)
	writerStart := time.Now()
	writerEnd := writerStart.Add(dur)
	writerHalted := false
	t.Cleanup(func() {
		if !writerHalted {
			close(w.stop)
			<-w.done
		}
	})
	writerAlive := func() {
		t.Helper()
		select {
		case <-w.done:
			t.Fatalf("the tree writer at A stopped by itself: %v", w.err)
		default:
		}
	}

	e.startMirror()
	first := e.awaitApplied(0, nemResume, "the first checkpoint")
	t.Logf("checkpoint %d applied at B %s after the writer started", first.Applied, time.Since(writerStart).Round(time.Millisecond))
	smp := e.startTreeSampling()
	t.Cleanup(func() { smp.halt() }) // before the processes are killed

	// The nemesis: TestMirrorNemesis's schedule, going on past the
	// writer's time until every kind was injected once (a first round
	// holds all four). quiet: how long checkpoints took with no fault
	// active: the last one applied at the start of a step, when it is
	// later than the one awaited after the previous heal (so it started
	// after the heal).
	var quiet []time.Duration
	quietAfter := first.Applied
	faults, steps := e.nemesis(rng, nemesisHooks{
		more: func(steps int) bool {
			writerAlive()
			return time.Now().Before(writerEnd) || steps < len(faultKinds)
		},
		pause: func(d time.Duration) {
			if time.Until(writerEnd) > 0 {
				time.Sleep(d)
			}
		},
		beforeStep: func(r *mirror.Record) {
			if r.Applied > quietAfter {
				quiet = append(quiet, time.Duration(r.LastDuration))
			}
		},
		afterHeal: func(r *mirror.Record) { quietAfter = r.Applied },
	})
	writerAlive()
	writerHalted = true // halt stops it, even when it fails
	w.halt(t)
	writerRan := time.Since(writerStart)

	// The end: the faults healed, the changes over, the mirror running:
	// the flush barrier, one more checkpoint, the mirror stopped cleanly.
	out, err := catena(t, "mirror", "sync", "--from", e.aMaster, "--to", e.bMaster, "--timeout", "2m", treeDir)
	if err != nil {
		t.Fatalf("mirror sync after the changes: %v; mirror log:\n%s", err, e.tail("mirror", 40))
	}
	out = strings.TrimSpace(out)
	var synced uint64
	if _, err := fmt.Sscanf(out, "directory "+treeDir+" at checkpoint %d at "+e.bMaster, &synced); err != nil || synced == 0 {
		t.Fatalf("mirror sync printed %q: want \"directory %s at checkpoint N at %s after D\" (%v)", out, treeDir, e.bMaster, err)
	}
	r, err := e.record(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Applied < synced {
		t.Fatalf("mirror sync said checkpoint %d, yet B's record says %d applied", synced, r.Applied)
	}
	t.Logf("mirror sync: %s", out)
	e.awaitApplied(r.Applied, nemResume, "one more checkpoint after the sync")
	samples := smp.halt()
	e.mirrorProc.Stop(t, time.Minute)
	last, err := e.record(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if last.Pending != 0 || last.Stage != 0 {
		t.Fatalf("B's record after the mirror stopped cleanly: checkpoint %d pending (stage %d)", last.Pending, last.Stage)
	}

	// A's checkpoints, kept by --keep-source-checkpoints, read as trees.
	readStart := time.Now()
	ckpts := treeCheckpoints(t, e.ca)
	readTook := time.Since(readStart)
	for id := uint64(1); id <= last.Applied; id++ {
		if ckpts[id] == nil {
			t.Fatalf("checkpoint %d of %d missing at A despite --keep-source-checkpoints (held: %v)",
				id, last.Applied, slices.Sorted(maps.Keys(ckpts)))
		}
	}

	// Every sample equals a checkpoint between B's record before the
	// read and the one after B's record after it (an activation
	// exchanges B's tree before the record says so).
	seen := map[uint64]bool{}
	for i, s := range samples {
		var match []uint64
		for id, tr := range ckpts {
			if diffTrees(tr, s.tree) == "" {
				match = append(match, id)
			}
		}
		slices.Sort(match)
		ok := false
		for _, id := range match {
			if id >= s.before && id <= s.after+1 {
				ok = true
				seen[id] = true
			}
		}
		if ok {
			continue
		}
		if len(match) > 0 {
			t.Fatalf("sample %d at %.1fs: B's tree equals A's checkpoint(s) %v, but B's record said %d before the read and %d after",
				i, s.at.Seconds(), match, s.before, s.after)
		}
		// The nearest checkpoint among those the record allows, to
		// say what differed.
		best, bestDiff := uint64(0), ""
		for id := s.before; id <= s.after+1; id++ {
			tr := ckpts[id]
			if tr == nil {
				continue
			}
			if d := diffTrees(tr, s.tree); best == 0 || len(d) < len(bestDiff) {
				best, bestDiff = id, d
			}
		}
		t.Fatalf("sample %d at %.1fs: B's tree (%d entries) equals none of A's %d checkpoints (B's record said %d before the read, %d after); checkpoint %d (%d entries) against it:\n%s",
			i, s.at.Seconds(), len(s.tree), len(ckpts), s.before, s.after, best, len(ckpts[best]), bestDiff)
	}

	// B at the end equals A: A's live tree, A's last checkpoint, B's
	// tree.
	live := readTreeStable(t, e.ca, treeDir)
	if d := diffTrees(live, ckpts[last.Applied]); d != "" {
		t.Fatalf("A's checkpoint %d, taken after the changes stopped, differs from A's tree:\n%s", last.Applied, d)
	}
	final := readTreeStable(t, e.cb, treeDir)
	if d := diffTrees(live, final); d != "" {
		t.Fatalf("B's tree at checkpoint %d differs from A's after the changes stopped (first: A, second: B):\n%s", last.Applied, d)
	}

	status, err := catena(t, "mirror", "status", "--to", e.bMaster, treeDir)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, k := range faultKinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, faults[k]))
	}
	var ops []string
	total := 0
	for _, k := range slices.Sorted(maps.Keys(w.ops)) {
		ops = append(ops, fmt.Sprintf("%s %d", k, w.ops[k]))
		total += w.ops[k]
	}
	var files, dirs, links int
	for _, n := range final {
		switch n.typ {
		case client.TypeFile:
			files++
		case client.TypeDir:
			dirs++
		case client.TypeSymlink:
			links++
		}
	}
	t.Logf("nemesis: %d steps over %s (seed %d): %s; %d mirror processes",
		steps, writerRan.Round(time.Second), seed, strings.Join(kinds, ", "), e.mirrors)
	t.Logf("tree writer at A: %d operations (%.1f/s): %s; at the end %d files, %d directories, %d symlinks",
		total, float64(total)/writerRan.Seconds(), strings.Join(ops, ", "), files, dirs, links)
	slices.Sort(quiet)
	if len(quiet) > 0 {
		t.Logf("checkpoints with no fault active: %d measured, median %s, max %s (snapshot at A to activation at B)",
			len(quiet), quiet[len(quiet)/2].Round(time.Millisecond), quiet[len(quiet)-1].Round(time.Millisecond))
	}
	t.Logf("samples of B's tree: %d (%d void); %d distinct checkpoints seen", len(samples), smp.void, len(seen))
	t.Logf("checkpoints: B at %d (%d applied by the record's count), %d held at A (read in %s); shipped %d bytes, %d fallbacks",
		last.Applied, last.Checkpoints, len(ckpts), readTook.Round(time.Millisecond), last.ShippedBytes, last.Fallbacks)
	t.Logf("catena mirror status --to B:\n%s", status)
	if smp.lastErr != "" {
		t.Logf("last void sample: %s", smp.lastErr)
	}
	// Enough of everything for the run to mean something.
	minSamples := max(5, int(dur/(3*time.Second)))
	if len(samples) < minSamples {
		t.Fatalf("%d samples of B's tree: want at least %d", len(samples), minSamples)
	}
	minSeen := max(3, int(dur/(10*time.Second)))
	if len(seen) < minSeen {
		t.Fatalf("the samples saw %d distinct checkpoints: want at least %d", len(seen), minSeen)
	}
	for _, k := range faultKinds {
		if faults[k] == 0 {
			t.Fatalf("no %q fault in %d steps", k, steps)
		}
	}
	for _, k := range []string{"create", "rename", "remove"} {
		if w.ops[k] == 0 {
			t.Fatalf("the tree writer made no %s in %s", k, writerRan.Round(time.Second))
		}
	}
}
