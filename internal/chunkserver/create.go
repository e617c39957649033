package chunkserver

import (
	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/rpcerr"
)

// How a replica comes into being (see doc.go, "Creation"): a new chunk's
// replicas are created by its first write, at the head from the client's
// WriteRequest.create and at every successor from the first chain update
// it receives (ChainMessage.create). The master's CreateReplica is kept
// for chunks that no write created.
//
// A server creates a replica from a write or an update only when it never
// held one: an empty replica must never stand in for a history it lost.
// Two scenarios this prevents:
//  1. The head creates the replica, applies (e, 1) and forwards it, and is
//     killed before its first sync: its successor holds (e, 1), the head
//     nothing. Restarted, a head re-created empty would give a different
//     write the sequence number (e, 1); the successor, which has (e, 1),
//     would take it for a duplicate and ack it. An acknowledged write
//     lost.
//  2. A server removed from the chain deleted its stale replica; a client
//     with a cached old chain writes to it. Re-created at the old epoch,
//     it and other such servers could acknowledge writes the current chain
//     never sees.
// Hence neverHeldLocked: the handle was allocated after this process
// opened its store (at or above createFloor, the master's next handle at
// the first registration) and this process deleted no replica of it.

// neverHeld reports whether this server holds no replica of h and never
// held one.
func (s *Server) neverHeld(h chunkstore.Handle) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.neverHeldLocked(h)
}

// neverHeldLocked is neverHeld with s.mu held.
func (s *Server) neverHeldLocked(h chunkstore.Handle) bool {
	floor := s.createFloor.Load()
	if floor == 0 || uint64(h) < floor || s.heldLocked(h) {
		return false
	}
	_, deleted := s.deleted[h]
	return !deleted
}

// setCreateFloor records the master's next handle from the first
// registration of this process; later ones change nothing (the first is
// the lowest, and any value read after the store was opened is sound).
func (s *Server) setCreateFloor(next uint64) {
	if next > 0 {
		s.createFloor.CompareAndSwap(0, next)
	}
}

// spec is a validated ReplicaSpec at an epoch.
type spec struct {
	epoch   uint64
	size    int64
	members []chain.NodeID
	ids     []uint64
	refs    []*api.ServerRef
	self    int // index of this server in members
}

// parseSpec validates a ReplicaSpec carried at epoch, as CreateReplica
// validates its request: a positive epoch, a bounded chunk size, distinct
// non-zero members, this server among them.
func (s *Server) parseSpec(h chunkstore.Handle, in *api.ReplicaSpec, epoch uint64) (spec, error) {
	sp := spec{epoch: epoch, size: in.GetChunkSize(), refs: in.GetChain(), self: -1}
	if epoch == 0 {
		return sp, errInvalid("create chunk %d: epoch 0", h)
	}
	if sp.size <= 0 || sp.size > maxChunkSize {
		return sp, errInvalid("create chunk %d: chunk size %d", h, sp.size)
	}
	members, ids, err := parseChain(in.GetChain())
	if err != nil {
		return sp, err
	}
	seen := make(map[chain.NodeID]bool, len(members))
	for i, id := range members {
		if seen[id] {
			return sp, errInvalid("create chunk %d: server %d twice in the chain", h, id)
		}
		seen[id] = true
		if id == s.id {
			sp.self = i
		}
	}
	if sp.self < 0 {
		return sp, errInvalid("create chunk %d: server %d is not in the chain", h, s.id)
	}
	sp.members, sp.ids = members, ids
	return sp, nil
}

// createFor creates the replica of h described by sp unless one exists
// (created meanwhile by a retry, a concurrent update or CreateReplica: it
// is returned as is), pinned (see acquire). It refuses with NOT_FOUND when this server may have
// held the replica before (see neverHeldLocked).
func (s *Server) createFor(h chunkstore.Handle, sp spec, byWrite bool) (*replica, error) {
	s.createMu.RLock()
	defer s.createMu.RUnlock()
	stripe := &s.createStripes[uint64(h)%uint64(len(s.createStripes))]
	stripe.Lock()
	defer stripe.Unlock()
	s.mu.Lock()
	if r := s.activeLocked(h); r != nil {
		r.pinLocked()
		s.mu.Unlock()
		return r, nil
	}
	ok := s.neverHeldLocked(h)
	floor := s.absentFloor[h]
	s.mu.Unlock()
	if !ok {
		return nil, rpcerr.New(api.ErrorCode_NOT_FOUND, "no replica of chunk %d, and this server may have held one (it restarted or deleted it since the chunk was allocated)", h)
	}
	if sp.epoch < floor {
		return nil, rpcerr.New(api.ErrorCode_STALE_EPOCH, "chunk %d: epoch %d, and the master moved it to %d before this server held it", h, sp.epoch, floor)
	}
	for _, ref := range sp.refs {
		s.peers.setAddr(chain.NodeID(ref.GetId()), ref.GetAddr())
	}
	// Durable with the first Sync, which comes before this replica
	// acknowledges anything.
	r, err := s.addReplica(chunkstore.Meta{Handle: h, Epoch: sp.epoch, ChunkSize: sp.size, Chain: sp.ids}, false)
	if err != nil {
		return nil, err
	}
	if byWrite {
		s.metrics.createdByWrite.Add(1)
	} else {
		s.metrics.createdByUpdate.Add(1)
	}
	s.log.Debug("replica created", "handle", uint64(h), "epoch", sp.epoch, "chain", sp.ids, "by_write", byWrite)
	return r, nil
}

