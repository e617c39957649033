package master

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
)

// serverSoft is what the leader knows about a chunkserver from its
// heartbeats; never persisted.
type serverSoft struct {
	lastHeartbeat time.Time
	io            *api.IOCounters // client I/O, from the last heartbeat
	capacity      int64
	free          int64
	used          int64
	replicas      map[uint64]uint64          // handle -> epoch, from the last heartbeat
	evidence      map[uint64]decide.Evidence // handle -> what the last heartbeat proved
	// neverHeldFrom: the last heartbeat's word that the server never held
	// a chunk at or above this handle that it did not report (0: none).
	neverHeldFrom uint64
	// reportGen: the server's report the inventory is as of (0: none, or
	// one from a server that sends whole inventories).
	reportGen uint64
	// The pages of a full report under way (applyPage): the inventory
	// gathered so far, and the generation of its last page.
	pageInv map[uint64]uint64
	pageEv  map[uint64]decide.Evidence
	pageGen uint64
}

// softState is the leader's soft state. Safe for concurrent use.
type softState struct {
	mu      sync.Mutex
	servers map[uint64]*serverSoft
	// leaderSince is when this master took office: nobody is declared dead
	// before deadAfter has passed since then (its heartbeats may have gone
	// to the previous leader).
	leaderSince time.Time
	// repairs maps a handle under re-replication to its joining server.
	repairs map[uint64]uint64
	// retryAt holds back a chunk whose last repair failed.
	retryAt map[uint64]time.Time
	// bad maps a handle to the servers that reported its replica bad or
	// failed to join its chain: chosen as a repair target only when no
	// other server is left.
	bad map[uint64]map[uint64]bool
	// lackingSince maps (server, handle) to when the repair loop first saw
	// that chain member's inventory without the chunk.
	lackingSince map[[2]uint64]time.Time
	// syncingSince maps (server, handle) to when the repair loop first saw
	// that member syncing (meta.Chunk.Syncing): catena status names one
	// that has not caught up for long.
	syncingSince map[[2]uint64]time.Time
	// failures maps a handle to why its last repair failed, until one
	// succeeds (catena status shows it).
	failures      map[uint64]string
	repairsDone   uint64
	repairedBytes int64
	// moves maps a chunk under a rebalancing move to it (the joining
	// server is in repairs until it joined; the giver leaves in a trim).
	moves      map[uint64]decide.Move
	movesDone  uint64
	movedBytes int64
	// renewed maps a volume inode to its writer's last renewal, and lease
	// to the lease its writer asked for (overlay.go).
	renewed map[uint64]time.Time
	lease   map[uint64]time.Duration
}

func newSoftState() *softState {
	s := &softState{}
	s.reset(time.Time{})
	return s
}

// reset drops everything a former term knew; now starts the grace period.
func (s *softState) reset(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servers = map[uint64]*serverSoft{}
	s.leaderSince = now
	s.repairs = map[uint64]uint64{}
	s.retryAt = map[uint64]time.Time{}
	s.bad = map[uint64]map[uint64]bool{}
	s.failures = map[uint64]string{}
	s.lackingSince = map[[2]uint64]time.Time{}
	s.syncingSince = map[[2]uint64]time.Time{}
	s.repairsDone, s.repairedBytes = 0, 0
	s.moves = map[uint64]decide.Move{}
	s.movesDone, s.movedBytes = 0, 0
	s.renewed = map[uint64]time.Time{}
	s.lease = map[uint64]time.Duration{}
}

func (s *softState) serverLocked(id uint64) *serverSoft {
	sv, ok := s.servers[id]
	if !ok {
		sv = &serverSoft{}
		s.servers[id] = sv
	}
	return sv
}

// heard records a sign of life with space figures; replicas (and
// evidence, keyed alike, neverHeldFrom and gen) is nil when the message
// carried no inventory (Register). The maps become the soft state's.
func (s *softState) heard(id uint64, now time.Time, capacity, free, used int64, replicas map[uint64]uint64, ev map[uint64]decide.Evidence, neverHeldFrom, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.serverLocked(id)
	sv.lastHeartbeat, sv.capacity, sv.free = now, capacity, free
	if replicas != nil {
		sv.used, sv.replicas, sv.evidence, sv.neverHeldFrom, sv.reportGen = used, replicas, ev, neverHeldFrom, gen
	}
}

// applyReport merges incremental report gen into server id's inventory
// when the inventory is as of report base: the replicas handles (with
// their evidence evs) are set, removed ones dropped. It returns the
// merged inventory, or nil when it is not as of base (the server must
// send a full report; nothing changed).
func (s *softState) applyReport(id, base, gen uint64, handles []uint64, evs []decide.Evidence, removed []uint64) []decide.Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.servers[id]
	if !ok || base == 0 || sv.reportGen != base || sv.replicas == nil {
		return nil
	}
	merge(sv.replicas, sv.evidence, handles, evs, removed)
	sv.reportGen = gen
	reps := make([]decide.Replica, 0, len(sv.replicas))
	for h, epoch := range sv.replicas {
		reps = append(reps, decide.Replica{Handle: h, Epoch: epoch})
	}
	return reps
}

// merge sets the replicas handles (with their evidence evs) in an
// inventory and drops the removed ones.
func merge(inv map[uint64]uint64, ev map[uint64]decide.Evidence, handles []uint64, evs []decide.Evidence, removed []uint64) {
	for i, h := range handles {
		inv[h], ev[h] = evs[i].Epoch, evs[i]
	}
	for _, h := range removed {
		delete(inv, h)
		delete(ev, h)
	}
}

