package chunkstore

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/catena-io/catena/internal/durable"
)

// The chunk engine (format 4): every replica of a disk in one log of
// packed records, an in-memory index of reference-counted pieces, and a
// checkpoint of that index. See docs/architecture.md, "The chunk engine",
// for the design; engine_format.go for the encodings, engine_index.go for
// the index and engine_space.go for space reclamation.
//
// Locks, outermost first: cpMu (shared by every mutation of the index,
// exclusive while a checkpoint snapshots it), mu (the replica map), a
// replica's mu, appendMu (the log's tail, the reference counts, the dirty
// set). syncMu serialises fdatasyncs and is never held with the others
// but appendMu. Reads take only their replica's mu, shared.

// Config configures an Store.
type Config struct {
	FS  FS     // required
	Dir string // the engine lives in Dir/engine; format-3 replicas in Dir/chunks are converted
	// SegmentSize is the largest log segment (0: DefaultSegmentSize; at
	// least MinSegmentSize).
	SegmentSize int64
	// CheckpointBytes of log appended start a checkpoint in the
	// background (0: DefaultCheckpointBytes).
	CheckpointBytes int64
	Logger          *slog.Logger
	// MaxOpenFiles bounds the format-3 replica files kept open while
	// they are converted (0 or less: DefaultMaxOpenFiles).
	MaxOpenFiles int
	// RequestMemory bounds the request ids the whole store keeps
	// (Replica.Requests), the oldest forgotten first (0 or less:
	// DefaultRequestMemory).
	RequestMemory int
}

// Store defaults and bounds.
const (
	DefaultSegmentSize     = 64 << 20
	DefaultCheckpointBytes = 256 << 20
	MinSegmentSize         = 256 << 10

	// reclaimInterval: how often the checkpointer looks for dead bytes
	// to reclaim between the checkpoints the log's size starts.
	reclaimInterval = 2 * time.Second

	engineDirName   = "engine"
	ckptName        = "checkpoint"
	engineAllocStep = 4 << 20
)

// Store keeps the replicas of one disk. Safe for concurrent use.
type Store struct {
	fs      FS
	dir     string
	log     *slog.Logger
	segSize int64
	cpBytes int64
	salt    uint64    // mixed into every record's CRC: records of another engine never verify
	bufs    sync.Pool // *[BlockSize]byte scratch blocks

	closing atomic.Bool
	closed  atomic.Bool
	failed  atomic.Pointer[error]

	cpMu sync.RWMutex

	mu       sync.Mutex
	replicas map[Handle]*Replica

	appendMu sync.Mutex
	segs     map[uint64]*segment
	tail     *segment
	tailOff  int64
	nextLSN  uint64
	inc      uint32
	durable  uint64     // records below it are durable: the sync watermark written into headers
	unsynced []*segment // written since the last fdatasync
	dirty    map[*Replica]struct{}
	live     int64 // data bytes of live pieces
	sinceCP  int64 // bytes appended since the last checkpoint started
	// deadSinceCP: bytes of pieces that died since the last checkpoint
	// started (reclaimable once a checkpoint covers them); cpCost: about
	// what the last checkpoint wrote.
	deadSinceCP, cpCost int64
	cpLSN               uint64
	cpSeg               uint64
	// chains, during recovery only: the chains of the metadata decoded so
	// far, which replicas with the same chain share.
	chains map[string][]uint64
	// onAdvance, when set (tests only, before any use), is called with
	// appendMu held whenever nextLSN or cpLSN moves, so a test awaits a
	// state of the log instead of polling it.
	onAdvance func()

	// Request ids (engine_requests.go): at most reqLimit kept, reqLive
	// now; reqFIFO[reqHead:] names them in the order they were
	// recorded (stamps from reqStamp), with ids forgotten meanwhile.
	reqLimit, reqLive int
	reqFIFO           []reqRef
	reqHead           int
	reqStamp          uint64

	syncMu    sync.Mutex
	syncedLSN uint64 // records below it are durable
	// onSync, when set, is told how long each group fdatasync took.
	onSync atomic.Pointer[func(float64)]

	cpRun sync.Mutex // one checkpoint at a time
	kick  chan struct{}
	stop  chan struct{}
	wg    sync.WaitGroup
}

// openEngine opens (creating if needed) the engine in cfg.Dir/engine and
// recovers it: it loads the checkpoint and replays the log after it, up to
// the first record that does not verify (a tail torn by a crash, which is
// discarded). It fails rather than drop a record that an earlier fdatasync
// made durable.
func openEngine(cfg Config) (*Store, error) {
	if cfg.FS == nil {
		return nil, errors.New("chunkstore: Config.FS is nil")
	}
	e := &Store{
		fs:       cfg.FS,
		dir:      path.Join(cfg.Dir, engineDirName),
		log:      cfg.Logger,
		segSize:  cfg.SegmentSize,
		cpBytes:  cfg.CheckpointBytes,
		replicas: make(map[Handle]*Replica),
		segs:     make(map[uint64]*segment),
		dirty:    make(map[*Replica]struct{}),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		reqLimit: cfg.RequestMemory,
	}
	if e.reqLimit <= 0 {
		e.reqLimit = DefaultRequestMemory
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	e.log = e.log.With("component", "chunkstore/engine")
	if e.segSize == 0 {
		e.segSize = DefaultSegmentSize
	}
	if e.segSize < MinSegmentSize {
		return nil, fmt.Errorf("chunkstore: segment size %d below %d", e.segSize, MinSegmentSize)
	}
	if e.cpBytes <= 0 {
		e.cpBytes = DefaultCheckpointBytes
	}
	e.bufs.New = func() any { return new([BlockSize]byte) }
	if err := durable.MkdirAllFS(e.fs, e.dir, 0o755); err != nil {
		return nil, fmt.Errorf("chunkstore: open engine: %w", err)
	}
	if err := e.recover(); err != nil {
		for _, s := range e.segs {
			s.f.Close()
		}
		return nil, fmt.Errorf("chunkstore: open engine %s: %w", e.dir, err)
	}
	e.wg.Add(1)
	go e.checkpointer()
	return e, nil
}

func (e *Store) segPath(id uint64) string { return path.Join(e.dir, segName(id)) }

// engineErr wraps an error of the file system, mapping ENOSPC to
// ErrNoSpace.
func (e *Store) engineErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: engine %s: %s: %w", ErrNoSpace, e.dir, op, err)
	}
	return fmt.Errorf("chunkstore: engine %s: %s: %w", e.dir, op, err)
}

