package fuse

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// A lost chunkserver or master makes operations on the mount wait and
// retry (within the client's OpTimeout), never fail with EIO.

// failCluster has short leases so a dead chunkserver leaves its chains
// within a second; 4 chunkservers so repair can restore 3 replicas.
func failCluster(t *testing.T) (*cluster.Cluster, string) {
	t.Helper()
	c := clustertest.New(t, cluster.Config{
		Chunkservers:      4,
		HeartbeatInterval: 50 * time.Millisecond,
		Lease:             400 * time.Millisecond,
		DriftMargin:       100 * time.Millisecond,
		RepairInterval:    50 * time.Millisecond,
	})
	cl, err := c.NewClientConfig(client.Config{OpTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return c, mount(t, cl)
}

func TestChunkserverLostDuringWrite(t *testing.T) {
	needs(t)
	c, d := failCluster(t)
	data := make([]byte, 48<<20) // 12 chunks of 4 MiB, spread over the 4
	rand.Read(data)
	p := filepath.Join(d, "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const piece = 1 << 20
	for off := 0; off < len(data); off += piece {
		if off == len(data)/3 {
			// Chunkserver 0 holds a replica of most chunks: the
			// following write-backs meet its chains until the master
			// has taken it out.
			if err := c.Kill(0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.Write(data[off : off+piece]); err != nil {
			t.Fatalf("write at %d after the kill: %v", off, err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, differ from the %d written", len(got), len(data))
	}
	// The cleanup waits for every chain to have 3 replicas again.
}

func TestMasterLostDuringOps(t *testing.T) {
	needs(t)
	c, d := failCluster(t)
	if err := os.WriteFile(filepath.Join(d, "before"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.KillMaster(0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if err := os.Mkdir(filepath.Join(d, "dir"), 0o755); err != nil {
			done <- err
			return
		}
		done <- os.WriteFile(filepath.Join(d, "dir", "f"), []byte("written while the master was down"), 0o644)
	}()
	// The operations must wait for the master, not fail.
	select {
	case err := <-done:
		t.Fatalf("operations finished without a master: %v", err)
	case <-time.After(time.Second):
	}
	if err := c.RestartMaster(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("operations across the master restart: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("operations still blocked 30s after the master came back")
	}
	got, err := os.ReadFile(filepath.Join(d, "dir", "f"))
	if err != nil || string(got) != "written while the master was down" {
		t.Fatalf("read back %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(d, "before")); err != nil || string(got) != "x" {
		t.Fatalf("file from before the restart: %q, %v", got, err)
	}
}
