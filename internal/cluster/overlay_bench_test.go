package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// Overlay figures for docs/benchmarks.md (real chunkservers on this
// machine's disk, in one process, 3 replicas):
//
//	go test ./internal/cluster -run '^$' -bench 'Overlay' -benchtime 1x
//
// BenchmarkOverlayWriter4K: the writer's 4 KiB synchronous writes with 0,
// 1 and 4 copiers attached: the first write to each chunk (a fork when
// copiers share it), the first write to each 64 KiB block after (the
// engine copies that block), and the same blocks again (preserved).
// BenchmarkOverlayDeadCopier: the writer's 4 KiB writes while a copier
// lives, once it died (stopped renewing) until its lease detaches it, and
// after. BenchmarkOverlayPromote: a promote of an overlay of a volume
// whose chunks all hold data. BenchmarkOverlaySpace: the space overlays
// take after random 4 KiB writes on the writer and two copiers
// (CATENA_OVERLAY_SPACE_DURATION, default 20s).

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func us(d time.Duration) float64 { return float64(d.Microseconds()) }

func BenchmarkOverlayWriter4K(b *testing.B) {
	c := clustertest.New(b, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(b, c)
	ctx := b.Context()
	const cs = 16 << 20
	const chunks = 32
	const perChunk = 16 // 4 KiB writes per chunk, each in its own 64 KiB block
	vi, err := cl.CreateVolume(ctx, "v", chunks*cs, client.VolumeOptions{ChunkSize: cs})
	if err != nil {
		b.Fatal(err)
	}
	mc := masterClient(b, c)
	// forked waits until the leader's background forks after an attach
	// left no chunk of the volume shared.
	forked := func() {
		clustertest.Eventually(b, time.Minute, func() error {
			resp, err := mc.GetChunks(ctx, &api.GetChunksRequest{Inode: vi.Inode})
			if err != nil {
				return err
			}
			for _, ci := range resp.GetChunks() {
				if ci.GetShared() {
					return fmt.Errorf("chunk %d still shared", ci.GetIndex())
				}
			}
			return nil
		})
	}
	w, err := cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	fill := make([]byte, 1<<20)
	for i := range int64(chunks * cs / len(fill)) {
		if _, err := w.WriteAt(fill, i*int64(len(fill))); err != nil {
			b.Fatal(err)
		}
	}
	block := make([]byte, 4096)
	write := func(off int64) time.Duration {
		t0 := time.Now()
		if _, err := w.WriteAt(block, off); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	baseline := map[string]time.Duration{}
	for _, k := range []int{0, 1, 4} {
		b.Run(fmt.Sprintf("copiers=%d", k), func(b *testing.B) {
			for i := range b.N {
				attach := func(round string) {
					ovs, _ := cl.ListOverlays(ctx, "v")
					for _, o := range ovs {
						if err := cl.DetachOverlay(ctx, "v", o.Name); err != nil {
							b.Fatal(err)
						}
					}
					for j := range k {
						if _, err := cl.AttachOverlay(ctx, "v", fmt.Sprintf("c%d-%d%s", i, j, round), time.Hour); err != nil {
							b.Fatal(err)
						}
					}
				}
				// Right after the attach: the writer meets the leader's
				// background forks (or forks a chunk itself).
				attach("now")
				var now, fork, first, again []time.Duration
				for ch := range int64(chunks) {
					now = append(now, write(ch*cs))
				}
				// Once the background forks are done: the writer only
				// refreshes its chunk map.
				attach("")
				forked()
				for ch := range int64(chunks) {
					fork = append(fork, write(ch*cs))
				}
				for ch := range int64(chunks) {
					for j := int64(1); j < perChunk; j++ {
						first = append(first, write(ch*cs+j*(cs/perChunk)))
					}
				}
				for ch := range int64(chunks) {
					for j := range int64(perChunk) {
						again = append(again, write(ch*cs+j*(cs/perChunk)))
					}
				}
				b.ReportMetric(us(pct(now, 0.5)), "attach-p50-µs")
				b.ReportMetric(us(pct(now, 0.99)), "attach-p99-µs")
				b.ReportMetric(us(pct(fork, 0.5)), "fork-p50-µs")
				b.ReportMetric(us(pct(fork, 0.99)), "fork-p99-µs")
				b.ReportMetric(us(pct(first, 0.5)), "first-p50-µs")
				b.ReportMetric(us(pct(first, 0.99)), "first-p99-µs")
				b.ReportMetric(us(pct(again, 0.5)), "again-p50-µs")
				b.ReportMetric(us(pct(again, 0.99)), "again-p99-µs")
				if k == 0 {
					baseline["again"] = pct(again, 0.5)
				} else if base := baseline["again"]; base > 0 {
					b.ReportMetric(float64(pct(now, 0.5))/float64(base), "attach/base-p50")
					b.ReportMetric(float64(pct(fork, 0.5))/float64(base), "fork/base-p50")
					b.ReportMetric(float64(pct(first, 0.5))/float64(base), "first/base-p50")
					b.ReportMetric(float64(pct(again, 0.5))/float64(base), "again/base-p50")
				}
			}
		})
	}
}

// deadCopier runs the writer's 4 KiB writes (random offsets of a 64 MiB
// volume, as one process would) while a copier of overlay "a" (its lease
// lease) writes too, then dies: it stops renewing without releasing.
// It returns the writer's latencies while the copier lived, while it was
// dead but attached, and after its detach, and how long the detach took.
func deadCopier(tb testing.TB, lease time.Duration) (alive, dead, after []time.Duration, detachAfter time.Duration) {
	c := clustertest.New(tb, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(tb, c)
	ctx := tb.Context()
	const size = 64 << 20
	if _, err := cl.CreateVolume(ctx, "v", size, client.VolumeOptions{ChunkSize: 16 << 20}); err != nil {
		tb.Fatal(err)
	}
	w, err := cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	if _, err := cl.AttachOverlay(ctx, "v", "a", lease); err != nil {
		tb.Fatal(err)
	}
	cp, err := cl.OpenVolumeWriter(ctx, "v+a", client.WriterOptions{Keep: true})
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	phase := 0 // 0 alive, 1 dead, 2 detached
	var lat [3][]time.Duration
	var werr error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := rand.New(rand.NewPCG(1, 2))
		block := make([]byte, 4096)
		for {
			select {
			case <-stop:
				return
			default:
			}
			off := r.Int64N(size/4096) * 4096
			t0 := time.Now()
			_, err := w.WriteAt(block, off)
			d := time.Since(t0)
			mu.Lock()
			if err != nil && werr == nil {
				werr = err
			}
			lat[phase] = append(lat[phase], d)
			mu.Unlock()
		}
	}()
	count := func(p int) int {
		mu.Lock()
		defer mu.Unlock()
		return len(lat[p])
	}
	// The copier lives and writes for a while.
	block := make([]byte, 4096)
	for i := 0; count(0) < 500; i++ {
		if _, err := cp.WriteAt(block, int64(i%1000)*4096); err != nil {
			tb.Fatal(err)
		}
	}
	// It dies: no renewal, no release.
	cp.Close()
	mu.Lock()
	phase = 1
	mu.Unlock()
	died := time.Now()
	clustertest.Eventually(tb, lease+time.Minute, func() error {
		ovs, err := cl.ListOverlays(ctx, "v")
		if err != nil {
			return err
		}
		if len(ovs) != 0 {
			return fmt.Errorf("overlay %s still attached (renewed %s ago)", ovs[0].Name, ovs[0].RenewedAgo)
		}
		return nil
	})
	detachAfter = time.Since(died)
	mu.Lock()
	phase = 2
	mu.Unlock()
	for count(2) < 500 {
		select {
		case <-done:
			tb.Fatalf("writer stopped: %v", werr)
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(stop)
	<-done
	if werr != nil {
		tb.Fatalf("the writer failed while a copier died: %v", werr)
	}
	if _, err := cp.WriteAt(block, 0); err == nil {
		tb.Fatal("the dead copier's overlay still takes writes after its detach")
	}
	return lat[0], lat[1], lat[2], detachAfter
}

// TestOverlayDeadCopierDetached: a copier that stops renewing is detached
// after its lease, and the writer never fails (nor waits for it: its
// latencies are logged; docs/benchmarks.md has the figures).
func TestOverlayDeadCopierDetached(t *testing.T) {
	alive, dead, after, detachAfter := deadCopier(t, 500*time.Millisecond)
	// Its last renewal was at most a third of the lease before it died.
	if detachAfter < 500*time.Millisecond*2/3 {
		t.Fatalf("detached %v after its death, before its lease ran out", detachAfter)
	}
	t.Logf("writer 4 KiB p50/p99: copier alive %v/%v (%d), dead %v/%v (%d), detached %v/%v (%d); detached %v after it died",
		pct(alive, 0.5), pct(alive, 0.99), len(alive), pct(dead, 0.5), pct(dead, 0.99), len(dead),
		pct(after, 0.5), pct(after, 0.99), len(after), detachAfter.Round(time.Millisecond))
}

func BenchmarkOverlayDeadCopier(b *testing.B) {
	for range b.N {
		alive, dead, after, detachAfter := deadCopier(b, 5*time.Second)
		b.ReportMetric(us(pct(alive, 0.5)), "alive-p50-µs")
		b.ReportMetric(us(pct(alive, 0.99)), "alive-p99-µs")
		b.ReportMetric(us(pct(dead, 0.5)), "dead-p50-µs")
		b.ReportMetric(us(pct(dead, 0.99)), "dead-p99-µs")
		b.ReportMetric(us(pct(after, 0.5)), "detached-p50-µs")
		b.ReportMetric(us(pct(after, 0.99)), "detached-p99-µs")
		b.ReportMetric(detachAfter.Seconds(), "detach-s")
	}
}

func BenchmarkOverlayPromote(b *testing.B) {
	c := clustertest.New(b, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(b, c)
	ctx := b.Context()
	const cs = 64 << 20
	const chunks = 32 // 2 GiB
	if _, err := cl.CreateVolume(ctx, "v", chunks*cs, client.VolumeOptions{ChunkSize: cs}); err != nil {
		b.Fatal(err)
	}
	v, err := cl.OpenVolume(ctx, "v")
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 4096)
	for i := range int64(chunks) {
		if _, err := v.WriteAt(block, i*cs); err != nil {
			b.Fatal(err)
		}
	}
	v.Close()
	var took []time.Duration
	for i := range b.N {
		name := fmt.Sprintf("p%d", i)
		if _, err := cl.AttachOverlay(ctx, "v", name, time.Hour); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := cl.PromoteOverlay(ctx, "v", name); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	b.ReportMetric(float64(pct(took, 0.5).Microseconds())/1000, "promote-p50-ms")
}

func BenchmarkOverlaySpace(b *testing.B) {
	d := 20 * time.Second
	if s := os.Getenv("CATENA_OVERLAY_SPACE_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		c := clustertest.New(b, cluster.Config{Chunkservers: 3})
		cl := clustertest.Client(b, c)
		ctx := b.Context()
		const size = 1 << 30
		if _, err := cl.CreateVolume(ctx, "v", size, client.VolumeOptions{}); err != nil {
			b.Fatal(err)
		}
		w, err := cl.OpenVolumeWriter(ctx, "v", client.WriterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		fill := make([]byte, 4<<20)
		for off := int64(0); off < size; off += int64(len(fill)) {
			if _, err := w.WriteAt(fill, off); err != nil {
				b.Fatal(err)
			}
		}
		disk := c.DiskBytes
		before := disk()
		views := []*client.Volume{w}
		for _, name := range []string{"a", "b"} {
			if _, err := cl.AttachOverlay(ctx, "v", name, time.Hour); err != nil {
				b.Fatal(err)
			}
			cv, err := cl.OpenVolumeWriter(ctx, client.OverlayName("v", name), client.WriterOptions{})
			if err != nil {
				b.Fatal(err)
			}
			views = append(views, cv)
		}
		wctx, cancel := context.WithTimeout(ctx, d)
		var wg sync.WaitGroup
		var mu sync.Mutex
		writes := 0
		for i, v := range views {
			for j := range 4 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(i), uint64(j)))
					block := make([]byte, 4096)
					n := 0
					for wctx.Err() == nil {
						if _, err := v.WriteAtContext(wctx, block, r.Int64N(size/4096)*4096); err == nil {
							n++
						}
					}
					mu.Lock()
					writes += n
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		cancel()
		after := disk()
		var excl int64
		clustertest.Eventually(b, time.Minute, func() error {
			ovs, err := cl.ListOverlays(ctx, "v")
			if err != nil {
				return err
			}
			excl = 0
			for _, o := range ovs {
				excl += o.Volume.ExclusiveBytes
			}
			if excl == 0 {
				return fmt.Errorf("no exclusive bytes reported yet")
			}
			return nil
		})
		b.ReportMetric(float64(writes), "writes")
		b.ReportMetric(float64(after-before)/(1<<20), "disk-growth-MiB")
		b.ReportMetric(float64(writes)*4096*3/(1<<20), "written-x3-MiB")
		b.ReportMetric(float64(excl)/(1<<20), "overlay-exclusive-MiB")
		for _, v := range views {
			v.Close()
		}
	}
}
