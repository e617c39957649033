package decide

import (
	"slices"
	"testing"

	"github.com/catena-io/catena/internal/meta"
)

func TestPlanTrims(t *testing.T) {
	servers := []meta.Server{
		{ID: 1, Labels: zone("a")}, {ID: 2, Labels: zone("b")}, {ID: 3, Labels: zone("a")},
		{ID: 4, Labels: zone("c")}, {ID: 5, Labels: zone("c")},
	}
	live := map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive, 4: Alive, 5: Alive}
	ev := func(epoch uint64, members ...uint64) map[uint64]map[uint64]Evidence {
		out := map[uint64]map[uint64]Evidence{}
		for _, id := range members {
			out[id] = map[uint64]Evidence{7: {Epoch: epoch}}
		}
		return out
	}
	chunk := func(repl int, chain ...uint64) meta.Chunk {
		return meta.Chunk{Handle: 7, Epoch: 4, Chain: chain, Replication: repl}
	}
	for _, c := range []struct {
		name     string
		ch       meta.Chunk
		evidence map[uint64]map[uint64]Evidence
		live     map[uint64]Liveness
		busy     bool
		want     []uint64 // nil: no change
	}{
		{"as long as its factor", chunk(3, 1, 2, 3), ev(4, 1, 2, 3), live, false, nil},
		{"shorter than its factor", chunk(3, 1, 2), ev(4, 1, 2), live, false, nil},
		{"5 to 2: doubled domains go first, the head stays", chunk(2, 1, 2, 3, 4, 5), ev(4, 1, 2, 3, 4, 5), live, false, []uint64{1, 2}},
		{"5 to 3: one of each domain", chunk(3, 1, 2, 3, 4, 5), ev(4, 1, 2, 3, 4, 5), live, false, []uint64{1, 2, 4}},
		{"distinct domains: the last goes", chunk(2, 1, 2, 4), ev(4, 1, 2, 4), live, false, []uint64{1, 2}},
		{"to 1: the head", chunk(1, 2, 4), ev(4, 2, 4), live, false, []uint64{2}},
		{"a member not heard yet", chunk(2, 1, 2, 4), ev(4, 1, 2), live, false, nil},
		{"a member at an old epoch", chunk(2, 1, 2, 4), func() map[uint64]map[uint64]Evidence {
			e := ev(4, 1, 2)
			e[4] = map[uint64]Evidence{7: {Epoch: 3}}
			return e
		}(), live, false, nil},
		{"a fenced member", chunk(2, 1, 2, 4), func() map[uint64]map[uint64]Evidence {
			e := ev(4, 1, 2)
			e[4] = map[uint64]Evidence{7: {Epoch: 4, Fenced: true}}
			return e
		}(), live, false, nil},
		{"a member of unknown liveness", chunk(2, 1, 2, 4), ev(4, 1, 2, 4), map[uint64]Liveness{1: Alive, 2: Alive, 4: Unknown}, false, nil},
		{"a repair in flight", chunk(2, 1, 2, 4), ev(4, 1, 2, 4), live, true, nil},
	} {
		got := PlanTrims(TrimInput{Chunks: []meta.Chunk{c.ch}, Servers: servers, Live: c.live, Evidence: c.evidence,
			Busy: map[uint64]bool{7: c.busy}, DomainKey: DefaultDomainKey})
		switch {
		case c.want == nil && len(got) != 0:
			t.Errorf("%s: planned %+v, want nothing", c.name, got)
		case c.want != nil && (len(got) != 1 || !slices.Equal(got[0].Chain, c.want) || got[0].Epoch != 4 || got[0].Handle != 7):
			t.Errorf("%s: planned %+v, want chain %v at epoch 4", c.name, got, c.want)
		}
	}
	// A syncing member: never trimmed meanwhile.
	ch := chunk(2, 1, 2, 4)
	ch.Syncing = []uint64{4}
	if got := PlanTrims(TrimInput{Chunks: []meta.Chunk{ch}, Servers: servers, Live: live, Evidence: ev(4, 1, 2, 4)}); len(got) != 0 {
		t.Errorf("with a syncing member: planned %+v", got)
	}
}

// TestDrain: a draining member counts for nothing: its chunk gains a
// member elsewhere (never on a draining server), and once the chain is
// longer than the factor the draining member is the one taken out.
func TestDrain(t *testing.T) {
	servers := []meta.Server{
		{ID: 1, Labels: zone("a")}, {ID: 2, Labels: zone("b"), Draining: true}, {ID: 3, Labels: zone("c"), Draining: true},
		{ID: 4, Labels: zone("d")}, {ID: 5, Labels: zone("e")},
	}
	live := map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive, 4: Alive, 5: Alive}
	ch := meta.Chunk{Handle: 7, Epoch: 4, Chain: []uint64{2, 1, 4}, Replication: 3}
	inv := map[uint64]map[uint64]uint64{1: {7: 4}, 2: {7: 4}, 4: {7: 4}}
	plans := PlanRepairs(RepairInput{Chunks: []meta.Chunk{ch}, Servers: servers, Live: live,
		Free: map[uint64]int64{1: 1, 2: 1, 3: 100, 4: 1, 5: 1}, Inventory: inv, Slots: 4, DomainKey: DefaultDomainKey})
	if len(plans) != 1 || plans[0].Target != 5 {
		t.Fatalf("repair of a chain with a draining member: %+v, want one copy to server 5 (3 drains too, however free)", plans)
	}
	// Trimmed only once the copy joined: the draining head goes.
	ev := map[uint64]map[uint64]Evidence{}
	for _, id := range []uint64{1, 2, 4, 5} {
		ev[id] = map[uint64]Evidence{7: {Epoch: 5}}
	}
	if got := PlanTrims(TrimInput{Chunks: []meta.Chunk{ch}, Servers: servers, Live: live, Evidence: ev, DomainKey: DefaultDomainKey}); len(got) != 0 {
		t.Fatalf("trimmed before the copy joined: %+v", got)
	}
	joined := meta.Chunk{Handle: 7, Epoch: 5, Chain: []uint64{2, 1, 4, 5}, Replication: 3}
	got := PlanTrims(TrimInput{Chunks: []meta.Chunk{joined}, Servers: servers, Live: live, Evidence: ev, DomainKey: DefaultDomainKey})
	if len(got) != 1 || !slices.Equal(got[0].Chain, []uint64{1, 4, 5}) {
		t.Fatalf("trim after the copy joined: %+v, want chain [1 4 5]", got)
	}
}
