package chunkserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/status"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/rpcerr"
)

// service implements api.ChunkserverServer over a Server.
type service struct {
	api.UnimplementedChunkserverServer
	s *Server
}

var _ api.ChunkserverServer = (*service)(nil)

func errNotFound(h chunkstore.Handle) error {
	return rpcerr.New(api.ErrorCode_NOT_FOUND, "no replica of chunk %d", h)
}

func errUnavailable(msg string) error { return rpcerr.New(api.ErrorCode_UNAVAILABLE, "%s", msg) }

func errInvalid(format string, args ...any) error {
	return rpcerr.New(api.ErrorCode_INVALID, format, args...)
}

// storeError translates a store error for the client.
func storeError(err error) error {
	return rpcerr.New(storeErrCode(err), "%v", err)
}

// ctxError returns the gRPC status of a cancelled or expired ctx.
func ctxError(ctx context.Context) error {
	return status.FromContextError(ctx.Err()).Err()
}

// Write enters the chain at the head and answers once the update is
// durable on every member. A head that holds no replica yet creates it
// from the write's ReplicaSpec (a new chunk's first write; create.go).
func (v *service) Write(ctx context.Context, req *api.WriteRequest) (*api.WriteResponse, error) {
	start := time.Now()
	resp, err := v.write(ctx, req)
	if err == nil {
		v.s.wrote(len(req.GetData()), time.Since(start))
	}
	return resp, err
}

func (v *service) write(ctx context.Context, req *api.WriteRequest) (*api.WriteResponse, error) {
	body, err := v.s.caps.Check(req.GetCapability(), req.GetHandle(), req.GetEpoch(), auth.RightWrite, v.s.clk.Now())
	if err != nil {
		return nil, err
	}
	if sp := req.GetCreate(); sp != nil && !specAgrees(sp, body) {
		return nil, rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "chunk %d: the replica spec differs from the capability's chunk", req.GetHandle())
	}
	if n := int64(len(req.GetData())); n > 0 {
		if err := v.s.reserveWrite(ctx, n); err != nil {
			return nil, err
		}
		v.s.metrics.writeMemUsed.Add(n)
		defer func() { v.s.metrics.writeMemUsed.Add(-n); v.s.writeMem.Release(n) }()
	}
	h := chunkstore.Handle(req.GetHandle())
	r := v.s.acquire(h)
	if r == nil {
		var err error
		if r, err = v.s.createForWrite(h, req); err != nil {
			return nil, err
		}
	}
	defer r.release()
	w := chain.ClientWrite{
		Epoch: req.GetEpoch(),
		Req:   chain.RequestID{Client: req.GetClientId(), Seq: req.GetRequestId()},
	}
	switch req.GetKind() {
	case api.UpdateKind_WRITE, api.UpdateKind_UPDATE_KIND_UNSPECIFIED:
		w.Kind, w.Data, w.Length = chain.KindWrite, req.GetData(), int64(len(req.GetData()))
	case api.UpdateKind_ZERO:
		if len(req.GetData()) != 0 {
			return nil, errInvalid("zero request carries data")
		}
		w.Kind, w.Length = chain.KindZero, req.GetLength()
	default:
		return nil, errInvalid("unknown update kind %v", req.GetKind())
	}
	w.Offset = req.GetOffset()
	w.Leased = v.s.leaseValid()
	if req.GetAppend() {
		if err := checkAppend(req, r.chunkSize); err != nil {
			return nil, err
		}
	}

	ch := make(chan writeResult, 1)
	r.mu.Lock()
	if r.dropped {
		r.mu.Unlock()
		return nil, errNotFound(h)
	}
	if req.GetAppend() && !r.node.Known(w.Req) {
		// A new record goes at the end; a retry gets its first offset
		// from the node, whatever it proposes.
		end, err := r.appendEndLocked()
		if err != nil {
			r.mu.Unlock()
			return nil, storeError(err)
		}
		if end+w.Length > r.chunkSize {
			r.mu.Unlock()
			return &api.WriteResponse{Full: true}, nil
		}
		w.Offset = end
	}
	// The node refuses writes that cover a block it cannot verify only
	// in part (chain.ErrDamaged).
	r.node.SetDamaged(damagedRanges(r.store.BadBlocks(), r.chunkSize))
	if err := r.node.Propose(w); err != nil {
		err = r.chainErrorLocked(err)
		r.mu.Unlock()
		return nil, err
	}
	// Register before processing: an already acknowledged retry is answered
	// in this very Ready. A write without a request id is never
	// deduplicated, so Propose just made it the newest update.
	key := keyOf(w.Req, r.node.Status().Applied)
	if r.waiters == nil {
		r.waiters = make(map[waitKey][]chan writeResult)
	}
	r.waiters[key] = append(r.waiters[key], ch)
	r.processReadyLocked()
	r.mu.Unlock()

	select {
	case res := <-ch:
		if res.err != nil {
			if _, ok := status.FromError(res.err); ok {
				return nil, res.err
			}
			return nil, storeError(res.err)
		}
		resp := &api.WriteResponse{Seq: res.seq}
		if req.GetAppend() {
			resp.Offset = res.off
		}
		return resp, nil
	case <-ctx.Done():
		// The write may still commit; the client retries with the same id.
		r.removeWaiter(key, ch)
		return nil, ctxError(ctx)
	}
}

