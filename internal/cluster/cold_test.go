package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// awaitAllCold waits until no chunkserver of c holds an active replica
// (chunkserver cold.go) and returns how many were made cold in all.
func awaitAllCold(t *testing.T, c *cluster.Cluster) uint64 {
	t.Helper()
	var made uint64
	deadline := time.Now().Add(failTimeout)
	for {
		active := 0
		made = 0
		for i := range c.NumChunkservers() {
			m := c.Chunkserver(i).Metrics()
			active += m.Active
			made += m.MadeCold
		}
		if active == 0 {
			return made
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replicas still active", active)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestColdReplicasAcrossFaults: with replicas made cold a few heartbeats
// after their last use, files written earlier read back and take new
// writes (activating their replicas), a chunkserver killed and restarted
// while its replicas are cold rejoins through repair (its full report
// goes to the master in pages of one replica), and every replica ends
// identical to its chain's.
func TestColdReplicasAcrossFaults(t *testing.T) {
	cfg := failureConfig(4)
	cfg.ColdAfter = 300 * time.Millisecond
	cfg.ReportPage = 1
	c := clustertest.New(t, cfg)
	cl := clustertest.Client(t, c)
	r := newRand(t)
	const files = 12
	refs := make([][]byte, files)
	for i := range files {
		refs[i] = make([]byte, 1+r.IntN(3*64<<10))
		fillRand(r, refs[i])
		f := create(t, cl, fmt.Sprintf("/f%d", i))
		writeAt(t, f, refs[i], 0)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if made := awaitAllCold(t, c); made == 0 {
		t.Fatal("no replica was made cold")
	}
	// Read back from cold replicas, and overwrite part of each.
	for i := range files {
		verify(t, c, fmt.Sprintf("/f%d", i), refs[i])
		f, err := cl.Open(t.Context(), fmt.Sprintf("/f%d", i))
		if err != nil {
			t.Fatal(err)
		}
		off := int64(r.IntN(len(refs[i])))
		patch := make([]byte, 1+r.IntN(8192))
		fillRand(r, patch)
		writeAt(t, f, patch, off)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		refs[i] = overlay(refs[i], patch, off)
	}
	awaitAllCold(t, c)
	// A chunkserver killed while its replicas are cold.
	// The chunkserver holding the most replicas (placement goes by free
	// space, and these share one disk).
	victim, most := 0, 0
	for i := range c.NumChunkservers() {
		hs, err := c.ReplicaHandles(i)
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) > most {
			victim, most = i, len(hs)
		}
	}
	if most < 2 {
		t.Fatalf("no chunkserver holds two replicas of %d files", files)
	}
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < files; i += 2 { // writes while it is down
		f, err := cl.Open(t.Context(), fmt.Sprintf("/f%d", i))
		if err != nil {
			t.Fatal(err)
		}
		patch := []byte(fmt.Sprintf("while %d was down %d", victim, i))
		writeAt(t, f, patch, 0)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		refs[i] = overlay(refs[i], patch, 0)
	}
	ctx, cancel := context.WithTimeout(t.Context(), failTimeout)
	defer cancel()
	if err := c.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	awaitRepaired(t, c)
	if p := c.Chunkserver(victim).Metrics().ReportPages; p == 0 {
		t.Fatal("the restarted chunkserver's full report went in one piece, not in pages")
	}
	awaitAllCold(t, c)
	for i := range files {
		verify(t, c, fmt.Sprintf("/f%d", i), refs[i])
	}
	if err := c.CheckReplicas(ctx); err != nil {
		t.Fatal(err)
	}
}

// overlay returns ref with patch written at off (growing it if needed).
func overlay(ref, patch []byte, off int64) []byte {
	if end := off + int64(len(patch)); end > int64(len(ref)) {
		ref = append(ref, make([]byte, end-int64(len(ref)))...)
	}
	copy(ref[off:], patch)
	return ref
}

func fillRand(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}
