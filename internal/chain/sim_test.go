package chain

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// chooser is the simulation's source of decisions: a seeded PRNG in
// TestSimulation, fuzzer bytes in FuzzSimulation.
type chooser interface {
	// intn returns a value in [0, n); ok is false when the source ran dry.
	intn(n int) (v int, ok bool)
}

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) (int, bool) { return c.r.IntN(n), true }

type byteChooser struct{ b []byte }

func (c *byteChooser) intn(n int) (int, bool) {
	if len(c.b) == 0 {
		return 0, false
	}
	v := int(c.b[0]) % n
	c.b = c.b[1:]
	return v, true
}

// Which member, if any, the simulation removes part-way; failFence
// removes none but moves the chain to a new epoch, repeatedly (as a
// snapshot's fence does).
const (
	failNone = iota
	failHead
	failMiddle
	failTail
	failFence
	numFail
)

// sim drives a 3-node chain through an adversarial schedule: messages are
// reordered, duplicated and dropped (and recovered by the re-send watchdog
// and reconnects), Ready batches and persistence happen at random points,
// and optionally one member is removed with the survivors learning the new
// configuration at different times.
type sim struct {
	t      testing.TB
	c      chooser
	nodes  map[NodeID]*Node
	dead   map[NodeID]bool
	chain  []NodeID // the newest configuration's chain
	epoch  uint64
	unconf []NodeID // survivors that have not yet been told the newest config

	net       []Message
	log       map[NodeID][]Update // handed in Apply, in order
	persisted map[NodeID]uint64   // what the harness reported durable

	nextReq  uint64
	proposed []RequestID
	replies  map[RequestID]int // replies seen
	allowed  map[RequestID]int // replies the protocol owes
	rebuilds int               // nodes rebuilt from their replica's state (coldCycle)
	held     int               // batches after which a node held updates back for its send window
	// reads: reads admitted, at which epoch and with what applied; no
	// update of an earlier epoch may commit beyond it (checkReads).
	reads []admittedRead
	// reconfiguredAt: the epoch each node last got by Reconfigure.
	reconfiguredAt map[NodeID]uint64
	failMode       int
	failed         bool
}

func newSim(t testing.TB, c chooser, failMode int) *sim {
	s := &sim{
		t: t, c: c,
		nodes: map[NodeID]*Node{}, dead: map[NodeID]bool{},
		chain: []NodeID{1, 2, 3}, epoch: 1,
		log: map[NodeID][]Update{}, persisted: map[NodeID]uint64{},
		replies: map[RequestID]int{}, allowed: map[RequestID]int{},
		failMode: failMode, reconfiguredAt: map[NodeID]uint64{},
	}
	for _, id := range s.chain {
		s.nodes[id] = NewNode(id, Config{Epoch: 1, Chain: s.chain}, Start{})
	}
	return s
}

func (s *sim) pick(n int) (int, bool) { return s.c.intn(n) }