// specAgrees reports whether a write's replica spec is the chunk its
// capability was signed for: the same size and chain.
func specAgrees(sp *api.ReplicaSpec, body *api.CapabilityBody) bool {
	if sp.GetChunkSize() != body.GetChunkSize() || len(sp.GetChain()) != len(body.GetChain()) {
		return false
	}
	for i, ref := range sp.GetChain() {
		if ref.GetId() != body.GetChain()[i] {
			return false
		}
	}
	return true
}

// chainErrorLocked translates a node's refusal for the client.
func (r *replica) chainErrorLocked(err error) error {
	switch {
	case errors.Is(err, chain.ErrStaleEpoch), errors.Is(err, chain.ErrFenced):
		// The client reloads the chain from the master.
		return rpcerr.New(api.ErrorCode_STALE_EPOCH, "chunk %d: %v", r.handle, err)
	case errors.Is(err, chain.ErrNotHead):
		return rpcerr.New(api.ErrorCode_NOT_HEAD, "chunk %d: %v", r.handle, err)
	case errors.Is(err, chain.ErrNotTail):
		return rpcerr.New(api.ErrorCode_NOT_TAIL, "chunk %d: %v", r.handle, err)
	case errors.Is(err, chain.ErrFailed) && r.failed != nil:
		return storeError(r.failed)
	case errors.Is(err, chain.ErrDamaged), errors.Is(err, chain.ErrCatchingUp), errors.Is(err, chain.ErrNoLease), errors.Is(err, chain.ErrNotSettled):
		// Retryable: the block is being restored (or is lost, and status
		// says so), the tail is fetching what it missed, or the next
		// heartbeat renews the lease.
		return rpcerr.New(api.ErrorCode_UNAVAILABLE, "chunk %d: %v", r.handle, err)
	}
	return rpcerr.New(api.ErrorCode_INVALID, "chunk %d: %v", r.handle, err)
}

// writeMemoryWait is how long a write waits for room in WriteMemory.
var writeMemoryWait = 2 * time.Second

// defaultWriteMemory is Config.WriteMemory's default.
const defaultWriteMemory = 256 << 20

// reserveWrite takes n bytes of WriteMemory for a write, waiting at most
// writeMemoryWait.
func (s *Server) reserveWrite(ctx context.Context, n int64) error {
	wctx, cancel := context.WithTimeout(ctx, writeMemoryWait)
	defer cancel()
	if err := s.writeMem.Acquire(wctx, n); err != nil {
		if ctx.Err() != nil {
			return ctxError(ctx)
		}
		s.metrics.writesRefusedBusy.Add(1)
		return rpcerr.New(api.ErrorCode_UNAVAILABLE, "busy: the writes in flight fill the write memory (%d bytes); try again", s.cfg.WriteMemory)
	}
	return nil
}

// Read serves committed data at the tail. A server that never held a
// replica of the chunk says so (no_replica): if it is the tail at the
// read's epoch, nothing was ever written to the chunk, which the client
// confirms with the master.
func (v *service) Read(ctx context.Context, req *api.ReadRequest) (*api.ReadResponse, error) {
	start := time.Now()
	resp, err := v.read(ctx, req)
	if err == nil {
		v.s.read(len(resp.GetData()), time.Since(start))
	}
	return resp, err
}

