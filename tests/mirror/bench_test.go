package mirror

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/mirror"
)

// BenchmarkMirror measures, for docs/benchmarks.md ("Mirrors"), with two
// in-process clusters on this machine and one writer at A doing 4 KiB
// random writes over the first half of a 32 MiB volume (2 MiB chunks):
// the writer's latency without a mirror, then with one at a 1 s
// interval; the recovery point (the age of the checkpoint B is at,
// sampled every 100 ms) while it runs; and the bytes shipped against the
// bytes of the 64 KiB blocks that changed between checkpoints (read back
// from A's checkpoints, kept for the purpose); then ten flush barriers
// (a write, then WaitApplied). Run it once:
//
//	go test ./tests/mirror -run '^$' -bench BenchmarkMirror -benchtime 1x
//
// CATENA_MIRROR_BENCH_SECONDS sets each phase's length (default 20).
func BenchmarkMirror(b *testing.B) {
	const size, cs = 32 << 20, 2 << 20
	phase := 20 * time.Second
	if s, err := strconv.Atoi(os.Getenv("CATENA_MIRROR_BENCH_SECONDS")); err == nil && s > 0 {
		phase = time.Duration(s) * time.Second
	}
	ca := cluster.Config{}
	A := clustertest.New(b, ca)
	B := clustertest.New(b, cluster.Config{})
	cla, clb := clustertest.Client(b, A), clustertest.Client(b, B)
	ctx := context.Background()
	if _, err := cla.CreateVolume(ctx, volName, size, client.VolumeOptions{ChunkSize: cs}); err != nil {
		b.Fatal(err)
	}
	v, err := cla.OpenVolume(ctx, volName)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 4096)
	writeFor := func(d time.Duration) []time.Duration {
		var lat []time.Duration
		for end := time.Now().Add(d); time.Now().Before(end); {
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			start := time.Now()
			if _, err := v.WriteAt(buf, rng.Int64N(size/2/4096)*4096); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
		return lat
	}
	b.ResetTimer()
	without := writeFor(phase)

	var appliedAt atomic.Int64
	var last atomic.Pointer[mirror.Record]
	var mu sync.Mutex
	var all []mirror.Record
	m, err := mirror.New(mirror.Config{Volume: volName, From: endpoint(A), To: endpoint(B), Interval: time.Second,
		KeepSource: true, Logger: clustertest.Logger(), OnApplied: func(r mirror.Record) {
			appliedAt.Store(r.AppliedAt)
			last.Store(&r)
			mu.Lock()
			all = append(all, r)
			mu.Unlock()
		}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	for appliedAt.Load() == 0 { // the first checkpoint ships everything
		writeFor(100 * time.Millisecond)
	}
	var ages []time.Duration
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				ages = append(ages, now.Sub(time.Unix(0, appliedAt.Load())))
			}
		}
	}()
	with := writeFor(phase)
	close(stop)
	<-sampled
	// A flush barrier after a write (what --sync-flush would make a
	// FLUSH wait for): write, then WaitApplied.
	var flushes []time.Duration
	for range 10 {
		writeFor(time.Millisecond)
		start := time.Now()
		if _, err := mirror.WaitApplied(ctx, cla, clb, volName, nil, 5*time.Millisecond); err != nil {
			b.Fatal(err)
		}
		flushes = append(flushes, time.Since(start))
	}
	target := last.Load().Applied + 1
	for last.Load().Applied < target { // one checkpoint after the last write
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	b.StopTimer()
	// The run was stopped wherever it was: perhaps after a checkpoint's
	// promote at B and before its record. One more step finishes it (or
	// takes and applies one more): B is then at the record's checkpoint.
	rec, err := m.Step(ctx)
	if err != nil {
		b.Fatal(err)
	}

	// Changed bytes, by content, between consecutive checkpoints.
	prev := make([]byte, size)
	cur := make([]byte, size)
	var changed int64
	shippedAt := map[uint64]int64{}
	mu.Lock()
	for _, r := range all {
		shippedAt[r.Applied] = r.LastShipped
	}
	mu.Unlock()
	for id := uint64(1); id <= rec.Applied; id++ {
		sv, err := cla.OpenVolume(ctx, volName+"@"+mirror.CheckpointName(id))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sv.ReadAt(cur, 0); err != nil {
			b.Fatal(err)
		}
		sv.Close()
		var c int64
		for off := 0; off < size; off += mirror.BlockSize {
			if !bytes.Equal(prev[off:off+mirror.BlockSize], cur[off:off+mirror.BlockSize]) {
				c += mirror.BlockSize
			}
		}
		if s, ok := shippedAt[id]; ok && s != c {
			b.Logf("checkpoint %d: shipped %d bytes, changed %d", id, s, c)
		}
		changed += c
		prev, cur = cur, prev
	}
	img, err := image(ctx, clb, volName)
	if err != nil || !bytes.Equal(img, prev) {
		b.Fatalf("B's volume differs from A's last checkpoint (%v)", err)
	}
	b.ReportMetric(pct(without, 0.5), "write-p50-ms-without")
	b.ReportMetric(pct(with, 0.5), "write-p50-ms-with")
	b.ReportMetric(pct(with, 0.5)/pct(without, 0.5), "write-p50-ratio")
	b.ReportMetric(pct(without, 0.99), "write-p99-ms-without")
	b.ReportMetric(pct(with, 0.99), "write-p99-ms-with")
	b.ReportMetric(pct(ages, 0.5)/1000, "rpo-p50-s")
	b.ReportMetric(pct(ages, 0.99)/1000, "rpo-p99-s")
	b.ReportMetric(float64(rec.ShippedBytes)/float64(changed), "shipped/changed")
	b.ReportMetric(pct(flushes, 0.5)/1000, "barrier-p50-s")
	b.ReportMetric(pct(flushes, 0.99)/1000, "barrier-max-s")
	b.ReportMetric(float64(rec.Applied), "checkpoints")
	b.ReportMetric(float64(len(without)), "writes-without")
	b.ReportMetric(float64(len(with)), "writes-with")
	b.ReportMetric(float64(rec.Fallbacks), "fallbacks")
	b.Logf("shipped %d bytes for %d changed in %d checkpoints; last checkpoint took %s",
		rec.ShippedBytes, changed, rec.Applied, time.Duration(rec.LastDuration))
}

