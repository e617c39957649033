package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/mirror"
	"github.com/catena-io/catena/internal/proctest"
)

// treeDir is the directory tree the tree tests mirror.
const treeDir = "/data/proj"

// node is what a tree's entry must agree on at A and B.
type node struct {
	typ    client.NodeType
	mode   uint32
	size   int64
	target string
	sum    [sha256.Size]byte
	mtime  int64 // files only
}

// readTree reads the tree below the directory of inode root, by inode
// (a reader that resolved the root once: an exchange at B moves the
// tree it reads whole). An error voids the read.
func readTree(ctx context.Context, c *client.Client, root uint64) (map[string]node, error) {
	out := map[string]node{}
	var walk func(ino uint64, p string) error
	walk = func(ino uint64, p string) error {
		ents, err := c.ReadDirInode(ctx, ino)
		if err != nil {
			return err
		}
		for _, e := range ents {
			q := strings.TrimPrefix(p+"/"+e.Name, "/")
			n := node{typ: e.Attr.Type, mode: e.Attr.Mode & 0o7777}
			switch e.Attr.Type {
			case client.TypeDir:
				if err := walk(e.Attr.Ino, q); err != nil {
					return err
				}
			case client.TypeSymlink:
				n.mode = 0
				if n.target, err = c.Readlink(ctx, e.Attr.Ino); err != nil {
					return err
				}
			case client.TypeFile:
				n.size, n.mtime = e.Attr.Size, e.Attr.Mtime.UnixNano()
				f, err := c.OpenInode(ctx, e.Attr.Ino, q)
				if err != nil {
					return err
				}
				buf := make([]byte, e.Attr.Size)
				_, err = f.ReadAtContext(ctx, buf, 0)
				f.Close()
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				n.sum = sha256.Sum256(buf)
			}
			out[q] = n
		}
		return nil
	}
	return out, walk(root, "")
}

// readTreeAt reads the tree at path p, void (an error) when p named
// another inode after the read than before: an activation at B
// exchanges the tree at p with the stage, and the old tree is then
// emptied, which a read of it would see part of.
func readTreeAt(ctx context.Context, c *client.Client, p string) (map[string]node, error) {
	fi, err := c.Stat(ctx, p)
	if err != nil {
		return nil, err
	}
	t, err := readTree(ctx, c, fi.Inode)
	if err != nil {
		return nil, err
	}
	if after, err := c.Stat(ctx, p); err != nil || after.Inode != fi.Inode {
		return nil, fmt.Errorf("%s: an activation during the read (%v)", p, err)
	}
	return t, nil
}

// readTreeStable reads the tree at p again until a read is not voided.
func readTreeStable(t *testing.T, c *client.Client, p string) map[string]node {
	t.Helper()
	var tr map[string]node
	clustertest.Eventually(t, waitLong, func() (err error) {
		tr, err = readTreeAt(t.Context(), c, p)
		return err
	})
	return tr
}

// treeWriter changes the tree at A at random (files created, written,
// extended, truncated, renamed, removed; directories made, renamed,
// removed; symlinks; chmods) until stopped.
type treeWriter struct {
	stop, done chan struct{}
	ops        map[string]int
	err        error
}

