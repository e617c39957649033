package master

import (
	"context"
	"errors"
	"slices"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
)

// ReportReplica takes a bad replica out of its chain (epoch+1, Reconfigure
// pushed to the survivors and to the reporter, which stops serving it)
// when dropOnReport says so; the repair loop then re-replicates the chunk.
// The reporter becomes a last resort as a repair target for that chunk. A
// sole remaining replica is kept: it is the only copy left. Idempotent.
func (s *server) ReportReplica(ctx context.Context, req *api.ReportReplicaRequest) (*api.ReportReplicaResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if req.ServerId == 0 || req.Handle == 0 {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "report replica: server_id and handle must be non-zero")
	}
	s.m.log.Warn("master: bad replica reported", "server", req.ServerId, "handle", req.Handle,
		"epoch", req.Epoch, "problem", req.Problem, "detail", req.Detail)
	s.m.soft.markBad(req.Handle, req.ServerId)
	failed := req.Problem != api.ReplicaProblem_REPLICA_CORRUPT
	err := s.m.changeChain(ctx, req.Handle, func(ch meta.Chunk) []uint64 {
		view := s.m.soft.snapshotServers(ch.Chain, s.m.cfg.Clock.Now(), s.m.cfg.deadAfter())
		if !dropOnReport(ch, req.ServerId, failed, view.live, view.evidence) {
			return nil
		}
		return without(ch.Chain, []uint64{req.ServerId})
	}, []uint64{req.ServerId})
	switch {
	case err == nil, errors.Is(err, errChainMoved), errors.Is(err, meta.ErrNotFound):
		// Removed now, not a member (any more), sole copy, or a deleted
		// chunk that heartbeats will collect.
		return &api.ReportReplicaResponse{}, nil
	case rpcerr.Code(err) != api.ErrorCode_ERROR_CODE_UNSPECIFIED:
		return nil, err
	default:
		return nil, rpcerr.New(api.ErrorCode_UNAVAILABLE, "report replica: %v", err)
	}
}

// reconcileInventory decides what a heartbeat answers about a server's
// replicas: replicas to delete, and the chains it missed. st must be
// read-locked; targets are the repairs in flight, read BEFORE st (see
// Heartbeat). Rules:
//   - a handle at or past the next-handle counter is left alone (it may be
//     in the middle of its allocation);
//   - a handle absent from the chunk map is deleted (its file is gone);
//   - a chain member reporting an epoch below the chunk's gets the current
//     configuration (it missed a Reconfigure push);
//   - a non-member's replica is stale: kept while the chain is shorter than
//     its replication factor (a delta-resync candidate) or while the server
//     is joining the chain, deleted once the chain is whole again.
func reconcileInventory(st *meta.State, server uint64, reps []*api.ReplicaInfo, targets map[uint64]uint64) (deletes []uint64, configs []*api.ReconfigureRequest) {
	next := st.NextHandle()
	for _, r := range reps {
		if r.Handle >= next {
			continue
		}
		ch, ok := st.Chunk(r.Handle)
		switch {
		case !ok:
			deletes = append(deletes, r.Handle)
		case slices.Contains(ch.Chain, server):
			if r.Epoch < ch.Epoch {
				configs = append(configs, reconfigureRequest(st, ch))
			}
		case targets[r.Handle] == server:
		case len(ch.Chain) >= ch.Replication && r.Epoch <= ch.Epoch:
			deletes = append(deletes, r.Handle)
		}
	}
	return deletes, configs
}

// fencedReplicas lists the server's reported replicas that it must not
// serve: the chunk's chain at the master's epoch does not include the
// server (it was removed while away, or is only joining). Without this a
// server that returns (restart or healed partition) with a replica still
// at the old epoch, where it was the tail, would serve stale reads under
// its fresh lease to clients caching that old chain. st must be
// read-locked.
func fencedReplicas(st *meta.State, server uint64, reps []*api.ReplicaInfo) []*api.FencedReplica {
	var fenced []*api.FencedReplica
	for _, r := range reps {
		ch, ok := st.Chunk(r.Handle)
		if !ok || slices.Contains(ch.Chain, server) {
			continue // deleted (or being allocated), or a member: configs cover it
		}
		fenced = append(fenced, &api.FencedReplica{Handle: r.Handle, Epoch: ch.Epoch})
	}
	return fenced
}
