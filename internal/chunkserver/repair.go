package chunkserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/rpcerr"
)

const (
	// fetchPiece is the most bytes one FetchResponse carries.
	fetchPiece = 1 << 20
	// maxFetches bounds the Fetch streams a server serves at once (each
	// holds a piece).
	maxFetches = 32
	// fetchFinalMax: a Fetch finishes under the replica lock once what
	// changed since its last pass is at most this many bytes.
	fetchFinalMax = 4 << 20
	// fetchRounds bounds the unlocked passes of a Fetch before the final one.
	fetchRounds = 3
	// fetchEpochWait is how long a Fetch with chain_epoch waits for the
	// source's own Reconfigure to land.
	fetchEpochWait = 2 * time.Second
)

// parseChain converts a wire chain.
func parseChain(refs []*api.ServerRef) ([]chain.NodeID, []uint64, error) {
	members := make([]chain.NodeID, 0, len(refs))
	ids := make([]uint64, 0, len(refs))
	for _, ref := range refs {
		if ref.GetId() == 0 {
			return nil, nil, errInvalid("chain member with id 0")
		}
		members = append(members, chain.NodeID(ref.GetId()))
		ids = append(ids, ref.GetId())
	}
	return members, ids, nil
}

// Reconfigure installs a new chain on a replica, durably, before answering.
func (v *service) Reconfigure(ctx context.Context, req *api.ReconfigureRequest) (*api.ReconfigureResponse, error) {
	changed, resp, err := v.s.reconfigureReq(req)
	if err != nil {
		return nil, err
	}
	if changed {
		if err := v.s.store.Sync(); err != nil {
			return nil, storeError(fmt.Errorf("sync config: %w", err))
		}
		v.s.log.Info("replica reconfigured", "handle", req.GetHandle(), "epoch", req.GetEpoch())
	}
	return resp, nil
}

// maxReconfigureBatch bounds the items of one ReconfigureBatch.
const maxReconfigureBatch = 4096

// ReconfigureBatch does each item as Reconfigure would, then one sync of
// the store for all that changed, before it answers.
func (v *service) ReconfigureBatch(ctx context.Context, req *api.ReconfigureBatchRequest) (*api.ReconfigureBatchResponse, error) {
	items := req.GetItems()
	if len(items) > maxReconfigureBatch {
		return nil, errInvalid("%d items in one ReconfigureBatch, at most %d", len(items), maxReconfigureBatch)
	}
	out := &api.ReconfigureBatchResponse{Results: make([]*api.ReconfigureResult, len(items))}
	changed := 0
	for i, it := range items {
		ch, resp, err := v.s.reconfigureReq(it)
		res := &api.ReconfigureResult{AppliedSeq: resp.GetAppliedSeq()}
		if err != nil {
			res.Code, res.Message = rpcerr.Code(err), rpcerr.Message(err)
			if res.Code == api.ErrorCode_ERROR_CODE_UNSPECIFIED {
				res.Code = api.ErrorCode_UNAVAILABLE
			}
		} else if ch {
			changed++
		}
		out.Results[i] = res
	}
	if changed > 0 {
		if err := v.s.store.Sync(); err != nil {
			return nil, storeError(fmt.Errorf("sync config: %w", err))
		}
		v.s.log.Info("replicas reconfigured", "count", changed, "of", len(items))
	}
	return out, nil
}

// reconfigureReq carries out one Reconfigure without the store's sync,
// which the caller owes when changed.
func (s *Server) reconfigureReq(req *api.ReconfigureRequest) (changed bool, _ *api.ReconfigureResponse, _ error) {
	h := chunkstore.Handle(req.GetHandle())
	members, ids, err := parseChain(req.GetChain())
	if err != nil {
		return false, nil, err
	}
	for _, ref := range req.GetChain() {
		s.peers.setAddr(chain.NodeID(ref.GetId()), ref.GetAddr())
	}
	r := s.acquire(h)
	if r == nil {
		s.mu.Lock()
		if s.neverHeldLocked(h) && req.GetEpoch() > s.absentFloor[h] {
			s.absentFloor[h] = req.GetEpoch()
		}
		s.mu.Unlock()
		return false, nil, errNotFound(h)
	}
	defer r.release()
	if changed, err = s.reconfigureNoSync(r, req.GetEpoch(), members, ids); err != nil {
		return false, nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return changed, &api.ReconfigureResponse{AppliedSeq: r.node.Status().Persisted}, nil
}

// startCatchUpLocked starts the catch-up goroutine of r unless it runs.
func (s *Server) startCatchUpLocked(r *replica) {
	if r.catchUpRunning || r.dropped || s.ctx.Err() != nil {
		return
	}
	r.catchUpRunning = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.catchUp(r)
	}()
}

