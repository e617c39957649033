package chunkserver

import (
	"errors"
	"slices"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
)

// Cold replicas. A server may hold a million replicas, most of them idle;
// a chain node and its update log for each would cost more memory than
// the store's whole index. So only active replicas are served by a
// replica (a chain node and the means to carry out its batches): the
// others are cold, known only to the store and, when their state is not
// the default, to Server.cold.
//
// A replica loaded at Start is cold until something needs it: a client
// write or read, a chain message, a Fetch, a Reconfigure or a Replicate
// (acquire activates it, as a reloaded replica: fenced until it rejoins,
// unverified until checked). An active replica whose node has been
// quiescent (chain.Node.Quiescent: nothing in flight, everything applied
// durable) and which nobody used for a whole sweep period (Config.ColdAfter)
// is made cold again, keeping only what a node must not forget: its fence,
// whether it still has to rejoin, whether it was verified (the request
// ids of its recent writes the store keeps with the replica: requests.go).
// What it forgets a reload forgets too: its update log (a delta from it
// then covers its ahead blocks and anything after its applied seq, and
// falls back to a whole copy otherwise).

// DefaultColdAfter is how long an active replica stays unused and
// quiescent before it is made cold: well above the default operation
// timeouts of the clients (30 s; a mount's 60 s), which bound how late a
// retry comes. (A replica is made cold between one and two ColdAfter
// after its last use.)
const DefaultColdAfter = 5 * time.Minute

// coldState is what a cold replica keeps beside the store's metadata.
type coldState struct {
	fencedThrough uint64 // no client I/O at any epoch <= this
	rejoining     bool   // reloaded, not yet rejoined its chain
	verified      bool   // every block was checked since it was loaded
	committed     bool   // everything applied is durable downstream (chain.Start.Committed)
}

// loadedStateLocked is the state of a replica loaded at Start and never
// active since, which Server.cold does not keep: fenced at its epoch
// until it rejoins, and verified once verifyLoaded has passed it (it
// goes in handle order) unless its check could not be made (s.mu held).
func (s *Server) loadedStateLocked(m chunkstore.Meta) coldState {
	return coldState{fencedThrough: m.Epoch, rejoining: true, verified: s.loadedVerifiedLocked(m.Handle)}
}

// loadedVerifiedLocked says whether verifyLoaded checked replica h, if
// it was loaded at Start (s.mu held).
func (s *Server) loadedVerifiedLocked(h chunkstore.Handle) bool {
	_, skipped := s.unverified[h]
	return h < s.loadedVerified && !skipped
}

// coldStateLocked is the state of cold replica h of metadata m (s.mu
// held).
func (s *Server) coldStateLocked(h chunkstore.Handle, m chunkstore.Meta) coldState {
	if cs, ok := s.cold[h]; ok {
		return cs
	}
	return s.loadedStateLocked(m)
}

// setColdLocked records cold replica h's state, keeping the map free of
// default entries (s.mu held).
func (s *Server) setColdLocked(h chunkstore.Handle, m chunkstore.Meta, cs coldState) {
	if cs == s.loadedStateLocked(m) {
		delete(s.cold, h)
		return
	}
	s.cold[h] = cs
}

// acquire returns the replica of h, activating it if it is cold, or nil
// when this server holds none. The replica is pinned (never made cold)
// until the caller calls release.
func (s *Server) acquire(h chunkstore.Handle) *replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.activeLocked(h)
	if r != nil {
		r.pinLocked()
	}
	return r
}

// pinLocked pins r and marks it used in this sweep period (s.mu held).
// What only looks at a replica (a report, a fence, the scrubber) pins it
// without marking it used: r.pins.Add(1).
func (r *replica) pinLocked() {
	r.pins.Add(1)
	r.used = true
}

// release ends a use begun by acquire (or by the creation functions,
// which return their replica pinned).
func (r *replica) release() { r.pins.Add(-1) }

