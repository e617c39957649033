package decide

import (
	"cmp"
	"slices"

	"github.com/catena-io/catena/internal/meta"
)

// DefaultRebalanceTolerance: the cluster is balanced when every server's
// used fraction is within 10% of the mean fraction — or within one
// percentage point of it (RebalanceMinSpread): moving data to even out
// less than 1% of a disk costs more than it gains.
const (
	DefaultRebalanceTolerance = 0.10
	RebalanceMinSpread        = 0.01
)

// RebalanceInput is what PlanRebalance looks at.
type RebalanceInput struct {
	Chunks  []meta.Chunk
	Servers []meta.Server
	Live    map[uint64]Liveness
	// Capacity is each server's capacity in bytes (its heartbeat).
	Capacity map[uint64]int64
	// Size is the bytes a replica of each chunk holds (the largest its
	// members report); a chunk with none counts as empty.
	Size map[uint64]int64
	// Moving maps the chunks whose move is under way to the member that
	// leaves once its replacement caught up: it no longer counts there.
	Moving map[uint64]uint64
	// Busy: chunks with a repair in flight; Bad: servers a repair of a
	// chunk failed on.
	Busy      map[uint64]bool
	Bad       map[uint64]map[uint64]bool
	DomainKey string
	// Max is how many moves to plan; Tolerance the fraction of the mean
	// (0: DefaultRebalanceTolerance).
	Max       int
	Tolerance float64
}

// Move takes the replica of Handle on From to To: To joins the chain
// (a repair, RepairPlan), then From leaves it once To caught up (a
// trim, PlanTrims with From preferred).
type Move struct {
	Handle uint64
	Epoch  uint64
	From   uint64
	To     uint64
	Bytes  int64
}

// Balance is how full each eligible server is, as PlanRebalance counts.
type Balance struct {
	// Load is the bytes of the replicas each server is to hold (members
	// leaving in a move no longer count); Fraction is Load over capacity.
	Load     map[uint64]int64
	Capacity map[uint64]int64
	Fraction map[uint64]float64
	Mean     float64
	// Balanced: every fraction is within Tolerance of Mean (or
	// RebalanceMinSpread).
	Balanced bool
}

// Measure computes the balance of the alive, non-draining servers with a
// known capacity.
func Measure(in RebalanceInput) Balance {
	tol := cmp.Or(in.Tolerance, DefaultRebalanceTolerance)
	b := Balance{Load: map[uint64]int64{}, Capacity: map[uint64]int64{}, Fraction: map[uint64]float64{}}
	for _, sv := range in.Servers {
		if in.Live[sv.ID] == Alive && !sv.Draining && in.Capacity[sv.ID] > 0 {
			b.Load[sv.ID], b.Capacity[sv.ID] = 0, in.Capacity[sv.ID]
		}
	}
	if len(b.Load) == 0 {
		b.Balanced = true
		return b
	}
	for _, ch := range in.Chunks {
		for _, id := range ch.Chain {
			if _, ok := b.Load[id]; ok && !(in.Moving != nil && in.Moving[ch.Handle] == id) {
				b.Load[id] += in.Size[ch.Handle]
			}
		}
	}
	for id, l := range b.Load {
		b.Fraction[id] = float64(l) / float64(in.Capacity[id])
		b.Mean += b.Fraction[id]
	}
	b.Mean /= float64(len(b.Fraction))
	b.Balanced = within(b, tol)
	return b
}