// BenchmarkSyncFlush measures a FLUSH under a --sync-flush mirror: a
// 4 KiB write at A, then the volume's Flush through the client's flush
// barrier (what catena nbd does on an NBD FLUSH), which asks the mirror
// for a checkpoint and returns once it is applied at B. The mirror's
// interval is an hour: every checkpoint after the first is a flush's.
//
//	go test ./tests/mirror -run '^$' -bench BenchmarkSyncFlush -benchtime 1x
func BenchmarkSyncFlush(b *testing.B) {
	const size, cs, flushes = 32 << 20, 2 << 20, 20
	A := clustertest.New(b, cluster.Config{})
	B := clustertest.New(b, cluster.Config{})
	cla, clb := clustertest.Client(b, A), clustertest.Client(b, B)
	ctx := context.Background()
	if _, err := cla.CreateVolume(ctx, volName, size, client.VolumeOptions{ChunkSize: cs}); err != nil {
		b.Fatal(err)
	}
	m, err := mirror.New(mirror.Config{Volume: volName, From: endpoint(A), To: endpoint(B), Interval: time.Hour,
		SyncFlush: true, Logger: clustertest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(mctx) }()
	defer func() { cancel(); <-done }()
	for {
		if r, err := mirror.ReadRecord(ctx, cla, volName); err == nil && r.SyncFlush && r.Applied >= 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cla.SetFlushBarrier(mirror.NewFlushBarrier(cla, nil).Wait)
	v, err := cla.OpenVolume(ctx, volName)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	rng := rand.New(rand.NewPCG(9, 9))
	buf := make([]byte, 4096)
	var writes, syncs []time.Duration
	b.ResetTimer()
	for range flushes {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		start := time.Now()
		if _, err := v.WriteAt(buf, rng.Int64N(size/4096)*4096); err != nil {
			b.Fatal(err)
		}
		wrote := time.Now()
		if err := v.Flush(); err != nil {
			b.Fatal(err)
		}
		writes = append(writes, wrote.Sub(start))
		syncs = append(syncs, time.Since(wrote))
	}
	b.StopTimer()
	r, err := mirror.ReadRecord(ctx, clb, volName)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(pct(writes, 0.5), "write-p50-ms")
	b.ReportMetric(pct(syncs, 0.5), "flush-p50-ms")
	b.ReportMetric(pct(syncs, 1), "flush-max-ms")
	b.ReportMetric(float64(r.Applied), "checkpoints")
}

// pct is the p-th quantile of d, in milliseconds.
func pct(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
}
