package decide

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/catena-io/catena/internal/meta"
)

// simServer is one chunkserver's replica of the simulated chunk, as far
// as the repair decisions care: its durable history (seq), the chain
// epoch it knows, whether a restart fenced it, and whether it joined a
// chain and has not yet caught up with its predecessor.
type simServer struct {
	alive, has, fenced, catchingUp bool
	seq, epoch                     uint64
}

// repairSim drives the master's decisions (PlanRemovals, PlanRepairs,
// PlanCaughtUp, through the real meta state machine) for one chunk on
// five servers, against a model of its replicas under writes, crashes,
// restarts, copies and catch-ups, and checks that no acknowledged write
// is lost: some member the master counts as holding the chunk (not
// syncing) always holds every acknowledged update.
type repairSim struct {
	t      *testing.T
	r      *rand.Rand
	st     *meta.State
	h      uint64
	sv     map[uint64]*simServer
	ev     map[uint64]map[uint64]Evidence
	live   map[uint64]Liveness
	seed   uint64
	acked  uint64 // the highest acknowledged update
	copyOf map[uint64]uint64
	trace  []string
}

const simServers = 5

func newRepairSim(t *testing.T, seed uint64) *repairSim {
	s := &repairSim{t: t, seed: seed, r: rand.New(rand.NewPCG(seed, seed^0x5eed)), st: meta.New(), sv: map[uint64]*simServer{},
		ev: map[uint64]map[uint64]Evidence{}, live: map[uint64]Liveness{}, copyOf: map[uint64]uint64{}}
	for id := uint64(1); id <= simServers; id++ {
		s.apply(meta.RegisterServer{ID: id, Addr: "cs:" + strconv.Itoa(int(id))})
		s.sv[id] = &simServer{alive: true}
		s.live[id] = Alive
		s.ev[id] = map[uint64]Evidence{}
	}
	r := s.apply(meta.Create{Path: "/f", ChunkSize: 1 << 20})
	c := s.apply(meta.AllocateChunk{Inode: r.Info.Inode, Chain: []uint64{1, 2, 3}})
	s.h = c.Chunk.Handle
	for _, id := range []uint64{1, 2, 3} {
		s.sv[id].has, s.sv[id].epoch = true, 1
	}
	return s
}

func (s *repairSim) apply(c meta.Command) meta.Result {
	r := s.st.Apply(c)
	if r.Err != nil {
		s.t.Fatalf("apply %T: %v\n%v", c, r.Err, s.trace)
	}
	return r
}

func (s *repairSim) chunk() meta.Chunk {
	ch, _ := s.st.Chunk(s.h)
	return ch
}

func (s *repairSim) logf(format string, a ...any) {
	s.trace = append(s.trace, strconv.Itoa(len(s.trace))+": "+fmt.Sprintf(format, a...))
}

// reconfigure tells the chain's live members its new configuration, as
// the master's push does; a node reconfigured into a chain it was not in
// starts catching up, unless it is the head (the chain's history: the
// node's own rule, which is why the master must never make a member that
// has not caught up the head).
func (s *repairSim) reconfigure(ch meta.Chunk, joined uint64) {
	for i, id := range ch.Chain {
		m := s.sv[id]
		if !m.alive || !m.has {
			continue
		}
		m.epoch = ch.Epoch
		switch {
		case i == 0:
			m.catchingUp = false
		case id == joined:
			m.catchingUp = true
		}
	}
}

func (s *repairSim) step() {
	ch := s.chunk()
	switch k := s.r.IntN(10); {
	case k < 3: // a write
		ok := len(ch.Chain) > 0
		for _, id := range ch.Chain {
			m := s.sv[id]
			if !m.alive || m.fenced || m.catchingUp || m.epoch != ch.Epoch {
				ok = false
			}
		}
		next := uint64(0)
		for _, id := range ch.Chain {
			next = max(next, s.sv[id].seq)
		}
		next++
		if ok {
			for _, id := range ch.Chain {
				s.sv[id].seq = next
			}
			s.acked = next
			s.logf("write %d acked by %v", next, ch.Chain)
			return
		}
		// Not acknowledged: applied by a prefix of live members.
		for _, id := range ch.Chain {
			m := s.sv[id]
			if !m.alive || m.fenced || m.catchingUp || s.r.IntN(2) == 0 {
				break
			}
			m.seq = max(m.seq, next)
		}
	case k < 4: // a crash
		id := uint64(1 + s.r.IntN(simServers))
		s.sv[id].alive = false
		s.logf("kill %d", id)
	case k < 5: // a restart: reloaded replicas are fenced until they rejoin
		id := uint64(1 + s.r.IntN(simServers))
		if m := s.sv[id]; !m.alive {
			m.alive, m.catchingUp = true, false
			m.fenced = m.has
			s.logf("restart %d", id)
		}
	case k < 6: // the master notices the dead
		for id, m := range s.sv {
			if !m.alive {
				s.live[id] = Dead
			}
		}
	case k < 8: // heartbeats
		for id, m := range s.sv {
			if !m.alive {
				continue
			}
			s.live[id] = Alive
			s.ev[id] = map[uint64]Evidence{}
			if m.has {
				s.ev[id][s.h] = Evidence{Epoch: m.epoch, AppliedEpoch: m.epoch, AppliedSeq: m.seq, Fenced: m.fenced && m.epoch >= ch.Epoch,
					CatchingUp: m.catchingUp, Verified: true}
			}
		}
	case k < 9: // catch-ups: a joiner fetches from its live predecessor
		for i, id := range ch.Chain {
			m := s.sv[id]
			if i == 0 || !m.alive || !m.catchingUp {
				continue
			}
			p := s.sv[ch.Chain[i-1]]
			if p.alive && p.has && p.epoch == ch.Epoch {
				m.seq, m.catchingUp = p.seq, false
				s.logf("%d caught up from %d at %d", id, ch.Chain[i-1], m.seq)
			}
		}
	default:
		s.tick()
	}
}

