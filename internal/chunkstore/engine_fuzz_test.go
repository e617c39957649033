package chunkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"slices"
	"testing"
)

// FuzzEngineOps drives the model-based test (engine_crash_test.go) from
// the fuzzer's bytes: which operations, on which replicas, where, and
// where crashes strike with which pages kept. Seed corpus in
// testdata/fuzz/FuzzEngineOps.
func FuzzEngineOps(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newEngHarness(t, &byteChooser{b: data})
		h.run(300)
	})
}

// FuzzEngineDecode feeds garbage to the record and checkpoint decoders,
// as is and with its checksums made right: they never panic, and what
// they accept encodes back to exactly the bytes given (so it was
// verified and well formed, nothing invented).
func FuzzEngineDecode(f *testing.F) {
	const salt = 0x1234_5678_9abc_def0
	for _, r := range sampleRecords() {
		b := make([]byte, r.headLen())
		encodeRecordHead(b, salt, r)
		f.Add(b)
	}
	f.Add(encodeCheckpoint(sampleCheckpoint()))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRecordDecode(t, data, salt)
		if len(data) >= recHeaderSize {
			// With a valid CRC, the structure checks are what stands.
			fixed := bytes.Clone(data)
			if hl, err := peekRecordHead(fixed); err == nil && hl <= len(fixed) {
				binary.LittleEndian.PutUint32(fixed[4:], recordCRC(salt, fixed[:hl]))
				checkRecordDecode(t, fixed, salt)
			}
		}
		checkCheckpointDecode(t, data)
		if len(data) >= 4 {
			fixed := bytes.Clone(data)
			binary.LittleEndian.PutUint32(fixed[len(fixed)-4:], crc32.Checksum(fixed[:len(fixed)-4], castagnoli))
			checkCheckpointDecode(t, fixed)
		}
	})
}

func checkRecordDecode(t *testing.T, data []byte, salt uint64) {
	hl, err := peekRecordHead(data)
	if err != nil || hl > len(data) {
		return
	}
	r, err := decodeRecordHead(data[:hl], salt)
	if err != nil {
		return
	}
	b := make([]byte, r.headLen())
	encodeRecordHead(b, salt, r)
	if !bytes.Equal(b, data[:hl]) {
		t.Fatalf("accepted record head re-encodes differently:\n%x\n%x", data[:hl], b)
	}
	if _, err := decodeRecordHead(data[:hl], salt+1); err == nil {
		t.Fatal("a record head verified under another engine's salt")
	}
}

func checkCheckpointDecode(t *testing.T, data []byte) {
	c, err := decodeCheckpoint(data)
	if err != nil {
		return
	}
	if binary.LittleEndian.Uint32(data[8:]) == ckptVersionV5 {
		return // read, but written as the current version
	}
	if b := encodeCheckpoint(c); !bytes.Equal(b, data) {
		t.Fatalf("accepted checkpoint re-encodes differently:\n%x\n%x", data, b)
	}
}

func sampleRecords() []*record {
	meta := encodeMetaBody(nil, Meta{Epoch: 3, ChunkSize: 3 * BlockSize, Chain: []uint64{1, 2}, AppliedSeq: 9, AppliedEpoch: 2})
	return []*record{
		{typ: recCreate, inc: 1, lsn: 5, handle: 7, extra: meta},
		{typ: recMeta, inc: 2, lsn: 6, lag: 3, handle: 7, extra: meta},
		{typ: recMeta, inc: 2, lsn: 6, lag: 3, handle: 7, extra: appendRequest(append(append(slices.Clone(meta), reqReset), 1, 0, 0, 0),
			Request{Client: 1, ID: 2, Seq: 9, Offset: 4096})},
		{typ: recClone, inc: 2, lsn: 7, handle: 7, arg: 8, extra: meta},
		{typ: recPut, inc: 2, lsn: 8, handle: 7, arg: 100, extra: rangeExtra(2 * BlockSize), pieces: []recPiece{
			{block: 0, lo: 100, n: BlockSize - 100, crc: 5},
			{block: 2, lo: 0, n: 100, zero: true},
		}},
		{typ: recInvalidate, inc: 2, lsn: 9, handle: 7, arg: 0, extra: rangeExtra(10)},
		{typ: recDelete, inc: 2, lsn: 10, lag: lagUnknown, handle: 7},
	}
}

