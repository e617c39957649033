package chunkstore

import (
	"os"
	"path"
	"slices"
	"testing"
	"time"
)

// Store benchmarks on the real disk (OSFS in b.TempDir()). Every write is
// durable (WriteAt + Sync). Besides ns/op they report latency percentiles
// in µs; compare with fio on the same disk in the same run.

func benchEngine(b *testing.B) *Store {
	e := mustEngine(b, Config{FS: OSFS, Dir: b.TempDir()})
	b.Cleanup(func() { e.Close() })
	return e
}

// latencies collects one duration per operation and reports p50 and p99.
type latencies []time.Duration

func (l *latencies) time(fn func()) {
	t := time.Now()
	fn()
	*l = append(*l, time.Since(t))
}

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(s[len(s)*99/100].Nanoseconds())/1e3, "p99-µs")
}

func benchMust(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEngineOverwrite4K: a durable 4 KiB overwrite of an existing
// replica's data.
func BenchmarkEngineOverwrite4K(b *testing.B) {
	e := benchEngine(b)
	const size = 64 << 20
	r := engCreate(b, e, Meta{Handle: 1, ChunkSize: size})
	benchMust(b, r.WriteAt(pattern(8<<20, 1), 0))
	benchMust(b, e.Sync())
	p := pattern(4096, 2)
	b.SetBytes(4096)
	var lat latencies
	var i int64
	for b.Loop() {
		off := (i * 4096 * 7) % (8 << 20)
		i++
		lat.time(func() {
			benchMust(b, r.WriteAt(p, off))
			benchMust(b, r.Sync())
		})
	}
	lat.report(b)
}

// BenchmarkEngineFirstWrite4K: a new replica's first durable 4 KiB write:
// Create + WriteAt + Sync.
func BenchmarkEngineFirstWrite4K(b *testing.B) {
	e := benchEngine(b)
	p := pattern(4096, 3)
	b.SetBytes(4096)
	var lat latencies
	h := Handle(1)
	for b.Loop() {
		h++
		lat.time(func() {
			r, err := e.Create(Meta{Handle: h, Epoch: 1, ChunkSize: 64 << 20, Chain: []uint64{1, 2, 3}})
			benchMust(b, err)
			benchMust(b, r.WriteAt(p, 0))
			r.SetAppliedAt(1, 1)
			benchMust(b, r.Sync())
		})
	}
	lat.report(b)
}

// BenchmarkEngineSeq1M: sequential durable 1 MiB writes.
func BenchmarkEngineSeq1M(b *testing.B) {
	e := benchEngine(b)
	const size = 256 << 20
	r := engCreate(b, e, Meta{Handle: 1, ChunkSize: size})
	p := pattern(1<<20, 4)
	b.SetBytes(int64(len(p)))
	var lat latencies
	var i int64
	for b.Loop() {
		off := (i << 20) % size
		i++
		lat.time(func() {
			benchMust(b, r.WriteAt(p, off))
			benchMust(b, r.Sync())
		})
	}
	lat.report(b)
}

// BenchmarkEngineCloneFirstWrite4K: the first durable 4 KiB write to a
// block shared with a clone (each iteration clones the source anew; the
// latency is that of the write and its Sync).
func BenchmarkEngineCloneFirstWrite4K(b *testing.B) {
	e := benchEngine(b)
	src := engCreate(b, e, Meta{Handle: 1, ChunkSize: 64 << 20})
	benchMust(b, src.WriteAt(pattern(4<<20, 5), 0))
	benchMust(b, e.Sync())
	p := pattern(4096, 6)
	b.SetBytes(4096)
	var lat latencies
	h := Handle(1)
	var i int64
	for b.Loop() {
		h++
		d, err := e.Clone(1, h)
		benchMust(b, err)
		off := (i * 4096 * 17) % (4 << 20)
		i++
		lat.time(func() {
			benchMust(b, d.WriteAt(p, off))
			benchMust(b, d.Sync())
		})
		if i%256 == 0 { // keep the index small
			for x := h - 255; x <= h; x++ {
				benchMust(b, e.Delete(x))
			}
		}
	}
	lat.report(b)
}

// BenchmarkEngineSpace10kReplicas: the disk space of 10,000 replicas of
// 4 KiB each, after Close (checkpointed): bytes allocated by the
// engine's files (as du counts them) per replica, and over the data.
func BenchmarkEngineSpace10kReplicas(b *testing.B) {
	const n = 10000
	for b.Loop() {
		dir := b.TempDir()
		e := mustEngine(b, Config{FS: OSFS, Dir: dir})
		p := pattern(4096, 7)
		for h := Handle(1); h <= n; h++ {
			r, err := e.Create(Meta{Handle: h, Epoch: 1, ChunkSize: 64 << 20, Chain: []uint64{1, 2, 3}})
			benchMust(b, err)
			benchMust(b, r.WriteAt(p, 0))
			r.SetAppliedAt(1, 1)
		}
		benchMust(b, e.Sync())
		benchMust(b, e.Close())
		edir := path.Join(dir, engineDirName)
		names, err := OSFS.ReadDir(edir)
		benchMust(b, err)
		var alloc, size int64
		for _, name := range names {
			f, err := OSFS.OpenFile(path.Join(edir, name), os.O_RDONLY, 0)
			benchMust(b, err)
			alloc += f.Allocated()
			fi, _ := f.Stat()
			size += fi.Size()
			f.Close()
		}
		b.ReportMetric(float64(alloc)/n, "alloc-B/replica")
		b.ReportMetric(float64(size)/n, "file-B/replica")
		b.ReportMetric(float64(alloc)/(n*4096), "alloc/data")
	}
}