func (e *Store) usable() error {
	if e.closed.Load() {
		return ErrClosed
	}
	if p := e.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail makes the engine failed for good after an fdatasync error: the
// kernel may have dropped dirty pages, so nothing unsynced can be trusted.
func (e *Store) fail(err error) error {
	err = fmt.Errorf("%w: engine %s: sync: %w", ErrFailed, e.dir, e.engineErr("sync", err))
	e.failed.CompareAndSwap(nil, &err)
	return *e.failed.Load()
}

func (e *Store) getBuf() *[BlockSize]byte  { return e.bufs.Get().(*[BlockSize]byte) }
func (e *Store) putBuf(b *[BlockSize]byte) { e.bufs.Put(b) }

// piecesPerRecord is how many pieces of a write go into one record, so
// that a record always fits in a segment.
func (e *Store) piecesPerRecord() int64 {
	return max(1, min(recMaxPieces, (e.segSize-recHeaderSize-8)/(BlockSize+recPieceSize)))
}

// recover loads the checkpoint and replays the log; see openEngine.
func (e *Store) recover() error {
	names, err := e.fs.ReadDir(e.dir)
	if err != nil {
		return err
	}
	hasCkpt := false
	var ids []uint64
	for _, name := range names {
		switch id, ok := parseSegName(name); {
		case name == ckptName:
			hasCkpt = true
		case name == ckptName+".tmp":
			if err := e.fs.Remove(path.Join(e.dir, name)); err != nil {
				return err
			}
		case ok:
			ids = append(ids, id)
		}
	}
	if !hasCkpt {
		if len(ids) > 0 {
			return fmt.Errorf("%w: log segments without a checkpoint", errBadCheckpoint)
		}
		return e.initFresh()
	}
	f, err := e.fs.OpenFile(path.Join(e.dir, ckptName), os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= bigCheckpoint {
		// Hand every page the open freed back to the system once it is
		// done, so that a store of a million replicas does not keep the
		// open's peak resident.
		defer debug.FreeOSMemory()
	}
	for _, id := range ids {
		f, err := e.fs.OpenFile(e.segPath(id), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		e.segs[id] = &segment{id: id, path: e.segPath(id), f: f}
	}
	c, live, err := e.loadCheckpoint(f, fi.Size())
	if err != nil {
		return err
	}
	e.chains = make(map[string][]uint64)
	defer func() { e.chains = nil }()
	return e.replay(c, live)
}

// initFresh creates an empty engine: its first checkpoint, then its first
// segment.
func (e *Store) initFresh() error {
	var s [8]byte
	if _, err := rand.Read(s[:]); err != nil {
		return err
	}
	e.salt = binary.LittleEndian.Uint64(s[:])
	e.inc = 1
	c := &ckpt{inc: e.inc, salt: e.salt, lsn: 1, seg: 1}
	if err := e.writeCheckpoint(c); err != nil {
		return err
	}
	if err := e.createSegment(1); err != nil {
		return err
	}
	e.tail, e.nextLSN, e.durable, e.syncedLSN, e.cpLSN, e.cpSeg = e.segs[1], 1, 1, 1, 1, 1
	return nil
}

// createSegment creates segment id, empty, durably in the directory.
func (e *Store) createSegment(id uint64) error {
	p := e.segPath(id)
	f, err := e.fs.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return e.engineErr("create segment", err)
	}
	if err := e.fs.SyncDir(e.dir); err != nil {
		f.Close()
		return e.engineErr("create segment: sync dir", err)
	}
	e.segs[id] = &segment{id: id, path: p, f: f}
	return nil
}

// bigCheckpoint is the checkpoint size from which an open returns the
// memory it used for decoding to the system (about 100,000 replicas).
const bigCheckpoint = 8 << 20

// writeCheckpoint replaces the checkpoint durably: a temporary file,
// fdatasynced, renamed over the old one, the directory synced.
func (e *Store) writeCheckpoint(c *ckpt) error {
	b := encodeCheckpoint(c)
	tmp, final := path.Join(e.dir, ckptName+".tmp"), path.Join(e.dir, ckptName)
	f, err := e.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return e.engineErr("checkpoint: create", err)
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = e.fs.Rename(tmp, final)
	}
	if err == nil {
		err = e.fs.SyncDir(e.dir)
	}
	if err != nil {
		e.fs.Remove(tmp)
		return e.engineErr("checkpoint", err)
	}
	return nil
}

// loadCheckpoint builds the index from checkpoint file f of size bytes
// as it is decoded (walkCheckpoint: neither the file's bytes nor a table
// held beside the index),
// after making sure the segment of its replay position exists. It returns
// the checkpoint's header and the live data extents per segment (for
// initFreeLocked). The index is allocated in bulk, an array per kind of
// object or slabs of them (a store of a million small replicas opens in a
// few large allocations rather than millions of small ones): an object
// outlives its array's others, which is what a chunkserver's replicas
// mostly do. A block map and a list get their part of an array with no
// spare capacity, so that growing one copies it out.
func (e *Store) loadCheckpoint(f io.ReaderAt, size int64) (*ckpt, map[*segment][]extent, error) {
	var c *ckpt
	var pieces []piece
	var lists []pieceList
	var ptrs slab[*piece]
	var refs slab[blockRef]
	var reps []Replica
	err := walkCheckpoint(f, size, ckptVisitor{
		header: func(h *ckpt, np, nl, nr uint32) error {
			c = h
			if e.segs[c.seg] == nil {
				if c.off != 0 {
					return fmt.Errorf("%w: segment %d of the replay position is missing", errBadCheckpoint, c.seg)
				}
				// A crash after the first checkpoint, before the segment
				// was made.
				if err := e.createSegment(c.seg); err != nil {
					return err
				}
			}
			e.salt = c.salt
			pieces, lists, reps = make([]piece, np), make([]pieceList, nl), make([]Replica, nr)
			e.replicas = make(map[Handle]*Replica, nr)
			return nil
		},
		piece: func(i int, cp ckptPiece) error {
			p := &pieces[i]
			*p = piece{lo: int32(cp.lo), n: int32(cp.n), crc: cp.crc}
			if cp.seg != 0 {
				if p.seg = e.segs[cp.seg]; p.seg == nil {
					return fmt.Errorf("%w: piece in missing segment %d", errBadCheckpoint, cp.seg)
				}
				p.off = cp.off
			}
			return nil
		},
		list: func(i int, cl ckptList) error {
			l := &lists[i]
			l.bad = cl.bad
			if len(cl.pieces) > 0 {
				l.pieces = ptrs.take(len(cl.pieces))
				for j, pi := range cl.pieces {
					l.pieces[j] = &pieces[pi]
				}
			}
			return nil
		},
		replica: func(i int, cr *ckptReplica) error {
			r := &reps[i]
			r.e, r.h, r.meta = e, cr.meta.Handle, cr.meta
			// Every record of the replica the checkpoint holds is below
			// its LSN.
			r.covered, r.lastLSN = cr.covered, max(cr.covered, c.lsn-1)
			for _, a := range cr.since {
				if r.since == nil {
					r.since = make(map[int64]uint64, len(cr.since))
				}
				r.since[int64(a.block)] = a.lsn
			}
			if len(cr.blocks) > 0 {
				r.blocks = refs.take(len(cr.blocks))
				for j, cb := range cr.blocks {
					l := &lists[cb.list]
					r.blocks[j] = blockRef{b: cb.block, l: l}
					e.acquireListLocked(l)
				}
			}
			if len(cr.reqs) > 0 {
				r.reqs = &reqTable{ents: slices.Clone(cr.reqs)}
				for _, q := range cr.reqs {
					e.reqFIFO = append(e.reqFIFO, reqRef{r: r, stamp: q.stamp})
					e.reqStamp = max(e.reqStamp, q.stamp)
				}
				e.reqLive += len(cr.reqs)
			}
			e.replicas[r.h] = r
			return nil
		},
	})
	if err != nil {
		return nil, nil, err
	}
	// The store-wide order of the ids, as recorded.
	slices.SortFunc(e.reqFIFO, func(a, b reqRef) int { return cmp.Compare(a.stamp, b.stamp) })
	e.boundRequestsLocked()
	live := make(map[*segment][]extent)
	for i := range pieces {
		if p := &pieces[i]; p.refs > 0 && !p.zero() {
			live[p.seg] = append(live[p.seg], extent{p.off, int64(p.n)})
		}
	}
	return c, live, nil
}

// scannedRec is a record found by replay's scan, not yet applied.
type scannedRec struct {
	rec     *record
	seg     *segment
	off     int64 // where it starts
	damaged []int // pieces whose data does not match their CRC
}

// replay applies the log after checkpoint c; see docs/architecture.md,
// Recovery. Scan first, deciding where the log ends, then apply.
func (e *Store) replay(c *ckpt, live map[*segment][]extent) error {
	recs, endSeg, endOff, maxInc, err := e.scan(c)
	if err != nil {
		return err
	}
	prevInc := c.inc
	if len(recs) > 0 {
		prevInc = recs[len(recs)-1].rec.inc
	}
	// What the writer knew durable: from the chain and from any record
	// lying beyond its end (a record of the same process written after
	// a tear).
	var durableBelow uint64
	for _, sr := range recs {
		durableBelow = max(durableBelow, sr.rec.durableBelow())
	}
	beyond, beyondInc, err := e.claimsBeyond(endSeg, endOff, prevInc)
	if err != nil {
		return err
	}
	durableBelow, maxInc = max(durableBelow, beyond), max(maxInc, beyondInc)
	// A record with damaged data ends the log unless it was durable: then
	// the disk lost synced bytes, and its pieces read as ErrCorrupt.
	cut := len(recs)
	for i, sr := range recs {
		if len(sr.damaged) > 0 && sr.rec.lsn >= durableBelow {
			cut = i
			break
		}
	}
	end := c.lsn + uint64(cut)
	if cut == len(recs) && durableBelow > end {
		return fmt.Errorf("%w: log unreadable at segment %d offset %d (LSN %d), but records up to LSN %d were synced",
			ErrCorrupt, endSeg.id, endOff, end, durableBelow-1)
	}
	if cut < len(recs) {
		endSeg, endOff = recs[cut].seg, recs[cut].off
	}
	if dropped := len(recs) - cut; dropped > 0 || endOff < segSize(endSeg) {
		e.log.Info("log tail discarded", "segment", endSeg.path, "offset", endOff, "verified_records_dropped", dropped)
	}

	damaged := make(map[*piece]bool)
	for _, sr := range recs[:cut] {
		ps, err := e.applyRecord(sr)
		if err != nil {
			return fmt.Errorf("replay of LSN %d at segment %d offset %d: %w", sr.rec.lsn, sr.seg.id, sr.off, err)
		}
		for _, i := range sr.damaged {
			damaged[ps[i]] = true
		}
	}
	for _, r := range e.replicas {
		if len(r.since) > 0 {
			// Ahead until the caller's SetAppliedAt accounts for them (a
			// delta resync re-sends them first).
			r.ahead = slices.Sorted(maps.Keys(r.since))
		}
	}
	if len(damaged) > 0 {
		for _, r := range e.replicas {
			for _, br := range r.blocks {
				for _, p := range br.l.pieces {
					if damaged[p] {
						r.markBad(int64(br.b))
					}
				}
			}
			if bad := r.BadBlocks(); len(bad) > 0 {
				e.log.Error("synced log data damaged", "handle", fmt.Sprintf("%016x", uint64(r.h)), "blocks", bad)
			}
		}
	}

	// The new tail: nothing stale may lie beyond it (truncate, remove the
	// later segments), and every replayed record must be durable before a
	// record written now is (a process crash leaves them in the page cache
	// only).
	if err := endSeg.f.Truncate(endOff); err != nil {
		return e.engineErr("truncate the log tail", err)
	}
	removed := false
	for id, s := range e.segs {
		if id > endSeg.id {
			s.f.Close()
			if err := e.fs.Remove(s.path); err != nil {
				return err
			}
			delete(e.segs, id)
			removed = true
		}
	}
	if removed {
		if err := e.fs.SyncDir(e.dir); err != nil {
			return err
		}
	}
	for id := c.seg; id <= endSeg.id; id++ {
		if s := e.segs[id]; s != nil {
			if err := s.f.Sync(); err != nil {
				return e.engineErr("sync the replayed log", err)
			}
		}
	}
	e.tail, e.tailOff = endSeg, endOff
	e.tail.reserved = endOff
	e.nextLSN, e.durable, e.syncedLSN = end, end, end
	e.inc = max(maxInc, c.inc) + 1
	e.cpLSN, e.cpSeg = c.lsn, c.seg
	e.initFreeLocked(c.seg, c.off, live)
	e.carryOut(e.reclaimLocked(e.cpLSN, e.cpSeg))
	return nil
}

func segSize(s *segment) int64 {
	fi, err := s.f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// scan reads the chain of records after checkpoint c: consecutive LSNs,
// incarnations that never go back, heads that verify. Piece data that
// does not verify is noted, not an end. It returns the records, where the
// chain ends and the highest incarnation seen.
func (e *Store) scan(c *ckpt) (recs []scannedRec, endSeg *segment, endOff int64, maxInc uint32, err error) {
	seg, off := e.segs[c.seg], c.off
	rd, err := newSegReader(seg)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	expect, prevInc := c.lsn, c.inc
	maxInc = c.inc
	for {
		rec, size, damaged, err := rd.record(off, e.salt)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		if rec != nil && rec.lsn == expect && rec.inc >= prevInc {
			recs = append(recs, scannedRec{rec: rec, seg: seg, off: off, damaged: damaged})
			off += size
			expect++
			prevInc, maxInc = rec.inc, max(maxInc, rec.inc)
			continue
		}
		// The writer starts a new segment when a record does not fit: the
		// chain goes on at the start of the next one.
		next := e.segs[seg.id+1]
		if next == nil {
			break
		}
		nrd, err := newSegReader(next)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		rec, _, _, err = nrd.record(0, e.salt)
		if err != nil {
			return nil, nil, 0, 0, err
		}
		if rec == nil || rec.lsn != expect || rec.inc < prevInc {
			break
		}
		seg, rd, off = next, nrd, 0
	}
	return recs, seg, off, maxInc, nil
}

// claimsBeyond looks, from off in seg and in every later segment, for
// record heads that verify (written by the same process as the chain's
// last record, or a later one) and returns the highest durable watermark
// and incarnation they carry.
func (e *Store) claimsBeyond(seg *segment, off int64, minInc uint32) (uint64, uint32, error) {
	var magic [4]byte
	binary.LittleEndian.PutUint32(magic[:], recMagic)
	var best uint64
	var bestInc uint32
	ids := slices.Sorted(func(yield func(uint64) bool) {
		for id := range e.segs {
			if id >= seg.id && !yield(id) {
				return
			}
		}
	})
	for _, id := range ids {
		s := e.segs[id]
		start := int64(0)
		if s == seg {
			start = off
		}
		size := segSize(s)
		if start >= size {
			continue
		}
		buf := make([]byte, size-start)
		if _, err := s.f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, e.engineErr("read the log", err)
		}
		for i := 0; ; {
			k := bytes.Index(buf[i:], magic[:])
			if k < 0 {
				break
			}
			q := i + k
			i = q + 1
			hl, err := peekRecordHead(buf[q:])
			if err != nil || q+hl > len(buf) {
				continue
			}
			if rec, err := decodeRecordHead(buf[q:q+hl], e.salt); err == nil && rec.inc >= minInc {
				best, bestInc = max(best, rec.durableBelow()), max(bestInc, rec.inc)
			}
		}
	}
	return best, bestInc, nil
}

// applyRecord applies one replayed record to the index, tracking the
// blocks each replica changed after the point its markers cover. It
// returns the record's pieces.
func (e *Store) applyRecord(sr scannedRec) ([]*piece, error) {
	rec := sr.rec
	r := e.replicas[rec.handle]
	switch rec.typ {
	case recCreate:
		if r != nil {
			return nil, fmt.Errorf("%w: create of existing replica %016x", errBadRecord, uint64(rec.handle))
		}
		m, _ := decodeMetaShared(rec.extra, e.chains)
		m.Handle = rec.handle
		e.replicas[m.Handle] = &Replica{e: e, h: m.Handle, meta: m, lastLSN: rec.lsn, covered: rec.lsn}
		return nil, nil
	case recClone:
		dst := Handle(rec.arg)
		m, _ := decodeMetaShared(rec.extra, e.chains)
		m.Handle = dst
		if r == nil || e.replicas[dst] != nil || m.ChunkSize != r.meta.ChunkSize {
			return nil, fmt.Errorf("%w: clone %016x to %016x", errBadRecord, uint64(rec.handle), rec.arg)
		}
		d := &Replica{e: e, h: dst, meta: m, blocks: e.cloneBlocksLocked(r.blocks), lastLSN: rec.lsn, covered: rec.lsn}
		e.rememberLocked(d, r.requestsLocked(), true)
		e.replicas[dst] = d
		return nil, nil
	}
	if r == nil {
		return nil, fmt.Errorf("%w: record of type %d for missing replica %016x", errBadRecord, rec.typ, uint64(rec.handle))
	}
	switch rec.typ {
	case recMeta:
		mb, qb := splitMetaExtra(rec.extra)
		m, _ := decodeMetaShared(mb, e.chains)
		if m.ChunkSize != r.meta.ChunkSize {
			return nil, fmt.Errorf("%w: chunk size changed", errBadRecord)
		}
		if rec.arg > r.lastLSN {
			return nil, fmt.Errorf("%w: marker covers LSN %d, past the replica's last record %d", errBadRecord, rec.arg, r.lastLSN)
		}
		m.Handle = r.h
		r.meta = m
		r.coverLocked(rec.arg)
		reqs, reset, _ := decodeRequestSection(qb)
		if reset {
			e.clearRequestsLocked(r)
		} else {
			reqs = r.reqs.overlap(reqs)
		}
		e.rememberLocked(r, reqs, true)
	case recPut, recInvalidate:
		off, n, _ := rec.rangeOf()
		if off+n > r.meta.ChunkSize {
			return nil, fmt.Errorf("%w: range [%d, +%d) outside the chunk", errBadRecord, off, n)
		}
		r.changedLocked(off, n, rec.lsn)
		if rec.typ == recInvalidate {
			e.applyInvalidateLocked(&r.blocks, off, n, rec.lsn)
			return nil, nil
		}
		ps := newPieces(rec.pieces, sr.seg, sr.off+int64(rec.headLen()))
		e.applyPutLocked(&r.blocks, off, n, rec.pieces, ps, rec.lsn)
		return ps, nil
	case recDelete:
		e.dropAllLocked(r.blocks, rec.lsn)
		e.clearRequestsLocked(r)
		r.blocks = nil
		delete(e.replicas, r.h)
	}
	return nil, nil
}

// segReader reads a segment through a window, for replay.
type segReader struct {
	f    File
	size int64
	win  []byte
	at   int64
}

var errShortSegment = errors.New("chunkstore: past the end of the segment")

func newSegReader(s *segment) (*segReader, error) {
	fi, err := s.f.Stat()
	if err != nil {
		return nil, err
	}
	return &segReader{f: s.f, size: fi.Size()}, nil
}

// read returns bytes [off, off+n), valid until the next call.
func (r *segReader) read(off int64, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off+n > r.size {
		return nil, errShortSegment
	}
	if off >= r.at && off+n <= r.at+int64(len(r.win)) {
		return r.win[off-r.at : off-r.at+n], nil
	}
	w := min(max(n, 4<<20), r.size-off)
	if int64(cap(r.win)) < w {
		r.win = make([]byte, w)
	}
	r.win, r.at = r.win[:w], off
	if _, err := r.f.ReadAt(r.win, off); err != nil && !errors.Is(err, io.EOF) {
		r.win = r.win[:0]
		return nil, err
	}
	return r.win[:n], nil
}

// record decodes the record at off: nil when none verifies there (its
// data past the end of the segment included); an error only for I/O.
func (r *segReader) record(off int64, salt uint64) (*record, int64, []int, error) {
	h, err := r.read(off, recHeaderSize)
	if errors.Is(err, errShortSegment) {
		return nil, 0, nil, nil
	} else if err != nil {
		return nil, 0, nil, err
	}
	hl, err := peekRecordHead(h)
	if err != nil {
		return nil, 0, nil, nil
	}
	head, err := r.read(off, int64(hl))
	if errors.Is(err, errShortSegment) {
		return nil, 0, nil, nil
	} else if err != nil {
		return nil, 0, nil, err
	}
	rec, err := decodeRecordHead(bytes.Clone(head), salt)
	if err != nil {
		return nil, 0, nil, nil
	}
	data, err := r.read(off+int64(hl), rec.dataLen())
	if errors.Is(err, errShortSegment) {
		return nil, 0, nil, nil
	} else if err != nil {
		return nil, 0, nil, err
	}
	var damaged []int
	at := int64(0)
	for i, p := range rec.pieces {
		if p.zero {
			continue
		}
		if crc32.Checksum(data[at:at+int64(p.n)], castagnoli) != p.crc {
			damaged = append(damaged, i)
		}
		at += int64(p.n)
	}
	return rec, rec.size(), damaged, nil
}

// appendLocked writes buf, then the parts of more, at the log's tail. buf
// holds the records recs, each head at offs[i] (its data after it, in buf
// or in more), whose incarnation, LSN, lag and CRC are filled in here. It
// returns where buf went. Nothing is synced; on error nothing counts (the
// tail does not move).
func (e *Store) appendLocked(buf []byte, more [][]byte, recs []*record, offs []int) (*segment, int64, error) {
	if err := e.usable(); err != nil {
		return nil, 0, err
	}
	need := int64(len(buf))
	for _, m := range more {
		need += int64(len(m))
	}
	if e.tailOff > 0 && e.tailOff+need > e.segSize {
		if err := e.createSegment(e.tail.id + 1); err != nil {
			return nil, 0, err
		}
		e.tail, e.tailOff = e.segs[e.tail.id+1], 0
	}
	t := e.tail
	// Reserve the space first: ENOSPC then fails the append before any
	// byte is written.
	if end := e.tailOff + need; end > t.reserved {
		step := max(min(engineAllocStep, e.segSize-t.reserved), end-t.reserved)
		err := t.f.Allocate(t.reserved, step)
		if errors.Is(err, syscall.ENOSPC) && step > end-t.reserved {
			step = end - t.reserved
			err = t.f.Allocate(t.reserved, step)
		}
		if err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return nil, 0, e.engineErr("allocate", err)
		}
		t.reserved += step
	}
	for i, r := range recs {
		r.inc, r.lsn = e.inc, e.nextLSN+uint64(i)
		r.lag = uint32(min(r.lsn-e.durable, lagUnknown))
		encodeRecordHead(buf[offs[i]:], e.salt, r)
	}
	at := e.tailOff
	if _, err := t.f.WriteAt(buf, at); err != nil {
		return nil, 0, e.engineErr("write", err)
	}
	w := at + int64(len(buf))
	for _, m := range more {
		if _, err := t.f.WriteAt(m, w); err != nil {
			return nil, 0, e.engineErr("write", err)
		}
		w += int64(len(m))
	}
	for i, r := range recs {
		// A head is needed only to replay its record.
		t.pending = append(t.pending, deadExtent{off: at + int64(offs[i]), n: int64(r.headLen()), lsn: r.lsn})
	}
	e.nextLSN += uint64(len(recs))
	if e.onAdvance != nil {
		defer e.onAdvance()
	}
	e.tailOff += need
	e.sinceCP += need
	if n := len(e.unsynced); n == 0 || e.unsynced[n-1] != t {
		e.unsynced = append(e.unsynced, t)
	}
	if e.sinceCP >= e.cpBytes {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
	return t, at, nil
}

// copyLimit: a record up to this size is copied into one buffer and
// written with one pwrite; a larger one's data is written from the
// caller's buffers (a pwrite each), which costs less than the copy.
const copyLimit = 256 << 10

// appendOneLocked appends one record with its data and returns where the
// data starts.
func (e *Store) appendOneLocked(rec *record, data [][]byte) (*segment, int64, error) {
	hl := rec.headLen()
	size := hl
	for _, d := range data {
		size += len(d)
	}
	var buf []byte
	var more [][]byte
	if size <= copyLimit {
		buf = make([]byte, size)
		at := hl
		for _, d := range data {
			at += copy(buf[at:], d)
		}
	} else {
		buf, more = make([]byte, hl), data
	}
	seg, off, err := e.appendLocked(buf, more, []*record{rec}, []int{0})
	if err != nil {
		return nil, 0, err
	}
	return seg, off + int64(hl), nil
}

// Sync makes everything appended so far durable (group commit): it
// appends a meta record for each replica changed since its last one, then
// fdatasyncs the segments written since the last Sync (usually one).
// Concurrent Syncs share an fdatasync. A failed fdatasync fails the
// engine for good (ErrFailed).
func (e *Store) Sync() error {
	if err := e.usable(); err != nil {
		return err
	}
	target, err := e.appendMarkers()
	if err != nil {
		return err
	}
	return e.syncTo(target)
}

// appendMarkers appends the meta records of the dirty replicas and
// returns the LSN a Sync must cover. A replica whose chain is too long
// stays dirty (its own Sync reports ErrInvalidMeta).
func (e *Store) appendMarkers() (uint64, error) {
	e.appendMu.Lock()
	defer e.appendMu.Unlock()
	if len(e.dirty) > 0 {
		rs := make([]*Replica, 0, len(e.dirty))
		for r := range e.dirty {
			if len(r.meta.Chain) <= MaxChainLen {
				rs = append(rs, r)
			}
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].h < rs[j].h })
		for len(rs) > 0 {
			var buf []byte
			var recs []*record
			var offs []int
			n := 0
			for n < len(rs) && (n == 0 || int64(len(buf)) < e.segSize/4) {
				r := rs[n]
				rec := &record{typ: recMeta, handle: r.h, arg: r.covered, extra: r.markerRequestsLocked(encodeMetaBody(nil, r.meta))}
				offs = append(offs, len(buf))
				recs = append(recs, rec)
				buf = append(buf, make([]byte, rec.headLen())...)
				n++
			}
			if _, _, err := e.appendLocked(buf, nil, recs, offs); err != nil {
				return 0, err
			}
			for _, r := range rs[:n] {
				delete(e.dirty, r)
			}
			rs = rs[n:]
		}
	}
	return e.nextLSN, nil
}

