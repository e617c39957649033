package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
)

// memFS is the in-memory twin of the client for the workloads' logic.
type memFS struct {
	mu      sync.Mutex
	files   map[string]*memFile
	all     map[string]*memFile // every file ever created, survives RemoveAll
	dirs    map[string]bool
	creates int
	// failWriteAfter makes the n-th WriteAt (1-based, across files) fail.
	failWriteAfter int
	writes         int
}

var errInjected = errors.New("injected write failure")

func newMemFS() *memFS {
	return &memFS{files: map[string]*memFile{}, all: map[string]*memFile{}, dirs: map[string]bool{}}
}

func (m *memFS) Create(_ context.Context, p string, o client.CreateOptions) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[p]; ok && !o.Overwrite {
		return nil, client.ErrExist
	}
	f := &memFile{fs: m, opts: o}
	m.files[p] = f
	m.all[p] = f
	m.creates++
	return f, nil
}

func (m *memFS) Open(_ context.Context, p string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[p]
	if !ok {
		return nil, client.ErrNotFound
	}
	return f, nil
}

func (m *memFS) MkdirAll(_ context.Context, p string, _ os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dirs[p] = true
	return nil
}

func (m *memFS) RemoveAll(_ context.Context, p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.files {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(m.files, k)
		}
	}
	for k := range m.dirs {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(m.dirs, k)
		}
	}
	return nil
}

type memFile struct {
	fs     *memFS
	opts   client.CreateOptions
	data   []byte
	synced int
	offs   []int64 // every write offset, in order
}

func (f *memFile) WriteAtContext(_ context.Context, p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.writes++
	if f.fs.failWriteAfter > 0 && f.fs.writes >= f.fs.failWriteAfter {
		return 0, errInjected
	}
	if end := off + int64(len(p)); end > int64(len(f.data)) {
		f.data = append(f.data, make([]byte, end-int64(len(f.data)))...)
	}
	copy(f.data[off:], p)
	f.offs = append(f.offs, off)
	return len(p), nil
}

func (f *memFile) Append(_ context.Context, rec []byte) (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	off := int64(len(f.data))
	f.data = append(f.data, rec...)
	f.offs = append(f.offs, off)
	return off, nil
}

func (f *memFile) ReadAtContext(_ context.Context, p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if off >= int64(len(f.data)) {
		return 0, nil
	}
	return copy(p, f.data[off:]), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.synced++
	return nil
}

func (f *memFile) Close() error { return nil }

// stepClock advances by step on every call, so figures are deterministic.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func TestRunAllWorkloads(t *testing.T) {
	fs := newMemFS()
	clk := &stepClock{t: time.Unix(0, 0), step: time.Second}
	dropped := 0
	cfg := Config{
		FS: fs, Dir: "/bench", Size: 1<<20 + 100, Block: 64 << 10, Ops: 50,
		SyncFileSize: 256 << 10, Files: 20, Replication: 2, ChunkSize: 1 << 20,
		Now: clk.Now, DropCaches: func() error {
			dropped++
			return nil
		},
	}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res {
		names = append(names, r.Workload)
	}
	if got := strings.Join(names, ","); got != "seqwrite,seqread,sync4k,creates,appends" {
		t.Fatalf("workloads %s", got)
	}
	sw, sr, s4, cr, ap := res[0], res[1], res[2], res[3], res[4]

	// seqwrite: two clock reads around the timed part, so 1 s.
	if sw.Bytes != cfg.Size || sw.Seconds != 1 || sw.MBps != float64(cfg.Size)/1e6 || sw.Concurrency != 4 {
		t.Errorf("seqwrite %+v", sw)
	}
	if sw.Ops != 17 { // 16 full 64 KiB blocks + 100 bytes
		t.Errorf("seqwrite ops %d, want 17", sw.Ops)
	}
	seq := fs.all["/bench/seq.dat"]
	if seq == nil || int64(len(seq.data)) != cfg.Size || seq.synced != 1 {
		t.Fatalf("seq file not fully written and synced: %v", seq)
	}
	if seq.opts.Replication != 2 || seq.opts.ChunkSize != 1<<20 {
		t.Errorf("create options %+v", seq.opts)
	}
	if bytes.Count(seq.data, []byte{0}) == len(seq.data) {
		t.Error("seq file is all zeros")
	}
	if dropped != 1 || !strings.HasPrefix(sr.Note, "cold") {
		t.Errorf("seqread: dropped %d, note %q", dropped, sr.Note)
	}
	if sr.Bytes != cfg.Size || sr.MBps <= 0 {
		t.Errorf("seqread %+v", sr)
	}

	// sync4k: concurrency 1 by default, 4 KiB aligned, inside the file.
	if s4.Ops != 50 || s4.Concurrency != 1 || s4.P50us != 1e6 || s4.MaxUs != 1e6 {
		t.Errorf("sync4k %+v", s4)
	}
	s4f := fs.all["/bench/sync4k.dat"]
	if s4f == nil || len(s4f.data) != int(cfg.SyncFileSize) {
		t.Fatal("no preallocated sync4k file")
	}
	timed := s4f.offs[len(s4f.offs)-50:]
	for _, off := range timed {
		if off%4096 != 0 || off < 0 || off+4096 > cfg.SyncFileSize {
			t.Fatalf("sync4k offset %d not 4 KiB aligned inside the file", off)
		}
	}
	if cr.Ops != 20 || cr.OpsPerSec <= 0 {
		t.Errorf("creates %+v", cr)
	}
	for i := range 20 {
		if f := fs.all[fmt.Sprintf("/bench/creates/f%06d", i)]; f == nil || len(f.data) != 4096 {
			t.Fatalf("small file %d missing or not 4 KiB", i)
		}
	}
	// appends: Ops 4 KiB records by 8 producers. Their clock reads
	// interleave (the step clock is shared), so an append's latency is
	// at least one step and at most every read of the run.
	if ap.Ops != 50 || ap.Concurrency != 8 || ap.Bytes != 50*4096 || ap.P50us < 1e6 || ap.MaxUs > (2*50+1)*1e6 {
		t.Errorf("appends %+v", ap)
	}
	if lf := fs.all["/bench/appends.log"]; lf == nil || len(lf.data) != 50*4096 {
		t.Fatal("the appends file does not hold 50 records")
	}
	// 2 big files + 20 small ones + the appends file.
	if fs.creates != 23 {
		t.Errorf("creates %d, want 23", fs.creates)
	}
	if len(fs.files) != 0 || len(fs.dirs) != 0 {
		t.Errorf("not cleaned up: %d files, %d dirs left", len(fs.files), len(fs.dirs))
	}
}

