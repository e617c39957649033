package chunkserver

import (
	"testing"

	"github.com/catena-io/catena/api"
)

// The request-id memory is durable with the replica: a client's retry of
// a write its chain applied is answered, not applied a second time over a
// later write, whichever way the node that answers it came to be.

// checkRetryAnswered retries write (client 1, request 1) of "a" at offset
// 0 on server i, the head, at the current epoch, after write 2 wrote "b"
// there: the retry must get its first seq (1) and leave "b" in place at
// tail.
func (c *testCluster) checkRetryAnswered(i, tail int, what string) {
	c.t.Helper()
	seq, err := c.write(i, 1, 0, []byte("a"))
	if err != nil {
		c.t.Fatalf("%s: retry of write 1: %v", what, err)
	}
	if seq != 1 {
		c.t.Fatalf("%s: the retry of write 1 got seq %d, want its first seq 1 (applied again)", what, seq)
	}
	var last error
	waitFor(c.t, "a read at "+what+" (see the last error)", func() bool {
		b, err := c.read(tail, 0, 1)
		if err == nil && string(b) != "b" {
			c.t.Fatalf("%s: reads %q after the retry of write 1, want the later write's %q", what, b, "b")
		}
		if err != nil && last == nil {
			c.t.Cleanup(func() {
				if c.t.Failed() {
					c.t.Logf("the last read at %s: %v", what, last)
				}
			})
		}
		last = err
		return err == nil
	})
}

// writeAB writes "a" (request 1) then "b" (request 2) at offset 0
// through server 0, the head.
func (c *testCluster) writeAB() {
	c.t.Helper()
	if seq, err := c.write(0, 1, 0, []byte("a")); err != nil || seq != 1 {
		c.t.Fatalf("write 1: seq %d, %v", seq, err)
	}
	if seq, err := c.write(0, 2, 0, []byte("b")); err != nil || seq != 2 {
		c.t.Fatalf("write 2: seq %d, %v", seq, err)
	}
}

// TestReloadedSoleMemberRemembersRequests: a restarted replica made its
// chain's sole member (the master's last resort: the other members are
// gone) answers the retry of a write its chain applied before the
// restart; it does not apply it again over the later write.
func TestReloadedSoleMemberRemembersRequests(t *testing.T) {
	c := newTestCluster(t)
	c.writeAB()
	c.restartServer(2)
	waitFor(t, "lease", c.servers[2].leaseValid)
	c.reconfigureAll(2, []int{2}, 2)
	c.checkRetryAnswered(2, 2, "the reloaded sole member")
}

// TestColdNodeRemembersRequests: a node dropped while quiescent (the
// replica made cold) and rebuilt from its replica when the replica is
// next needed, now as the head of its chain, answers the retry of a
// write it applied as a follower.
func TestColdNodeRemembersRequests(t *testing.T) {
	c := newTestCluster(t)
	c.writeAB()
	c.coldAll(1)
	c.coldAll(2)
	c.reconfigureAll(2, []int{1, 2}, 1, 2) // the head is gone
	c.checkRetryAnswered(1, 2, "the rebuilt head")
}

// TestCloneOfColdNodeRemembersRequests: the members of a fork whose
// source nodes were dropped and rebuilt meanwhile remember the source's
// request ids: the retry of a write to the source, sent to the fork, is
// answered.
func TestCloneOfColdNodeRemembersRequests(t *testing.T) {
	c := newTestCluster(t)
	c.writeAB()
	c.reconfigureAll(2, []int{0, 1, 2}, 0, 1, 2) // the snapshot's fence
	refs := c.chainRefs(0, 1, 2)
	const fork = 8
	var settled uint64
	waitFor(t, "settled", func() bool {
		resp, err := c.clients[0].CloneReplica(ctxT(t), &api.CloneReplicaRequest{
			Source: c.handle, SourceEpoch: 2, SourceChain: refs, Handle: fork, Epoch: 3, Chain: refs,
			ChunkSize: c.size, Probe: true,
		})
		settled = resp.GetAppliedSeq()
		return err == nil
	})
	for i := range c.servers {
		c.coldAll(i)
	}
	for i := range c.servers {
		waitFor(t, "clone", func() bool {
			_, err := c.clients[i].CloneReplica(ctxT(t), &api.CloneReplicaRequest{
				Source: c.handle, SourceEpoch: 2, SourceChain: refs, Handle: fork, Epoch: 3, Chain: refs,
				ChunkSize: c.size, AppliedSeq: settled,
			})
			return err == nil
		})
	}
	c.handle = fork
	c.epoch.Store(3)
	c.checkRetryAnswered(0, 2, "the fork's head")
}

// TestRestartedCloneRemembersRequests: a fork's replica reloaded after a
// restart, made its chain's sole member, still answers the retry of the
// source's write (the clone's request ids are durable with it).
func TestRestartedCloneRemembersRequests(t *testing.T) {
	c := newTestCluster(t)
	c.writeAB()
	c.reconfigureAll(2, []int{0, 1, 2}, 0, 1, 2)
	refs := c.chainRefs(0, 1, 2)
	const fork = 8
	var settled uint64
	waitFor(t, "settled", func() bool {
		resp, err := c.clients[0].CloneReplica(ctxT(t), &api.CloneReplicaRequest{
			Source: c.handle, SourceEpoch: 2, SourceChain: refs, Handle: fork, Epoch: 3, Chain: refs,
			ChunkSize: c.size, Probe: true,
		})
		settled = resp.GetAppliedSeq()
		return err == nil
	})
	for i := range c.servers {
		waitFor(t, "clone", func() bool {
			_, err := c.clients[i].CloneReplica(ctxT(t), &api.CloneReplicaRequest{
				Source: c.handle, SourceEpoch: 2, SourceChain: refs, Handle: fork, Epoch: 3, Chain: refs,
				ChunkSize: c.size, AppliedSeq: settled,
			})
			return err == nil
		})
	}
	c.handle = fork
	c.restartServer(2)
	waitFor(t, "lease", c.servers[2].leaseValid)
	c.reconfigureAll(4, []int{2}, 2)
	c.checkRetryAnswered(2, 2, "the reloaded fork replica")
}

// TestCopyFromReloadedSourceRemembersRequests: a replica that rejoins
// through a copy from a reloaded source, then becomes the head, answers
// the retry of a write the chain applied before the source restarted:
// the source's request ids reach the copy.
func TestCopyFromReloadedSourceRemembersRequests(t *testing.T) {
	c := newTestCluster(t)
	c.writeAB()
	c.restartServer(2)
	waitFor(t, "lease", c.servers[2].leaseValid)
	c.reconfigureAll(2, []int{2}, 2) // 0 and 1 gone: 2 the sole member
	// 1 comes back from 2 by a copy, joins at the tail, and is left
	// alone when 2 fails.
	c.reconfigureAll(3, []int{2}, 2)
	c.replicate(1, 2, 2)
	c.reconfigureAll(4, []int{1, 2}, 2, 1)
	c.reconfigureAll(5, []int{1}, 1)
	c.checkRetryAnswered(1, 1, "the replica copied from a reloaded source")
}