// activeLocked returns the active replica of h, activating a cold one
// (s.mu held); nil when the store holds no replica of h, or it is being
// deleted, or the server is closing.
func (s *Server) activeLocked(h chunkstore.Handle) *replica {
	if r := s.replicas[h]; r != nil {
		return r
	}
	if s.closed {
		return nil
	}
	rep := s.coldLookupLocked(h)
	if rep == nil {
		return nil
	}
	m := rep.Meta()
	cs := s.coldStateLocked(h, m)
	r := s.newReplica(rep, &cs, nil)
	delete(s.cold, h)
	s.replicas[h] = r
	s.metrics.activated.Add(1)
	return r
}

// heldLocked reports whether this server holds a replica of h, active or
// cold (s.mu held).
func (s *Server) heldLocked(h chunkstore.Handle) bool {
	return s.replicas[h] != nil || s.coldLookupLocked(h) != nil
}

// coldLookupLocked returns the store's replica of h when h is not active
// and not being deleted; nil when the server holds no cold replica of h
// (s.mu held).
func (s *Server) coldLookupLocked(h chunkstore.Handle) *chunkstore.Replica {
	if s.replicas[h] != nil {
		return nil
	}
	if _, gone := s.deleted[h]; gone {
		return nil
	}
	rep, err := s.store.Get(h)
	if err != nil {
		return nil
	}
	return rep
}

// coldLocked returns the state r would keep cold, and whether it may be
// made cold now: nothing in flight, no goroutine at work, and the store's
// metadata saying all its node knows (r.mu held). Whoever waits on the
// replica (a write, a read, a Fetch) holds a pin: the caller checked
// there is none.
func (r *replica) coldLocked() (coldState, bool) {
	if r.dropped || r.failed != nil || len(r.waiters) > 0 || r.syncing || r.syncWanted || r.catchUpRunning ||
		!r.node.Quiescent() {
		return coldState{}, false
	}
	m := r.store.Meta()
	st, cfg := r.node.Status(), r.node.Config()
	if m.Epoch != cfg.Epoch || m.AppliedSeq != st.Persisted || m.AppliedEpoch != st.PersistedEpoch ||
		len(m.Chain) != len(cfg.Chain) {
		return coldState{}, false
	}
	for i, id := range m.Chain {
		if chain.NodeID(id) != cfg.Chain[i] {
			return coldState{}, false
		}
	}
	// Ranges added since the load (a restore, a copy's ahead) would be
	// forgotten: such a replica stays active.
	if !slices.Equal(r.node.Ahead(), blockRanges(r.store.AheadBlocks(), m.ChunkSize)) {
		return coldState{}, false
	}
	// Without a successor a node counts what it holds as committed
	// anyway: committed says something only of a node with one.
	return coldState{fencedThrough: r.node.FencedThrough(), rejoining: st.Rejoining, verified: r.verified,
		committed: st.Acked == st.Applied && r.node.Successor() != 0}, true
}

// sweepCold makes cold the active replicas that are quiescent and were
// not used since the last sweep; the others are marked unused. It returns
// how many it made cold.
func (s *Server) sweepCold() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for h, r := range s.replicas {
		if r.used {
			r.used = false
			continue
		}
		// TryLock: a replica whose lock is held is busy, and s.mu is not
		// to wait for a replica's lock.
		if r.pins.Load() > 0 || !r.mu.TryLock() {
			continue
		}
		cs, ok := r.coldLocked()
		if ok {
			// Whoever still holds r (the tick loop's list) sees it dropped.
			r.dropped = true
			r.chargeLocked()
			delete(s.replicas, h)
			s.setColdLocked(h, r.store.Meta(), cs)
			n++
		}
		r.mu.Unlock()
	}
	if n > 0 {
		s.metrics.madeCold.Add(uint64(n))
		s.log.Debug("replicas made cold", "count", n, "active", len(s.replicas))
	}
	return n
}

