package chunkstore

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"
)

// Replica is one replica in an Store. It offers the methods of
// *Replica with the same contracts (see replica.go), except that Sync is
// the engine's group commit. Safe for concurrent use; a write and a read
// of the replica exclude each other (a read never sees half a write).
type Replica struct {
	e *Store
	h Handle

	// badMu guards bad, which reads update under the shared lock.
	badMu sync.Mutex
	bad   map[int64]bool // blocks found not to verify since open (bad lists aside)
	// ahead: blocks that recovery found changed after the point its last
	// durable marker covers (see coverage below); read-only afterwards.
	ahead []int64

	// mu guards the fields below: mutations hold it exclusively, reads
	// shared. meta is changed under mu and e.appendMu both, so that a
	// Sync's markers and a checkpoint read it under appendMu alone; its
	// Chain is never changed in place (replicas may share one).
	mu     sync.RWMutex
	meta   Meta
	blocks []blockRef // written blocks, sorted
	closed bool
	gone   bool // deleted; under e.appendMu (beside closed: one word)

	// Coverage, under e.appendMu. The applied (epoch, seq) accounts for
	// the replica's records up to LSN covered: SetAppliedAt moves covered
	// to lastLSN, the LSN of the replica's last record that changed its
	// content (the caller applies updates, then says how far it got). A
	// marker carries covered, and recovery counts as ahead exactly the
	// blocks that records after it changed, wherever the marker lies: a
	// Sync (of any replica) or a checkpoint between a write and the
	// SetAppliedAt that accounts for it must not hide the write.
	lastLSN uint64
	covered uint64
	since   map[int64]uint64 // blocks changed after covered -> the LSN of their last change

	// reqs: the request ids of the replica's updates (engine_requests.go),
	// under e.appendMu; nil while there are none.
	reqs *reqTable
}

// changedLocked records that the record of LSN lsn changed blocks
// [off/BlockSize, (off+n-1)/BlockSize]. The caller holds e.appendMu.
func (r *Replica) changedLocked(off, n int64, lsn uint64) {
	r.lastLSN = lsn
	if r.since == nil {
		r.since = make(map[int64]uint64)
	}
	for b := off / BlockSize; b <= (off+n-1)/BlockSize; b++ {
		r.since[b] = lsn
	}
}

// coverLocked drops from since the blocks whose last change the point
// covered accounts for. The caller holds e.appendMu (or is replay).
func (r *Replica) coverLocked(covered uint64) {
	r.covered = covered
	for b, lsn := range r.since {
		if lsn <= covered {
			delete(r.since, b)
		}
	}
	if len(r.since) == 0 {
		r.since = nil
	}
}

// Meta returns the replica's current metadata.
func (r *Replica) Meta() Meta {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.meta.clone()
}

func (r *Replica) usableLocked() error {
	if r.closed {
		return ErrClosed
	}
	return r.e.usable()
}

func (r *Replica) rangeErr(off, n int64) error {
	if off < 0 || n < 0 || n > r.meta.ChunkSize-off {
		return fmt.Errorf("%w: [%d, +%d) of replica %016x of %d bytes", ErrRange, off, n, uint64(r.h), r.meta.ChunkSize)
	}
	return nil
}

func (r *Replica) corruptErr(b int64) error {
	return fmt.Errorf("%w: replica %016x block %d", ErrCorrupt, uint64(r.h), b)
}

func (r *Replica) markBad(b int64) {
	r.badMu.Lock()
	defer r.badMu.Unlock()
	if r.bad == nil {
		r.bad = make(map[int64]bool)
	}
	r.bad[b] = true
}

func (r *Replica) isBad(b int64) bool {
	r.badMu.Lock()
	defer r.badMu.Unlock()
	return r.bad[b]
}

// healedLocked forgets that blocks [first, last] were found bad: they
// were rewritten whole. The caller holds mu exclusively.
func (r *Replica) healedLocked(first, last int64) {
	r.badMu.Lock()
	defer r.badMu.Unlock()
	for b := first; b <= last && len(r.bad) > 0; b++ {
		delete(r.bad, b)
	}
}

