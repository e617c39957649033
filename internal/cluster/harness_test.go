package cluster_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// TestCheckReplicasDetects makes sure the cleanup check can fail: a replica
// whose bytes differ and a missing replica are both reported.
func TestCheckReplicasDetects(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Labels: func(i int) map[string]string {
		return map[string]string{"zone": fmt.Sprintf("z%d", i)}
	}})
	cl := clustertest.Client(t, c)
	r := newRand(t)
	ctx := t.Context()

	f := create(t, cl, "/f")
	writeAt(t, f, randBytes(r, 300*kib), 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckReplicas(ctx); err != nil {
		t.Fatalf("healthy cluster: %v", err)
	}
	_, chunks, err := cl.StatChunks(ctx, "/f")
	if err != nil || len(chunks) != 1 {
		t.Fatalf("StatChunks: %v, %d chunks", err, len(chunks))
	}
	h := chunks[0].Handle

	// Labels reach the master.
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]bool{}
	for _, cs := range st.Chunkservers {
		zones[cs.Labels["zone"]] = true
	}
	if len(zones) != 3 || !zones["z0"] || !zones["z2"] {
		t.Fatalf("zones reported %v, want z0, z1, z2", zones)
	}

	// Diverge one replica on a stopped server, keeping its checksums valid.
	const victim = 2
	if err := c.StopChunkserver(victim); err != nil {
		t.Fatal(err)
	}
	// Keep the victim's whole chunk engine aside, to put it back at the end.
	engineDir := filepath.Join(c.ChunkserverDir(victim), "engine")
	saved := filepath.Join(t.TempDir(), "engine")
	if err := os.CopyFS(saved, os.DirFS(engineDir)); err != nil {
		t.Fatal(err)
	}
	openVictim := func() *chunkstore.Store {
		t.Helper()
		st, err := chunkstore.Open(chunkstore.OSFS, c.ChunkserverDir(victim))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	st2 := openVictim()
	rep, err := st2.Get(chunkstore.Handle(h))
	if err != nil {
		t.Fatal(err)
	}
	// Flip every bit of 9 bytes at 1000, so the first difference is at
	// 1000 whatever the data was.
	div := make([]byte, 9)
	if _, err := rep.ReadAt(div, 1000); err != nil {
		t.Fatal(err)
	}
	for i := range div {
		div[i] ^= 0xff
	}
	if err := rep.WriteAt(div, 1000); err != nil {
		t.Fatal(err)
	}
	if err := rep.Sync(); err != nil {
		t.Fatal(err)
	}
	st2.Close()
	err = c.CheckReplicas(ctx)
	if !errors.Is(err, cluster.ErrReplicasDiffer) || !strings.Contains(err.Error(), "bytes differ at offset 1000") {
		t.Fatalf("divergent replica: %v, want ErrReplicasDiffer at offset 1000", err)
	}

	// A missing replica.
	st2 = openVictim()
	if err := st2.Delete(chunkstore.Handle(h)); err != nil {
		t.Fatal(err)
	}
	st2.Close()
	err = c.CheckReplicas(ctx)
	if !errors.Is(err, cluster.ErrReplicasDiffer) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing replica: %v, want ErrReplicasDiffer naming it", err)
	}

	// Put the original back; the server comes back with it.
	if err := os.RemoveAll(engineDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(engineDir, os.DirFS(saved)); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckReplicas(ctx); err != nil {
		t.Fatalf("restored replica: %v", err)
	}
	if err := c.RestartChunkserver(ctx, victim); err != nil {
		t.Fatal(err)
	}
}

func TestHarnessErrors(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 1})
	ctx := t.Context()
	if err := c.RestartChunkserver(ctx, 0); !errors.Is(err, cluster.ErrRunning) {
		t.Errorf("restart of a running server: %v, want ErrRunning", err)
	}
	if err := c.StopChunkserver(1); !errors.Is(err, cluster.ErrNoSuchChunkserver) {
		t.Errorf("stop of server 1 of 1: %v, want ErrNoSuchChunkserver", err)
	}
	id := c.ChunkserverID(0)
	if err := c.StopChunkserver(0); err != nil {
		t.Fatal(err)
	}
	if c.Chunkserver(0) != nil {
		t.Error("stopped server still returned")
	}
	if err := c.StopChunkserver(0); !errors.Is(err, cluster.ErrStopped) {
		t.Errorf("stop of a stopped server: %v, want ErrStopped", err)
	}
	if err := c.RestartChunkserver(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := c.Chunkserver(0); got == nil || got.ID() != id {
		t.Fatalf("restarted server: %v, want id %d", got, id)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.CheckReplicas(ctx); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("CheckReplicas after Close: %v, want ErrClosed", err)
	}
	if err := c.StopChunkserver(0); !errors.Is(err, cluster.ErrClosed) {
		t.Errorf("StopChunkserver after Close: %v, want ErrClosed", err)
	}
}

// TestSettleChecksEveryMaster: the cleanup restarts a stopped master, and
// runs the metadata fsck on all three once the restarted one caught up.
func TestSettleChecksEveryMaster(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Masters: 3, Chunkservers: 1})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	follower := (c.LeaderIndex() + 1) % c.NumMasters()
	if err := c.KillMaster(follower); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := cl.MkdirAll(ctx, fmt.Sprintf("/d%d", i), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := cl.Create(ctx, fmt.Sprintf("/d%d/f", i), client.CreateOptions{Replication: 1, ChunkSize: chunkSize})
		if err != nil {
			t.Fatal(err)
		}
		writeAt(t, f, []byte("catena"), 0)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if c.MasterAt(follower) == nil {
		t.Fatalf("master %d still stopped after Settle", follower)
	}
	for i := range c.NumMasters() {
		if err := c.MasterAt(i).CheckState(); err != nil {
			t.Errorf("master %d: %v", i, err)
		}
	}
}