func startTreeWriter(t *testing.T, c *client.Client, seed uint64) *treeWriter {
	t.Helper()
	w := &treeWriter{stop: make(chan struct{}), done: make(chan struct{}), ops: map[string]int{}}
	rng := rand.New(rand.NewPCG(seed, 13))
	ctx := context.Background()
	names := []string{"a", "b", "c", "d", "e"}
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// list returns the tree's regular files and directories.
	list := func() (files, dirs []string, err error) {
		dirs = []string{treeDir}
		for i := 0; i < len(dirs); i++ {
			fi, err := c.Stat(ctx, dirs[i])
			if err != nil {
				return nil, nil, err
			}
			ents, err := c.ReadDirInode(ctx, fi.Inode)
			if err != nil {
				return nil, nil, err
			}
			for _, e := range ents {
				switch p := path.Join(dirs[i], e.Name); e.Attr.Type {
				case client.TypeDir:
					dirs = append(dirs, p)
				case client.TypeFile:
					files = append(files, p)
				}
			}
		}
		return files, dirs, nil
	}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	step := func() (string, error) {
		files, dirs, err := list()
		if err != nil {
			return "", err
		}
		fresh := path.Join(pick(dirs), pick(names)+fmt.Sprint(rng.IntN(50)))
		if _, err := c.Stat(ctx, fresh); err == nil {
			return "", nil // taken: another time
		}
		r := rng.IntN(20)
		if len(files) == 0 && r >= 8 {
			r = 0
		}
		switch {
		case r < 6:
			f, err := c.Create(ctx, fresh, client.CreateOptions{ChunkSize: 1 << 20, Mode: 0o640})
			if err != nil {
				return "", err
			}
			_, err = f.WriteAt(data(rng.IntN(300<<10)), int64(rng.IntN(2))*(1<<20))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return "create", err
		case r < 8:
			return "mkdir", c.Mkdir(ctx, fresh, 0o750)
		case r < 11:
			f, err := c.Open(ctx, pick(files))
			if err != nil {
				return "", err
			}
			_, err = f.WriteAt(data(1+rng.IntN(8<<10)), int64(rng.IntN(1300<<10)))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return "write", err
		case r < 12:
			f, err := c.Open(ctx, pick(files))
			if err != nil {
				return "", err
			}
			err = f.Truncate(ctx, int64(rng.IntN(200<<10)))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return "truncate", err
		case r < 15:
			src := pick(files)
			if rng.IntN(3) == 0 && len(dirs) > 1 {
				src = pick(dirs[1:])
				if strings.HasPrefix(fresh, src+"/") {
					return "", nil
				}
			}
			return "rename", c.Rename(ctx, src, fresh)
		case r < 17:
			return "remove", c.Remove(ctx, pick(files))
		case r < 18 && len(dirs) > 1:
			return "rmdir", c.RemoveAll(ctx, pick(dirs[1:]))
		case r < 19:
			pd, err := c.Stat(ctx, path.Dir(fresh))
			if err != nil {
				return "", err
			}
			_, err = c.SymlinkAt(ctx, pd.Inode, path.Base(fresh), "../"+pick(names), 0, 0)
			return "symlink", err
		default:
			fi, err := c.Stat(ctx, pick(files))
			if err != nil {
				return "", err
			}
			mode := uint32(0o600 + rng.IntN(0o100))
			_, err = c.SetAttr(ctx, fi.Inode, client.SetAttrIn{Mode: &mode})
			return "chmod", err
		}
	}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			kind, err := step()
			if err != nil {
				w.err = fmt.Errorf("%s: %w", kind, err)
				return
			}
			if kind != "" {
				w.ops[kind]++
			}
		}
	}()
	return w
}

func (w *treeWriter) halt(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatalf("tree writer: %v", w.err)
	}
}

// treeSampler reads B's tree over and over and keeps the reads that did
// not meet an activation (readTreeAt).
type treeSampler struct {
	stop, done chan struct{}
	mu         sync.Mutex
	samples    []map[string]node
	voided     int
}

func startTreeSampler(c *client.Client) *treeSampler {
	s := &treeSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			t, err := readTreeAt(context.Background(), c, treeDir)
			s.mu.Lock()
			if err != nil {
				s.voided++
			} else {
				s.samples = append(s.samples, t)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *treeSampler) halt() ([]map[string]node, int) {
	close(s.stop)
	<-s.done
	return s.samples, s.voided
}

// treeCheckpoints reads every checkpoint of the tree A holds.
func treeCheckpoints(t *testing.T, c *client.Client) map[uint64]map[string]node {
	t.Helper()
	snaps, err := c.Snapshots(t.Context(), treeDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]map[string]node{}
	for _, s := range snaps {
		id, ok := mirror.ParseCheckpoint(s.Name)
		if !ok {
			continue
		}
		tr, err := readTreeAt(t.Context(), c, path.Join(treeDir, client.SnapshotDir, s.Name))
		if err != nil {
			t.Fatalf("checkpoint %d at A: %v", id, err)
		}
		out[id] = tr
	}
	return out
}

// diffTrees describes how b differs from a ("" when equal).
func diffTrees(a, b map[string]node) string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(a)) {
		if y, ok := b[p]; !ok {
			out = append(out, "only in the first: "+p)
		} else if y != a[p] {
			out = append(out, fmt.Sprintf("%s: %+v vs %+v", p, a[p], y))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "only in the second: "+p)
		}
	}
	sort.Strings(out)
	if len(out) > 8 {
		out = append(out[:8], fmt.Sprintf("... %d differences", len(out)))
	}
	return strings.Join(out, "\n")
}

