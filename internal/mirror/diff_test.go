package mirror

import (
	"bytes"
	"slices"
	"testing"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/rpcerr"
)

// TestDiffReplicas: between a snapshot's chunk and its fork the
// chunkservers list exactly the 64 KiB blocks written since, from any
// member of both chains; a capability of another chunk is refused.
func TestDiffReplicas(t *testing.T) {
	c := clustertest.New(t, cluster.Config{})
	cl := clustertest.Client(t, c)
	ctx := t.Context()
	if _, err := cl.CreateVolume(ctx, "v", 2<<20, client.VolumeOptions{ChunkSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	v, err := cl.OpenVolume(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	write := func(blocks ...int64) {
		t.Helper()
		for _, b := range blocks {
			if _, err := v.WriteAt(bytes.Repeat([]byte{byte(b + 1)}, 4096), b*BlockSize+100); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 5, 17) // chunk 0: blocks 0 and 5; chunk 1: block 1
	if _, err := cl.SnapshotVolume(ctx, "v", "s1"); err != nil {
		t.Fatal(err)
	}
	write(3, 5, 15) // chunk 0 only: forked
	if _, err := cl.SnapshotVolume(ctx, "v", "s2"); err != nil {
		t.Fatal(err)
	}
	r, err := newRPCs([]string{c.MasterAddr()}, c.TLSDir(), clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	chunks := func(name string) map[int64]*api.ChunkInfo {
		t.Helper()
		vi, err := cl.VolumeInfo(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cis, err := r.chunks(ctx, vi.Inode)
		if err != nil {
			t.Fatal(err)
		}
		m := map[int64]*api.ChunkInfo{}
		for _, ci := range cis {
			m[ci.GetIndex()] = ci
		}
		return m
	}
	s1, s2 := chunks("v@s1"), chunks("v@s2")
	if s1[1].GetHandle() != s2[1].GetHandle() || s1[0].GetHandle() == s2[0].GetHandle() {
		t.Fatalf("chunk 1 should be shared and chunk 0 forked: s1 %d,%d s2 %d,%d",
			s1[0].GetHandle(), s1[1].GetHandle(), s2[0].GetHandle(), s2[1].GetHandle())
	}
	asked := 0
	for _, srv := range s2[0].GetChain() {
		if !slices.ContainsFunc(s1[0].GetChain(), func(x *api.ServerRef) bool { return x.GetId() == srv.GetId() }) {
			continue
		}
		got, err := r.diff(ctx, srv.GetAddr(), s1[0], s2[0])
		if err != nil {
			t.Fatalf("diff at server %d: %v", srv.GetId(), err)
		}
		if !slices.Equal(got, []int64{3, 5, 15}) {
			t.Fatalf("diff at server %d = %v, want [3 5 15]", srv.GetId(), got)
		}
		asked++
	}
	if asked == 0 {
		t.Fatal("no server in both chains")
	}
	bad := &api.ChunkInfo{Handle: s1[0].GetHandle(), Epoch: s1[0].GetEpoch(), Capability: s2[1].GetCapability()}
	if _, err := r.diff(ctx, s2[0].GetChain()[0].GetAddr(), bad, s2[0]); rpcerr.Code(err) != api.ErrorCode_PERMISSION_DENIED {
		t.Fatalf("diff with another chunk's capability: %v, want PERMISSION_DENIED", err)
	}
}
