package chunkstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// The chunk engine's on-disk encodings (format 4): log records and the
// checkpoint. See docs/architecture.md, "The chunk engine".
//
// A record is a 48-byte header, a table of 16 bytes per piece, a small
// "extra" payload (metadata, or a range length), then the data of its
// non-zero pieces, packed in table order:
//
//	[0:4)   magic
//	[4:8)   CRC32C of the engine's salt, the header (this field left out),
//	        the piece table and the extra payload
//	[8:12)  incarnation of the process that wrote it
//	[12]    type
//	[13]    0 (reserved)
//	[14:16) number of pieces
//	[16:20) length of the extra payload
//	[20:24) sync lag: every record with an LSN below LSN - lag was durable
//	        when this one was written (0xffffffff: unknown)
//	[24:32) log sequence number (LSN)
//	[32:40) handle
//	[40:48) argument: a put's or an invalidate's chunk offset, a clone's
//	        destination handle
//
// A piece entry: block u32, offset in the block u16, length-1 u16,
// CRC32C of its data u32, flags u32 (bit 0: a zero piece, no data).
const (
	recMagic      = 0x3447_4f4c // "LOG4"
	recHeaderSize = 48
	recPieceSize  = 16
	// recMaxPieces bounds the pieces of one record; larger writes are cut
	// into several records at block boundaries.
	recMaxPieces = 64
	// metaSize is the encoded size of a Meta without its chain and handle.
	metaSize = 34
	// recMaxExtra: a meta record's Meta and its request section.
	recMaxExtra = metaSize + MaxChainLen*8 + reqSectionMax
	lagUnknown  = 0xffff_ffff

	pieceZero = 1 // piece flag: reads as zeros, stores no data
)

type recType uint8

const (
	recCreate     recType = 1 // extra: Meta; a marker (see AheadBlocks)
	recPut        recType = 2 // arg: offset, extra: length; pieces
	recMeta       recType = 3 // arg: the LSN it covers (see Replica.covered), extra: Meta and request ids; a marker
	recClone      recType = 4 // handle: source, arg: destination, extra: the destination's Meta; a marker for it
	recInvalidate recType = 5 // arg: offset, extra: length
	recDelete     recType = 6
)

var errBadRecord = errors.New("chunkstore: bad engine record")

// recPiece is one entry of a record's piece table.
type recPiece struct {
	block uint32
	lo, n uint32 // byte range [lo, lo+n) within the block
	crc   uint32
	zero  bool
}

// record is a decoded record head (header, piece table, extra payload);
// the data follows it in the log.
type record struct {
	typ    recType
	inc    uint32
	lag    uint32
	lsn    uint64
	handle Handle
	arg    uint64
	pieces []recPiece
	extra  []byte
}

// headLen is the size of the head: header, piece table and extra.
func (r *record) headLen() int { return recHeaderSize + recPieceSize*len(r.pieces) + len(r.extra) }

// dataLen is the size of the data that follows the head.
func (r *record) dataLen() int64 {
	var n int64
	for _, p := range r.pieces {
		if !p.zero {
			n += int64(p.n)
		}
	}
	return n
}

// size is the record's whole size in the log.
func (r *record) size() int64 { return int64(r.headLen()) + r.dataLen() }

// durableBelow is the LSN below which the record's writer knew every
// record durable.
func (r *record) durableBelow() uint64 {
	if uint64(r.lag) > r.lsn {
		return 0
	}
	return r.lsn - uint64(r.lag)
}

