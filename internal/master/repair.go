package master

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/console"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
)

const (
	// missingGrace is how long a chain member's inventory must lack a
	// chunk before the member is taken not to hold it (when it cannot vouch
	// that it never held one), and before the master creates the replicas
	// of a chunk no write created: far longer than the usual time from a
	// chunk's allocation to its first write, which creates them.
	missingGrace = 10 * time.Second
	// pushTimeout bounds one Reconfigure push; a member that misses it is
	// caught by its next heartbeat (HeartbeatResponse.configs).
	pushTimeout = 2 * time.Second
	// repairRetryDelay holds back a chunk whose repair failed.
	repairRetryDelay = time.Second
	// expireEvery is how often the repair loop looks for overlays whose
	// lease lapsed.
	expireEvery = 250 * time.Millisecond
	// parallelChanges bounds the chain changes one repair tick runs at once.
	parallelChanges = 32
	// changeAttempts bounds the retries of a chain change that lost a race.
	changeAttempts = 3
	// maxCaughtUpBatch bounds the members one CaughtUp command confirms
	// (about 60 bytes each in the log).
	maxCaughtUpBatch = 10000
)

// repairLoop runs on the leader until stop closes: each tick it removes
// dead members from their chains, then starts re-replications. Repairs it
// started are cancelled (ctx) and awaited when it returns.
func (m *Master) repairLoop(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	var repairs sync.WaitGroup
	defer func() {
		cancel()
		repairs.Wait()
	}()
	t := m.cfg.Clock.NewTicker(m.cfg.RepairInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C():
		case <-m.repairKick:
		}
		m.repairTick(ctx, &repairs)
	}
}

// kickRepair wakes the repair loop: a repair ended and its slot is free.
// Without it the slots refill only at the loop's period, which bounds the
// rate of short repairs (a returning replica's empty delta) to
// RepairConcurrency per RepairInterval.
func (m *Master) kickRepair() {
	select {
	case m.repairKick <- struct{}{}:
	default:
	}
}