func (v *service) read(ctx context.Context, req *api.ReadRequest) (*api.ReadResponse, error) {
	if _, err := v.s.caps.Check(req.GetCapability(), req.GetHandle(), req.GetEpoch(), auth.RightRead, v.s.clk.Now()); err != nil {
		return nil, err
	}
	h := chunkstore.Handle(req.GetHandle())
	r := v.s.acquire(h)
	if r == nil {
		if v.s.neverHeld(h) {
			return &api.ReadResponse{NoReplica: true}, nil
		}
		return nil, errNotFound(h)
	}
	defer r.release()
	off, n := req.GetOffset(), req.GetLength()
	if off < 0 || n < 0 || n > maxReadSize || off > r.chunkSize || n > r.chunkSize-off {
		return nil, errInvalid("range [%d,+%d) outside chunk of %d bytes (or over %d)", off, n, r.chunkSize, maxReadSize)
	}
	leased := v.s.leaseValid()
	r.mu.Lock()
	if r.dropped {
		r.mu.Unlock()
		return nil, errNotFound(h)
	}
	target, err := r.node.AdmitRead(chain.ReadRequest{Epoch: req.GetEpoch(), Leased: leased})
	if err != nil {
		err = r.chainErrorLocked(err)
		r.mu.Unlock()
		return nil, err
	}
	// Serve only what is durable here (the node's rule): wait for
	// everything applied so far.
	for r.node.Status().Persisted < target {
		if r.failed != nil || r.dropped {
			err := r.failed
			r.mu.Unlock()
			if err == nil {
				return nil, errNotFound(h)
			}
			return nil, storeError(err)
		}
		wait := r.persistWaitLocked()
		r.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctxError(ctx)
		}
		r.mu.Lock()
	}
	r.mu.Unlock()
	buf := make([]byte, n)
	if _, err := r.store.ReadAt(buf, off); err != nil {
		if errors.Is(err, chunkstore.ErrCorrupt) {
			// The bad blocks are never served; the rest of the replica is.
			r.mu.Lock()
			r.corruptLocked(err)
			r.mu.Unlock()
		}
		return nil, storeError(err)
	}
	return &api.ReadResponse{Data: buf}, nil
}

// CreateReplica creates the replica of a chain member, durably before it
// answers. It is idempotent; on an existing replica a higher epoch
// installs the new chain.
func (v *service) CreateReplica(ctx context.Context, req *api.CreateReplicaRequest) (*api.CreateReplicaResponse, error) {
	s := v.s
	s.metrics.createReplicaCalls.Add(1)
	h := chunkstore.Handle(req.GetHandle())
	size := req.GetChunkSize()
	if size <= 0 || size > maxChunkSize {
		return nil, errInvalid("chunk size %d", size)
	}
	members := make([]chain.NodeID, 0, len(req.GetChain()))
	ids := make([]uint64, 0, len(req.GetChain()))
	self := false
	for _, ref := range req.GetChain() {
		if ref.GetId() == 0 {
			return nil, errInvalid("chain member with id 0")
		}
		members = append(members, chain.NodeID(ref.GetId()))
		ids = append(ids, ref.GetId())
		self = self || chain.NodeID(ref.GetId()) == s.id
	}
	if !self {
		return nil, errInvalid("server %d is not in the chain of chunk %d", s.id, h)
	}
	for _, ref := range req.GetChain() {
		s.peers.setAddr(chain.NodeID(ref.GetId()), ref.GetAddr())
	}

	s.createMu.Lock()
	defer s.createMu.Unlock()
	if r := s.acquire(h); r != nil {
		defer r.release()
		return &api.CreateReplicaResponse{}, s.reconfigure(r, req.GetEpoch(), members, ids)
	}
	// Synced: the master counts on the replica once this answers.
	r, err := s.addReplica(chunkstore.Meta{Handle: h, Epoch: req.GetEpoch(), ChunkSize: size, Chain: ids}, true)
	if err != nil {
		return nil, err
	}
	r.release()
	s.log.Info("replica created", "handle", uint64(h), "epoch", req.GetEpoch(), "chain", ids)
	return &api.CreateReplicaResponse{}, nil
}

