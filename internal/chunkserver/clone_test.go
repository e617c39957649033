package chunkserver

import (
	"bytes"
	"strings"
	"testing"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/rpcerr"
)

// TestCloneRemembersRequests: a fork's replicas remember the request ids
// of the source's writes. A client whose write the source applied, and
// who retries it on the fork (it missed the answer and found the chunk
// forked when it asked again), is answered with its first sequence
// number; its write does not land a second time over a later one.
func TestCloneRemembersRequests(t *testing.T) {
	c := newTestCluster(t)
	if seq, err := c.write(0, 1, 0, []byte("first")); err != nil || seq != 1 {
		t.Fatalf("write: seq %d, %v", seq, err)
	}
	c.reconfigureAll(2, []int{0, 1, 2}, 0, 1, 2) // the snapshot's fence
	const fork = 8
	refs := c.chainRefs(0, 1, 2)
	// The members settle at the head's start of epoch 2 (an empty
	// update after the write): the probe says at which seq.
	var settled uint64
	waitFor(t, "settled", func() bool {
		resp, err := c.clients[0].CloneReplica(ctxT(t), &api.CloneReplicaRequest{
			Source: c.handle, SourceEpoch: 2, SourceChain: refs, Handle: fork, Epoch: 3, Chain: refs,
			ChunkSize: c.size, Probe: true,
		})
		settled = resp.GetAppliedSeq()
		return err == nil
	})
	if settled != 2 {
		t.Fatalf("settled at seq %d, want 2 (the write, then the epoch's start)", settled)
	}
	for i := range c.servers {
		// Settled (every member's node quiescent) after a tick or two.
		waitFor(t, "clone", func() bool {
			_, err := c.clients[i].CloneReplica(ctxT(t), &api.CloneReplicaRequest{
				Source: c.handle, SourceEpoch: 2, SourceChain: refs, Handle: fork, Epoch: 3, Chain: refs,
				ChunkSize: c.size, AppliedSeq: settled,
			})
			return err == nil
		})
	}
	write := func(client, req uint64, data string) uint64 {
		t.Helper()
		resp, err := c.clients[0].Write(ctxT(t), &api.WriteRequest{
			Handle: fork, Epoch: 3, Kind: api.UpdateKind_WRITE, Data: []byte(data), ClientId: client, RequestId: req,
		})
		if err != nil {
			t.Fatalf("write %d/%d on the fork: %v", client, req, err)
		}
		return resp.GetSeq()
	}
	if seq := write(2, 1, "later"); seq != settled+1 {
		t.Fatalf("a new write on the fork got seq %d, want %d", seq, settled+1)
	}
	if seq := write(1, 1, "first"); seq != 1 {
		t.Fatalf("the retry of the source's write got seq %d, want its first seq 1", seq)
	}
	resp, err := c.clients[2].Read(ctxT(t), &api.ReadRequest{Handle: fork, Epoch: 3, Length: 5})
	if err != nil || !bytes.Equal(resp.GetData(), []byte("later")) {
		t.Fatalf("fork reads %q, %v; want the later write", resp.GetData(), err)
	}
}

