package bench

// Metadata and failover figures of docs/benchmarks.md ("Metadata and
// failover"), as Go benchmarks over in-process clusters. Reproduce:
//
//	go test ./internal/bench -run '^$' -bench 'BenchmarkMeta' -benchtime 2s
//	go test ./internal/bench -run '^$' -bench 'BenchmarkFailover' -benchtime 1x -timeout 30m
//	go test ./internal/bench -run '^$' -bench 'BenchmarkRestart' -benchtime 1x -timeout 60m \
//	    -catena.bench.files 1000000
//
// They are benchmarks, not tests: nothing here asserts a figure.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
)

var (
	benchFiles = flag.Int("catena.bench.files", 100_000,
		"number of files in the namespace BenchmarkRestart restarts a master with")
	benchFailovers = flag.Int("catena.bench.failovers", 10,
		"number of leader kills BenchmarkFailover measures")
)

const listEntries = 10_000

func startBenchCluster(b *testing.B, masters int) (*cluster.Cluster, *client.Client) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cluster.DefaultReadyTimeout)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Config{Dir: b.TempDir(), Masters: masters, Chunkservers: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	cl, err := c.NewClientConfig(client.Config{OpTimeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cl.Close() })
	return c, cl
}

// fill creates n empty files dir/f%07d with conc creates in flight.
func fill(ctx context.Context, cl *client.Client, dir string, from, n, conc int) error {
	if err := cl.MkdirAll(ctx, dir, 0o755); err != nil {
		return err
	}
	return forEach(ctx, n, conc, func(ctx context.Context, i int) error {
		_, err := cl.Create(ctx, fmt.Sprintf("%s/f%07d", dir, from+i), client.CreateOptions{Replication: 1})
		return err
	})
}