// BadBlocks returns, sorted, the blocks known not to verify: invalidated,
// or found by recovery, a read or Verify, and not rewritten whole since.
func (r *Replica) BadBlocks() []int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.badMu.Lock()
	defer r.badMu.Unlock()
	out := make([]int64, 0, len(r.bad))
	for b := range r.bad {
		out = append(out, b)
	}
	for _, br := range r.blocks {
		if br.l.bad && !r.bad[int64(br.b)] {
			out = append(out, int64(br.b))
		}
	}
	slices.Sort(out)
	return out
}

// AheadBlocks returns the blocks that recovery found changed by records
// after the replica's last durable marker (its creation, clone or the
// meta record of a Sync): its bytes there may be newer than its applied
// sequence number says. A delta resync must re-send them.
func (r *Replica) AheadBlocks() []int64 { return slices.Clone(r.ahead) }

// readRangeLocked reads bytes [lo, hi) of block b, whose list is l, into
// dst, verifying the CRC of every piece it reads. The caller holds mu.
func (r *Replica) readRangeLocked(l *pieceList, b, lo, hi int64, dst []byte) error {
	clear(dst)
	if l == nil {
		return nil
	}
	if l.bad {
		r.markBad(b)
		return r.corruptErr(b)
	}
	var scratch *[BlockSize]byte
	defer func() {
		if scratch != nil {
			r.e.putBuf(scratch)
		}
	}()
	for _, p := range l.pieces {
		plo, phi := int64(p.lo), int64(p.hi())
		olo, ohi := max(lo, plo), min(hi, phi)
		if olo >= ohi {
			continue
		}
		if p.zero() {
			clear(dst[olo-lo : ohi-lo])
			continue
		}
		direct := plo >= lo && phi <= hi
		var buf []byte
		if direct {
			buf = dst[plo-lo : phi-lo]
		} else {
			if scratch == nil {
				scratch = r.e.getBuf()
			}
			buf = scratch[:p.n]
		}
		if _, err := p.seg.f.ReadAt(buf, p.off); err != nil {
			if !errors.Is(err, io.EOF) {
				return r.e.engineErr(fmt.Sprintf("replica %016x: read block %d", uint64(r.h), b), err)
			}
			clear(buf) // short: the bytes are gone; the CRC says so
		}
		if crc32.Checksum(buf, castagnoli) != p.crc {
			r.markBad(b)
			return r.corruptErr(b)
		}
		if !direct {
			copy(dst[olo-lo:ohi-lo], buf[olo-plo:ohi-plo])
		}
	}
	return nil
}

// ReadAt reads len(p) bytes at off, verifying the CRC32C of every piece
// it reads; a mismatch marks the block bad and returns ErrCorrupt and no
// data. Holes read as zeros. A range not inside the chunk returns
// ErrRange.
func (r *Replica) ReadAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	r.mu.RLock()
	defer r.mu.RUnlock()
	if err := r.usableLocked(); err != nil {
		return 0, err
	}
	if err := r.rangeErr(off, n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	for b := off / BlockSize; b <= (off+n-1)/BlockSize; b++ {
		bs := b * BlockSize
		lo, hi := max(off, bs), min(off+n, bs+BlockSize)
		if err := r.readRangeLocked(listOf(r.blocks, b), b, lo-bs, hi-bs, p[lo-off:hi-off]); err != nil {
			clear(p) // never hand out unverified bytes
			return 0, err
		}
	}
	return len(p), nil
}

// beginLocked checks a mutation of [off, off+n); the caller holds cpMu
// shared and mu.
func (r *Replica) beginLocked(off, n int64) error {
	if err := r.usableLocked(); err != nil {
		return err
	}
	return r.rangeErr(off, n)
}

