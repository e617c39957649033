package mirror

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	r := &Record{Version: recordVersion, Volume: "vm1", Side: SideTarget, Source: "a:1", Target: "b:1", Applied: 3, AppliedAt: 5,
		Pending: 4, PendingAt: 9, Stage: 77, Done: 2, PendingBytes: 1 << 20, PendingShipped: 65536,
		Checkpoints: 3, ShippedBytes: 1 << 22, LastShipped: 1 << 20, LastDuration: int64(time.Second), Updated: 10}
	got, err := DecodeRecord(r.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if *got != *r {
		t.Fatalf("round trip: %+v, want %+v", got, r)
	}
	if tp := got.Throughput(); tp != 1<<20 {
		t.Fatalf("throughput %v", tp)
	}
	if age := got.Age(time.Unix(0, 5).Add(time.Minute)); age != time.Minute {
		t.Fatalf("age %v", age)
	}
}

func TestRecordCheck(t *testing.T) {
	ok := Record{Version: recordVersion, Volume: "v", Side: SideSource, Done: -1}
	for _, tc := range []struct {
		name string
		edit func(*Record)
	}{
		{"version", func(r *Record) { r.Version = 2 }},
		{"no volume", func(r *Record) { r.Volume = "" }},
		{"no side", func(r *Record) { r.Side = "" }},
		{"pending not after applied", func(r *Record) { r.Applied, r.Pending = 3, 3 }},
		{"stage without pending", func(r *Record) { r.Stage = 1 }},
		{"pending bytes without pending", func(r *Record) { r.PendingBytes = 1 }},
		{"done below -1", func(r *Record) { r.Done = -2 }},
		{"negative counter", func(r *Record) { r.ShippedBytes = -1 }},
	} {
		r := ok
		tc.edit(&r)
		if err := r.Check(); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: Check = %v, want ErrBadRecord", tc.name, err)
		}
	}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRecord([]byte("{")); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("truncated: %v", err)
	}
}

// FuzzDecodeRecord: any bytes decode to a checked record or an
// ErrBadRecord, and a record decoded encodes to bytes that decode to it.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"volume":"vm1","side":"target","applied":2,"done":-1}`))
	f.Add([]byte(`{"version":1,"volume":"v","side":"source","applied":1,"pending":2,"stage":9,"done":3,"pending_bytes":10}`))
	f.Add((&Record{Version: recordVersion, Volume: "x", Side: SideTarget, Promoted: true, Done: -1}).Encode())
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v is not ErrBadRecord", err)
			}
			return
		}
		enc := r.Encode()
		r2, err := DecodeRecord(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if *r2 != *r || !bytes.Equal(r2.Encode(), enc) {
			t.Fatalf("round trip differs: %+v vs %+v", r2, r)
		}
	})
}
