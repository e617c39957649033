package mirror

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

func ref(idx int64, h uint64, chain ...uint64) ChunkRef {
	return ChunkRef{Index: idx, Handle: h, Epoch: 1, Chain: chain}
}

func actions(steps []Step) string {
	var b bytes.Buffer
	for _, s := range steps {
		fmt.Fprintf(&b, "%d:%s", s.Index, s.Action)
		if s.SkipZeros {
			b.WriteString("/nz")
		}
		if s.NoCommonServer {
			b.WriteString("/fallback")
		}
		if s.Server != 0 {
			fmt.Fprintf(&b, "@%d", s.Server)
		}
		b.WriteString(" ")
	}
	return b.String()
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prev, cur []ChunkRef
		want      string
	}{
		{"first checkpoint: only allocated slots, zeros skipped", nil, []ChunkRef{ref(0, 10, 1), ref(3, 11, 2)}, "0:whole/nz 3:whole/nz "},
		{"empty volume", nil, nil, ""},
		{"unchanged: same handles", []ChunkRef{ref(0, 10, 1), ref(1, 11, 1)}, []ChunkRef{ref(0, 10, 1), ref(1, 11, 1)}, "0:skip 1:skip "},
		{"forked on the same chain: diff at the tail", []ChunkRef{ref(0, 10, 1, 2, 3)}, []ChunkRef{ref(0, 12, 1, 2, 3)}, "0:diff@3 "},
		{"chain reordered: diff at the current tail", []ChunkRef{ref(0, 10, 3, 1, 2)}, []ChunkRef{ref(0, 12, 1, 2, 3)}, "0:diff@3 "},
		{"tail not in the old chain: the member nearest it", []ChunkRef{ref(0, 10, 1, 2, 5)}, []ChunkRef{ref(0, 12, 1, 2, 4)}, "0:diff@2 "},
		{"no common member: whole", []ChunkRef{ref(0, 10, 1, 2)}, []ChunkRef{ref(0, 12, 3, 4)}, "0:whole/fallback "},
		{"no chain known: whole", []ChunkRef{ref(0, 10)}, []ChunkRef{ref(0, 12)}, "0:whole/fallback "},
		{"new slot: whole, zeros skipped", []ChunkRef{ref(0, 10, 1)}, []ChunkRef{ref(0, 10, 1), ref(5, 13, 1)}, "0:skip 5:whole/nz "},
		{"slot gone (rollback at A): zero", []ChunkRef{ref(0, 10, 1), ref(2, 14, 1)}, []ChunkRef{ref(0, 10, 1)}, "0:skip 2:zero "},
		{"unordered input, sorted output", []ChunkRef{ref(4, 1, 1), ref(1, 2, 1)}, []ChunkRef{ref(1, 3, 1), ref(4, 1, 1)}, "1:diff@1 4:skip "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := actions(Plan(tc.prev, tc.cur)); got != tc.want {
				t.Fatalf("Plan = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCommonServers(t *testing.T) {
	for _, tc := range []struct {
		prev, cur []uint64
		want      []uint64
	}{
		{[]uint64{1, 2, 3}, []uint64{1, 2, 3}, []uint64{3, 2, 1}},
		{[]uint64{3, 1}, []uint64{1, 2, 3}, []uint64{3, 1}},
		{[]uint64{4}, []uint64{1, 2, 3}, nil},
		{nil, []uint64{1}, nil},
		{[]uint64{0, 1}, []uint64{0, 1, 1}, []uint64{1}},
	} {
		if got := CommonServers(tc.prev, tc.cur); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("CommonServers(%v, %v) = %v, want %v", tc.prev, tc.cur, got, tc.want)
		}
	}
}

func TestPlanFull(t *testing.T) {
	got := actions(PlanFull([]ChunkRef{ref(1, 10, 1), ref(3, 11, 1)}, 4))
	if want := "0:zero 1:whole 2:zero 3:whole "; got != want {
		t.Fatalf("PlanFull = %q, want %q", got, want)
	}
}

func TestRuns(t *testing.T) {
	const B = BlockSize
	for _, tc := range []struct {
		name   string
		blocks []int64
		limit  int64
		want   []Range
	}{
		{"none", nil, 16 * B, nil},
		{"one", []int64{3}, 16 * B, []Range{{3 * B, B}}},
		{"adjacent merged", []int64{1, 2, 3, 7}, 16 * B, []Range{{B, 3 * B}, {7 * B, B}}},
		{"clipped at the volume's end", []int64{0, 1}, B + 100, []Range{{0, B + 100}}},
		{"past the end dropped", []int64{0, 20}, 16 * B, []Range{{0, B}}},
		{"repeats and disorder ignored", []int64{2, 2, 1, 3}, 16 * B, []Range{{2 * B, 2 * B}}},
		{"negative ignored", []int64{-1, 0}, 16 * B, []Range{{0, B}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Runs(tc.blocks, tc.limit)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Runs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNonZeroRuns(t *testing.T) {
	const B = BlockSize
	data := make([]byte, 5*B+10)
	data[B+7] = 1     // block 1
	data[2*B] = 1     // block 2
	data[4*B+B-1] = 1 // block 4
	data[5*B+3] = 1   // the short tail
	got := NonZeroRuns(data, 8*B)
	want := []Range{{9 * B, 2 * B}, {12 * B, B + 10}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("NonZeroRuns = %v, want %v", got, want)
	}
	if got := NonZeroRuns(make([]byte, 3*B), 0); got != nil {
		t.Fatalf("zeros: %v", got)
	}
}

func TestCheckpointNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   uint64
		ok   bool
	}{
		{"mirror-1", 1, true},
		{"vm1@mirror-42", 42, true},
		{"mirror-0", 0, false},
		{"mirror-01", 0, false},
		{"mirror-", 0, false},
		{"mirror-+1", 0, false},
		{"mirror-x", 0, false},
		{"before", 0, false},
		{"vm1@before", 0, false},
		{"mirror-18446744073709551616", 0, false},
	} {
		id, ok := ParseCheckpoint(tc.name)
		if id != tc.id || ok != tc.ok {
			t.Errorf("ParseCheckpoint(%q) = %d, %v; want %d, %v", tc.name, id, ok, tc.id, tc.ok)
		}
		if ok {
			if back, _ := ParseCheckpoint(CheckpointName(id)); back != id {
				t.Errorf("CheckpointName(%d) does not parse back", id)
			}
		}
	}
}
