package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/bench"
	"github.com/catena-io/catena/internal/cluster"
)

// sizeValue is a pflag.Value for byte counts written like 1GiB or 8M.
type sizeValue struct{ p *int64 }

func (v sizeValue) String() string {
	if v.p == nil {
		return "0"
	}
	return bench.ByteSize(*v.p)
}
func (v sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}
func (v sizeValue) Type() string { return "size" }

func newBenchCmd(g *globals) *cobra.Command {
	var (
		cfg         bench.Config
		block       int64
		workloads   string
		embedded    bool
		embTLS      bool
		embDir      string
		out         string
		dropCaches  bool
		chunkSize   int64
		replication int
		cpuProfile  string
	)
	cfg.Size = bench.DefaultSize
	block = bench.DefaultBlock
	cfg.SyncFileSize = bench.DefaultSyncFileSize
	cmd := &cobra.Command{
		Use:   "bench [--embedded] [--workloads seqwrite,seqread,sync4k,creates,appends] [flags]",
		Short: "Measure write/read throughput, sync write latency and create rate",
		Long: "Run benchmarks through the client library against --master, or against an\n" +
			"in-process cluster (--embedded). Prints a table and writes JSON to --out.\n" +
			"Compare the figures with the machine's own limits: see docs/benchmarks.md\n" +
			"and bench/baseline.sh.",
		Example: "  catena bench --embedded\n" +
			"  catena bench --workloads seqwrite,seqread --size 2GiB --replication 3\n" +
			"  catena bench --workloads sync4k --ops 5000 --concurrency 4",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, a []string) error {
			if block <= 0 || block > 1<<30 {
				return &usageError{cmd: cmd, err: fmt.Errorf("--block must be in (0, 1GiB]")}
			}
			cfg.Block = int(block)
			cfg.ChunkSize = chunkSize
			cfg.Replication = replication
			cfg.Workloads = splitList(workloads)
			cfg.Logger = g.logger(cmd.ErrOrStderr())
			if dropCaches {
				cfg.DropCaches = dropPageCache
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return fail("bench", err)
				}
				defer stop()
			}
			return fail("bench", runBench(cmd, g, cfg, embedded, embTLS, embDir, out))
		},
	}
	f := cmd.Flags()
	f.StringVar(&workloads, "workloads", strings.Join(bench.AllWorkloads(), ","), "comma-separated workloads to run")
	f.Var(sizeValue{&cfg.Size}, "size", "size of the seqwrite/seqread file")
	f.Var(sizeValue{&block}, "block", "size of one seqwrite/seqread WriteAt/ReadAt")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, "calls in flight (default: 4 for seqwrite, seqread, creates; 1 for sync4k)")
	f.IntVar(&cfg.Ops, "ops", bench.DefaultOps, "number of sync4k writes and of appends")
	f.Var(sizeValue{&cfg.SyncFileSize}, "sync-file-size", "size of the preallocated file sync4k writes into")
	f.IntVar(&cfg.Files, "files", bench.DefaultFiles, "number of files for creates")
	f.IntVar(&replication, "replication", client.DefaultReplication, "replication factor of the bench files")
	f.Var(sizeValue{&chunkSize}, "chunk-size", "chunk size of the bench files (default: client default, 64MiB)")
	f.BoolVar(&embedded, "embedded", false, "start an in-process cluster (1 master, 3 chunkservers) instead of using --master")
	f.BoolVar(&embTLS, "tls", false, "with --embedded: run the cluster with mutual TLS (its cost: compare with a run without)")
	f.StringVar(&embDir, "embedded-dir", "", "data directory of the embedded cluster (default: a temp dir, removed afterwards)")
	f.StringVar(&out, "out", "", "JSON results file (default: bench-results/<timestamp>.json)")
	f.BoolVar(&dropCaches, "drop-caches", false, "drop the OS page cache before seqread (needs root; affects the whole machine)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of this process to FILE (with --embedded it covers the whole cluster)")
	f.BoolVar(&g.json, "json", false, "print the JSON report on stdout instead of the table")
	return cmd
}

func runBench(cmd *cobra.Command, g *globals, cfg bench.Config, embedded, embTLS bool, embDir, out string) (err error) {
	ctx := cmd.Context()
	started := time.Now()
	var (
		c      *client.Client
		target string
	)
	if embedded {
		cl, dir, cleanup, err := startEmbedded(ctx, embDir, embTLS, cfg.Logger)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, cleanup()) }()
		c, err = cl.NewClient()
		if err != nil {
			return err
		}
		target = "embedded:" + dir
	} else {
		c, err = g.newClient()
		if err != nil {
			return err
		}
		target = g.masters
	}
	defer c.Close()

	cfg.FS = bench.ClientFS(c)
	cfg.Dir = fmt.Sprintf("/.catena-bench-%d", started.UnixNano())
	results, err := bench.Run(ctx, cfg)
	host, _ := os.Hostname()
	rep := &bench.Report{
		Started: started, Host: host, Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		Target: target, Replication: cfg.Replication, ChunkSize: cfg.ChunkSize,
		Size: cfg.Size, Block: cfg.Block, Results: results,
	}
	if rep.ChunkSize == 0 {
		rep.ChunkSize = client.DefaultChunkSize
	}
	if err != nil && len(results) == 0 {
		return err
	}
	// Keep what finished even when a later workload failed.
	if out == "" {
		out = filepath.Join("bench-results", started.Format("20060102-150405")+".json")
	}
	werr := writeReport(out, rep)
	w := cmd.OutOrStdout()
	if g.json {
		if jerr := bench.WriteJSON(w, rep); jerr != nil {
			werr = errors.Join(werr, jerr)
		}
	} else {
		fmt.Fprintf(w, "catena bench: %s, replication %d, chunk size %s, %d cores\n",
			target, rep.Replication, bench.ByteSize(rep.ChunkSize), rep.Cores)
		if terr := bench.WriteTable(w, rep); terr != nil {
			werr = errors.Join(werr, terr)
		}
		if werr == nil {
			fmt.Fprintf(w, "results written to %s\n", out)
		}
	}
	return errors.Join(err, werr)
}

func writeReport(path string, rep *bench.Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := bench.WriteJSON(f, rep); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startEmbedded starts a 3-chunkserver cluster in dir (a fresh temp dir
// when empty); cleanup stops it and removes a temp dir it made.
func startEmbedded(ctx context.Context, dir string, tls bool, log *slog.Logger) (*cluster.Cluster, string, func() error, error) {
	tmp := dir == ""
	if tmp {
		d, err := os.MkdirTemp("", "catena-bench-")
		if err != nil {
			return nil, "", nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", nil, err
	}
	cl, err := cluster.Start(ctx, cluster.Config{Dir: dir, Chunkservers: 3, Logger: log, Insecure: !tls})
	if err != nil {
		if tmp {
			os.RemoveAll(dir)
		}
		return nil, "", nil, err
	}
	return cl, dir, func() error {
		err := cl.Close()
		if tmp {
			err = errors.Join(err, os.RemoveAll(dir))
		}
		return err
	}, nil
}

// dropPageCache writes dirty pages back and drops the page cache, so the
// next read comes from disk. Linux only; needs root.
func dropPageCache() error {
	f, err := os.OpenFile("/proc/sys/vm/drop_caches", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	syscall.Sync()
	_, err = f.WriteString("3\n")
	return err
}

// startCPUProfile starts a pprof CPU profile into path; stop ends it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
