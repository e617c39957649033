// Package crash holds the crash tests with real processes, each a separate
// "catena" process on loopback with its own data directory.
//
// TestCrashChunkservers: a master and four chunkservers; the test process
// writes through the client library and records every acknowledged write,
// random chunkservers are killed with SIGKILL during the load and
// restarted, and once the master reports every chain whole again every
// acknowledged write must read back intact (at most two down at once,
// replication 3). CATENA_CRASH_DURATION (a Go duration) lengthens the
// fault phase; CATENA_SEED replays one.
//
// TestPowerCut: the whole cluster at once, as a power cut, a rack's PDU or
// an operator restarting everything would stop it. One master, three
// chunkservers and "catena nbd" share one process group. Each cycle runs a
// storm of 1-2 s: three writers through the catena nbd process (a small
// NBD client in this package, with flushes) and one through the client
// library's volume API write 4 KiB blocks that name their writer, sequence
// number and block and carry a checksum; files are put through the client
// library (acknowledged when Close returns) and metadata operations run
// (mkdir, rmdir, rename, rm). Then one kill(2) SIGKILLs every process in
// the same instant, and all restart together in a seeded random order, so
// catena nbd often starts before its master and must wait for it. Checks,
// each cycle: every volume block, read back through the restarted nbd,
// holds its value from the previous check or a write of this cycle, never
// a value older than an acknowledged write that started after that one
// completed, and never a torn or misplaced block (one register per block;
// a write with no answer may or may not have happened); every acknowledged
// file is intact (sha256); every acknowledged metadata operation is
// visible, and an unanswered one either happened or did not (a rename:
// exactly one of the names exists); and "catena status --json" returns to
// every chunkserver alive and no chunk under-replicated, re-replicating or
// lost, without help, within a deadline. Environment:
// CATENA_POWERCUT_SEED replays a run (the seed is logged at the start and
// in every failure), CATENA_POWERCUT_CYCLES (default 20) sets the number
// of cycles, CATENA_POWERCUT_KEEP=DIR keeps data and per-process logs
// there. A failure is reported with a diagnosis: the master's chunk map of
// the chunks hit, each chunkserver's replicas of them as found on disk
// (epoch, chain, applied sequence, blocks failing their checksum, read
// from a copy of the data directories once every process is stopped), and
// the log lines naming them.
//
// TestFrontEndsWaitForMaster and TestFrontEndStopsWhileWaiting: catena
// nbd and catena mount (when root with /dev/fuse) started before any
// master say once that they wait, serve once the cluster is up, and stop
// cleanly on SIGTERM while waiting.
//
// Each process runs in its own process group, or in the power-cut test's
// shared one, and is killed by PID in cleanup, so a failing test leaves
// nothing behind. The package has no non-test code.
package crash