// repairTick is one round of the repair loop.
func (m *Master) repairTick(ctx context.Context, repairs *sync.WaitGroup) {
	if err := m.ensureCapabilityKey(ctx); err != nil {
		m.log.Warn("master: capability key", "err", err)
	}
	// Overlay leases are seconds long: a look every expireEvery is
	// enough, and spares a scan of every volume each tick.
	if now := m.cfg.Clock.Now(); now.Sub(time.Unix(0, m.expiredAt.Load())) >= expireEvery && m.expiring.CompareAndSwap(false, true) {
		m.expiredAt.Store(now.UnixNano())
		repairs.Go(func() {
			defer m.expiring.Store(false)
			m.expireOverlays(ctx)
		})
	}
	now := m.cfg.Clock.Now()
	joining := m.soft.repairTargets() // before the chunks: settleMoves
	var chunks []meta.Chunk
	var servers []meta.Server
	m.fsm.view(func(st *meta.State) { chunks, servers = st.Chunks(), st.Servers() })
	// A fork not done is no chunk to repair yet: its members clone it
	// from its origin (finishFork), never copy or create it.
	var forks []meta.Chunk
	chunks = slices.DeleteFunc(chunks, func(ch meta.Chunk) bool {
		if ch.Origin != 0 {
			forks = append(forks, ch)
		}
		return ch.Origin != 0
	})
	if len(forks) > 0 && m.forksRunning.CompareAndSwap(false, true) {
		// Apart from the tick: a fork waits on members the repairs below
		// may first have to take out of its origin's chain.
		repairs.Go(func() {
			defer m.forksRunning.Store(false)
			m.finishForks(ctx, forks)
		})
	}
	if m.preForks.due(now) && m.preForks.running.CompareAndSwap(false, true) {
		repairs.Go(func() {
			defer m.preForks.running.Store(false)
			m.preForkVolumes(ctx)
		})
	}
	m.soft.settleMoves(chunks, joining)
	ids := make([]uint64, 0, len(servers))
	for _, sv := range servers {
		ids = append(ids, sv.ID)
	}
	m.expireMounts(ctx, now)
	view := m.soft.snapshotServers(ids, now, m.cfg.deadAfter())
	live, free, inv := view.live, view.free, view.inv
	m.observeLiveness(live)
	if caught := decide.PlanCaughtUp(chunks, view.evidence); len(caught) > 0 {
		caught = caught[:min(len(caught), maxCaughtUpBatch)]
		s := &server{m: m}
		if _, err := s.propose(ctx, meta.CaughtUp{Members: caught}); err != nil {
			m.log.Warn("master: record caught-up members", "count", len(caught), "err", err)
		}
		m.fsm.view(func(st *meta.State) { chunks = st.Chunks() })
		chunks = slices.DeleteFunc(chunks, func(ch meta.Chunk) bool { return ch.Origin != 0 })
	}
	m.soft.syncing(chunks, now)

	lacking := m.soft.lacking(chunks, view, now)
	lackingLong := func(id, h uint64) bool {
		since, ok := lacking[[2]uint64{id, h}]
		return ok && m.gcAllowed(id, now) && now.Sub(since) >= missingGrace
	}
	removals := decide.PlanRemovals(decide.RemovalInput{Chunks: chunks, Live: live, Evidence: view.evidence,
		Missing: lackingLong, Fresh: view.fresh})
	why, trimming := "removing dead or fenced servers from chain", false
	if len(removals) == 0 {
		// Then the surplus of chains longer than their factor (setrep).
		busy, _, _ := m.soft.repairView(now, m.cfg.RepairConcurrency)
		removals = decide.PlanTrims(decide.TrimInput{Chunks: chunks, Servers: servers, Live: live,
			Evidence: view.evidence, Busy: busy, Prefer: m.soft.moving(), DomainKey: decide.DefaultDomainKey})
		why, trimming = "trimming chain to its replication factor", true
	}
	if len(removals) > 0 {
		sem := make(chan struct{}, parallelChanges)
		var wg sync.WaitGroup
		for _, rm := range removals {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				removed := slices.DeleteFunc(slices.Clone(chainOf(chunks, rm.Handle)), func(id uint64) bool { return slices.Contains(rm.Chain, id) })
				m.log.Info("master: "+why, "handle", rm.Handle, "removed", removed, "chain", rm.Chain, "epoch", rm.Epoch+1)
				// Servers trimmed out hear of it at once (they fence
				// their replica, deleted once the chain is whole); dead
				// ones would only hold the push up.
				var tell []uint64
				if trimming {
					tell = removed
				}
				if err := m.changeChain(ctx, rm.Handle, func(ch meta.Chunk) []uint64 {
					if ch.Epoch != rm.Epoch {
						return nil // moved since planned (a fence is per epoch): re-plan next tick
					}
					return rm.Chain
				}, nil, tell); err != nil && !errors.Is(err, errChainMoved) {
					m.log.Warn("master: "+why, "handle", rm.Handle, "err", err)
				}
			})
		}
		wg.Wait()
		return // plan repairs on the new chains next tick
	}
	if creates := decide.PlanCreates(decide.CreateInput{Chunks: chunks, Live: live, Inventory: inv,
		Lacking: lackingLong, Fresh: view.fresh}); len(creates) > 0 {
		m.createReplicas(ctx, creates)
	}

	busy, bad, slots := m.soft.repairView(now, m.cfg.RepairConcurrency)
	heals, hold := decide.PlanHeals(chunks, live, view.evidence, busy)
	for h := range hold {
		busy[h] = true
	}
	for _, hp := range heals {
		if !m.soft.startRepair(hp.Handle, hp.Target) {
			continue
		}
		busy[hp.Handle] = true
		slots--
		repairs.Go(func() { m.runHeal(ctx, hp) })
	}
	if slots <= 0 {
		return
	}
	plans := decide.PlanRepairs(decide.RepairInput{Chunks: chunks, Servers: servers, Live: live, Free: free,
		Inventory: inv, Busy: busy, Bad: bad, Slots: slots, DomainKey: decide.DefaultDomainKey})
	// A drain's copies (chunks at their full count with a draining
	// member: nothing is at risk) go at the rebalance's pace, so that
	// clients keep most of the disks; real losses go at full speed.
	drainOnly := m.drainCopies(chunks, servers, plans)
	drainSlots := max(1, m.cfg.RebalanceConcurrency)
	for _, h := range m.soft.repairing() {
		if drainOnly[h] {
			drainSlots--
		}
	}
	for _, p := range plans {
		if drainOnly[p.Handle] {
			if drainSlots <= 0 {
				continue
			}
			drainSlots--
		}
		if !m.soft.startRepair(p.Handle, p.Target) {
			continue
		}
		slots--
		repairs.Go(func() { m.runRepair(ctx, p) })
	}
	if len(plans) == 0 && slots > 0 {
		m.rebalance(ctx, repairs, chunks, servers, view, busy, bad, slots)
	}
}

