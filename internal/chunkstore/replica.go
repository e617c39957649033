package chunkstore

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
)

// fileReplica is one chunk replica. Safe for concurrent use; a write and a read
// of overlapping ranges exclude each other (a read never sees half a write).
type fileReplica struct {
	s    *fileStore
	h    Handle
	lay  layout    // where the file keeps its parts (format version)
	file fileState // the replica's file, through s.files; see fileCache

	// badMu guards bad, which ReadAt updates under the shared lock.
	badMu sync.Mutex
	bad   map[int64]bool // blocks known not to match their checksum
	// ahead: blocks whose content at load was that of a write after the
	// last completed Sync (adopted through the pending table); set by
	// recovery, read-only afterwards.
	ahead []int64

	// mu guards the fields below; WriteAt and Zero hold it exclusively,
	// ReadAt shared, so a read never observes half a write.
	mu    sync.RWMutex
	meta  Meta
	table []uint32 // checksum entry per block (see blockEntry)
	// lag holds the entries the last durable header established (its
	// dirty list) that the table in the file does not have yet: they are
	// written by the next Sync, before its header. So the table in the
	// file never holds an entry that no durable header vouches for
	// (doc.go).
	lag     map[uint32]uint32
	dirty   map[uint32]uint32 // blocks changed since the last Sync snapshot -> their entry then
	changes uint64            // count of mutations, for group commit
	closed  bool
	failed  error // set when a Sync failed; sticky

	// syncMu serialises Syncs (and close); lock order: syncMu, then mu.
	syncMu sync.Mutex
	synced uint64 // changes covered by the last successful Sync
	gen    uint64 // highest header generation on disk
	slot   int    // slot holding the header currently trusted
}

// Meta returns the replica's current metadata.
func (r *fileReplica) Meta() Meta {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.meta.clone()
}

func (r *fileReplica) usableLocked() error {
	if r.closed {
		return ErrClosed
	}
	return r.failed
}