// catchUp fetches the predecessor's state since what r applied and
// installs it, as long as the node names a catch-up target.
func (s *Server) catchUp(r *replica) {
	backoff := backoffMin
	defer func() {
		r.mu.Lock()
		r.catchUpRunning = false
		r.mu.Unlock()
	}()
	for s.ctx.Err() == nil {
		r.mu.Lock()
		target, ok := r.node.CatchUpTarget()
		if r.dropped || !ok {
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		req := &api.FetchRequest{Handle: uint64(r.handle), SinceSeq: target.SinceSeq, SinceEpoch: target.SinceEpoch, ChainEpoch: target.Epoch}

		var pieces []*api.FetchResponse
		fin, err := s.fetch(s.ctx, s.peers.addr(target.From), req, func(m *api.FetchResponse) error {
			pieces = append(pieces, m)
			return nil
		})
		if err != nil {
			r.logger().Debug("catch-up fetch", "from", uint64(target.From), "err", err)
			if !clock.Sleep(s.ctx, s.clk, backoff) {
				return
			}
			backoff = min(2*backoff, backoffMax)
			continue
		}
		r.mu.Lock()
		if r.dropped {
			r.mu.Unlock()
			return
		}
		seq, epoch := fin.GetAppliedSeq(), fin.GetAppliedEpoch()
		switch r.node.CheckCatchUp(target, seq) {
		case chain.CatchUpRetry:
			r.mu.Unlock()
			continue
		case chain.CatchUpInstall:
			reqs := fromAPIRequests(fin.GetRequests())
			if err := r.installLocked(pieces, epoch, seq, r.installedRequests(reqs, seq, false), false); err != nil {
				r.failLocked(err)
				r.mu.Unlock()
				return
			}
			r.node.InstallCatchUp(epoch, seq, fromAPIRanges(fin.GetAhead()))
			r.node.RememberRequests(reqs)
			r.persistedLocked()
			r.processReadyLocked()
			r.logger().Info("caught up", "from", uint64(target.From), "seq", seq, "full", fin.GetFull())
		}
		r.mu.Unlock()
	}
}

// installLocked writes fetched pieces, records (epoch, seq) as applied in
// the store with the source's request ids reqs (added to the replica's,
// or replacing them), and makes it durable. The caller then tells the
// node.
func (r *replica) installLocked(pieces []*api.FetchResponse, epoch, seq uint64, reqs []chunkstore.Request, replace bool) error {
	for _, m := range pieces {
		if err := writePiece(r.store, m); err != nil {
			return err
		}
	}
	if replace {
		r.store.ReplaceRequestsAt(epoch, seq, reqs)
	} else {
		r.store.SetAppliedAt(epoch, seq, reqs...)
	}
	return r.store.Sync()
}

func writePiece(st *chunkstore.Replica, m *api.FetchResponse) error {
	if bad := m.GetBadLength(); bad > 0 {
		return st.Invalidate(m.GetOffset(), bad)
	}
	if z := m.GetZeroLength(); z > 0 {
		return st.Zero(m.GetOffset(), z)
	}
	if len(m.GetData()) > 0 {
		return st.WriteAt(m.GetData(), m.GetOffset())
	}
	return nil
}

// fetchConn returns a cached connection for Fetch to addr.
func (s *Server) fetchConn(addr string) (*grpc.ClientConn, error) {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	if c := s.fetchConns[addr]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient(addr, s.dialOpts()...)
	if err != nil {
		return nil, err
	}
	s.fetchConns[addr] = c
	return c, nil
}

// fetch runs one Fetch against addr, handing every data message to sink,
// and returns the final (done) message.
func (s *Server) fetch(ctx context.Context, addr string, req *api.FetchRequest, sink func(*api.FetchResponse) error) (*api.FetchResponse, error) {
	if addr == "" {
		return nil, errUnavailable("no address for the source")
	}
	c, err := s.fetchConn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := api.NewChunkserverClient(c).Fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return nil, err
		}
		if m.GetDone() {
			return m, nil
		}
		if err := sink(m); err != nil {
			return nil, err
		}
	}
}

