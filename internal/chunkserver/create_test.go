package chunkserver

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
)

// newBareCluster is newTestCluster without any replica: chunk handle is
// new, as after AllocateChunk.
func newBareCluster(t *testing.T) *testCluster {
	t.Helper()
	c := &testCluster{t: t, master: startFakeMaster(t), handle: 7, size: testChunkSize}
	c.epoch.Store(1)
	for range 3 {
		dir := t.TempDir()
		s := startServer(t, dir, c.master.addr)
		c.dirs = append(c.dirs, dir)
		c.servers = append(c.servers, s)
		c.clients = append(c.clients, dialServer(t, s.Addr()))
	}
	for _, s := range c.servers {
		waitFor(t, "lease", s.leaseValid)
	}
	return c
}

// spec is the ReplicaSpec of the chain members at the cluster's chunk size.
func (c *testCluster) spec(members ...int) *api.ReplicaSpec {
	return &api.ReplicaSpec{ChunkSize: c.size, Chain: c.chainRefs(members...)}
}

// createWrite writes through server i with the creation info of chain
// members, as a client does.
func (c *testCluster) createWrite(i int, reqID uint64, off int64, data []byte, members ...int) (uint64, error) {
	resp, err := c.clients[i].Write(ctxT(c.t), &api.WriteRequest{
		Handle: c.handle, Epoch: c.epoch.Load(), Kind: api.UpdateKind_WRITE,
		Offset: off, Data: data, ClientId: 1, RequestId: reqID, Create: c.spec(members...),
	})
	return resp.GetSeq(), err
}

func (c *testCluster) hasReplica(i int) bool {
	return c.servers[i].replica(chunkstore.Handle(c.handle)) != nil
}

// TestWriteCreatesReplicas: a write carrying creation info for a chunk no
// server holds creates the replica at the head, and the update creates it
// on every successor; it is acknowledged, durable and readable at the tail,
// with no CreateReplica call.
func TestWriteCreatesReplicas(t *testing.T) {
	c := newBareCluster(t)
	// The tail says it never held the chunk (the client then asks the
	// master whether it still is the tail: zeros if so).
	resp, err := c.clients[2].Read(ctxT(t), &api.ReadRequest{Handle: c.handle, Epoch: 1, Length: 10})
	if err != nil || !resp.GetNoReplica() || len(resp.GetData()) != 0 {
		t.Fatalf("read before the first write: %v, %v", resp, err)
	}
	data := pattern(3, 4096)
	if seq, err := c.createWrite(0, 1, 8192, data, 0, 1, 2); err != nil || seq != 1 {
		t.Fatalf("first write: seq %d, %v", seq, err)
	}
	for i := range 3 {
		if !c.hasReplica(i) {
			t.Fatalf("server %d has no replica after the acknowledged write", i)
		}
		m, err := c.servers[i].store.Get(chunkstore.Handle(c.handle))
		if err != nil {
			t.Fatal(err)
		}
		if meta := m.Meta(); meta.Epoch != 1 || meta.ChunkSize != c.size || len(meta.Chain) != 3 || meta.AppliedSeq != 1 {
			t.Fatalf("server %d: replica meta %+v", i, meta)
		}
	}
	got, err := c.read(2, 8192, 4096)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read at the tail: %v", err)
	}
	c.checkIdentical(0, 1, 2)
	// A retry of the first write (same request id) is answered, not
	// applied again; later writes need no creation info.
	if seq, err := c.createWrite(0, 1, 8192, data, 0, 1, 2); err != nil || seq != 1 {
		t.Fatalf("retried first write: seq %d, %v", seq, err)
	}
	if seq, err := c.write(0, 2, 0, []byte("x")); err != nil || seq != 2 {
		t.Fatalf("second write: seq %d, %v", seq, err)
	}
	want := []Metrics{{CreatedByWrite: 1, Active: 1}, {CreatedByUpdate: 1, Active: 1}, {CreatedByUpdate: 1, Active: 1}}
	for i, s := range c.servers {
		// A node gives its updates' memory back once its successor took
		// them, which may come just after the write's answer.
		waitFor(t, fmt.Sprintf("server %d: chain memory released", i), func() bool { return s.Metrics().ChainMemory == 0 })
		got := s.Metrics()
		got.ChainMemoryPeak = 0 // what the writes held on their way
		if got != want[i] {
			t.Errorf("server %d metrics %+v, want %+v", i, got, want[i])
		}
	}
	// The inventory reports the replica, and the creation floor.
	waitFor(t, "inventory", func() bool {
		hb := c.master.lastHeartbeat(c.servers[2].ID())
		return len(hb.GetReplicas()) == 1 && hb.GetReplicas()[0].GetAppliedSeq() == 2 && hb.GetNeverHeldFrom() == 1
	})
}