// drainCopies tells which of the chunks planned or being repaired are a
// drain's copies: at their full count with a draining member (nothing at
// risk). One pass over the chunks, whatever their number.
func (m *Master) drainCopies(chunks []meta.Chunk, servers []meta.Server, plans []decide.RepairPlan) map[uint64]bool {
	draining := map[uint64]bool{}
	for _, sv := range servers {
		if sv.Draining {
			draining[sv.ID] = true
		}
	}
	out := map[uint64]bool{}
	if len(draining) == 0 {
		return out
	}
	want := map[uint64]bool{}
	for _, h := range m.soft.repairing() {
		want[h] = true
	}
	for _, p := range plans {
		want[p.Handle] = true
	}
	for _, ch := range chunks {
		if want[ch.Handle] && len(ch.Chain) >= ch.Replication && slices.ContainsFunc(ch.Chain, func(id uint64) bool { return draining[id] }) {
			out[ch.Handle] = true
		}
	}
	return out
}

// rebalance starts the moves decide.PlanRebalance plans, within the
// repair slots left and RebalanceConcurrency: each is a repair onto the
// receiver (the same rate-limited copy, joining at the tail), after
// which the trim takes the giver out (TrimInput.Prefer).
func (m *Master) rebalance(ctx context.Context, repairs *sync.WaitGroup, chunks []meta.Chunk, servers []meta.Server, view serversView, busy map[uint64]bool, bad map[uint64]map[uint64]bool, slots int) {
	inFlight, _, _ := m.soft.moveStats()
	n := min(slots, m.cfg.RebalanceConcurrency-int(inFlight))
	if n <= 0 {
		return
	}
	in := m.rebalanceInput(chunks, servers, view)
	in.Busy, in.Bad, in.Max = busy, bad, n
	for _, mv := range decide.PlanRebalance(in) {
		if !m.soft.startMove(mv) {
			continue
		}
		if !m.soft.startRepair(mv.Handle, mv.To) {
			continue // settleMoves drops it
		}
		ch, _ := chunkByHandle(chunks, mv.Handle)
		m.log.Info("master: rebalancing", "handle", mv.Handle, "from", mv.From, "to", mv.To, "bytes", mv.Bytes)
		p := decide.RepairPlan{Handle: mv.Handle, Epoch: mv.Epoch, ChunkSize: ch.ChunkSize, Chain: ch.Chain, Target: mv.To}
		repairs.Go(func() { m.runRepair(ctx, p) })
	}
}

// rebalanceInput is the balance as the repair loop sees it: replica sizes
// are the largest a member reports.
func (m *Master) rebalanceInput(chunks []meta.Chunk, servers []meta.Server, view serversView) decide.RebalanceInput {
	size := make(map[uint64]int64, len(chunks))
	for _, ch := range chunks {
		for _, id := range ch.Chain {
			size[ch.Handle] = max(size[ch.Handle], view.evidence[id][ch.Handle].UsedBytes)
		}
	}
	return decide.RebalanceInput{Chunks: chunks, Servers: servers, Live: view.live, Capacity: view.capacity,
		Size: size, Moving: m.soft.moving(), DomainKey: decide.DefaultDomainKey, Tolerance: m.cfg.RebalanceTolerance}
}

func chunkByHandle(chunks []meta.Chunk, handle uint64) (meta.Chunk, bool) {
	for _, ch := range chunks {
		if ch.Handle == handle {
			return ch, true
		}
	}
	return meta.Chunk{}, false
}

// without returns chain minus the servers in drop; nil when that removes
// nothing or everything (the last copy is never dropped).
func without(chain, drop []uint64) []uint64 {
	kept := slices.DeleteFunc(slices.Clone(chain), func(id uint64) bool { return slices.Contains(drop, id) })
	if len(kept) == len(chain) || len(kept) == 0 {
		return nil
	}
	return kept
}