// pacer limits a byte stream to rate bytes per second (0: unlimited).
type pacer struct {
	clk   clock.Clock
	rate  int64
	start time.Time
	sent  int64
}

func (p *pacer) wait(ctx context.Context, n int64) error {
	if p.rate <= 0 {
		return nil
	}
	if p.start.IsZero() {
		p.start = p.clk.Now()
	}
	p.sent += n
	due := p.start.Add(time.Duration(float64(p.sent) / float64(p.rate) * float64(time.Second)))
	if !clock.Sleep(ctx, p.clk, clock.Until(p.clk, due)) {
		return ctx.Err()
	}
	return nil
}

// Fetch streams a replica's bytes: a delta since (since_epoch, since_seq)
// when the update log can tell, else the whole chunk. Passes run without
// the replica lock; the last one, under it, re-sends what changed
// meanwhile, so the result is consistent at the final (epoch, seq).
func (v *service) Fetch(req *api.FetchRequest, st api.Chunkserver_FetchServer) error {
	s := v.s
	ctx := st.Context()
	// Each stream served holds a piece's buffer: at most maxFetches at
	// once, the others wait their turn (a copy is never urgent to the
	// millisecond, and the fetcher's own deadline still applies).
	if err := s.fetches.Acquire(ctx, 1); err != nil {
		return ctxError(ctx)
	}
	defer s.fetches.Release(1)
	h := chunkstore.Handle(req.GetHandle())
	r := s.acquire(h)
	if r == nil {
		return errNotFound(h)
	}
	defer r.release()
	if want := req.GetChainEpoch(); want > 0 {
		// Wait for this replica's own Reconfigure to the fetcher's epoch
		// (the master sends them in parallel).
		deadline := s.clk.NewTimer(fetchEpochWait)
		defer deadline.Stop()
		for {
			r.mu.Lock()
			cur, changed := r.node.Config().Epoch, r.epochWaitLocked()
			r.mu.Unlock()
			if cur >= want {
				break
			}
			select {
			case <-changed:
			case <-deadline.C():
				return rpcerr.New(api.ErrorCode_STALE_EPOCH, "chunk %d: at epoch %d, fetch wants %d", h, cur, want)
			case <-ctx.Done():
				return ctxError(ctx)
			}
		}
	}
	p := &pacer{clk: s.clk, rate: req.GetMaxBytesPerSec()}
	send := func(m *api.FetchResponse) error {
		if err := p.wait(ctx, int64(len(m.GetData()))); err != nil {
			return ctxError(ctx)
		}
		return st.Send(m)
	}

	r.mu.Lock()
	if err := r.usableLocked(); err != nil {
		r.mu.Unlock()
		return err
	}
	extra := make([]chain.Range, 0, len(req.GetExtra()))
	for _, e := range req.GetExtra() {
		off, n := e.GetOffset(), e.GetLength()
		if off < 0 || n <= 0 || n > r.chunkSize-off {
			r.mu.Unlock()
			return errInvalid("fetch range [%d, +%d) outside chunk %d of %d bytes", off, n, h, r.chunkSize)
		}
		extra = append(extra, chain.Range{Off: off, Len: n})
	}
	if req.GetRangesOnly() {
		// Small (blocks to restore): one pass under the lock, consistent
		// at the replica's (epoch, seq).
		return r.finishLocked(chain.MergeRanges(extra), false, send)
	}
	ranges, delta := r.node.Since(req.GetSinceEpoch(), req.GetSinceSeq())
	switch {
	case delta:
		ranges = chain.MergeRanges(append(ranges, extra...))
	default:
		ranges = []chain.Range{{Off: 0, Len: r.chunkSize}}
	}
	at := r.node.Status()
	pE, pS := at.AppliedEpoch, at.Applied
	r.mu.Unlock()
	for round := 0; ; round++ {
		if err := r.streamRanges(ranges, false, send); err != nil {
			return err
		}
		r.mu.Lock()
		if err := r.usableLocked(); err != nil {
			r.mu.Unlock()
			return err
		}
		var ok bool
		if at := r.node.Status(); at.Applied == pS && at.AppliedEpoch == pE {
			ranges, ok = nil, true
		} else {
			ranges, ok = r.node.Since(pE, pS)
		}
		if !ok {
			ranges = []chain.Range{{Off: 0, Len: r.chunkSize}} // the log overflowed meanwhile
		}
		if round+1 >= fetchRounds || chain.TotalLen(ranges) <= fetchFinalMax {
			return r.finishLocked(ranges, !delta, send)
		}
		at = r.node.Status()
		pE, pS = at.AppliedEpoch, at.Applied
		r.mu.Unlock()
	}
}

