// Package mirror replicates a volume asynchronously, in checkpoints, from
// one Catena cluster (A) to another (B), as Remus replicated a VM: B's
// volume is always exactly at one of A's checkpoints, never between two.
//
// Model. Checkpoint N is snapshot VOL@mirror-N at A. The blocks that
// changed between N-1 and N are found without reading data: per chunk
// slot, the same handle in both snapshots means unchanged (a snapshot
// shares the chunk; the first write after it forks it under a new
// handle), and for a slot whose handle changed the tail of both chunks
// lists the 64 KiB blocks they differ in (DiffReplicas, the chunk
// engine's Diff). Plan is that decision, a pure function. Those blocks
// are read from A's snapshot and written into a staging overlay of B's
// volume (VOL+mirror: a clone, no data copied), which is then promoted:
// one Raft entry at B makes it the volume. That promote is the
// activation record.
//
// State. B's Record (an extended attribute of /.catena-mirror/VOL at B)
// is the authority on the checkpoint applied and on the one in flight;
// A keeps a copy for status. Mirror.Step lists the order of events and
// what a crash at each point leaves; a restarted mirror resumes from B's
// record and ships no chunk slot twice for a checkpoint while its
// staging overlay survives (its lease, Config.StageLease).
//
// Invariants: B's volume content is checkpoint Record.Applied, or (for
// a moment after the promote, before the record says so) Pending; A
// holds VOL@mirror-Applied until Applied+1 is applied, so the next diff
// always has its base. Without that base (removed by hand) the next
// checkpoint is shipped whole (PlanFull).
//
// The caller's duties: one mirror process per volume and target; B's
// volume is written by nobody else (the mirror holds its writer session
// while it runs, for StageLease after); Promote before writing it.
package mirror
