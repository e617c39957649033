package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/rpcerr"
)

// CloneReplica forks a shared chunk on this member: the new replica
// shares every block of this server's replica of the source
// (chunkstore.Store.Clone: no data copied; the first write to a shared
// block stores only its new bytes). The source must be at the master's
// epoch, unfenced and settled (nothing in flight, everything applied
// durable and acknowledged downstream), so that every member clones the
// same state: the chunk is shared, so no write may be admitted at that
// epoch, and the replicas of a settled chain hold the same updates.
// Durable when it answers; a replica that exists already is the answer
// of an earlier call.
func (v *service) CloneReplica(ctx context.Context, req *api.CloneReplicaRequest) (*api.CloneReplicaResponse, error) {
	s := v.s
	src, dst := chunkstore.Handle(req.GetSource()), chunkstore.Handle(req.GetHandle())
	if size := req.GetChunkSize(); size <= 0 || size > maxChunkSize {
		return nil, errInvalid("chunk size %d", size)
	}
	if src == dst {
		return nil, errInvalid("clone of chunk %d onto itself", src)
	}
	members, ids, err := parseChain(req.GetChain())
	if err != nil {
		return nil, err
	}
	if !slices.Contains(members, s.id) {
		return nil, errInvalid("server %d is not in the new chain of chunk %d", s.id, dst)
	}
	srcMembers, srcIDs, err := parseChain(req.GetSourceChain())
	if err != nil {
		return nil, err
	}
	if !slices.Contains(srcMembers, s.id) {
		return nil, errInvalid("server %d is not in the chain of chunk %d", s.id, src)
	}
	for _, ref := range req.GetChain() {
		s.peers.setAddr(chain.NodeID(ref.GetId()), ref.GetAddr())
	}

	s.createMu.Lock()
	defer s.createMu.Unlock()
	if d := s.acquire(dst); d != nil {
		// Cloned by an earlier round of this fork (the master asks every
		// member again until all have): the clone answers for the state
		// it holds, and only a request for that state is done. Every
		// member must start the fork at the same seq: a head numbering
		// its first write after seq 924 while its successor cloned 925
		// would have that write taken as one it holds already.
		d.mu.Lock()
		have := d.node.Status().Applied
		d.mu.Unlock()
		d.release()
		switch {
		case req.GetProbe():
			return &api.CloneReplicaResponse{AppliedSeq: have}, nil
		case have == req.GetAppliedSeq():
			return &api.CloneReplicaResponse{}, nil
		}
		return nil, errUnavailable(fmt.Sprintf("chunk %d: cloned here at seq %d, the clone was asked at seq %d", dst, have, req.GetAppliedSeq()))
	}
	r := s.acquire(src)
	if r == nil {
		if s.neverHeld(src) {
			// Nothing written here (the others agree, or hold updates not
			// yet acknowledged, which reach this server before they are):
			// the fork, like a new chunk, comes into being with its first
			// write.
			if !req.GetProbe() && req.GetAppliedSeq() != 0 {
				return nil, errUnavailable(fmt.Sprintf("chunk %d: no replica here yet, the clone was asked at seq %d", src, req.GetAppliedSeq()))
			}
			return &api.CloneReplicaResponse{}, nil
		}
		return nil, errNotFound(src)
	}
	defer r.release()
	// The master fenced the source at SourceEpoch; a member that missed
	// the push takes it now.
	r.mu.Lock()
	epoch := r.node.Config().Epoch
	r.mu.Unlock()
	if epoch < req.GetSourceEpoch() {
		if err := s.reconfigure(r, req.GetSourceEpoch(), srcMembers, srcIDs); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	if r.dropped {
		r.mu.Unlock()
		return nil, errNotFound(src)
	}
	if err := r.node.AdmitSettled(req.GetSourceEpoch()); errors.Is(err, chain.ErrStaleEpoch) {
		r.mu.Unlock()
		return nil, rpcerr.New(api.ErrorCode_STALE_EPOCH, "chunk %d, clone: %v", src, err)
	} else if err != nil || r.failed != nil {
		// Fenced, failed or busy: the master waits and probes again.
		r.mu.Unlock()
		return nil, errUnavailable(fmt.Sprintf("chunk %d: replica not settled for a clone: %v (store failed: %v)", src, err, r.failed))
	}
	applied := r.node.Status().Applied
	if req.GetProbe() {
		r.mu.Unlock()
		return &api.CloneReplicaResponse{AppliedSeq: applied}, nil
	}
	// The clone starts at the seq asked (where the members that cloned
	// already are): this replica's state when it applied it, or now when
	// what it applied since changed no byte (the epoch starts of the
	// source's later configurations: nothing writes a shared chunk).
	base, baseEpoch := req.GetAppliedSeq(), uint64(0)
	if applied != base {
		e, ok := r.node.NoBytesSince(base)
		if !ok || applied < base {
			r.mu.Unlock()
			return nil, errUnavailable(fmt.Sprintf("chunk %d: replica at seq %d here, the clone was asked at seq %d", src, applied, base))
		}
		baseEpoch = e
	}
	// Under r.mu: no update applies to the source while it is cloned.
	rep, err := s.store.Clone(src, dst)
	verified, reqs := r.verified, r.node.Requests()
	r.mu.Unlock()
	if err != nil {
		return nil, storeError(err)
	}
	if baseEpoch != 0 {
		rep.SetAppliedAt(baseEpoch, base)
	}
	rep.SetConfig(req.GetEpoch(), ids)
	// Served (and reported) as an active replica from the start: a report
	// made while the clone syncs must not find it in the store only, which
	// reads as a replica loaded at start, fenced until it rejoins.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errUnavailable("server closing")
	}
	// Everything the clone holds is durable on every member: committed.
	// The clone remembers the source's request ids: a client whose write
	// the source applied may retry it on the fork (it timed out, and
	// found the chunk forked when it asked again), and that retry is
	// answered, not applied a second time over a later write.
	c := s.newReplica(rep, &coldState{verified: verified, committed: true}, reqs)
	s.replicas[dst] = c
	delete(s.deleted, dst)
	delete(s.cold, dst)
	s.mu.Unlock()
	s.inv.noteChanged(dst)
	if err := rep.Sync(); err != nil {
		s.deleteReplica(dst)
		return nil, storeError(fmt.Errorf("sync clone: %w", err))
	}
	s.metrics.clones.Add(1)
	s.log.Debug("replica cloned", "source", uint64(src), "handle", uint64(dst), "epoch", req.GetEpoch(), "chain", ids)
	return &api.CloneReplicaResponse{}, nil
}

// maxReplicaSpace bounds the handles of one ReplicaSpace call.
const maxReplicaSpace = 1 << 16

// ReplicaSpace answers each named replica's data bytes and own bytes
// (chunkstore.Replica.OwnBytes), from the store, without activating it;
// handles it does not hold are left out.
func (v *service) ReplicaSpace(ctx context.Context, req *api.ReplicaSpaceRequest) (*api.ReplicaSpaceResponse, error) {
	hs := req.GetHandles()
	if len(hs) > maxReplicaSpace {
		return nil, errInvalid("%d handles in one ReplicaSpace, at most %d", len(hs), maxReplicaSpace)
	}
	out := &api.ReplicaSpaceResponse{}
	for _, h := range hs {
		if ctx.Err() != nil {
			return nil, errUnavailable("ReplicaSpace: " + ctx.Err().Error())
		}
		rep, err := v.s.store.Get(chunkstore.Handle(h))
		if err != nil {
			continue
		}
		out.Replicas = append(out.Replicas, &api.ReplicaSpace{Handle: h, UsedBytes: rep.UsedBytes(), OwnBytes: rep.OwnBytes()})
	}
	return out, nil
}