func sampleCheckpoint() *ckpt {
	return &ckpt{
		inc: 3, salt: 99, lsn: 40, seg: 2, off: 4096,
		pieces: []ckptPiece{{seg: 1, off: 48, lo: 0, n: BlockSize, crc: 1}, {lo: 5, n: 10}, {seg: 2, off: 0, lo: 9, n: 1, crc: 7}},
		lists:  []ckptList{{pieces: []uint32{0, 1}}, {bad: true}, {pieces: []uint32{2}}},
		replicas: []ckptReplica{
			{meta: Meta{Handle: 1, Epoch: 1, ChunkSize: 2 * BlockSize, Chain: []uint64{4}}, blocks: []ckptBlock{{0, 0}, {1, 1}}},
			{meta: Meta{Handle: 5, ChunkSize: BlockSize}, blocks: []ckptBlock{{0, 0}},
				reqs: []reqEnt{{Request{Client: 1, ID: 2, Seq: 3, Offset: 4}, 10}, {Request{ID: 3, Seq: 4}, 12}}},
			{meta: Meta{Handle: 6, ChunkSize: 10, AppliedSeq: 3}},
		},
	}
}

func TestEngineFormatRoundTrip(t *testing.T) {
	const salt = 42
	for _, r := range sampleRecords() {
		b := make([]byte, r.headLen())
		encodeRecordHead(b, salt, r)
		got, err := decodeRecordHead(b, salt)
		if err != nil {
			t.Fatalf("record of type %d: %v", r.typ, err)
		}
		if got.typ != r.typ || got.lsn != r.lsn || got.inc != r.inc || got.lag != r.lag || got.handle != r.handle || got.arg != r.arg ||
			len(got.pieces) != len(r.pieces) || !bytes.Equal(got.extra, r.extra) {
			t.Fatalf("record round trip: %+v, want %+v", got, r)
		}
		b[len(b)-1] ^= 1
		if _, err := decodeRecordHead(b, salt); err == nil {
			t.Fatalf("record of type %d with a flipped bit decoded", r.typ)
		}
	}
	c := sampleCheckpoint()
	b := encodeCheckpoint(c)
	got, err := decodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(encodeCheckpoint(got), b) || len(got.replicas) != 3 || got.replicas[0].meta.Chain[0] != 4 {
		t.Fatalf("checkpoint round trip: %+v", got)
	}
	b[70] ^= 1
	if _, err := decodeCheckpoint(b); err == nil {
		t.Fatal("checkpoint with a flipped bit decoded")
	}
}

// failingReader fails every read that reaches past byte at.
type failingReader struct {
	b  []byte
	at int64
}

var errTestRead = errors.New("test: read error")

func (r failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.at {
		return 0, errTestRead
	}
	return copy(p, r.b[off:]), nil
}

// TestWalkCheckpointReadError: a read that fails while the checkpoint is
// walked (the checksum pass or the decoding one) ends the walk with that
// error, not with a verdict on the zeros it got instead.
func TestWalkCheckpointReadError(t *testing.T) {
	b := encodeCheckpoint(sampleCheckpoint())
	nop := ckptVisitor{
		header:  func(*ckpt, uint32, uint32, uint32) error { return nil },
		piece:   func(int, ckptPiece) error { return nil },
		list:    func(int, ckptList) error { return nil },
		replica: func(int, *ckptReplica) error { return nil },
	}
	if err := walkCheckpoint(failingReader{b, int64(len(b))}, int64(len(b)), nop); err != nil {
		t.Fatalf("walk of a sound checkpoint: %v", err)
	}
	for _, at := range []int64{0, 10, int64(len(b)) / 2, int64(len(b)) - 1} {
		if err := walkCheckpoint(failingReader{b, at}, int64(len(b)), nop); !errors.Is(err, errTestRead) {
			t.Fatalf("read failing past byte %d: %v, want the read error", at, err)
		}
	}
}

// decodeCheckpoint verifies and decodes a checkpoint into tables (the
// fuzzers and tests compare them; the engine walks the file instead). Every
// index it returns is in range, every piece lies in its block and every
// list is at most 255 pieces.
func decodeCheckpoint(b []byte) (*ckpt, error) {
	var c *ckpt
	var listPieces slab[uint32]
	var blocks slab[ckptBlock]
	err := walkCheckpoint(bytes.NewReader(b), int64(len(b)), ckptVisitor{
		header: func(h *ckpt, np, nl, nr uint32) error {
			c = h
			c.pieces, c.lists, c.replicas = make([]ckptPiece, np), make([]ckptList, nl), make([]ckptReplica, nr)
			return nil
		},
		piece: func(i int, p ckptPiece) error { c.pieces[i] = p; return nil },
		list: func(i int, l ckptList) error {
			if len(l.pieces) > 0 {
				l.pieces = append(listPieces.take(len(l.pieces))[:0], l.pieces...)
			}
			c.lists[i] = l
			return nil
		},
		replica: func(i int, r *ckptReplica) error {
			cr := ckptReplica{meta: r.meta, covered: r.covered}
			if len(r.blocks) > 0 {
				cr.blocks = append(blocks.take(len(r.blocks))[:0], r.blocks...)
			}
			if len(r.since) > 0 {
				cr.since = append([]ckptAhead(nil), r.since...)
			}
			if len(r.reqs) > 0 {
				cr.reqs = slices.Clone(r.reqs)
			}
			c.replicas[i] = cr
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}