// edgeLocked prepares a block that a write or zero covers only in part,
// [lo, hi) of it: ErrCorrupt when it is known bad (a chunk's short last
// block covered to its end counts as whole: such a write heals it); when its list is long,
// the block's whole current content (verified) for the caller to rewrite
// it whole, else nil.
func (r *Replica) edgeLocked(b, lo, hi int64) (*[BlockSize]byte, error) {
	if lo == 0 && hi == BlockSize {
		return nil, nil
	}
	// The chunk's last block, when shorter, is whole from 0 to the end.
	toEnd := lo == 0 && b*BlockSize+hi == r.meta.ChunkSize
	l := listOf(r.blocks, b)
	if !toEnd && (r.isBad(b) || (l != nil && l.bad)) {
		r.markBad(b)
		return nil, r.corruptErr(b)
	}
	if toEnd || l == nil || len(l.pieces) <= engineMaxPieces {
		return nil, nil
	}
	buf := r.e.getBuf()
	if err := r.readRangeLocked(l, b, 0, BlockSize, buf[:]); err != nil {
		r.e.putBuf(buf)
		return nil, err
	}
	return buf, nil
}

// blockLen is the length of block b: BlockSize but for a chunk's short
// last block. A block rewritten whole is rewritten to its length.
func (r *Replica) blockLen(b int64) int64 { return min(BlockSize, r.meta.ChunkSize-b*BlockSize) }

func blockSpan(off, n, b int64) (lo, hi int64) {
	bs := b * BlockSize
	return max(off, bs) - bs, min(off+n, bs+BlockSize) - bs
}

// WriteAt writes p at off: one record per up to recMaxPieces blocks, each
// block's part a piece with its own CRC32C. Not durable until Sync. A
// write into part of a bad block fails with ErrCorrupt; a whole-block
// write heals it.
func (r *Replica) WriteAt(p []byte, off int64) error {
	n := int64(len(p))
	e := r.e
	e.cpMu.RLock()
	defer e.cpMu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.beginLocked(off, n); err != nil || n == 0 {
		return err
	}
	first, last := off/BlockSize, (off+n-1)/BlockSize
	// whole[b]: the edge block's new content when it is rewritten whole.
	whole := make(map[int64]*[BlockSize]byte, 2)
	defer func() {
		for _, buf := range whole {
			e.putBuf(buf)
		}
	}()
	for _, b := range []int64{first, last} {
		if _, done := whole[b]; done {
			continue
		}
		lo, hi := blockSpan(off, n, b)
		buf, err := r.edgeLocked(b, lo, hi)
		if err != nil {
			return err
		}
		if buf != nil {
			copy(buf[lo:hi], p[b*BlockSize+lo-off:])
			whole[b] = buf
		}
	}
	per := e.piecesPerRecord()
	for rf := first; rf <= last; rf += per {
		rl := min(last, rf+per-1)
		roff, rend := max(off, rf*BlockSize), min(off+n, (rl+1)*BlockSize)
		rps := make([]recPiece, 0, rl-rf+1)
		data := make([][]byte, 0, 3)
		pEnd := int64(-1) // where the last part taken from p ends in p, -1: not from p
		for b := rf; b <= rl; b++ {
			bs := b * BlockSize
			lo, hi := blockSpan(off, n, b)
			d := p[bs+lo-off : bs+hi-off]
			if buf := whole[b]; buf != nil {
				hi = r.blockLen(b)
				lo, d = 0, buf[:hi]
				roff, rend = min(roff, bs), max(rend, bs+hi)
				data, pEnd = append(data, d), -1
			} else if pEnd == bs+lo-off {
				// Contiguous in p: one part, written without a copy.
				data[len(data)-1] = p[bs+lo-off-int64(len(data[len(data)-1])) : bs+hi-off]
				pEnd = bs + hi - off
			} else {
				data, pEnd = append(data, d), bs+hi-off
			}
			rps = append(rps, recPiece{block: uint32(b), lo: uint32(lo), n: uint32(hi - lo), crc: crc32.Checksum(d, castagnoli)})
		}
		if err := r.putLocked(roff, rend-roff, rps, data); err != nil {
			return err
		}
		r.healedLocked(rf, rl) // edges written in part were checked above
	}
	return nil
}