// tick is one round of the master's repair loop, as internal/master runs
// it; a repair is a copy now and a join at a later tick (writes may be
// acknowledged in between).
func (s *repairSim) tick() {
	chunks := []meta.Chunk{s.chunk()}
	if caught := PlanCaughtUp(chunks, s.ev); len(caught) > 0 {
		s.apply(meta.CaughtUp{Members: caught})
		s.logf("caught up %v", caught)
		chunks = []meta.Chunk{s.chunk()}
	}
	if rms := PlanRemovals(RemovalInput{Chunks: chunks, Live: s.live, Evidence: s.ev}); len(rms) > 0 {
		rm := rms[0] // one chunk
		r := s.st.Apply(meta.SetChain{Handle: rm.Handle, Epoch: rm.Epoch + 1, Chain: rm.Chain})
		if r.Err != nil {
			s.t.Fatalf("PlanRemovals planned a chain the state machine refuses: %v: %v\n%v", rm, r.Err, s.trace)
		}
		s.logf("removal: chain %v at epoch %d", rm.Chain, rm.Epoch+1)
		s.reconfigure(s.chunk(), 0)
		return
	}
	// Joins of the copies made at an earlier tick.
	for target, epoch := range s.copyOf {
		delete(s.copyOf, target)
		ch := s.chunk()
		if ch.Epoch != epoch || slices.Contains(ch.Chain, target) || !s.sv[target].alive {
			continue
		}
		s.apply(meta.SetChain{Handle: s.h, Epoch: ch.Epoch + 1, Chain: append(slices.Clone(ch.Chain), target), Joined: []uint64{target}})
		s.logf("%d joined at epoch %d", target, ch.Epoch+1)
		s.reconfigure(s.chunk(), target)
		return
	}
	inv := map[uint64]map[uint64]uint64{}
	for id, e := range s.ev {
		inv[id] = map[uint64]uint64{}
		if x, ok := e[s.h]; ok {
			inv[id][s.h] = x.Epoch
		}
	}
	var servers []meta.Server
	free := map[uint64]int64{}
	for id := uint64(1); id <= simServers; id++ {
		servers = append(servers, meta.Server{ID: id})
		free[id] = 1 << 30
	}
	for _, p := range PlanRepairs(RepairInput{Chunks: chunks, Servers: servers, Live: s.live, Free: free, Inventory: inv, Slots: 1}) {
		src := s.sv[p.Chain[len(p.Chain)-1]]
		t := s.sv[p.Target]
		if !src.alive || !src.has || !t.alive {
			continue
		}
		// Replicate: the target holds the tail's history exactly.
		t.has, t.seq, t.fenced, t.catchingUp, t.epoch = true, src.seq, false, false, p.Epoch
		s.copyOf[p.Target] = p.Epoch
		s.logf("%d copied from %d at %d", p.Target, p.Chain[len(p.Chain)-1], t.seq)
	}
}

// check: some member the master counts as holding the chunk holds every
// acknowledged update.
func (s *repairSim) check() {
	ch := s.chunk()
	for _, id := range ch.Chain {
		if m := s.sv[id]; !ch.IsSyncing(id) && m.has && m.seq >= s.acked {
			return
		}
	}
	var state []string
	for id := uint64(1); id <= simServers; id++ {
		state = append(state, fmt.Sprintf("%d:%+v", id, *s.sv[id]))
	}
	s.t.Fatalf("seed %d (replay: CATENA_SEED=%d): acknowledged update %d held by no holder of chain %v (epoch %d, syncing %v); servers %v\n%v",
		s.seed, s.seed, s.acked, ch.Chain, ch.Epoch, ch.Syncing, state, s.trace)
}

// TestRepairSimulation: random crashes, restarts, writes, copies,
// catch-ups, heartbeats and repair rounds never lose an acknowledged
// write (CATENA_SIM_SEEDS sets how many runs; CATENA_SEED replays one).
func TestRepairSimulation(t *testing.T) {
	runs := 300
	if v, err := strconv.Atoi(os.Getenv("CATENA_SIM_SEEDS")); err == nil && v > 0 {
		runs = v
	}
	first := uint64(1)
	if v, err := strconv.ParseUint(os.Getenv("CATENA_SEED"), 10, 64); err == nil {
		first, runs = v, 1
	}
	var writes, joins uint64
	for seed := first; seed < first+uint64(runs); seed++ {
		s := newRepairSim(t, seed)
		for range 400 {
			s.step()
			s.check()
		}
		writes += s.acked
		for _, l := range s.trace {
			if strings.Contains(l, "joined") {
				joins++
			}
		}
	}
	t.Logf("%d runs: %d writes acknowledged, %d joins", runs, writes, joins)
	if writes == 0 || joins == 0 {
		t.Fatal("the simulation acknowledged no write or joined no replica: it tests nothing")
	}
}
