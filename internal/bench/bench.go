package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/catena-io/catena/client"
)

// Errors.
var (
	// ErrUnknownWorkload: Config.Workloads names a workload that does not exist.
	ErrUnknownWorkload = errors.New("bench: unknown workload")
	// ErrInvalidConfig: a size, count or concurrency is out of range.
	ErrInvalidConfig = errors.New("bench: invalid config")
	// ErrShortIO: a read or write moved fewer bytes than asked without an error.
	ErrShortIO = errors.New("bench: short read or write")
)

// Workload names, in the order Run executes them.
const (
	SeqWrite = "seqwrite"
	SeqRead  = "seqread"
	Sync4K   = "sync4k"
	Creates  = "creates"
	Appends  = "appends"
)

// AllWorkloads returns every workload, in run order (the default list).
func AllWorkloads() []string { return []string{SeqWrite, SeqRead, Sync4K, Creates, Appends} }

// Defaults.
const (
	DefaultSize         = 1 << 30
	DefaultBlock        = 8 << 20
	DefaultOps          = 2000
	DefaultFiles        = 1000
	DefaultSyncFileSize = 64 << 20
	smallIO             = 4 << 10
)

// File is the part of *client.File the workloads use. Methods must be safe
// for concurrent use, as client.File's are.
type File interface {
	WriteAtContext(ctx context.Context, p []byte, off int64) (int, error)
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
	Append(ctx context.Context, record []byte) (int64, error)
	Sync() error
	Close() error
}

// FS is the part of *client.Client the workloads use.
type FS interface {
	Create(ctx context.Context, path string, o client.CreateOptions) (File, error)
	Open(ctx context.Context, path string) (File, error)
	MkdirAll(ctx context.Context, path string, mode os.FileMode) error
	RemoveAll(ctx context.Context, path string) error
}

// ClientFS adapts a client to FS.
func ClientFS(c *client.Client) FS { return clientFS{c} }

type clientFS struct{ c *client.Client }

func (f clientFS) Create(ctx context.Context, p string, o client.CreateOptions) (File, error) {
	return f.c.Create(ctx, p, o)
}
func (f clientFS) Open(ctx context.Context, p string) (File, error) { return f.c.Open(ctx, p) }
func (f clientFS) MkdirAll(ctx context.Context, p string, m os.FileMode) error {
	return f.c.MkdirAll(ctx, p, m)
}
func (f clientFS) RemoveAll(ctx context.Context, p string) error { return f.c.RemoveAll(ctx, p) }

