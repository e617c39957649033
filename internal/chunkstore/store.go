package chunkstore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/catena-io/catena/internal/durable"
)

// Errors returned by the store.
var (
	ErrNotFound = errors.New("chunkstore: replica not found")
	ErrExists   = errors.New("chunkstore: replica exists")
	ErrCorrupt  = errors.New("chunkstore: checksum mismatch")
	ErrRange    = errors.New("chunkstore: range outside the chunk")
	ErrNoSpace  = errors.New("chunkstore: no space left on device")
	ErrClosed   = errors.New("chunkstore: closed")
	// ErrInvalidMeta: Create got a chunk size outside (0, MaxChunkSize] or
	// a chain longer than MaxChainLen.
	ErrInvalidMeta = errors.New("chunkstore: invalid replica metadata")
	// ErrBadHeader: a header slot failed to decode (torn, corrupt, or of
	// another format). Open skips such files; it is not returned by I/O.
	ErrBadHeader = errors.New("chunkstore: bad replica header")
	// ErrFailed: a Sync of the replica failed earlier; what reached the disk
	// is unknown, so the replica refuses further I/O (reopen the store to
	// recover from what is on disk).
	ErrFailed = errors.New("chunkstore: replica failed")
)

// BlockSize is the checksum granularity: one CRC32C per 64 KiB block.
const BlockSize = 64 << 10

// Handle identifies a chunk.
type Handle uint64

// Meta is a replica's metadata, persisted in its file header.
type Meta struct {
	Handle     Handle
	Epoch      uint64
	ChunkSize  int64
	Chain      []uint64 // member server ids, head first
	AppliedSeq uint64   // highest sequence number applied (durable after Sync)
	// AppliedEpoch is the epoch of the update at AppliedSeq (0 when none
	// or unknown); (AppliedEpoch, AppliedSeq) names the replica's state
	// for delta resync.
	AppliedEpoch uint64
}

func (m Meta) clone() Meta {
	m.Chain = append([]uint64(nil), m.Chain...)
	return m
}

// Config configures a fileStore.

// fileStore keeps the replicas of one chunkserver data directory.
// Safe for concurrent use.
type fileStore struct {
	fs         FS
	chunksDir  string
	corruptDir string
	log        *slog.Logger
	zeroCRC    uint32
	bufs       sync.Pool // *[BlockSize]byte scratch blocks for reads
	files      fileCache

	mu       sync.Mutex
	replicas map[Handle]*fileReplica // nil value: being created
	closed   bool
}

// Open opens (creating if needed) the store in dir on fs, loading every
// replica's header.
func openFileStore(fs FS, dir string) (*fileStore, error) {
	return openFileStoreConfig(Config{FS: fs, Dir: dir})
}

// OpenConfig is Open with a Config. A replica file without a valid header
// is logged and moved to Dir/corrupt; it does not fail Open.
func openFileStoreConfig(cfg Config) (*fileStore, error) {
	if cfg.FS == nil {
		return nil, errors.New("chunkstore: Config.FS is nil")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &fileStore{
		fs:         cfg.FS,
		chunksDir:  path.Join(cfg.Dir, "chunks"),
		corruptDir: path.Join(cfg.Dir, "corrupt"),
		log:        log.With("component", "chunkstore"),
		zeroCRC:    zeroBlockCRC(),
		replicas:   make(map[Handle]*fileReplica),
	}
	s.files.fs, s.files.limit = cfg.FS, cfg.MaxOpenFiles
	if s.files.limit <= 0 {
		s.files.limit = DefaultMaxOpenFiles
	}
	s.bufs.New = func() any { return new([BlockSize]byte) }
	for _, d := range []string{s.chunksDir, s.corruptDir} {
		if err := durable.MkdirAllFS(s.fs, d, 0o755); err != nil {
			return nil, fmt.Errorf("chunkstore: open %s: %w", d, err)
		}
	}
	names, err := s.fs.ReadDir(s.chunksDir)
	if err != nil {
		return nil, fmt.Errorf("chunkstore: open: %w", err)
	}
	for _, name := range names {
		h, ok := parseName(name)
		if !ok {
			// Leftovers of an interrupted Create (*.tmp) are reused or removed by
			// the next Create or Delete of their handle; a second fileStore may be
			// open on the same directory (a checker), so Open removes nothing.
			continue
		}
		r, err := s.load(h)
		if err != nil {
			s.log.Error("replica unreadable, moving it aside", "handle", fmt.Sprintf("%016x", uint64(h)), "err", err)
			s.moveAside(name)
			continue
		}
		s.replicas[h] = r
	}
	return s, nil
}

func fileName(h Handle) string { return fmt.Sprintf("%016x.chunk", uint64(h)) }

func parseName(name string) (Handle, bool) {
	hex, ok := strings.CutSuffix(name, ".chunk")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return 0, false
	}
	return Handle(v), true
}