func chainOf(chunks []meta.Chunk, handle uint64) []uint64 {
	ch, _ := chunkByHandle(chunks, handle)
	return ch.Chain
}

// runRepair carries out one re-replication: (1) Replicate on the target,
// which copies from the tail while writes keep flowing; (2) SetChain with
// the target at the tail, epoch+1; (3) Reconfigure pushed to every member
// (the target then catches up from its predecessor by itself).
func (m *Master) runRepair(ctx context.Context, p decide.RepairPlan) {
	log := m.log.With("handle", p.Handle, "target", p.Target, "returning", p.Returning)
	var (
		bytes int64
		err   error
	)
	defer func() {
		m.soft.endRepair(p.Handle, p.Target, err, bytes, m.cfg.Clock.Now().Add(repairRetryDelay))
		m.repairEnded("re-replication", p.Handle, p.Target, bytes, err)
		m.kickRepair()
		if err != nil {
			log.Warn("master: re-replication failed", "err", err)
		}
	}()
	var req *api.ReplicateRequest
	var target api.ServerRef
	m.fsm.view(func(st *meta.State) {
		ch, ok := st.Chunk(p.Handle)
		if !ok || ch.Epoch != p.Epoch {
			return
		}
		refs := serverRefs(st, ch.Chain)
		sv, _ := st.Server(p.Target)
		target = api.ServerRef{Id: sv.ID, Addr: sv.Addr}
		req = &api.ReplicateRequest{Handle: p.Handle, Epoch: ch.Epoch, ChunkSize: ch.ChunkSize,
			Source: refs[len(refs)-1], Chain: refs, MaxBytesPerSec: m.cfg.RepairBytesPerSec}
	})
	if req == nil {
		err = errChainMoved
		return
	}
	log.Info("master: re-replicating", "epoch", p.Epoch, "source", req.Source.Id)
	cs, err := m.pool.chunkserver(target.Addr)
	if err != nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, m.replicateTimeout(req.ChunkSize))
	resp, err := cs.Replicate(rctx, req)
	cancel()
	if err != nil {
		err = fmt.Errorf("replicate on server %d: %w", p.Target, err)
		return
	}
	bytes = resp.GetBytesCopied()
	// The target joins syncing: it holds the tail's state as of the copy's
	// end, and catches up on what the tail acknowledged since once it is
	// reconfigured; until it reports so (PlanCaughtUp) it is no source.
	err = m.changeChain(ctx, p.Handle, func(ch meta.Chunk) []uint64 {
		if ch.Epoch != p.Epoch || slices.Contains(ch.Chain, p.Target) {
			return nil // the chain moved while copying: next round re-plans (cheaply, by delta)
		}
		return append(slices.Clone(ch.Chain), p.Target)
	}, []uint64{p.Target}, nil)
	if err == nil {
		log.Info("master: replica joined chain", "epoch", p.Epoch+1, "bytes", bytes, "full", resp.GetFull())
	}
}

var errChainMoved = errors.New("master: chain changed during repair")

// createReplicas sends CreateReplica to every member of each chunk (see
// decide.PlanCreates), in parallel, each bounded by pushTimeout. Failures
// are logged: the next round plans the chunk again while it qualifies.
func (m *Master) createReplicas(ctx context.Context, chunks []meta.Chunk) {
	sem := make(chan struct{}, parallelChanges)
	var wg sync.WaitGroup
	for _, ch := range chunks {
		var req *api.CreateReplicaRequest
		m.fsm.view(func(st *meta.State) {
			req = &api.CreateReplicaRequest{Handle: ch.Handle, Epoch: ch.Epoch, ChunkSize: ch.ChunkSize, Chain: serverRefs(st, ch.Chain)}
		})
		m.log.Info("master: creating the replicas of a chunk no write created", "handle", ch.Handle, "epoch", ch.Epoch, "chain", ch.Chain)
		for _, ref := range req.Chain {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				cs, err := m.pool.chunkserver(ref.Addr)
				if err == nil {
					cctx, cancel := context.WithTimeout(ctx, pushTimeout)
					_, err = cs.CreateReplica(cctx, req)
					cancel()
				}
				if err != nil {
					m.log.Warn("master: create replica", "handle", ch.Handle, "server", ref.Id, "err", err)
				}
			})
		}
	}
	wg.Wait()
}

