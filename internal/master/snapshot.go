package master

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
)

// Snapshots and clones (meta/snapshot.go has the model). The leader's
// part: (1) a snapshot or clone commits in one Raft entry, which moves
// every chunk that becomes shared to a new epoch; (2) before it answers,
// the leader tells those chunks' members (fence), so that a write signed
// for an old epoch is refused from then on: a write acknowledged before
// the answer is in the snapshot, one begun after it is not; (3) a write
// to a shared chunk asks AllocateChunk for a chunk of its own, which
// forks it: ForkChunk commits a new handle, each member clones its
// replica locally (Chunkserver.CloneReplica, no data moves), and
// ForkDone makes the new chunk stand alone. A fork left half done by a
// leader change is finished by the next leader's repair loop.

// chunkBytes is one replica's worth of chunk ch's data, as its members
// last reported it (ev: server -> handle -> evidence).
func chunkBytes(ev map[uint64]map[uint64]decide.Evidence, ch meta.Chunk) int64 {
	var n int64
	for _, id := range ch.Chain {
		if e, ok := ev[id][ch.Handle]; ok {
			n = max(n, e.UsedBytes)
		}
	}
	return n
}

// evidence is every server's last report, for chunkBytes.
func (m *Master) evidence() map[uint64]map[uint64]decide.Evidence {
	m.soft.mu.Lock()
	defer m.soft.mu.Unlock()
	out := make(map[uint64]map[uint64]decide.Evidence, len(m.soft.servers))
	for id, sv := range m.soft.servers {
		out[id] = maps.Clone(sv.evidence)
	}
	return out
}

// fenceParallel bounds the Reconfigure pushes of one fence in flight.
const fenceParallel = 64

// fenceRetry is how long fence waits before it pushes again to members
// that missed a push.
const fenceRetry = 100 * time.Millisecond

// push is a Reconfigure a fence owes a member.
type push struct {
	req *api.ReconfigureRequest
	to  *api.ServerRef
}

// fence tells every member of each chunk in refs its epoch there, and
// returns once each member has heard it or is dead (its lease ran out,
// so it admits nothing until a heartbeat has given it the epoch). Every
// member, not one: a head that has not heard it may still admit a write
// at the old epoch, which its successors would apply and, once they move
// to the new epoch, re-send and commit there (chain repair keeps what a
// predecessor applied), after the caller answered. A chunk gone from the
// map is fenced with the chain and epoch in refs. It fails only when ctx
// ends first.
func (m *Master) fence(ctx context.Context, refs []meta.ChunkRef) error {
	if len(refs) == 0 {
		return nil
	}
	var pending []push
	m.fsm.view(func(st *meta.State) {
		for _, r := range refs {
			req := &api.ReconfigureRequest{Handle: r.Handle, Epoch: r.Epoch, Chain: serverRefs(st, r.Chain)}
			if ch, ok := st.Chunk(r.Handle); ok {
				if ch.Epoch > r.Epoch {
					continue // moved on since: that change fenced it
				}
				req.ChunkSize = ch.ChunkSize
			}
			for _, to := range req.Chain {
				pending = append(pending, push{req, to})
			}
		}
	})
	for attempt := 0; ; attempt++ {
		var missed []push
		var mu sync.Mutex
		// heard: NOT_FOUND: the member holds no replica (no write ever
		// reached it), so none can land there either; STALE_EPOCH: it is
		// past this epoch already.
		heard := func(p push, code api.ErrorCode, err error) {
			if err == nil || code == api.ErrorCode_NOT_FOUND || code == api.ErrorCode_STALE_EPOCH {
				return
			}
			mu.Lock()
			missed = append(missed, p)
			mu.Unlock()
			m.log.Debug("master: fence push", "handle", p.req.Handle, "server", p.to.Id, "epoch", p.req.Epoch, "err", err)
		}
		// One ReconfigureBatch per server and fenceBatch items (one sync
		// there for all), up to fenceParallel calls at once.
		byServer := map[string][]push{}
		var addrs []string
		for _, p := range pending {
			if _, ok := byServer[p.to.Addr]; !ok {
				addrs = append(addrs, p.to.Addr)
			}
			byServer[p.to.Addr] = append(byServer[p.to.Addr], p)
		}
		sem := make(chan struct{}, fenceParallel)
		var wg sync.WaitGroup
		for _, addr := range addrs {
			for batch := range slices.Chunk(byServer[addr], fenceBatch) {
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					m.pushBatch(ctx, addr, batch, heard)
				})
			}
		}
		wg.Wait()
		now := m.cfg.Clock.Now()
		pending = slices.DeleteFunc(missed, func(p push) bool { return !m.soft.alive(p.to.Id, now, m.cfg.deadAfter()) })
		if len(pending) == 0 {
			return nil
		}
		t := m.cfg.Clock.NewTimer(fenceRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			var hs []uint64
			for _, p := range pending {
				hs = append(hs, p.req.Handle)
			}
			return rpcerr.New(api.ErrorCode_UNAVAILABLE, "chunks %v: %d live members did not hear their new epoch (unreachable but not yet dead): writes on the old epoch may still land; retry", hs[:min(len(hs), 10)], len(pending))
		case <-t.C():
		}
	}
}