func (s *fileStore) path(h Handle) string { return path.Join(s.chunksDir, fileName(h)) }

func (s *fileStore) moveAside(name string) {
	err := s.fs.Rename(path.Join(s.chunksDir, name), path.Join(s.corruptDir, name))
	if err == nil {
		err = errors.Join(s.fs.SyncDir(s.corruptDir), s.fs.SyncDir(s.chunksDir))
	}
	if err != nil {
		s.log.Error("cannot move replica aside", "file", name, "err", err)
	}
}

// load opens a replica file and recovers its state; see doc.go, Recovery.
// The checksum repairs it may write are not synced: they are redone by the
// next recovery if lost, so the file counts as clean.
func (s *fileStore) load(h Handle) (*fileReplica, error) {
	s.files.reserve()
	f, err := s.fs.OpenFile(s.path(h), os.O_RDWR, 0)
	if err != nil {
		s.files.unreserve()
		return nil, err
	}
	r, err := s.recover(h, f)
	if err != nil {
		f.Close()
		s.files.unreserve()
		return nil, err
	}
	s.files.adopt(r, f)
	return r, nil
}

func (s *fileStore) recover(h Handle, f File) (*fileReplica, error) {
	slots := make([]byte, 2*slotSize)
	if _, err := f.ReadAt(slots, 0); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	var hs [2]header
	var errs [2]error
	for i := range hs {
		hs[i], errs[i] = decodeHeader(slots[i*slotSize : (i+1)*slotSize])
		if errs[i] == nil && hs[i].Meta.Handle != h {
			errs[i] = fmt.Errorf("%w: handle %016x in file of %016x", ErrBadHeader, uint64(hs[i].Meta.Handle), uint64(h))
		}
	}
	// newest: the valid slot with the higher generation; other: the other
	// valid slot, or -1.
	newest, other := -1, -1
	switch {
	case errs[0] == nil && errs[1] == nil:
		newest, other = 0, 1
		if hs[1].Gen > hs[0].Gen {
			newest, other = 1, 0
		}
	case errs[0] == nil:
		newest = 0
	case errs[1] == nil:
		newest = 1
	default:
		return nil, errors.Join(errs[0], errs[1])
	}
	nb := numBlocks(hs[newest].Meta.ChunkSize)
	if other >= 0 && (hs[other].Meta.ChunkSize != hs[newest].Meta.ChunkSize || hs[other].Version != hs[newest].Version) {
		other = -1 // the chunk size and format never change; a mismatch is corruption
	}
	lay := layoutOf(hs[newest].Version)
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.Size() < lay.data+nb*BlockSize {
		return nil, fmt.Errorf("%w: file of %d bytes is short", ErrBadHeader, fi.Size())
	}
	raw := make([]byte, nb*4)
	if _, err := f.ReadAt(raw, tableOff); err != nil {
		return nil, fmt.Errorf("read checksums: %w", err)
	}
	table := make([]uint32, nb)
	for i := range table {
		table[i] = leUint32(raw[i*4:])
	}
	r := &fileReplica{s: s, h: h, lay: lay, table: table, dirty: make(map[uint32]uint32), gen: hs[newest].Gen,
		lag: make(map[uint32]uint32)}

	// The newest header is trusted unless its Sync demonstrably did not
	// complete: a block it lists still holds its content of the previous
	// Sync (Old). A block matching neither Old nor New was torn, or written
	// again later; it reads as ErrCorrupt or as the newer content, and says
	// nothing about whether this Sync completed.
	good := newest
	buf := make([]byte, BlockSize)
	for _, d := range hs[newest].Dirty {
		if _, err := f.ReadAt(buf, lay.data+int64(d.Block)*BlockSize); err != nil {
			return nil, fmt.Errorf("read block %d: %w", d.Block, err)
		}
		if e := blockEntry(buf, s.zeroCRC); e != d.New && e == d.Old && other >= 0 {
			good = other
		}
		if good != newest {
			break
		}
	}
	// The table in the file lags the headers (a Sync writes the entries
	// of the previous header's blocks, then its own header): establish the
	// entries the valid headers vouch for where the data holds them, the
	// older header first. The next Sync writes them to the table.
	establish := func(hd header) error {
		for _, d := range hd.Dirty {
			if table[d.Block] == d.New {
				continue
			}
			if _, err := f.ReadAt(buf, lay.data+int64(d.Block)*BlockSize); err != nil {
				return fmt.Errorf("read block %d: %w", d.Block, err)
			}
			if blockEntry(buf, s.zeroCRC) == d.New {
				table[d.Block] = d.New
				r.lag[d.Block] = d.New
			}
		}
		return nil
	}
	if other >= 0 && hs[other].Gen < hs[good].Gen {
		if err := establish(hs[other]); err != nil {
			return nil, err
		}
	}
	if err := establish(hs[good]); err != nil {
		return nil, err
	}
	if good != newest {
		// A table written by an older version of this code may hold the
		// rejected Sync's entries: a block it listed that still holds its
		// previous content gets its previous entry back (one holding the
		// newer content is found by recoverPending through its pending
		// entry).
		for _, d := range hs[newest].Dirty {
			if table[d.Block] == d.Old {
				continue
			}
			if _, err := f.ReadAt(buf, lay.data+int64(d.Block)*BlockSize); err != nil {
				return nil, fmt.Errorf("read block %d: %w", d.Block, err)
			}
			if blockEntry(buf, s.zeroCRC) == d.Old {
				table[d.Block] = d.Old
				r.lag[d.Block] = d.Old
			}
		}
		s.log.Warn("last sync of replica incomplete, using the previous header",
			"handle", fmt.Sprintf("%016x", uint64(h)), "applied", hs[good].Meta.AppliedSeq,
			"lost_applied", hs[newest].Meta.AppliedSeq)
	}
	if len(r.lag) > 0 {
		r.changes++ // written by the next Sync
	}
	r.meta = hs[good].Meta.clone()
	r.slot = good
	if err := r.recoverPending(f, buf); err != nil {
		return nil, err
	}
	return r, nil
}

