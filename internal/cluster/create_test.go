package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chunkserver"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// Creation of replicas (internal/chunkserver's doc.go, "Creation"): a new
// chunk's replicas come into being with its first write, without a
// CreateReplica round from the master.

// metricsSum adds up the creation counters of every chunkserver.
func metricsSum(c *cluster.Cluster) chunkserver.Metrics {
	var sum chunkserver.Metrics
	for i := range c.NumChunkservers() {
		m := c.Chunkserver(i).Metrics()
		sum.CreateReplicaCalls += m.CreateReplicaCalls
		sum.CreatedByWrite += m.CreatedByWrite
		sum.CreatedByUpdate += m.CreatedByUpdate
	}
	return sum
}

func masterClient(t testing.TB, c *cluster.Cluster) api.MasterClient {
	t.Helper()
	conn, err := grpc.NewClient(c.MasterAddr(), c.DialOption(auth.RoleMaster))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return api.NewMasterClient(conn)
}

// TestFirstWriteCreatesReplicas: writing new files makes no CreateReplica
// call; each chunk's replicas are created by its first write, one at the
// head and one per successor, and the files read back.
func TestFirstWriteCreatesReplicas(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	cl := clustertest.Client(t, c)
	r := newRand(t)
	sizes := []int{1, 4 * kib, chunkSize + 5*kib} // the last spans two chunks
	want := map[string][]byte{}
	chunks := 0
	for i, n := range sizes {
		p := fmt.Sprintf("/new%d", i)
		f := create(t, cl, p)
		want[p] = randBytes(r, n)
		writeAt(t, f, want[p], 0)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		chunks += (n + chunkSize - 1) / chunkSize
	}
	for p, b := range want {
		if got := readAll(t, cl, p); !bytes.Equal(got, b) {
			t.Fatalf("%s reads back differently", p)
		}
	}
	m := metricsSum(c)
	if m.CreateReplicaCalls != 0 {
		t.Fatalf("%d CreateReplica calls for new files", m.CreateReplicaCalls)
	}
	if m.CreatedByWrite != uint64(chunks) || m.CreatedByUpdate != uint64(2*chunks) {
		t.Fatalf("creations %+v, want %d by write and %d by update", m, chunks, 2*chunks)
	}
	if err := c.CheckReplicas(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestReadChunkNoWriteReached: a chunk allocated by a writer that never
// wrote (it died) has no replica; reading it gives zeros, and a later
// write creates the replicas.
func TestReadChunkNoWriteReached(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	cl := clustertest.Client(t, c)
	mc := masterClient(t, c)
	ctx := t.Context()
	f := create(t, cl, "/hole")
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: fi.Inode, Index: 0}); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(ctx, 8*kib); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, cl, "/hole"); !bytes.Equal(got, make([]byte, 8*kib)) {
		t.Fatal("a chunk no write reached does not read as zeros")
	}
	writeAt(t, f, []byte("late"), 4*kib)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, cl, "/hole")
	if string(got[4*kib:4*kib+4]) != "late" {
		t.Fatal("the late first write is not read back")
	}
	if m := metricsSum(c); m.CreateReplicaCalls != 0 || m.CreatedByWrite != 1 {
		t.Fatalf("creations %+v", m)
	}
}

// TestOrphanFromStaleWriteCollected: a write that reaches the head after
// its chunk was deleted (a client with an old chunk map) creates replicas
// of a chunk the master no longer knows; the heartbeat reconciliation of
// inventories deletes them.
func TestOrphanFromStaleWriteCollected(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	cl := clustertest.Client(t, c)
	mc := masterClient(t, c)
	ctx := t.Context()
	f := create(t, cl, "/gone")
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	ar, err := mc.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: fi.Inode, Index: 0})
	if err != nil {
		t.Fatal(err)
	}
	ci := ar.GetChunk()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Remove(ctx, "/gone"); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(ci.GetChain()[0].GetAddr(), c.DialOption(auth.RoleChunkserver))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := api.NewChunkserverClient(conn).Write(ctx, &api.WriteRequest{
		Handle: ci.GetHandle(), Epoch: ci.GetEpoch(), Kind: api.UpdateKind_WRITE, Data: []byte("stale"),
		ClientId: 77, RequestId: 1, Create: &api.ReplicaSpec{ChunkSize: ci.GetChunkSize(), Chain: ci.GetChain()},
		Capability: ci.GetCapability(),
	}); err != nil {
		t.Fatalf("stale write: %v", err)
	}
	holders := func() (n int, err error) {
		for i := range c.NumChunkservers() {
			hs, err := c.ReplicaHandles(i)
			if err != nil {
				return 0, err
			}
			if slices.Contains(hs, ci.GetHandle()) {
				n++
			}
		}
		return n, nil
	}
	if n, err := holders(); err != nil || n != 3 {
		t.Fatalf("orphan replicas on %d servers (%v), want 3", n, err)
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		if n, err := holders(); err != nil || n != 0 {
			return fmt.Errorf("orphan replicas still on %d servers (%v)", n, err)
		}
		return nil
	})
}

// TestUnwrittenChunkAfterPowerCut: a chunk allocated just before a power
// cut of every chunkserver, with no write yet, has no replica anywhere,
// and none of the restarted servers may create one from a write (each may
// have held and lost it). The master creates them once the members lacked
// it past the grace, and the write goes through.
func TestUnwrittenChunkAfterPowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the master's grace for missing replicas (10 s)")
	}
	c := clustertest.New(t, cluster.Config{MemDisks: true})
	cl := clustertest.Client(t, c)
	mc := masterClient(t, c)
	ctx := t.Context()
	f := create(t, cl, "/cut")
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mc.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: fi.Inode, Index: 0}); err != nil {
		t.Fatal(err)
	}
	if err := c.PowerCut(context.Background(), func(int, string, int64) bool { return false }); err != nil {
		t.Fatal(err)
	}
	writeAt(t, f, []byte("after the cut"), 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, cl, "/cut"); string(got) != "after the cut" {
		t.Fatalf("read %q", got)
	}
	if m := metricsSum(c); m.CreateReplicaCalls < 3 || m.CreatedByWrite != 0 {
		t.Fatalf("creations %+v: want the master's CreateReplica on every member and none by the write", m)
	}
}