// PlanRebalance plans up to Max moves from the fullest servers to the
// emptiest while some server's used fraction is more than Tolerance away
// from the mean. A move is planned only if it leaves the receiving
// server emptier than the giving one was (the sum of squared fractions
// falls with each move, so planning converges and never moves a chunk
// back and forth), only of a quiet chain at its factor (no repair or
// move in flight, no joining member, every member alive), never to a
// chain member, a draining or dead server, or one a repair of the chunk
// failed on, and never so that two members share a failure domain that
// did not before. Deterministic: the same input plans the same moves.
func PlanRebalance(in RebalanceInput) []Move {
	b := Measure(in)
	if b.Balanced || in.Max <= 0 {
		return nil
	}
	domain := make(map[uint64]string, len(in.Servers))
	for _, sv := range in.Servers {
		domain[sv.ID] = sv.Labels[in.DomainKey]
	}
	// The chunks each server could give, largest first.
	give := map[uint64][]meta.Chunk{}
	for _, ch := range in.Chunks {
		if len(ch.Chain) != ch.Replication || len(ch.Syncing) > 0 || in.Busy[ch.Handle] || in.Size[ch.Handle] <= 0 {
			continue
		}
		if _, moving := in.Moving[ch.Handle]; moving {
			continue
		}
		if slices.ContainsFunc(ch.Chain, func(id uint64) bool { return in.Live[id] != Alive }) {
			continue
		}
		for _, id := range ch.Chain {
			if _, ok := b.Load[id]; ok {
				give[id] = append(give[id], ch)
			}
		}
	}
	for _, list := range give {
		slices.SortFunc(list, func(x, y meta.Chunk) int {
			return cmp.Or(cmp.Compare(in.Size[y.Handle], in.Size[x.Handle]), cmp.Compare(x.Handle, y.Handle))
		})
	}
	ids := make([]uint64, 0, len(b.Load))
	for id := range b.Load {
		ids = append(ids, id)
	}
	moved := map[uint64]bool{}
	var out []Move
	for len(out) < in.Max {
		slices.SortFunc(ids, func(x, y uint64) int {
			return cmp.Or(cmp.Compare(b.Fraction[x], b.Fraction[y]), cmp.Compare(x, y))
		})
		m, ok := nextMove(in, b, ids, give, domain, moved)
		if !ok {
			break
		}
		out = append(out, m)
		moved[m.Handle] = true
		b.Load[m.From] -= m.Bytes
		b.Load[m.To] += m.Bytes
		b.Fraction[m.From] = float64(b.Load[m.From]) / float64(in.Capacity[m.From])
		b.Fraction[m.To] = float64(b.Load[m.To]) / float64(in.Capacity[m.To])
		if within(b, cmp.Or(in.Tolerance, DefaultRebalanceTolerance)) {
			break
		}
	}
	return out
}

// within reports whether every fraction is within tol of the mean (or
// RebalanceMinSpread).
func within(b Balance, tol float64) bool {
	d := max(b.Mean*tol, RebalanceMinSpread)
	for _, f := range b.Fraction {
		if f > b.Mean+d || f < b.Mean-d {
			return false
		}
	}
	return true
}

// nextMove finds the best move: from the fullest server that has one to
// the emptiest that can take it. ids is sorted emptiest first.
func nextMove(in RebalanceInput, b Balance, ids []uint64, give map[uint64][]meta.Chunk, domain map[uint64]string, moved map[uint64]bool) (Move, bool) {
	for i := len(ids) - 1; i > 0; i-- {
		from := ids[i]
		for _, to := range ids[:i] {
			if b.Fraction[to] >= b.Fraction[from] {
				break
			}
			for _, ch := range give[from] {
				size := in.Size[ch.Handle]
				if moved[ch.Handle] || slices.Contains(ch.Chain, to) || in.Bad[ch.Handle][to] {
					continue
				}
				// The receiver must end emptier than the giver was.
				if float64(b.Load[to]+size)/float64(in.Capacity[to]) >= b.Fraction[from] {
					continue
				}
				if !keepsDomains(ch.Chain, from, to, domain) {
					continue
				}
				return Move{Handle: ch.Handle, Epoch: ch.Epoch, From: from, To: to, Bytes: size}, true
			}
		}
	}
	return Move{}, false
}

// keepsDomains reports whether replacing from by to in chain keeps at
// least as many distinct failure domains.
func keepsDomains(chain []uint64, from, to uint64, domain map[uint64]string) bool {
	count := func(c []uint64) int {
		seen := map[string]bool{}
		n := 0
		for _, id := range c {
			d := domain[id]
			if d == "" {
				n++ // unlabelled: a domain of its own
			} else if !seen[d] {
				seen[d] = true
				n++
			}
		}
		return n
	}
	after := slices.Clone(chain)
	after[slices.Index(after, from)] = to
	return count(after) >= count(chain)
}
