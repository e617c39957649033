package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// TestOverlayWriterCopiersPromote walks the overlay life cycle through the
// client library: one writer and two copiers write the same volume at
// once, each reads its own view, a second writer is refused, a promote
// fences the old writer and gives the volume the copier's view while the
// other copier keeps its own, a detach fences a copier, and an overlay
// nobody renews is detached by its lease.
func TestOverlayWriterCopiersPromote(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	r := newRand(t)
	if _, err := cl.CreateVolume(ctx, "v", 4*chunkSize, client.VolumeOptions{ChunkSize: chunkSize}); err != nil {
		t.Fatal(err)
	}
	w, err := cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{Owner: "w1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	orig := make([]byte, 3*chunkSize)
	fillRand(r, orig)
	if _, err := w.WriteAt(orig, 0); err != nil {
		t.Fatal(err)
	}
	// One writer at a time; the same writer identity joins its session.
	if _, err := cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{Owner: "w2"}); !errors.Is(err, client.ErrExist) {
		t.Fatalf("second writer: %v, want ErrExist", err)
	}
	w1b, err := cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{Owner: "w1"})
	if err != nil {
		t.Fatalf("the same writer again: %v", err)
	}
	if w1b.Session() != w.Session() {
		t.Fatal("the same writer got another session")
	}
	if _, err := w1b.WriteAt(orig[:4096], 0); err != nil {
		t.Fatal(err)
	}
	w1b.Close() // releases the session: w's next renewal finds it fenced
	if w, err = cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{Owner: "w1"}); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// A plain open may read, and may not write while a session is live.
	plain, err := cl.OpenVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("a write without the session succeeded")
	}

	for _, name := range []string{"a", "b"} {
		if _, err := cl.AttachOverlay(ctx, "v", name, 0); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := cl.OpenVolumeWriter(ctx, "v+a", client.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := cl.OpenVolumeWriter(ctx, "v+b", client.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()

	// Models: each view is the volume at attach plus its own writes.
	views := map[string][]byte{"v": bytes.Clone(orig), "v+a": bytes.Clone(orig), "v+b": bytes.Clone(orig)}
	for k := range views {
		views[k] = append(views[k], make([]byte, chunkSize)...)
	}
	vols := map[string]*client.Volume{"v": w, "v+a": ca, "v+b": cb}
	write := func(name string, off int64, n int) {
		t.Helper()
		p := make([]byte, n)
		fillRand(r, p)
		if _, err := vols[name].WriteAt(p, off); err != nil {
			t.Fatalf("write %s at %d: %v", name, off, err)
		}
		copy(views[name][off:], p)
	}
	check := func(name string, v *client.Volume) {
		t.Helper()
		got := make([]byte, len(views[name]))
		if _, err := v.ReadAt(got, 0); err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if !bytes.Equal(got, views[name]) {
			t.Fatalf("%s differs from its model at offset %d", name, firstDiff(got, views[name]))
		}
	}
	for range 30 {
		for _, name := range []string{"v", "v+a", "v+b"} {
			off := r.Int64N(4*chunkSize - 8192)
			write(name, off, 1+r.IntN(8192))
		}
	}
	for name, v := range vols {
		check(name, v)
	}
	ovs, err := cl.ListOverlays(ctx, "v")
	if err != nil || len(ovs) != 2 || ovs[0].Name != "a" || !ovs[0].Writer || ovs[1].Volume.Name != "v+b" {
		t.Fatalf("overlays: %+v %v", ovs, err)
	}

	// Promote a: the old writer is fenced, the volume is a's view, a's
	// writer goes on writing the volume, b keeps its view.
	if _, err := cl.PromoteOverlay(ctx, "v", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("late"), 100); !errors.Is(err, client.ErrFenced) {
		t.Fatalf("old writer after promote: %v, want ErrFenced", err)
	}
	views["v"] = views["v+a"]
	vols["v"] = ca
	delete(views, "v+a")
	delete(vols, "v+a")
	write("v", 4096, 4096)
	fresh, err := cl.OpenVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	check("v", fresh)
	check("v+b", cb)
	if ovs, err := cl.ListOverlays(ctx, "v"); err != nil || len(ovs) != 1 || ovs[0].Name != "b" {
		t.Fatalf("overlays after promote: %+v %v", ovs, err)
	}
	if _, err := cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{Owner: "other"}); !errors.Is(err, client.ErrExist) {
		t.Fatalf("writer of the promoted volume: %v, want ErrExist (the copier holds it)", err)
	}

	// Detach b: its writer is fenced.
	if err := cl.DetachOverlay(ctx, "v", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.WriteAt([]byte("late"), 0); !errors.Is(err, client.ErrFenced) {
		t.Fatalf("detached copier: %v, want ErrFenced", err)
	}

	// An overlay nobody renews goes after its lease.
	if _, err := cl.AttachOverlay(ctx, "v", "c", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 20*time.Second, func() error {
		ovs, err := cl.ListOverlays(ctx, "v")
		if err != nil {
			return err
		}
		if len(ovs) != 0 {
			return fmt.Errorf("overlays %+v still attached", ovs)
		}
		return nil
	})
	// ... while one whose writer renews it stays.
	if _, err := cl.AttachOverlay(ctx, "v", "d", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	cd, err := cl.OpenVolumeWriter(ctx, "v+d", client.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cd.Close()
	// Writing for three leases: the renewals keep it.
	for start := time.Now(); time.Since(start) < 900*time.Millisecond; {
		if _, err := cd.WriteAt([]byte("renewed"), 0); err != nil {
			t.Fatalf("renewed copier: %v", err)
		}
	}
	if ovs, err := cl.ListOverlays(ctx, "v"); err != nil || len(ovs) != 1 {
		t.Fatalf("renewed overlay: %+v %v", ovs, err)
	}
	if err := c.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestOverlayWriterForkedAhead: after an attach the leader forks the
// volume's chunks, now shared with the overlay, in the background, so
// that the writer's first writes find chunks of their own; the writer's
// cached chunk map, stale after that, is refreshed on its next write,
// which lands in the fork; the overlay keeps the volume as it was.
func TestOverlayWriterForkedAhead(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	r := newRand(t)
	vi, err := cl.CreateVolume(ctx, "v", 4*chunkSize, client.VolumeOptions{ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	w, err := cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	orig := make([]byte, 3*chunkSize) // the fourth chunk stays a hole
	fillRand(r, orig)
	if _, err := w.WriteAt(orig, 0); err != nil {
		t.Fatal(err)
	}
	chunks := chunksOf(t, c, vi.Inode)
	before := chunks()
	if len(before) != 3 {
		t.Fatalf("%d chunks allocated, want 3", len(before))
	}
	if _, err := cl.AttachOverlay(ctx, "v", "a", 0); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 30*time.Second, func() error {
		after := chunks()
		if len(after) != len(before) {
			return fmt.Errorf("%d chunks, want %d", len(after), len(before))
		}
		for i, ci := range after {
			if ci.GetShared() || ci.GetHandle() == before[i].GetHandle() {
				return fmt.Errorf("chunk %d: handle %d (was %d), shared %v", ci.GetIndex(), ci.GetHandle(), before[i].GetHandle(), ci.GetShared())
			}
		}
		return nil
	})
	// The writer's map names the old chunks: its writes still land.
	upd := make([]byte, 3*chunkSize)
	fillRand(r, upd)
	if _, err := w.WriteAt(upd, 0); err != nil {
		t.Fatal(err)
	}
	ov, err := cl.OpenVolume(ctx, "v+a")
	if err != nil {
		t.Fatal(err)
	}
	defer ov.Close()
	for _, tc := range []struct {
		name string
		f    interface {
			ReadAt([]byte, int64) (int, error)
		}
		want []byte
	}{{"writer", w, upd}, {"overlay", ov, orig}} {
		got := make([]byte, len(tc.want))
		if _, err := tc.f.ReadAt(got, 0); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Fatalf("%s reads other bytes than it should", tc.name)
		}
	}
}

// TestOverlayExclusiveBytes: an overlay's exclusive bytes are what it
// wrote, not the chunks it forked: the blocks of a forked chunk it did
// not write are still shared with the volume on disk.
func TestOverlayExclusiveBytes(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	r := newRand(t)
	if _, err := cl.CreateVolume(ctx, "v", 2*chunkSize, client.VolumeOptions{ChunkSize: chunkSize}); err != nil {
		t.Fatal(err)
	}
	w, err := cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	data := make([]byte, 2*chunkSize)
	fillRand(r, data)
	if _, err := w.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AttachOverlay(ctx, "v", "a", 0); err != nil {
		t.Fatal(err)
	}
	ov, err := cl.OpenVolumeWriter(ctx, "v+a", client.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ov.Close()
	block := make([]byte, 4096)
	fillRand(r, block)
	for _, off := range []int64{0, 64 << 10, chunkSize + 128<<10} { // both chunks forked
		if _, err := ov.WriteAt(block, off); err != nil {
			t.Fatal(err)
		}
	}
	ovs, err := cl.ListOverlays(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if len(ovs) != 1 {
		t.Fatalf("%d overlays, want 1", len(ovs))
	}
	if got, want := ovs[0].Volume.ExclusiveBytes, int64(3*len(block)); got != want {
		t.Fatalf("overlay a: exclusive bytes %d, want %d (what it wrote; its forked chunks hold %d)", got, want, 2*chunkSize)
	}
}

// TestSnapshotForksWrittenChunksAhead: after a volume snapshot, the
// chunks written since the volume's previous snapshot (shared by the
// live volume and the new snapshot only) are forked ahead by the leader,
// as a mirror's checkpoints need (its writer writes the same chunks
// again); the chunks not written since stay shared. Both snapshots keep
// the volume as it was when each was taken.
func TestSnapshotForksWrittenChunksAhead(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	r := newRand(t)
	vi, err := cl.CreateVolume(ctx, "v", 4*chunkSize, client.VolumeOptions{ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	v, err := cl.OpenVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	img := make([]byte, 4*chunkSize)
	fillRand(r, img[:3*chunkSize])
	if _, err := v.WriteAt(img[:3*chunkSize], 0); err != nil {
		t.Fatal(err)
	}
	chunks := chunksOf(t, c, vi.Inode)
	if _, err := cl.SnapshotVolume(ctx, "v", "s1"); err != nil {
		t.Fatal(err)
	}
	first := slices.Clone(img)
	// Chunk 1 written since s1; then s2.
	fillRand(r, img[chunkSize+4096:chunkSize+8192])
	if _, err := v.WriteAt(img[chunkSize+4096:chunkSize+8192], chunkSize+4096); err != nil {
		t.Fatal(err)
	}
	atS2 := chunks()
	if _, err := cl.SnapshotVolume(ctx, "v", "s2"); err != nil {
		t.Fatal(err)
	}
	second := slices.Clone(img)
	clustertest.Eventually(t, 30*time.Second, func() error {
		for _, ci := range chunks() {
			ahead := ci.GetIndex() == 1
			if ahead && (ci.GetShared() || ci.GetHandle() == atS2[1].GetHandle()) {
				return fmt.Errorf("chunk 1 (written since s1): handle %d (was %d), shared %v", ci.GetHandle(), atS2[1].GetHandle(), ci.GetShared())
			}
			if !ahead && !ci.GetShared() {
				return fmt.Errorf("chunk %d, not written since s1, was forked ahead", ci.GetIndex())
			}
		}
		return nil
	})
	for _, tc := range []struct {
		name string
		want []byte
	}{{"v@s1", first}, {"v@s2", second}, {"v", img}} {
		sv, err := cl.OpenVolume(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(tc.want))
		_, err = sv.ReadAt(got, 0)
		sv.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Fatalf("%s reads other bytes than it should", tc.name)
		}
	}
}

// chunksOf returns a function listing the chunks of inode ino, as the
// master has them now.
func chunksOf(t *testing.T, c *cluster.Cluster, ino uint64) func() []*api.ChunkInfo {
	mc := masterClient(t, c)
	return func() []*api.ChunkInfo {
		t.Helper()
		resp, err := mc.GetChunks(t.Context(), &api.GetChunksRequest{Inode: ino})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetChunks()
	}
}