// runTreeMirror runs an in-process mirror of the tree until ctx ends.
func runTreeMirror(t *testing.T, a, b *cluster.Cluster, applied chan<- mirror.Record) (stop func() error) {
	t.Helper()
	m, err := mirror.New(mirror.Config{Volume: treeDir, From: endpoint(a), To: endpoint(b),
		Interval: 50 * time.Millisecond, KeepSource: true, Logger: clustertest.Logger(),
		OnApplied: func(r mirror.Record) {
			select {
			case applied <- r:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return func() error {
		cancel()
		err := <-done
		m.Close()
		return err
	}
}

// TestMirrorTree: a directory tree changed at random at A (creates,
// writes, truncates, renames of files and directories, removes,
// symlinks, chmods) while the mirror runs, is stopped and restarted in
// the middle of checkpoints, and B loses a chunkserver and then its
// master in the middle of one; every read of B's tree equals exactly
// one of A's checkpoints; once the changes stop B equals A. Then the
// costs: a rename ships nothing, a 4 KiB write into a large file ships
// one 64 KiB block.
func TestMirrorTree(t *testing.T) {
	t.Parallel()
	a := clustertest.New(t, cluster.Config{})
	// Four chunkservers at B: with one dead, new chunks there still find
	// three (TestMirrorTargetFaults).
	b := clustertest.New(t, cluster.Config{Chunkservers: 4})
	ca, cb := clustertest.Client(t, a), clustertest.Client(t, b)
	ctx := t.Context()
	if err := ca.MkdirAll(ctx, treeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	applied := make(chan mirror.Record, 1024)
	stop := runTreeMirror(t, a, b, applied)
	awaitApplied(t, applied, 1)
	seed := uint64(time.Now().UnixNano())
	t.Logf("tree writer seed %d", seed)
	w := startTreeWriter(t, ca, seed)
	s := startTreeSampler(cb)
	// Stopped (its context cancelled) in the middle of applying a
	// checkpoint's operations to the stage, between the snapshot at A
	// and the stage, and right after a checkpoint; restarted each time.
	stages := []struct {
		what string
		at   func(r *mirror.Record) bool
	}{
		{"operations half applied", func(r *mirror.Record) bool { return r.Stage != 0 && r.Done >= 0 }},
		{"a checkpoint taken, not staged", func(r *mirror.Record) bool { return r.Pending != 0 && r.Stage == 0 }},
		{"a checkpoint applied", func(r *mirror.Record) bool { return r.Pending == 0 }},
	}
	for _, st := range stages {
		awaitApplied(t, applied, 2)
		clustertest.Eventually(t, waitLong, func() error {
			if r, err := mirror.ReadRecord(ctx, cb, treeDir); err != nil || !st.at(r) {
				return fmt.Errorf("no record with %s yet (%v)", st.what, err)
			}
			return nil
		})
		if err := stop(); err != nil {
			t.Fatalf("mirror run: %v", err)
		}
		stop = runTreeMirror(t, a, b, applied)
	}
	// B's chunkserver, then B's master, killed in the middle of applying
	// a checkpoint, and restarted.
	staging := func() {
		t.Helper()
		clustertest.Eventually(t, waitLong, func() error {
			if r, err := mirror.ReadRecord(ctx, cb, treeDir); err != nil || r.Stage == 0 || r.Done < 0 {
				return fmt.Errorf("no checkpoint half applied yet (%v)", err)
			}
			return nil
		})
	}
	staging()
	if err := b.Kill(1); err != nil {
		t.Fatal(err)
	}
	awaitApplied(t, applied, 2)
	if err := b.Restart(ctx, 1); err != nil {
		t.Fatal(err)
	}
	staging()
	if err := b.KillMaster(0); err != nil {
		t.Fatal(err)
	}
	if err := b.RestartMaster(ctx, 0); err != nil {
		t.Fatal(err)
	}
	awaitApplied(t, applied, 3)
	w.halt(t)
	awaitApplied(t, applied, 2)
	samples, voided := s.halt()

	rec, err := mirror.ReadRecord(ctx, cb, treeDir)
	if err != nil {
		t.Fatal(err)
	}
	ckpts := treeCheckpoints(t, ca)
	for id := uint64(1); id <= rec.Applied; id++ {
		if ckpts[id] == nil {
			t.Fatalf("checkpoint %d missing at A (held: %v)", id, slices.Sorted(maps.Keys(ckpts)))
		}
	}
	seen := map[uint64]int{}
	for i, smp := range samples {
		match := []uint64{}
		for id, tr := range ckpts {
			if diffTrees(tr, smp) == "" {
				match = append(match, id)
			}
		}
		if len(match) == 0 {
			best, bestDiff := uint64(0), ""
			for id, tr := range ckpts {
				d := diffTrees(tr, smp)
				if best == 0 || strings.Count(d, "only in") < strings.Count(bestDiff, "only in") ||
					strings.Count(d, "only in") == strings.Count(bestDiff, "only in") && len(d) < len(bestDiff) {
					best, bestDiff = id, d
				}
			}
			t.Fatalf("sample %d of B's tree (%d entries) equals none of A's %d checkpoints; nearest %d (%d entries):\n%s",
				i, len(smp), len(ckpts), best, len(ckpts[best]), bestDiff)
		}
		seen[slices.Min(match)]++
	}
	final, live := readTreeStable(t, cb, treeDir), readTreeStable(t, ca, treeDir)
	if d := diffTrees(live, final); d != "" {
		t.Fatalf("B's tree after the changes stopped differs from A's:\n%s", d)
	}
	t.Logf("writer ops %v; %d samples of B (%d voided by an activation) saw %d distinct checkpoints of %d; %d entries at the end",
		w.ops, len(samples), voided, len(seen), rec.Applied, len(final))
	if len(samples) < 10 || len(seen) < 3 {
		t.Fatalf("too few samples (%d) or checkpoints seen (%d) to say anything", len(samples), len(seen))
	}

	// The costs. A 3 MiB file, mirrored; renamed with its directory: no
	// byte ships; then a 4 KiB write into it: one 64 KiB block.
	// shippedFor makes a change and returns the bytes the checkpoints
	// shipped from before it (nothing else changes) to the first one
	// taken after it.
	shippedFor := func(change func()) int64 {
		t.Helper()
		for len(applied) > 0 {
			<-applied
		}
		change()
		made := time.Now()
		var n int64
		for {
			r := awaitApplied(t, applied, 1)
			n += r.LastShipped
			if r.AppliedAt > made.UnixNano() {
				return n
			}
		}
	}
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	n := shippedFor(func() {
		if err := ca.Mkdir(ctx, treeDir+"/big", 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := ca.Create(ctx, treeDir+"/big/f", client.CreateOptions{ChunkSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(big, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	})
	if n < int64(len(big)) {
		t.Fatalf("a new 3 MiB file shipped %d bytes", n)
	}
	if n := shippedFor(func() {
		if err := ca.Rename(ctx, treeDir+"/big", treeDir+"/moved"); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("renaming a directory with a 3 MiB file shipped %d bytes, want 0", n)
	}
	if n := shippedFor(func() {
		f, err := ca.Open(ctx, treeDir+"/moved/f")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, 4096), 1<<20+8192); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}); n != mirror.BlockSize {
		t.Fatalf("a 4 KiB write into a 3 MiB file shipped %d bytes, want one %d-byte block", n, mirror.BlockSize)
	}
	if err := stop(); err != nil {
		t.Fatalf("mirror run: %v", err)
	}
	final, live = readTreeStable(t, cb, treeDir), readTreeStable(t, ca, treeDir)
	if d := diffTrees(live, final); d != "" {
		t.Fatalf("B's tree differs from A's at the end:\n%s", d)
	}
}

// TestMirrorTreeProcess: catena mirror run of a directory tree as a real
// process, SIGKILLed while it applies a checkpoint's operations to the
// stage and restarted (it resumes the stage); the trees agree once the
// changes stop; status at both sides; promote; a run onto the promoted
// tree is refused; then the failback: B and A both change the tree,
// mirror run --resync from B to A discards A's changes and ships only
// B's.
func TestMirrorTreeProcess(t *testing.T) {
	t.Parallel()
	a := clustertest.New(t, cluster.Config{})
	b := clustertest.New(t, cluster.Config{})
	ca, cb := clustertest.Client(t, a), clustertest.Client(t, b)
	ctx := t.Context()
	if err := ca.MkdirAll(ctx, treeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	start := func() *proctest.Proc {
		return proctest.Spawn(t, catenaBin, "mirror", proctest.Options{},
			"mirror", "run", "--from", a.MasterAddr(), "--from-tls-dir", a.TLSDir(),
			"--to", b.MasterAddr(), "--to-tls-dir", b.TLSDir(), "--interval", "100ms",
			"--log-level", "info", treeDir)
	}
	w := startTreeWriter(t, ca, 7)
	p := start()
	awaitTree := func(what string, cond func(r *mirror.Record) bool) *mirror.Record {
		t.Helper()
		var r *mirror.Record
		clustertest.Eventually(t, waitLong, func() (err error) {
			select {
			case <-p.Done():
				t.Fatalf("mirror process exited (%v) while awaiting %s; stderr:\n%s", p.Err(), what, p.Stderr())
			default:
			}
			if r, err = mirror.ReadRecord(ctx, cb, treeDir); err == nil && !cond(r) {
				err = fmt.Errorf("no %s yet", what)
			}
			return err
		})
		return r
	}
	awaitTree("a first checkpoint", func(r *mirror.Record) bool { return r.Applied >= 1 })
	r := awaitTree("a checkpoint half applied", func(r *mirror.Record) bool { return r.Stage != 0 && r.Done >= 0 })
	p.Kill()
	t.Logf("killed while applying checkpoint %d (operation %d done, B at %d)", r.Pending, r.Done, r.Applied)
	before := r.Applied
	p = start()
	r = awaitTree("a checkpoint after the restart", func(r *mirror.Record) bool { return r.Applied > before })
	w.halt(t)
	writeFile := func(c *client.Client, p string, off int64, data []byte) {
		t.Helper()
		f, err := c.Open(ctx, p)
		if errors.Is(err, client.ErrNotFound) {
			f, err = c.Create(ctx, p, client.CreateOptions{ChunkSize: 1 << 20})
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(ca, treeDir+"/big", 0, bytes.Repeat([]byte("big file "), 2<<20/9))
	before = r.Applied
	awaitTree("two checkpoints after the changes", func(r *mirror.Record) bool { return r.Applied >= before+2 })
	out, err := catena(t, "mirror", "sync", "--from", a.MasterAddr(), "--from-tls-dir", a.TLSDir(),
		"--to", b.MasterAddr(), "--to-tls-dir", b.TLSDir(), treeDir)
	if err != nil || !strings.Contains(out, "directory "+treeDir+" at checkpoint") {
		t.Fatalf("mirror sync = %q, %v", out, err)
	}
	p.Stop(t, time.Minute)
	if d := diffTrees(readTreeStable(t, ca, treeDir), readTreeStable(t, cb, treeDir)); d != "" {
		t.Fatalf("B's tree differs from A's after the changes stopped:\n%s", d)
	}
	last, err := mirror.ReadRecord(ctx, cb, treeDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("writer ops %v; %d checkpoints, %d bytes shipped; resumed the stage: %v", w.ops, last.Applied, last.ShippedBytes,
		strings.Contains(p.Stderr(), "resuming the staged checkpoint"))

	out, err = catena(t, "mirror", "status", "--to", b.MasterAddr(), "--cluster-tls-dir", b.TLSDir(), "--json", treeDir)
	var st struct {
		Volume  string `json:"volume"`
		Applied uint64 `json:"applied"`
		Side    string `json:"side"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Applied != last.Applied || st.Side != "target" || st.Volume != treeDir {
		t.Fatalf("mirror status --to --json = %s (%v); want applied %d", out, err, last.Applied)
	}
	out, err = catena(t, "mirror", "status", "--from", a.MasterAddr(), "--cluster-tls-dir", a.TLSDir(), treeDir)
	if err != nil || !strings.Contains(out, "directory "+treeDir) || !strings.Contains(out, fmt.Sprintf("checkpoint %d", last.Applied)) {
		t.Fatalf("mirror status --from = %q, %v", out, err)
	}
	out, err = catena(t, "mirror", "promote", "--at", b.MasterAddr(), "--cluster-tls-dir", b.TLSDir(), treeDir)
	if err != nil || !strings.Contains(out, "promoted at checkpoint") {
		t.Fatalf("mirror promote = %q, %v", out, err)
	}
	if _, err := cb.Stat(ctx, "/.catena-mirror/+"+strings.ReplaceAll(treeDir, "/", "%2F")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("the stage after the promote: %v", err)
	}
	if _, err := catena(t, "mirror", "run", "--from", a.MasterAddr(), "--from-tls-dir", a.TLSDir(),
		"--to", b.MasterAddr(), "--to-tls-dir", b.TLSDir(), treeDir); err == nil || !strings.Contains(err.Error(), "promoted") {
		t.Fatalf("mirror run onto a promoted tree: %v; want a refusal naming the promote", err)
	}
	if _, err := catena(t, "mirror", "run", "--from", b.MasterAddr(), "--from-tls-dir", b.TLSDir(),
		"--to", a.MasterAddr(), "--to-tls-dir", a.TLSDir(), treeDir); err == nil || !strings.Contains(err.Error(), "--resync") {
		t.Fatalf("mirror run onto the old source without --resync: %v; want a refusal naming --resync", err)
	}

	// Failback. B changes the tree after the promote (4 KiB into the big
	// file, a new file of 1,000 bytes); A, back, has changes of its own
	// after its last checkpoint, lost with the site as far as B knows.
	writeFile(cb, treeDir+"/big", 1<<20, bytes.Repeat([]byte("B"), 4096))
	writeFile(cb, treeDir+"/b-new", 0, bytes.Repeat([]byte("n"), 1000))
	writeFile(ca, treeDir+"/a-lost", 0, []byte("written at A after its last checkpoint"))
	writeFile(ca, treeDir+"/big", 0, []byte("lost too"))
	back := proctest.Spawn(t, catenaBin, "mirror", proctest.Options{},
		"mirror", "run", "--resync", "--from", b.MasterAddr(), "--from-tls-dir", b.TLSDir(),
		"--to", a.MasterAddr(), "--to-tls-dir", a.TLSDir(), "--interval", "100ms", "--log-level", "info", treeDir)
	var ar *mirror.Record
	clustertest.Eventually(t, waitLong, func() (err error) {
		select {
		case <-back.Done():
			t.Fatalf("the failback mirror exited (%v): %s", back.Err(), back.Stderr())
		default:
		}
		if ar, err = mirror.ReadRecord(ctx, ca, treeDir); err == nil && (ar.Side != mirror.SideTarget || ar.Applied <= last.Applied+1) {
			err = fmt.Errorf("A's record: %+v", ar)
		}
		return err
	})
	back.Stop(t, time.Minute)
	if d := diffTrees(readTreeStable(t, cb, treeDir), readTreeStable(t, ca, treeDir)); d != "" {
		t.Fatalf("A's tree after the failback differs from B's:\n%s", d)
	}
	if _, err := ca.Stat(ctx, treeDir+"/a-lost"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("A's change after its last checkpoint survived the failback: %v", err)
	}
	ar, err = mirror.ReadRecord(ctx, ca, treeDir)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(mirror.BlockSize + 1000); ar.ShippedBytes != want {
		t.Fatalf("the failback shipped %d bytes, want %d (one 64 KiB block and the new file)", ar.ShippedBytes, want)
	}
	t.Logf("failback: A at checkpoint %d, %d bytes shipped", ar.Applied, ar.ShippedBytes)
}

// TestMirrorTreeLostBase: A's snapshot of the checkpoint B is at is
// removed by hand while the mirror is stopped; the next checkpoint is
// staged from nothing (every file shipped) and B ends equal to A.
func TestMirrorTreeLostBase(t *testing.T) {
	t.Parallel()
	a := clustertest.New(t, cluster.Config{})
	b := clustertest.New(t, cluster.Config{})
	ca, cb := clustertest.Client(t, a), clustertest.Client(t, b)
	ctx := t.Context()
	if err := ca.MkdirAll(ctx, treeDir+"/d", 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(p string, n int, seed byte) {
		t.Helper()
		f, err := ca.Create(ctx, p, client.CreateOptions{ChunkSize: 1 << 20, Overwrite: true})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i) ^ seed
		}
		if _, err := f.WriteAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	put(treeDir+"/d/x", 200<<10, 1)
	put(treeDir+"/y", 10, 2)
	applied := make(chan mirror.Record, 1024)
	stop := runTreeMirror(t, a, b, applied)
	awaitApplied(t, applied, 2)
	if err := stop(); err != nil {
		t.Fatalf("mirror run: %v", err)
	}
	r, err := mirror.ReadRecord(ctx, cb, treeDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.RemoveSnapshot(ctx, treeDir, mirror.CheckpointName(r.Applied)); err != nil {
		t.Fatal(err)
	}
	put(treeDir+"/d/x", 100<<10, 3)
	if err := ca.Rename(ctx, treeDir+"/y", treeDir+"/d/z"); err != nil {
		t.Fatal(err)
	}
	stop = runTreeMirror(t, a, b, applied)
	for len(applied) > 0 {
		<-applied
	}
	last := awaitApplied(t, applied, 1)
	if err := stop(); err != nil {
		t.Fatalf("mirror run: %v", err)
	}
	if d := diffTrees(readTreeStable(t, ca, treeDir), readTreeStable(t, cb, treeDir)); d != "" {
		t.Fatalf("B's tree after a checkpoint without its base differs from A's:\n%s", d)
	}
	t.Logf("checkpoint %d without its base shipped %d bytes", last.Applied, last.LastShipped)
}

// TestSyncFlushTree: a tree mirrored with SyncFlush (and an hour's
// interval: every checkpoint but the first is a Sync's); a file of the
// tree written and synced through a client with the flush barrier is at
// B, with those bytes, the moment Sync returns; a file outside any
// mirrored tree syncs without waiting for one.
func TestSyncFlushTree(t *testing.T) {
	t.Parallel()
	a := clustertest.New(t, cluster.Config{})
	b := clustertest.New(t, cluster.Config{})
	ca, cb := clustertest.Client(t, a), clustertest.Client(t, b)
	ctx := t.Context()
	for _, d := range []string{treeDir + "/d", "/other"} {
		if err := ca.MkdirAll(ctx, d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	applied := make(chan mirror.Record, 64)
	m, err := mirror.New(mirror.Config{Volume: treeDir, From: endpoint(a), To: endpoint(b), Interval: time.Hour, SyncFlush: true,
		Logger: clustertest.Logger(), OnApplied: func(r mirror.Record) {
			select {
			case applied <- r:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(rctx) }()
	defer func() { cancel(); <-done }()
	first := awaitApplied(t, applied, 1)
	ca.SetFlushBarrier(mirror.NewFlushBarrier(ca, nil).Wait)
	defer ca.SetFlushBarrier(nil)
	for i := range 4 {
		p := fmt.Sprintf("%s/d/f%d", treeDir, i)
		data := bytes.Repeat([]byte{byte('a' + i)}, 70000+i)
		f, err := ca.Create(ctx, p, client.CreateOptions{ChunkSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatalf("sync %s: %v", p, err)
		}
		f.Close()
		// At B now, not eventually.
		g, err := cb.Open(ctx, p)
		if err != nil {
			t.Fatalf("%s at B right after its Sync: %v", p, err)
		}
		got := make([]byte, len(data))
		_, err = g.ReadAtContext(ctx, got, 0)
		g.Close()
		if (err != nil && !errors.Is(err, io.EOF)) || !bytes.Equal(got, data) || g.Size() != int64(len(data)) {
			t.Fatalf("%s at B right after its Sync: %d bytes, %v", p, g.Size(), err)
		}
	}
	f, err := ca.Create(ctx, "/other/g", client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("not mirrored"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync of a file outside any mirrored tree: %v", err)
	}
	f.Close()
	r, err := mirror.ReadRecord(ctx, cb, treeDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("4 syncs: B went from checkpoint %d to %d", first.Applied, r.Applied)
	if r.Applied < first.Applied+4 {
		t.Fatalf("B at checkpoint %d after 4 syncs from %d: each sync's checkpoint should have been taken", r.Applied, first.Applied)
	}
}