// reconfigure installs (epoch, members) on an existing replica: same epoch
// is a no-op, a higher one reconfigures the node, a lower one is stale.
func (s *Server) reconfigure(r *replica, epoch uint64, members []chain.NodeID, ids []uint64) error {
	changed, err := s.reconfigureNoSync(r, epoch, members, ids)
	if err != nil || !changed {
		return err
	}
	if err := r.store.Sync(); err != nil {
		return storeError(fmt.Errorf("sync config: %w", err))
	}
	s.log.Info("replica reconfigured", "handle", uint64(r.handle), "epoch", epoch, "chain", ids)
	return nil
}

// reconfigureNoSync is reconfigure without the sync, which the caller
// owes before it answers when changed (ReconfigureBatch: one for all).
func (s *Server) reconfigureNoSync(r *replica, epoch uint64, members []chain.NodeID, ids []uint64) (changed bool, err error) {
	r.mu.Lock()
	if r.dropped {
		r.mu.Unlock()
		return false, errNotFound(r.handle)
	}
	wasFenced := r.node.Fenced()
	changed, err = r.node.Reconfigure(chain.Config{Epoch: epoch, Chain: members})
	if err != nil || !changed {
		if err != nil {
			err = r.chainErrorLocked(err)
		}
		r.mu.Unlock()
		return false, err
	}
	r.store.SetConfig(epoch, ids)
	r.stepEarlyLocked()
	r.reconfiguredLocked()
	if wasFenced && !r.node.Fenced() {
		r.logger().Info("fence lifted", "epoch", epoch, "role", r.node.Role())
	}
	// Abandoned writes of a former head are answered now, so their
	// clients retry at the new head instead of waiting out their RPC
	// timeout (the new head deduplicates by request id); a joiner starts
	// its catch-up.
	r.processReadyLocked()
	r.mu.Unlock()
	return true, nil
}

// Chain receives a peer's messages and dispatches each to its replica.
func (v *service) Chain(st api.Chunkserver_ChainServer) error {
	// With TLS, a message is taken only from the server it names as its
	// sender: the caller's certificate must be the one the master's
	// address book binds to that id (a peer not in it yet is heard once
	// it is: the sender re-sends on its ticks).
	_, name, checked := auth.PeerIdentity(st.Context())
	checked = checked && v.s.cfg.TLS != nil
	for {
		in, err := st.Recv()
		if err != nil {
			return nil // the peer closed or the stream broke; it reconnects
		}
		if checked && !v.s.peers.sentBy(chain.NodeID(in.GetFrom()), name) {
			v.s.log.Debug("chain message from a certificate not bound to its sender", "from", in.GetFrom(), "cert", name)
			continue
		}
		v.s.dispatch(in)
	}
}

// dispatch steps one peer message into its replica's node.
func (s *Server) dispatch(in *api.ChainMessage) {
	h, m, err := messageFromAPI(s.id, in)
	if err != nil {
		s.log.Warn("dropping chain message", "err", err)
		return
	}
	r := s.acquire(h)
	if r == nil && m.Type == chain.MsgUpdate && in.GetCreate() != nil {
		// A new chunk's first update: create the replica (create.go).
		r = s.createForUpdate(h, m, in.GetCreate())
	}
	if r == nil {
		s.log.Debug("chain message for unknown replica", "handle", uint64(h), "from", uint64(m.From))
		return
	}
	defer r.release()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped {
		return
	}
	if m.Type == chain.MsgUpdate && !r.admitRelay(m.Update) {
		r.logger().Debug("chain update dropped: the chain memory is full", "seq", m.Update.Seq, "bytes", len(m.Update.Data))
		return
	}
	if err := r.node.Step(m); err != nil {
		if r.holdEarlyLocked(m, err) {
			r.logger().Debug("chain message held for its epoch", "from", uint64(m.From), "epoch", m.Epoch)
		} else if errors.Is(err, chain.ErrStaleEpoch) || errors.Is(err, chain.ErrNotMember) || errors.Is(err, chain.ErrFenced) {
			r.logger().Debug("chain message dropped", "from", uint64(m.From), "epoch", m.Epoch, "err", err)
		} else {
			r.logger().Warn("chain message rejected", "from", uint64(m.From), "err", err)
		}
	}
	r.processReadyLocked()
}
