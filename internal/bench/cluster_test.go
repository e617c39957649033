package bench

import (
	"errors"
	"testing"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
)

// TestRunAgainstCluster runs every workload, small, through the real client
// against an in-process cluster: the path `catena bench --embedded` takes.
func TestRunAgainstCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	ctx := t.Context()
	cl, err := cluster.Start(ctx, cluster.Config{Dir: t.TempDir(), Chunkservers: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	c, err := cl.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	res, err := Run(ctx, Config{
		FS: ClientFS(c), Dir: "/.bench", Size: 3<<20 + 4096, Block: 1 << 20,
		Ops: 20, SyncFileSize: 1 << 20, Files: 10, Replication: 3, ChunkSize: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(AllWorkloads()) {
		t.Fatalf("got %d results, want %d: %+v", len(res), len(AllWorkloads()), res)
	}
	for _, r := range res {
		if r.Ops == 0 || r.OpsPerSec <= 0 {
			t.Errorf("%s: no progress: %+v", r.Workload, r)
		}
	}
	if res[2].P50us <= 0 || res[2].P99us < res[2].P50us || res[2].MaxUs < res[2].P99us {
		t.Errorf("sync4k latencies inconsistent: %+v", res[2])
	}
	// Run cleans up after itself.
	if _, err := c.Stat(ctx, "/.bench"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Stat after run: %v, want ErrNotFound", err)
	}
}