// TestCreateRefused: a write creates nothing unless it would be accepted,
// and never where the server may have held the replica before.
func TestCreateRefused(t *testing.T) {
	c := newBareCluster(t)
	x := []byte("x")
	write := func(i int, mut func(*api.WriteRequest)) error {
		req := &api.WriteRequest{Handle: c.handle, Epoch: 1, Offset: 0, Data: x, ClientId: 1, RequestId: 1, Create: c.spec(0, 1, 2)}
		mut(req)
		_, err := c.clients[i].Write(ctxT(t), req)
		return err
	}
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Create = nil }), api.ErrorCode_NOT_FOUND)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Epoch = 0 }), api.ErrorCode_INVALID)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Create.ChunkSize = 0 }), api.ErrorCode_INVALID)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Create.ChunkSize = maxChunkSize + 1 }), api.ErrorCode_INVALID)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Create = c.spec(1, 2) }), api.ErrorCode_INVALID)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Create = c.spec(0, 1, 0) }), api.ErrorCode_INVALID)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Create.Chain[1].Id = 0 }), api.ErrorCode_INVALID)
	wantCode(t, write(1, func(r *api.WriteRequest) {}), api.ErrorCode_NOT_HEAD)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Offset = c.size }), api.ErrorCode_INVALID)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Kind, r.Data, r.Length = api.UpdateKind_ZERO, nil, c.size+1 }), api.ErrorCode_INVALID)
	for i := range 3 {
		if c.hasReplica(i) {
			t.Fatalf("a refused write created a replica on server %d", i)
		}
	}

	// No lease: refused before creating anything.
	c.master.mu.Lock()
	c.master.noLease[c.servers[0].ID()] = true
	c.master.mu.Unlock()
	waitFor(t, "lease lost", func() bool { return !c.servers[0].leaseValid() })
	wantCode(t, write(0, func(r *api.WriteRequest) {}), api.ErrorCode_UNAVAILABLE)
	if c.hasReplica(0) {
		t.Fatal("a write without a lease created a replica")
	}
	c.master.mu.Lock()
	delete(c.master.noLease, c.servers[0].ID())
	c.master.mu.Unlock()
	waitFor(t, "lease", c.servers[0].leaseValid)

	// A chunk allocated before this server opened its store: it may have
	// held (and lost) the replica. A chunk whose replica it deleted: it
	// did hold one.
	c.servers[0].createFloor.Store(uint64(c.handle) + 1)
	wantCode(t, write(0, func(r *api.WriteRequest) {}), api.ErrorCode_NOT_FOUND)
	if resp, err := c.clients[0].Read(ctxT(t), &api.ReadRequest{Handle: c.handle, Epoch: 1, Length: 1}); err == nil || resp.GetNoReplica() {
		t.Fatalf("read below the floor: %v, %v", resp, err)
	}
	c.servers[0].createFloor.Store(1)
	if _, err := c.createWrite(0, 1, 0, x, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	c.servers[0].deleteReplica(chunkstore.Handle(c.handle))
	wantCode(t, write(0, func(r *api.WriteRequest) { r.RequestId = 2 }), api.ErrorCode_NOT_FOUND)
	if c.hasReplica(0) {
		t.Fatal("a deleted replica was created again by a write")
	}
	if resp, err := c.clients[0].Read(ctxT(t), &api.ReadRequest{Handle: c.handle, Epoch: 1, Length: 1}); err == nil || resp.GetNoReplica() {
		t.Fatalf("read of a deleted replica: %v, %v", resp, err)
	}
}

// update is a chain message from server from to server to carrying update
// seq of the cluster's chunk, with the creation info of members (none if
// members is empty).
func (c *testCluster) update(from int, seq uint64, data []byte, members ...int) *api.ChainMessage {
	m := &api.ChainMessage{From: c.servers[from].ID(), ChainEpoch: c.epoch.Load(), Msg: &api.ChainMessage_Update{Update: &api.Update{
		Handle: c.handle, Epoch: c.epoch.Load(), Seq: seq, Kind: api.UpdateKind_WRITE,
		Offset: int64(seq-1) * 4096, Data: data, Length: int64(len(data)), ClientId: 9, RequestId: seq,
	}}}
	if len(members) > 0 {
		m.Create = c.spec(members...)
	}
	return m
}

func (c *testCluster) applied(i int) uint64 {
	r := c.servers[i].replica(chunkstore.Handle(c.handle))
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.node.Status().Applied
}

