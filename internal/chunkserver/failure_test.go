package chunkserver

import (
	"bytes"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/rpcerr"
)

// reconfigureAll installs (epoch, members) on servers.
func (c *testCluster) reconfigureAll(epoch uint64, on []int, members ...int) {
	c.t.Helper()
	refs := c.chainRefs(members...)
	for _, i := range on {
		if _, err := c.clients[i].Reconfigure(ctxT(c.t), &api.ReconfigureRequest{Handle: c.handle, Epoch: epoch, ChunkSize: c.size, Chain: refs}); err != nil {
			c.t.Fatalf("Reconfigure on %d: %v", i, err)
		}
	}
	c.epoch.Store(epoch)
}

func (c *testCluster) replicate(target, source int, members ...int) *api.ReplicateResponse {
	c.t.Helper()
	resp, err := c.clients[target].Replicate(ctxT(c.t), &api.ReplicateRequest{
		Handle: c.handle, Epoch: c.epoch.Load(), ChunkSize: c.size,
		Source: c.chainRefs(source)[0], Chain: c.chainRefs(members...),
	})
	if err != nil {
		c.t.Fatalf("Replicate on %d: %v", target, err)
	}
	return resp
}

// flipByte flips one data byte of server i's replica file behind the store.
func (c *testCluster) flipByte(i int, off int64) {
	c.t.Helper()
	p, at, err := c.servers[i].Store().Locate(chunkstore.Handle(c.handle), off)
	if err != nil {
		c.t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		c.t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		c.t.Fatal(err)
	}
}

// writer writes distinct 4 KiB blocks through head until stopped; it
// reports how many writes were acknowledged.
func (c *testCluster) writer(head int, base uint64) (stop func() int) {
	var n atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(0); ; i++ {
			select {
			case <-done:
				return
			default:
			}
			off := int64(i%512) * 4096
			if _, err := c.write(head, base+i, off, pattern(byte(base+i), 4096)); err == nil {
				n.Add(1)
			}
		}
	}()
	return func() int { close(done); wg.Wait(); return int(n.Load()) }
}

func TestLeaseExpiryStopsClientIO(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	c.master.mu.Lock()
	c.master.noLease[c.servers[0].ID()] = true
	c.master.noLease[c.servers[2].ID()] = true
	c.master.mu.Unlock()
	waitFor(t, "leases expire", func() bool { return !c.servers[0].leaseValid() && !c.servers[2].leaseValid() })
	_, err := c.write(0, 2, 0, []byte("y"))
	wantCode(t, err, api.ErrorCode_UNAVAILABLE)
	_, err = c.read(2, 0, 1)
	wantCode(t, err, api.ErrorCode_UNAVAILABLE)
}

// TestFencedReplicaNotServed: a replica the master reports as stale (the
// server left its chain while away) serves no client I/O at its old
// epoch, although the server holds a valid lease.
func TestFencedReplicaNotServed(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	c.master.mu.Lock()
	for _, i := range []int{0, 2} {
		c.master.fenced[c.servers[i].ID()] = []*api.FencedReplica{{Handle: c.handle, Epoch: c.epoch.Load() + 1}}
	}
	c.master.mu.Unlock()
	waitFor(t, "fences applied", func() bool {
		r := c.servers[2].replica(chunkstoreHandle(c.handle))
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.node.Fenced()
	})
	waitFor(t, "head fenced", func() bool {
		r := c.servers[0].replica(chunkstoreHandle(c.handle))
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.node.Fenced()
	})
	if !c.servers[2].leaseValid() {
		t.Fatal("lease expired: the test would not show the fence")
	}
	_, err := c.read(2, 0, 1)
	wantCode(t, err, api.ErrorCode_STALE_EPOCH)
	_, err = c.write(0, 2, 0, []byte("y"))
	wantCode(t, err, api.ErrorCode_STALE_EPOCH)
	// A later configuration that includes the servers lifts the fence.
	c.reconfigureAll(c.epoch.Load()+2, []int{0, 1, 2}, 0, 1, 2)
	if _, err := c.write(0, 3, 0, []byte("z")); err != nil {
		t.Fatalf("write after rejoin: %v", err)
	}
	if b, err := c.read(2, 0, 1); err != nil || string(b) != "z" {
		t.Fatalf("read after rejoin: %q, %v", b, err)
	}
}

func TestReconfigureMiddleRemovedWithWritesInFlight(t *testing.T) {
	c := newTestCluster(t)
	stop := c.writer(0, 1)
	waitFor(t, "some writes", func() bool { return applied(c.servers[2]) > 20 })
	c.servers[1].Close()
	c.reconfigureAll(2, []int{0, 2}, 0, 2)
	waitFor(t, "writes at epoch 2", func() bool {
		return applied(c.servers[2]) > 60
	})
	if stop() == 0 {
		t.Fatal("no write acknowledged")
	}
	waitFor(t, "head and tail agree", func() bool { return bytes.Equal(c.storeBytes(0), c.storeBytes(2)) })
}