// Config configures Run. Zero values take the defaults above.
type Config struct {
	FS FS
	// Dir is the namespace directory for the benchmark's files; Run creates
	// it and removes it (and everything in it) when done. Required.
	Dir       string
	Workloads []string
	// Size of the seqwrite/seqread file; Block is the size of one WriteAt/ReadAt.
	Size  int64
	Block int
	// Concurrency is the number of calls in flight; 0 means the workload's
	// default: 4 for seqwrite, seqread and creates, 1 for sync4k, 8
	// producers for appends.
	Concurrency int
	// Ops is the number of sync4k writes and of appends; SyncFileSize the
	// size of the preallocated file sync4k writes land in.
	Ops          int
	SyncFileSize int64
	// Files is the number of files creates makes.
	Files int
	// Replication and ChunkSize go to every Create (0 = cluster default).
	Replication int
	ChunkSize   int64
	// DropCaches, when set, is called before seqread to make the read cold
	// (e.g. sync; echo 3 > /proc/sys/vm/drop_caches). Its error is noted in
	// the result, not fatal.
	DropCaches func() error
	// Now is the clock (default time.Now); Seed seeds sync4k's offsets.
	Now    func() time.Time
	Seed   uint64
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if len(c.Workloads) == 0 {
		c.Workloads = AllWorkloads()
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Block == 0 {
		c.Block = DefaultBlock
	}
	if c.Ops == 0 {
		c.Ops = DefaultOps
	}
	if c.SyncFileSize == 0 {
		c.SyncFileSize = DefaultSyncFileSize
	}
	if c.Files == 0 {
		c.Files = DefaultFiles
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	if c.FS == nil || c.Dir == "" {
		return fmt.Errorf("%w: FS and Dir are required", ErrInvalidConfig)
	}
	for _, w := range c.Workloads {
		if !slices.Contains(AllWorkloads(), w) {
			return fmt.Errorf("%w: %q (have %v)", ErrUnknownWorkload, w, AllWorkloads())
		}
	}
	if c.Size < 0 || c.Block <= 0 || c.Ops < 0 || c.Files < 0 || c.Concurrency < 0 {
		return fmt.Errorf("%w: negative size, block, ops, files or concurrency", ErrInvalidConfig)
	}
	if c.SyncFileSize < smallIO {
		return fmt.Errorf("%w: sync file size %d below 4 KiB", ErrInvalidConfig, c.SyncFileSize)
	}
	return nil
}

// Result is one workload's figure. Latencies are per operation, in
// microseconds; they are zero where the workload does not measure them.
type Result struct {
	Workload    string  `json:"workload"`
	Concurrency int     `json:"concurrency"`
	Block       int     `json:"block_bytes,omitempty"`
	Bytes       int64   `json:"bytes"`
	Ops         int64   `json:"ops"`
	Seconds     float64 `json:"seconds"`
	MBps        float64 `json:"mb_per_s,omitempty"` // 10^6 bytes/s, as fio and go test
	OpsPerSec   float64 `json:"ops_per_s"`
	P50us       float64 `json:"p50_us,omitempty"`
	P99us       float64 `json:"p99_us,omitempty"`
	MaxUs       float64 `json:"max_us,omitempty"`
	Note        string  `json:"note,omitempty"`
}

// Run executes the configured workloads in the canonical order and returns
// their results. It removes Dir before returning, even on error.
func Run(ctx context.Context, cfg Config) (_ []Result, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, big: path.Join(cfg.Dir, "seq.dat")}
	if err := cfg.FS.MkdirAll(ctx, cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: mkdir %s: %w", cfg.Dir, err)
	}
	defer func() {
		// Clean up even when ctx was cancelled: a benchmark must not leave
		// gigabytes behind.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if rerr := cfg.FS.RemoveAll(cctx, cfg.Dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("bench: cleanup %s: %w", cfg.Dir, rerr))
		}
	}()
	var out []Result
	for _, w := range AllWorkloads() {
		if !slices.Contains(cfg.Workloads, w) {
			continue
		}
		cfg.Logger.Info("bench: workload start", "workload", w)
		var res Result
		switch w {
		case SeqWrite:
			res, err = r.seqWrite(ctx)
		case SeqRead:
			res, err = r.seqRead(ctx)
		case Sync4K:
			res, err = r.sync4k(ctx)
		case Creates:
			res, err = r.creates(ctx)
		case Appends:
			res, err = r.appends(ctx)
		}
		if err != nil {
			return out, fmt.Errorf("bench: %s: %w", w, err)
		}
		cfg.Logger.Info("bench: workload done", "workload", w, "seconds", res.Seconds)
		out = append(out, res)
	}
	return out, nil
}

type runner struct {
	cfg      Config
	big      string // the seqwrite/seqread file
	bigReady bool   // big holds cfg.Size bytes
}

func (r *runner) conc(def int) int {
	if r.cfg.Concurrency > 0 {
		return r.cfg.Concurrency
	}
	return def
}

func (r *runner) createOpts() client.CreateOptions {
	return client.CreateOptions{Replication: r.cfg.Replication, ChunkSize: r.cfg.ChunkSize, Overwrite: true}
}

// pattern returns a block of non-zero bytes, so a hole (reads as zeros)
// cannot pass for written data.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// forEach runs fn(i) for i in [0, n) on conc workers and returns the first
// error; after an error, workers stop taking new items.
func forEach(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	return forEachWorker(ctx, n, conc, func(ctx context.Context, _, i int) error { return fn(ctx, i) })
}

