package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

const (
	mib       = 1 << 20
	kib       = 1 << 10
	chunkSize = 1 * mib
)

// fastConfig makes garbage collection and liveness quick to observe.
func fastConfig() cluster.Config {
	return cluster.Config{HeartbeatInterval: 100 * time.Millisecond}
}

// newRand returns a seeded source and logs the seed; CATENA_SEED=<seed>
// replays a failed run.
func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CATENA_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CATENA_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with CATENA_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func create(t *testing.T, cl *client.Client, p string) *client.File {
	t.Helper()
	f, err := cl.Create(t.Context(), p, client.CreateOptions{ChunkSize: chunkSize})
	if err != nil {
		t.Fatalf("create %s: %v", p, err)
	}
	return f
}

func writeAt(t *testing.T, f *client.File, p []byte, off int64) {
	t.Helper()
	n, err := f.WriteAt(p, off)
	if err != nil || n != len(p) {
		t.Fatalf("write %d bytes at %d: n=%d err=%v", len(p), off, n, err)
	}
}

// readAll opens p and reads its whole content, checking Stat and EOF.
func readAll(t *testing.T, cl *client.Client, p string) []byte {
	t.Helper()
	f, err := cl.Open(t.Context(), p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer f.Close()
	size := f.Size()
	got := make([]byte, size)
	n, err := f.ReadAt(got, 0)
	if n != int(size) || (err != nil && err != io.EOF) {
		t.Fatalf("read %s: n=%d of %d, err=%v", p, n, size, err)
	}
	// One byte past the end is EOF.
	if n, err := f.ReadAt(make([]byte, 1), size); n != 0 || err != io.EOF {
		t.Fatalf("read %s past the end: n=%d err=%v, want 0, EOF", p, n, err)
	}
	return got
}

func assertContent(t *testing.T, cl *client.Client, p string, want []byte) {
	t.Helper()
	st, err := cl.Stat(t.Context(), p)
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	if st.Size != int64(len(want)) {
		t.Fatalf("stat %s: size %d, want %d", p, st.Size, len(want))
	}
	got := readAll(t, cl, p)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs from reference at offset %d (len %d)", p, firstDiff(got, want), len(want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// writeRandom writes random pieces into f and ref at random offsets in
// [0, len(ref)), never touching [holeFrom, holeTo), and finally the last
// byte, so the file's size is len(ref).
func writeRandom(t *testing.T, r *rand.Rand, f *client.File, ref []byte, holeFrom, holeTo int, writes int) {
	t.Helper()
	size := len(ref)
	for range writes {
		off := r.IntN(size)
		n := 1 + r.IntN(min(size-off, 200*kib))
		if off < holeTo && off+n > holeFrom { // clip to stay out of the hole
			if off >= holeFrom {
				continue
			}
			n = holeFrom - off
		}
		p := randBytes(r, n)
		writeAt(t, f, p, int64(off))
		copy(ref[off:], p)
	}
	last := randBytes(r, 1)
	writeAt(t, f, last, int64(size-1))
	ref[size-1] = last[0]
}

func TestFileSizes(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	cl := clustertest.Client(t, c)
	r := newRand(t)
	ctx := t.Context()

	// 0 bytes: created, never written.
	f := create(t, cl, "/empty")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/empty", nil)

	// 1 byte.
	f = create(t, cl, "/one")
	writeAt(t, f, []byte{0x5a}, 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/one", []byte{0x5a})

	// 64 KiB - 1: one block but its last byte, written in random pieces.
	ref := make([]byte, 64*kib-1)
	f = create(t, cl, "/block")
	writeRandom(t, r, f, ref, 0, 0, 20)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/block", ref)

	// 4.5 chunks with a hole over [1.2 MiB, 3.3 MiB): chunk 2 is never
	// written, so it must stay unallocated and read as zeros.
	size, holeFrom, holeTo := 4*mib+mib/2, mib+mib/5, 3*mib+3*mib/10
	ref = make([]byte, size)
	f = create(t, cl, "/big")
	writeRandom(t, r, f, ref, holeFrom, holeTo, 60)
	// Large writes crossing chunk boundaries, outside the hole.
	for _, off := range []int{mib - 100*kib, 4*mib - 1} {
		p := randBytes(r, 200*kib)
		if off+len(p) > size {
			p = p[:size-off]
		}
		writeAt(t, f, p, int64(off))
		copy(ref[off:], p)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// The writer's own view before Close.
	got := make([]byte, size)
	if n, err := f.ReadAt(got, 0); n != size || (err != nil && err != io.EOF) {
		t.Fatalf("read back through the writer: n=%d err=%v", n, err)
	}
	if !bytes.Equal(got, ref) {
		t.Fatalf("writer's read differs at %d", firstDiff(got, ref))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ref[holeFrom:holeTo], make([]byte, holeTo-holeFrom)) {
		t.Fatal("test bug: hole written")
	}
	assertContent(t, cl, "/big", ref)

	info, chunks, err := cl.StatChunks(ctx, "/big")
	if err != nil {
		t.Fatal(err)
	}
	if info.ChunkSize != chunkSize {
		t.Fatalf("chunk size %d, want %d", info.ChunkSize, chunkSize)
	}
	var idx []int64
	for _, ch := range chunks {
		idx = append(idx, ch.Index)
		if len(ch.Chain) != 3 {
			t.Fatalf("chunk %d: chain of %d, want 3", ch.Index, len(ch.Chain))
		}
		ids := map[uint64]bool{}
		for _, s := range ch.Chain {
			ids[s.ID] = true
		}
		if len(ids) != 3 {
			t.Fatalf("chunk %d: chain %v has repeated servers", ch.Index, ch.Chain)
		}
	}
	if want := []int64{0, 1, 3, 4}; !slices.Equal(idx, want) {
		t.Fatalf("allocated chunk indexes %v, want %v (chunk 2 is a hole)", idx, want)
	}
	// Explicit: the replicas of every chunk are byte-identical now (the
	// cleanup checks again).
	if err := c.CheckReplicas(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	cl := clustertest.Client(t, c)
	r := newRand(t)
	f := create(t, cl, "/shared")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	const (
		writers    = 8
		rounds     = 12
		ownSize    = 48 * kib // each writer's disjoint region
		block      = 16 * kib // unit of the overlapping region
		sharedBase = 512 * kib
		shared     = 4 // blocks in the overlapping region
	)
	type write struct {
		block int
		sum   [32]byte
	}
	seeds := make([]uint64, writers)
	for i := range seeds {
		seeds[i] = r.Uint64()
	}
	lastOwn := make([][]byte, writers)
	sharedWrites := make([][]write, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			wr := rand.New(rand.NewPCG(seeds[w], 1))
			f, err := cl.Open(context.Background(), "/shared")
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			for range rounds {
				// Disjoint: somewhere in this writer's own region.
				p := randBytes(wr, ownSize)
				if _, err := f.WriteAt(p, int64(w*ownSize)); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				lastOwn[w] = p
				// Overlapping: a whole block of the shared region.
				b := wr.IntN(shared)
				p = randBytes(wr, block)
				if _, err := f.WriteAt(p, int64(sharedBase+b*block)); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				sharedWrites[w] = append(sharedWrites[w], write{b, sha256.Sum256(p)})
			}
			if err := f.Close(); err != nil {
				errs <- fmt.Errorf("writer %d close: %w", w, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	got := readAll(t, cl, "/shared")
	if want := sharedBase + shared*block; len(got) != want {
		t.Fatalf("size %d, want %d", len(got), want)
	}
	for w := range writers {
		if g := got[w*ownSize : (w+1)*ownSize]; !bytes.Equal(g, lastOwn[w]) {
			t.Errorf("writer %d: its region does not hold its last acknowledged write (differs at %d)", w, firstDiff(g, lastOwn[w]))
		}
	}
	written := make([]map[[32]byte]bool, shared)
	for b := range written {
		written[b] = map[[32]byte]bool{}
	}
	for _, ws := range sharedWrites {
		for _, x := range ws {
			written[x.block][x.sum] = true
		}
	}
	for b := range shared {
		g := got[sharedBase+b*block : sharedBase+(b+1)*block]
		if len(written[b]) == 0 {
			if !bytes.Equal(g, make([]byte, block)) {
				t.Errorf("shared block %d: never written but not zero", b)
			}
			continue
		}
		if !written[b][sha256.Sum256(g)] {
			t.Errorf("shared block %d: final bytes equal none of the %d writes to it (torn or lost write)", b, len(written[b]))
		}
	}
	if err := c.CheckReplicas(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestNamespace(t *testing.T) {
	c := clustertest.New(t, fastConfig())
	cl := clustertest.Client(t, c)
	r := newRand(t)
	ctx := t.Context()

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	names := func(dir string) []string {
		t.Helper()
		ents, err := cl.ReadDir(ctx, dir)
		must(err)
		var ns []string
		for _, e := range ents {
			n := e.Name
			if e.IsDir {
				n += "/"
			}
			ns = append(ns, n)
		}
		return ns
	}
	assertNames := func(dir string, want ...string) {
		t.Helper()
		if got := names(dir); !slices.Equal(got, want) {
			t.Fatalf("ls %s = %v, want %v", dir, got, want)
		}
	}

	must(cl.MkdirAll(ctx, "/a/b/c", 0o755))
	must(cl.MkdirAll(ctx, "/a/b/c", 0o755)) // mkdir -p of an existing dir is fine
	assertNames("/", "a/")
	assertNames("/a", "b/")

	data := randBytes(r, 2*mib+123) // three chunks
	f := create(t, cl, "/a/b/f1")
	writeAt(t, f, data, 0)
	must(f.Close())
	small := randBytes(r, 1000)
	f = create(t, cl, "/a/b/c/f2")
	writeAt(t, f, small, 0)
	must(f.Close())
	assertNames("/a/b", "c/", "f1")

	var handles []uint64
	for _, p := range []string{"/a/b/f1", "/a/b/c/f2"} {
		_, chunks, err := cl.StatChunks(ctx, p)
		must(err)
		for _, ch := range chunks {
			handles = append(handles, ch.Handle)
		}
	}
	if len(handles) != 4 {
		t.Fatalf("%d chunks allocated, want 4", len(handles))
	}
	// Every chunkserver holds a replica of each (3 servers, replication 3).
	for i := range c.NumChunkservers() {
		hs, err := c.ReplicaHandles(i)
		must(err)
		for _, h := range handles {
			if !slices.Contains(hs, h) {
				t.Fatalf("chunkserver %d: no replica file for chunk %d (has %v)", i, h, hs)
			}
		}
	}

	// Rename a file, then a directory.
	must(cl.Rename(ctx, "/a/b/f1", "/a/f1moved"))
	assertNames("/a", "b/", "f1moved")
	assertNames("/a/b", "c/")
	must(cl.Rename(ctx, "/a/b", "/a/d"))
	assertNames("/a", "d/", "f1moved")
	assertContent(t, cl, "/a/d/c/f2", small)
	assertContent(t, cl, "/a/f1moved", data)
	if _, err := cl.Stat(ctx, "/a/b/c/f2"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("stat of the old path: %v, want ErrNotFound", err)
	}

	// Remove a file.
	must(cl.Remove(ctx, "/a/f1moved"))
	if _, err := cl.Stat(ctx, "/a/f1moved"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("stat after remove: %v, want ErrNotFound", err)
	}
	// Removing a non-empty directory fails and removes nothing.
	if err := cl.Remove(ctx, "/a"); !errors.Is(err, client.ErrNotEmpty) {
		t.Fatalf("remove of a non-empty dir: %v, want ErrNotEmpty", err)
	}
	assertContent(t, cl, "/a/d/c/f2", small)
	// Recursive remove.
	must(cl.RemoveAll(ctx, "/a"))
	if _, err := cl.Stat(ctx, "/a"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("stat after RemoveAll: %v, want ErrNotFound", err)
	}
	assertNames("/")
	must(cl.RemoveAll(ctx, "/a")) // missing path: not an error

	// Heartbeat GC frees the replicas of the removed files on every server.
	clustertest.Eventually(t, 20*time.Second, func() error {
		for i := range c.NumChunkservers() {
			hs, err := c.ReplicaHandles(i)
			if err != nil {
				return err
			}
			if len(hs) != 0 {
				return fmt.Errorf("chunkserver %d still holds replicas %v", i, hs)
			}
		}
		return nil
	})
	clustertest.Eventually(t, 20*time.Second, func() error {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if st.Files != 0 || st.ChunksTotal != 0 {
			return fmt.Errorf("status: %d files, %d chunks, want 0", st.Files, st.ChunksTotal)
		}
		for _, cs := range st.Chunkservers {
			if cs.Replicas != 0 {
				return fmt.Errorf("chunkserver %d reports %d replicas", cs.ID, cs.Replicas)
			}
		}
		return nil
	})
}

func TestRestart(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	cl := clustertest.Client(t, c)
	r := newRand(t)
	ctx := t.Context()

	if err := cl.MkdirAll(ctx, "/d/e", 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"/d/e/small": randBytes(r, 777),
		"/d/big":     nil,
	}
	big := make([]byte, 2*mib+mib/2)
	f := create(t, cl, "/d/big")
	writeRandom(t, r, f, big, 0, 0, 30)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	files["/d/big"] = big
	f = create(t, cl, "/d/e/small")
	writeAt(t, f, files["/d/e/small"], 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ids := make([]uint64, c.NumChunkservers())
	for i := range ids {
		ids[i] = c.ChunkserverID(i)
	}
	if err := c.CheckReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// Same directory, new processes (and new ports).
	c2 := clustertest.New(t, cluster.Config{Dir: c.Dir()})
	for i := range ids {
		if got := c2.ChunkserverID(i); got != ids[i] {
			t.Fatalf("chunkserver %d: id %d after restart, was %d", i, got, ids[i])
		}
	}
	cl2 := clustertest.Client(t, c2)
	for p, want := range files {
		assertContent(t, cl2, p, want)
	}

	// And a single chunkserver restart: still readable, and writable.
	if err := c2.StopChunkserver(1); err != nil {
		t.Fatal(err)
	}
	if err := c2.RestartChunkserver(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f, err := cl2.Open(ctx, "/d/big")
	if err != nil {
		t.Fatal(err)
	}
	p := randBytes(r, 4*kib)
	writeAt(t, f, p, 100)
	copy(big[100:], p)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl2, "/d/big", big)
}

func TestTruncate(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	cl := clustertest.Client(t, c)
	r := newRand(t)
	ctx := t.Context()

	ref := randBytes(r, 2*mib+mib/2)
	f := create(t, cl, "/t")
	writeAt(t, f, ref, 0)

	// Shrink into the middle of chunk 1, then grow past the old end.
	cut := int64(mib + 300*kib + 17)
	if err := f.Truncate(ctx, cut); err != nil {
		t.Fatal(err)
	}
	if st, err := cl.Stat(ctx, "/t"); err != nil || st.Size != cut {
		t.Fatalf("stat after shrink: %+v, %v; want size %d", st, err, cut)
	}
	grown := int64(3 * mib)
	if err := f.Truncate(ctx, grown); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, grown)
	copy(want, ref[:cut])
	assertContent(t, cl, "/t", want)

	// Chunk 2 lay wholly past the cut: dropped, not just zeroed.
	_, chunks, err := cl.StatChunks(ctx, "/t")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chunks {
		if ch.Index > 1 {
			t.Fatalf("chunk %d still allocated after truncating to %d", ch.Index, cut)
		}
	}

	// Write after the grow: old bytes, zeros, new bytes.
	f, err = cl.Open(ctx, "/t")
	if err != nil {
		t.Fatal(err)
	}
	p := randBytes(r, 1000)
	writeAt(t, f, p, grown-1000)
	copy(want[grown-1000:], p)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/t", want)
}

func TestErrors(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	cl := clustertest.Client(t, c)
	ctx := t.Context()

	if _, err := cl.Open(ctx, "/missing"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("open missing: %v, want ErrNotFound", err)
	}
	if _, err := cl.Create(ctx, "/nodir/f", client.CreateOptions{}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("create in a missing dir: %v, want ErrNotFound", err)
	}
	f, err := cl.Create(ctx, "/f", client.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); !errors.Is(err, client.ErrClosed) {
		t.Errorf("second close: %v, want ErrClosed", err)
	}
	if _, err := cl.Create(ctx, "/f", client.CreateOptions{}); !errors.Is(err, client.ErrExist) {
		t.Errorf("create existing: %v, want ErrExist", err)
	}
	if err := cl.Mkdir(ctx, "/f", 0o755); !errors.Is(err, client.ErrExist) {
		t.Errorf("mkdir over a file: %v, want ErrExist", err)
	}
	if err := cl.MkdirAll(ctx, "/f/sub", 0o755); !errors.Is(err, client.ErrNotDir) && !errors.Is(err, client.ErrExist) {
		t.Errorf("mkdir -p below a file: %v, want ErrNotDir or ErrExist", err)
	}
	if _, err := cl.Create(ctx, "/f/x", client.CreateOptions{}); !errors.Is(err, client.ErrNotDir) {
		t.Errorf("create below a file: %v, want ErrNotDir", err)
	}
	if err := cl.Mkdir(ctx, "/dir", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Open(ctx, "/dir"); !errors.Is(err, client.ErrIsDir) {
		t.Errorf("open of a dir: %v, want ErrIsDir", err)
	}
	if err := cl.Rename(ctx, "/dir", "/dir/inside"); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("rename a dir into itself: %v, want ErrInvalid", err)
	}
	if err := cl.Rename(ctx, "/dir", "/f"); !errors.Is(err, client.ErrExist) {
		t.Errorf("rename onto an existing path: %v, want ErrExist", err)
	}
	if err := cl.Remove(ctx, "/missing"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("remove missing: %v, want ErrNotFound", err)
	}
	if _, err := cl.Create(ctx, "/bad", client.CreateOptions{ChunkSize: 3 * mib}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("create with a chunk size not a power of two: %v, want ErrInvalid", err)
	}
}

func TestNoChunkservers(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 1})
	cl := clustertest.Client(t, c)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	// Placement happens on the first write; Create may already refuse.
	f, err := cl.Create(ctx, "/r3", client.CreateOptions{Replication: 3, ChunkSize: chunkSize})
	if err == nil {
		_, err = f.WriteAtContext(ctx, []byte("hello"), 0)
		f.Close()
	}
	if !errors.Is(err, client.ErrNoChunkservers) {
		t.Fatalf("replication 3 on 1 chunkserver: %v, want ErrNoChunkservers", err)
	}
	if ctx.Err() != nil {
		t.Fatal("ErrNoChunkservers only after the deadline: the client should not retry it")
	}

	// Replication 1 works on the same cluster.
	f, err = cl.Create(ctx, "/r1", client.CreateOptions{Replication: 1, ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, []byte("hello"), 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/r1", []byte("hello"))
}