func TestJoinerCatchesUpWhileWritesContinue(t *testing.T) {
	c := newTestCluster(t)
	c.reconfigureAll(2, []int{0, 1}, 0, 1) // server 2 leaves
	stop := c.writer(0, 1000)
	waitFor(t, "some writes", func() bool { return applied(c.servers[1]) > 20 })
	c.replicate(2, 1, 0, 1) // server 2 never applied anything: a full copy
	c.reconfigureAll(3, []int{0, 1, 2}, 0, 1, 2)
	waitFor(t, "joiner serves reads", func() bool {
		_, err := c.read(2, 0, 10)
		return err == nil
	})
	if stop() == 0 {
		t.Fatal("no write acknowledged")
	}
	if _, err := c.write(0, 99999, 0, []byte("last")); err != nil {
		t.Fatal(err)
	}
	got, err := c.read(2, 0, 4)
	if err != nil || string(got) != "last" {
		t.Fatalf("read at the joiner: %q, %v", got, err)
	}
	c.checkIdentical(0, 1, 2)
}

func TestDeltaResyncAndFullCopy(t *testing.T) {
	c := newTestCluster(t)
	for i := range 64 {
		if _, err := c.write(0, uint64(i+1), int64(i)*65536, pattern(byte(i), 65536)); err != nil {
			t.Fatal(err)
		}
	}
	c.reconfigureAll(2, []int{0, 1}, 0, 1) // server 2 is away
	for i := range 3 {
		if _, err := c.write(0, uint64(100+i), int64(i)*4096, pattern(byte(100+i), 4096)); err != nil {
			t.Fatal(err)
		}
	}
	resp := c.replicate(2, 1, 0, 1)
	if resp.GetFull() || resp.GetBytesCopied() > 3*4096 {
		t.Fatalf("delta resync: full=%v bytes=%d, want a delta of at most %d bytes", resp.GetFull(), resp.GetBytesCopied(), 3*4096)
	}
	if !bytes.Equal(c.storeBytes(1), c.storeBytes(2)) {
		t.Fatal("resynced replica differs from the source")
	}
	// A base with a bad block gets the delta plus that block, whole.
	c.flipByte(2, 5*65536+7)
	resp = c.replicate(2, 1, 0, 1)
	if resp.GetFull() || resp.GetBytesCopied() != 65536 {
		t.Fatalf("base with a bad block: full=%v bytes=%d, want a delta of the one block", resp.GetFull(), resp.GetBytesCopied())
	}
	if !bytes.Equal(c.storeBytes(1), c.storeBytes(2)) {
		t.Fatal("copied replica differs from the source")
	}
}

func TestReadOfCorruptBlockReportsIt(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, pattern(1, 65536)); err != nil {
		t.Fatal(err)
	}
	c.flipByte(2, 100)
	_, err := c.read(2, 0, 10)
	wantCode(t, err, api.ErrorCode_CORRUPT)
	waitFor(t, "report", func() bool {
		for _, r := range c.master.reported() {
			if r.GetServerId() == c.servers[2].ID() && r.GetProblem() == api.ReplicaProblem_REPLICA_CORRUPT {
				return true
			}
		}
		return false
	})
	// Only the bad block is refused: the others keep serving.
	if _, err := c.read(2, 65536, 10); err != nil {
		t.Fatalf("read of a good block of a replica with a bad one: %v", err)
	}
	_, err = c.read(2, 50, 10)
	wantCode(t, err, api.ErrorCode_CORRUPT)
}

// applied is server s's applied seq of chunk 7.
func applied(s *Server) uint64 {
	r := s.replica(7)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.node.Status().Applied
}

func chunkstoreHandle(h uint64) chunkstore.Handle { return chunkstore.Handle(h) }

// restartServer closes server i and starts it again on its directory.
func (c *testCluster) restartServer(i int) {
	c.t.Helper()
	if err := c.servers[i].Close(); err != nil {
		c.t.Fatal(err)
	}
	c.servers[i] = startServer(c.t, c.dirs[i], c.master.addr)
	c.clients[i] = dialServer(c.t, c.servers[i].Addr())
}

// awaitReportedFenced waits for a heartbeat of server i reporting the
// chunk at epoch with the given fence.
func (c *testCluster) awaitReportedFenced(i int, epoch uint64, fenced bool) {
	c.t.Helper()
	id := c.servers[i].ID()
	waitFor(c.t, "heartbeat inventory", func() bool {
		for _, r := range c.master.lastHeartbeat(id).GetReplicas() {
			if r.GetHandle() == c.handle && r.GetEpoch() == epoch && r.GetFenced() == fenced {
				return true
			}
		}
		return false
	})
}

