package chunkserver

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
)

// coldAll sweeps server i until no replica is active (the first sweep
// finds them used; a node turns idle at the tick after its last batch).
func (c *testCluster) coldAll(i int) {
	c.t.Helper()
	s := c.servers[i]
	waitFor(c.t, "replicas made cold", func() bool {
		s.sweepCold()
		return s.Metrics().Active == 0
	})
}

// reportedInfo waits for a heartbeat of server i that reports the chunk as
// want says, and returns it.
func (c *testCluster) awaitReported(i int, what string, want func(*api.ReplicaInfo) bool) *api.ReplicaInfo {
	c.t.Helper()
	var got *api.ReplicaInfo
	waitFor(c.t, what, func() bool {
		for _, r := range c.master.lastHeartbeat(c.servers[i].ID()).GetReplicas() {
			if r.GetHandle() == c.handle && want(r) {
				got = r
				return true
			}
		}
		return false
	})
	return got
}

// TestColdReplicasServe: replicas made cold by sweeps keep being reported
// as they were, and the next write and read activate them and carry on
// the chain's sequence where it stopped; the chain's replicas stay
// identical.
func TestColdReplicasServe(t *testing.T) {
	c := newTestCluster(t)
	if seq, err := c.write(0, 1, 0, pattern(1, 8192)); err != nil || seq != 1 {
		t.Fatalf("write: seq %d, %v", seq, err)
	}
	for i := range c.servers {
		c.coldAll(i)
		if m := c.servers[i].Metrics(); m.MadeCold != 1 {
			t.Fatalf("server %d: %+v, want one replica made cold", i, m)
		}
		c.awaitReported(i, "cold replica reported at seq 1", func(r *api.ReplicaInfo) bool {
			return r.GetAppliedSeq() == 1 && r.GetEpoch() == 1 && !r.GetFenced() && r.GetVerified()
		})
	}
	if seq, err := c.write(0, 2, 4096, pattern(2, 8192)); err != nil || seq != 2 {
		t.Fatalf("write to cold replicas: seq %d, %v", seq, err)
	}
	want := make([]byte, 16384)
	copy(want, pattern(1, 8192))
	copy(want[4096:], pattern(2, 8192))
	if got, err := c.read(2, 0, int64(len(want))); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read: %v", err)
	}
	c.checkIdentical(0, 1, 2)
	for i, s := range c.servers {
		if m := s.Metrics(); m.Activated != 1 || m.Active != 1 {
			t.Fatalf("server %d: %+v, want the replica activated once", i, m)
		}
	}
	// Cold again, then a read alone activates the tail.
	for i := range c.servers {
		c.coldAll(i)
	}
	if got, err := c.read(2, 0, int64(len(want))); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read from a cold tail: %v", err)
	}
	if a := c.servers[2].Metrics().Active; a != 1 {
		t.Fatalf("tail: %d active after a read, want 1", a)
	}
}

// TestColdSweepSparesReplicasInUse: a replica stays active while pinned by
// a use under way, or while its node has updates in flight.
func TestColdSweepSparesReplicasInUse(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("a")); err != nil {
		t.Fatal(err)
	}
	h := chunkstore.Handle(c.handle)
	s := c.servers[0]
	r := s.acquire(h)
	waitFor(t, "the node idle", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.node.Quiescent()
	})
	s.sweepCold()
	s.sweepCold()
	if s.Metrics().Active != 1 {
		t.Fatal("a pinned replica was made cold")
	}
	r.release()
	c.coldAll(0)

	// The tail is down: the head's write waits in its Sent list.
	if err := c.servers[2].Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.clients[0].Write(ctx, &api.WriteRequest{Handle: c.handle, Epoch: 1, Kind: api.UpdateKind_WRITE,
			Data: []byte("b"), ClientId: 1, RequestId: 2})
		done <- err
	}()
	waitFor(t, "an update in flight at the middle", func() bool {
		r := c.servers[1].replica(h)
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.node.Status().SentLen > 0
	})
	for i := 0; i < 2; i++ {
		for _, s := range c.servers[:2] {
			s.sweepCold()
		}
	}
	for i, s := range c.servers[:2] {
		if s.Metrics().Active != 1 {
			t.Fatalf("server %d: a replica with a write in flight was made cold", i)
		}
	}
	cancel()
	<-done
}

// TestColdReplicaFenced: the master's fence reaches a cold replica
// without activating it; it is reported fenced, and once activated it
// refuses client I/O at that epoch.
func TestColdReplicaFenced(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("a")); err != nil {
		t.Fatal(err)
	}
	c.coldAll(2)
	id := c.servers[2].ID()
	c.master.mu.Lock()
	c.master.fenced[id] = []*api.FencedReplica{{Handle: c.handle, Epoch: 1}}
	c.master.mu.Unlock()
	c.awaitReportedFenced(2, 1, true)
	if m := c.servers[2].Metrics(); m.Active != 0 || m.Activated != 0 {
		t.Fatalf("tail %+v: the fence activated it", m)
	}
	_, err := c.read(2, 0, 1)
	wantCode(t, err, api.ErrorCode_STALE_EPOCH) // fenced: the client reloads the chain
}