// encodeRecordHead writes the record's head into b (at least headLen
// bytes), CRC included.
func encodeRecordHead(b []byte, salt uint64, r *record) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], recMagic)
	le.PutUint32(b[8:], r.inc)
	b[12] = byte(r.typ)
	b[13] = 0
	le.PutUint16(b[14:], uint16(len(r.pieces)))
	le.PutUint32(b[16:], uint32(len(r.extra)))
	le.PutUint32(b[20:], r.lag)
	le.PutUint64(b[24:], r.lsn)
	le.PutUint64(b[32:], uint64(r.handle))
	le.PutUint64(b[40:], r.arg)
	p := recHeaderSize
	for _, pc := range r.pieces {
		le.PutUint32(b[p:], pc.block)
		le.PutUint16(b[p+4:], uint16(pc.lo))
		le.PutUint16(b[p+6:], uint16(pc.n-1))
		le.PutUint32(b[p+8:], pc.crc)
		var fl uint32
		if pc.zero {
			fl = pieceZero
		}
		le.PutUint32(b[p+12:], fl)
		p += recPieceSize
	}
	copy(b[p:], r.extra)
	le.PutUint32(b[4:], recordCRC(salt, b[:r.headLen()]))
}

func recordCRC(salt uint64, head []byte) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], salt)
	c := crc32.Update(0, castagnoli, s[:])
	c = crc32.Update(c, castagnoli, head[0:4])
	return crc32.Update(c, castagnoli, head[8:])
}

// peekRecordHead parses the fixed header's lengths without verifying
// anything but their bounds: it returns the head's length, so that the
// caller can read the whole head and decode it.
func peekRecordHead(b []byte) (int, error) {
	if len(b) < recHeaderSize {
		return 0, fmt.Errorf("%w: short header", errBadRecord)
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != recMagic {
		return 0, fmt.Errorf("%w: bad magic", errBadRecord)
	}
	np, ne := int(le.Uint16(b[14:])), int(le.Uint32(b[16:]))
	if np > recMaxPieces || ne > recMaxExtra {
		return 0, fmt.Errorf("%w: %d pieces, %d extra bytes", errBadRecord, np, ne)
	}
	return recHeaderSize + np*recPieceSize + ne, nil
}

// decodeRecordHead verifies and decodes a record head (b is exactly its
// head). A record it returns has a valid CRC and is well formed: its
// pieces lie in their blocks, a put's pieces match the range it covers.
func decodeRecordHead(b []byte, salt uint64) (*record, error) {
	n, err := peekRecordHead(b)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("%w: head of %d bytes, want %d", errBadRecord, len(b), n)
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[4:]), recordCRC(salt, b); got != want {
		return nil, fmt.Errorf("%w: checksum %08x, computed %08x", errBadRecord, got, want)
	}
	r := &record{
		typ: recType(b[12]), inc: le.Uint32(b[8:]), lag: le.Uint32(b[20:]),
		lsn: le.Uint64(b[24:]), handle: Handle(le.Uint64(b[32:])), arg: le.Uint64(b[40:]),
	}
	if b[13] != 0 {
		return nil, fmt.Errorf("%w: reserved byte %#x", errBadRecord, b[13])
	}
	np := int(le.Uint16(b[14:]))
	p := recHeaderSize
	if np > 0 {
		r.pieces = make([]recPiece, np)
	}
	for i := range r.pieces {
		pc := recPiece{block: le.Uint32(b[p:]), lo: uint32(le.Uint16(b[p+4:])), n: uint32(le.Uint16(b[p+6:])) + 1, crc: le.Uint32(b[p+8:])}
		fl := le.Uint32(b[p+12:])
		if fl&^pieceZero != 0 || pc.lo+pc.n > BlockSize || pc.block >= maxBlocks {
			return nil, fmt.Errorf("%w: piece %d", errBadRecord, i)
		}
		if pc.zero = fl&pieceZero != 0; pc.zero && pc.crc != 0 {
			return nil, fmt.Errorf("%w: zero piece with a checksum", errBadRecord)
		}
		r.pieces[i] = pc
		p += recPieceSize
	}
	if p < len(b) {
		r.extra = b[p:len(b):len(b)]
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// validate checks the structure a record of its type must have.
func (r *record) validate() error {
	switch r.typ {
	case recCreate, recMeta, recClone:
		if len(r.pieces) > 0 {
			return fmt.Errorf("%w: pieces in a record of type %d", errBadRecord, r.typ)
		}
		meta, reqs := r.extra, []byte(nil)
		if r.typ == recMeta {
			meta, reqs = splitMetaExtra(r.extra)
		}
		if err := checkMetaBody(meta); err != nil {
			return err
		}
		if _, _, err := decodeRequestSection(reqs); err != nil {
			return err
		}
	case recDelete:
		if len(r.pieces) > 0 || len(r.extra) > 0 {
			return fmt.Errorf("%w: payload in a delete", errBadRecord)
		}
	case recInvalidate:
		if len(r.pieces) > 0 {
			return fmt.Errorf("%w: pieces in an invalidate", errBadRecord)
		}
		if _, _, err := r.rangeOf(); err != nil {
			return err
		}
	case recPut:
		off, n, err := r.rangeOf()
		if err != nil {
			return err
		}
		j := 0
		for b := off / BlockSize; b <= (off+n-1)/BlockSize; b++ {
			bs := b * BlockSize
			lo, hi := max(off, bs)-bs, min(off+n, bs+BlockSize)-bs
			if j < len(r.pieces) && int64(r.pieces[j].block) == b {
				pc := r.pieces[j]
				if int64(pc.lo) != lo || int64(pc.lo+pc.n) != hi {
					return fmt.Errorf("%w: piece of block %d does not match the range", errBadRecord, b)
				}
				j++
				continue
			}
			if lo != 0 || hi != BlockSize {
				return fmt.Errorf("%w: partial block %d without a piece", errBadRecord, b)
			}
		}
		if j != len(r.pieces) {
			return fmt.Errorf("%w: pieces outside the range or out of order", errBadRecord)
		}
	default:
		return fmt.Errorf("%w: type %d", errBadRecord, r.typ)
	}
	return nil
}

// rangeOf returns a put's or an invalidate's range, checked to lie in
// [0, MaxChunkSize).
func (r *record) rangeOf() (off, n int64, err error) {
	if len(r.extra) != 8 {
		return 0, 0, fmt.Errorf("%w: range payload of %d bytes", errBadRecord, len(r.extra))
	}
	o, l := r.arg, binary.LittleEndian.Uint64(r.extra)
	if l == 0 || o >= MaxChunkSize || l > MaxChunkSize-o {
		return 0, 0, fmt.Errorf("%w: range [%d, +%d)", errBadRecord, o, l)
	}
	return int64(o), int64(l), nil
}

func rangeExtra(n int64) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(n))
}