// finishLocked reads ranges under the replica lock (held by the caller,
// released here), so that they and the done message that ends the Fetch
// are consistent at one (epoch, seq), then sends them.
func (r *replica) finishLocked(ranges []chain.Range, full bool, send func(*api.FetchResponse) error) error {
	var msgs []*api.FetchResponse
	err := r.streamRanges(ranges, true, func(m *api.FetchResponse) error {
		msgs = append(msgs, m)
		return nil
	})
	st := r.node.Status()
	done := &api.FetchResponse{Done: true, Full: full, AppliedSeq: st.Applied, AppliedEpoch: st.AppliedEpoch, ChunkLength: r.chunkSize,
		Ahead: toAPIRanges(r.node.Ahead()), Requests: toAPIRequests(r.node.Requests())}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	for _, m := range append(msgs, done) {
		if err := send(m); err != nil {
			return err
		}
	}
	return nil
}

// usableLocked is nil when the replica may serve its bytes.
func (r *replica) usableLocked() error {
	switch {
	case r.dropped:
		return errNotFound(r.handle)
	case r.failed != nil:
		return storeError(r.failed)
	}
	return nil
}

// streamRanges reads ranges in pieces and hands each to send; all-zero
// pieces go as zero_length. locked says whether r.mu is held. A checksum
// mismatch fails the replica (and reports it).
func (r *replica) streamRanges(ranges []chain.Range, locked bool, send func(*api.FetchResponse) error) error {
	buf := make([]byte, fetchPiece)
	for _, rg := range ranges {
		for off := rg.Off; off < rg.End(); {
			// Pieces end at multiples of fetchPiece, so a whole block in a
			// range is written whole (a bad block is only healed whole).
			n := min(fetchPiece-off%fetchPiece, rg.End()-off, r.chunkSize-off)
			if n <= 0 {
				break
			}
			b := buf[:n]
			if _, err := r.store.ReadAt(b, off); err != nil {
				if !errors.Is(err, chunkstore.ErrCorrupt) {
					return storeError(err)
				}
				if !locked {
					r.mu.Lock()
				}
				r.corruptLocked(err)
				if !locked {
					r.mu.Unlock()
				}
				// Block by block: the good ones go as data, the bad ones
				// as markers, so a copy of a chunk with a lost block ends
				// with the same block lost, not with no copy at all.
				if err := r.streamBlocks(off, n, b, send); err != nil {
					return err
				}
				off += n
				continue
			}
			if err := send(piece(off, b)); err != nil {
				return err
			}
			off += n
		}
	}
	return nil
}

func toAPIRanges(rs []chain.Range) []*api.ByteRange {
	out := make([]*api.ByteRange, 0, len(rs))
	for _, r := range rs {
		out = append(out, &api.ByteRange{Offset: r.Off, Length: r.Len})
	}
	return out
}

// fromAPIRanges converts ranges from a peer, dropping malformed ones
// (they are only ever re-sent, never trusted for bounds).
func fromAPIRanges(rs []*api.ByteRange) []chain.Range {
	out := make([]chain.Range, 0, len(rs))
	for _, r := range rs {
		if r.GetOffset() >= 0 && r.GetLength() > 0 && r.GetLength() <= maxChunkSize && r.GetOffset() <= maxChunkSize {
			out = append(out, chain.Range{Off: r.GetOffset(), Len: r.GetLength()})
		}
	}
	return chain.MergeRanges(out)
}

