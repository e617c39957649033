package cluster_test

import (
	"testing"

	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// TestHeadsSpread: the chains of a file's chunks are led by different
// servers in turn (decide.RotateHead), so no one server carries every
// write's first hop: with 3 servers and 6 chunks each heads 1 to 3 (0.5x
// to 1.5x of its share), by catena stat's chains.
func TestHeadsSpread(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	f := create(t, cl, "/spread")
	writeAt(t, f, []byte{1}, 6*chunkSize-1) // size: 6 chunks, only the last written
	for i := range int64(5) {
		writeAt(t, f, []byte{1}, i*chunkSize) // each chunk allocated
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, chunks, err := cl.StatChunks(t.Context(), "/spread")
	if err != nil {
		t.Fatal(err)
	}
	heads := map[uint64]int{}
	for _, ch := range chunks {
		heads[ch.Chain[0].ID]++
	}
	if len(chunks) != 6 || len(heads) != 3 {
		t.Fatalf("%d chunks led by %d servers (%v); want 6 led by all 3", len(chunks), len(heads), heads)
	}
	for id, n := range heads {
		if n < 1 || n > 3 {
			t.Errorf("server %d heads %d of 6 chains, want 1 to 3", id, n)
		}
	}
}