// encodeMetaBody encodes m without its handle (which the record or the
// checkpoint entry carries).
func encodeMetaBody(b []byte, m Meta) []byte {
	le := binary.LittleEndian
	b = le.AppendUint64(b, m.Epoch)
	b = le.AppendUint64(b, uint64(m.ChunkSize))
	b = le.AppendUint64(b, m.AppliedSeq)
	b = le.AppendUint64(b, m.AppliedEpoch)
	b = le.AppendUint16(b, uint16(len(m.Chain)))
	for _, id := range m.Chain {
		b = le.AppendUint64(b, id)
	}
	return b
}

// splitMetaExtra splits a meta record's payload into its encoded Meta
// and its request section (empty when it has none).
func splitMetaExtra(b []byte) (meta, reqs []byte) {
	if len(b) < metaSize {
		return b, nil
	}
	n := metaSize + 8*int(binary.LittleEndian.Uint16(b[32:]))
	if n > len(b) {
		return b, nil
	}
	return b[:n:n], b[n:]
}

// decodeMetaShared decodes exactly one encoded Meta (handle 0), taking
// the chain from chains when an identical one was decoded before (chains
// may be nil): a disk's
// replicas have few distinct chains, and a Meta's Chain is never changed
// in place.
func decodeMetaShared(b []byte, chains map[string][]uint64) (Meta, error) {
	var m Meta
	if err := checkMetaBody(b); err != nil {
		return m, err
	}
	le := binary.LittleEndian
	m.Epoch = le.Uint64(b[0:])
	m.ChunkSize = int64(le.Uint64(b[8:]))
	m.AppliedSeq = le.Uint64(b[16:])
	m.AppliedEpoch = le.Uint64(b[24:])
	nc := int(le.Uint16(b[32:]))
	if nc == 0 {
		return m, nil
	}
	raw := b[metaSize:]
	if c, ok := chains[string(raw)]; ok {
		m.Chain = c
		return m, nil
	}
	m.Chain = make([]uint64, nc)
	for i := range m.Chain {
		m.Chain[i] = le.Uint64(raw[8*i:])
	}
	if chains != nil {
		chains[string(raw)] = m.Chain
	}
	return m, nil
}