func toAPIRequests(rs []chain.Remembered) []*api.RequestMemo {
	out := make([]*api.RequestMemo, 0, len(rs))
	for _, r := range rs {
		out = append(out, &api.RequestMemo{ClientId: r.Req.Client, RequestId: r.Req.Seq, Seq: r.Seq, Offset: r.Offset})
	}
	return out
}

// maxRequestMemos bounds the request ids taken from a peer's done
// message (a node remembers 4,096).
const maxRequestMemos = 1 << 13

// fromAPIRequests converts request ids from a peer, dropping malformed
// ones and any beyond maxRequestMemos (the node keeps only those at or
// below what it holds).
func fromAPIRequests(rs []*api.RequestMemo) []chain.Remembered {
	out := make([]chain.Remembered, 0, min(len(rs), maxRequestMemos))
	for _, r := range rs[:min(len(rs), maxRequestMemos)] {
		if r.GetSeq() > 0 && r.GetOffset() >= 0 && r.GetOffset() <= maxChunkSize && (r.GetClientId() != 0 || r.GetRequestId() != 0) {
			out = append(out, chain.Remembered{Req: chain.RequestID{Client: r.GetClientId(), Seq: r.GetRequestId()}, Seq: r.GetSeq(), Offset: r.GetOffset()})
		}
	}
	return out
}

// piece is the FetchResponse carrying b at off.
func piece(off int64, b []byte) *api.FetchResponse {
	m := &api.FetchResponse{Offset: off}
	if isZeros(b) {
		m.ZeroLength = int64(len(b))
	} else {
		m.Data = bytes.Clone(b)
	}
	return m
}

// streamBlocks sends [off, off+n) (within buf's room) one checksum block
// at a time; a block that does not verify goes as a bad marker.
func (r *replica) streamBlocks(off, n int64, buf []byte, send func(*api.FetchResponse) error) error {
	for end := off + n; off < end; {
		bn := min(chunkstore.BlockSize-off%chunkstore.BlockSize, end-off)
		b := buf[:bn]
		var m *api.FetchResponse
		_, err := r.store.ReadAt(b, off)
		switch {
		case errors.Is(err, chunkstore.ErrCorrupt):
			m = &api.FetchResponse{Offset: off, BadLength: bn}
		case err != nil:
			return storeError(err)
		default:
			m = piece(off, b)
		}
		if err := send(m); err != nil {
			return err
		}
		off += bn
	}
	return nil
}

