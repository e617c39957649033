package chain

import (
	"slices"
	"testing"
)

func TestUpdateLogSince(t *testing.T) {
	l := NewUpdateLog(3, 1, 10) // base (e1, s10)
	l.Add(1, 11, Range{0, 4})
	l.Add(2, 12, Range{8, 4})
	l.Add(2, 13, Range{4, 4})
	for _, tc := range []struct {
		name       string
		epoch, seq uint64
		want       []Range
		ok         bool
	}{
		{"from the base", 1, 10, []Range{{0, 12}}, true},
		{"from the middle", 2, 12, []Range{{4, 4}}, true},
		{"up to date", 2, 13, nil, true},
		{"epoch mismatch at seq", 1, 12, nil, false},
		{"ahead of the log", 2, 14, nil, false},
		{"behind the base", 1, 9, nil, false},
		{"full copy", 1, 0, nil, false},
		{"unknown epoch", 0, 12, nil, false},
	} {
		got, ok := l.Since(tc.epoch, tc.seq)
		if ok != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("%s: Since(%d, %d) = %v, %v; want %v, %v", tc.name, tc.epoch, tc.seq, got, ok, tc.want, tc.ok)
		}
	}
	// A fourth entry evicts the oldest: the base moves to (e1, s11).
	l.Add(2, 14, Range{100, 1})
	if _, ok := l.Since(1, 10); ok {
		t.Fatal("Since answered from before the base after eviction")
	}
	if got, ok := l.Since(1, 11); !ok || !slices.Equal(got, []Range{{4, 8}, {100, 1}}) {
		t.Fatalf("Since(1, 11) after eviction = %v, %v", got, ok)
	}
}

func TestUpdateLogAheadAndGaps(t *testing.T) {
	l := NewUpdateLog(8, 3, 5)
	l.SetAhead([]Range{{64, 64}, {0, 64}})
	if got, ok := l.Since(3, 5); !ok || !slices.Equal(got, []Range{{0, 128}}) {
		t.Fatalf("ahead ranges not in the delta: %v, %v", got, ok)
	}
	// A seq that does not follow restarts the log with an unknown base.
	l.Add(3, 9, Range{0, 1})
	if _, ok := l.Since(3, 8); ok {
		t.Fatal("a restarted log answered for its unknown base")
	}
	if e, ok := l.EpochAt(9); !ok || e != 3 {
		t.Fatalf("EpochAt(9) = %d, %v", e, ok)
	}
	if l.Ahead() != nil {
		t.Fatalf("a restart kept ahead ranges: %v", l.Ahead())
	}
}

// TestUpdateLogNoBytesSince: a clone may stand for an earlier state of
// its source only when the updates between changed no byte.
func TestUpdateLogNoBytesSince(t *testing.T) {
	l := NewUpdateLog(4, 2, 10)
	l.SetAhead([]Range{{0, 64}}) // restored blocks: the same bytes everywhere
	l.Add(2, 11, Range{0, 4096})
	l.Add(3, 12, Range{}) // epoch 3 starts
	l.Add(4, 13, Range{}) // epoch 4 starts
	for _, tc := range []struct {
		seq   uint64
		epoch uint64
		ok    bool
	}{
		{13, 4, true},  // nothing after
		{12, 3, true},  // an epoch start after
		{11, 2, true},  // two epoch starts after
		{10, 0, false}, // a write after
		{9, 0, false},  // before the log
		{14, 0, false}, // beyond it
	} {
		if e, ok := l.NoBytesSince(tc.seq); e != tc.epoch || ok != tc.ok {
			t.Errorf("NoBytesSince(%d) = %d, %v; want %d, %v", tc.seq, e, ok, tc.epoch, tc.ok)
		}
	}
	l.Add(4, 14, Range{100, 0}) // empty
	l.Add(4, 15, Range{100, 1}) // evicts 11; the base is now (2, 11)
	if _, ok := l.NoBytesSince(12); ok {
		t.Fatal("NoBytesSince(12) with a write after it")
	}
	if e, ok := l.NoBytesSince(15); !ok || e != 4 {
		t.Fatalf("NoBytesSince(15) = %d, %v", e, ok)
	}
}

func TestMergeRanges(t *testing.T) {
	got := MergeRanges([]Range{{10, 5}, {0, 5}, {5, 2}, {14, 10}, {30, 0}})
	want := []Range{{0, 7}, {10, 14}, {30, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("MergeRanges = %v, want %v", got, want)
	}
	if n := TotalLen(want); n != 21 {
		t.Fatalf("TotalLen = %d", n)
	}
}
