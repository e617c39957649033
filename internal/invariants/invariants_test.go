package invariants

import "testing"

func TestCheck(t *testing.T) {
	Check(true, "never")
	defer func() {
		r := recover()
		if Enabled && r == nil {
			t.Fatal("a failed check did not panic with invariants on")
		}
		if !Enabled && r != nil {
			t.Fatalf("a failed check panicked with invariants off: %v", r)
		}
	}()
	Check(false, "x=%d", 1)
}