// beginLocked checks a mutation of [off, off+n) and pins the replica's
// file for it: a nil File means there is nothing to do (err says why, nil
// for an empty range). The caller holds mu and releases the file.
func (r *fileReplica) beginLocked(off, n int64) (File, error) {
	if err := r.usableLocked(); err != nil {
		return nil, err
	}
	if err := r.rangeErr(off, n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	return r.s.files.acquire(r)
}

func (r *fileReplica) rangeErr(off, n int64) error {
	if off < 0 || n < 0 || n > r.meta.ChunkSize-off {
		return fmt.Errorf("%w: [%d, +%d) of replica %016x of %d bytes", ErrRange, off, n, uint64(r.h), r.meta.ChunkSize)
	}
	return nil
}

func (r *fileReplica) corruptErr(b int64) error {
	return fmt.Errorf("%w: replica %016x block %d", ErrCorrupt, uint64(r.h), b)
}

// readBlockLocked reads block b of f into buf (BlockSize bytes) and
// verifies it.
func (r *fileReplica) readBlockLocked(f File, b int64, buf []byte) error {
	if _, err := f.ReadAt(buf, r.lay.data+b*BlockSize); err != nil {
		return ioErr(fmt.Sprintf("read block %d", b), r.h, err)
	}
	if blockEntry(buf, r.s.zeroCRC) != r.table[b] {
		r.markBad(b)
		return r.corruptErr(b)
	}
	return nil
}

func (r *fileReplica) markBad(b int64) {
	r.badMu.Lock()
	defer r.badMu.Unlock()
	if r.bad == nil {
		r.bad = make(map[int64]bool)
	}
	r.bad[b] = true
}

// healedLocked forgets that blocks [first, last] were bad: they were
// rewritten whole. The caller holds mu exclusively.
func (r *fileReplica) healedLocked(first, last int64) {
	r.badMu.Lock()
	defer r.badMu.Unlock()
	for b := first; b <= last && len(r.bad) > 0; b++ {
		delete(r.bad, b)
	}
}

// BadBlocks returns, sorted, the blocks known not to verify: found by
// recovery, ReadAt, WriteAt or Verify, and not rewritten whole since.
// Other blocks may still be bad until Verify has read them.
func (r *fileReplica) BadBlocks() []int64 {
	r.badMu.Lock()
	defer r.badMu.Unlock()
	out := make([]int64, 0, len(r.bad))
	for b := range r.bad {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// AheadBlocks returns the blocks that recovery found holding the content
// of a write made after the last completed Sync (format 3): the replica's
// bytes there are newer than its applied sequence number says. A delta
// resync must re-send them.
func (r *fileReplica) AheadBlocks() []int64 { return slices.Clone(r.ahead) }

// writePendingLocked records entries (blocks first..) in the pending table
// before their data is written, so that after a crash the block verifies
// as either its synced or its newest content (format 3; no-op in format 2).
func (r *fileReplica) writePendingLocked(f File, first int64, entries []uint32) error {
	if r.lay.pending == 0 || len(entries) == 0 {
		return nil
	}
	b := make([]byte, 4*len(entries))
	for i, e := range entries {
		putLeUint32(b[i*4:], pendingEntry(e, r.s.zeroCRC))
	}
	if _, err := f.WriteAt(b, r.lay.pending+first*4); err != nil {
		return ioErr("write pending checksums", r.h, err)
	}
	return nil
}

func (r *fileReplica) getBuf() *[BlockSize]byte  { return r.s.bufs.Get().(*[BlockSize]byte) }
func (r *fileReplica) putBuf(b *[BlockSize]byte) { r.s.bufs.Put(b) }

// WriteAt writes p at off, updating block checksums. Not durable until Sync.
// A partially covered block is read back and verified first: ErrCorrupt
// leaves it unchanged rather than blessing bad bytes with a new checksum.
func (r *fileReplica) WriteAt(p []byte, off int64) error {
	n := int64(len(p))
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.beginLocked(off, n)
	if f == nil {
		return err
	}
	wrote := false
	defer func() { r.s.files.release(r, wrote) }()
	first, last := off/BlockSize, (off+n-1)/BlockSize
	entries := make([]uint32, last-first+1)
	for b := first; b <= last; b++ {
		bs := b * BlockSize
		lo, hi := max(off, bs), min(off+n, bs+BlockSize)
		if lo == bs && hi == bs+BlockSize {
			entries[b-first] = blockEntry(p[lo-off:hi-off], r.s.zeroCRC)
			continue
		}
		buf := r.getBuf()
		err := r.readBlockLocked(f, b, buf[:])
		if err == nil {
			copy(buf[lo-bs:], p[lo-off:hi-off])
			entries[b-first] = blockEntry(buf[:], r.s.zeroCRC)
		}
		r.putBuf(buf)
		if err != nil {
			return err
		}
	}
	// Reserve space first: ENOSPC then fails the write before any byte of
	// the chunk changed.
	if err := f.Allocate(r.lay.data+off, n); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return ioErr("allocate", r.h, err)
	}
	wrote = true
	if err := r.writePendingLocked(f, first, entries); err != nil {
		r.changes++
		return err
	}
	if _, err := f.WriteAt(p, r.lay.data+off); err != nil {
		// Some bytes may have changed; their blocks keep the old checksums,
		// so reads report ErrCorrupt rather than return them. The next Sync
		// still fdatasyncs, so that the file is clean again.
		r.changes++
		return ioErr("write", r.h, err)
	}
	for b := first; b <= last; b++ {
		r.setEntryLocked(b, entries[b-first])
	}
	r.healedLocked(first, last) // partial blocks were verified above
	r.changes++
	return nil
}

// Zero makes [off, off+n) read as zeros, punching a hole where whole file
// system blocks are covered. Not durable until Sync.
func (r *fileReplica) Zero(off, n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.beginLocked(off, n)
	if f == nil {
		return err
	}
	wrote := false
	defer func() { r.s.files.release(r, wrote) }()
	first, last := off/BlockSize, (off+n-1)/BlockSize

	// Partially covered edge blocks: read and verify before changing
	// anything.
	type edge struct {
		b      int64
		buf    *[BlockSize]byte
		lo, hi int64 // zeroed range within the block
	}
	var edges []edge
	defer func() {
		for _, e := range edges {
			r.putBuf(e.buf)
		}
	}()
	fullFrom, fullTo := first, last+1
	for _, b := range []int64{first, last} {
		bs := b * BlockSize
		lo, hi := max(off, bs)-bs, min(off+n, bs+BlockSize)-bs
		if lo == 0 && hi == BlockSize || (len(edges) > 0 && edges[0].b == b) {
			continue
		}
		buf := r.getBuf()
		edges = append(edges, edge{b: b, buf: buf, lo: lo, hi: hi})
		if err := r.readBlockLocked(f, b, buf[:]); err != nil {
			return err
		}
		clear(buf[lo:hi])
		if b == first {
			fullFrom = first + 1
		}
		if b == last {
			fullTo = last
		}
	}

	r.changes++ // the table below changes step by step, as the file does
	wrote = true
	pend := make([]uint32, last-first+1) // full blocks: 0, a zero block
	for _, e := range edges {
		if !isZero(e.buf[:]) {
			pend[e.b-first] = blockEntry(e.buf[:], r.s.zeroCRC)
		}
	}
	if err := r.writePendingLocked(f, first, pend); err != nil {
		return err
	}
	if fullFrom < fullTo {
		if err := r.punchLocked(f, r.lay.data+fullFrom*BlockSize, (fullTo-fullFrom)*BlockSize); err != nil {
			return err
		}
		for b := fullFrom; b < fullTo; b++ {
			r.setEntryLocked(b, 0)
		}
	}
	for _, e := range edges {
		bs := r.lay.data + e.b*BlockSize
		entry := uint32(0)
		if isZero(e.buf[:]) {
			// Nothing else in the block: free all of it.
			if err := r.punchLocked(f, bs, BlockSize); err != nil {
				return err
			}
		} else {
			pLo, pHi := alignUp(e.lo, fsPageSize), e.hi/fsPageSize*fsPageSize
			if pLo < pHi {
				if err := r.punchLocked(f, bs+pLo, pHi-pLo); err != nil {
					return err
				}
				if err := r.writeZerosLocked(f, bs+e.lo, pLo-e.lo); err != nil {
					return err
				}
				if err := r.writeZerosLocked(f, bs+pHi, e.hi-pHi); err != nil {
					return err
				}
			} else if err := r.writeZerosLocked(f, bs+e.lo, e.hi-e.lo); err != nil {
				return err
			}
			entry = blockEntry(e.buf[:], r.s.zeroCRC)
		}
		r.setEntryLocked(e.b, entry)
	}
	r.healedLocked(first, last)
	return nil
}

// setEntryLocked sets block b's checksum entry, remembering the entry it
// had at the last Sync snapshot.
func (r *fileReplica) setEntryLocked(b int64, e uint32) {
	if _, ok := r.dirty[uint32(b)]; !ok {
		r.dirty[uint32(b)] = r.table[b]
	}
	r.table[b] = e
}

func (r *fileReplica) punchLocked(f File, off, n int64) error {
	err := f.PunchHole(off, n)
	if errors.Is(err, errors.ErrUnsupported) {
		return r.writeZerosLocked(f, off, n)
	}
	return ioErr("punch hole", r.h, err)
}

func (r *fileReplica) writeZerosLocked(f File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	zeros := make([]byte, min(n, BlockSize))
	for n > 0 {
		c := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:c], off); err != nil {
			return ioErr("write zeros", r.h, err)
		}
		off, n = off+c, n-c
	}
	return nil
}

