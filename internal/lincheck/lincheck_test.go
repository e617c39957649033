package lincheck

import (
	"errors"
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestCodec: a block decodes to its value; a flipped byte anywhere is
// detected; zeros are the initial value.
func TestCodec(t *testing.T) {
	for _, v := range []uint64{1, 1<<40 | 7, math.MaxUint64} {
		b := Encode(v)
		if got, err := Decode(b); err != nil || got != v {
			t.Fatalf("decode(encode(%#x)) = %#x, %v", v, got, err)
		}
		for _, i := range []int{0, 100, BlockSize - 1} {
			c := append([]byte(nil), b...)
			c[i] ^= 1
			if _, err := Decode(c); !errors.Is(err, ErrTorn) {
				t.Fatalf("flip at %d: %v, want ErrTorn", i, err)
			}
		}
		mixed := append(append([]byte(nil), b[:BlockSize/2]...), Encode(v + 1)[BlockSize/2:]...)
		if _, err := Decode(mixed); !errors.Is(err, ErrTorn) {
			t.Fatalf("half of two values: %v, want ErrTorn", err)
		}
	}
	if v, err := Decode(make([]byte, BlockSize)); v != 0 || err != nil {
		t.Fatalf("zeros: %#x, %v", v, err)
	}
	if _, err := Decode(make([]byte, BlockSize-1)); !errors.Is(err, ErrTorn) {
		t.Fatalf("short block: %v, want ErrTorn", err)
	}
}

// FuzzDecode: the encoding of any value decodes to it, and any single
// flipped bit of it is detected.
func FuzzDecode(f *testing.F) {
	f.Add(uint64(5), uint16(0), uint8(1))
	f.Add(uint64(math.MaxUint64), uint16(BlockSize-1), uint8(0x80))
	f.Fuzz(func(t *testing.T, v uint64, at uint16, bit uint8) {
		if v == 0 {
			return // the initial value is the all-zero block
		}
		b := Encode(v)
		if got, err := Decode(b); err != nil || got != v {
			t.Fatalf("decode(encode(%#x)) = %#x, %v", v, got, err)
		}
		b[int(at)%BlockSize] ^= 1 << (bit % 8)
		if _, err := Decode(b); !errors.Is(err, ErrTorn) {
			t.Fatalf("flipped bit accepted: %v", err)
		}
	})
}

// TestModel: the checker accepts a linearizable history, rejects a stale
// read, and lets a write of unknown outcome take effect late.
func TestModel(t *testing.T) {
	w := func(block int, v uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: Input{Block: block, Write: true, Value: v}, Output: Output{}, Call: call, Return: ret}
	}
	rd := func(block int, v uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: Input{Block: block}, Output: Output{Value: v}, Call: call, Return: ret}
	}
	unknown := porcupine.Operation{Input: Input{Block: 0, Write: true, Value: 9}, Output: Output{Unknown: true}, Call: 40, Return: math.MaxInt64}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want bool
	}{
		{"ok", []porcupine.Operation{w(0, 1, 0, 10), rd(0, 1, 11, 12), rd(1, 0, 13, 14)}, true},
		{"stale read", []porcupine.Operation{w(0, 1, 0, 10), w(0, 2, 11, 20), rd(0, 1, 21, 22)}, false},
		{"read of a value never written", []porcupine.Operation{rd(0, 5, 0, 1)}, false},
		{"unknown write lands late", []porcupine.Operation{w(0, 1, 0, 10), unknown, rd(0, 1, 50, 60), rd(0, 9, 100, 110)}, true},
		{"unknown write cannot undo itself", []porcupine.Operation{w(0, 1, 0, 10), unknown, rd(0, 9, 50, 60), rd(0, 1, 100, 110)}, false},
		{"registers are independent", []porcupine.Operation{w(0, 1, 0, 10), w(7, 2, 0, 10), rd(7, 2, 11, 12), rd(0, 1, 11, 12)}, true},
	} {
		if got := porcupine.CheckOperations(Model, tc.ops); got != tc.want {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDropUnobserved: only writes of unknown outcome that no read saw go,
// and the verdict of every history of TestModel's kind is the same
// without them.
func TestDropUnobserved(t *testing.T) {
	w := func(v uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{Input: Input{Write: true, Value: v}, Output: Output{}, Call: call, Return: ret}
	}
	rd := func(v uint64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: Input{}, Output: Output{Value: v}, Call: call, Return: ret}
	}
	unknown := func(v uint64, call int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 2, Input: Input{Write: true, Value: v}, Output: Output{Unknown: true}, Call: call, Return: math.MaxInt64}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		kept int
		want bool
	}{
		{"unseen unknown writes go", []porcupine.Operation{w(1, 0, 10), unknown(7, 5), unknown(8, 20), rd(1, 30, 40)}, 2, true},
		{"a seen one stays", []porcupine.Operation{w(1, 0, 10), unknown(7, 5), rd(7, 30, 40)}, 3, true},
		{"a stale read stays one", []porcupine.Operation{w(1, 0, 10), w(2, 11, 20), unknown(7, 5), rd(1, 21, 22)}, 3, false},
		{"an unknown write cannot undo itself", []porcupine.Operation{w(1, 0, 10), unknown(9, 40), rd(9, 50, 60), unknown(8, 55), rd(1, 100, 110)}, 4, false},
		{"completed writes stay unseen", []porcupine.Operation{w(1, 0, 10), w(2, 11, 20), rd(2, 21, 22)}, 3, true},
	} {
		seen := ReadValues(tc.ops)
		got := DropUnobserved(tc.ops, func(v uint64) bool { return seen[v] })
		if len(got) != tc.kept {
			t.Errorf("%s: kept %d operations, want %d", tc.name, len(got), tc.kept)
		}
		if full, dropped := porcupine.CheckOperations(Model, tc.ops), porcupine.CheckOperations(Model, got); full != tc.want || dropped != tc.want {
			t.Errorf("%s: linearizable %v with every write, %v without the unseen, want %v", tc.name, full, dropped, tc.want)
		}
	}
}
