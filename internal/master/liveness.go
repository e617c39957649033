package master

import (
	"maps"
	"time"
)

// liveness is the leader's view of a chunkserver.
type liveness uint8

const (
	// livenessUnknown: silent, but this master has not led long enough to
	// know that its lease expired (it may have renewed with the previous
	// leader). Neither placed on nor removed.
	livenessUnknown liveness = iota
	// livenessAlive: heard from within deadAfter.
	livenessAlive
	// livenessDead: its lease has surely expired: it serves no client I/O
	// and may be replaced.
	livenessDead
)

func (l liveness) String() string {
	switch l {
	case livenessAlive:
		return "alive"
	case livenessDead:
		return "dead"
	default:
		return "unknown"
	}
}

// classify is the liveness rule. A server is dead when now > last
// heartbeat received + deadAfter (lease + drift): the chunkserver counts its
// lease from when it SENT that heartbeat, which is earlier, so its lease
// ran out at least DriftMargin before. A server never heard from is dead
// once deadAfter has passed since this master took office.
func classify(last time.Time, now, leaderSince time.Time, deadAfter time.Duration) liveness {
	if !last.IsZero() && !now.After(last.Add(deadAfter)) {
		return livenessAlive
	}
	if now.After(leaderSince.Add(deadAfter)) {
		return livenessDead
	}
	return livenessUnknown
}

// liveness classifies one server.
func (s *softState) liveness(id uint64, now time.Time, deadAfter time.Duration) liveness {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last time.Time
	if sv, ok := s.servers[id]; ok {
		last = sv.lastHeartbeat
	}
	return classify(last, now, s.leaderSince, deadAfter)
}

// alive reports whether server id is alive (placement, status).
func (s *softState) alive(id uint64, now time.Time, deadAfter time.Duration) bool {
	return s.liveness(id, now, deadAfter) == livenessAlive
}

// serversView is the leader's view of the servers for one repair round.
type serversView struct {
	live map[uint64]liveness
	free map[uint64]int64
	// inv maps a server to the handles (-> epoch) it reported, evidence to
	// what it proved about each,
	// all of them and those it reported fenced.
	inv      map[uint64]map[uint64]uint64
	evidence map[uint64]map[uint64]evidence
}

// snapshotServers returns liveness, free bytes and inventories of every
// server in ids, taken under one lock.
func (s *softState) snapshotServers(ids []uint64, now time.Time, deadAfter time.Duration) serversView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := serversView{
		live:     make(map[uint64]liveness, len(ids)),
		free:     make(map[uint64]int64, len(ids)),
		inv:      make(map[uint64]map[uint64]uint64, len(ids)),
		evidence: make(map[uint64]map[uint64]evidence, len(ids)),
	}
	for _, id := range ids {
		var last time.Time
		if sv, ok := s.servers[id]; ok {
			last, v.free[id] = sv.lastHeartbeat, sv.free
			v.inv[id] = maps.Clone(sv.replicas)
			if sv.evidence != nil {
				v.evidence[id] = maps.Clone(sv.evidence)
			}
		}
		v.live[id] = classify(last, now, s.leaderSince, deadAfter)
	}
	return v
}