// forEachWorker is forEach telling fn which worker (0 to conc-1) runs it.
func forEachWorker(ctx context.Context, n, conc int, fn func(ctx context.Context, w, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		next int
		wg   sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= n || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for w := range min(conc, n) {
		wg.Go(func() {
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := fn(ctx, w, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// writeSeq writes size bytes of f in block pieces with conc in flight.
func writeSeq(ctx context.Context, f File, size int64, block, conc int) error {
	buf := pattern(block)
	n := int((size + int64(block) - 1) / int64(block))
	return forEach(ctx, n, conc, func(ctx context.Context, i int) error {
		off := int64(i) * int64(block)
		p := buf[:min(int64(block), size-off)]
		w, err := f.WriteAtContext(ctx, p, off)
		if err != nil {
			return fmt.Errorf("write at %d: %w", off, err)
		}
		if w != len(p) {
			return fmt.Errorf("write at %d: %d of %d bytes: %w", off, w, len(p), ErrShortIO)
		}
		return nil
	})
}

func (r *runner) seqWrite(ctx context.Context) (Result, error) {
	c := r.conc(4)
	f, err := r.cfg.FS.Create(ctx, r.big, r.createOpts())
	if err != nil {
		return Result{}, fmt.Errorf("create: %w", err)
	}
	start := r.cfg.Now()
	err = writeSeq(ctx, f, r.cfg.Size, r.cfg.Block, c)
	if err == nil {
		err = f.Sync()
	}
	el := r.cfg.Now().Sub(start)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return Result{}, err
	}
	r.bigReady = true
	return throughput(SeqWrite, c, r.cfg.Block, r.cfg.Size, el, "Sync included"), nil
}

func (r *runner) seqRead(ctx context.Context) (Result, error) {
	c := r.conc(4)
	if !r.bigReady {
		// Untimed preparation when seqwrite is not part of the run.
		f, err := r.cfg.FS.Create(ctx, r.big, r.createOpts())
		if err != nil {
			return Result{}, fmt.Errorf("prepare: create: %w", err)
		}
		err = writeSeq(ctx, f, r.cfg.Size, r.cfg.Block, c)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return Result{}, fmt.Errorf("prepare: %w", err)
		}
		r.bigReady = true
	}
	note := "warm page cache (file just written)"
	if r.cfg.DropCaches != nil {
		if err := r.cfg.DropCaches(); err != nil {
			note = fmt.Sprintf("warm page cache (dropping caches failed: %v)", err)
		} else {
			note = "cold page cache (caches dropped)"
		}
	}
	f, err := r.cfg.FS.Open(ctx, r.big)
	if err != nil {
		return Result{}, fmt.Errorf("open: %w", err)
	}
	defer f.Close()
	block, size := r.cfg.Block, r.cfg.Size
	n := int((size + int64(block) - 1) / int64(block))
	bufs := sync.Pool{New: func() any { b := make([]byte, block); return &b }}
	want := pattern(block)
	start := r.cfg.Now()
	err = forEach(ctx, n, c, func(ctx context.Context, i int) error {
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		off := int64(i) * int64(block)
		p := (*bp)[:min(int64(block), size-off)]
		got, err := f.ReadAtContext(ctx, p, off)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if got != len(p) {
			return fmt.Errorf("read at %d: %d of %d bytes: %w", off, got, len(p), ErrShortIO)
		}
		// Spot check: a benchmark that reads the wrong bytes measures nothing.
		if p[0] != want[0] || p[len(p)-1] != want[len(p)-1] {
			return fmt.Errorf("read at %d: unexpected data", off)
		}
		return nil
	})
	el := r.cfg.Now().Sub(start)
	if err != nil {
		return Result{}, err
	}
	return throughput(SeqRead, c, block, size, el, note), nil
}

func (r *runner) sync4k(ctx context.Context) (Result, error) {
	c := r.conc(1)
	p := path.Join(r.cfg.Dir, "sync4k.dat")
	f, err := r.cfg.FS.Create(ctx, p, r.createOpts())
	if err != nil {
		return Result{}, fmt.Errorf("create: %w", err)
	}
	defer f.Close()
	// Preallocate (untimed) so every op overwrites allocated, written chunks.
	if err := writeSeq(ctx, f, r.cfg.SyncFileSize, min(int(r.cfg.SyncFileSize), 1<<20), 4); err != nil {
		return Result{}, fmt.Errorf("prepare: %w", err)
	}
	if err := f.Sync(); err != nil {
		return Result{}, fmt.Errorf("prepare: sync: %w", err)
	}
	blocks := uint64(r.cfg.SyncFileSize / smallIO)
	rng := rand.New(rand.NewPCG(r.cfg.Seed, 0x5ca1ab1e))
	offs := make([]int64, r.cfg.Ops)
	for i := range offs {
		offs[i] = int64(rng.Uint64N(blocks)) * smallIO
	}
	lat := make([]time.Duration, r.cfg.Ops)
	buf := pattern(smallIO)
	start := r.cfg.Now()
	err = forEach(ctx, r.cfg.Ops, c, func(ctx context.Context, i int) error {
		t0 := r.cfg.Now()
		n, err := f.WriteAtContext(ctx, buf, offs[i])
		lat[i] = r.cfg.Now().Sub(t0)
		if err != nil {
			return fmt.Errorf("write at %d: %w", offs[i], err)
		}
		if n != smallIO {
			return fmt.Errorf("write at %d: %d bytes: %w", offs[i], n, ErrShortIO)
		}
		return nil
	})
	el := r.cfg.Now().Sub(start)
	if err != nil {
		return Result{}, err
	}
	res := latency(Sync4K, c, smallIO, lat, el)
	res.Note = "durable on every replica when WriteAt returns"
	return res, nil
}

func (r *runner) creates(ctx context.Context) (Result, error) {
	c := r.conc(4)
	dir := path.Join(r.cfg.Dir, "creates")
	if err := r.cfg.FS.MkdirAll(ctx, dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("mkdir: %w", err)
	}
	lat := make([]time.Duration, r.cfg.Files)
	buf := pattern(smallIO)
	start := r.cfg.Now()
	err := forEach(ctx, r.cfg.Files, c, func(ctx context.Context, i int) error {
		t0 := r.cfg.Now()
		p := path.Join(dir, fmt.Sprintf("f%06d", i))
		f, err := r.cfg.FS.Create(ctx, p, r.createOpts())
		if err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		n, err := f.WriteAtContext(ctx, buf, 0)
		if err == nil && n != smallIO {
			err = ErrShortIO
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		lat[i] = r.cfg.Now().Sub(t0)
		return nil
	})
	el := r.cfg.Now().Sub(start)
	if err != nil {
		return Result{}, err
	}
	res := latency(Creates, c, smallIO, lat, el)
	res.Note = "create + 4 KiB write + close per file"
	return res, nil
}

// appends: Ops records of 4 KiB appended to one file by Concurrency
// producers, each with its own File (client.File.Append: durable on
// every replica, exactly once, the size reported, when it returns).
func (r *runner) appends(ctx context.Context) (Result, error) {
	c := r.conc(8)
	p := path.Join(r.cfg.Dir, "appends.log")
	f, err := r.cfg.FS.Create(ctx, p, r.createOpts())
	if err != nil {
		return Result{}, fmt.Errorf("create: %w", err)
	}
	if err := f.Close(); err != nil {
		return Result{}, fmt.Errorf("create: close: %w", err)
	}
	files := make([]File, c)
	for i := range files {
		if files[i], err = r.cfg.FS.Open(ctx, p); err != nil {
			return Result{}, fmt.Errorf("open: %w", err)
		}
		defer files[i].Close()
	}
	lat := make([]time.Duration, r.cfg.Ops)
	rec := pattern(smallIO)
	start := r.cfg.Now()
	err = forEachWorker(ctx, r.cfg.Ops, c, func(ctx context.Context, w, i int) error {
		t0 := r.cfg.Now()
		_, err := files[w].Append(ctx, rec)
		lat[i] = r.cfg.Now().Sub(t0)
		if err != nil {
			return fmt.Errorf("append %d: %w", i, err)
		}
		return nil
	})
	el := r.cfg.Now().Sub(start)
	if err != nil {
		return Result{}, err
	}
	res := latency(Appends, c, smallIO, lat, el)
	res.Note = "4 KiB records, one File per producer; durable, exactly once, size reported"
	return res, nil
}

func throughput(w string, conc, block int, bytes int64, el time.Duration, note string) Result {
	s := el.Seconds()
	res := Result{Workload: w, Concurrency: conc, Block: block, Bytes: bytes,
		Ops: (bytes + int64(block) - 1) / int64(block), Seconds: s, Note: note}
	if s > 0 {
		res.MBps = float64(bytes) / s / 1e6
		res.OpsPerSec = float64(res.Ops) / s
	}
	return res
}

func latency(w string, conc, size int, lat []time.Duration, el time.Duration) Result {
	s := el.Seconds()
	res := Result{Workload: w, Concurrency: conc, Block: size, Ops: int64(len(lat)),
		Bytes: int64(len(lat)) * int64(size), Seconds: s}
	if s > 0 {
		res.OpsPerSec = float64(len(lat)) / s
		res.MBps = float64(res.Bytes) / s / 1e6
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	res.P50us = micros(Percentile(sorted, 50))
	res.P99us = micros(Percentile(sorted, 99))
	if len(sorted) > 0 {
		res.MaxUs = micros(sorted[len(sorted)-1])
	}
	return res
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Percentile returns the p-th percentile (nearest rank) of sorted, which
// must be in ascending order; 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// Nearest rank: the smallest value with at least p% of values <= it.
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}