// recoverPending classifies, after the header is chosen, every block the
// pending table says was written since the last completed Sync (format
// 3): content matching the pending entry is a whole newer write that
// reached the disk (a process crash keeps the page cache), adopted and
// listed as ahead; content matching the table is the synced one; anything
// else is a torn write, listed as bad. Blocks without a pending write are
// as synced, unless the disk lost synced data (scrubbing finds that).
func (r *fileReplica) recoverPending(f File, buf []byte) error {
	if r.lay.pending == 0 {
		return nil
	}
	nb := int64(len(r.table))
	raw := make([]byte, nb*4)
	if _, err := f.ReadAt(raw, r.lay.pending); err != nil {
		return fmt.Errorf("read pending checksums: %w", err)
	}
	zero := r.s.zeroCRC
	for b := range nb {
		p := leUint32(raw[b*4:])
		if p == 0 || p == r.table[b]^zero {
			continue // no write, or one a durable header vouches for
		}
		if _, err := f.ReadAt(buf, r.lay.data+b*BlockSize); err != nil {
			return fmt.Errorf("read block %d: %w", b, err)
		}
		// The table (after the headers' entries were established) only
		// holds entries a durable header vouches for, so a pending entry
		// that differs marks a write after the trusted header.
		switch e := blockEntry(buf, zero); {
		case e^zero == p:
			if e != r.table[b] {
				r.setEntryLocked(b, e)
			}
			r.ahead = append(r.ahead, b)
		case e == r.table[b]:
			// The newer write never reached the data.
		default:
			r.markBad(b)
		}
	}
	if len(r.ahead) > 0 {
		r.changes++ // the adopted entries go to the table at the next Sync
		r.s.log.Info("replica holds writes made after its last sync",
			"handle", fmt.Sprintf("%016x", uint64(r.h)), "applied", r.meta.AppliedSeq, "blocks", len(r.ahead))
	}
	if len(r.bad) > 0 {
		r.s.log.Warn("replica has torn blocks", "handle", fmt.Sprintf("%016x", uint64(r.h)), "blocks", r.BadBlocks())
	}
	return nil
}

// Create makes a new, empty replica, durable before it returns.
// ErrExists if the handle is present.
func (s *fileStore) Create(m Meta) (*fileReplica, error) {
	if err := validMeta(m); err != nil {
		return nil, err
	}
	m = m.clone()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := s.replicas[m.Handle]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %016x", ErrExists, uint64(m.Handle))
	}
	s.replicas[m.Handle] = nil // reserved while the file is made
	s.mu.Unlock()

	r, err := s.create(m)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || s.closed {
		delete(s.replicas, m.Handle)
		if err == nil {
			r.close()
			err = ErrClosed
		}
		return nil, err
	}
	s.replicas[m.Handle] = r
	return r, nil
}

