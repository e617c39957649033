package master

import (
	"maps"
	"time"

	"github.com/catena-io/catena/internal/master/decide"
)

// liveness classifies one server (decide.Classify).
func (s *softState) liveness(id uint64, now time.Time, deadAfter time.Duration) decide.Liveness {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last time.Time
	if sv, ok := s.servers[id]; ok {
		last = sv.lastHeartbeat
	}
	return decide.Classify(last, now, s.leaderSince, deadAfter)
}

// alive reports whether server id is alive (placement, status).
func (s *softState) alive(id uint64, now time.Time, deadAfter time.Duration) bool {
	return s.liveness(id, now, deadAfter) == decide.Alive
}

// serversView is the leader's view of the servers for one repair round.
type serversView struct {
	live     map[uint64]decide.Liveness
	free     map[uint64]int64
	capacity map[uint64]int64
	// inv maps a server to the handles (-> epoch) it reported, evidence to
	// what it proved about each,
	// all of them and those it reported fenced.
	inv      map[uint64]map[uint64]uint64
	evidence map[uint64]map[uint64]decide.Evidence
	// neverHeldFrom maps a server to the handle from which it vouches
	// that a chunk it does not report is one it never held (0: none).
	neverHeldFrom map[uint64]uint64
}

// fresh reports whether server never held a replica of handle that its
// inventory lacks (decide.RemovalInput.Fresh).
func (v serversView) fresh(server, handle uint64) bool {
	f := v.neverHeldFrom[server]
	return f != 0 && handle >= f
}

// snapshotServers returns liveness, free bytes and inventories of every
// server in ids, taken under one lock.
func (s *softState) snapshotServers(ids []uint64, now time.Time, deadAfter time.Duration) serversView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := serversView{
		live:     make(map[uint64]decide.Liveness, len(ids)),
		free:     make(map[uint64]int64, len(ids)),
		capacity: make(map[uint64]int64, len(ids)),
		inv:      make(map[uint64]map[uint64]uint64, len(ids)),
		evidence: make(map[uint64]map[uint64]decide.Evidence, len(ids)),

		neverHeldFrom: make(map[uint64]uint64, len(ids)),
	}
	for _, id := range ids {
		var last time.Time
		if sv, ok := s.servers[id]; ok {
			last, v.free[id], v.capacity[id], v.neverHeldFrom[id] = sv.lastHeartbeat, sv.free, sv.capacity, sv.neverHeldFrom
			v.inv[id] = maps.Clone(sv.replicas)
			if sv.evidence != nil {
				v.evidence[id] = maps.Clone(sv.evidence)
			}
		}
		v.live[id] = decide.Classify(last, now, s.leaderSince, deadAfter)
	}
	return v
}
