// Package master is Catena's metadata service: the Raft glue around
// internal/meta, the gRPC Master service and the leader's soft state about
// chunkservers. What to do (placement, liveness, repair plans, verdicts on
// replica reports and inventories) is decided by the pure functions of
// internal/master/decide on domain types; this package gathers their
// inputs, converts api messages at the edge, and carries their plans out.
//
// Model: hard state (namespace, chunk map, server registry) lives in a
// meta.State that changes only through Raft log entries (hashicorp/raft,
// bolt log store, file snapshots). The leader stamps times and computes
// placement before proposing, so applying an entry is deterministic. Soft
// state (heartbeat times, free space, replica inventories and each
// server's word on which chunks it never held) lives only on the leader
// and is rebuilt from heartbeats after a failover. Config.Clock is the one source of time:
// the times stamped and judged by, and the ticks of the repair and
// register loops (Raft's own timers excepted), so tests move it by hand.
//
// Invariants:
//   - only the leader serves RPCs, and only after a Raft barrier since it
//     took office, so its state holds every committed entry; others answer
//     NOT_LEADER with the leader's gRPC address when known;
//   - AllocateChunk answers right after its Raft entry commits, with the
//     chunk size in the ChunkInfo: no chunkserver is called. The replicas
//     come into being with the chunk's first write, which carries the
//     chunk size and chain (internal/chunkserver's doc.go, "Creation").
//     Until then a member's inventory lacks the chunk; Register tells a
//     server the next handle, and its heartbeats say from which handle on
//     it never held a chunk it does not report (never_held_from), so that
//     the repair loop tells a member that never held the replica (kept: it
//     creates it with the first update) from one that may have lost it;
//   - Heartbeat asks a server to delete only handles below the next-handle
//     counter that are absent from the chunk map, so a chunk being
//     allocated concurrently is never collected; stale replicas (not a
//     member, epoch not above the chunk's, not joining) only once the
//     chunk's chain is back at its replication factor;
//   - leases: a heartbeat grants Lease from when the server sent it; a
//     server is dead only when Lease + DriftMargin passed since the master
//     RECEIVED its last heartbeat (and since this master took office), so
//     it stopped serving client I/O before its chains change;
//   - each repair tick also proposes ExpireMounts when a FUSE mount's
//     session expired (the mount died): meta lets go of what it held open,
//     deleting orphans nobody else holds (meta/orphan.go); a new leader
//     waits one session TTL first, so live mounts can renew;
//   - the repair loop (leader only, every RepairInterval) first removes
//     dead servers from their chains, members whose last heartbeat
//     reports the chunk fenced at its current epoch (a quick restart:
//     they rejoin by delta resync), and members that lacked the chunk for
//     missingGrace without vouching that they never held it (lost in a
//     crash before its first sync), with SetChain epoch+1 and Reconfigure
//     pushed to the survivors; the last member is never removed (when
//     every live member is fenced, one is kept as the sole member, which
//     lifts its fence), then creates with CreateReplica the replicas of
//     chunks no write created (every member alive and lacking the chunk
//     for missingGrace, no live server holding it, every member or none
//     vouching: decide.PlanCreates), then
//     re-replicates short chains whose tail holds a replica, most-missing
//     first, at most RepairConcurrency at once: Replicate on the target (from the tail),
//     SetChain with the target at the tail, syncing (Joined), Reconfigure
//     to every member; each tick first confirms with one CaughtUp entry
//     the syncing members whose reports show them caught up.
//     Its decisions are decide's. A member that missed a push gets the
//     chain in its next HeartbeatResponse.configs;
//   - ReportReplica removes the reporter from the chain the same way.
//
// Caller's duties: Start returns a running master; call Close once. Config
// fields are read only at Start.
package master
