// Package crash holds the crash test with real processes: a master and four
// chunkservers run as separate "catena" processes, the test process writes
// through the client library and records every acknowledged write, random
// chunkservers are killed with SIGKILL during the load and restarted, and
// once the master reports every chain whole again every acknowledged write
// must read back intact.
//
// Invariants checked: no acknowledged byte is lost or changed by a
// SIGKILL of any chunkserver (at most two down at once, replication 3);
// the cluster repairs itself to full replication after the faults.
//
// Each process runs in its own process group and is killed by PID in
// cleanup, so a failing test leaves nothing behind. CATENA_CRASH_DURATION
// (a Go duration) lengthens the fault phase. The package has no non-test
// code.
package crash
