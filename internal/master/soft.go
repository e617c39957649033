package master

import (
	"maps"
	"sync"
	"time"
)

// serverSoft is what the leader knows about a chunkserver from its
// heartbeats; never persisted.
type serverSoft struct {
	lastHeartbeat time.Time
	capacity      int64
	free          int64
	used          int64
	replicas      map[uint64]uint64 // handle -> epoch, from the last heartbeat
}

// softState is the leader's soft state. Safe for concurrent use.
type softState struct {
	mu      sync.Mutex
	servers map[uint64]*serverSoft
	// confirmed maps a handle to the epoch whose CreateReplica succeeded on
	// every chain member.
	confirmed map[uint64]uint64
}

func newSoftState() *softState {
	return &softState{servers: map[uint64]*serverSoft{}, confirmed: map[uint64]uint64{}}
}

func (s *softState) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servers = map[uint64]*serverSoft{}
	s.confirmed = map[uint64]uint64{}
}

func (s *softState) serverLocked(id uint64) *serverSoft {
	sv, ok := s.servers[id]
	if !ok {
		sv = &serverSoft{}
		s.servers[id] = sv
	}
	return sv
}

// heard records a sign of life with space figures; replicas is nil when
// the message carried no inventory (Register).
func (s *softState) heard(id uint64, now time.Time, capacity, free, used int64, replicas map[uint64]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.serverLocked(id)
	sv.lastHeartbeat, sv.capacity, sv.free = now, capacity, free
	if replicas != nil {
		sv.used, sv.replicas = used, replicas
	}
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
	c.replicas = maps.Clone(sv.replicas)
	return c, true
}

// alive reports whether server id sent a heartbeat within deadAfter.
func (s *softState) alive(id uint64, now time.Time, deadAfter time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv, ok := s.servers[id]
	return ok && !sv.lastHeartbeat.IsZero() && now.Sub(sv.lastHeartbeat) <= deadAfter
}

func (s *softState) isConfirmed(handle, epoch uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed[handle] == epoch
}

func (s *softState) confirm(handle, epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.confirmed[handle] = epoch
}