// fenceBatch bounds the chunks of one ReconfigureBatch of a fence.
const fenceBatch = 1024

// pushBatch has the server at addr hear each push of batch (all for
// that server) in one ReconfigureBatch, and tells heard each outcome. A
// server that does not know the call (an older version) gets one
// Reconfigure per push.
func (m *Master) pushBatch(ctx context.Context, addr string, batch []push, heard func(push, api.ErrorCode, error)) {
	cs, err := m.pool.chunkserver(addr)
	if err != nil {
		for _, p := range batch {
			heard(p, rpcerr.Code(err), err)
		}
		return
	}
	if len(batch) > 1 {
		req := &api.ReconfigureBatchRequest{Items: make([]*api.ReconfigureRequest, len(batch))}
		for i, p := range batch {
			req.Items[i] = p.req
		}
		pctx, cancel := context.WithTimeout(ctx, pushTimeout+time.Duration(len(batch))*time.Millisecond)
		resp, err := cs.ReconfigureBatch(pctx, req)
		cancel()
		if err == nil && len(resp.GetResults()) != len(batch) {
			err = fmt.Errorf("ReconfigureBatch of %d items answered %d results", len(batch), len(resp.GetResults()))
		}
		if status.Code(err) != codes.Unimplemented {
			for i, p := range batch {
				switch res := resp.GetResults(); {
				case err != nil:
					heard(p, rpcerr.Code(err), err)
				case res[i].GetCode() == api.ErrorCode_ERROR_CODE_UNSPECIFIED:
					heard(p, 0, nil)
				default:
					heard(p, res[i].GetCode(), rpcerr.New(res[i].GetCode(), "%s", res[i].GetMessage()))
				}
			}
			return
		}
		// An older chunkserver: one Reconfigure each.
	}
	for _, p := range batch {
		pctx, cancel := context.WithTimeout(ctx, pushTimeout)
		_, err := cs.Reconfigure(pctx, p.req)
		cancel()
		heard(p, rpcerr.Code(err), err)
	}
}

func (s *server) Snapshot(ctx context.Context, req *api.SnapshotRequest) (*api.SnapshotResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkNewName(req.Name); err != nil {
		return nil, err
	}
	r, err := s.proposeOnce(ctx, meta.Snapshot{Path: req.Path, Name: req.Name, Time: s.now()})
	if err != nil {
		return nil, err
	}
	if err := s.m.fenceTree(ctx, r.Info.Inode); err != nil {
		return nil, err
	}
	s.m.event("snapshot", "snapshot %s", r.Info.Path)
	return &api.SnapshotResponse{Info: fileInfo(r.Info)}, nil
}

// fenceTree fences every chunk of the tree at inode ino (a snapshot's
// or clone's root, a volume): those the snapshot or clone made shared.
// Read from the state rather than the command's result, so that a
// retried call (answered from the request record) fences too.
func (m *Master) fenceTree(ctx context.Context, ino uint64) error {
	var refs []meta.ChunkRef
	var err error
	m.fsm.view(func(st *meta.State) { refs, err = st.TreeChunks(ino) })
	if err != nil {
		return metaErr(err)
	}
	return m.fence(ctx, refs)
}

