package chunkstore

import (
	"slices"
	"sort"

	"github.com/catena-io/catena/internal/invariants"
)

// The engine's index: per replica, per written 64 KiB block, an immutable
// list of pieces (newest last). A list is shared by every block map that
// holds it (clones), and a piece by every list that holds it; both are
// reference-counted under the engine's append lock. A list never holds a
// piece that newer pieces of the list hide entirely.

// piece is a byte range of one block stored in the log, with the CRC32C
// of its data; a zero piece (seg nil) stores nothing and reads as zeros.
// Immutable but for refs.
type piece struct {
	seg   *segment
	off   int64 // offset of the data in the segment
	lo, n int32 // byte range [lo, lo+n) in its block
	crc   uint32
	refs  int32 // lists holding it (appendMu)
}

func (p *piece) zero() bool { return p.seg == nil }
func (p *piece) hi() int32  { return p.lo + p.n }

// pieceList is the content of one block: its pieces laid over zeros,
// oldest first, or bad (content unknown: never served). Immutable but for
// refs.
type pieceList struct {
	refs   int32 // block maps holding it (appendMu)
	bad    bool
	pieces []*piece
}

// blockRef is one written block of a replica's block map.
type blockRef struct {
	b uint32
	l *pieceList
}

// engineMaxPieces is the longest list that a partial write or zero still
// adds to; a longer one is rewritten whole (one piece) by the next write
// into its block, so a list holds at most engineMaxPieces+1 pieces.
const engineMaxPieces = 8

// blockIndex returns where block b is, or would be inserted, in blocks.
func blockIndex(blocks []blockRef, b int64) (int, bool) {
	i := sort.Search(len(blocks), func(i int) bool { return int64(blocks[i].b) >= b })
	return i, i < len(blocks) && int64(blocks[i].b) == b
}

func listOf(blocks []blockRef, b int64) *pieceList {
	if i, ok := blockIndex(blocks, b); ok {
		return blocks[i].l
	}
	return nil
}

// setList sets block b's list (nil: a hole) and returns the old one.
func setList(blocks *[]blockRef, b int64, l *pieceList) *pieceList {
	i, ok := blockIndex(*blocks, b)
	switch {
	case ok && l != nil:
		old := (*blocks)[i].l
		(*blocks)[i].l = l
		return old
	case ok:
		old := (*blocks)[i].l
		*blocks = slices.Delete(*blocks, i, i+1)
		return old
	case l != nil:
		*blocks = slices.Insert(*blocks, i, blockRef{b: uint32(b), l: l})
	}
	return nil
}

// layPiece returns the list of old (nil: a hole) with p laid on top,
// dropping the pieces it and the other newer ones hide; nil when what is
// left reads as zeros.
func layPiece(old *pieceList, p *piece) *pieceList {
	if p.lo == 0 && p.n == BlockSize {
		if p.zero() {
			return nil
		}
		return &pieceList{pieces: []*piece{p}}
	}
	var ps []*piece
	if old != nil && !old.bad {
		ps = make([]*piece, 0, len(old.pieces)+1)
		ps = append(ps, old.pieces...)
	}
	ps = append(ps, p)
	ps = visiblePieces(ps)
	data := false
	for _, q := range ps {
		data = data || !q.zero()
	}
	if !data {
		return nil
	}
	return &pieceList{pieces: ps}
}

// visiblePieces drops, in place, the pieces that newer ones hide.
func visiblePieces(ps []*piece) []*piece {
	var cov []span // merged, sorted
	keep := make([]bool, len(ps))
	for i := len(ps) - 1; i >= 0; i-- {
		s := span{ps[i].lo, ps[i].hi()}
		if !spansCover(cov, s) {
			keep[i] = true
			cov = addSpan(cov, s)
		}
	}
	out := ps[:0]
	for i, p := range ps {
		if keep[i] {
			out = append(out, p)
		}
	}
	return out
}

type span struct{ lo, hi int32 }

func spansCover(cov []span, s span) bool {
	for _, c := range cov {
		if c.lo <= s.lo && s.hi <= c.hi {
			return true
		}
	}
	return false
}

