package master

import (
	"context"
	"testing"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
)

// TestCapabilityKeys: the leader makes a capability key when it takes
// office and another after capKeyRotate; chunkservers get the kept keys
// with Register and Heartbeat; every chunk handed out carries a
// capability for its handle, epoch, size and chain, signed with the
// newest key once it has warmed up, that a chunkserver's keyring accepts
// until it expires.
func TestCapabilityKeys(t *testing.T) {
	clk := newClock()
	m, c := startMaster(t, t.TempDir(), clk)
	ctx := context.Background()
	reg, err := c.Register(ctx, &api.RegisterRequest{ServerId: 1, Addr: startFakeChunkserver(t).addr, CapacityBytes: 1 << 40, FreeBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.CapabilityKeys) != 1 || len(reg.CapabilityKeys[0].Secret) != 32 {
		t.Fatalf("register: keys %v", reg.CapabilityKeys)
	}
	var ring auth.Keyring
	ring.Set(reg.CapabilityKeys)
	cr, err := c.Create(ctx, &api.CreateRequest{Path: "/f", Replication: 1, ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ar, err := c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: cr.Info.Inode, Index: 0})
	if err != nil {
		t.Fatal(err)
	}
	ci := ar.Chunk
	check := func(what string, ci *api.ChunkInfo, now time.Time, wantKey uint64) {
		t.Helper()
		body, err := ring.Check(ci.Capability, ci.Handle, ci.Epoch, auth.RightRead|auth.RightWrite, now)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if body.KeyId != wantKey || body.ChunkSize != 1<<20 || len(body.Chain) != 1 || body.Chain[0] != 1 ||
			body.ExpiresUnixMilli != clk.Now().Add(auth.CapabilityLifetime).UnixMilli() {
			t.Fatalf("%s: capability %v", what, body)
		}
	}
	check("allocate", ci, clk.Now(), 1)
	if _, err := ring.Check(ci.Capability, ci.Handle, ci.Epoch, auth.RightRead, clk.Now().Add(auth.CapabilityLifetime+auth.CapabilitySkew+time.Second)); err == nil {
		t.Fatal("a capability is accepted after it expired")
	}

	// A day later the repair loop (each tick) adds a key; it signs once
	// warmed up.
	if err := m.ensureCapabilityKey(ctx); err != nil {
		t.Fatal(err)
	}
	if hb, err := c.Heartbeat(ctx, &api.HeartbeatRequest{ServerId: 1, Full: true}); err != nil || len(hb.CapabilityKeys) != 1 {
		t.Fatalf("a key was added before its time: %v, %v", hb, err)
	}
	clk.Advance(capKeyRotate)
	if err := m.ensureCapabilityKey(ctx); err != nil {
		t.Fatal(err)
	}
	hb, err := c.Heartbeat(ctx, &api.HeartbeatRequest{ServerId: 1, Full: true})
	if err != nil || len(hb.CapabilityKeys) != 2 {
		t.Fatalf("heartbeat after a rotation: %v, %v", hb, err)
	}
	ring.Set(hb.CapabilityKeys)
	gc, err := c.GetChunks(ctx, &api.GetChunksRequest{Inode: cr.Info.Inode})
	if err != nil || len(gc.Chunks) != 1 {
		t.Fatalf("getchunks: %v, %v", gc, err)
	}
	check("right after a new key", gc.Chunks[0], clk.Now(), 1)
	clk.Advance(capKeyWarmup)
	gc, err = c.GetChunks(ctx, &api.GetChunksRequest{Inode: cr.Info.Inode})
	if err != nil || len(gc.Chunks) != 1 {
		t.Fatalf("getchunks: %v, %v", gc, err)
	}
	check("once the new key warmed up", gc.Chunks[0], clk.Now(), 2)
}
