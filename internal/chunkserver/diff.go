package chunkserver

import (
	"context"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chunkstore"
)

// diffService implements api.ReplicaDiffServer over a Server: the blocks
// two replicas held here differ in, for a mirror (internal/mirror).
type diffService struct {
	api.UnimplementedReplicaDiffServer
	s *Server
}

var _ api.ReplicaDiffServer = (*diffService)(nil)

// DiffReplicas lists the 64 KiB blocks whose contents may differ between
// two replicas of this server (chunkstore.Store.Diff: no data is read).
// Each chunk needs a read capability, and each replica must be a member
// of its chain at the asked epoch, not fenced, and settled (Quiescent:
// nothing in flight, everything applied durable, not catching up): a
// member holds every committed update of its chunk, so a block the
// engine finds shared between the two is equal in their committed
// contents. Chunks a mirror diffs are snapshots' (read-only at that
// epoch), so they settle at once. The answer is a superset of the
// differing blocks (an update applied here but never committed counts
// as a difference; the mirror reads the committed bytes from the tail).
func (v *diffService) DiffReplicas(ctx context.Context, req *api.DiffReplicasRequest) (*api.DiffReplicasResponse, error) {
	s := v.s
	now := s.clk.Now()
	if _, err := s.caps.Check(req.GetCapabilityA(), req.GetHandleA(), req.GetEpochA(), auth.RightRead, now); err != nil {
		return nil, err
	}
	if _, err := s.caps.Check(req.GetCapabilityB(), req.GetHandleB(), req.GetEpochB(), auth.RightRead, now); err != nil {
		return nil, err
	}
	a, b := chunkstore.Handle(req.GetHandleA()), chunkstore.Handle(req.GetHandleB())
	if err := s.admitDiff(a, req.GetEpochA()); err != nil {
		return nil, err
	}
	if err := s.admitDiff(b, req.GetEpochB()); err != nil {
		return nil, err
	}
	blocks, err := s.store.Diff(a, b)
	if err != nil {
		return nil, storeError(err)
	}
	return &api.DiffReplicasResponse{Blocks: blocks, BlockSize: chunkstore.BlockSize}, nil
}

// admitDiff admits replica h at epoch for a diff (see DiffReplicas).
func (s *Server) admitDiff(h chunkstore.Handle, epoch uint64) error {
	r := s.acquire(h)
	if r == nil {
		return errNotFound(h)
	}
	defer r.release()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped {
		return errNotFound(h)
	}
	if err := r.node.AdmitSettled(epoch); err != nil {
		// Stale or fenced: STALE_EPOCH (the mirror asks the master
		// again); failed: the store's error; not settled: UNAVAILABLE.
		return r.chainErrorLocked(err)
	}
	return nil
}
