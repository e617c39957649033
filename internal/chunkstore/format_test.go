package chunkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := header{
		Version: formatVersion,
		Gen:     9,
		Meta:    Meta{Handle: 0xdeadbeef, Epoch: 4, ChunkSize: 64 << 20, Chain: []uint64{3, 1, 2}, AppliedSeq: 1234},
		Dirty:   []dirtyEntry{{Block: 0, Old: 0, New: 7}, {Block: 1023, Old: 5, New: 6}},
	}
	got, err := decodeHeader(encodeHeader(h))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("decode(encode(h)) = %+v, want %+v", got, h)
	}
	b := encodeHeader(h)
	b[100] ^= 1
	if _, err := decodeHeader(b); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("flipped bit: %v, want ErrBadHeader", err)
	}
	if _, err := decodeHeader(make([]byte, slotSize)); !errors.Is(err, ErrBadHeader) {
		t.Fatalf("zero slot: %v, want ErrBadHeader", err)
	}
	full := h
	full.Meta.Chain = make([]uint64, MaxChainLen)
	full.Dirty = make([]dirtyEntry, maxDirty)
	for i := range full.Dirty {
		full.Dirty[i].Block = uint32(i)
	}
	if got, err := decodeHeader(encodeHeader(full)); err != nil || !reflect.DeepEqual(got, full) {
		t.Fatalf("full header: %v", err)
	}
}

// FuzzDecodeHeader: decoding arbitrary bytes never panics, and whatever
// decodes re-encodes to a slot that decodes to the same header.
func FuzzDecodeHeader(f *testing.F) {
	f.Add(encodeHeader(header{Gen: 1, Meta: Meta{Handle: 1, ChunkSize: BlockSize}}))
	f.Add(encodeHeader(header{Gen: 7, Meta: Meta{Handle: 2, Epoch: 3, ChunkSize: 1 << 30, Chain: []uint64{1, 2, 3}, AppliedSeq: 9},
		Dirty: []dirtyEntry{{Block: 1, Old: 2, New: 3}, {Block: 16383, New: 1}}}))
	f.Add(make([]byte, slotSize))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		if len(b) == slotSize {
			// Also with a valid checksum, to reach the field checks.
			b = bytes.Clone(b)
			binary.LittleEndian.PutUint32(b[slotSize-4:], crc32.Checksum(b[:slotSize-4], castagnoli))
			checkDecode(t, b)
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	h, err := decodeHeader(b)
	if err != nil {
		if !errors.Is(err, ErrBadHeader) {
			t.Fatalf("error not ErrBadHeader: %v", err)
		}
		return
	}
	enc := encodeHeader(h)
	h2, err := decodeHeader(enc)
	if err != nil {
		t.Fatalf("re-encoded header does not decode: %v", err)
	}
	if !reflect.DeepEqual(h, h2) {
		t.Fatalf("round trip changed the header: %+v != %+v", h, h2)
	}
	if !bytes.Equal(enc, encodeHeader(h2)) {
		t.Fatal("encoding not deterministic")
	}
}