// TestReloadedReplicasStayCold: a restarted server loads its replicas
// cold: its full report says they are fenced (until they rejoin), its
// verification of every block reaches the master, and neither activates
// them; the first use activates a fenced, verified replica.
func TestReloadedReplicasStayCold(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, pattern(1, 100000)); err != nil {
		t.Fatal(err)
	}
	// Alone: a peer's message (an ack re-sent on reconnection) would
	// activate the replica, rightly, and this test is about the rest.
	for _, i := range []int{0, 2} {
		if err := c.servers[i].Close(); err != nil {
			t.Fatal(err)
		}
	}
	c.restartServer(1)
	c.awaitReported(1, "reloaded replica reported fenced and verified", func(r *api.ReplicaInfo) bool {
		return r.GetFenced() && r.GetVerified() && r.GetAppliedSeq() == 1
	})
	s := c.servers[1]
	if m := s.Metrics(); m.Active != 0 || m.Activated != 0 {
		t.Fatalf("restarted server %+v: a report or the verification activated the replica", m)
	}
	s.mu.Lock()
	kept := len(s.cold)
	s.mu.Unlock()
	if kept != 0 {
		t.Fatalf("%d cold states kept for replicas verified as loaded, want none", kept)
	}
	r := s.replica(chunkstore.Handle(c.handle))
	r.mu.Lock()
	st, verified := r.node.Status(), r.verified
	r.mu.Unlock()
	if !st.Fenced || !st.Rejoining || !verified || st.Applied != 1 {
		t.Fatalf("activated as %+v, verified %v: want fenced, rejoining, verified, at seq 1", st, verified)
	}
}

// TestColdAfterSweepsInBackground: with a short ColdAfter the tick loop's
// own sweeps make an unused replica cold.
func TestColdAfterSweepsInBackground(t *testing.T) {
	m := startFakeMaster(t)
	dir := t.TempDir()
	s, err := Start(context.Background(), Config{Dir: dir, Masters: []string{m.addr}, HeartbeatInterval: 50 * time.Millisecond,
		ColdAfter: 50 * time.Millisecond, ScrubInterval: -1, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitFor(t, "lease", s.leaseValid)
	cl := dialServer(t, s.Addr())
	ref := []*api.ServerRef{{Id: s.ID(), Addr: s.Addr()}}
	if _, err := cl.CreateReplica(ctxT(t), &api.CreateReplicaRequest{Handle: 3, Epoch: 1, ChunkSize: 1 << 20, Chain: ref}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Write(ctxT(t), &api.WriteRequest{Handle: 3, Epoch: 1, Data: []byte("x"), ClientId: 1, RequestId: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replica made cold", func() bool { return s.Metrics().MadeCold >= 1 && s.Metrics().Active == 0 })
	resp, err := cl.Read(ctxT(t), &api.ReadRequest{Handle: 3, Epoch: 1, Offset: 0, Length: 1})
	if err != nil || string(resp.GetData()) != "x" {
		t.Fatalf("read from the cold replica: %q, %v", resp.GetData(), err)
	}
}

// TestResyncFromColdSource: a replica that was away rejoins from a source
// made cold meanwhile. The source's update log went with its node, so it
// cannot tell a delta since the returning replica's seq and sends the
// whole chunk; a second return, from a source that stayed active, is a
// delta again. Both leave the replicas identical.
func TestResyncFromColdSource(t *testing.T) {
	c := newTestCluster(t)
	for i := uint64(1); i <= 3; i++ {
		if _, err := c.write(0, i, int64(i)*4096, pattern(byte(i), 4096)); err != nil {
			t.Fatal(err)
		}
	}
	c.reconfigureAll(2, []int{0, 1}, 0, 1) // server 2 leaves
	seq4, err := c.write(0, 4, 0, pattern(4, 100))
	if err != nil {
		t.Fatal(err)
	}
	c.coldAll(0)
	c.coldAll(1)
	c.reconfigureAll(3, []int{0, 1}, 0, 1)
	if resp := c.replicate(2, 1, 0, 1); !resp.GetFull() || resp.GetAppliedSeq() < seq4 {
		t.Fatalf("resync from a cold source: %+v, want a full copy at seq %d or later", resp, seq4)
	}
	c.reconfigureAll(4, []int{0, 1, 2}, 0, 1, 2)
	c.checkIdentical(0, 1, 2)

	// Away again, back from an active source: a delta.
	c.reconfigureAll(5, []int{0, 1}, 0, 1)
	seq5, err := c.write(0, 5, 8192, pattern(5, 100))
	if err != nil {
		t.Fatal(err)
	}
	c.reconfigureAll(6, []int{0, 1}, 0, 1)
	if resp := c.replicate(2, 1, 0, 1); resp.GetFull() || resp.GetAppliedSeq() < seq5 || resp.GetBytesCopied() != 100 {
		t.Fatalf("resync from an active source: %+v, want a delta of the 100 bytes written, to seq %d or later", resp, seq5)
	}
	c.reconfigureAll(7, []int{0, 1, 2}, 0, 1, 2)
	c.checkIdentical(0, 1, 2)
}
