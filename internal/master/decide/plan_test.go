package decide

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/catena-io/catena/internal/meta"
)

// TestPlanRemovalsByLiveness: dead members leave their chains, an unknown
// one is not dead, and a chain whose members are all dead is kept.
func TestPlanRemovalsByLiveness(t *testing.T) {
	live := map[uint64]Liveness{1: Alive, 2: Dead, 3: Alive, 4: Dead, 5: Unknown, 6: Alive}
	tests := []struct {
		name  string
		chunk meta.Chunk
		want  []uint64 // nil: no change
	}{
		{"dead middle", meta.Chunk{Handle: 1, Epoch: 1, Chain: []uint64{1, 2, 3}}, []uint64{1, 3}},
		{"dead head and tail", meta.Chunk{Handle: 2, Epoch: 4, Chain: []uint64{2, 3, 4}}, []uint64{3}},
		{"unknown is not dead", meta.Chunk{Handle: 3, Epoch: 1, Chain: []uint64{1, 3, 5}}, nil},
		{"all dead: kept", meta.Chunk{Handle: 4, Epoch: 2, Chain: []uint64{2, 4}}, nil},
		{"all alive", meta.Chunk{Handle: 5, Epoch: 3, Chain: []uint64{1, 3, 6}}, nil},
	}
	var all []meta.Chunk
	var wantAll []uint64
	for _, tt := range tests {
		all = append(all, tt.chunk)
		if tt.want != nil {
			wantAll = append(wantAll, tt.chunk.Handle)
		}
		got := PlanRemovals(RemovalInput{Chunks: []meta.Chunk{tt.chunk}, Live: live})
		switch {
		case tt.want == nil && len(got) != 0:
			t.Errorf("%s: PlanRemovals = %v, want no change", tt.name, got)
		case tt.want != nil && (len(got) != 1 || got[0].Handle != tt.chunk.Handle || got[0].Epoch != tt.chunk.Epoch || !slices.Equal(got[0].Chain, tt.want)):
			t.Errorf("%s: PlanRemovals = %v, want chain %v at epoch %d", tt.name, got, tt.want, tt.chunk.Epoch)
		}
	}
	var gotAll []uint64
	for _, c := range PlanRemovals(RemovalInput{Chunks: all, Live: live}) {
		gotAll = append(gotAll, c.Handle)
	}
	if !slices.Equal(gotAll, wantAll) {
		t.Errorf("all chunks at once: changes for %v, want %v (one per chunk, in order)", gotAll, wantAll)
	}
}

// member is a test shorthand for one chain member's state as the leader
// sees it: "D" dead; "?" alive, no inventory yet; "-" alive, its settled
// inventory lacks the chunk (a crash during creation left only a .tmp);
// "S" serving; "F<seq>" fenced at the chunk's epoch with that durable seq,
// optionally "e<epoch>" (applied epoch, default 5), "b<n>" (n bad blocks)
// and "u" (not yet verified); "O" fenced at an older epoch. A trailing "~"
// makes the member syncing (meta.Chunk.Syncing: joined through a copy, not
// yet known to have caught up).
type member string