// TestFirstUpdatesOutOfOrder: a successor creates its replica only from
// a new chunk's first update (seq 1): a later one that arrives first
// creates nothing (it may belong to a replica with history, such as a
// fork's member whose clone has not landed: an empty replica there would
// serve zeros at the tail) and is re-sent by the predecessor; a
// duplicate creates nothing more. Only the predecessor at the message's
// epoch may create it.
func TestFirstUpdatesOutOfOrder(t *testing.T) {
	c := newBareCluster(t)
	s := c.servers[1]
	a, b := pattern(1, 4096), pattern(2, 4096)

	s.dispatch(c.update(2, 1, a, 0, 1, 2)) // from the tail, not the predecessor
	s.dispatch(c.update(0, 1, a))          // no creation info
	if c.hasReplica(1) {
		t.Fatal("created from an update of a non-predecessor or without creation info")
	}
	s.dispatch(c.update(0, 2, b, 0, 1, 2))
	if c.hasReplica(1) {
		t.Fatal("update 2 created the replica")
	}
	s.dispatch(c.update(0, 1, a, 0, 1, 2))
	if !c.hasReplica(1) {
		t.Fatal("update 1 did not create the replica")
	}
	s.dispatch(c.update(0, 1, a, 0, 1, 2)) // duplicate
	s.dispatch(c.update(0, 2, b, 0, 1, 2)) // re-sent
	waitFor(t, "updates 1 and 2 applied", func() bool { return c.applied(1) == 2 })
	if got := s.Metrics().CreatedByUpdate; got != 1 {
		t.Fatalf("%d creations", got)
	}
	// Forwarded to the tail, which created its replica in turn.
	waitFor(t, "tail applied both", func() bool { return c.hasReplica(2) && c.applied(2) == 2 })
	got := c.storeBytes(2)
	if !bytes.Equal(got[:4096], a) || !bytes.Equal(got[4096:8192], b) {
		t.Fatal("tail content differs from the updates")
	}
	c.checkIdentical(1, 2)
}

// TestRestartedServerDoesNotRecreate: a server that lost a replica in a
// crash before its first sync (here: deleted from its store while it was
// down) creates it again neither from a write nor from an update. Its
// successor may hold updates it had forwarded; an empty replica in its
// place could give a new write a sequence number the successor already has.
func TestRestartedServerDoesNotRecreate(t *testing.T) {
	c := newBareCluster(t)
	if _, err := c.createWrite(0, 1, 0, pattern(1, 4096), 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1} {
		if err := c.servers[i].Close(); err != nil {
			t.Fatal(err)
		}
		st, err := chunkstore.OpenConfig(chunkstore.Config{FS: chunkstore.OSFS, Dir: c.dirs[i]})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(chunkstore.Handle(c.handle)); err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	c.master.mu.Lock()
	c.master.nextHandle = c.handle + 1 // allocated before the restart
	c.master.mu.Unlock()
	for _, i := range []int{0, 1} {
		c.servers[i] = startServer(t, c.dirs[i], c.master.addr)
		c.clients[i] = dialServer(t, c.servers[i].Addr())
		waitFor(t, "lease", c.servers[i].leaseValid)
	}
	_, err := c.createWrite(0, 2, 4096, pattern(2, 4096), 0, 1, 2)
	wantCode(t, err, api.ErrorCode_NOT_FOUND)
	c.servers[1].dispatch(c.update(0, 2, pattern(2, 4096), 0, 1, 2))
	if c.hasReplica(0) || c.hasReplica(1) {
		t.Fatal("a restarted server created a replica it may have held")
	}
	waitFor(t, "heartbeat with the new floor", func() bool {
		return c.master.lastHeartbeat(c.servers[0].ID()).GetNeverHeldFrom() == c.handle+1
	})
	// The master's CreateReplica still creates it (its own judgement:
	// decide.PlanCreates), durably.
	c.createReplicas(1, 0, 1, 2)
	if !c.hasReplica(0) || c.servers[0].Metrics().CreateReplicaCalls != 1 {
		t.Fatal("CreateReplica did not create the replica")
	}
}

// TestSpecSentUntilAcked: updates carry the creation info until the
// successor acknowledged one.
func TestSpecSentUntilAcked(t *testing.T) {
	c := newBareCluster(t)
	if _, err := c.createWrite(0, 1, 0, pattern(1, 4096), 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	r := c.servers[0].replica(chunkstore.Handle(c.handle))
	r.mu.Lock()
	st := r.node.Status()
	spec := r.specLocked()
	r.mu.Unlock()
	if st.SuccAck != 1 {
		t.Fatalf("successor ack %d after an acknowledged write", st.SuccAck)
	}
	if spec.GetChunkSize() != c.size || len(spec.GetChain()) != 3 || spec.GetChain()[1].GetId() != c.servers[1].ID() ||
		spec.GetChain()[0].GetAddr() != c.servers[0].Addr() {
		t.Fatalf("spec %v", spec)
	}
}