// applyPage gathers page page of a full report of server id (report gen,
// based on page-1's gen base): page 0 starts a new inventory, a later one
// adds its replicas and drops its removed handles. On the last page
// (more false) it returns the whole inventory gathered, which the caller
// takes as a full report's; ok is false when the page does not follow the
// one before (the server must start again).
func (s *softState) applyPage(id uint64, page uint32, base, gen uint64, handles []uint64, evs []decide.Evidence, removed []uint64, more bool) (inv map[uint64]uint64, ev map[uint64]decide.Evidence, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.serverLocked(id)
	switch {
	case page == 0:
		sv.pageInv, sv.pageEv = make(map[uint64]uint64, len(handles)), make(map[uint64]decide.Evidence, len(handles))
	case sv.pageInv == nil || base == 0 || sv.pageGen != base:
		sv.pageInv, sv.pageEv, sv.pageGen = nil, nil, 0
		return nil, nil, false
	}
	merge(sv.pageInv, sv.pageEv, handles, evs, removed)
	sv.pageGen = gen
	if more {
		return nil, nil, true
	}
	inv, ev = sv.pageInv, sv.pageEv
	sv.pageInv, sv.pageEv, sv.pageGen = nil, nil, 0
	return inv, ev, true
}

// heardReport records a sign of life with space figures from a heartbeat
// whose report applyReport merged.
func (s *softState) heardReport(id uint64, now time.Time, capacity, free, used int64, neverHeldFrom uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.serverLocked(id)
	sv.lastHeartbeat, sv.capacity, sv.free, sv.used, sv.neverHeldFrom = now, capacity, free, used, neverHeldFrom
}

// heardIO keeps a server's last report of its client I/O.
func (s *softState) heardIO(id uint64, io *api.IOCounters) {
	if io == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serverLocked(id).io = io
}

// get returns a copy of one server's soft state.
func (s *softState) get(id uint64) (serverSoft, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.servers[id]
	if !ok {
		return serverSoft{}, false
	}
	c := *sv
	c.replicas, c.evidence = maps.Clone(sv.replicas), maps.Clone(sv.evidence)
	return c, true
}

// lacking returns, for every chain member whose last inventory lacks its
// chunk, since when it has (remembered across rounds; forgotten once the
// inventory names the chunk or the member leaves the chain).
// keepSince carries k's time from prev into next, or starts it at now.
func keepSince(next, prev map[[2]uint64]time.Time, k [2]uint64, now time.Time) {
	since, ok := prev[k]
	if !ok {
		since = now
	}
	next[k] = since
}

// syncing records, for each syncing member of chunks, since when this
// leader has seen it syncing, forgetting members that no longer are.
func (s *softState) syncing(chunks []meta.Chunk, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[[2]uint64]time.Time{}
	for _, ch := range chunks {
		for _, id := range ch.Syncing {
			keepSince(next, s.syncingSince, [2]uint64{id, ch.Handle}, now)
		}
	}
	s.syncingSince = next
}

// syncingFor is how long member id of handle has been seen syncing (0:
// not seen).
func (s *softState) syncingFor(id, handle uint64, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	since, ok := s.syncingSince[[2]uint64{id, handle}]
	if !ok {
		return 0
	}
	return now.Sub(since)
}

func (s *softState) lacking(chunks []meta.Chunk, view serversView, now time.Time) map[[2]uint64]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[[2]uint64]time.Time{}
	for _, ch := range chunks {
		for _, id := range ch.Chain {
			inv, reported := view.inv[id]
			if !reported || inv == nil {
				continue
			}
			if _, has := inv[ch.Handle]; has {
				continue
			}
			keepSince(next, s.lackingSince, [2]uint64{id, ch.Handle}, now)
		}
	}
	s.lackingSince = next
	return maps.Clone(next)
}

// startMove records a rebalancing move; false if the chunk has one.
func (s *softState) startMove(mv decide.Move) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.moves[mv.Handle]; ok {
		return false
	}
	s.moves[mv.Handle] = mv
	return true
}

// moving returns chunk -> giver of the moves under way.
func (s *softState) moving() map[uint64]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uint64]uint64, len(s.moves))
	for h, mv := range s.moves {
		out[h] = mv.From
	}
	return out
}

// settleMoves ends the moves that are over: done once the giver left the
// chain, given up when the receiver is not joining (inFlight, read
// before chunks: a repair that is no longer in flight has committed its
// join in chunks, if at all) and not in the chain.
func (s *softState) settleMoves(all []meta.Chunk, inFlight map[uint64]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.moves) == 0 {
		return
	}
	chunks := map[uint64]meta.Chunk{}
	for _, ch := range all {
		if _, ok := s.moves[ch.Handle]; ok {
			chunks[ch.Handle] = ch
		}
	}
	for h, mv := range s.moves {
		ch, ok := chunks[h]
		switch {
		case !ok:
			delete(s.moves, h)
		case !slices.Contains(ch.Chain, mv.From):
			delete(s.moves, h)
			if slices.Contains(ch.Chain, mv.To) {
				s.movesDone++
				s.movedBytes += mv.Bytes
			}
		case inFlight[h] != mv.To && !slices.Contains(ch.Chain, mv.To):
			delete(s.moves, h)
		}
	}
}

// moveStats returns the moves under way, done and the bytes moved.
func (s *softState) moveStats() (inFlight, done uint64, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.moves)), s.movesDone, s.movedBytes
}
