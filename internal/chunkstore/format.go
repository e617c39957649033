package chunkstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// File layout of one replica; see doc.go.
const (
	// MaxChunkSize is the largest chunk a replica can hold.
	MaxChunkSize = 1 << 30
	// MaxChainLen is the most chain members a header records.
	MaxChainLen = 32

	slotSize  = 4096
	tableOff  = 2 * slotSize
	maxBlocks = MaxChunkSize / BlockSize
	tableSize = maxBlocks * 4
	// pendingOff is where format 3 keeps the pending checksum table: per
	// block, the raw CRC32C of the content last written to it (0: none),
	// written before the data (see doc.go, Crash behaviour).
	pendingOff = tableOff + tableSize
	// dataOff is where format 3 keeps chunk byte 0 (139264, 4 KiB aligned).
	dataOff = pendingOff + tableSize
	// DataOffset is where a replica file of the current format keeps chunk
	// byte 0, for tools and tests that read replica files raw.
	DataOffset = dataOff
	// dataOffV2 is where format 2 (no pending table) keeps chunk byte 0.
	dataOffV2  = tableOff + tableSize
	fsPageSize = 4096

	headerMagic = 0x314b4e4843544143 // "CATCHNK1" little endian
	// formatVersion is the format of new replicas; formatV2 files are
	// still read and written in their own layout.
	formatVersion = 3
	formatV2      = 2

	// Fixed header fields: magic 8, version 4, flags 4, gen 8, handle 8,
	// epoch 8, chunk size 8, applied 8, chain len 2, dirty len 2,
	// applied epoch 8.
	headerFixed = 68
	// maxDirty is how many dirty-block records (12 bytes) fit in a slot
	// next to a full chain and the trailing CRC.
	maxDirty = (slotSize - headerFixed - MaxChainLen*8 - 4) / 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// dirtyEntry records a block changed since the previous Sync, with its
// checksum entry as of the previous Sync (Old) and as of this one (New).
type dirtyEntry struct {
	Block uint32
	Old   uint32
	New   uint32
}

// header is the content of one header slot.
type header struct {
	Version uint32 // formatVersion or formatV2
	Gen     uint64
	Meta    Meta
	Dirty   []dirtyEntry // strictly increasing blocks
}

// numBlocks is the number of checksum blocks of a chunk.
func numBlocks(chunkSize int64) int64 { return (chunkSize + BlockSize - 1) / BlockSize }

func validMeta(m Meta) error {
	if m.ChunkSize <= 0 || m.ChunkSize > MaxChunkSize {
		return fmt.Errorf("%w: chunk size %d not in (0, %d]", ErrInvalidMeta, m.ChunkSize, MaxChunkSize)
	}
	if len(m.Chain) > MaxChainLen {
		return fmt.Errorf("%w: chain of %d members, at most %d", ErrInvalidMeta, len(m.Chain), MaxChainLen)
	}
	return nil
}

// encodeHeader returns a full slot. The header must be valid (validMeta,
// len(Dirty) <= maxDirty).
func encodeHeader(h header) []byte {
	b := make([]byte, slotSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], headerMagic)
	v := h.Version
	if v == 0 {
		v = formatVersion
	}
	le.PutUint32(b[8:], v)
	le.PutUint32(b[12:], 0) // flags
	le.PutUint64(b[16:], h.Gen)
	le.PutUint64(b[24:], uint64(h.Meta.Handle))
	le.PutUint64(b[32:], h.Meta.Epoch)
	le.PutUint64(b[40:], uint64(h.Meta.ChunkSize))
	le.PutUint64(b[48:], h.Meta.AppliedSeq)
	le.PutUint16(b[56:], uint16(len(h.Meta.Chain)))
	le.PutUint16(b[58:], uint16(len(h.Dirty)))
	le.PutUint64(b[60:], h.Meta.AppliedEpoch)
	p := headerFixed
	for _, id := range h.Meta.Chain {
		le.PutUint64(b[p:], id)
		p += 8
	}
	for _, d := range h.Dirty {
		le.PutUint32(b[p:], d.Block)
		le.PutUint32(b[p+4:], d.Old)
		le.PutUint32(b[p+8:], d.New)
		p += 12
	}
	le.PutUint32(b[slotSize-4:], crc32.Checksum(b[:slotSize-4], castagnoli))
	return b
}