// TestReconfigureBatch: each item is done as one Reconfigure, each
// outcome is answered in order, and what changed is durable when the
// call answers.
func TestReconfigureBatch(t *testing.T) {
	c := newTestCluster(t)
	refs := c.chainRefs(0, 1, 2)
	resp, err := c.clients[0].ReconfigureBatch(ctxT(t), &api.ReconfigureBatchRequest{Items: []*api.ReconfigureRequest{
		{Handle: c.handle, Epoch: 2, ChunkSize: c.size, Chain: refs},
		{Handle: 99, Epoch: 2, ChunkSize: c.size, Chain: refs},
		{Handle: c.handle, Epoch: 1, ChunkSize: c.size, Chain: refs},
		{Handle: c.handle, Epoch: 2, ChunkSize: c.size, Chain: refs},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []api.ErrorCode{api.ErrorCode_ERROR_CODE_UNSPECIFIED, api.ErrorCode_NOT_FOUND, api.ErrorCode_STALE_EPOCH, api.ErrorCode_ERROR_CODE_UNSPECIFIED}
	if len(resp.GetResults()) != len(want) {
		t.Fatalf("%d results, want %d", len(resp.GetResults()), len(want))
	}
	for i, res := range resp.GetResults() {
		if res.GetCode() != want[i] {
			t.Errorf("item %d: %v (%s), want %v", i, res.GetCode(), res.GetMessage(), want[i])
		}
	}
	// Durable: the store says epoch 2 after a restart.
	c.restartServer(0)
	r, err := c.servers[0].store.Get(chunkstore.Handle(c.handle))
	if err != nil {
		t.Fatal(err)
	}
	if e := r.Meta().Epoch; e != 2 {
		t.Fatalf("epoch %d after a restart, want 2", e)
	}
	// Too many items: refused whole.
	items := make([]*api.ReconfigureRequest, maxReconfigureBatch+1)
	for i := range items {
		items[i] = &api.ReconfigureRequest{Handle: c.handle, Epoch: 2, ChunkSize: c.size, Chain: refs}
	}
	if _, err := c.clients[1].ReconfigureBatch(ctxT(t), &api.ReconfigureBatchRequest{Items: items}); rpcerr.Code(err) != api.ErrorCode_INVALID {
		t.Fatalf("a batch of %d items: %v, want INVALID", len(items), err)
	}
}

// TestEpochStartHeldForItsEpoch: a snapshot's fence reaches the head
// first. Its epoch start (an empty update of the new epoch) reaches the
// middle node before the middle knows the epoch: held, not dropped, and
// stepped when the middle installs it, so the tail serves reads at the
// new epoch without waiting for the head's re-send watchdog. Until the
// start reached it, the tail serves none.
func TestEpochStartHeldForItsEpoch(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("first")); err != nil {
		t.Fatal(err)
	}
	c.reconfigureAll(2, []int{0}, 0, 1, 2)
	mid := c.servers[1].replica(chunkstore.Handle(c.handle))
	waitFor(t, "the start held at the middle", func() bool {
		mid.mu.Lock()
		defer mid.mu.Unlock()
		return len(mid.early) == 1
	})
	c.reconfigureAll(2, []int{2}, 0, 1, 2)
	if _, err := c.read(2, 0, 5); rpcerr.Code(err) != api.ErrorCode_UNAVAILABLE || !strings.Contains(err.Error(), "not started") {
		t.Fatalf("tail read before the epoch's start reached it: %v, want UNAVAILABLE, not started", err)
	}
	c.reconfigureAll(2, []int{1}, 0, 1, 2)
	if got := c.servers[1].Metrics().EarlyStepped; got != 1 {
		t.Fatalf("%d held messages stepped at the middle, want 1", got)
	}
	waitFor(t, "tail serves at epoch 2", func() bool {
		got, err := c.read(2, 0, 5)
		return err == nil && string(got) == "first"
	})
}

// TestCloneAcrossEpochStart: a fork's members may clone their origin in
// different rounds, and the origin's chain may move to a new epoch in
// between (a repair): its start is one more, empty, update. The member
// that cloned first answers for its clone's seq, and is done only for
// that one; the others clone their state as of that seq (nothing but
// the empty start came after it). Every member then starts the fork at
// one seq, and the head's first write reaches the tail: with the tail
// one seq ahead, it took the write for one it held and acknowledged it
// unapplied.
func TestCloneAcrossEpochStart(t *testing.T) {
	c := newTestCluster(t)
	if seq, err := c.write(0, 1, 0, []byte("first")); err != nil || seq != 1 {
		t.Fatalf("write: seq %d, %v", seq, err)
	}
	c.reconfigureAll(2, []int{0, 1, 2}, 0, 1, 2) // the fork's fence: start at seq 2
	const fork = 8
	refs := c.chainRefs(0, 1, 2)
	clone := func(i int, sourceEpoch, seq uint64, probe bool) (uint64, error) {
		resp, err := c.clients[i].CloneReplica(ctxT(t), &api.CloneReplicaRequest{
			Source: c.handle, SourceEpoch: sourceEpoch, SourceChain: refs, Handle: fork, Epoch: 2, Chain: refs,
			ChunkSize: c.size, AppliedSeq: seq, Probe: probe,
		})
		return resp.GetAppliedSeq(), err
	}
	waitFor(t, "the head clones at seq 2", func() bool {
		_, err := clone(0, 2, 2, false)
		return err == nil
	})
	// A repair moves the origin on: its epoch 3 starts at seq 3.
	c.reconfigureAll(3, []int{0, 1, 2}, 0, 1, 2)
	var seqs [3]uint64
	for i := range 3 {
		waitFor(t, "probe", func() bool {
			var err error
			seqs[i], err = clone(i, 3, 0, true)
			return err == nil && (i == 0 || seqs[i] == 3)
		})
	}
	if seqs != [3]uint64{2, 3, 3} {
		t.Fatalf("probes answered %v, want [2 3 3]: the clone's seq, then the origin's", seqs)
	}
	if _, err := clone(0, 3, 3, false); rpcerr.Code(err) != api.ErrorCode_UNAVAILABLE {
		t.Fatalf("a clone at seq 2 asked for seq 3: %v, want UNAVAILABLE", err)
	}
	for i := 1; i < 3; i++ {
		if _, err := clone(i, 3, 2, false); err != nil {
			t.Fatalf("member %d: clone as of seq 2: %v", i, err)
		}
		r := c.servers[i].replica(fork)
		r.mu.Lock()
		got := r.node.Status().Applied
		r.mu.Unlock()
		if got != 2 {
			t.Fatalf("member %d: fork at seq %d, want 2", i, got)
		}
	}
	resp, err := c.clients[0].Write(ctxT(t), &api.WriteRequest{Handle: fork, Epoch: 2, Kind: api.UpdateKind_WRITE, Data: []byte("later"), ClientId: 9, RequestId: 1})
	if err != nil || resp.GetSeq() != 3 {
		t.Fatalf("first write on the fork: seq %d, %v; want seq 3", resp.GetSeq(), err)
	}
	r, err := c.clients[2].Read(ctxT(t), &api.ReadRequest{Handle: fork, Epoch: 2, Length: 5})
	if err != nil || !bytes.Equal(r.GetData(), []byte("later")) {
		t.Fatalf("read at the fork's tail: %q, %v; want the write", r.GetData(), err)
	}
}