func alignUp(v, a int64) int64 { return (v + a - 1) / a * a }

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// SetApplied records the highest applied sequence number; durable at the
// next Sync.
func (r *fileReplica) SetApplied(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.meta.AppliedSeq != seq {
		r.meta.AppliedSeq = seq
		r.changes++
	}
}

// SetAppliedAt records the highest applied sequence number and the epoch
// of that update; durable at the next Sync.
func (r *fileReplica) SetAppliedAt(epoch, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.meta.AppliedSeq != seq || r.meta.AppliedEpoch != epoch {
		r.meta.AppliedSeq, r.meta.AppliedEpoch = seq, epoch
		r.changes++
	}
}

// SetConfig records a new epoch and chain; durable at the next Sync. A
// chain longer than MaxChainLen makes that Sync fail with ErrInvalidMeta.
func (r *fileReplica) SetConfig(epoch uint64, chain []uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.meta.Epoch = epoch
	r.meta.Chain = append([]uint64(nil), chain...)
	r.changes++
}

// Sync makes every completed WriteAt, Zero, SetApplied and SetConfig durable
// with one header write and one fdatasync. Concurrent Syncs are grouped: a
// Sync whose changes were covered by another one returns without I/O.
// After a failed fdatasync the replica is failed (ErrFailed) for good.
func (r *fileReplica) Sync() error {
	r.mu.RLock()
	target, err := r.changes, r.usableLocked()
	r.mu.RUnlock()
	if err != nil {
		return err
	}
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	if r.synced >= target {
		return nil
	}

	r.mu.Lock()
	if err := r.usableLocked(); err != nil {
		r.mu.Unlock()
		return err
	}
	if len(r.meta.Chain) > MaxChainLen {
		r.mu.Unlock()
		return fmt.Errorf("%w: chain of %d members, at most %d", ErrInvalidMeta, len(r.meta.Chain), MaxChainLen)
	}
	snap := r.changes
	h := header{Version: r.lay.version, Gen: r.gen + 1, Meta: r.meta.clone()}
	dirty := make([]dirtyEntry, 0, len(r.dirty))
	for b, old := range r.dirty {
		dirty = append(dirty, dirtyEntry{Block: b, Old: old, New: r.table[b]})
	}
	sort.Slice(dirty, func(i, j int) bool { return dirty[i].Block < dirty[j].Block })
	// The table entries written now: those the last header established;
	// and, when this Sync's blocks do not fit in its header (the data and
	// the table are then synced before the header), this Sync's too.
	write := maps.Clone(r.lag)
	if len(dirty) > maxDirty {
		for _, d := range dirty {
			write[d.Block] = d.New
		}
	}
	runs := tableRuns(write)
	r.dirty = make(map[uint32]uint32)
	r.mu.Unlock()

	if err := r.syncFile(h, dirty, runs); err != nil {
		r.mu.Lock()
		for _, d := range dirty {
			r.dirty[d.Block] = d.Old // a retry must cover them again
		}
		r.mu.Unlock()
		return err
	}
	r.gen, r.slot, r.synced = h.Gen, 1-r.slot, snap
	r.mu.Lock()
	r.lag = make(map[uint32]uint32)
	if len(dirty) <= maxDirty {
		for _, d := range dirty {
			r.lag[d.Block] = d.New
		}
	}
	r.mu.Unlock()
	return nil
}