// TestRestartedHeadFenced: a head restarted before the master noticed
// serves nothing at its old epoch nor at a later one that keeps it in the
// chain (its request-id memory is gone: a retry would apply twice), and
// reports the fence; it serves again once it rejoined through Replicate.
func TestRestartedHeadFenced(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.write(0, 2, 0, []byte("b")); err != nil {
		t.Fatal(err)
	}
	c.restartServer(0)
	waitFor(t, "lease", c.servers[0].leaseValid)
	c.awaitReportedFenced(0, 1, true)
	// The retry of write 1 must not overwrite "b".
	_, err := c.write(0, 1, 0, []byte("a"))
	wantCode(t, err, api.ErrorCode_STALE_EPOCH)

	// A configuration that keeps it as head does not lift the fence.
	c.reconfigureAll(2, []int{0, 1, 2}, 0, 1, 2)
	_, err = c.write(0, 1, 0, []byte("a"))
	wantCode(t, err, api.ErrorCode_STALE_EPOCH)
	c.awaitReportedFenced(0, 2, true)

	// The master's way: remove it, write on, re-add it by Replicate.
	c.reconfigureAll(3, []int{1, 2}, 1, 2)
	if _, err := c.write(1, 3, 1, []byte("c")); err != nil {
		t.Fatal(err)
	}
	c.replicate(0, 2, 1, 2)
	c.reconfigureAll(4, []int{0, 1, 2}, 1, 2, 0)
	if _, err := c.write(1, 4, 2, []byte("d")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "read at the rejoined tail", func() bool {
		b, err := c.read(0, 0, 3)
		return err == nil && string(b) == "bcd"
	})
	c.awaitReportedFenced(0, 4, false)
	c.checkIdentical(0, 1, 2)
}

// TestRestartedSoleMemberUnfenced: the master's last resort for a chunk
// whose every live member is a reloaded replica: a configuration with it
// as the sole member lifts the fence.
func TestRestartedSoleMemberUnfenced(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("a")); err != nil {
		t.Fatal(err)
	}
	c.restartServer(2)
	waitFor(t, "lease", c.servers[2].leaseValid)
	_, err := c.read(2, 0, 1)
	wantCode(t, err, api.ErrorCode_STALE_EPOCH)
	c.reconfigureAll(2, []int{2}, 2)
	if b, err := c.read(2, 0, 1); err != nil || string(b) != "a" {
		t.Fatalf("read at the sole member: %q, %v", b, err)
	}
	if _, err := c.write(2, 2, 0, []byte("b")); err != nil {
		t.Fatalf("write at the sole member: %v", err)
	}
}

// TestRestoreBlocksFromAnotherReplica: a sole member with bad blocks gets
// them back, whole, from the first source where they verify; a block bad
// on every source stays bad; partial writes into a bad block are
// refused meanwhile, and only a sole member restores.
func TestRestoreBlocksFromAnotherReplica(t *testing.T) {
	c := newTestCluster(t)
	for i := range 4 {
		if _, err := c.write(0, uint64(i+1), int64(i)*65536, pattern(byte(i+1), 65536)); err != nil {
			t.Fatal(err)
		}
	}
	want := c.checkIdentical(0, 1, 2)
	c.reconfigureAll(2, []int{0}, 0) // server 0 alone; 1 and 2 keep their copies
	c.flipByte(0, 65536+3)           // block 1: bad on the first source too, good on the second
	c.flipByte(1, 65536+3)
	c.flipByte(0, 2*65536+3) // block 2: bad everywhere
	c.flipByte(1, 2*65536+3)
	c.flipByte(2, 2*65536+3)
	for _, off := range []int64{65536, 2 * 65536} {
		_, err := c.read(0, off, 10)
		wantCode(t, err, api.ErrorCode_CORRUPT)
	}
	_, err := c.write(0, 99, 65536+100, []byte("partial"))
	wantCode(t, err, api.ErrorCode_UNAVAILABLE)

	req := &api.RestoreBlocksRequest{Handle: c.handle, Epoch: 2, Blocks: []int64{1, 2}, Sources: c.chainRefs(1, 2)}
	if _, err := c.clients[1].RestoreBlocks(ctxT(t), req); rpcerr.Code(err) != api.ErrorCode_STALE_EPOCH && rpcerr.Code(err) != api.ErrorCode_INVALID {
		t.Fatalf("restore on a server outside the chain: %v", err)
	}
	resp, err := c.clients[0].RestoreBlocks(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.GetRestored(), []int64{1}) || !slices.Equal(resp.GetStillBad(), []int64{2}) {
		t.Fatalf("restored %v, still bad %v; want [1] and [2]", resp.GetRestored(), resp.GetStillBad())
	}
	got, err := c.read(0, 65536, 65536)
	if err != nil || !bytes.Equal(got, want[65536:2*65536]) {
		t.Fatalf("restored block 1: %v, equal %v", err, bytes.Equal(got, want[65536:2*65536]))
	}
	_, err = c.read(0, 2*65536, 10)
	wantCode(t, err, api.ErrorCode_CORRUPT)
}