func (m member) evidence(epoch uint64) (ev Evidence, alive, reported, has bool) {
	s := string(m)
	switch s {
	case "D":
		return ev, false, false, false
	case "?":
		return ev, true, false, false
	case "-":
		return ev, true, true, false
	case "S":
		return Evidence{Epoch: epoch, AppliedEpoch: epoch, Verified: true}, true, true, true
	case "O":
		return Evidence{Epoch: epoch - 1, Fenced: true, Verified: true}, true, true, true
	}
	ev = Evidence{Epoch: epoch, Fenced: true, Verified: true, AppliedEpoch: 5}
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
		// A joiner that has not caught up may lack acknowledged updates:
		// it never heads a chain alone, nor is it a keeper.
		{"joiner's predecessor dead", []member{"S", "D", "S~"}, []uint64{1, 3}},
		{"joiner dead", []member{"S", "S", "D~"}, []uint64{1, 2}},
		{"joiner fenced (restarted): leaves", []member{"S", "F10~"}, []uint64{1}},
		{"only the joiner alive: wait for the holder", []member{"D", "S~"}, nil},
		{"holder fenced: stays for the joiner to catch up from", []member{"F10", "S~"}, nil},
		{"holders dead and fenced: the fenced one stays", []member{"D", "F10", "S~"}, []uint64{2, 3}},
		{"all fenced: the joiner is no keeper", []member{"F815", "F900~"}, []uint64{1}},
		{"all fenced, the holder unverified: wait", []member{"F815u", "F900~"}, nil},
		{"holder without the replica, joiner serving: wait", []member{"-", "S~"}, nil},
		{"bad blocks on holder and joiner: no combining", []member{"S815b2", "S815b1~"}, nil},
	}
	const epoch = 5
	for _, tt := range tests {
		ch := meta.Chunk{Handle: 7, Epoch: epoch}
		live := map[uint64]Liveness{}
		ev := map[uint64]map[uint64]Evidence{}
		for i, m := range tt.members {
			id := uint64(i + 1)
			ch.Chain = append(ch.Chain, id)
			if s, ok := strings.CutSuffix(string(m), "~"); ok {
				m = member(s)
				ch.Syncing = append(ch.Syncing, id)
			}
			e, alive, reported, has := m.evidence(epoch)
			live[id] = Dead
			if alive {
				live[id] = Alive
			}
			if reported {
				ev[id] = map[uint64]Evidence{}
				if has {
					ev[id][7] = e
				}
			}
		}
		got := PlanRemovals(RemovalInput{Chunks: []meta.Chunk{ch}, Live: live, Evidence: ev,
			Missing: func(uint64, uint64) bool { return true }})
		switch {
		case tt.want == nil && len(got) != 0:
			t.Errorf("%s: PlanRemovals = %v, want no change", tt.name, got)
		case tt.want != nil && (len(got) != 1 || got[0].Handle != 7 || got[0].Epoch != epoch || !slices.Equal(got[0].Chain, tt.want)):
			t.Errorf("%s: PlanRemovals = %v, want chain %v", tt.name, got, tt.want)
		}
	}
}

// TestPlanRemovalsMissing: a member whose inventory lacks the chunk
// leaves only once Missing says it surely does not hold it (this leader's
// learning period is over and the lack has lasted); until then it may be
// creating the replica and is kept.
func TestPlanRemovalsMissing(t *testing.T) {
	ch := meta.Chunk{Handle: 7, Epoch: 5, Chain: []uint64{1, 2}}
	live := map[uint64]Liveness{1: Alive, 2: Alive}
	ev := map[uint64]map[uint64]Evidence{1: {}, 2: {7: {Epoch: 5, Verified: true}}}
	tests := []struct {
		name    string
		missing func(server, handle uint64) bool
		want    []uint64 // nil: no change
	}{
		{"no rule: kept", nil, nil},
		{"unsettled: kept", func(uint64, uint64) bool { return false }, nil},
		{"settled: dropped", func(id, h uint64) bool { return id == 1 && h == 7 }, []uint64{2}},
		{"settled for another chunk only: kept", func(id, h uint64) bool { return id == 1 && h == 8 }, nil},
	}
	for _, tt := range tests {
		got := PlanRemovals(RemovalInput{Chunks: []meta.Chunk{ch}, Live: live, Evidence: ev, Missing: tt.missing})
		switch {
		case tt.want == nil && len(got) != 0:
			t.Errorf("%s: PlanRemovals = %v, want no change", tt.name, got)
		case tt.want != nil && (len(got) != 1 || !slices.Equal(got[0].Chain, tt.want)):
			t.Errorf("%s: PlanRemovals = %v, want chain %v", tt.name, got, tt.want)
		}
	}
}

