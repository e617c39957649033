package decide

import (
	"cmp"
	"fmt"
	"slices"
)

// DefaultDomainKey is the label naming a server's failure domain.
const DefaultDomainKey = "zone"

// Candidate is a live chunkserver offered to Place.
type Candidate struct {
	ID     uint64
	Free   int64
	Labels map[string]string
}

// Place chooses n distinct servers for a new chain, head first. It prefers
// the most free space (ties: lower id), and a server whose failure domain
// (the label domainKey) is not used yet in the chain; it reuses a domain
// only when no server of a fresh domain is left. A server without the label
// is a domain of its own. Fewer than n candidates: a *ShortageError
// (ErrNoChunkservers).
func Place(cands []Candidate, n int, domainKey string) ([]uint64, error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: place %d replicas", ErrInvalid, n)
	}
	if len(cands) < n {
		return nil, &ShortageError{Need: n, Alive: len(cands)}
	}
	sorted := slices.Clone(cands)
	slices.SortFunc(sorted, func(a, b Candidate) int {
		if c := cmp.Compare(b.Free, a.Free); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	chosen := make([]uint64, 0, n)
	taken := make([]bool, len(sorted))
	usedDomains := map[string]bool{}
	for len(chosen) < n {
		pick := -1
		for i, c := range sorted {
			if taken[i] {
				continue
			}
			if pick < 0 {
				pick = i // best fallback: most free, domain reused
			}
			if d, ok := c.Labels[domainKey]; !ok || d == "" || !usedDomains[d] {
				pick = i
				break
			}
		}
		taken[pick] = true
		if d := sorted[pick].Labels[domainKey]; d != "" {
			usedDomains[d] = true
		}
		chosen = append(chosen, sorted[pick].ID)
	}
	return chosen, nil
}

// RotateHead turns a new chain k places (k mod its length) so that its
// k-th member leads: the master passes a count of its placements, so the
// heads of successive chains go round their members instead of all
// falling to the one with the most free space (a head carries every
// write's first hop). The members and their failure domains are Place's.
func RotateHead(chain []uint64, k uint64) []uint64 {
	if len(chain) == 0 {
		return chain
	}
	i := int(k % uint64(len(chain)))
	return append(slices.Clone(chain[i:]), chain[:i]...)
}