// checkMetaBody checks an encoded Meta without decoding it.
func checkMetaBody(b []byte) error {
	if len(b) < metaSize {
		return fmt.Errorf("%w: metadata of %d bytes", errBadRecord, len(b))
	}
	le := binary.LittleEndian
	size, nc := int64(le.Uint64(b[8:])), int(le.Uint16(b[32:]))
	if len(b) != metaSize+8*nc {
		return fmt.Errorf("%w: metadata of %d bytes for a chain of %d", errBadRecord, len(b), nc)
	}
	if size <= 0 || size > MaxChunkSize || nc > MaxChainLen {
		return fmt.Errorf("%w: %w: chunk size %d, chain of %d", errBadRecord, ErrInvalidMeta, size, nc)
	}
	return nil
}

// slab hands out slices carved from larger arrays: fewer, larger
// allocations for many small slices that live about as long.
type slab[T any] struct{ free []T }

const slabLen = 4096

// take returns a slice of n zero values with no spare capacity.
func (s *slab[T]) take(n int) []T {
	if n > len(s.free) {
		if n > slabLen/4 {
			return make([]T, n)
		}
		s.free = make([]T, slabLen)
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}

// The checkpoint: the whole index at one LSN.
//
//	magic u64, version u32, incarnation u32, salt u64, LSN u64,
//	replay position (segment u64, offset u64),
//	counts of pieces u32, lists u32, replicas u32;
//	pieces:   segment u64 (0: a zero piece), offset u64, lo u16, n-1 u16, CRC u32;
//	lists:    flags u8 (1: bad), count u8, piece indexes u32...;
//	replicas: handle u64, Meta, block count u32, (block u32, list index u32)...,
//	          covered LSN u64, ahead count u32, (block u32, LSN u64)...,
//	          request count u32, (client u64, id u64, seq u64, offset u64,
//	          stamp u64)... (version 6; version 5 has none);
//	CRC32C of all the above.
const (
	ckptMagic      = 0x3450_4b43_4e45_5443 // "CTENCKP4"
	ckptVersion    = 6
	ckptVersionV5  = 5 // without request ids, still read
	ckptReqSize    = reqSize + 8
	ckptHeaderSize = 60
	ckptPieceSize  = 24
	listBad        = 1
)

var errBadCheckpoint = errors.New("chunkstore: bad engine checkpoint")

type ckptPiece struct {
	seg   uint64 // 0: zero piece
	off   int64
	lo, n uint32
	crc   uint32
}

type ckptList struct {
	bad    bool
	pieces []uint32 // indexes into ckpt.pieces, oldest first
}

type ckptBlock struct{ block, list uint32 }

// ckptAhead is a block changed after its replica's covered LSN, and the
// LSN of its last change.
type ckptAhead struct {
	block uint32
	lsn   uint64
}

type ckptReplica struct {
	meta    Meta
	blocks  []ckptBlock // strictly increasing blocks
	covered uint64
	since   []ckptAhead // strictly increasing blocks, LSNs above covered
	reqs    []reqEnt    // request ids, oldest first: strictly increasing stamps
}

type ckpt struct {
	inc      uint32
	salt     uint64
	lsn      uint64 // the first LSN not covered
	seg      uint64 // where the record of LSN lsn starts
	off      int64
	pieces   []ckptPiece
	lists    []ckptList
	replicas []ckptReplica // strictly increasing handles
}

func encodeCheckpoint(c *ckpt) []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, ckptHeaderSize+len(c.pieces)*ckptPieceSize+len(c.lists)*8+len(c.replicas)*64)
	b = le.AppendUint64(b, ckptMagic)
	b = le.AppendUint32(b, ckptVersion)
	b = le.AppendUint32(b, c.inc)
	b = le.AppendUint64(b, c.salt)
	b = le.AppendUint64(b, c.lsn)
	b = le.AppendUint64(b, c.seg)
	b = le.AppendUint64(b, uint64(c.off))
	b = le.AppendUint32(b, uint32(len(c.pieces)))
	b = le.AppendUint32(b, uint32(len(c.lists)))
	b = le.AppendUint32(b, uint32(len(c.replicas)))
	for _, p := range c.pieces {
		b = le.AppendUint64(b, p.seg)
		b = le.AppendUint64(b, uint64(p.off))
		b = le.AppendUint16(b, uint16(p.lo))
		b = le.AppendUint16(b, uint16(p.n-1))
		b = le.AppendUint32(b, p.crc)
	}
	for _, l := range c.lists {
		var fl byte
		if l.bad {
			fl = listBad
		}
		b = append(b, fl, byte(len(l.pieces)))
		for _, i := range l.pieces {
			b = le.AppendUint32(b, i)
		}
	}
	for _, r := range c.replicas {
		b = le.AppendUint64(b, uint64(r.meta.Handle))
		b = encodeMetaBody(b, r.meta)
		b = le.AppendUint32(b, uint32(len(r.blocks)))
		for _, bl := range r.blocks {
			b = le.AppendUint32(b, bl.block)
			b = le.AppendUint32(b, bl.list)
		}
		b = le.AppendUint64(b, r.covered)
		b = le.AppendUint32(b, uint32(len(r.since)))
		for _, a := range r.since {
			b = le.AppendUint32(b, a.block)
			b = le.AppendUint64(b, a.lsn)
		}
		b = le.AppendUint32(b, uint32(len(r.reqs)))
		for _, q := range r.reqs {
			b = appendRequest(b, q.Request)
			b = le.AppendUint64(b, q.stamp)
		}
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// ckptVisitor receives a checkpoint's contents, in order, as
// walkCheckpoint decodes them: the header first (with the counts of
// pieces, lists and replicas), then each piece, list and replica. The
// slices of a list or replica are the walk's own, valid during the call
// only (meta's Chain excepted: replicas with the same chain share one).
// An error from a visitor ends the walk.
type ckptVisitor struct {
	header  func(c *ckpt, np, nl, nr uint32) error
	piece   func(i int, p ckptPiece) error
	list    func(i int, l ckptList) error
	replica func(i int, r *ckptReplica) error
}

// walkCheckpoint verifies the checkpoint of size bytes that src holds and
// hands its contents to v as it decodes them, holding neither the file's
// bytes nor a table of its own: the engine's open builds its index
// straight from the file, read twice in a bounded buffer (once for the
// checksum, once to decode), so the peak memory of an open of a million
// replicas is the index. Every index it hands out is in range, every piece
// lies in its block and every list is at most 255 pieces; the checksum of
// the whole is verified before the first call.
func walkCheckpoint(src io.ReaderAt, size int64, v ckptVisitor) (err error) {
	le := binary.LittleEndian
	if size < ckptHeaderSize+4 {
		return fmt.Errorf("%w: %d bytes", errBadCheckpoint, size)
	}
	crc := crc32.New(castagnoli)
	if _, err := io.Copy(crc, io.NewSectionReader(src, 0, size-4)); err != nil {
		return err
	}
	var tail [4]byte
	if _, err := src.ReadAt(tail[:], size-4); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if got, want := le.Uint32(tail[:]), crc.Sum32(); got != want {
		return fmt.Errorf("%w: checksum %08x, computed %08x", errBadCheckpoint, got, want)
	}
	body := make([]byte, ckptHeaderSize)
	if _, err := src.ReadAt(body, 0); err != nil {
		return err
	}
	version := le.Uint32(body[8:])
	if le.Uint64(body[0:]) != ckptMagic || (version != ckptVersion && version != ckptVersionV5) {
		return fmt.Errorf("%w: bad magic or version", errBadCheckpoint)
	}
	c := &ckpt{
		inc: le.Uint32(body[12:]), salt: le.Uint64(body[16:]), lsn: le.Uint64(body[24:]),
		seg: le.Uint64(body[32:]), off: int64(le.Uint64(body[40:])),
	}
	if c.off < 0 || c.seg == 0 {
		return fmt.Errorf("%w: replay position %d:%d", errBadCheckpoint, c.seg, c.off)
	}
	np, nl, nr := le.Uint32(body[48:]), le.Uint32(body[52:]), le.Uint32(body[56:])
	d := &decoder{r: bufio.NewReaderSize(io.NewSectionReader(src, ckptHeaderSize, size-4-ckptHeaderSize), 1<<20), n: int(size - 4 - ckptHeaderSize)}
	defer func() {
		if d.err != nil {
			err = d.err // a read error wins over a verdict on the zeros read instead
		}
	}()
	// Bound each count by the bytes left before anyone allocates for it.
	if uint64(np)*ckptPieceSize+uint64(nl)*2+uint64(nr)*(8+metaSize+16) > uint64(d.left()) {
		return fmt.Errorf("%w: %d pieces, %d lists and %d replicas in %d bytes", errBadCheckpoint, np, nl, nr, d.left())
	}
	if err := v.header(c, np, nl, nr); err != nil {
		return err
	}
	for i := range int(np) {
		p := ckptPiece{seg: d.u64(), off: int64(d.u64()), lo: uint32(d.u16()), n: uint32(d.u16()) + 1, crc: d.u32()}
		if p.off < 0 || p.lo+p.n > BlockSize || (p.seg == 0 && (p.off != 0 || p.crc != 0)) {
			return fmt.Errorf("%w: piece %d", errBadCheckpoint, i)
		}
		if err := v.piece(i, p); err != nil {
			return err
		}
	}
	var listPieces [255]uint32
	for i := range int(nl) {
		if d.left() < 2 {
			return fmt.Errorf("%w: list %d", errBadCheckpoint, i)
		}
		fl, n := d.u8(), int(d.u8())
		if fl&^listBad != 0 || (fl == listBad) != (n == 0) || d.left() < 4*n {
			return fmt.Errorf("%w: list %d", errBadCheckpoint, i)
		}
		l := ckptList{bad: fl == listBad, pieces: listPieces[:n:n]}
		for j := range l.pieces {
			if l.pieces[j] = d.u32(); l.pieces[j] >= np {
				return fmt.Errorf("%w: list %d: piece %d", errBadCheckpoint, i, l.pieces[j])
			}
		}
		if n == 0 {
			l.pieces = nil
		}
		if err := v.list(i, l); err != nil {
			return err
		}
	}
	var r ckptReplica
	var prev Handle
	chains := make(map[string][]uint64)
	for i := range int(nr) {
		if d.left() < 8+metaSize {
			return fmt.Errorf("%w: replica %d", errBadCheckpoint, i)
		}
		h := Handle(d.u64())
		nc := int(le.Uint16(d.peek(34)[32:]))
		if d.left() < metaSize+8*nc+4 {
			return fmt.Errorf("%w: replica %d", errBadCheckpoint, i)
		}
		m, err := decodeMetaShared(d.bytes(metaSize+8*nc), chains)
		if err != nil {
			return fmt.Errorf("%w: replica %d: %w", errBadCheckpoint, i, err)
		}
		m.Handle = h
		if i > 0 && h <= prev {
			return fmt.Errorf("%w: replica %d out of order", errBadCheckpoint, i)
		}
		prev = h
		nb := d.u32()
		if uint64(nb)*8+12 > uint64(d.left()) || int64(nb) > numBlocks(m.ChunkSize) {
			return fmt.Errorf("%w: replica %d: %d blocks", errBadCheckpoint, i, nb)
		}
		r.meta, r.blocks = m, r.blocks[:0]
		for j := range int(nb) {
			bl := ckptBlock{block: d.u32(), list: d.u32()}
			if int64(bl.block) >= numBlocks(m.ChunkSize) || bl.list >= nl || (j > 0 && bl.block <= r.blocks[j-1].block) {
				return fmt.Errorf("%w: replica %d block %d", errBadCheckpoint, i, j)
			}
			r.blocks = append(r.blocks, bl)
		}
		if d.left() < 12 {
			return fmt.Errorf("%w: replica %d", errBadCheckpoint, i)
		}
		r.covered = d.u64()
		na := d.u32()
		if uint64(na)*12 > uint64(d.left()) || int64(na) > numBlocks(m.ChunkSize) {
			return fmt.Errorf("%w: replica %d: %d ahead blocks", errBadCheckpoint, i, na)
		}
		r.since = r.since[:0]
		for j := range int(na) {
			a := ckptAhead{block: d.u32(), lsn: d.u64()}
			if int64(a.block) >= numBlocks(m.ChunkSize) || a.lsn <= r.covered || a.lsn >= c.lsn || (j > 0 && a.block <= r.since[j-1].block) {
				return fmt.Errorf("%w: replica %d ahead block %d", errBadCheckpoint, i, j)
			}
			r.since = append(r.since, a)
		}
		if r.covered >= c.lsn {
			return fmt.Errorf("%w: replica %d covers LSN %d, past the checkpoint's %d", errBadCheckpoint, i, r.covered, c.lsn)
		}
		r.reqs = r.reqs[:0]
		if version >= 6 {
			if d.left() < 4 {
				return fmt.Errorf("%w: replica %d", errBadCheckpoint, i)
			}
			nq := d.u32()
			if nq > MaxRequests || uint64(nq)*ckptReqSize > uint64(d.left()) {
				return fmt.Errorf("%w: replica %d: %d request ids", errBadCheckpoint, i, nq)
			}
			for j := range int(nq) {
				q := reqEnt{Request: decodeRequest(d.bytes(reqSize))}
				q.stamp = d.u64()
				if (q.Client == 0 && q.ID == 0) || (j > 0 && q.stamp <= r.reqs[j-1].stamp) {
					return fmt.Errorf("%w: replica %d request id %d", errBadCheckpoint, i, j)
				}
				r.reqs = append(r.reqs, q)
			}
		}
		if err := v.replica(i, &r); err != nil {
			return err
		}
	}
	if d.left() != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errBadCheckpoint, d.left())
	}
	return nil
}

