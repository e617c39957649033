package master

import (
	"context"
	"errors"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
)

// ReportReplica takes a bad replica out of its chain (epoch+1,
// Reconfigure pushed to the survivors and to the reporter, which stops
// serving it) when decide.DropOnReport says so; the repair loop then
// re-replicates the chunk. The reporter becomes a last resort as a repair
// target for that chunk. A sole remaining replica is kept: it is the only
// copy left. Idempotent.
func (s *server) ReportReplica(ctx context.Context, req *api.ReportReplicaRequest) (*api.ReportReplicaResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if req.ServerId == 0 || req.Handle == 0 {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "report replica: server_id and handle must be non-zero")
	}
	if err := s.checkBound(ctx, req.ServerId); err != nil {
		return nil, err
	}
	s.m.log.Warn("master: bad replica reported", "server", req.ServerId, "handle", req.Handle,
		"epoch", req.Epoch, "problem", req.Problem, "detail", req.Detail)
	s.m.soft.markBad(req.Handle, req.ServerId)
	failed := req.Problem != api.ReplicaProblem_REPLICA_CORRUPT
	err := s.m.changeChain(ctx, req.Handle, func(ch meta.Chunk) []uint64 {
		view := s.m.soft.snapshotServers(ch.Chain, s.m.cfg.Clock.Now(), s.m.cfg.deadAfter())
		if !decide.DropOnReport(ch, req.ServerId, failed, view.live, view.evidence) {
			return nil
		}
		return without(ch.Chain, []uint64{req.ServerId})
	}, nil, []uint64{req.ServerId})
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
