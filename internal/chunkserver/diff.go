package chunkserver

import (
	"context"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chain"
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
// Each chunk needs a read capability, and each replica must be admitted
// for a read at the asked epoch as Read admits it (the tail, caught up,
// under a lease) with everything it applied durable: a replica so
// admitted holds every committed update of its chunk, so a block the
// engine finds shared between the two is equal in their committed
// contents. The answer is a superset of the differing blocks.
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
	for _, x := range []struct {
		h     chunkstore.Handle
		epoch uint64
	}{{a, req.GetEpochA()}, {b, req.GetEpochB()}} {
		if err := s.admitDiff(ctx, x.h, x.epoch); err != nil {
			return nil, err
		}
	}
	blocks, err := s.store.Diff(a, b)
	if err != nil {
		return nil, storeError(err)
	}
	return &api.DiffReplicasResponse{Blocks: blocks, BlockSize: chunkstore.BlockSize}, nil
}

// admitDiff admits replica h at epoch as a read (chain.Node.AdmitRead)
// and waits until what it applied is durable.
func (s *Server) admitDiff(ctx context.Context, h chunkstore.Handle, epoch uint64) error {
	r := s.acquire(h)
	if r == nil {
		return errNotFound(h)
	}
	defer r.release()
	r.mu.Lock()
	if r.dropped {
		r.mu.Unlock()
		return errNotFound(h)
	}
	target, err := r.node.AdmitRead(chain.ReadRequest{Epoch: epoch, Leased: s.leaseValid()})
	if err != nil {
		err = r.chainErrorLocked(err)
		r.mu.Unlock()
		return err
	}
	for r.node.Status().Persisted < target {
		if r.failed != nil || r.dropped {
			err := r.failed
			r.mu.Unlock()
			if err == nil {
				return errNotFound(h)
			}
			return storeError(err)
		}
		wait := r.persistWaitLocked()
		r.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctxError(ctx)
		}
		r.mu.Lock()
	}
	r.mu.Unlock()
	return nil
}