// addReplica creates replica m.Handle in the store and serves it, pinned
// (see acquire); sync makes its creation durable first. The caller holds createMu (shared
// with a lock stripe of the handle, or exclusively).
func (s *Server) addReplica(m chunkstore.Meta, sync bool) (*replica, error) {
	rep, err := s.store.Create(m)
	if err == nil && sync {
		err = rep.Sync()
	}
	if err != nil {
		return nil, storeError(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errUnavailable("server closing")
	}
	r := s.newReplica(rep, nil, nil)
	s.replicas[m.Handle] = r
	delete(s.deleted, m.Handle) // held again (cold.go's activeLocked)
	delete(s.absentFloor, m.Handle)
	delete(s.cold, m.Handle)
	r.pinLocked()
	return r, nil
}

// createForWrite creates, at the head, the replica a client write finds
// missing, from the write's ReplicaSpec. Only what the write itself would
// pass is created: a head of the given chain, under a lease, with the
// write inside the chunk (an empty replica left behind by a refused write
// would only make the other members look as if they lost theirs).
func (s *Server) createForWrite(h chunkstore.Handle, req *api.WriteRequest) (*replica, error) {
	if req.GetCreate() == nil {
		return nil, errNotFound(h)
	}
	sp, err := s.parseSpec(h, req.GetCreate(), req.GetEpoch())
	if err != nil {
		return nil, err
	}
	if sp.self != 0 {
		return nil, rpcerr.New(api.ErrorCode_NOT_HEAD, "chunk %d: server %d is not the head of the chain at epoch %d", h, s.id, sp.epoch)
	}
	n := req.GetLength()
	if req.GetKind() != api.UpdateKind_ZERO {
		n = int64(len(req.GetData()))
	}
	if off := req.GetOffset(); off < 0 || n < 0 || off > sp.size || n > sp.size-off {
		return nil, errInvalid("chunk %d: range [%d, +%d) outside chunk of %d bytes", h, off, n, sp.size)
	}
	if !s.leaseValid() {
		return nil, rpcerr.New(api.ErrorCode_UNAVAILABLE, "chunk %d: %v", h, chain.ErrNoLease)
	}
	return s.createFor(h, sp, true)
}

// createForUpdate creates, at a successor, the replica the first chain
// update of a chunk (seq 1) finds missing, from the message's
// ReplicaSpec: the sender must be this server's predecessor in that chain
// at the message's epoch. nil when it may not (the message is then dropped as before: the
// predecessor re-sends, and the master repairs a member that lost its
// replica).
func (s *Server) createForUpdate(h chunkstore.Handle, m chain.Message, in *api.ReplicaSpec) *replica {
	sp, err := s.parseSpec(h, in, m.Epoch)
	if err == nil && (sp.self == 0 || sp.members[sp.self-1] != m.From) {
		err = errInvalid("chunk %d: update from %d, not this server's predecessor at epoch %d", h, m.From, m.Epoch)
	}
	if err == nil && m.Update.Seq != 1 {
		// Only a new chunk's first update creates: a later one belongs
		// to a replica with history (a fork's member whose clone has not
		// landed yet, a member that lost its replica), which an empty
		// one would pass off as its own at the tail.
		err = errInvalid("chunk %d: update %d is not a new chunk's first", h, m.Update.Seq)
	}
	var r *replica
	if err == nil {
		r, err = s.createFor(h, sp, false)
	}
	if err != nil {
		s.log.Debug("chain update for a missing replica not created", "handle", uint64(h), "from", uint64(m.From), "err", err)
		return nil
	}
	return r
}

// specLocked is the ReplicaSpec of r's current configuration, sent with
// updates until the successor acknowledged one (r.mu held).
func (r *replica) specLocked() *api.ReplicaSpec {
	cfg := r.node.Config()
	out := &api.ReplicaSpec{ChunkSize: r.chunkSize, Chain: make([]*api.ServerRef, 0, len(cfg.Chain))}
	for _, id := range cfg.Chain {
		out.Chain = append(out.Chain, &api.ServerRef{Id: uint64(id), Addr: r.addrOf(id)})
	}
	return out
}