func (s *server) ListSnapshots(ctx context.Context, req *api.ListSnapshotsRequest) (*api.ListSnapshotsResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	var resp api.ListSnapshotsResponse
	var err error
	s.m.fsm.view(func(st *meta.State) {
		var l []meta.FileInfo
		if l, err = st.Snapshots(req.Path); err == nil {
			for _, fi := range l {
				resp.Snapshots = append(resp.Snapshots, fileInfo(fi))
			}
		}
	})
	if err != nil {
		return nil, metaErr(err)
	}
	return &resp, nil
}

func (s *server) RemoveSnapshot(ctx context.Context, req *api.RemoveSnapshotRequest) (*api.RemoveSnapshotResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if _, err := s.proposeOnce(ctx, meta.RemoveSnapshot{Path: req.Path, Name: req.Name, Time: s.now()}); err != nil {
		return nil, err
	}
	return &api.RemoveSnapshotResponse{}, nil
}

func (s *server) Clone(ctx context.Context, req *api.CloneRequest) (*api.CloneResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkNewPath(req.Dst); err != nil {
		return nil, err
	}
	c := meta.Clone{Src: req.Src, Dst: req.Dst, Time: s.now()}
	if u := s.m.caller(ctx); !u.Root {
		c.Owner, c.Uid, c.Gid = true, u.UID, u.GID
	}
	r, err := s.proposeOnce(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := s.m.fenceTree(ctx, r.Info.Inode); err != nil {
		return nil, err
	}
	return &api.CloneResponse{Info: fileInfo(r.Info)}, nil
}

// checkVolumeName: a new volume's name (no snapshot separator).
func checkVolumeName(name string) error {
	if err := checkNewName(name); err != nil {
		return err
	}
	if strings.Contains(name, meta.VolumeSnapshotSep) {
		return rpcerr.New(api.ErrorCode_INVALID, "volume name %q contains %q (it names a volume's snapshot)", name, meta.VolumeSnapshotSep)
	}
	return nil
}

func (v *volumeServer) SnapshotVolume(ctx context.Context, req *api.SnapshotVolumeRequest) (*api.SnapshotVolumeResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkVolumeName(req.Name); err != nil {
		return nil, err
	}
	r, err := v.s.proposeOnce(ctx, meta.SnapshotVolume{Volume: req.Volume, Name: req.Name, Time: v.s.now()})
	if err != nil {
		return nil, err
	}
	if err := v.s.m.fenceTree(ctx, r.Info.Inode); err != nil {
		return nil, err
	}
	v.s.m.event("snapshot", "volume snapshot %s", r.Info.Name)
	v.s.m.scheduleHotForks(req.Volume)
	var info *api.VolumeInfo
	v.s.m.fsm.view(func(st *meta.State) { info = volumeInfo(st, r.Info) })
	return &api.SnapshotVolumeResponse{Info: info}, nil
}

func (v *volumeServer) ListVolumeSnapshots(ctx context.Context, req *api.ListVolumeSnapshotsRequest) (*api.ListVolumeSnapshotsResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	var resp api.ListVolumeSnapshotsResponse
	var err error
	ev := v.s.m.evidence()
	v.s.m.fsm.view(func(st *meta.State) {
		var l []meta.FileInfo
		if l, err = st.VolumeSnapshots(req.Volume); err == nil {
			for _, fi := range l {
				resp.Snapshots = append(resp.Snapshots, volumeInfo(st, fi, ev))
			}
		}
	})
	if err != nil {
		return nil, metaErr(err)
	}
	return &resp, nil
}

func (v *volumeServer) RemoveVolumeSnapshot(ctx context.Context, req *api.RemoveVolumeSnapshotRequest) (*api.RemoveVolumeSnapshotResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	if _, err := v.s.proposeOnce(ctx, meta.RemoveVolumeSnapshot{Volume: req.Volume, Name: req.Name, Time: v.s.now()}); err != nil {
		return nil, err
	}
	return &api.RemoveVolumeSnapshotResponse{}, nil
}

func (v *volumeServer) CloneVolume(ctx context.Context, req *api.CloneVolumeRequest) (*api.CloneVolumeResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkVolumeName(req.Dst); err != nil {
		return nil, err
	}
	r, err := v.s.proposeOnce(ctx, meta.CloneVolume{Src: req.Src, Dst: req.Dst, Time: v.s.now()})
	if err != nil {
		return nil, err
	}
	if err := v.s.m.fenceTree(ctx, r.Info.Inode); err != nil {
		return nil, err
	}
	var info *api.VolumeInfo
	v.s.m.fsm.view(func(st *meta.State) { info = volumeInfo(st, r.Info) })
	return &api.CloneVolumeResponse{Info: info}, nil
}

func (v *volumeServer) RollbackVolume(ctx context.Context, req *api.RollbackVolumeRequest) (*api.RollbackVolumeResponse, error) {
	if err := v.s.checkLeader(); err != nil {
		return nil, err
	}
	r, err := v.s.proposeOnce(ctx, meta.RollbackVolume{Volume: req.Volume, Name: req.Name, Time: v.s.now()})
	if err != nil {
		return nil, err
	}
	// The volume's former chunks, then the snapshot's, now shared with
	// the volume.
	info, err := v.fenceBoth(ctx, r)
	if err != nil {
		return nil, err
	}
	v.s.m.event("snapshot", "volume %s rolled back to %s", req.Volume, req.Name)
	return &api.RollbackVolumeResponse{Info: info}, nil
}

// fenceBoth fences the chunks command result r moved off its volume
// (r.Fenced; empty for a retry answered from its record: heartbeats carry
// their epochs then), then every chunk of the volume it answers about
// (those it made shared), and returns that volume's info.
func (v *volumeServer) fenceBoth(ctx context.Context, r meta.Result) (*api.VolumeInfo, error) {
	if err := v.s.m.fence(ctx, r.Fenced); err != nil {
		return nil, err
	}
	if err := v.s.m.fenceTree(ctx, r.Info.Inode); err != nil {
		return nil, err
	}
	var info *api.VolumeInfo
	v.s.m.fsm.view(func(st *meta.State) { info = volumeInfo(st, r.Info) })
	return info, nil
}

// errForkBusy: a fork could not finish now (members busy or
// unreachable); the client retries.
var errForkBusy = errors.New("fork not finished")

// forkSlot gives slot (ino, index), which names a shared chunk, a chunk
// of its own (ForkChunk, then finishFork) and returns the slot's chunk.
func (s *server) forkSlot(ctx context.Context, ino uint64, index int64, ref meta.ChunkRef) (meta.ChunkRef, error) {
	for attempt := 0; ; attempt++ {
		if ref.Fork == 0 {
			t0 := s.m.cfg.Clock.Now()
			r, err := s.propose(ctx, meta.ForkChunk{Inode: ino, Index: index, Source: ref.Handle, Epoch: ref.Epoch})
			s.m.log.Debug("master: fork committed", "handle", ref.Handle, "took", s.m.cfg.Clock.Now().Sub(t0), "err", err)
			switch {
			case err == nil:
				ref.Fork = r.Chunk.Handle
			case rpcerr.Code(err) == api.ErrorCode_STALE_EPOCH && attempt < changeAttempts:
				// Another writer forked it first, or it moved on.
			default:
				return meta.ChunkRef{}, err
			}
		}
		if ref.Fork != 0 {
			if err := s.m.finishFork(ctx, ref.Fork); err != nil {
				return meta.ChunkRef{}, err
			}
		}
		var ok bool
		var err error
		s.m.fsm.view(func(st *meta.State) { ref, ok, err = st.FileChunk(ino, index) })
		if err != nil {
			return meta.ChunkRef{}, metaErr(err)
		}
		if !ok {
			return meta.ChunkRef{}, rpcerr.New(api.ErrorCode_UNAVAILABLE, "chunk %d of inode %d went while it was forked", index, ino)
		}
		if !ref.Shared {
			return ref, nil
		}
		if attempt >= changeAttempts {
			return meta.ChunkRef{}, rpcerr.New(api.ErrorCode_UNAVAILABLE, "chunk %d of inode %d: fork did not settle; retry", index, ino)
		}
	}
}

// forkMu serialises finishFork per handle (a client's AllocateChunk and
// the repair loop may both finish one).
type forkLocks struct {
	mu   sync.Mutex
	busy map[uint64]chan struct{}
}

func (f *forkLocks) lock(h uint64) func() {
	for {
		f.mu.Lock()
		if f.busy == nil {
			f.busy = map[uint64]chan struct{}{}
		}
		ch, ok := f.busy[h]
		if !ok {
			ch = make(chan struct{})
			f.busy[h] = ch
			f.mu.Unlock()
			return func() {
				f.mu.Lock()
				delete(f.busy, h)
				f.mu.Unlock()
				close(ch)
			}
		}
		f.mu.Unlock()
		<-ch
	}
}

// cloneWait bounds how long finishFork waits for a member's replica of
// the origin to settle (nothing in flight) before it gives up for now.
const cloneWait = 5 * time.Second

// finishFork makes fork h stand alone: every member of its origin's
// current chain that has caught up clones its replica of the origin
// (durably, once settled at the origin's epoch), then ForkDone commits
// them as the fork's chain. Every one, not a majority: a member left out
// may hold an update the others lack (a head's, applied but not yet
// acknowledged), which it could still commit on the origin after the
// fork took the others' state, and a write acknowledged so would be
// missing from the fork. A member that cannot clone (dead, unreachable)
// holds the fork up until the repair loop has taken it out of the
// origin's chain (a new epoch, so it commits nothing there). The members
// still catching up, which hold less, not more, hear the origin's new
// epoch, so that no reader is served the origin's old data by them.
func (m *Master) finishFork(ctx context.Context, h uint64) error {
	unlock := m.forks.lock(h)
	defer unlock()
	var fork, origin meta.Chunk
	var ok bool
	var req *api.CloneReplicaRequest
	var members []*api.ServerRef
	m.fsm.view(func(st *meta.State) {
		if fork, ok = st.Chunk(h); !ok || fork.Origin == 0 {
			ok = false
			return
		}
		if origin, ok = st.Chunk(fork.Origin); !ok {
			return
		}
		var ids []uint64
		for _, id := range origin.Chain {
			if !origin.IsSyncing(id) {
				ids = append(ids, id)
			}
		}
		members = serverRefs(st, ids)
		req = &api.CloneReplicaRequest{Source: origin.Handle, SourceEpoch: origin.Epoch, SourceChain: serverRefs(st, origin.Chain),
			Handle: fork.Handle, Epoch: fork.Epoch, Chain: members, ChunkSize: fork.ChunkSize}
	})
	if !ok {
		return nil // done already, or gone
	}
	start := m.cfg.Clock.Now()
	errs := m.cloneAll(ctx, members, req)
	cloned := m.cfg.Clock.Now()
	chain := make([]uint64, 0, len(members))
	for _, ref := range members {
		chain = append(chain, ref.Id)
	}
	for _, ref := range req.SourceChain {
		if slices.Contains(chain, ref.Id) {
			continue
		}
		cs, err := m.pool.chunkserver(ref.Addr)
		if err == nil {
			pctx, cancel := context.WithTimeout(ctx, pushTimeout)
			_, err = cs.Reconfigure(pctx, &api.ReconfigureRequest{Handle: origin.Handle, Epoch: origin.Epoch,
				ChunkSize: origin.ChunkSize, Chain: req.SourceChain})
			cancel()
		}
		if err != nil && rpcerr.Code(err) != api.ErrorCode_NOT_FOUND && rpcerr.Code(err) != api.ErrorCode_STALE_EPOCH {
			errs = append(errs, fmt.Errorf("server %d: fence of chunk %d: %w", ref.Id, origin.Handle, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rpcerr.New(api.ErrorCode_UNAVAILABLE, "fork of chunk %d into %d: %v: %v", origin.Handle, h, errForkBusy, err)
	}
	fenced := m.cfg.Clock.Now()
	r, err := (&server{m: m}).propose(ctx, meta.ForkDone{Handle: h, Chain: chain})
	if err != nil {
		return err
	}
	done := m.cfg.Clock.Now()
	// The clones took the fork's epoch as read above; a snapshot since
	// may have moved it on (the fork shared), or ForkDone the chain: its
	// members hear it before anyone may write the fork. Unmoved, each
	// member holds it at that epoch already (CloneReplica).
	if r.Chunk.Epoch != fork.Epoch || !slices.Equal(r.Chunk.Chain, fork.Chain) {
		if err := m.fence(ctx, []meta.ChunkRef{r.Chunk}); err != nil {
			return err
		}
	}
	now := m.cfg.Clock.Now()
	m.log.Debug("master: fork done", "origin", origin.Handle, "handle", h, "chain", chain, "epoch", r.Chunk.Epoch,
		"clone", cloned.Sub(start), "origin_fence", fenced.Sub(cloned), "commit", done.Sub(fenced), "fence", now.Sub(done))
	return nil
}

// cloneAll has every member clone the same state of the origin: it
// probes them until all are settled (the origin is shared, so nothing
// new is admitted on it; what was in flight settles), then has each
// clone the state at the lowest sequence number they answered (a member
// that cloned in an earlier round answers its clone's; one whose origin
// moved on since by updates that changed no byte, the epoch starts of
// the origin's new configurations, clones its state as of that seq; one
// that cannot refuses, and the round starts again), up to cloneWait:
// the fork's members must all start at one seq. It returns each
// member's error (nil for those that cloned).
func (m *Master) cloneAll(ctx context.Context, members []*api.ServerRef, req *api.CloneReplicaRequest) []error {
	deadline := m.cfg.Clock.Now().Add(cloneWait)
	errs := make([]error, len(members))
	for {
		seqs := make([]uint64, len(members))
		each := func(f func(i int, ref *api.ServerRef) error) {
			var wg sync.WaitGroup
			for i, ref := range members {
				wg.Go(func() {
					if err := f(i, ref); err != nil {
						errs[i] = fmt.Errorf("server %d: %w", ref.Id, err)
					} else {
						errs[i] = nil
					}
				})
			}
			wg.Wait()
		}
		each(func(i int, ref *api.ServerRef) error {
			probe := proto.Clone(req).(*api.CloneReplicaRequest)
			probe.Probe = true
			resp, err := m.cloneCall(ctx, ref, probe)
			if err == nil {
				seqs[i] = resp.GetAppliedSeq()
			}
			return err
		})
		if errors.Join(errs...) == nil {
			base := slices.Min(seqs)
			each(func(i int, ref *api.ServerRef) error {
				c := proto.Clone(req).(*api.CloneReplicaRequest)
				c.AppliedSeq = base
				_, err := m.cloneCall(ctx, ref, c)
				return err
			})
			if errors.Join(errs...) == nil {
				return errs
			}
		}
		hard := false // an error waiting will not cure (a member down)
		for _, err := range errs {
			hard = hard || (err != nil && rpcerr.Code(err) != api.ErrorCode_UNAVAILABLE)
		}
		if hard || m.cfg.Clock.Now().After(deadline) {
			return errs
		}
		t := m.cfg.Clock.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			errs[0] = ctx.Err()
			return errs
		case <-t.C():
		}
	}
}

// cloneCall makes one CloneReplica call.
func (m *Master) cloneCall(ctx context.Context, ref *api.ServerRef, req *api.CloneReplicaRequest) (*api.CloneReplicaResponse, error) {
	cs, err := m.pool.chunkserver(ref.Addr)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	return cs.CloneReplica(pctx, req)
}

// finishForks finishes the forks a former leader left half done (the
// repair loop's, each tick).
func (m *Master) finishForks(ctx context.Context, pending []meta.Chunk) {
	for _, ch := range pending {
		if err := m.finishFork(ctx, ch.Handle); err != nil {
			m.log.Info("master: fork not finished", "handle", ch.Handle, "origin", ch.Origin, "err", err)
		}
	}
}