// runHeal carries out one heal plan: RestoreBlocks on the target.
func (m *Master) runHeal(ctx context.Context, p decide.HealPlan) {
	log := m.log.With("handle", p.Handle, "target", p.Target)
	req := &api.RestoreBlocksRequest{Handle: p.Handle, Epoch: p.Epoch, Blocks: p.Blocks}
	var target string
	m.fsm.view(func(st *meta.State) {
		req.Sources = serverRefs(st, p.Sources)
		sv, _ := st.Server(p.Target)
		target = sv.Addr
	})
	var err error
	defer func() {
		m.soft.endHeal(p.Handle, err, m.cfg.Clock.Now().Add(repairRetryDelay))
		m.repairEnded("block restore", p.Handle, p.Target, 0, err)
		m.kickRepair()
	}()
	log.Warn("master: restoring blocks that verify on no chain member", "blocks", p.Blocks, "sources", p.Sources)
	cs, err := m.pool.chunkserver(target)
	if err != nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, m.replicateTimeout(int64(len(p.Blocks))*64<<10))
	resp, err := cs.RestoreBlocks(rctx, req)
	cancel()
	switch {
	case err != nil:
		err = fmt.Errorf("restore blocks on server %d: %w", p.Target, err)
		log.Warn("master: restore blocks failed", "err", err)
	case len(resp.GetStillBad()) > 0:
		err = fmt.Errorf("blocks %v verify on no replica", resp.GetStillBad())
		log.Error("master: blocks lost", "blocks", resp.GetStillBad())
	default:
		log.Info("master: blocks restored", "blocks", resp.GetRestored())
	}
}

// replicateTimeout allows a full copy at the rate limit, twice over.
func (m *Master) replicateTimeout(chunkSize int64) time.Duration {
	d := 5 * time.Minute
	if r := m.cfg.RepairBytesPerSec; r > 0 {
		d = 30*time.Second + 2*time.Duration(chunkSize/r+1)*time.Second
	}
	return d
}

// changeChain commits a new chain for handle at epoch+1, computed by next
// from the current chunk (nil: no change, errChainMoved), retrying when
// another change wins the race, then pushes Reconfigure to every member of
// the new chain and to the servers in alsoTell.
func (m *Master) changeChain(ctx context.Context, handle uint64, next func(meta.Chunk) []uint64, joined, alsoTell []uint64) error {
	s := &server{m: m}
	for attempt := 0; ; attempt++ {
		var ch meta.Chunk
		var ok bool
		m.fsm.view(func(st *meta.State) { ch, ok = st.Chunk(handle) })
		if !ok {
			return fmt.Errorf("chunk %d: %w", handle, meta.ErrNotFound)
		}
		chain := next(ch)
		if chain == nil {
			return errChainMoved
		}
		_, err := s.propose(ctx, meta.SetChain{Handle: handle, Epoch: ch.Epoch + 1, Chain: chain, Joined: joined})
		if rpcerr.Code(err) == api.ErrorCode_STALE_EPOCH && attempt < changeAttempts {
			continue
		}
		if err != nil {
			return err
		}
		m.event(console.EventChain, "chunk %d: chain %s at epoch %d", handle, m.chainLabel(chain), ch.Epoch+1)
		m.pushReconfigure(ctx, handle, alsoTell)
		return nil
	}
}

// pushReconfigure sends the chunk's current chain to its members and to
// alsoTell, in parallel, each bounded by pushTimeout. Failures are only
// logged: heartbeats carry the configuration to whoever missed it.
func (m *Master) pushReconfigure(ctx context.Context, handle uint64, alsoTell []uint64) {
	var req *api.ReconfigureRequest
	var to []*api.ServerRef
	m.fsm.view(func(st *meta.State) {
		ch, ok := st.Chunk(handle)
		if !ok {
			return
		}
		req = reconfigureRequest(st, ch)
		to = append(to, req.Chain...)
		for _, id := range alsoTell {
			if !slices.Contains(ch.Chain, id) {
				to = append(to, serverRefs(st, []uint64{id})...)
			}
		}
	})
	if req == nil {
		return
	}
	var wg sync.WaitGroup
	for _, ref := range to {
		wg.Go(func() {
			cs, err := m.pool.chunkserver(ref.Addr)
			if err == nil {
				pctx, cancel := context.WithTimeout(ctx, pushTimeout)
				_, err = cs.Reconfigure(pctx, req)
				cancel()
			}
			if err != nil {
				m.log.Debug("master: reconfigure push", "handle", handle, "server", ref.Id, "epoch", req.Epoch, "err", err)
			}
		})
	}
	wg.Wait()
}