// TestPlanRemovalsFresh: replicas come into being with their chunk's first
// update, so a member that lacks the chunk but vouched that it never held
// it is kept (it holds an empty replica in all but name); one that cannot
// vouch (it restarted since the allocation: it may have lost updates
// another member holds) leaves once Missing; and a chunk no write reached
// loses its dead members while a fresh member proves it holds nothing.
func TestPlanRemovalsFresh(t *testing.T) {
	settled := func(uint64, uint64) bool { return true }
	freshOn := func(ids ...uint64) func(uint64, uint64) bool {
		return func(id, _ uint64) bool { return slices.Contains(ids, id) }
	}
	held := Evidence{Epoch: 5, Verified: true}
	tests := []struct {
		name  string
		live  map[uint64]Liveness
		ev    map[uint64]map[uint64]Evidence
		fresh func(uint64, uint64) bool
		want  []uint64 // nil: no change
	}{
		{"fresh member beside a holder: kept",
			map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive}, map[uint64]map[uint64]Evidence{1: {7: held}, 2: {}, 3: {}},
			freshOn(2, 3), nil},
		{"lost (cannot vouch) beside a holder: dropped",
			map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive}, map[uint64]map[uint64]Evidence{1: {7: held}, 2: {}, 3: {}},
			freshOn(3), []uint64{1, 3}},
		{"nothing written, a member dead: dropped, the fresh ones kept",
			map[uint64]Liveness{1: Alive, 2: Dead, 3: Alive}, map[uint64]map[uint64]Evidence{1: {}, 3: {}},
			freshOn(1, 3), []uint64{1, 3}},
		{"nothing written, a member dead, nobody vouches: wait for it",
			map[uint64]Liveness{1: Alive, 2: Dead, 3: Alive}, map[uint64]map[uint64]Evidence{1: {}, 3: {}},
			nil, nil},
		{"nothing written, the head cannot vouch: dropped",
			map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive}, map[uint64]map[uint64]Evidence{1: {}, 2: {}, 3: {}},
			freshOn(2, 3), []uint64{2, 3}},
	}
	ch := meta.Chunk{Handle: 7, Epoch: 5, Chain: []uint64{1, 2, 3}}
	for _, tt := range tests {
		got := PlanRemovals(RemovalInput{Chunks: []meta.Chunk{ch}, Live: tt.live, Evidence: tt.ev, Missing: settled, Fresh: tt.fresh})
		switch {
		case tt.want == nil && len(got) != 0:
			t.Errorf("%s: PlanRemovals = %v, want no change", tt.name, got)
		case tt.want != nil && (len(got) != 1 || !slices.Equal(got[0].Chain, tt.want)):
			t.Errorf("%s: PlanRemovals = %v, want chain %v", tt.name, got, tt.want)
		}
	}
}

