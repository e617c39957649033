package decide

import (
	"slices"

	"github.com/catena-io/catena/internal/meta"
)

// TrimInput is what PlanTrims looks at.
type TrimInput struct {
	Chunks   []meta.Chunk
	Servers  []meta.Server
	Live     map[uint64]Liveness
	Evidence map[uint64]map[uint64]Evidence
	// Busy: chunks with a repair in flight, left alone.
	Busy map[uint64]bool
	// Prefer maps a chunk to the member to take out first after draining
	// ones (the giver of a rebalancing move: PlanRebalance).
	Prefer    map[uint64]uint64
	DomainKey string
}

// PlanTrims shortens the chains longer than their chunk's replication
// factor (catena setrep lowered it, or a draining server's replacement
// joined: PlanRepairs, or a rebalancing move's did) to that factor, draining
// members out first, then a move's giver (Prefer). Only a quiet, healthy
// chain is trimmed: no repair in flight, no syncing member, every member
// alive and reporting the chunk at its current epoch, unfenced — so every
// member left holds every acknowledged update (chain replication: each
// member holds at least what its successors do), and dead or fenced
// members are PlanRemovals' business first. The members taken out are,
// one at a time, those sharing a failure domain with another member
// first, then the last in the chain (the head stays when it can, so
// writers keep their head).
func PlanTrims(in TrimInput) []ChainChange {
	domain := make(map[uint64]string, len(in.Servers))
	draining := map[uint64]bool{}
	for _, sv := range in.Servers {
		domain[sv.ID] = sv.Labels[in.DomainKey]
		draining[sv.ID] = sv.Draining
	}
	var out []ChainChange
	for _, ch := range in.Chunks {
		if len(ch.Chain) <= ch.Replication || ch.Replication < 1 || in.Busy[ch.Handle] || len(ch.Syncing) > 0 {
			continue
		}
		healthy := true
		for _, id := range ch.Chain {
			ev, ok := in.Evidence[id][ch.Handle]
			if in.Live[id] != Alive || !ok || ev.Fenced || ev.CatchingUp || ev.Epoch != ch.Epoch {
				healthy = false
				break
			}
		}
		if !healthy {
			continue
		}
		chain := slices.Clone(ch.Chain)
		for len(chain) > ch.Replication {
			i := slices.IndexFunc(chain, func(id uint64) bool { return draining[id] })
			if p, ok := in.Prefer[ch.Handle]; i < 0 && ok {
				i = slices.Index(chain, p)
			}
			if i < 0 {
				i = surplus(chain, domain)
			}
			chain = slices.Delete(chain, i, i+1)
		}
		out = append(out, ChainChange{Handle: ch.Handle, Epoch: ch.Epoch, Chain: chain})
	}
	return out
}

// surplus is the index of the member of chain to take out first: the
// last one whose failure domain another member shares, else the last.
func surplus(chain []uint64, domain map[uint64]string) int {
	count := map[string]int{}
	for _, id := range chain {
		count[domain[id]]++
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if d := domain[chain[i]]; d != "" && count[d] > 1 {
			return i
		}
	}
	return len(chain) - 1
}
