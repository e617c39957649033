package master

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/meta"
)

func TestClassify(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const d = 1250 * time.Millisecond
	tests := []struct {
		name              string
		last, now, leader time.Time
		want              liveness
	}{
		{"fresh heartbeat", t0, t0.Add(d), t0.Add(-time.Hour), livenessAlive},
		{"lease plus drift passed", t0, t0.Add(d + 1), t0.Add(-time.Hour), livenessDead},
		{"never heard, new leader", time.Time{}, t0.Add(d), t0, livenessUnknown},
		{"never heard, grace over", time.Time{}, t0.Add(d + 1), t0, livenessDead},
		{"silent, leader too new", t0, t0.Add(2 * d), t0.Add(d + 1), livenessUnknown},
	}
	for _, tt := range tests {
		if got := classify(tt.last, tt.now, tt.leader, d); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPlanRemovals(t *testing.T) {
	live := map[uint64]liveness{1: livenessAlive, 2: livenessDead, 3: livenessAlive, 4: livenessDead, 5: livenessUnknown, 6: livenessAlive}
	chunks := []meta.Chunk{
		{Handle: 1, Epoch: 1, Chain: []uint64{1, 2, 3}},
		{Handle: 2, Epoch: 4, Chain: []uint64{2, 3, 4}},
		{Handle: 3, Epoch: 1, Chain: []uint64{1, 3, 5}}, // unknown is not dead
		{Handle: 4, Epoch: 2, Chain: []uint64{2, 4}},    // all dead: kept
	}
	got := planRemovals(removalInput{Chunks: chunks, Live: live})
	want := []chainChange{{Handle: 1, Epoch: 1, Chain: []uint64{1, 3}}, {Handle: 2, Epoch: 4, Chain: []uint64{3}}}
	if !slices.EqualFunc(got, want, func(a, b chainChange) bool {
		return a.Handle == b.Handle && a.Epoch == b.Epoch && slices.Equal(a.Chain, b.Chain)
	}) {
		t.Fatalf("planRemovals = %v, want %v", got, want)
	}
}

// member is a test shorthand for one chain member's state as the leader
// sees it: "D" dead; "?" alive, no inventory yet; "-" alive, its settled
// inventory lacks the chunk (a crash during creation left only a .tmp);
// "S" serving; "F<seq>" fenced at the chunk's epoch with that durable seq,
// optionally "e<epoch>" (applied epoch, default 5), "b<n>" (n bad blocks)
// and "u" (not yet verified); "O" fenced at an older epoch.
type member string

func (m member) evidence(epoch uint64) (ev evidence, alive, reported, has bool) {
	s := string(m)
	switch s {
	case "D":
		return ev, false, false, false
	case "?":
		return ev, true, false, false
	case "-":
		return ev, true, true, false
	case "S":
		return evidence{Epoch: epoch, AppliedEpoch: epoch, Verified: true}, true, true, true
	case "O":
		return evidence{Epoch: epoch - 1, Fenced: true, Verified: true}, true, true, true
	}
	ev = evidence{Epoch: epoch, Fenced: true, Verified: true, AppliedEpoch: 5}
	if s[0] == 'S' {
		ev.Fenced = false
		s = "F" + s[1:]
	}
	num := func(i int) (uint64, int) {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		v, _ := strconv.ParseUint(s[i:j], 10, 64)
		return v, j
	}
	for i := 0; i < len(s); {
		c := s[i]
		var v uint64
		switch c {
		case 'F':
			ev.AppliedSeq, i = num(i + 1)
		case 'e':
			ev.AppliedEpoch, i = num(i + 1)
		case 'b':
			v, i = num(i + 1)
			ev.BadBlocks = int(v)
			// n blocks numbered from 10n: members with different
			// counts have different bad blocks.
			for b := range int64(v) {
				ev.Bad = append(ev.Bad, int64(v)*10+b)
			}
		case 'u':
			ev.Verified = false
			i++
		default:
			panic("bad member " + s)
		}
	}
	return ev, true, true, true
}

// TestPlanRemovalsByEvidence: which members keep a chunk is decided by
// what each replica proves, never by chain position (the cases of a crash
// of every member at once, and of a crash during replica creation).
func TestPlanRemovalsByEvidence(t *testing.T) {
	tests := []struct {
		name    string
		members []member // servers 1, 2, 3, ... in chain order
		want    []uint64 // nil: no change
	}{
		{"all serving", []member{"S", "S", "S"}, nil},
		{"head fenced", []member{"F10", "S", "S"}, []uint64{2, 3}},
		{"middle and tail fenced", []member{"S", "F9", "F9"}, []uint64{1}},
		{"fenced at an older epoch: missed a push", []member{"O", "S", "S"}, nil},
		{"fenced and dead", []member{"F10", "D", "S"}, []uint64{3}},
		{"all fenced, equal: lowest id", []member{"F815", "F815", "F815"}, []uint64{1}},
		{"all fenced: most durable history kept", []member{"F815", "F816", "F814"}, []uint64{2}},
		{"power cut: head ahead but torn, intact member kept", []member{"F816b16", "F815", "F815"}, []uint64{2}},
		{"higher applied epoch wins over a higher seq", []member{"F900e4", "F10e5", "F800e4"}, []uint64{2}},
		{"every member has bad blocks: most durable, then fewest bad", []member{"F816b16", "F815b1", "F815b2"}, []uint64{1}},
		{"fewest bad blocks break a tie", []member{"F815b3", "F815b1", "F815b2"}, []uint64{2}},
		{"a candidate not verified yet: wait", []member{"F816b16", "F815u", "F815"}, nil},
		{"all fenced with a dead member", []member{"D", "F815", "F816"}, []uint64{3}},
		{"sole fenced member: same chain, new epoch", []member{"F3"}, []uint64{1}},
		{"member without the replica dropped", []member{"-", "S", "S"}, []uint64{2, 3}},
		{"creation cut: fenced holders kept, empty member dropped", []member{"-", "F53", "F53"}, []uint64{2}},
		{"creation cut, one holder", []member{"F7", "-", "-"}, []uint64{1}},
		{"no member holds it: wait", []member{"-", "-", "D"}, nil},
		{"no inventory yet: wait for its evidence", []member{"?", "F5", "F5"}, nil},
		{"no inventory yet, others serving: kept", []member{"?", "F5", "S"}, []uint64{1, 3}},
		{"all dead: kept", []member{"D", "D"}, nil},
		{"serving members all with bad blocks: one kept to combine", []member{"S815b2", "S815b1", "S815b3"}, []uint64{2}},
		{"serving, one clean: nothing to combine here", []member{"S815b2", "S", "S"}, nil},
		{"serving, the same blocks bad everywhere: lost, no change", []member{"S815b2", "S815b2", "S815b2"}, nil},
	}
	const epoch = 5
	for _, tt := range tests {
		ch := meta.Chunk{Handle: 7, Epoch: epoch}
		live := map[uint64]liveness{}
		ev := map[uint64]map[uint64]evidence{}
		for i, m := range tt.members {
			id := uint64(i + 1)
			ch.Chain = append(ch.Chain, id)
			e, alive, reported, has := m.evidence(epoch)
			live[id] = livenessDead
			if alive {
				live[id] = livenessAlive
			}
			if reported {
				ev[id] = map[uint64]evidence{}
				if has {
					ev[id][7] = e
				}
			}
		}
		got := planRemovals(removalInput{Chunks: []meta.Chunk{ch}, Live: live, Evidence: ev,
			Missing: func(uint64, uint64) bool { return true }})
		switch {
		case tt.want == nil && len(got) != 0:
			t.Errorf("%s: planRemovals = %v, want no change", tt.name, got)
		case tt.want != nil && (len(got) != 1 || got[0].Handle != 7 || got[0].Epoch != epoch || !slices.Equal(got[0].Chain, tt.want)):
			t.Errorf("%s: planRemovals = %v, want chain %v", tt.name, got, tt.want)
		}
	}
}

// TestPlanRemovalsUnsettled: while the leader is still learning (its
// inventories may be incomplete), a member not reporting a chunk is kept.
func TestPlanRemovalsUnsettled(t *testing.T) {
	ch := meta.Chunk{Handle: 7, Epoch: 5, Chain: []uint64{1, 2}}
	live := map[uint64]liveness{1: livenessAlive, 2: livenessAlive}
	ev := map[uint64]map[uint64]evidence{1: {}, 2: {7: {Epoch: 5, Verified: true}}}
	if got := planRemovals(removalInput{Chunks: []meta.Chunk{ch}, Live: live, Evidence: ev,
		Missing: func(uint64, uint64) bool { return false }}); len(got) != 0 {
		t.Fatalf("unsettled: %v, want no change", got)
	}
}

func TestPlanRepairs(t *testing.T) {
	servers := []meta.Server{
		{ID: 1, Labels: map[string]string{"zone": "a"}}, {ID: 2, Labels: map[string]string{"zone": "b"}},
		{ID: 3, Labels: map[string]string{"zone": "a"}}, {ID: 4, Labels: map[string]string{"zone": "c"}},
		{ID: 5}, {ID: 6},
	}
	allAlive := map[uint64]liveness{1: livenessAlive, 2: livenessAlive, 3: livenessAlive, 4: livenessAlive, 5: livenessAlive, 6: livenessAlive}
	free := map[uint64]int64{1: 10, 2: 10, 3: 90, 4: 50, 5: 60, 6: 5}
	ch := func(h uint64, repl int, chain ...uint64) meta.Chunk {
		return meta.Chunk{Handle: h, Epoch: 2, Chain: chain, Replication: repl, ChunkSize: 1}
	}
	type pick struct{ handle, target uint64 }
	tests := []struct {
		name   string
		chunks []meta.Chunk
		live   map[uint64]liveness
		inv    map[uint64]map[uint64]uint64
		busy   map[uint64]bool
		bad    map[uint64]map[uint64]bool
		slots  int
		want   []pick
	}{
		{name: "whole chains need nothing", chunks: []meta.Chunk{ch(1, 3, 1, 2, 4)}, slots: 4},
		{name: "fresh domain before free space", chunks: []meta.Chunk{ch(1, 3, 1, 2)}, slots: 4,
			want: []pick{{1, 5}}}, // 3 has most free but zone a is taken; 5 (no zone) 60 > 4 (zone c) 50
		{name: "most missing first, bounded by slots", chunks: []meta.Chunk{ch(1, 3, 1, 2), ch(2, 3, 2)}, slots: 1,
			want: []pick{{2, 3}}},
		{name: "returning server preferred, highest epoch", chunks: []meta.Chunk{ch(1, 3, 1, 2)}, slots: 4,
			inv:  map[uint64]map[uint64]uint64{6: {1: 1}, 5: {1: 2}},
			want: []pick{{1, 5}}},
		{name: "bad servers last", chunks: []meta.Chunk{ch(1, 2, 1)}, slots: 4,
			inv:  map[uint64]map[uint64]uint64{6: {1: 1}},
			bad:  map[uint64]map[uint64]bool{1: {6: true, 3: true, 4: true, 5: true}},
			want: []pick{{1, 2}}},
		{name: "busy chunk skipped", chunks: []meta.Chunk{ch(1, 3, 1, 2), ch(2, 3, 1, 2)}, slots: 4,
			busy: map[uint64]bool{1: true}, want: []pick{{2, 5}}},
		{name: "member not alive: wait", chunks: []meta.Chunk{ch(1, 3, 1, 2)}, slots: 4,
			live: map[uint64]liveness{1: livenessAlive, 2: livenessUnknown, 3: livenessAlive, 4: livenessAlive}},
		{name: "no live spare", chunks: []meta.Chunk{ch(1, 3, 1, 2)}, slots: 4,
			live: map[uint64]liveness{1: livenessAlive, 2: livenessAlive, 3: livenessDead}},
		{name: "spread over one round", chunks: []meta.Chunk{ch(1, 2, 4), ch(2, 2, 4)}, slots: 4,
			want: []pick{{1, 3}, {2, 3}}}, // 3 (90) stays ahead of 5 (60) after one chunk of size 1
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := tt.live
			if live == nil {
				live = allAlive
			}
			plans := planRepairs(repairInput{Chunks: tt.chunks, Servers: servers, Live: live, Free: free,
				Inventory: tt.inv, Busy: tt.busy, Bad: tt.bad, Slots: tt.slots, DomainKey: DefaultDomainKey})
			var got []pick
			for _, p := range plans {
				got = append(got, pick{p.Handle, p.Target})
				if p.Epoch != 2 || p.ChunkSize != 1 {
					t.Errorf("plan %+v: wrong epoch or chunk size", p)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReconcileInventory(t *testing.T) {
	st := meta.New()
	for id := uint64(1); id <= 4; id++ {
		st.Apply(meta.RegisterServer{ID: id, Addr: "cs"})
	}
	ino := st.Apply(meta.Create{Path: "/f", ChunkSize: 1 << 20}).Info.Inode
	st.Apply(meta.AllocateChunk{Inode: ino, Index: 0, Chain: []uint64{1, 2, 3}}) // handle 1, whole
	st.Apply(meta.AllocateChunk{Inode: ino, Index: 1, Chain: []uint64{1, 2, 3}}) // handle 2
	if r := st.Apply(meta.SetChain{Handle: 2, Epoch: 2, Chain: []uint64{1, 2}}); r.Err != nil {
		t.Fatal(r.Err)
	} // handle 2 short
	st.Apply(meta.SetChain{Handle: 1, Epoch: 2, Chain: []uint64{1, 2, 3}})
	st.Apply(meta.AllocateChunk{Inode: ino, Index: 2, Chain: []uint64{1}}) // handle 3, then truncated away
	if r := st.Apply(meta.SetSize{Inode: ino, Size: 2 << 20, Mode: meta.SizeExact}); r.Err != nil || st.HasChunk(3) {
		t.Fatalf("truncate: %v", r.Err)
	}
	rep := func(h, e uint64) *api.ReplicaInfo { return &api.ReplicaInfo{Handle: h, Epoch: e} }
	tests := []struct {
		name        string
		server      uint64
		reps        []*api.ReplicaInfo
		targets     map[uint64]uint64
		wantDeletes []uint64
		wantConfigs []uint64 // handles
	}{
		{"member up to date", 1, []*api.ReplicaInfo{rep(1, 2), rep(2, 2)}, nil, nil, nil},
		{"member at old epoch", 3, []*api.ReplicaInfo{rep(1, 1)}, nil, nil, []uint64{1}},
		{"deleted chunk, and one being allocated", 1, []*api.ReplicaInfo{rep(9, 1), rep(3, 1)}, nil, []uint64{3}, nil},
		{"non-member, whole chain: stale", 4, []*api.ReplicaInfo{rep(1, 1), rep(1, 2)}, nil, []uint64{1, 1}, nil},
		{"non-member, short chain: kept", 3, []*api.ReplicaInfo{rep(2, 1)}, nil, nil, nil},
		{"joining server kept", 4, []*api.ReplicaInfo{rep(1, 2)}, map[uint64]uint64{1: 4}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dels, cfgs := reconcileInventory(st, tt.server, tt.reps, tt.targets)
			var cfgHandles []uint64
			for _, c := range cfgs {
				cfgHandles = append(cfgHandles, c.Handle)
				if c.Epoch != 2 || c.ChunkSize != 1<<20 || len(c.Chain) != 3 {
					t.Errorf("config %v", c)
				}
			}
			if !slices.Equal(dels, tt.wantDeletes) || !slices.Equal(cfgHandles, tt.wantConfigs) {
				t.Fatalf("deletes %v configs %v, want %v %v", dels, cfgHandles, tt.wantDeletes, tt.wantConfigs)
			}
		})
	}
}

// TestLostBlocks: a block is lost only when every live member holding the
// chunk reports it bad.
func TestLostBlocks(t *testing.T) {
	ev := map[uint64]map[uint64]evidence{
		1: {7: {Bad: []int64{1, 4, 9}}},
		2: {7: {Bad: []int64{4, 9}}},
		3: {7: {Bad: []int64{9}}},
	}
	all := map[uint64]bool{1: true, 2: true, 3: true}
	if got := lostBlocks(7, all, ev); !slices.Equal(got, []int64{9}) {
		t.Fatalf("lost %v, want [9]", got)
	}
	if got := lostBlocks(7, map[uint64]bool{1: true, 2: true}, ev); !slices.Equal(got, []int64{4, 9}) {
		t.Fatalf("server 3 dead: lost %v, want [4 9]", got)
	}
	ev[3][7] = evidence{}
	if got := lostBlocks(7, all, ev); got != nil {
		t.Fatalf("one clean member: lost %v, want none", got)
	}
}

// TestPlanHeals: a sole member's bad blocks are restored from the other
// live servers holding the chunk where they verify, exact state first.
func TestPlanHeals(t *testing.T) {
	live := map[uint64]liveness{1: livenessAlive, 2: livenessAlive, 3: livenessAlive, 4: livenessDead}
	sole := meta.Chunk{Handle: 7, Epoch: 6, Chain: []uint64{1}}
	k := evidence{Epoch: 6, AppliedEpoch: 5, AppliedSeq: 815, Bad: []int64{3, 4}, Verified: true}
	tests := []struct {
		name    string
		chunk   meta.Chunk
		others  map[uint64]evidence
		busy    bool
		sources []uint64 // nil: no plan
		hold    bool     // held back from repair without a plan
	}{
		{"exact state first, then most durable", sole, map[uint64]evidence{
			2: {AppliedEpoch: 5, AppliedSeq: 816, Verified: true},
			3: {AppliedEpoch: 5, AppliedSeq: 815, Bad: []int64{4}, Verified: true}}, false, []uint64{3, 2}, false},
		{"a source bad in every wanted block is useless", sole, map[uint64]evidence{
			2: {AppliedEpoch: 5, AppliedSeq: 815, Bad: []int64{3, 4}, Verified: true}}, false, nil, false},
		{"a dead server is no source", sole, map[uint64]evidence{
			4: {AppliedEpoch: 5, AppliedSeq: 815, Verified: true}}, false, nil, false},
		{"an unverified holder: no plan, no repair until its evidence", sole, map[uint64]evidence{
			2: {AppliedEpoch: 5, AppliedSeq: 815}, 3: {AppliedEpoch: 5, AppliedSeq: 815, Verified: true}}, false, nil, true},
		{"busy chunk waits", sole, map[uint64]evidence{2: {Verified: true}}, true, nil, false},
		{"a longer chain is not healed in place", meta.Chunk{Handle: 7, Epoch: 6, Chain: []uint64{1, 2}},
			map[uint64]evidence{2: {Verified: true}, 3: {Verified: true}}, false, nil, false},
	}
	for _, tt := range tests {
		ev := map[uint64]map[uint64]evidence{1: {7: k}}
		for id, e := range tt.others {
			ev[id] = map[uint64]evidence{7: e}
		}
		got, hold := planHeals([]meta.Chunk{tt.chunk}, live, ev, map[uint64]bool{7: tt.busy})
		if wantHold := tt.sources != nil || tt.hold; hold[7] != wantHold {
			t.Errorf("%s: hold %v, want %v", tt.name, hold[7], wantHold)
		}
		switch {
		case tt.sources == nil && len(got) != 0:
			t.Errorf("%s: %+v, want no plan", tt.name, got)
		case tt.sources != nil && (len(got) != 1 || got[0].Target != 1 || !slices.Equal(got[0].Sources, tt.sources) || !slices.Equal(got[0].Blocks, k.Bad)):
			t.Errorf("%s: %+v, want target 1 from %v", tt.name, got, tt.sources)
		}
	}
}

// TestDropOnReport: a reported replica leaves its chain only when another
// member can serve in its place, or when it failed (a disk error).
func TestDropOnReport(t *testing.T) {
	live := map[uint64]liveness{1: livenessAlive, 2: livenessAlive, 3: livenessAlive, 4: livenessDead}
	ch := meta.Chunk{Handle: 7, Epoch: 5, Chain: []uint64{1, 2, 3}}
	good := evidence{Epoch: 5, Verified: true}
	tests := []struct {
		name     string
		chain    []uint64
		failed   bool
		others   evidence // evidence of members 2 and 3
		reporter uint64
		want     bool
	}{
		{"bad blocks, a clean member serves", []uint64{1, 2, 3}, false, good, 1, true},
		{"bad blocks everywhere: stays", []uint64{1, 2, 3}, false, evidence{Epoch: 5, Verified: true, BadBlocks: 1}, 1, false},
		{"others fenced (restart): stays", []uint64{1, 2, 3}, false, evidence{Epoch: 5, Verified: true, Fenced: true}, 1, false},
		{"others not verified yet: stays", []uint64{1, 2, 3}, false, evidence{Epoch: 5}, 1, false},
		{"failed replica leaves", []uint64{1, 2, 3}, true, evidence{Epoch: 5, Verified: true, BadBlocks: 1}, 1, true},
		{"sole member stays", []uint64{1}, true, good, 1, false},
		{"not a member", []uint64{1, 2, 3}, true, good, 9, false},
		{"the clean member is dead", []uint64{1, 4}, false, good, 1, false},
	}
	for _, tt := range tests {
		c := ch
		c.Chain = tt.chain
		ev := map[uint64]map[uint64]evidence{1: {7: {Epoch: 5, Verified: true, BadBlocks: 2}}, 2: {7: tt.others}, 3: {7: tt.others}, 4: {7: good}}
		if got := dropOnReport(c, tt.reporter, tt.failed, live, ev); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