// putLocked appends a put record and applies it.
func (r *Replica) putLocked(off, n int64, rps []recPiece, data [][]byte) error {
	e := r.e
	rec := &record{typ: recPut, handle: r.h, arg: uint64(off), pieces: rps, extra: rangeExtra(n)}
	e.appendMu.Lock()
	defer e.appendMu.Unlock()
	seg, at, err := e.appendOneLocked(rec, data)
	if err != nil {
		return err
	}
	e.applyPutLocked(&r.blocks, off, n, rps, newPieces(rps, seg, at), rec.lsn)
	r.changedLocked(off, n, rec.lsn)
	return nil
}

// Zero makes [off, off+n) read as zeros: whole blocks become holes (their
// pieces are dropped), a block covered in part gets a zero piece, which
// stores nothing. Not durable until Sync.
func (r *Replica) Zero(off, n int64) error {
	e := r.e
	e.cpMu.RLock()
	defer e.cpMu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.beginLocked(off, n); err != nil || n == 0 {
		return err
	}
	first, last := off/BlockSize, (off+n-1)/BlockSize
	roff, rend := off, off+n
	var rps []recPiece
	var data [][]byte
	var bufs []*[BlockSize]byte
	defer func() {
		for _, b := range bufs {
			e.putBuf(b)
		}
	}()
	edges := []int64{first}
	if last != first {
		edges = append(edges, last)
	}
	for _, b := range edges {
		lo, hi := blockSpan(off, n, b)
		if lo == 0 && hi == BlockSize {
			continue
		}
		bs := b * BlockSize
		buf, err := r.edgeLocked(b, lo, hi)
		if err != nil {
			return err
		}
		if buf == nil {
			rps = append(rps, recPiece{block: uint32(b), lo: uint32(lo), n: uint32(hi - lo), zero: true})
			continue
		}
		// A long list: rewrite the block whole, or drop it if nothing but
		// zeros is left.
		bufs = append(bufs, buf)
		clear(buf[lo:hi])
		bl := r.blockLen(b)
		roff, rend = min(roff, bs), max(rend, bs+bl)
		if !isZero(buf[:bl]) {
			rps = append(rps, recPiece{block: uint32(b), n: uint32(bl), crc: crc32.Checksum(buf[:bl], castagnoli)})
			data = append(data, buf[:bl])
		}
	}
	if err := r.putLocked(roff, rend-roff, rps, data); err != nil {
		return err
	}
	r.healedLocked(first, last)
	return nil
}

// SetApplied records the highest applied sequence number, which accounts
// for every write, zero and invalidate of the replica so far; durable at
// the next Sync.
func (r *Replica) SetApplied(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.setAppliedLocked(r.meta.AppliedEpoch, seq, nil)
}

// SetAppliedAt records the highest applied sequence number and the epoch
// of that update, which account for every write, zero and invalidate of
// the replica so far, and adds reqs, the request ids of the updates
// applied since the last call (Requests), in the same step: durable
// together at the next Sync.
func (r *Replica) SetAppliedAt(epoch, seq uint64, reqs ...Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.setAppliedLocked(epoch, seq, reqs)
}

func (r *Replica) setAppliedLocked(epoch, seq uint64, reqs []Request) {
	e := r.e
	e.appendMu.Lock()
	defer e.appendMu.Unlock()
	e.rememberLocked(r, reqs, false)
	if r.meta.AppliedSeq == seq && r.meta.AppliedEpoch == epoch && r.covered == r.lastLSN &&
		(r.reqs == nil || r.reqs.fresh == 0) {
		return
	}
	r.meta.AppliedSeq, r.meta.AppliedEpoch = seq, epoch
	r.coverLocked(r.lastLSN)
	r.noteLocked()
}