// decoder reads little-endian fields from a stream of known length;
// callers check left() first. A read error is kept (err) and zeros are
// returned from then on.
type decoder struct {
	r       *bufio.Reader
	n       int // bytes not read yet
	err     error
	scratch []byte
}

func (d *decoder) left() int { return d.n }

// next returns the next k bytes (valid until the next call).
func (d *decoder) next(k int) []byte {
	if cap(d.scratch) < k {
		d.scratch = make([]byte, k)
	}
	b := d.scratch[:k]
	if d.err != nil {
		clear(b)
		return b
	}
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.err = err
		clear(b)
	}
	d.n -= k
	return b
}

// peek returns the next k bytes without consuming them (valid until the
// next call).
func (d *decoder) peek(k int) []byte {
	if d.err == nil {
		if b, err := d.r.Peek(k); err == nil {
			return b
		} else {
			d.err = err
		}
	}
	return make([]byte, k)
}

func (d *decoder) u8() byte           { return d.next(1)[0] }
func (d *decoder) u16() uint16        { return binary.LittleEndian.Uint16(d.next(2)) }
func (d *decoder) u32() uint32        { return binary.LittleEndian.Uint32(d.next(4)) }
func (d *decoder) u64() uint64        { return binary.LittleEndian.Uint64(d.next(8)) }
func (d *decoder) bytes(n int) []byte { return d.next(n) }
