package meta

import (
	"fmt"
	"maps"
	"slices"
)

// SetChain installs a new chain for a chunk (a dead or bad member removed,
// a repaired replica added at the tail). Epoch must be exactly the chunk's
// epoch + 1: the leader computes the chain from what it read, and the
// compare-and-set turns a decision based on an outdated read into
// ErrEpochMismatch instead of a lost update.
//
// Joined names the members that join through a copy (a repair target):
// they are Syncing until CaughtUp. A member already syncing and still in
// the chain stays so. The head may not be syncing: a chain whose only
// members holding every acknowledged update would all leave is refused
// (ErrInvalid), since its new head would lack them.
type SetChain struct {
	Handle uint64
	Epoch  uint64
	Chain  []ServerID
	Joined []ServerID `json:",omitempty"`
}

func (SetChain) commandType() string { return "setchain" }

func (s *State) setChain(c SetChain) Result {
	ch, ok := s.chunks[c.Handle]
	if !ok {
		return fail(errorf(ErrNotFound, "chunk %d", c.Handle))
	}
	if c.Epoch != ch.Epoch+1 {
		return fail(errorf(ErrEpochMismatch, "chunk %d is at epoch %d, set chain for epoch %d", c.Handle, ch.Epoch, c.Epoch))
	}
	if err := s.checkChain(c.Chain); err != nil {
		return fail(err)
	}
	var syncing []ServerID
	for _, id := range c.Chain {
		if slices.Contains(c.Joined, id) || ch.IsSyncing(id) {
			syncing = append(syncing, id)
		}
	}
	for _, id := range c.Joined {
		if !slices.Contains(c.Chain, id) {
			return fail(errorf(ErrInvalid, "chunk %d: joining server %d is not in the chain", c.Handle, id))
		}
	}
	if err := checkSyncing(c.Chain, syncing); err != nil {
		return fail(errorf(ErrInvalid, "chunk %d: %v", c.Handle, err))
	}
	ch.Epoch, ch.Chain, ch.Syncing = c.Epoch, slices.Clone(c.Chain), syncing
	return Result{Chunk: ChunkRef{Handle: ch.Handle, Epoch: ch.Epoch, Chain: slices.Clone(ch.Chain)}}
}

// checkSyncing: the syncing members are distinct members of chain, and
// its head is not one of them.
func checkSyncing(chain, syncing []ServerID) error {
	seen := map[ServerID]bool{}
	for _, id := range syncing {
		if seen[id] || !slices.Contains(chain, id) {
			return fmt.Errorf("syncing server %d twice or not in chain %v", id, chain)
		}
		seen[id] = true
	}
	if len(chain) > 0 && seen[chain[0]] {
		return fmt.Errorf("head %d of chain %v has not caught up", chain[0], chain)
	}
	return nil
}

// CaughtUp records that members which joined chains through a copy have
// caught up: each reported its replica of Handle at Epoch, neither fenced
// nor catching up, so it holds every acknowledged update. An entry whose
// chunk is gone, has moved past Epoch or does not list the server as
// syncing changes nothing (the batch is built from reports that may be
// outdated by the time it commits).
type CaughtUp struct {
	Members []CaughtUpMember
}

// CaughtUpMember is one entry of CaughtUp.
type CaughtUpMember struct {
	Handle uint64
	Epoch  uint64
	Server ServerID
}

func (CaughtUp) commandType() string { return "caughtup" }

func (s *State) caughtUp(c CaughtUp) Result {
	for _, m := range c.Members {
		ch, ok := s.chunks[m.Handle]
		if !ok || ch.Epoch != m.Epoch {
			continue
		}
		if i := slices.Index(ch.Syncing, m.Server); i >= 0 {
			ch.Syncing = slices.Delete(ch.Syncing, i, i+1)
			if len(ch.Syncing) == 0 {
				ch.Syncing = nil
			}
		}
	}
	return Result{}
}

// fillChunkSizes gives chunks restored from a checkpoint without ChunkSize
// the chunk size of a file naming them (the lowest inode, so the result is
// deterministic).
func fillChunkSizes(s *State) {
	for _, id := range slices.Sorted(maps.Keys(s.inodes)) {
		n := s.inodes[id]
		for _, h := range n.chunks {
			if ch := s.chunks[h]; ch != nil && ch.ChunkSize == 0 {
				ch.ChunkSize = n.chunkSize
			}
		}
	}
}
