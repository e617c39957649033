package meta

import (
	"cmp"
	"maps"
	"math"
	"slices"

	"github.com/catena-io/catena/internal/invariants"
)

// Concatenation (HDFS's concat): a file made of other files' chunks with
// no data moved. The S3 gateway completes a multipart upload with it.
//
// Chunk i of a file covers [i*cs, (i+1)*cs), so a file's chunks can
// follow another's only when that one ends on a chunk boundary: Dst and
// every source but the last must have a size that is a multiple of Dst's
// chunk size, and every file that chunk size (and Dst's replication, the
// chunks' target). The sources' slots move to Dst at the next free index
// and the sources are removed in the same command, so every chunk keeps
// its reference count. A chunk that only the source named moves to a new
// epoch (listed in Result.Fenced, as a snapshot's newly shared chunks
// are): a writer of the source that still holds a capability for it is
// refused once the members hear of it, so no write meant for a removed
// file lands in Dst. A shared chunk is written by nobody and keeps its
// epoch.

// MaxConcatSources bounds Concat's sources (S3's highest part number).
const MaxConcatSources = 10000

// Concat appends the files at Srcs, in order, to the file at Dst by
// moving their chunks, and removes Srcs. It fails with ErrInvalid, and
// changes nothing, unless: Dst and every source are distinct regular
// files with one name each, none held open by a mount session nor a
// fork in progress, all of Dst's chunk size and replication; Dst and
// every source but the last have sizes that are multiples of the chunk
// size; and no file has a chunk past its size (a writer not done).
//
// Inodes, when given, has one entry per source: the inode the caller
// found at that path. A source that is another file now (replaced by a
// rename since the caller looked) fails the command with ErrInvalid,
// and nothing changes: the caller moves exactly the files it listed.
type Concat struct {
	Dst    string
	Srcs   []string
	Inodes []uint64 `json:",omitempty"`
	Time   int64
}

func (Concat) commandType() string { return "concat" }

func (s *State) concat(c Concat) Result {
	if len(c.Srcs) == 0 || len(c.Srcs) > MaxConcatSources {
		return fail(errorf(ErrInvalid, "concat of %d sources: want 1 to %d", len(c.Srcs), MaxConcatSources))
	}
	if c.Inodes != nil && len(c.Inodes) != len(c.Srcs) {
		return fail(errorf(ErrInvalid, "concat: %d inodes for %d sources", len(c.Inodes), len(c.Srcs)))
	}
	dst, err := s.concatFile(c.Dst)
	if err != nil {
		return fail(err)
	}
	cs := dst.chunkSize
	if dst.size%cs != 0 {
		return fail(errorf(ErrInvalid, "concat: %s has %d bytes, not a multiple of its chunk size %d", c.Dst, dst.size, cs))
	}
	if err := s.concatChunksWithin(c.Dst, dst); err != nil {
		return fail(err)
	}
	srcs := make([]*inode, len(c.Srcs))
	seen := map[uint64]bool{dst.id: true}
	end := dst.size // Dst's size once the sources are in
	for i, p := range c.Srcs {
		n, err := s.concatFile(p)
		if err != nil {
			return fail(err)
		}
		switch {
		case c.Inodes != nil && n.id != c.Inodes[i]:
			return fail(errorf(ErrInvalid, "concat: %s is inode %d, not %d (replaced)", p, n.id, c.Inodes[i]))
		case seen[n.id]:
			return fail(errorf(ErrInvalid, "concat: %s is the destination or a source already", p))
		case n.chunkSize != cs || n.replication != dst.replication:
			return fail(errorf(ErrInvalid, "concat: %s has chunk size %d and replication %d, %s %d and %d",
				p, n.chunkSize, n.replication, c.Dst, cs, dst.replication))
		case i < len(c.Srcs)-1 && n.size%cs != 0:
			return fail(errorf(ErrInvalid, "concat: %s has %d bytes, not a multiple of the chunk size %d (only the last source may end inside a chunk)", p, n.size, cs))
		case n.size > math.MaxInt64-end || ceilDiv(end+n.size, cs) > math.MaxInt64/cs:
			return fail(errorf(ErrInvalid, "concat: the result would be too large"))
		}
		if err := s.concatChunksWithin(p, n); err != nil {
			return fail(err)
		}
		seen[n.id] = true
		srcs[i] = n
		end += n.size
	}
	// Validation is complete; from here on nothing fails.
	var fenced []ChunkRef
	base := dst.size / cs
	for _, n := range srcs {
		for _, idx := range slices.Sorted(maps.Keys(n.chunks)) {
			h := n.chunks[idx]
			dst.chunks[base+idx] = h
			if ch := s.chunks[h]; ch.Refs == 1 {
				ch.Epoch++
				fenced = append(fenced, chunkRef(0, ch))
			}
		}
		n.chunks = map[int64]uint64{}
		base += ceilDiv(n.size, cs)
	}
	dst.size = end
	dst.touch(c.Time)
	for i, p := range c.Srcs {
		parent, name, _ := s.parentOf(p)
		invariants.Check(s.inodes[parent.children[name]] == srcs[i], "meta: concat: %s is not the source checked", p)
		s.removeEntry(parent, name, c.Time)
	}
	slices.SortFunc(fenced, func(a, b ChunkRef) int { return cmp.Compare(a.Handle, b.Handle) })
	return Result{Info: s.info(dst), Fenced: fenced}
}

// concatFile returns the file at p if Concat may take it (as its
// destination or a source).
func (s *State) concatFile(p string) (*inode, error) {
	n, err := s.lookup(p)
	if err != nil {
		return nil, err
	}
	switch {
	case n.dir:
		return nil, errorf(ErrIsDir, "concat: %s", p)
	case n.ro:
		return nil, errorf(ErrReadOnly, "concat: %s is in a snapshot", p)
	case n.symlink || n.special != 0:
		return nil, errorf(ErrInvalid, "concat: %s is not a regular file", p)
	case len(n.links) > 0:
		return nil, errorf(ErrInvalid, "concat: %s has %d other names (hard links)", p, len(n.links))
	case s.holders[n.id] > 0:
		return nil, errorf(ErrInvalid, "concat: %s is held open by a mount", p)
	}
	return n, nil
}

// concatChunksWithin: file n (at p) names no chunk past its size and no
// fork in progress.
func (s *State) concatChunksWithin(p string, n *inode) error {
	limit := ceilDiv(n.size, n.chunkSize)
	for idx, h := range n.chunks {
		if idx >= limit {
			return errorf(ErrInvalid, "concat: %s has a chunk at index %d, past its %d bytes (a write not done)", p, idx, n.size)
		}
		if s.chunks[h].Origin != 0 {
			return errorf(ErrInvalid, "concat: %s: chunk %d at index %d is being forked (a write not done)", p, h, idx)
		}
	}
	return nil
}

// ceilDiv is a/b rounded up, for a >= 0 and b > 0, without overflow.
func ceilDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}