// syncTo makes every record below target durable, sharing the
// fdatasync of a concurrent caller when it covers target.
func (e *Store) syncTo(target uint64) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	if e.syncedLSN >= target {
		return nil
	}
	if err := e.usable(); err != nil {
		return err
	}
	e.appendMu.Lock()
	upto, segs := e.nextLSN, e.unsynced
	e.unsynced = nil
	e.appendMu.Unlock()
	start := time.Now()
	for _, s := range segs {
		if err := s.f.Sync(); err != nil {
			return e.fail(err)
		}
	}
	if f := e.onSync.Load(); f != nil && len(segs) > 0 {
		(*f)(time.Since(start).Seconds())
	}
	e.syncedLSN = upto
	e.appendMu.Lock()
	e.durable = upto
	e.appendMu.Unlock()
	return nil
}

// OnSync has f told the seconds each fdatasync of the log takes (one
// covers every record appended before it).
func (e *Store) OnSync(f func(seconds float64)) { e.onSync.Store(&f) }

// Checkpoint writes the whole index durably, then reclaims the space the
// log no longer needs (docs: Space). It syncs the log first.
func (e *Store) Checkpoint() error {
	e.cpRun.Lock()
	defer e.cpRun.Unlock()
	if err := e.usable(); err != nil {
		return err
	}
	type snap struct {
		meta    Meta
		blocks  []blockRef
		covered uint64
		since   []ckptAhead
		reqs    []reqEnt
	}
	e.cpMu.Lock()
	e.mu.Lock()
	e.appendMu.Lock()
	c := &ckpt{inc: e.inc, salt: e.salt, lsn: e.nextLSN, seg: e.tail.id, off: e.tailOff}
	snaps := make([]snap, 0, len(e.replicas))
	for _, r := range e.replicas {
		s := snap{meta: r.meta, blocks: slices.Clone(r.blocks), covered: r.covered}
		for b, lsn := range r.since {
			s.since = append(s.since, ckptAhead{block: uint32(b), lsn: lsn})
		}
		slices.SortFunc(s.since, func(a, b ckptAhead) int { return cmp.Compare(a.block, b.block) })
		if t := r.reqs; t != nil {
			// All of them, with the meta that accounts for them. The
			// ids no marker carried yet stay fresh, for the reason the
			// dirty replicas stay dirty (below); replay after this
			// checkpoint skips them in the marker that carries them.
			s.reqs = slices.Clone(t.ents[t.start:])
		}
		snaps = append(snaps, s)
	}
	// The dirty replicas stay dirty: a Sync that runs while the
	// checkpoint is being written must not count on it (a crash before
	// it lands leaves the previous one), so their next Sync writes their
	// markers as usual; replay after this checkpoint applies them again.
	e.sinceCP, e.deadSinceCP = 0, 0
	e.appendMu.Unlock()
	e.mu.Unlock()
	e.cpMu.Unlock()

	if err := e.syncTo(c.lsn); err != nil {
		return err
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].meta.Handle < snaps[j].meta.Handle })
	pieceID := make(map[*piece]uint32)
	listID := make(map[*pieceList]uint32)
	c.replicas = make([]ckptReplica, len(snaps))
	for i, s := range snaps {
		cr := ckptReplica{meta: s.meta, blocks: make([]ckptBlock, len(s.blocks)), covered: s.covered, since: s.since, reqs: s.reqs}
		for j, br := range s.blocks {
			id, ok := listID[br.l]
			if !ok {
				id = uint32(len(c.lists))
				listID[br.l] = id
				cl := ckptList{bad: br.l.bad, pieces: make([]uint32, len(br.l.pieces))}
				for k, p := range br.l.pieces {
					pid, ok := pieceID[p]
					if !ok {
						pid = uint32(len(c.pieces))
						pieceID[p] = pid
						cp := ckptPiece{lo: uint32(p.lo), n: uint32(p.n), crc: p.crc}
						if !p.zero() {
							cp.seg, cp.off = p.seg.id, p.off
						}
						c.pieces = append(c.pieces, cp)
					}
					cl.pieces[k] = pid
				}
				c.lists = append(c.lists, cl)
			}
			cr.blocks[j] = ckptBlock{block: br.b, list: id}
		}
		c.replicas[i] = cr
	}
	if err := e.writeCheckpoint(c); err != nil {
		return err
	}
	e.appendMu.Lock()
	e.cpLSN, e.cpSeg = c.lsn, c.seg
	if e.onAdvance != nil {
		e.onAdvance()
	}
	e.cpCost = int64(len(c.pieces))*32 + int64(len(c.lists))*16 + int64(len(c.replicas))*96
	punches, removes := e.reclaimLocked(c.lsn, c.seg)
	e.appendMu.Unlock()
	e.carryOut(punches, removes)
	return nil
}