func TestSeqReadAlonePreparesFile(t *testing.T) {
	fs := newMemFS()
	res, err := Run(t.Context(), Config{FS: fs, Dir: "/b", Workloads: []string{SeqRead}, Size: 300 << 10, Block: 128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Workload != SeqRead || res[0].Bytes != 300<<10 {
		t.Fatalf("results %+v", res)
	}
	if !strings.HasPrefix(res[0].Note, "warm") {
		t.Errorf("note %q, want warm", res[0].Note)
	}
}

func TestWriteErrorAbortsAndCleansUp(t *testing.T) {
	fs := newMemFS()
	fs.failWriteAfter = 5
	_, err := Run(t.Context(), Config{FS: fs, Dir: "/b", Size: 1 << 20, Block: 64 << 10})
	if !errors.Is(err, errInjected) {
		t.Fatalf("err %v, want injected failure", err)
	}
	if !strings.Contains(err.Error(), "seqwrite") {
		t.Errorf("error %q does not name the workload", err)
	}
	if len(fs.files) != 0 {
		t.Errorf("%d files left after failure", len(fs.files))
	}
}

func TestConfigErrors(t *testing.T) {
	fs := newMemFS()
	for _, tc := range []struct {
		cfg  Config
		want error
	}{
		{Config{FS: fs, Dir: "/b", Workloads: []string{"nope"}}, ErrUnknownWorkload},
		{Config{Dir: "/b"}, ErrInvalidConfig},
		{Config{FS: fs, Dir: "/b", Block: -1}, ErrInvalidConfig},
		{Config{FS: fs, Dir: "/b", SyncFileSize: 100}, ErrInvalidConfig},
	} {
		if _, err := Run(t.Context(), tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("%+v: err %v, want %v", tc.cfg, err, tc.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {99, 99}, {100, 100}, {0, 1}, {0.5, 1}} {
		if got := Percentile(d, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("empty percentile not 0")
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("single p99 %v", got)
	}
}

func TestWriteTableAndJSON(t *testing.T) {
	r := &Report{Results: []Result{
		{Workload: SeqWrite, Concurrency: 4, Block: 8 << 20, Bytes: 1 << 30, Seconds: 2, MBps: 536.9, OpsPerSec: 64, Note: "Sync included"},
		{Workload: Sync4K, Concurrency: 1, Block: 4096, Ops: 2000, OpsPerSec: 500, P50us: 1500, P99us: 2500000, MaxUs: 900},
	}}
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"seqwrite", "8MiB", "1GiB", "536.9", "1.50ms", "2.50s", "900µs", "seqwrite: Sync included"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"mb_per_s": 536.9`) || !strings.Contains(b.String(), `"p99_us": 2500000`) {
		t.Errorf("json:\n%s", b.String())
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 4096: "4KiB", 8 << 20: "8MiB", 1 << 30: "1GiB", 3 << 29: "1.5GiB", 1 << 40: "1TiB"} {
		if got := ByteSize(n); got != want {
			t.Errorf("ByteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