// BenchmarkMeta measures create, stat and the list of a 10 000-entry
// directory against 1 and 3 voters, one client, conc calls in flight.
func BenchmarkMeta(b *testing.B) {
	for _, voters := range []int{1, 3} {
		b.Run(fmt.Sprintf("voters=%d", voters), func(b *testing.B) {
			_, cl := startBenchCluster(b, voters)
			ctx := context.Background()
			if err := fill(ctx, cl, "/list", 0, listEntries, 32); err != nil {
				b.Fatal(err)
			}
			var seq atomic.Int64
			for _, conc := range []int{1, 16} {
				b.Run(fmt.Sprintf("create/conc=%d", conc), func(b *testing.B) {
					if err := cl.MkdirAll(ctx, "/c", 0o755); err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					err := forEach(ctx, b.N, conc, func(ctx context.Context, _ int) error {
						_, err := cl.Create(ctx, fmt.Sprintf("/c/f%d", seq.Add(1)), client.CreateOptions{Replication: 1})
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
				b.Run(fmt.Sprintf("stat/conc=%d", conc), func(b *testing.B) {
					err := forEach(ctx, b.N, conc, func(ctx context.Context, i int) error {
						_, err := cl.Stat(ctx, fmt.Sprintf("/list/f%07d", i%listEntries))
						return err
					})
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
			b.Run("list10k", func(b *testing.B) {
				for b.Loop() {
					ents, err := cl.ReadDir(ctx, "/list")
					if err != nil {
						b.Fatal(err)
					}
					if len(ents) != listEntries {
						b.Fatalf("list: %d entries, want %d", len(ents), listEntries)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				b.ReportMetric(float64(b.N*listEntries)/b.Elapsed().Seconds(), "entries/s")
			})
		})
	}
}

// BenchmarkFailover kills the leader of 3 voters while one client creates
// files back to back and reports the client-visible stall: from the last
// create acknowledged before the kill to the first acknowledged after it.
func BenchmarkFailover(b *testing.B) {
	c, cl := startBenchCluster(b, 3)
	ctx := context.Background()
	if err := cl.MkdirAll(ctx, "/fo", 0o755); err != nil {
		b.Fatal(err)
	}
	// The probe records the completion time of every acknowledged create.
	var (
		mu   sync.Mutex
		acks []time.Time
	)
	ackCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acks) }
	stop := make(chan struct{})
	probeErr := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				probeErr <- nil
				return
			default:
			}
			if _, err := cl.Create(ctx, fmt.Sprintf("/fo/f%d", i), client.CreateOptions{Replication: 1}); err != nil {
				probeErr <- err
				return
			}
			mu.Lock()
			acks = append(acks, time.Now())
			mu.Unlock()
		}
	}()
	// await polls cond (a condition on the probe or the cluster) for a minute.
	await := func(what string, cond func() bool) {
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				b.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// stall is the longest gap between consecutive acknowledgements from
	// the last one before from to the first one after to: the client saw
	// no progress for that long. (Gaps, not "first ack after the kill":
	// an ack may be recorded a little after the old leader sent it.)
	stall := func(from, to time.Time) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		i, _ := slices.BinarySearchFunc(acks, from, func(a, t time.Time) int { return a.Compare(t) })
		i = max(i-1, 0)
		var worst time.Duration
		for ; i+1 < len(acks); i++ {
			worst = max(worst, acks[i+1].Sub(acks[i]))
			if acks[i+1].After(to) {
				break
			}
		}
		return worst
	}
	var stalls []time.Duration
	for range b.N {
		stalls = stalls[:0]
		for run := range *benchFailovers {
			n := ackCount()
			await("probe progress", func() bool { return ackCount() >= n+20 })
			old := c.LeaderIndex()
			killed := time.Now()
			if err := c.KillMaster(old); err != nil {
				b.Fatal(err)
			}
			if _, err := c.AwaitLeader(ctx); err != nil {
				b.Fatal(err)
			}
			elected := time.Now()
			await("an ack from the new leader", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return acks[len(acks)-1].After(elected)
			})
			stalls = append(stalls, stall(killed, elected))
			if err := c.RestartMaster(ctx, old); err != nil {
				b.Fatal(err)
			}
			m := c.MasterAt(old)
			await(fmt.Sprintf("run %d: restarted master %d to catch up", run, old), func() bool {
				return m.AppliedIndex() >= c.Master().AppliedIndex()
			})
		}
	}
	close(stop)
	if err := <-probeErr; err != nil {
		b.Fatalf("probe: %v", err)
	}
	slices.Sort(stalls)
	b.Logf("stalls: %v", stalls)
	b.ReportMetric(float64(Percentile(stalls, 50))/1e6, "p50-stall-ms")
	b.ReportMetric(float64(stalls[len(stalls)-1])/1e6, "max-stall-ms")
}

// BenchmarkRestart fills one master with -catena.bench.files files
// (10 000 per directory), kills it and reports the time until it serves a
// Stat again (open Raft state, load the snapshot, replay the log tail,
// elect itself), plus the on-disk size of its state.
func BenchmarkRestart(b *testing.B) {
	c, cl := startBenchCluster(b, 1)
	ctx := context.Background()
	n := *benchFiles
	t0 := time.Now()
	for d := 0; d*listEntries < n; d++ {
		if err := fill(ctx, cl, fmt.Sprintf("/r/d%03d", d), d*listEntries, min(listEntries, n-d*listEntries), 32); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d files created in %v (%.0f/s)", n, time.Since(t0), float64(n)/time.Since(t0).Seconds())
	probe := fmt.Sprintf("/r/d%03d/f%07d", (n-1)/listEntries, n-1)
	// What the restart loads: the snapshots taken so far (the rest is
	// replayed from the log).
	snaps, _ := filepath.Glob(filepath.Join(c.Dir(), "master", "raft", "snapshots", "*"))
	b.Logf("applied index %d; snapshots: %v", c.Master().AppliedIndex(), snaps)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := c.KillMaster(0); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		// A long deadline: by default the harness gives a restart 30 s.
		rctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
		err := c.RestartMaster(rctx, 0)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		opened := time.Since(start)
		if _, err := c.AwaitLeader(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := cl.Stat(ctx, probe); err != nil {
			b.Fatal(err)
		}
		b.Logf("restart: Start returned after %v, serving after %v", opened, time.Since(start))
	}
	b.StopTimer()
	var size int64
	_ = filepath.Walk(filepath.Join(c.Dir(), "master"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	b.ReportMetric(float64(n), "files")
	b.ReportMetric(float64(size)/1e6, "state-MB")
}