func (e *Store) checkpointer() {
	defer e.wg.Done()
	t := time.NewTicker(reclaimInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-e.kick:
		case <-t.C:
			// Reclaim what died while the log was quiet (a trim frees its
			// space within seconds), when that is worth a checkpoint.
			e.appendMu.Lock()
			worth := e.deadSinceCP >= 1<<20 && e.deadSinceCP >= e.cpCost/4
			e.appendMu.Unlock()
			if !worth {
				continue
			}
		}
		if err := e.Checkpoint(); err != nil && e.usable() == nil {
			e.log.Error("checkpoint failed", "err", err)
		}
	}
}

// Close checkpoints and closes every file. Replicas refuse further use
// (ErrClosed).
func (e *Store) Close() error {
	if !e.closing.CompareAndSwap(false, true) {
		return nil
	}
	close(e.stop)
	e.wg.Wait()
	var err error
	if e.usable() == nil {
		err = e.Checkpoint()
	}
	e.cpMu.Lock()
	e.mu.Lock()
	e.closed.Store(true)
	for _, r := range e.replicas {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
	}
	e.replicas = nil
	e.mu.Unlock()
	e.cpMu.Unlock()
	e.appendMu.Lock()
	for _, s := range e.segs {
		err = errors.Join(err, s.f.Close())
	}
	e.appendMu.Unlock()
	return err
}

