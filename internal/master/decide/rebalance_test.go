package decide

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/catena-io/catena/internal/meta"
)

// rebalanceCluster: n servers of equal capacity, the first full ones
// holding chunks of replication 3 with sizes from r.
func rebalanceCluster(r *rand.Rand, servers, full, chunks int) RebalanceInput {
	in := RebalanceInput{Live: map[uint64]Liveness{}, Capacity: map[uint64]int64{}, Size: map[uint64]int64{}, Max: 3, DomainKey: "host"}
	for i := 1; i <= servers; i++ {
		in.Servers = append(in.Servers, meta.Server{ID: uint64(i), Labels: map[string]string{"host": fmt.Sprint("h", i)}})
		in.Live[uint64(i)] = Alive
		in.Capacity[uint64(i)] = 10 << 30
	}
	for h := uint64(1); h <= uint64(chunks); h++ {
		perm := r.Perm(full)
		in.Chunks = append(in.Chunks, meta.Chunk{Handle: h, Epoch: 1, Replication: 3,
			Chain: []uint64{uint64(perm[0] + 1), uint64(perm[1] + 1), uint64(perm[2] + 1)}})
		in.Size[h] = int64(1+r.IntN(64)) << 20
	}
	return in
}

// apply carries the moves out as the master does: To joins, From leaves.
func applyMoves(t *testing.T, in *RebalanceInput, moves []Move) {
	t.Helper()
	for _, m := range moves {
		i := slices.IndexFunc(in.Chunks, func(c meta.Chunk) bool { return c.Handle == m.Handle })
		ch := &in.Chunks[i]
		if ch.Epoch != m.Epoch || !slices.Contains(ch.Chain, m.From) || slices.Contains(ch.Chain, m.To) {
			t.Fatalf("move %+v of chunk %+v", m, *ch)
		}
		ch.Chain = slices.Clone(ch.Chain)
		ch.Chain[slices.Index(ch.Chain, m.From)] = m.To
		ch.Epoch += 2
	}
}

// TestPlanRebalance: two empty servers added to three full ones receive
// chunks until every server is within 10% of the mean, in a bounded
// number of rounds, each chain keeping three distinct members; a
// balanced cluster plans nothing.
func TestPlanRebalance(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 1))
		in := rebalanceCluster(r, 5, 3, 200)
		rounds := 0
		for ; rounds < 1000; rounds++ {
			moves := PlanRebalance(in)
			if len(moves) == 0 {
				break
			}
			if len(moves) > in.Max {
				t.Fatalf("seed %d: %d moves, max %d", seed, len(moves), in.Max)
			}
			if again := PlanRebalance(in); !slices.Equal(again, moves) {
				t.Fatalf("seed %d: not deterministic: %v then %v", seed, moves, again)
			}
			applyMoves(t, &in, moves)
		}
		b := Measure(in)
		if !b.Balanced {
			t.Fatalf("seed %d: after %d rounds, unbalanced: mean %.4g, fractions %v", seed, rounds, b.Mean, b.Fraction)
		}
		for id, f := range b.Fraction {
			if f < b.Mean*0.9 || f > b.Mean*1.1 {
				t.Fatalf("seed %d: server %d at %.4g, mean %.4g", seed, id, f, b.Mean)
			}
		}
		for _, ch := range in.Chunks {
			if c := slices.Compact(slices.Sorted(slices.Values(ch.Chain))); len(c) != 3 {
				t.Fatalf("seed %d: chunk %d chain %v", seed, ch.Handle, ch.Chain)
			}
		}
	}
}

// TestPlanRebalanceLeavesAlone: dead, draining and failed targets get
// nothing; chunks with a repair or move in flight, a joining member, a
// dead member or a length off their factor do not move; a move never
// puts two members in one failure domain; a member leaving in a move no
// longer counts on its server.
func TestPlanRebalanceLeavesAlone(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	base := func() RebalanceInput { return rebalanceCluster(r, 5, 3, 60) }

	in := base()
	in.Live[4] = Dead
	in.Servers[4].Draining = true
	if moves := PlanRebalance(in); len(moves) != 0 {
		t.Fatalf("with 4 dead and 5 draining: %v", moves)
	}

	in = base()
	in.Busy, in.Moving, in.Bad = map[uint64]bool{}, map[uint64]uint64{}, map[uint64]map[uint64]bool{}
	for i := range in.Chunks {
		ch := &in.Chunks[i]
		switch i % 5 {
		case 0:
			in.Busy[ch.Handle] = true
		case 1:
			in.Moving[ch.Handle] = ch.Chain[0]
		case 2:
			ch.Syncing = []uint64{ch.Chain[2]}
		case 3:
			ch.Replication = 2
		case 4:
			in.Bad[ch.Handle] = map[uint64]bool{4: true, 5: true}
		}
	}
	in.Max = 100
	if moves := PlanRebalance(in); len(moves) != 0 {
		t.Fatalf("nothing movable, planned %v", moves)
	}

	// Server 4 shares host h1 with server 1: a chunk on 2 and 3 may go to
	// it, one on 1 only in place of 1.
	in = base()
	in.Servers[3].Labels["host"] = "h1"
	in.Max = 100
	to4 := 0
	for _, m := range PlanRebalance(in) {
		ch := in.Chunks[slices.IndexFunc(in.Chunks, func(c meta.Chunk) bool { return c.Handle == m.Handle })]
		if m.To == 4 && slices.Contains(ch.Chain, 1) && m.From != 1 {
			t.Fatalf("move %+v puts hosts h1 twice in chain %v", m, ch.Chain)
		}
		if m.To == 4 {
			to4++
		}
	}
	if to4 == 0 {
		t.Fatal("nothing moves to server 4")
	}

	// A move under way: its leaving member's bytes count on the receiver
	// only.
	in = base()
	ch := in.Chunks[0]
	in.Moving = map[uint64]uint64{ch.Handle: ch.Chain[0]}
	ch.Chain = append(slices.Clone(ch.Chain), 4)
	in.Chunks[0] = ch
	b := Measure(in)
	var want int64
	for _, c := range in.Chunks {
		if slices.Contains(c.Chain, ch.Chain[0]) && c.Handle != ch.Handle {
			want += in.Size[c.Handle]
		}
	}
	if b.Load[ch.Chain[0]] != want || b.Load[4] != in.Size[ch.Handle] {
		t.Fatalf("loads %v: want %d on %d, %d on 4", b.Load, want, ch.Chain[0], in.Size[ch.Handle])
	}
}
