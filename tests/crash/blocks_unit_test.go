package crash

import (
	"strings"
	"testing"
)

// The block encoding and the per-block register check are the test's
// oracle: they must reject what they are meant to reject.

func TestBlockEncoding(t *testing.T) {
	b := make([]byte, volBlock)
	id := writeID{writer: 7, seq: 42}
	fillBlock(b, id, 1234)
	if got, err := decodeBlock(b, 1234); err != nil || got != id {
		t.Fatalf("decode = %v, %v; want %v", got, err, id)
	}
	if _, err := decodeBlock(b, 1235); err == nil || !strings.Contains(err.Error(), "misplaced") {
		t.Fatalf("block found elsewhere: %v, want misplaced", err)
	}
	torn := append([]byte(nil), b...)
	other := make([]byte, volBlock)
	fillBlock(other, writeID{writer: 8, seq: 1}, 1234)
	copy(torn[2048:], other[2048:]) // half of one write, half of another
	if _, err := decodeBlock(torn, 1234); err == nil || !strings.Contains(err.Error(), "torn") {
		t.Fatalf("torn block: %v, want torn", err)
	}
	if got, err := decodeBlock(make([]byte, volBlock), 9); err != nil || got != (writeID{}) {
		t.Fatalf("zeros = %v, %v", got, err)
	}
	junk := make([]byte, volBlock)
	junk[100] = 1
	if _, err := decodeBlock(junk, 9); err == nil {
		t.Fatal("foreign bytes accepted")
	}
}

func TestVolModelCheck(t *testing.T) {
	a, b, c := writeID{1, 1}, writeID{2, 1}, writeID{1, 2}
	// Block 0 starts as zeros. In the cycle: a acked, then b invoked
	// after a completed and acked, c pending.
	m := newVolModel(4)
	wa := m.begin(a, "t", 0, 2)
	m.acked(wa)
	wb := m.begin(b, "t", 0, 1)
	m.acked(wb)
	m.begin(c, "t", 0, 1)
	for _, tc := range []struct {
		name string
		blk  int64
		got  writeID
		bad  string // substring of the problem, "" for none
	}{
		{"latest acknowledged", 0, b, ""},
		{"pending write may have happened", 0, c, ""},
		{"older than an acknowledged later write", 0, a, "stale"},
		{"acknowledged writes lost", 0, writeID{}, "lost"},
		{"only write to block 1", 1, a, ""},
		{"write that never touched the block", 1, b, "neither"},
		{"untouched block keeps its value", 2, writeID{}, ""},
		{"unknown value", 2, writeID{9, 9}, "neither"},
	} {
		pr := m.check(tc.blk, tc.got, nil)
		switch {
		case tc.bad == "" && pr != nil:
			t.Errorf("%s: unexpected problem %s", tc.name, pr.msg)
		case tc.bad != "" && (pr == nil || !strings.Contains(pr.msg, tc.bad)):
			t.Errorf("%s: got %v, want a problem saying %q", tc.name, pr, tc.bad)
		}
	}
	// Concurrent writes (neither completed before the other started): both
	// outcomes are allowed.
	m2 := newVolModel(1)
	w1 := m2.begin(a, "t", 0, 1)
	w2 := m2.begin(b, "t", 0, 1)
	m2.acked(w1)
	m2.acked(w2)
	for _, got := range []writeID{a, b} {
		if pr := m2.check(0, got, nil); pr != nil {
			t.Errorf("concurrent writes, read %v: %s", got, pr.msg)
		}
	}
	// After settle, the observed value is the floor of the next cycle.
	m2.settle([]writeID{a})
	if pr := m2.check(0, a, nil); pr != nil {
		t.Errorf("after settle: %s", pr.msg)
	}
	if pr := m2.check(0, b, nil); pr == nil {
		t.Error("after settle, a value from an earlier cycle other than the one observed was accepted")
	}
}