// Create makes a new, empty replica: it appends a create record and does
// not sync (a crash before the next Sync may lose it). ErrExists if the
// handle is present.
func (e *Store) Create(m Meta) (*Replica, error) {
	if err := validMeta(m); err != nil {
		return nil, err
	}
	m = m.clone()
	e.cpMu.RLock()
	defer e.cpMu.RUnlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.usable(); err != nil {
		return nil, err
	}
	if _, ok := e.replicas[m.Handle]; ok {
		return nil, fmt.Errorf("%w: %016x", ErrExists, uint64(m.Handle))
	}
	rec := &record{typ: recCreate, handle: m.Handle, extra: encodeMetaBody(nil, m)}
	e.appendMu.Lock()
	_, _, err := e.appendOneLocked(rec, nil)
	e.appendMu.Unlock()
	if err != nil {
		return nil, err
	}
	r := &Replica{e: e, h: m.Handle, meta: m, lastLSN: rec.lsn, covered: rec.lsn}
	e.replicas[m.Handle] = r
	return r, nil
}

// Get returns the replica of h, or ErrNotFound.
func (e *Store) Get(h Handle) (*Replica, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.usable(); err != nil {
		return nil, err
	}
	r := e.replicas[h]
	if r == nil {
		return nil, fmt.Errorf("%w: %016x", ErrNotFound, uint64(h))
	}
	return r, nil
}