// SetConfig records a new epoch and chain; durable at the next Sync. A
// chain longer than MaxChainLen makes the replica's Sync fail with
// ErrInvalidMeta.
func (r *Replica) SetConfig(epoch uint64, chain []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	c := append([]uint64(nil), chain...)
	r.e.appendMu.Lock()
	defer r.e.appendMu.Unlock()
	r.meta.Epoch, r.meta.Chain = epoch, c
	r.noteLocked()
}

// noteLocked hands the replica's metadata to the next Sync's meta
// record. The caller holds mu and e.appendMu.
func (r *Replica) noteLocked() {
	if !r.gone {
		r.e.dirty[r] = struct{}{}
	}
}

// Sync makes every completed mutation of every replica of the engine
// durable (the engine's group commit).
func (r *Replica) Sync() error {
	r.mu.RLock()
	err, chain := r.usableLocked(), len(r.meta.Chain)
	r.mu.RUnlock()
	if err != nil {
		return err
	}
	if chain > MaxChainLen {
		return fmt.Errorf("%w: chain of %d members, at most %d", ErrInvalidMeta, chain, MaxChainLen)
	}
	return r.e.Sync()
}

// Invalidate marks the whole blocks touched by [off, off+n) bad, durably
// at the next Sync: their content is unknown, so they are never served
// until rewritten whole.
func (r *Replica) Invalidate(off, n int64) error {
	e := r.e
	e.cpMu.RLock()
	defer e.cpMu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.beginLocked(off, n); err != nil || n == 0 {
		return err
	}
	rec := &record{typ: recInvalidate, handle: r.h, arg: uint64(off), extra: rangeExtra(n)}
	e.appendMu.Lock()
	defer e.appendMu.Unlock()
	if _, _, err := e.appendOneLocked(rec, nil); err != nil {
		return err
	}
	e.applyInvalidateLocked(&r.blocks, off, n, rec.lsn)
	r.changedLocked(off, n, rec.lsn)
	for b := off / BlockSize; b <= (off+n-1)/BlockSize; b++ {
		r.markBad(b)
	}
	return nil
}

// Verify reads and checks every piece of every block (scrubbing). It
// returns ErrCorrupt naming every bad block, or the first I/O error. It
// holds the replica's lock one block at a time.
func (r *Replica) Verify() error {
	buf := r.e.getBuf()
	defer r.e.putBuf(buf)
	var bad []int64
	for next := int64(0); ; {
		r.mu.RLock()
		if err := r.usableLocked(); err != nil {
			r.mu.RUnlock()
			return err
		}
		i, _ := blockIndex(r.blocks, next)
		if i == len(r.blocks) {
			r.mu.RUnlock()
			break
		}
		br := r.blocks[i]
		err := r.readRangeLocked(br.l, int64(br.b), 0, BlockSize, buf[:])
		r.mu.RUnlock()
		next = int64(br.b) + 1
		if errors.Is(err, ErrCorrupt) {
			bad = append(bad, int64(br.b))
		} else if err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: replica %016x: %d bad blocks %v", ErrCorrupt, uint64(r.h), len(bad), bad[:min(len(bad), 32)])
	}
	return nil
}

// OwnBytes returns the data bytes of the pieces only this replica refers
// to: what deleting it alone would free. Pieces shared with a clone (or a
// clone's source) count in none of them.
func (r *Replica) OwnBytes() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.e.appendMu.Lock()
	defer r.e.appendMu.Unlock()
	var n int64
	for _, br := range r.blocks {
		if br.l.refs != 1 {
			continue
		}
		for _, p := range br.l.pieces {
			if p.refs == 1 && !p.zero() {
				n += int64(p.n)
			}
		}
	}
	return n
}

// UsedBytes returns the data bytes of the pieces the replica refers to;
// pieces shared with a clone count in each.
func (r *Replica) UsedBytes() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var n int64
	for _, br := range r.blocks {
		for _, p := range br.l.pieces {
			if !p.zero() {
				n += int64(p.n)
			}
		}
	}
	return n
}
