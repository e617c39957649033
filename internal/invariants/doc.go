// Package invariants turns on expensive assertions of invariants in test
// builds, as pebble's internal/invariants: built with `-tags invariants`
// (the CI's race run is), Enabled is true and a broken invariant panics
// with its description; otherwise Enabled is a false constant and the
// checks compile away.
//
// A broken invariant is a bug, never an input error: code asserts only
// what its own logic guarantees, and returns errors for what a peer, a
// client or a disk may get wrong. This package imports only the standard
// library, so the protocol cores may use it.
package invariants

import "fmt"

// Check panics with the formatted message when Enabled and ok is false.
// Callers guard costly arguments with `if invariants.Enabled`.
func Check(ok bool, format string, args ...any) {
	if Enabled && !ok {
		panic(fmt.Sprintf("invariant violated: "+format, args...))
	}
}