// List returns the metadata of every replica, sorted by handle.
func (e *Store) List() []Meta {
	e.mu.Lock()
	rs := make([]*Replica, 0, len(e.replicas))
	for _, r := range e.replicas {
		rs = append(rs, r)
	}
	e.mu.Unlock()
	ms := make([]Meta, len(rs))
	for i, r := range rs {
		ms[i] = r.Meta()
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Handle < ms[j].Handle })
	return ms
}

// Len returns how many replicas the store holds.
func (e *Store) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.replicas)
}

// Handles returns the handle of every replica, in no order (List without
// the metadata: 8 bytes a replica).
func (e *Store) Handles() []Handle {
	e.mu.Lock()
	defer e.mu.Unlock()
	hs := make([]Handle, 0, len(e.replicas))
	for h := range e.replicas {
		hs = append(hs, h)
	}
	return hs
}

// Sample returns up to n handles of replicas picked in the map's random
// order (not uniformly, but a different selection each time).
func (e *Store) Sample(n int) []Handle {
	e.mu.Lock()
	defer e.mu.Unlock()
	hs := make([]Handle, 0, min(n, len(e.replicas)))
	for h := range e.replicas {
		if len(hs) >= n {
			break
		}
		hs = append(hs, h)
	}
	return hs
}

// Delete removes a replica (a delete record, not synced); its pieces that
// nothing else shares die. The replica refuses further use (ErrClosed).
func (e *Store) Delete(h Handle) error {
	e.cpMu.RLock()
	defer e.cpMu.RUnlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.usable(); err != nil {
		return err
	}
	r := e.replicas[h]
	if r == nil {
		return fmt.Errorf("%w: %016x", ErrNotFound, uint64(h))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := &record{typ: recDelete, handle: h}
	e.appendMu.Lock()
	_, _, err := e.appendOneLocked(rec, nil)
	if err == nil {
		e.dropAllLocked(r.blocks, rec.lsn)
		e.clearRequestsLocked(r)
		r.blocks, r.gone = nil, true
		delete(e.dirty, r)
	}
	e.appendMu.Unlock()
	if err != nil {
		return err
	}
	r.closed = true
	delete(e.replicas, h)
	return nil
}

// Clone makes dst a replica sharing every block of src (a clone record,
// not synced), in time proportional to src's written blocks and no data
// copied; dst's metadata is src's with handle dst. ErrNotFound for a
// missing src, ErrExists for an existing dst.
func (e *Store) Clone(src, dst Handle) (*Replica, error) {
	e.cpMu.RLock()
	defer e.cpMu.RUnlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.usable(); err != nil {
		return nil, err
	}
	s := e.replicas[src]
	if s == nil {
		return nil, fmt.Errorf("%w: %016x", ErrNotFound, uint64(src))
	}
	if _, ok := e.replicas[dst]; ok {
		return nil, fmt.Errorf("%w: %016x", ErrExists, uint64(dst))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.meta // its Chain is never changed in place: shared
	m.Handle = dst
	rec := &record{typ: recClone, handle: src, arg: uint64(dst), extra: encodeMetaBody(nil, m)}
	d := &Replica{e: e, h: dst, meta: m}
	e.appendMu.Lock()
	_, _, err := e.appendOneLocked(rec, nil)
	if err == nil {
		d.blocks = e.cloneBlocksLocked(s.blocks)
		d.lastLSN, d.covered = rec.lsn, rec.lsn
		// The clone takes the source's request ids. Recovery gives it
		// those the source's markers hold at the clone record; its own
		// next marker carries the rest (the source's not in a marker
		// yet), or the whole table if the source's was replaced since.
		e.rememberLocked(d, s.requestsLocked(), true)
		if t := s.reqs; t != nil && (t.fresh > 0 || t.reset) {
			if d.reqs == nil {
				d.reqs = &reqTable{}
			}
			d.reqs.fresh, d.reqs.reset = min(t.fresh, d.reqs.len()), t.reset
			e.dirty[d] = struct{}{}
		}
	}
	e.appendMu.Unlock()
	if err != nil {
		return nil, err
	}
	e.replicas[dst] = d
	return d, nil
}

// Diff returns, sorted, the blocks whose contents may differ between
// replicas a and b: those whose piece lists are not the same object. It
// reads no data; after a Clone it lists exactly the blocks written (or
// zeroed, invalidated) in either since.
func (e *Store) Diff(a, b Handle) ([]int64, error) {
	ra, err := e.Get(a)
	if err != nil {
		return nil, err
	}
	rb, err := e.Get(b)
	if err != nil {
		return nil, err
	}
	if ra == rb {
		return nil, nil
	}
	ra.mu.RLock()
	defer ra.mu.RUnlock()
	rb.mu.RLock()
	defer rb.mu.RUnlock()
	if err := errors.Join(ra.usableLocked(), rb.usableLocked()); err != nil {
		return nil, err
	}
	la, lb := ra.blocks, rb.blocks
	var out []int64
	i, j := 0, 0
	for i < len(la) || j < len(lb) {
		switch {
		case j == len(lb) || (i < len(la) && la[i].b < lb[j].b):
			out = append(out, int64(la[i].b))
			i++
		case i == len(la) || lb[j].b < la[i].b:
			out = append(out, int64(lb[j].b))
			j++
		default:
			if la[i].l != lb[j].l {
				out = append(out, int64(la[i].b))
			}
			i++
			j++
		}
	}
	return out, nil
}

// UsedBytes returns the data bytes of live pieces, each counted once
// however many replicas share it.
func (e *Store) UsedBytes() int64 {
	e.appendMu.Lock()
	defer e.appendMu.Unlock()
	return e.live
}

// Locate returns where the newest stored bytes of chunk byte off of
// replica h lie: the segment file and the offset in it. ErrNotFound when
// no stored byte holds it (a hole, zeros, a bad block). For
// fault-injection tests.
func (e *Store) Locate(h Handle, off int64) (string, int64, error) {
	r, err := e.Get(h)
	if err != nil {
		return "", 0, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if err := r.rangeErr(off, 1); err != nil {
		return "", 0, err
	}
	b, x := off/BlockSize, int32(off%BlockSize)
	if l := listOf(r.blocks, b); l != nil {
		for i := len(l.pieces) - 1; i >= 0; i-- {
			if p := l.pieces[i]; p.lo <= x && x < p.hi() {
				if p.zero() {
					break
				}
				return p.seg.path, p.off + int64(x-p.lo), nil
			}
		}
	}
	return "", 0, fmt.Errorf("%w: no stored byte at %d of replica %016x", ErrNotFound, off, uint64(h))
}