func (s *fileStore) create(m Meta) (*fileReplica, error) {
	final := s.path(m.Handle)
	tmp := final + ".tmp"
	s.files.reserve()
	f, err := s.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		s.files.unreserve()
		return nil, ioErr("create", m.Handle, err)
	}
	nb := numBlocks(m.ChunkSize)
	err = func() error {
		if err := f.Truncate(dataOff + nb*BlockSize); err != nil { // format 3
			return ioErr("create: truncate", m.Handle, err)
		}
		// Reserve the header and checksum table so that no Sync fails for
		// lack of space after data was written.
		if err := f.Allocate(0, tableOff+nb*4); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return ioErr("create: allocate", m.Handle, err)
		}
		if err := f.Allocate(pendingOff, nb*4); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			return ioErr("create: allocate", m.Handle, err)
		}
		if _, err := f.WriteAt(encodeHeader(header{Version: formatVersion, Gen: 1, Meta: m}), 0); err != nil {
			return ioErr("create: write header", m.Handle, err)
		}
		if err := f.Sync(); err != nil {
			return ioErr("create: sync", m.Handle, err)
		}
		if err := s.fs.Rename(tmp, final); err != nil {
			return ioErr("create: rename", m.Handle, err)
		}
		return ioErr("create: sync dir", m.Handle, s.fs.SyncDir(s.chunksDir))
	}()
	if err != nil {
		f.Close()
		s.files.unreserve()
		s.fs.Remove(tmp)
		return nil, err
	}
	r := &fileReplica{
		s: s, h: m.Handle, lay: layoutOf(formatVersion), meta: m, gen: 1, slot: 0,
		table: make([]uint32, nb), dirty: make(map[uint32]uint32),
		lag: make(map[uint32]uint32),
	}
	s.files.adopt(r, f) // synced above, so clean
	return r, nil
}

// Get returns the replica of h, or ErrNotFound.
func (s *fileStore) Get(h Handle) (*fileReplica, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	r := s.replicas[h]
	if r == nil {
		return nil, fmt.Errorf("%w: %016x", ErrNotFound, uint64(h))
	}
	return r, nil
}

// List returns the metadata of every replica, sorted by handle.
func (s *fileStore) List() []Meta {
	s.mu.Lock()
	rs := make([]*fileReplica, 0, len(s.replicas))
	for _, r := range s.replicas {
		if r != nil {
			rs = append(rs, r)
		}
	}
	s.mu.Unlock()
	ms := make([]Meta, len(rs))
	for i, r := range rs {
		ms[i] = r.Meta()
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Handle < ms[j].Handle })
	return ms
}

// Delete removes a replica and its file. The fileReplica refuses further I/O
// with ErrClosed.
func (s *fileStore) Delete(h Handle) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	r := s.replicas[h]
	if r == nil {
		s.mu.Unlock()
		return fmt.Errorf("%w: %016x", ErrNotFound, uint64(h))
	}
	delete(s.replicas, h)
	s.mu.Unlock()

	r.close()
	p := s.path(h)
	if err := s.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ioErr("delete", h, err)
	}
	s.fs.Remove(p + ".tmp") // best effort: a leftover of a crashed Create
	return ioErr("delete: sync dir", h, s.fs.SyncDir(s.chunksDir))
}

// UsedBytes returns the bytes allocated on disk by all replicas.
func (s *fileStore) UsedBytes() int64 {
	s.mu.Lock()
	rs := make([]*fileReplica, 0, len(s.replicas))
	for _, r := range s.replicas {
		if r != nil {
			rs = append(rs, r)
		}
	}
	s.mu.Unlock()
	var n int64
	for _, r := range rs {
		n += r.UsedBytes()
	}
	return n
}

// Close closes every replica file. It does not Sync: what was not synced
// may or may not be on disk.
func (s *fileStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rs := s.replicas
	s.replicas = nil
	s.mu.Unlock()
	var errs []error
	for _, r := range rs {
		if r != nil {
			errs = append(errs, r.close())
		}
	}
	return errors.Join(errs...)
}

// ioErr wraps an error of the file system, mapping ENOSPC to ErrNoSpace.
// It returns nil for a nil err.
func ioErr(op string, h Handle, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: replica %016x: %s: %w", ErrNoSpace, uint64(h), op, err)
	}
	return fmt.Errorf("chunkstore: replica %016x: %s: %w", uint64(h), op, err)
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func putLeUint32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