// coldInfo is what the master is told of cold replica h in state cs (nil:
// as loaded, verified or not); nil when the store no longer holds it.
func (s *Server) coldInfo(h chunkstore.Handle, in *coldState, verified bool) *api.ReplicaInfo {
	rep, err := s.store.Get(h)
	if err != nil {
		return nil
	}
	m := rep.Meta()
	cs := coldState{fencedThrough: m.Epoch, rejoining: true, verified: verified}
	if in != nil {
		cs = *in
	}
	return &api.ReplicaInfo{
		Handle:       uint64(h),
		Epoch:        m.Epoch,
		UsedBytes:    rep.UsedBytes(),
		AppliedSeq:   m.AppliedSeq,
		AppliedEpoch: m.AppliedEpoch,
		Fenced:       m.Epoch <= cs.fencedThrough,
		BadBlocks:    rep.BadBlocks(),
		Verified:     cs.verified,
	}
}

// fenceHandle forbids client I/O on the replica of h at any epoch <=
// epoch, without activating a cold one.
func (s *Server) fenceHandle(h chunkstore.Handle, epoch uint64) {
	s.mu.Lock()
	if r := s.replicas[h]; r != nil {
		r.pins.Add(1) // a hold, not a use: see pinLocked
		s.mu.Unlock()
		defer r.release()
		r.fence(epoch)
		return
	}
	defer s.mu.Unlock()
	rep := s.coldLookupLocked(h)
	if rep == nil {
		return
	}
	m := rep.Meta()
	cs := s.coldStateLocked(h, m)
	if epoch <= cs.fencedThrough {
		return
	}
	was := m.Epoch <= cs.fencedThrough
	cs.fencedThrough = epoch
	s.setColdLocked(h, m, cs)
	if !was && m.Epoch <= epoch {
		s.log.Info("replica fenced", "handle", uint64(h), "epoch", m.Epoch, "master_epoch", epoch)
		s.inv.noteChanged(h)
	}
}

// verifyHandle reads every block of the replica of h (see
// replica.verify), without activating a cold one unless a block is bad.
// unverifiedOnly skips a replica verified before. It returns the chunk
// size of the replica (0 when the server holds none), and false when the
// check could not be made (a store error).
func (s *Server) verifyHandle(h chunkstore.Handle, unverifiedOnly bool) (int64, bool) {
	s.mu.Lock()
	if r := s.replicas[h]; r != nil {
		r.pins.Add(1) // a hold, not a use: the scrubber would keep every replica active
		s.mu.Unlock()
		defer r.release()
		r.mu.Lock()
		skip := r.dropped || (unverifiedOnly && r.verified)
		r.mu.Unlock()
		if !skip {
			r.verify()
		}
		return r.chunkSize, true
	}
	rep := s.coldLookupLocked(h)
	if rep == nil {
		s.mu.Unlock()
		return 0, true
	}
	m := rep.Meta()
	skip := unverifiedOnly && s.coldStateLocked(h, m).verified
	s.mu.Unlock()
	if skip {
		return m.ChunkSize, true
	}
	err := rep.Verify()
	if err != nil && !errors.Is(err, chunkstore.ErrCorrupt) {
		return m.ChunkSize, false // not checked (the store is closing, or failed)
	}
	s.mu.Lock()
	if s.replicas[h] == nil && err == nil {
		if cs := s.coldStateLocked(h, m); !cs.verified && s.heldLocked(h) {
			cs.verified = true
			s.setColdLocked(h, m, cs)
			s.inv.noteChanged(h)
		}
		s.mu.Unlock()
		return m.ChunkSize, true
	}
	// Active meanwhile, or bad blocks to report: through the replica.
	r := s.activeLocked(h)
	if r != nil {
		r.pins.Add(1)
	}
	s.mu.Unlock()
	if r == nil {
		return m.ChunkSize, true
	}
	defer r.release()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped {
		return m.ChunkSize, true
	}
	if errors.Is(err, chunkstore.ErrCorrupt) {
		r.corruptLocked(err)
	}
	r.verified = true
	r.noteLocked()
	return m.ChunkSize, true
}
