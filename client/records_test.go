package client

import (
	"bytes"
	"testing"
)

// TestRecordFrame: a framed record parses back whole; a frame cut short
// asks for its size; any changed byte or a length over the limit is no
// frame; the frame ends with a non-zero byte (the head finds the end of
// a replica by it).
func TestRecordFrame(t *testing.T) {
	for _, rec := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte{0}, 100), bytes.Repeat([]byte("record "), 1000)} {
		b := frameRecord(rec)
		if b[len(b)-1] == 0 || len(b) != len(rec)+recordOverhead {
			t.Fatalf("frame of %d bytes: %d bytes, last %d", len(rec), len(b), b[len(b)-1])
		}
		got, n, need := parseRecord(append(b, "CREC junk"...), 1<<20)
		if n != len(b) || need != 0 || !bytes.Equal(got, rec) {
			t.Fatalf("parse: %d bytes, need %d, record %q", n, need, got)
		}
		for cut := 1; cut < len(b); cut++ {
			if _, n, need := parseRecord(b[:cut], 1<<20); n != 0 || (need != len(b) && !(cut < recordHeader && need == recordHeader)) {
				t.Fatalf("cut at %d of %d: n %d need %d", cut, len(b), n, need)
			}
		}
		for i := range b {
			c := bytes.Clone(b)
			c[i] ^= 0x40
			if _, n, _ := parseRecord(c, 1<<20); n != 0 {
				t.Fatalf("byte %d changed: still a frame", i)
			}
		}
		if len(rec) > 0 {
			if _, n, need := parseRecord(b, len(rec)-1); n != 0 || need != 0 {
				t.Fatalf("record over the limit: n %d need %d", n, need)
			}
		}
	}
}

// FuzzParseRecord: whatever the bytes, parsing does not panic, and what
// parses is exactly the frame of the record it returns.
func FuzzParseRecord(f *testing.F) {
	f.Add(frameRecord([]byte("hello")), 100)
	f.Add([]byte("CREC\xff\xff\xff\xff"), 1<<20)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		rec, n, need := parseRecord(b, max)
		if n > 0 {
			if need != 0 || !bytes.Equal(frameRecord(rec), b[:n]) || len(rec) > max {
				t.Fatalf("parsed %d bytes (need %d) as %q, max %d", n, need, rec, max)
			}
		}
		if need > 0 && need <= len(b) {
			t.Fatalf("need %d with %d bytes at hand", need, len(b))
		}
	})
}

// TestParseRecords: records between zeros and garbage are found at their
// offsets; one crossing a chunk's end, cut, or damaged is not.
func TestParseRecords(t *testing.T) {
	const cs = MinChunkSizeForTest
	var b []byte
	var want []Record
	put := func(at int, rec string) {
		for len(b) < at {
			b = append(b, 0)
		}
		want = append(want, Record{Offset: 1000 + int64(at), Data: []byte(rec)})
		b = append(b, frameRecord([]byte(rec))...)
	}
	put(0, "first")
	put(len(b), "second")
	b = append(b, "garbage CRE"...)
	put(len(b), "after garbage")
	bad := frameRecord([]byte("damaged"))
	bad[14] ^= 1
	b = append(b, bad...)
	put(len(b)+100, "after zeros")
	// Across the chunk end at 1000+cs: not a record; the next chunk's is.
	cross := frameRecord(bytes.Repeat([]byte("x"), 64))
	for len(b) < cs-1000-10 {
		b = append(b, 0)
	}
	b = append(b, cross...)
	put(cs-1000+len(cross)-10, "next chunk")
	b = append(b, frameRecord([]byte("cut at the end"))[:10]...)

	got := ParseRecords(b, 1000, cs)
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Offset != want[i].Offset || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("record %d: %d %q, want %d %q", i, got[i].Offset, got[i].Data, want[i].Offset, want[i].Data)
		}
	}
}

// MinChunkSizeForTest is a chunk size small enough to cross in a test.
const MinChunkSizeForTest = 1 << 12

// FuzzParseRecords: whatever the bytes, every record found is a whole
// frame at its offset, inside one chunk, in order.
func FuzzParseRecords(f *testing.F) {
	f.Add(append(frameRecord([]byte("a")), frameRecord([]byte("b"))...), int64(0))
	f.Add([]byte("CRECCRECCREC\x00\x00"), int64(4090))
	f.Fuzz(func(t *testing.T, b []byte, base int64) {
		if base < 0 || base > 1<<40 {
			return
		}
		last := int64(-1)
		for _, r := range ParseRecords(b, base, MinChunkSizeForTest) {
			fr := frameRecord(r.Data)
			at := int(r.Offset - base)
			if r.Offset <= last || at < 0 || at+len(fr) > len(b) || !bytes.Equal(b[at:at+len(fr)], fr) ||
				r.Offset/MinChunkSizeForTest != (r.Offset+int64(len(fr))-1)/MinChunkSizeForTest {
				t.Fatalf("record at %d (%d bytes) is not a whole frame in one chunk", r.Offset, len(fr))
			}
			last = r.Offset
		}
	})
}
