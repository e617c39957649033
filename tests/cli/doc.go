// Package cli holds the end-to-end test of the catena binary, driven as a new
// user would drive it: build the binary, start "catena dev" in the
// background, and run CLI commands against it with CATENA_MASTER set.
//
// Invariants checked: data round-trips byte for byte; --json output parses
// and has the documented fields; every runtime failure exits non-zero with
// exactly one line on stderr naming what failed and why; state survives a
// restart of "catena dev"; SIGTERM shuts "catena dev" down cleanly.
//
// The tests start real processes; each "catena dev" runs in its own process
// group and is killed by PID in cleanup, so a failing test leaves nothing
// behind. The package has no non-test code.
package cli