// decodeHeader parses and validates one slot. Any error wraps ErrBadHeader.
func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) != slotSize {
		return h, fmt.Errorf("%w: slot of %d bytes", ErrBadHeader, len(b))
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[slotSize-4:]), crc32.Checksum(b[:slotSize-4], castagnoli); got != want {
		return h, fmt.Errorf("%w: checksum %08x, computed %08x", ErrBadHeader, got, want)
	}
	if le.Uint64(b[0:]) != headerMagic {
		return h, fmt.Errorf("%w: bad magic", ErrBadHeader)
	}
	h.Version = le.Uint32(b[8:])
	if h.Version != formatVersion && h.Version != formatV2 {
		return h, fmt.Errorf("%w: format version %d", ErrBadHeader, h.Version)
	}
	if f := le.Uint32(b[12:]); f != 0 {
		return h, fmt.Errorf("%w: unknown flags %#x", ErrBadHeader, f)
	}
	h.Gen = le.Uint64(b[16:])
	h.Meta.Handle = Handle(le.Uint64(b[24:]))
	h.Meta.Epoch = le.Uint64(b[32:])
	h.Meta.ChunkSize = int64(le.Uint64(b[40:]))
	h.Meta.AppliedSeq = le.Uint64(b[48:])
	nchain, ndirty := int(le.Uint16(b[56:])), int(le.Uint16(b[58:]))
	h.Meta.AppliedEpoch = le.Uint64(b[60:])
	if err := validMeta(Meta{ChunkSize: h.Meta.ChunkSize, Chain: make([]uint64, nchain)}); err != nil {
		return h, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	if ndirty > maxDirty {
		return h, fmt.Errorf("%w: %d dirty blocks", ErrBadHeader, ndirty)
	}
	p := headerFixed
	if nchain > 0 {
		h.Meta.Chain = make([]uint64, nchain)
		for i := range h.Meta.Chain {
			h.Meta.Chain[i] = le.Uint64(b[p:])
			p += 8
		}
	}
	nb := numBlocks(h.Meta.ChunkSize)
	if ndirty > 0 {
		h.Dirty = make([]dirtyEntry, ndirty)
	}
	for i := range h.Dirty {
		d := dirtyEntry{Block: le.Uint32(b[p:]), Old: le.Uint32(b[p+4:]), New: le.Uint32(b[p+8:])}
		p += 12
		if int64(d.Block) >= nb || (i > 0 && d.Block <= h.Dirty[i-1].Block) {
			return h, fmt.Errorf("%w: dirty block %d out of order or range", ErrBadHeader, d.Block)
		}
		h.Dirty[i] = d
	}
	return h, nil
}

// blockEntry is a block's checksum-table entry: its CRC32C xor the CRC32C
// of a zero block, so that never-written blocks (a zero table) verify.
// b must be a full block.
func blockEntry(b []byte, zeroCRC uint32) uint32 {
	return crc32.Checksum(b, castagnoli) ^ zeroCRC
}

func zeroBlockCRC() uint32 { return crc32.Checksum(make([]byte, BlockSize), castagnoli) }

// layout is where one replica file keeps its parts, by format version.
type layout struct {
	version uint32
	data    int64 // chunk byte 0
	pending int64 // pending table; 0 in format 2 (none)
}

func layoutOf(version uint32) layout {
	if version == formatV2 {
		return layout{version: formatV2, data: dataOffV2}
	}
	return layout{version: formatVersion, data: dataOff, pending: pendingOff}
}

// pendingEntry is a block's pending-table entry: its raw CRC32C, never 0
// (0 means "no pending write"; a CRC of 0 is stored as 1, which no content
// matches, so such a block reads as corrupt after a crash: 1 in 2^32).
func pendingEntry(entry, zeroCRC uint32) uint32 {
	if c := entry ^ zeroCRC; c != 0 {
		return c
	}
	return 1
}