// tableRun is a run of consecutive checksum-table entries to write,
// starting at block first.
type tableRun struct {
	first int64
	b     []byte
}

// tableRuns encodes entries (block -> entry) as runs of consecutive
// blocks, in block order.
func tableRuns(entries map[uint32]uint32) []tableRun {
	var runs []tableRun
	for _, b := range slices.Sorted(maps.Keys(entries)) {
		var e [4]byte
		putLeUint32(e[:], entries[b])
		if n := len(runs); n > 0 && runs[n-1].first+int64(len(runs[n-1].b)/4) == int64(b) {
			runs[n-1].b = append(runs[n-1].b, e[:]...)
			continue
		}
		runs = append(runs, tableRun{first: int64(b), b: e[:]})
	}
	return runs
}

// syncFile runs syncSnapshot on the replica's file, pinned, and tells the
// file cache which writes the fdatasync covered.
func (r *fileReplica) syncFile(h header, dirty []dirtyEntry, runs []tableRun) error {
	f, err := r.s.files.acquire(r)
	if err != nil {
		return err
	}
	w := r.s.files.writes(r)
	err = r.syncSnapshot(f, h, dirty, runs)
	r.s.files.releaseSync(r, w, err)
	return err
}

// syncSnapshot writes the checksum table span and the header into the slot
// not currently trusted, then fdatasyncs. The header lists the dirty blocks
// so that recovery can tell whether their data reached the disk; when they
// do not fit, the data is synced first (a second fdatasync).
func (r *fileReplica) syncSnapshot(f File, h header, dirty []dirtyEntry, runs []tableRun) error {
	for _, run := range runs {
		if _, err := f.WriteAt(run.b, tableOff+run.first*4); err != nil {
			return ioErr("write checksums", r.h, err)
		}
	}
	if len(dirty) > maxDirty {
		if err := f.Sync(); err != nil {
			return r.fail(err)
		}
	} else {
		h.Dirty = dirty
	}
	if _, err := f.WriteAt(encodeHeader(h), int64(1-r.slot)*slotSize); err != nil {
		return ioErr("write header", r.h, err)
	}
	if err := f.Sync(); err != nil {
		return r.fail(err)
	}
	return nil
}