func addSpan(cov []span, s span) []span {
	out := make([]span, 0, len(cov)+1)
	for _, c := range cov {
		if c.hi < s.lo || s.hi < c.lo {
			out = append(out, c)
			continue
		}
		s.lo, s.hi = min(s.lo, c.lo), max(s.hi, c.hi)
	}
	out = append(out, s)
	sort.Slice(out, func(i, j int) bool { return out[i].lo < out[j].lo })
	return out
}

// The refcount side; the caller holds appendMu.

// acquireListLocked takes a reference on l for one more block map.
func (e *Store) acquireListLocked(l *pieceList) {
	l.refs++
	if l.refs > 1 {
		return
	}
	for _, p := range l.pieces {
		p.refs++
		if p.refs == 1 && !p.zero() {
			p.seg.live += int64(p.n)
			e.live += int64(p.n)
		}
	}
}

// releaseListLocked drops a block map's reference on l; pieces left
// without any reference die at lsn (the record that dropped them).
func (e *Store) releaseListLocked(l *pieceList, lsn uint64) {
	l.refs--
	invariants.Check(l.refs >= 0, "piece list released more often than taken")
	if l.refs > 0 {
		return
	}
	for _, p := range l.pieces {
		p.refs--
		invariants.Check(p.refs >= 0, "piece released more often than taken")
		if p.refs == 0 && !p.zero() {
			p.seg.live -= int64(p.n)
			e.live -= int64(p.n)
			p.seg.pending = append(p.seg.pending, deadExtent{off: p.off, n: int64(p.n), lsn: lsn})
			e.deadSinceCP += int64(p.n)
		}
	}
	// Dead bytes are reclaimed only once a checkpoint covers their death:
	// ask for one when they reach an eighth of the live data (16 MiB at
	// least), so a trim frees its space soon, whatever the log's pace.
	if e.deadSinceCP >= max(16<<20, e.live/8) {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

// replaceLocked installs l as block b of blocks, releasing the old list.
func (e *Store) replaceLocked(blocks *[]blockRef, b int64, l *pieceList, lsn uint64) {
	if l != nil {
		e.acquireListLocked(l)
	}
	if old := setList(blocks, b, l); old != nil {
		e.releaseListLocked(old, lsn)
	}
}

// applyPutLocked applies a put record: each piece is laid on its block,
// and the blocks wholly inside [off, off+n) that have no piece become
// holes. ps holds the record's pieces, in its table's order. Returns the
// blocks the record touched, first and last.
func (e *Store) applyPutLocked(blocks *[]blockRef, off, n int64, rps []recPiece, ps []*piece, lsn uint64) {
	j := 0
	for b := off / BlockSize; b <= (off+n-1)/BlockSize; b++ {
		var l *pieceList
		if j < len(rps) && int64(rps[j].block) == b {
			l = layPiece(listOf(*blocks, b), ps[j])
			j++
		}
		if l == nil && listOf(*blocks, b) == nil {
			continue
		}
		e.replaceLocked(blocks, b, l, lsn)
	}
}

// applyInvalidateLocked makes every block touched by [off, off+n) bad.
func (e *Store) applyInvalidateLocked(blocks *[]blockRef, off, n int64, lsn uint64) {
	for b := off / BlockSize; b <= (off+n-1)/BlockSize; b++ {
		e.replaceLocked(blocks, b, &pieceList{bad: true}, lsn)
	}
}

// dropAllLocked releases every list of a block map (delete).
func (e *Store) dropAllLocked(blocks []blockRef, lsn uint64) {
	for _, br := range blocks {
		e.releaseListLocked(br.l, lsn)
	}
}

// cloneBlocksLocked returns a copy of a block map sharing its lists.
func (e *Store) cloneBlocksLocked(blocks []blockRef) []blockRef {
	out := slices.Clone(blocks)
	for _, br := range out {
		e.acquireListLocked(br.l)
	}
	return out
}

// newPieces makes the pieces of a record whose data starts at dataOff in
// seg.
func newPieces(rps []recPiece, seg *segment, dataOff int64) []*piece {
	ps := make([]*piece, len(rps))
	for i, rp := range rps {
		p := &piece{lo: int32(rp.lo), n: int32(rp.n), crc: rp.crc}
		if !rp.zero {
			p.seg, p.off = seg, dataOff
			dataOff += int64(rp.n)
		}
		ps[i] = p
	}
	return ps
}
