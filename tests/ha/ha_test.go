package ha

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

func start(t *testing.T) *cluster.Cluster {
	t.Helper()
	return clustertest.New(t, cluster.Config{Masters: 3, Chunkservers: 3})
}

func newClient(t *testing.T, c *cluster.Cluster) *client.Client {
	t.Helper()
	cl, err := c.NewClientConfig(client.Config{OpTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// await polls cond until it holds or d passes.
func await(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func names(t *testing.T, cl *client.Client, dir string) []string {
	t.Helper()
	ents, err := cl.ReadDir(context.Background(), dir)
	if err != nil {
		t.Fatalf("readdir %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name)
	}
	slices.Sort(out)
	return out
}

// storm runs workers that each create, rename and remove their own files
// until stop is closed, and returns the names that must exist at the end.
// storm runs workers that create, rename and remove files until stop is
// closed. It returns wait (join, fail on any client error, return the names
// that must exist) and progress (block until n more operations were
// acknowledged: load flows between faults, awaited rather than slept).
func storm(t *testing.T, c *cluster.Cluster, workers int, stop <-chan struct{}) (wait func() []string, progress func(n int64)) {
	var acked atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var want []string
	var errs []error
	for w := range workers {
		cl := newClient(t, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("/w%d-%d", w, i)
				f, err := cl.Create(ctx, p, client.CreateOptions{Replication: 1})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				f.Close()
				name := p[1:]
				switch i % 3 {
				case 1:
					err = cl.Rename(ctx, p, p+".r")
					name += ".r"
				case 2:
					err = cl.Remove(ctx, p)
					name = ""
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if name != "" {
					mu.Lock()
					want = append(want, name)
					mu.Unlock()
				}
				acked.Add(1)
			}
		}()
	}
	wait = func() []string {
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("client errors during the storm: %v", errors.Join(errs...))
		}
		slices.Sort(want)
		return want
	}
	progress = func(n int64) {
		t.Helper()
		target := acked.Load() + n
		await(t, 30*time.Second, fmt.Sprintf("%d more acknowledged operations", n), func() bool {
			mu.Lock()
			failed := len(errs) > 0
			mu.Unlock()
			return failed || acked.Load() >= target
		})
	}
	return wait, progress
}

func TestKillLeaderDuringStorm(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	stop := make(chan struct{})
	wait, progress := storm(t, c, 4, stop)
	for round := 0; round < 2; round++ {
		progress(20)
		old := c.LeaderIndex()
		if old < 0 {
			t.Fatal("no leader")
		}
		if err := c.KillMaster(old); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AwaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.RestartMaster(ctx, old); err != nil {
			t.Fatal(err)
		}
	}
	progress(20)
	close(stop)
	want := wait()
	if len(want) == 0 {
		t.Fatal("no operation acknowledged")
	}
	if got := names(t, newClient(t, c), "/"); !slices.Equal(got, want) {
		t.Fatalf("namespace after failovers:\n got %v\nwant %v", got, want)
	}
}

func TestPartitionedLeaderStops(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	cl := newClient(t, c)
	if err := cl.Mkdir(ctx, "/before", 0o755); err != nil {
		t.Fatal(err)
	}
	old := c.LeaderIndex()
	c.IsolateMaster(old)
	cut := time.Now()
	// Leader lease (250ms) + a few heartbeat timeouts, generously.
	await(t, 3*time.Second, "old leader to step down", func() bool { return !c.MasterAt(old).IsLeader() })
	t.Logf("old leader stepped down after %v", time.Since(cut))
	await(t, 10*time.Second, "a new leader", func() bool { i := c.LeaderIndex(); return i >= 0 && i != old })
	if err := cl.Mkdir(ctx, "/after", 0o755); err != nil {
		t.Fatalf("majority side does not serve: %v", err)
	}
	c.RejoinMaster(old)
	if got := names(t, cl, "/"); !slices.Equal(got, []string{"after", "before"}) {
		t.Fatalf("namespace %v", got)
	}
	// The old leader rejoins as a follower and catches up.
	await(t, 10*time.Second, "old leader to catch up", func() bool {
		return c.MasterAt(old).AppliedIndex() >= c.Master().AppliedIndex()
	})
}

func TestRestartAllMasters(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	cl := newClient(t, c)
	for i := range 20 {
		if err := cl.MkdirAll(ctx, fmt.Sprintf("/d%d/e", i%4), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := cl.Create(ctx, fmt.Sprintf("/d%d/f%d", i%4, i), client.CreateOptions{Replication: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("hello"), 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	before, err := c.Master().Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.NumMasters() {
		if err := c.KillMaster(i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range c.NumMasters() {
		if err := c.RestartMaster(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.AwaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := c.Master().Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatalf("state differs after restarting every master:\nbefore %s\nafter  %s", before, after)
	}
	got := names(t, cl, "/d1")
	if !slices.Equal(got, []string{"e", "f1", "f13", "f17", "f5", "f9"}) {
		t.Fatalf("/d1 after restart: %v", got)
	}
}

func TestRollingRestartUnderLoad(t *testing.T) {
	c := start(t)
	ctx := context.Background()
	stop := make(chan struct{})
	wait, progress := storm(t, c, 2, stop)
	for i := range c.NumMasters() {
		if err := c.KillMaster(i); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AwaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.RestartMaster(ctx, i); err != nil {
			t.Fatal(err)
		}
		progress(10) // load between restarts
	}
	close(stop)
	want := wait()
	if got := names(t, newClient(t, c), "/"); !slices.Equal(got, want) {
		t.Fatalf("namespace after rolling restart:\n got %v\nwant %v", got, want)
	}
}
