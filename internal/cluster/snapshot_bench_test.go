package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// Snapshot figures for docs/benchmarks.md (real chunkservers on this
// machine's disk, in one process):
//
//	go test ./internal/cluster -run '^$' -bench 'Snapshot|CloneWrite' -benchtime 3x
//
// BenchmarkSnapshotVolume10G: a snapshot of a 10 GiB volume whose 160
// chunks (64 MiB) all hold data. BenchmarkSnapshotTree10k: a snapshot of
// a tree of 10,000 one-chunk files. BenchmarkCloneWrite4K: 4 KiB
// synchronous writes (3 replicas) on the original volume, on a fresh
// clone (each first write to a chunk forks it), and again on the clone.

const benchVolChunks = 160 // 10 GiB of 64 MiB chunks

func BenchmarkSnapshotVolume10G(b *testing.B) {
	c := clustertest.New(b, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(b, c)
	ctx := b.Context()
	const cs = 64 << 20
	if _, err := cl.CreateVolume(ctx, "big", benchVolChunks*cs, client.VolumeOptions{ChunkSize: cs}); err != nil {
		b.Fatal(err)
	}
	v, err := cl.OpenVolume(ctx, "big")
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, 4096)
	for i := range benchVolChunks {
		if _, err := v.WriteAt(block, int64(i)*cs); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := cl.SnapshotVolume(ctx, "big", fmt.Sprintf("s%d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSnapshotTree10k(b *testing.B) {
	// Not clustertest.New: its cleanup settles the cluster within a
	// minute, which 10,000 chunks moved to a new epoch (each reported
	// again by every member) outlast on this machine.
	sctx, cancel := context.WithTimeout(context.Background(), cluster.DefaultReadyTimeout)
	c, err := cluster.Start(sctx, cluster.Config{Chunkservers: 3, Dir: b.TempDir(), Logger: clustertest.Logger()})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	cl := clustertest.Client(b, c)
	ctx := b.Context()
	const files = 10000
	for d := range 100 {
		if err := cl.MkdirAll(ctx, fmt.Sprintf("/t/%02d", d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	data := []byte("a small file\n")
	start := time.Now()
	for i := range files {
		f, err := cl.Create(ctx, fmt.Sprintf("/t/%02d/f%05d", i%100, i), client.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d files written in %s", files, time.Since(start).Round(time.Millisecond))
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if _, err := cl.Snapshot(ctx, "/t", fmt.Sprintf("s%d", i)); err != nil {
			b.Fatal(err)
		}
		b.Logf("snapshot %d of %d files: %s", i, files, time.Since(t0).Round(time.Millisecond))
	}
}

func BenchmarkCloneWrite4K(b *testing.B) {
	c := clustertest.New(b, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(b, c)
	ctx := b.Context()
	const cs = 64 << 20
	const chunks = 4
	const perChunk = 64 // 4 KiB blocks written per chunk, each in its own 64 KiB block
	if _, err := cl.CreateVolume(ctx, "orig", chunks*cs, client.VolumeOptions{ChunkSize: cs}); err != nil {
		b.Fatal(err)
	}
	v, err := cl.OpenVolume(ctx, "orig")
	if err != nil {
		b.Fatal(err)
	}
	fill := make([]byte, 1<<20)
	for i := range int64(chunks * cs / len(fill)) {
		if _, err := v.WriteAt(fill, i*int64(len(fill))); err != nil {
			b.Fatal(err)
		}
	}
	block := make([]byte, 4096)
	offsets := make([]int64, 0, chunks*perChunk)
	for ch := range int64(chunks) {
		for k := range int64(perChunk) {
			offsets = append(offsets, ch*cs+k*(cs/perChunk)) // distinct 64 KiB blocks
		}
	}
	timeAll := func(vol *client.Volume) []time.Duration {
		out := make([]time.Duration, 0, len(offsets))
		for _, off := range offsets {
			t0 := time.Now()
			if _, err := vol.WriteAt(block, off); err != nil {
				b.Fatal(err)
			}
			out = append(out, time.Since(t0))
		}
		return out
	}
	p := func(d []time.Duration, q float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[int(q*float64(len(s)-1))]
	}
	b.ResetTimer()
	for i := range b.N {
		orig := timeAll(v)
		name := fmt.Sprintf("c%d", i)
		if _, err := cl.CloneVolume(ctx, "orig", name); err != nil {
			b.Fatal(err)
		}
		cv, err := cl.OpenVolume(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		first := timeAll(cv)
		again := timeAll(cv)
		cv.Close()
		// Each chunk's first write forks it (the chunk's first offset).
		var forks []time.Duration
		for ch := range chunks {
			forks = append(forks, first[ch*perChunk])
		}
		b.ReportMetric(float64(p(orig, 0.5).Microseconds()), "orig-p50-µs")
		b.ReportMetric(float64(p(first, 0.5).Microseconds()), "clone-first-p50-µs")
		b.ReportMetric(float64(p(again, 0.5).Microseconds()), "clone-again-p50-µs")
		b.ReportMetric(float64(p(forks, 0.5).Microseconds()), "fork-p50-µs")
		b.ReportMetric(float64(p(first, 0.5))/float64(p(orig, 0.5)), "first/orig")
		b.ReportMetric(float64(p(again, 0.5))/float64(p(orig, 0.5)), "again/orig")
	}
}