// TestPlanCreates: the master creates the replicas of a chunk itself only
// when no write did, long after its allocation: every member alive and
// lacking it past the grace, no live server holding it, and every member
// or none able to vouch that it never held one.
func TestPlanCreates(t *testing.T) {
	ch := meta.Chunk{Handle: 7, Epoch: 1, Chain: []uint64{1, 2, 3}, ChunkSize: 1 << 20}
	allAlive := map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive, 4: Alive}
	empty := map[uint64]map[uint64]uint64{1: {}, 2: {}, 3: {}, 4: {}}
	settled := func(uint64, uint64) bool { return true }
	freshOn := func(ids ...uint64) func(uint64, uint64) bool {
		return func(id, _ uint64) bool { return slices.Contains(ids, id) }
	}
	tests := []struct {
		name    string
		live    map[uint64]Liveness
		inv     map[uint64]map[uint64]uint64
		lacking func(uint64, uint64) bool
		fresh   func(uint64, uint64) bool
		want    bool
	}{
		{"every member fresh", allAlive, empty, settled, freshOn(1, 2, 3), true},
		{"no member can vouch (a crash of all before the first sync)", allAlive, empty, settled, nil, true},
		{"mixed: left to PlanRemovals", allAlive, empty, settled, freshOn(2, 3), false},
		{"within the grace: a first write may come", allAlive, empty, func(uint64, uint64) bool { return false }, nil, false},
		{"a member holds it", allAlive, map[uint64]map[uint64]uint64{1: {7: 1}, 2: {}, 3: {}}, settled, nil, false},
		{"a non-member holds it: wait", allAlive, map[uint64]map[uint64]uint64{1: {}, 2: {}, 3: {}, 4: {7: 1}}, settled, nil, false},
		{"a member dead: wait", map[uint64]Liveness{1: Alive, 2: Dead, 3: Alive}, empty, settled, nil, false},
		{"a dead non-member's replica does not count", map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive, 4: Dead},
			map[uint64]map[uint64]uint64{1: {}, 2: {}, 3: {}, 4: {7: 1}}, settled, nil, true},
	}
	for _, tt := range tests {
		got := PlanCreates(CreateInput{Chunks: []meta.Chunk{ch}, Live: tt.live, Inventory: tt.inv, Lacking: tt.lacking, Fresh: tt.fresh})
		if (len(got) == 1) != tt.want || (tt.want && got[0].Handle != 7) {
			t.Errorf("%s: PlanCreates = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPlanRepairs(t *testing.T) {
	servers := []meta.Server{
		{ID: 1, Labels: map[string]string{"zone": "a"}}, {ID: 2, Labels: map[string]string{"zone": "b"}},
		{ID: 3, Labels: map[string]string{"zone": "a"}}, {ID: 4, Labels: map[string]string{"zone": "c"}},
		{ID: 5}, {ID: 6},
	}
	allAlive := map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive, 4: Alive, 5: Alive, 6: Alive}
	free := map[uint64]int64{1: 10, 2: 10, 3: 90, 4: 50, 5: 60, 6: 5}
	ch := func(h uint64, repl int, chain ...uint64) meta.Chunk {
		return meta.Chunk{Handle: h, Epoch: 2, Chain: chain, Replication: repl, ChunkSize: 1}
	}
	type pick struct{ handle, target uint64 }
	tests := []struct {
		name   string
		chunks []meta.Chunk
		live   map[uint64]Liveness
		inv    map[uint64]map[uint64]uint64
		busy   map[uint64]bool
		bad    map[uint64]map[uint64]bool
		slots  int
		want   []pick
		// noReplicas: the members report no replica (unless inv says so);
		// otherwise each reports its chunks.
		noReplicas bool
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
		{name: "a syncing member catches up first", chunks: []meta.Chunk{syncing(ch(1, 3, 1, 2), 2), ch(2, 3, 1, 2)}, slots: 4,
			want: []pick{{2, 5}}},
		{name: "member not alive: wait", chunks: []meta.Chunk{ch(1, 3, 1, 2)}, slots: 4,
			live: map[uint64]Liveness{1: Alive, 2: Unknown, 3: Alive, 4: Alive}},
		{name: "no live spare", chunks: []meta.Chunk{ch(1, 3, 1, 2)}, slots: 4,
			live: map[uint64]Liveness{1: Alive, 2: Alive, 3: Dead}},
		{name: "spread over one round", chunks: []meta.Chunk{ch(1, 2, 4), ch(2, 2, 4)}, slots: 4,
			want: []pick{{1, 3}, {2, 3}}}, // 3 (90) stays ahead of 5 (60) after one chunk of size 1
		{name: "tail holds no replica yet: no source, wait for the first write", chunks: []meta.Chunk{ch(1, 3, 1, 2)}, slots: 4,
			noReplicas: true},
		{name: "head holds one, tail not: wait", chunks: []meta.Chunk{ch(1, 3, 1, 2)}, slots: 4,
			noReplicas: true, inv: map[uint64]map[uint64]uint64{1: {1: 2}}},
		{name: "tail holds one: repaired", chunks: []meta.Chunk{ch(1, 3, 1, 2)}, slots: 4,
			noReplicas: true, inv: map[uint64]map[uint64]uint64{2: {1: 2}}, want: []pick{{1, 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live := tt.live
			if live == nil {
				live = allAlive
			}
			inv := map[uint64]map[uint64]uint64{}
			add := func(id, h, epoch uint64) {
				if inv[id] == nil {
					inv[id] = map[uint64]uint64{}
				}
				inv[id][h] = epoch
			}
			if !tt.noReplicas {
				for _, c := range tt.chunks {
					for _, id := range c.Chain {
						add(id, c.Handle, c.Epoch)
					}
				}
			}
			for id, hs := range tt.inv {
				for h, e := range hs {
					add(id, h, e)
				}
			}
			plans := PlanRepairs(RepairInput{Chunks: tt.chunks, Servers: servers, Live: live, Free: free,
				Inventory: inv, Busy: tt.busy, Bad: tt.bad, Slots: tt.slots, DomainKey: DefaultDomainKey})
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

// TestLostBlocks: a block is lost only when every live server holding
// the chunk (member or not) reports it bad.
func TestLostBlocks(t *testing.T) {
	bad := map[uint64]map[uint64]Evidence{
		1: {7: {Bad: []int64{9, 1, 4}}},
		2: {7: {Bad: []int64{4, 9}}},
		3: {7: {Bad: []int64{9}}},
		4: {8: {Bad: []int64{2}}}, // holds another chunk only
	}
	oneClean := map[uint64]map[uint64]Evidence{1: bad[1], 2: bad[2], 3: {7: {}}}
	all := map[uint64]bool{1: true, 2: true, 3: true, 4: true}
	tests := []struct {
		name string
		live map[uint64]bool
		ev   map[uint64]map[uint64]Evidence
		want []int64
	}{
		{"bad on every live holder, sorted", all, bad, []int64{9}},
		{"a dead holder does not count", map[uint64]bool{1: true, 2: true}, bad, []int64{4, 9}},
		{"one live holder: its bad blocks", map[uint64]bool{1: true}, bad, []int64{1, 4, 9}},
		{"one clean holder", all, oneClean, nil},
		{"no live holder", map[uint64]bool{4: true}, bad, nil},
	}
	for _, tt := range tests {
		if got := LostBlocks(7, tt.live, tt.ev); !slices.Equal(got, tt.want) {
			t.Errorf("%s: lost %v, want %v", tt.name, got, tt.want)
		}
	}
	if !slices.Equal(bad[1][7].Bad, []int64{9, 1, 4}) {
		t.Errorf("LostBlocks modified its argument: %v", bad[1][7].Bad)
	}
}

// TestPlanHeals: a sole member's bad blocks are restored from the other
// live servers holding the chunk where they verify, exact state first.
func TestPlanHeals(t *testing.T) {
	live := map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive, 4: Dead}
	sole := meta.Chunk{Handle: 7, Epoch: 6, Chain: []uint64{1}}
	k := Evidence{Epoch: 6, AppliedEpoch: 5, AppliedSeq: 815, Bad: []int64{3, 4}, Verified: true}
	tests := []struct {
		name    string
		chunk   meta.Chunk
		others  map[uint64]Evidence
		busy    bool
		sources []uint64 // nil: no plan
		hold    bool     // held back from repair without a plan
	}{
		{"exact state first, then most durable", sole, map[uint64]Evidence{
			2: {AppliedEpoch: 5, AppliedSeq: 816, Verified: true},
			3: {AppliedEpoch: 5, AppliedSeq: 815, Bad: []int64{4}, Verified: true}}, false, []uint64{3, 2}, false},
		{"a source bad in every wanted block is useless", sole, map[uint64]Evidence{
			2: {AppliedEpoch: 5, AppliedSeq: 815, Bad: []int64{3, 4}, Verified: true}}, false, nil, false},
		{"a dead server is no source", sole, map[uint64]Evidence{
			4: {AppliedEpoch: 5, AppliedSeq: 815, Verified: true}}, false, nil, false},
		{"an unverified holder: no plan, no repair until its evidence", sole, map[uint64]Evidence{
			2: {AppliedEpoch: 5, AppliedSeq: 815}, 3: {AppliedEpoch: 5, AppliedSeq: 815, Verified: true}}, false, nil, true},
		{"busy chunk waits", sole, map[uint64]Evidence{2: {Verified: true}}, true, nil, false},
		{"a longer chain is not healed in place", meta.Chunk{Handle: 7, Epoch: 6, Chain: []uint64{1, 2}},
			map[uint64]Evidence{2: {Verified: true}, 3: {Verified: true}}, false, nil, false},
	}
	for _, tt := range tests {
		ev := map[uint64]map[uint64]Evidence{1: {7: k}}
		for id, e := range tt.others {
			ev[id] = map[uint64]Evidence{7: e}
		}
		got, hold := PlanHeals([]meta.Chunk{tt.chunk}, live, ev, map[uint64]bool{7: tt.busy})
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

func syncing(ch meta.Chunk, ids ...uint64) meta.Chunk {
	ch.Syncing = ids
	return ch
}

// TestPlanCaughtUp: a syncing member is confirmed only by a report of the
// chunk at its current epoch, neither fenced nor catching up.
func TestPlanCaughtUp(t *testing.T) {
	chunks := []meta.Chunk{
		{Handle: 1, Epoch: 4, Chain: []uint64{1, 2, 3}, Syncing: []uint64{2, 3}},
		{Handle: 2, Epoch: 6, Chain: []uint64{1, 2}, Syncing: []uint64{2}},
		{Handle: 3, Epoch: 2, Chain: []uint64{1, 2}},
	}
	ev := map[uint64]map[uint64]Evidence{
		2: {1: {Epoch: 4}, 2: {Epoch: 5}, 3: {Epoch: 2}}, // chunk 2: an older epoch
		3: {1: {Epoch: 4, CatchingUp: true}},
	}
	want := []meta.CaughtUpMember{{Handle: 1, Epoch: 4, Server: 2}}
	if got := PlanCaughtUp(chunks, ev); !slices.Equal(got, want) {
		t.Fatalf("PlanCaughtUp = %v, want %v", got, want)
	}
	ev[3][1] = Evidence{Epoch: 4, Fenced: true}
	ev[2][2] = Evidence{Epoch: 6}
	want = []meta.CaughtUpMember{{Handle: 1, Epoch: 4, Server: 2}, {Handle: 2, Epoch: 6, Server: 2}}
	if got := PlanCaughtUp(chunks, ev); !slices.Equal(got, want) {
		t.Fatalf("PlanCaughtUp = %v, want %v (a fenced member is not caught up)", got, want)
	}
}