func serverRefs(st *meta.State, ids []uint64) []*api.ServerRef {
	out := make([]*api.ServerRef, 0, len(ids))
	for _, id := range ids {
		sv, _ := st.Server(id)
		out = append(out, &api.ServerRef{Id: id, Addr: sv.Addr, CertName: sv.CertName})
	}
	return out
}

func reconfigureRequest(st *meta.State, ch meta.Chunk) *api.ReconfigureRequest {
	return &api.ReconfigureRequest{Handle: ch.Handle, Epoch: ch.Epoch, ChunkSize: ch.ChunkSize, Chain: serverRefs(st, ch.Chain)}
}

// repairView returns the handles not to plan now (in flight or held back),
// the bad-server map and how many repairs may start.
func (s *softState) repairView(now time.Time, concurrency int) (busy map[uint64]bool, bad map[uint64]map[uint64]bool, slots int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	busy = map[uint64]bool{}
	for h := range s.repairs {
		busy[h] = true
	}
	for h, t := range s.retryAt {
		if now.Before(t) {
			busy[h] = true
		} else {
			delete(s.retryAt, h)
		}
	}
	bad = make(map[uint64]map[uint64]bool, len(s.bad))
	for h, m := range s.bad {
		bad[h] = map[uint64]bool{}
		for id := range m {
			bad[h][id] = true
		}
	}
	return busy, bad, concurrency - len(s.repairs)
}

// repairing lists the chunks with a repair in flight.
func (s *softState) repairing() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.repairs))
}

// startRepair marks handle as being repaired onto target; false if it
// already is.
func (s *softState) startRepair(handle, target uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.repairs[handle]; ok {
		return false
	}
	s.repairs[handle] = target
	return true
}

// endRepair clears the mark. It runs after the SetChain of a successful
// repair committed (see repairTargets for why that order matters). A
// failure holds the chunk back until retryAt and makes the target a bad
// choice for it, unless the chain merely moved.
func (s *softState) endRepair(handle, target uint64, err error, bytes int64, retryAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.repairs, handle)
	switch {
	case err == nil:
		s.repairsDone++
		s.repairedBytes += bytes
		delete(s.failures, handle)
	case errors.Is(err, errChainMoved):
	default:
		s.retryAt[handle] = retryAt
		s.markBadLocked(handle, target)
		s.failures[handle] = err.Error()
	}
}

// endHeal clears a heal's mark; a failure holds the chunk back until
// retryAt and is shown by status.
func (s *softState) endHeal(handle uint64, err error, retryAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.repairs, handle)
	if err != nil {
		s.retryAt[handle] = retryAt
		s.failures[handle] = err.Error()
	} else {
		delete(s.failures, handle)
	}
}

// repairFailure is why the last repair of handle failed ("" if none did
// since the last success).
func (s *softState) repairFailure(handle uint64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures[handle]
}

func (s *softState) markBad(handle, server uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markBadLocked(handle, server)
}

func (s *softState) markBadLocked(handle, server uint64) {
	if s.bad[handle] == nil {
		s.bad[handle] = map[uint64]bool{}
	}
	s.bad[handle][server] = true
}

// repairTargets returns handle -> joining server of the repairs in flight.
func (s *softState) repairTargets() map[uint64]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uint64]uint64, len(s.repairs))
	for h, t := range s.repairs {
		out[h] = t
	}
	return out
}

// repairStats returns the repairs in flight, done and the bytes copied.
func (s *softState) repairStats() (inFlight, done uint64, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.repairs)), s.repairsDone, s.repairedBytes
}

// startRepairLoop starts the repair loop of a new term.
func (m *Master) startRepairLoop() {
	m.stopRepairLoop()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.repairLoop(stop)
	}()
	m.stopRepair = func() {
		close(stop)
		<-done
	}
}

// stopRepairLoop stops the loop and waits for its repairs to end.
func (m *Master) stopRepairLoop() {
	if m.stopRepair != nil {
		m.stopRepair()
		m.stopRepair = nil
	}
}