func isZeros(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Replicate copies a chunk from the source before this server joins its
// chain: a delta from its own durable (epoch, seq) when it holds a sound
// replica, else a full copy.
func (v *service) Replicate(ctx context.Context, req *api.ReplicateRequest) (*api.ReplicateResponse, error) {
	s := v.s
	h := chunkstore.Handle(req.GetHandle())
	size := req.GetChunkSize()
	if size <= 0 || size > maxChunkSize {
		return nil, errInvalid("chunk size %d", size)
	}
	members, ids, err := parseChain(req.GetChain())
	if err != nil {
		return nil, err
	}
	for _, id := range members {
		if id == s.id {
			return nil, errInvalid("server %d is already in the chain of chunk %d", s.id, h)
		}
	}
	src := req.GetSource()
	if src.GetId() == 0 || src.GetAddr() == "" {
		return nil, errInvalid("no source")
	}
	for _, ref := range req.GetChain() {
		s.peers.setAddr(chain.NodeID(ref.GetId()), ref.GetAddr())
	}
	cfg := chain.Config{Epoch: req.GetEpoch(), Chain: members}

	r, since, sinceEpoch, extra, err := s.replicateBase(h, size, cfg, ids)
	if err != nil {
		return nil, err
	}
	defer r.release()
	var copied int64
	freq := &api.FetchRequest{Handle: uint64(h), SinceSeq: since, SinceEpoch: sinceEpoch,
		MaxBytesPerSec: req.GetMaxBytesPerSec(), Extra: toAPIRanges(extra)}
	fin, err := s.fetch(ctx, src.GetAddr(), freq, func(m *api.FetchResponse) error {
		copied += int64(len(m.GetData()))
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := r.usableLocked(); err != nil {
			return err
		}
		return writePiece(r.store, m)
	})
	if err != nil {
		if rpcerr.Code(err) == api.ErrorCode_ERROR_CODE_UNSPECIFIED {
			if c := storeErrCode(err); c != api.ErrorCode_UNAVAILABLE {
				return nil, rpcerr.New(c, "replicate chunk %d: %v", h, err)
			}
			return nil, errUnavailable(fmt.Sprintf("replicate chunk %d: %v", h, err))
		}
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usableLocked(); err != nil {
		return nil, err
	}
	seq, epoch := fin.GetAppliedSeq(), fin.GetAppliedEpoch()
	// The replica now holds the source's history up to seq exactly; a
	// returning replica's own later (uncommitted) updates are overwritten,
	// and so are its request ids: the source's replace them.
	reqs := fromAPIRequests(fin.GetRequests())
	if err := r.installLocked(nil, epoch, seq, r.installedRequests(reqs, seq, true), true); err != nil {
		r.failLocked(err)
		return nil, storeError(err)
	}
	r.node.InstallCopy(epoch, seq, fromAPIRanges(fin.GetAhead()))
	r.node.RememberRequests(reqs)
	r.persistedLocked()
	r.processReadyLocked()
	s.log.Info("replica copied", "handle", uint64(h), "seq", seq, "epoch", epoch, "bytes", copied, "full", fin.GetFull())
	return &api.ReplicateResponse{AppliedSeq: seq, AppliedEpoch: epoch, BytesCopied: copied, Full: fin.GetFull()}, nil
}

// replicateBase prepares the local replica of h for a copy: an existing
// sound one is taken out of service (its node leaves every chain) and is
// the delta base; a failed or corrupt one is deleted; a missing one is
// created empty (full copy).
func (s *Server) replicateBase(h chunkstore.Handle, size int64, cfg chain.Config, ids []uint64) (*replica, uint64, uint64, []chain.Range, error) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if r := s.acquire(h); r != nil {
		r.mu.Lock()
		bad := r.failed != nil || r.dropped || r.chunkSize != size
		var extra []chain.Range
		if !bad {
			// Out of service: not a member, no reads, no steps.
			r.node.Resync(cfg)
			r.processReadyLocked()
			r.reconfiguredLocked()
			r.store.SetConfig(cfg.Epoch, ids)
		}
		st := r.node.Status()
		since, sinceEpoch := st.Applied, st.AppliedEpoch
		r.mu.Unlock()
		if !bad {
			if err := r.store.Sync(); err != nil {
				bad = true
			} else if err := r.store.Verify(); err != nil && !errors.Is(err, chunkstore.ErrCorrupt) {
				r.logger().Warn("replica cannot be verified, full copy", "err", err)
				bad = true
			}
			// Re-sent besides the delta: blocks that do not verify, and
			// blocks written after the last sync before a restart (their
			// bytes are not what the replica's history says).
			extra = blockRanges(r.store.BadBlocks(), size)
			r.mu.Lock()
			extra = chain.MergeRanges(append(extra, r.node.Ahead()...))
			r.mu.Unlock()
		}
		if !bad {
			return r, since, sinceEpoch, extra, nil
		}
		r.release()
		s.deleteReplicaLocked(h)
	}
	r, err := s.addReplica(chunkstore.Meta{Handle: h, Epoch: cfg.Epoch, ChunkSize: size, Chain: ids}, false)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	return r, 0, 0, nil, nil
}

// restorePieces writes the fetched pieces that hold whole blocks still in
// todo and still bad here (a write may have healed one meanwhile), under
// the replica lock after check, and adds them to the ranges every delta
// from this replica re-sends. It returns the blocks restored.
func (r *replica) restorePieces(pieces []*api.FetchResponse, todo map[int64]bool, check func() error) ([]int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := check(); err != nil {
		return nil, err
	}
	bad := r.store.BadBlocks()
	var restored []int64
	for _, m := range pieces {
		n := int64(len(m.GetData())) + m.GetZeroLength()
		first, last := m.GetOffset()/chunkstore.BlockSize, (m.GetOffset()+n-1)/chunkstore.BlockSize
		if m.GetBadLength() > 0 || n == 0 || m.GetOffset()%chunkstore.BlockSize != 0 ||
			((m.GetOffset()+n)%chunkstore.BlockSize != 0 && m.GetOffset()+n != r.chunkSize) {
			continue // lost at the source too, or not whole blocks
		}
		wanted := true
		for b := first; b <= last; b++ {
			wanted = wanted && todo[b] && slices.Contains(bad, b)
		}
		if !wanted {
			continue
		}
		if err := writePiece(r.store, m); err != nil {
			return restored, storeError(err)
		}
		r.node.AddAhead(chain.Range{Off: m.GetOffset(), Len: n})
		for b := first; b <= last; b++ {
			restored = append(restored, b)
		}
	}
	return restored, nil
}

// damagedRanges converts bad blocks into the node's damaged ranges.
func damagedRanges(bad []int64, size int64) []chain.Range {
	if len(bad) == 0 {
		return nil
	}
	// One range per block (not merged): a write covering one block whole
	// heals it, whatever its neighbours.
	out := make([]chain.Range, 0, len(bad))
	for _, b := range bad {
		if off := b * chunkstore.BlockSize; off < size {
			out = append(out, chain.Range{Off: off, Len: min(int64(chunkstore.BlockSize), size-off)})
		}
	}
	return out
}

// RestoreBlocks rewrites the replica's bad blocks, whole, from other
// servers' replicas where they verify (see api.Chunkserver). Only a sole
// member restores: in a longer chain a local rewrite would make its
// replicas differ, and a bad member there leaves the chain and comes back
// by delta resync instead. A restored block's bytes are those of the
// source's durable state, which holds every acknowledged write (each was
// durable on every member of the chain before its ack); they are added to
// the blocks every delta from this replica re-sends.
func (v *service) RestoreBlocks(ctx context.Context, req *api.RestoreBlocksRequest) (*api.RestoreBlocksResponse, error) {
	s := v.s
	h := chunkstore.Handle(req.GetHandle())
	r := s.acquire(h)
	if r == nil {
		return nil, errNotFound(h)
	}
	defer r.release()
	check := func() error {
		switch {
		case r.dropped:
			return errNotFound(h)
		}
		if err := r.node.AdmitRestore(req.GetEpoch()); err != nil {
			return r.chainErrorLocked(err)
		}
		return nil
	}
	r.mu.Lock()
	err := check()
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	nb := (r.chunkSize + chunkstore.BlockSize - 1) / chunkstore.BlockSize
	todo := map[int64]bool{}
	for _, b := range req.GetBlocks() {
		if b < 0 || b >= nb {
			return nil, errInvalid("block %d outside chunk %d of %d blocks", b, h, nb)
		}
		todo[b] = true
	}
	resp := &api.RestoreBlocksResponse{}
	for _, src := range req.GetSources() {
		if src.GetId() == uint64(s.id) || src.GetAddr() == "" {
			continue
		}
		var want []int64
		for _, b := range r.store.BadBlocks() {
			if todo[b] {
				want = append(want, b)
			}
		}
		if len(want) == 0 {
			break
		}
		// One Fetch of every block still wanted; the source sends the
		// ones it has good as data and the others as bad markers.
		var pieces []*api.FetchResponse
		_, err := s.fetch(ctx, src.GetAddr(), &api.FetchRequest{Handle: uint64(h), RangesOnly: true,
			Extra: toAPIRanges(blockRanges(want, r.chunkSize))}, func(m *api.FetchResponse) error {
			pieces = append(pieces, m)
			return nil
		})
		if err != nil {
			r.logger().Debug("restore blocks: fetch", "source", src.GetId(), "err", err)
			continue
		}
		restored, err := r.restorePieces(pieces, todo, check)
		if err != nil {
			return nil, err
		}
		for _, b := range restored {
			delete(todo, b)
			resp.Restored = append(resp.Restored, b)
		}
		if len(restored) > 0 {
			r.logger().Warn("blocks restored from another replica", "blocks", restored, "source", src.GetId())
		}
	}
	if err := r.store.Sync(); err != nil {
		return nil, storeError(err)
	}
	for b := range todo {
		if slices.Contains(r.store.BadBlocks(), b) {
			resp.StillBad = append(resp.StillBad, b)
		}
	}
	slices.Sort(resp.StillBad)
	return resp, nil
}
