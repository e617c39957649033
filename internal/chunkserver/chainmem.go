package chunkserver

import (
	"sync/atomic"

	"github.com/catena-io/catena/internal/chain"
)

// The chain memory: what a server holds of its chains' updates beyond a
// client's write in flight. A middle member keeps every update it
// forwarded until its successor acknowledges it (the node's Sent list),
// and any member keeps updates that arrived out of order; a slow
// successor or many busy chains would make that grow with the cluster's
// load. Config.ChainMemory bounds it:
//
//   - every replica's retained bytes (chain.Node.Retained) are charged
//     to the server after each batch of its node's work (chargeLocked);
//   - an update from a predecessor that would take the charge past the
//     bound is dropped before the node sees it (admitRelay); the
//     predecessor keeps it in its own Sent list and sends it again after
//     chain.ResendTicks without an acknowledgement, so dropping loses
//     nothing, it only slows the chain down (backpressure);
//   - but a replica that retains nothing always takes its chain's next
//     update in order. Without that, two servers each full of updates
//     that wait for the other's acknowledgement (A's middle is B's
//     tail's predecessor and the converse) would drop each other's
//     updates for ever; with it, every chain's tail takes its next
//     update, acknowledges it, and so frees its predecessor, down to
//     the head. The bound is thus ChainMemory plus at most one update
//     per chain whose replica here held nothing.
//
// Client data at the head is bounded apart (Config.WriteMemory, while the
// client waits): a head replica's Sent list is counted in the chain
// memory's figures (ChainMemory, its peak) but not against the bound on
// relays, which is about what predecessors send. Counting it there made
// a server that heads busy chains (every server, in a loaded cluster)
// take its other chains' updates one at a time, each dropped update
// waiting out chain.ResendTicks: the chains crawled under load.
type chainMemory struct {
	limit   atomic.Int64 // Config.ChainMemory
	used    atomic.Int64 // every replica's retained bytes
	relay   atomic.Int64 // those of replicas that are not their chain's head: the bound's
	peak    atomic.Int64
	dropped atomic.Uint64 // updates dropped for want of room
}

// defaultChainMemory is Config.ChainMemory's default.
const defaultChainMemory = 256 << 20

// chargeChain adds delta (negative: a release) to the chain memory.
func (s *Server) chargeChain(delta int64) {
	used := s.chainMem.used.Add(delta)
	for {
		p := s.chainMem.peak.Load()
		if used <= p || s.chainMem.peak.CompareAndSwap(p, used) {
			return
		}
	}
}

// admitRelay decides whether replica r's node may take update u from
// its predecessor now; r.mu is held.
func (r *replica) admitRelay(u chain.Update) bool {
	n := int64(len(u.Data))
	if n == 0 {
		return true
	}
	st := r.node.Status()
	next := u.Seq == st.Applied+1
	switch {
	case u.Seq <= st.Acked || u.Seq <= st.SuccAck:
		return true // a duplicate answered with an ack, kept nowhere
	case u.Seq > st.Applied+1 && r.relayGap:
		// After a drop, nothing past the gap: it would wait out of
		// order until the gap's re-send, and a gap that stays open
		// makes the node ask for a whole catch-up copy.
	case u.Seq <= st.Applied+1 && r.relayHeld == 0,
		r.s.chainMem.relay.Load()+n <= r.s.chainMem.limit.Load():
		// Each chain's next update (or the duplicate it must forward
		// again) whatever the load, else what fits.
		if next {
			r.relayGap = false
		}
		return true
	default:
		if u.Seq > st.Applied {
			r.relayGap = true
		}
	}
	r.s.chainMem.dropped.Add(1)
	return false
}