func (s *sim) live() []NodeID {
	var ids []NodeID
	for _, id := range []NodeID{1, 2, 3} {
		if !s.dead[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// step performs one random action; false when the chooser ran dry.
func (s *sim) step() bool {
	op, ok := s.pick(100)
	if !ok {
		return false
	}
	live := s.live()
	x, ok := s.pick(1 << 16)
	if !ok {
		return false
	}
	id := live[x%len(live)]
	switch {
	case op < 10:
		s.propose(false)
	case op < 13:
		s.propose(true)
	case op < 33:
		s.ready(id)
	case op < 48:
		s.persist(id, x)
	case op < 93:
		s.deliver(x)
	case op < 94:
		// The watchdogs (re-send after ResendTicks ticks without ack
		// progress) and stream reconnects are what recovers lost
		// messages, as in the chunkserver.
		switch x % 8 {
		case 0:
			s.nodes[id].PeerReconnected(live[(x/4)%len(live)])
		case 1:
			s.checkAdmission(id)
		case 2:
			// A node is rebuilt cold only after a quiet while: sometimes
			// let the chain settle first.
			if len(s.unconf) == 0 && x%3 == 0 {
				s.quiesce()
				for _, m := range s.chain {
					s.tick(m) // as the tick loop does until a node is idle
					s.ready(m)
				}
			}
			s.coldCycle(id)
		default:
			s.tick(id)
		}
	case op < 95:
		// Rarely, so the chain runs a while before and after.
		if s.failMode != failNone && (!s.failed || s.failMode == failFence) && x%10 == 0 {
			s.fail()
		}
	default:
		if len(s.unconf) > 0 {
			s.reconfigure(s.unconf[x%len(s.unconf)])
		}
	}
	s.checkPrefix()
	return true
}

func (s *sim) head() *Node { return s.nodes[s.chain[0]] }

// propose sends a new client write, or retries an earlier one, at the
// head of the newest configuration.
func (s *sim) propose(retry bool) {
	var req RequestID
	if retry && len(s.proposed) > 0 {
		x, _ := s.pick(len(s.proposed))
		req = s.proposed[x]
	} else {
		s.nextReq++
		req = RequestID{Client: 1, Seq: s.nextReq}
		s.proposed = append(s.proposed, req)
	}
	s.submit(req)
}

// submit proposes req at the head and accounts for the reply it is owed:
// one, unless the head already waits on this request's commit (then the
// retry shares the commit's single reply).
func (s *sim) submit(req RequestID) {
	h := s.head()
	e, known := h.reqs[req]
	shares := known && e.seq > h.Status().Acked && h.waiting[e.seq].req == req
	err := h.Propose(ClientWrite{
		Epoch: h.Config().Epoch, Req: req, Kind: KindWrite,
		Offset: int64(req.Seq % 64), Data: []byte{byte(req.Seq)}, Leased: true,
	})
	if err != nil {
		// The new head has not learnt its role yet: the client backs off
		// and retries later (drain).
		if !errors.Is(err, ErrNotHead) {
			s.t.Fatalf("propose %v: %v", req, err)
		}
		return
	}
	if !shares {
		s.allowed[req]++
	}
}

func (s *sim) ready(id NodeID) {
	n := s.nodes[id]
	if n.flight > 1 && n.flightBytes > sendWindow {
		s.t.Fatalf("node %d: %d updates (%d bytes) in flight, window %d", id, n.flight, n.flightBytes, sendWindow)
	}
	if n.flight < len(n.sent) {
		s.held++
	}
	rd := n.Ready()
	s.net = append(s.net, rd.Messages...)
	for _, u := range rd.Apply {
		l := s.log[id]
		if len(l) > 0 && u.Seq != l[len(l)-1].Seq+1 || len(l) == 0 && u.Seq != 1 {
			s.t.Fatalf("node %d applied seq %d after %d updates", id, u.Seq, len(l))
		}
		for _, v := range l {
			if v.Req == u.Req && u.Req != (RequestID{}) {
				s.t.Fatalf("node %d applied request %v twice (seq %d and %d)", id, u.Req, v.Seq, u.Seq)
			}
		}
		s.log[id] = append(l, u)
	}
	for _, r := range rd.Replies {
		s.replies[r.Req]++
		if s.replies[r.Req] > s.allowed[r.Req] {
			s.t.Fatalf("node %d: reply %d for %v, owed %d", id, s.replies[r.Req], r.Req, s.allowed[r.Req])
		}
		// A reply means durable on every member of the newest chain.
		for _, m := range s.chain {
			l := s.log[m]
			if s.persisted[m] < r.Seq || uint64(len(l)) < r.Seq || l[r.Seq-1].Req != r.Req {
				s.t.Fatalf("reply %v seq %d from %d, but node %d persisted %d, log %s",
					r.Req, r.Seq, id, m, s.persisted[m], fmtLog(l))
			}
		}
	}
}

func (s *sim) persist(id NodeID, x int) {
	handed := uint64(len(s.log[id]))
	if handed <= s.persisted[id] {
		return
	}
	// Group commit: some prefix of what was handed out becomes durable.
	seq := s.persisted[id] + 1 + uint64(x)%(handed-s.persisted[id])
	s.persisted[id] = seq
	s.nodes[id].Persisted(seq)
}

// deliver takes a random queued message (reordering) and delivers it,
// drops it, or delivers it and keeps a copy (duplication).
func (s *sim) deliver(x int) {
	if len(s.net) == 0 {
		return
	}
	i := x % len(s.net)
	m := s.net[i]
	fate, _ := s.pick(10)
	if fate != 0 { // 0: duplicate, keep it queued
		s.net = slices.Delete(s.net, i, i+1)
	}
	if fate == 1 || s.dead[m.To] || s.dead[m.From] {
		return // dropped
	}
	s.stepMsg(m)
}

func (s *sim) stepMsg(m Message) {
	if err := s.nodes[m.To].Step(m); err != nil {
		// Old-epoch traffic and traffic for a configuration the receiver
		// has not learnt are refused; the sender's re-send watchdog recovers.
		if !errors.Is(err, ErrStaleEpoch) && !errors.Is(err, ErrNotMember) {
			s.t.Fatalf("step %s: %v", fmtMsg(m), err)
		}
	}
}

// fail removes one member; the survivors learn the new chain later, one
// at a time.
func (s *sim) fail() {
	s.failed = true
	var victim NodeID
	switch s.failMode {
	case failHead:
		victim = s.chain[0]
	case failMiddle:
		victim = s.chain[1]
	case failTail:
		victim = s.chain[2]
	case failFence:
		s.epoch++
		s.unconf = slices.Clone(s.chain)
		return
	}
	s.dead[victim] = true
	if s.failMode == failHead {
		// The replies the dead head owed die with it; clients retry.
		for req, n := range s.replies {
			s.allowed[req] = n
		}
		for _, req := range s.proposed {
			s.allowed[req] = s.replies[req]
		}
	}
	s.epoch++
	s.chain = slices.DeleteFunc(slices.Clone(s.chain), func(id NodeID) bool { return id == victim })
	s.unconf = slices.Clone(s.chain)
}

func (s *sim) reconfigure(id NodeID) {
	if changed, _ := s.nodes[id].Reconfigure(Config{Epoch: s.epoch, Chain: s.chain}); changed {
		s.reconfiguredAt[id] = s.epoch
	}
	s.unconf = slices.DeleteFunc(s.unconf, func(x NodeID) bool { return x == id })
}

// checkPrefix asserts update propagation: along the newest chain, what a
// later node applied is a prefix of what an earlier node applied.
func (s *sim) checkPrefix() {
	for k := 1; k < len(s.chain); k++ {
		a, b := s.log[s.chain[k-1]], s.log[s.chain[k]]
		if len(b) > len(a) || !slices.Equal(keys(a[:len(b)]), keys(b)) {
			s.t.Fatalf("prefix broken: node %d %s, node %d %s",
				s.chain[k-1], fmtLog(a), s.chain[k], fmtLog(b))
		}
	}
}

// admittedRead is a read a node admitted: at epoch, seeing applied.
type admittedRead struct {
	node           NodeID
	epoch, applied uint64
}

// checkReads asserts that no read missed an update of an earlier epoch
// that committed: once a node serves reads at an epoch, every update
// sequenced under an earlier one that will ever commit is in what it
// applied (the epoch start). Otherwise a configuration change counted as
// after such a write (a snapshot's fence) is followed by a read without
// it, and then by the write's commit.
func (s *sim) checkReads() {
	final := s.log[s.chain[0]]
	for _, r := range s.reads {
		for _, u := range final {
			if u.Epoch < r.epoch && u.Seq > r.applied {
				s.t.Fatalf("node %d served a read at epoch %d with %d applied; update e%d/s%d committed after it: %s",
					r.node, r.epoch, r.applied, u.Epoch, u.Seq, fmtLog(final))
			}
		}
	}
}

type updateKey struct {
	epoch, seq uint64
	req        RequestID
}

func keys(l []Update) []updateKey {
	ks := make([]updateKey, len(l))
	for i, u := range l {
		ks[i] = updateKey{u.Epoch, u.Seq, u.Req}
	}
	return ks
}

func fmtLog(l []Update) string {
	var b []byte
	for _, u := range l {
		b = fmt.Appendf(b, " e%d/s%d(%d)", u.Epoch, u.Seq, u.Req.Seq)
	}
	return "[" + string(b) + " ]"
}

// drain runs the cluster without faults until it is quiet, then retries
// every unanswered request (as its client would) and runs it quiet again.
func (s *sim) drain() {
	for len(s.unconf) > 0 {
		s.reconfigure(s.unconf[0])
	}
	s.quiesce()
	for _, req := range s.proposed {
		if s.replies[req] == 0 {
			s.submit(req)
		}
	}
	s.quiesce()
	// Every request is answered as often as it is owed, and the
	// survivors agree on everything.
	for _, req := range s.proposed {
		if s.replies[req] == 0 || s.replies[req] != s.allowed[req] {
			s.t.Fatalf("request %v: %d replies, owed %d", req, s.replies[req], s.allowed[req])
		}
	}
	first := s.log[s.chain[0]]
	for _, id := range s.chain[1:] {
		if !slices.Equal(keys(first), keys(s.log[id])) {
			s.t.Fatalf("logs differ after drain: node %d %s, node %d %s",
				s.chain[0], fmtLog(first), id, fmtLog(s.log[id]))
		}
	}
	s.checkReads()
}

// checkAdmission checks the node's admission rules at a random point of
// the schedule: a write without a lease is refused and changes nothing; a
// read is admitted exactly at an unfenced, caught-up tail (or single) of
// the node's epoch, and waits for everything it applied.
func (s *sim) checkAdmission(id NodeID) {
	n := s.nodes[id]
	before := n.Status()
	err := n.Propose(ClientWrite{Epoch: before.Epoch, Req: RequestID{Client: 99, Seq: before.Applied + 1}, Kind: KindWrite, Data: []byte{1}})
	if err == nil || errors.Is(err, ErrDamaged) {
		s.t.Fatalf("node %d: a write without a lease: %v", id, err)
	}
	if after := n.Status(); after != before {
		s.t.Fatalf("node %d: a refused write changed the node: %+v -> %+v", id, before, after)
	}
	wait, err := n.AdmitRead(ReadRequest{Epoch: before.Epoch, Leased: true})
	servable := (n.Role() == RoleTail || n.Role() == RoleSingle) && !before.Fenced && !before.CatchingUp && !before.Failed &&
		(n.Role() == RoleSingle || before.AppliedEpoch >= before.Epoch || s.reconfiguredAt[id] != before.Epoch)
	switch {
	case servable && (err != nil || wait != before.Applied):
		s.t.Fatalf("node %d (%s): read refused or waiting for %d with %d applied: %v", id, n.Role(), wait, before.Applied, err)
	case !servable && err == nil:
		s.t.Fatalf("node %d (%s): read admitted", id, n.Role())
	}
	if err == nil {
		s.reads = append(s.reads, admittedRead{node: id, epoch: before.Epoch, applied: wait})
	}
	if _, err := n.AdmitRead(ReadRequest{Epoch: before.Epoch, Leased: false}); err == nil {
		s.t.Fatalf("node %d: read admitted without a lease", id)
	}
}

// quiesce takes every Ready, persists everything, re-sends Sent lists and
// delivers every message until nothing is left in flight.
func (s *sim) quiesce() {
	for round := 0; ; round++ {
		if round > 1000 {
			s.t.Fatalf("no quiescence after %d rounds", round)
		}
		for _, id := range s.chain {
			s.ready(id)
			if h := uint64(len(s.log[id])); s.persisted[id] < h {
				s.persisted[id] = h
				s.nodes[id].Persisted(h)
				s.ready(id)
			}
			s.tick(id)
			s.ready(id)
		}
		msgs := s.net
		s.net = nil
		for _, m := range msgs {
			if !s.dead[m.To] && !s.dead[m.From] {
				s.stepMsg(m)
			}
		}
		s.checkPrefix()
		quiet := len(s.net) == 0
		for _, id := range s.chain {
			st := s.nodes[id].Status()
			quiet = quiet && st.SentLen == 0 && st.Acked == st.Applied
		}
		if quiet {
			for _, id := range s.chain {
				s.ready(id)
			}
			if len(s.net) == 0 {
				return
			}
		}
	}
}

// TestSimulation runs 40 schedules with the default send window, and 40
// with a window of two updates (the sim's updates are one byte), where
// most updates wait in their Sent list for acknowledgements.
func TestSimulation(t *testing.T) {
	for _, window := range []int64{sendWindow, 2} {
		t.Run(fmt.Sprintf("window=%d", window), func(t *testing.T) {
			defer func(w int64) { sendWindow = w }(sendWindow)
			sendWindow = window
			simulate(t)
		})
	}
}

func simulate(t *testing.T) {
	rebuilds, held := 0, 0
	defer func() {
		if !t.Failed() && rebuilds < 40 {
			t.Errorf("only %d nodes rebuilt cold in 40 schedules: the schedule never finds them quiescent", rebuilds)
		}
		if !t.Failed() && sendWindow < 8 && held < 40 {
			t.Errorf("updates held back for the window only %d times in 40 schedules", held)
		}
	}()
	for seed := uint64(1); seed <= 40; seed++ {
		failMode := int(seed % numFail)
		t.Run(fmt.Sprintf("seed=%d/fail=%d", seed, failMode), func(t *testing.T) {
			t.Logf("seed %d", seed)
			s := newSim(t, randChooser{rand.New(rand.NewPCG(seed, seed))}, failMode)
			for range 3000 {
				s.step()
			}
			s.drain()
			if len(s.proposed) < 100 {
				t.Fatalf("only %d proposals: the schedule is too tame", len(s.proposed))
			}
			rebuilds += s.rebuilds
			held += s.held
		})
	}
}

// FuzzSimulation lets the fuzzer pick the schedule.
func FuzzSimulation(f *testing.F) {
	f.Add([]byte{0, 1, 20, 2, 60, 3, 70, 1, 40, 2, 70, 0, 0, 0, 88, 1, 95, 0, 95, 1})
	f.Add([]byte("some schedule bytes to start from, long enough to do a few things"))
	f.Fuzz(func(t *testing.T, b []byte) {
		failMode := 0
		if len(b) > 0 {
			failMode = int(b[0]) % numFail
		}
		s := newSim(t, &byteChooser{b: b}, failMode)
		for s.step() {
		}
		s.drain()
	})
}

// coldCycle rebuilds a Quiescent node from what its replica and a cold
// chunkserver replica keep (chain.Start from the durable state, the fence,
// whether it rejoins, whether it is committed), as a chunkserver does when
// it makes an unused replica cold and later uses it again. The rebuilt
// node takes the request ids the replica keeps durably (Start.Requests),
// so clients go on retrying across the rebuild and every retry must
// still be answered exactly once.
func (s *sim) coldCycle(id NodeID) {
	n := s.nodes[id]
	if !n.Quiescent() {
		return
	}
	st := n.Status()
	nn := NewNode(id, n.Config(), Start{Applied: st.Persisted, AppliedEpoch: st.PersistedEpoch, Reloaded: st.Rejoining,
		Committed: st.Acked == st.Applied, Ahead: n.Ahead(), Requests: n.Requests()})
	nn.Fence(n.FencedThrough())
	if got := nn.Status(); got.Applied != st.Applied || got.Persisted != st.Persisted || got.Fenced != st.Fenced ||
		got.Epoch != st.Epoch || got.Acked != st.Acked || !nn.Quiescent() || nn.Role() != n.Role() {
		s.t.Fatalf("node %d rebuilt as %+v (%s), was %+v (%s)", id, got, nn.Role(), st, n.Role())
	}
	s.nodes[id] = nn
	s.rebuilds++
}

// tick ticks node id, checking that a node that says it is Idle is left
// exactly as it was (the chunkserver skips ticking such nodes).
func (s *sim) tick(id NodeID) {
	n := s.nodes[id]
	idle := n.Idle()
	before := [6]uint64{uint64(n.stalledTicks), uint64(n.gapTicks), n.tickAcked, n.tickApplied, uint64(len(n.rd.Messages)), boolU(n.rd.CatchUp)}
	n.Tick()
	after := [6]uint64{uint64(n.stalledTicks), uint64(n.gapTicks), n.tickAcked, n.tickApplied, uint64(len(n.rd.Messages)), boolU(n.rd.CatchUp)}
	if idle && before != after {
		s.t.Fatalf("node %d was idle, and a tick changed it: (stalled, gap, tick acked, tick applied, messages, catch-up) %v -> %v", id, before, after)
	}
}

func boolU(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
