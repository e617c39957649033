package chunkserver

import (
	"bytes"
	"testing"

	"github.com/catena-io/catena/api"
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
	for i := range c.servers {
		// Settled (every member's node quiescent) after a tick or two.
		waitFor(t, "clone", func() bool {
			_, err := c.clients[i].CloneReplica(ctxT(t), &api.CloneReplicaRequest{
				Source: c.handle, SourceEpoch: 2, SourceChain: refs, Handle: fork, Epoch: 3, Chain: refs,
				ChunkSize: c.size, AppliedSeq: 1,
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
	if seq := write(2, 1, "later"); seq != 2 {
		t.Fatalf("a new write on the fork got seq %d, want 2", seq)
	}
	if seq := write(1, 1, "first"); seq != 1 {
		t.Fatalf("the retry of the source's write got seq %d, want its first seq 1", seq)
	}
	resp, err := c.clients[2].Read(ctxT(t), &api.ReadRequest{Handle: fork, Epoch: 3, Length: 5})
	if err != nil || !bytes.Equal(resp.GetData(), []byte("later")) {
		t.Fatalf("fork reads %q, %v; want the later write", resp.GetData(), err)
	}
}
