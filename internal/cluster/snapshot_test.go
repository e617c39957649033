package cluster_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// TestSnapshotAndClone: a snapshot keeps a tree as it was while the live
// tree is written (each first write to a shared chunk forks it on the
// chunkservers, by a local clone), a clone of the snapshot is writable
// and independent of both, writes to the snapshot are refused, and
// removing all of them frees every replica and every byte of the
// chunkservers' engines.
func TestSnapshotAndClone(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3, HeartbeatInterval: 100 * time.Millisecond})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	r := newRand(t)
	orig := makeDirFile(t, cl, r, 2*chunkSize+5000)

	fi, err := cl.Snapshot(ctx, "/d", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Path != "/d/.snapshot/s1" || !fi.ReadOnly {
		t.Fatalf("snapshot: %+v", fi)
	}
	// The live file is written in place: chunk 0 partly, chunk 2 at its end.
	live := bytes.Clone(orig)
	patch := []byte("written after the snapshot")
	lf, err := cl.Open(ctx, "/d/f")
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, lf, patch, 100)
	copy(live[100:], patch)
	writeAt(t, lf, patch, int64(len(orig))-int64(len(patch)))
	copy(live[len(orig)-len(patch):], patch)
	if err := lf.Close(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/d/f", live)
	assertContent(t, cl, "/d/.snapshot/s1/f", orig)

	// The snapshot is read-only.
	sf, err := cl.Open(ctx, "/d/.snapshot/s1/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sf.WriteAt([]byte("x"), 0); !errors.Is(err, client.ErrReadOnly) {
		t.Fatalf("write into a snapshot: %v, want ErrReadOnly", err)
	}
	sf.Close()
	if _, err := cl.Create(ctx, "/d/.snapshot/s1/new", client.CreateOptions{}); !errors.Is(err, client.ErrReadOnly) {
		t.Fatalf("create in a snapshot: %v, want ErrReadOnly", err)
	}
	if err := cl.Remove(ctx, "/d"); !errors.Is(err, client.ErrNotEmpty) {
		t.Fatalf("rm of a directory with snapshots: %v", err)
	}

	// A clone of the snapshot: writable, independent of both.
	if _, err := cl.Clone(ctx, "/d/.snapshot/s1", "/c"); err != nil {
		t.Fatal(err)
	}
	cf, err := cl.Open(ctx, "/c/f")
	if err != nil {
		t.Fatal(err)
	}
	cloned := bytes.Clone(orig)
	other := []byte("the clone's own bytes")
	writeAt(t, cf, other, chunkSize+7)
	copy(cloned[chunkSize+7:], other)
	if err := cf.Close(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/c/f", cloned)
	assertContent(t, cl, "/d/f", live)
	assertContent(t, cl, "/d/.snapshot/s1/f", orig)

	var clones uint64
	for i := range c.NumChunkservers() {
		clones += c.Chunkserver(i).Metrics().Clones
	}
	// Chunk 0 and 2 of /d/f and chunk 1 of /c/f, on 3 members each.
	if clones != 9 {
		t.Fatalf("%d replicas cloned, want 9 (3 forks on 3 members)", clones)
	}
	if err := c.CheckReplicas(ctx); err != nil {
		t.Fatal(err)
	}

	// Everything goes: every replica and every byte on disk with it.
	if err := cl.RemoveSnapshot(ctx, "/d", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := cl.RemoveAll(ctx, "/c"); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/d/f", live)
	if err := cl.RemoveAll(ctx, "/d"); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 20*time.Second, func() error {
		for i := range c.NumChunkservers() {
			hs, err := c.ReplicaHandles(i)
			if err != nil {
				return err
			}
			if len(hs) != 0 {
				return fmt.Errorf("chunkserver %d still holds replicas %v", i, hs)
			}
			if used := c.Chunkserver(i).Store().UsedBytes(); used != 0 {
				return fmt.Errorf("chunkserver %d: %d bytes still used", i, used)
			}
		}
		return nil
	})
}

// TestVolumeSnapshotCloneRollback: a volume's snapshot keeps its content
// while the volume is written, a clone of the snapshot is writable, and
// a rollback gives the volume the snapshot's content back.
func TestVolumeSnapshotCloneRollback(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	r := newRand(t)
	if _, err := cl.CreateVolume(ctx, "v", 4*chunkSize, client.VolumeOptions{ChunkSize: chunkSize}); err != nil {
		t.Fatal(err)
	}
	v, err := cl.OpenVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	orig := make([]byte, 3*chunkSize)
	fillRand(r, orig)
	if _, err := v.WriteAt(orig, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SnapshotVolume(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	// Its space is shared now, as the chunkservers' reports tell.
	sharedIs := func(name string, shared bool) {
		t.Helper()
		clustertest.Eventually(t, 20*time.Second, func() error {
			vi, err := cl.VolumeInfo(ctx, name)
			if err != nil {
				return err
			}
			if s, x := vi.SharedBytes, vi.ExclusiveBytes; (shared && (s < int64(len(orig)) || x != 0)) || (!shared && (s != 0 || x < int64(len(orig)))) {
				return fmt.Errorf("%s: %d bytes shared, %d exclusive; want all %v", name, s, x, map[bool]string{true: "shared", false: "exclusive"}[shared])
			}
			return nil
		})
	}
	sharedIs("v", true)
	over := make([]byte, 2*chunkSize)
	fillRand(r, over)
	if _, err := v.WriteAt(over, chunkSize/2); err != nil {
		t.Fatal(err)
	}
	now := bytes.Clone(orig)
	copy(now[chunkSize/2:], over)

	readVol := func(name string, n int) []byte {
		t.Helper()
		vv, err := cl.OpenVolume(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		defer vv.Close()
		buf := make([]byte, n)
		if _, err := vv.ReadAt(buf, 0); err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		return buf
	}
	if got := readVol("v@s", len(orig)); !bytes.Equal(got, orig) {
		t.Fatal("snapshot v@s differs from the volume before the snapshot")
	}
	// Every chunk was written: forked, each side's own.
	sharedIs("v", false)
	sharedIs("v@s", false)
	if got := readVol("v", len(now)); !bytes.Equal(got, now) {
		t.Fatal("volume v differs from what was written")
	}
	sv, err := cl.OpenVolume(ctx, "v@s")
	if err != nil {
		t.Fatal(err)
	}
	if !sv.ReadOnly() {
		t.Fatal("v@s is not read-only")
	}
	if _, err := sv.WriteAt([]byte("x"), 0); !errors.Is(err, client.ErrReadOnly) {
		t.Fatalf("write into v@s: %v, want ErrReadOnly", err)
	}
	sv.Close()

	if _, err := cl.CloneVolume(ctx, "v@s", "w"); err != nil {
		t.Fatal(err)
	}
	w, err := cl.OpenVolume(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("clone"), 10); err != nil {
		t.Fatal(err)
	}
	w.Close()
	cloned := bytes.Clone(orig)
	copy(cloned[10:], "clone")
	if got := readVol("w", len(cloned)); !bytes.Equal(got, cloned) {
		t.Fatal("clone w differs from the snapshot plus its own write")
	}
	if got := readVol("v@s", len(orig)); !bytes.Equal(got, orig) {
		t.Fatal("snapshot changed by its clone's write")
	}

	if _, err := cl.RollbackVolume(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	// The writer opened before the rollback is fenced off the old chunks:
	// its next write lands on the rolled-back content.
	if _, err := v.WriteAt([]byte("after"), 20); err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(orig)
	copy(want[20:], "after")
	if got := readVol("v", len(want)); !bytes.Equal(got, want) {
		t.Fatal("volume after rollback and a write differs from the snapshot plus the write")
	}
	v.Close()
	if err := cl.RemoveVolume(ctx, "v"); !errors.Is(err, client.ErrNotEmpty) {
		t.Fatalf("remove of a volume with snapshots: %v, want ErrNotEmpty", err)
	}
	snaps, err := cl.VolumeSnapshots(ctx, "v")
	if err != nil || len(snaps) != 1 || snaps[0].Name != "v@s" {
		t.Fatalf("snapshots of v: %+v %v", snaps, err)
	}
	if err := c.CheckReplicas(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestForkAcrossMasterFailover: the leader is killed while writers make
// the first writes to every chunk a snapshot shares (each a fork: a Raft
// entry, clones on the members, another entry). Every fork ends whole on
// the next leader (it finishes those left half done), every write lands
// in the live file and none in the snapshot, and the settle's checks
// (replicas equal, reference counts) pass.
func TestForkAcrossMasterFailover(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Masters: 3, Chunkservers: 3, HeartbeatInterval: 100 * time.Millisecond})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	r := newRand(t)
	const chunks = 8
	orig := makeDirFile(t, cl, r, chunks*chunkSize)
	if _, err := cl.Snapshot(ctx, "/d", "s"); err != nil {
		t.Fatal(err)
	}
	live := bytes.Clone(orig)
	type write struct {
		off  int64
		data []byte
	}
	var writes []write
	for i := range chunks {
		for k := range 3 {
			w := write{off: int64(i)*chunkSize + int64(k)*100_000 + int64(r.IntN(1000)), data: randBytes(r, 4096)}
			writes = append(writes, w)
			copy(live[w.off:], w.data)
		}
	}
	errs := make(chan error, 4)
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for w := range 4 {
		wc := clustertest.Client(t, c)
		wg.Go(func() {
			wf, err := wc.Open(ctx, "/d/f")
			if err != nil {
				errs <- err
				return
			}
			defer wf.Close()
			for i := w; i < len(writes); i += 4 {
				once.Do(func() { close(started) })
				if _, err := wf.WriteAt(writes[i].data, writes[i].off); err != nil {
					errs <- fmt.Errorf("write at %d: %w", writes[i].off, err)
					return
				}
			}
		})
	}
	<-started
	leader := c.LeaderIndex()
	if err := c.KillMaster(leader); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	if err := c.RestartMaster(ctx, leader); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/d/f", live)
	assertContent(t, cl, "/d/.snapshot/s/f", orig)
	if err := c.Settle(ctx); err != nil {
		t.Fatal(err)
	}
}

// makeDirFile makes directory /d and file /d/f of n random bytes, which
// it returns.
func makeDirFile(t *testing.T, cl *client.Client, r *rand.Rand, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	fillRand(r, data)
	if err := cl.Mkdir(t.Context(), "/d", 0o755); err != nil {
		t.Fatal(err)
	}
	f := create(t, cl, "/d/f")
	writeAt(t, f, data, 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReadAfterSnapshotSeesWriteInFlight: a write reaches a new chunk's
// head, which applies it but cannot forward it (the head is cut off from
// the middle), so the tail never held a replica; a snapshot's fence then
// moves the chain on. The snapshot holds the write (it commits into the
// shared chunk once the link heals), so a read after the snapshot
// returned must not answer zeros on the tail's "no replica": the head
// holds one. The read is refused until the write arrives, then sees it.
func TestReadAfterSnapshotSeesWriteInFlight(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	vi, err := cl.CreateVolume(ctx, "v", chunkSize, client.VolumeOptions{ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	v, err := cl.OpenVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	resp, err := masterClient(t, c).AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: vi.Inode, Index: 0})
	if err != nil {
		t.Fatal(err)
	}
	chain := resp.GetChunk().GetChain()
	if len(chain) != 3 {
		t.Fatalf("chain of %d, want 3", len(chain))
	}
	head := c.ChunkserverIndex(chain[0].GetId())
	c.Partition(c.ChunkserverNode(head), c.ChunkserverNode(c.ChunkserverIndex(chain[1].GetId())))
	wrote := make(chan error, 1)
	go func() {
		_, err := v.WriteAt([]byte("data"), 0)
		wrote <- err
	}()
	clustertest.Eventually(t, 30*time.Second, func() error {
		if n := c.Chunkserver(head).Metrics().CreatedByWrite; n < 1 {
			return fmt.Errorf("the head created %d replicas by write", n)
		}
		return nil
	})
	if _, err := cl.SnapshotVolume(ctx, "v", "s1"); err != nil {
		t.Fatal(err)
	}
	// A reader bounded to a few seconds: it must not read zeros.
	rc, err := c.NewClientConfig(client.Config{OpTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rv, err := rc.OpenVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer rv.Close()
	buf := make([]byte, 4)
	if _, err := rv.ReadAt(buf, 0); err == nil && !bytes.Equal(buf, []byte("data")) {
		t.Fatalf("a read after the snapshot returned %q while the head held a write the snapshot holds", buf)
	}
	c.Heal()
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	for _, name := range []string{"v", "v@s1"} {
		sv, err := cl.OpenVolume(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sv.ReadAt(buf, 0)
		sv.Close()
		if err != nil || string(buf) != "data" {
			t.Fatalf("%s reads %q, %v; want the write", name, buf, err)
		}
	}
}