// fail marks the replica failed after an fdatasync error: the kernel may
// have dropped the dirty pages, so nothing read back can be trusted.
func (r *fileReplica) fail(err error) error {
	err = fmt.Errorf("%w: replica %016x: sync: %w", ErrFailed, uint64(r.h), ioErr("sync", r.h, err))
	r.mu.Lock()
	r.failed = err
	r.mu.Unlock()
	return err
}

// ReadAt reads len(p) bytes at off, verifying the checksum of every block it
// touches; a mismatch returns ErrCorrupt and no data. Never-written ranges
// read as zeros. A range not inside the chunk returns ErrRange.
func (r *fileReplica) ReadAt(p []byte, off int64) (int, error) {
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
	f, err := r.s.files.acquire(r)
	if err != nil {
		return 0, err
	}
	defer r.s.files.release(r, false)
	for b := off / BlockSize; b <= (off+n-1)/BlockSize; b++ {
		bs := b * BlockSize
		lo, hi := max(off, bs), min(off+n, bs+BlockSize)
		var err error
		if lo == bs && hi == bs+BlockSize {
			err = r.readBlockLocked(f, b, p[lo-off:hi-off])
		} else {
			buf := r.getBuf()
			if err = r.readBlockLocked(f, b, buf[:]); err == nil {
				copy(p[lo-off:hi-off], buf[lo-bs:hi-bs])
			}
			r.putBuf(buf)
		}
		if err != nil {
			clear(p) // never hand out unverified bytes
			return 0, err
		}
	}
	return len(p), nil
}

// Verify checks every block's checksum (scrubbing). It returns ErrCorrupt
// naming every bad block, or the first I/O error. It holds the replica's
// lock one block at a time, so I/O goes on meanwhile.
func (r *fileReplica) Verify() error {
	buf := r.getBuf()
	defer r.putBuf(buf)
	var bad []int64
	for b := int64(0); ; b++ {
		r.mu.RLock()
		if err := r.usableLocked(); err != nil {
			r.mu.RUnlock()
			return err
		}
		if b >= int64(len(r.table)) {
			r.mu.RUnlock()
			break
		}
		// Pinned one block at a time: the file may be closed in between.
		f, err := r.s.files.acquire(r)
		if err == nil {
			err = r.readBlockLocked(f, b, buf[:])
			r.s.files.release(r, false)
		}
		r.mu.RUnlock()
		if errors.Is(err, ErrCorrupt) {
			bad = append(bad, b)
		} else if err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: replica %016x: %d bad blocks %v", ErrCorrupt, uint64(r.h), len(bad), bad[:min(len(bad), 32)])
	}
	return nil
}

// UsedBytes returns the bytes the replica's file occupies on disk: written
// data plus at most 72 KiB of header and checksums; holes count nothing.
func (r *fileReplica) UsedBytes() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return 0
	}
	return r.s.files.allocated(r)
}

func (r *fileReplica) close() error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if f := r.s.files.remove(r); f != nil {
		return f.Close()
	}
	return nil
}

// Invalidate marks the whole blocks in [off, off+n) bad, durably at the
// next Sync: their content is unknown (the replica copied from had lost
// them), so they must never be served until rewritten whole.
func (r *fileReplica) Invalidate(off, n int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := r.beginLocked(off, n)
	if f == nil {
		return err
	}
	defer r.s.files.release(r, true)
	first, last := off/BlockSize, (off+n-1)/BlockSize
	buf := r.getBuf()
	defer r.putBuf(buf)
	none := make([]byte, 4*(last-first+1))
	if r.lay.pending != 0 {
		// No pending content either: recovery must not adopt the bytes.
		if _, err := f.WriteAt(none, r.lay.pending+first*4); err != nil {
			return ioErr("write pending checksums", r.h, err)
		}
	}
	for b := first; b <= last; b++ {
		if _, err := f.ReadAt(buf[:], r.lay.data+b*BlockSize); err != nil {
			return ioErr(fmt.Sprintf("read block %d", b), r.h, err)
		}
		// An entry its current bytes cannot match.
		r.setEntryLocked(b, ^blockEntry(buf[:], r.s.zeroCRC))
		r.markBad(b)
	}
	r.changes++
	return nil
}
