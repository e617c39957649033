package meta

import (
	"maps"
	"slices"
)

// SetChain installs a new chain for a chunk (a dead or bad member removed,
// a repaired replica added at the tail). Epoch must be exactly the chunk's
// epoch + 1: the leader computes the chain from what it read, and the
// compare-and-set turns a decision based on an outdated read into
// ErrEpochMismatch instead of a lost update.
type SetChain struct {
	Handle uint64
	Epoch  uint64
	Chain  []ServerID
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
	ch.Epoch, ch.Chain = c.Epoch, slices.Clone(c.Chain)
	return Result{Chunk: ChunkRef{Handle: ch.Handle, Epoch: ch.Epoch, Chain: slices.Clone(ch.Chain)}}
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
