// Package master is Catena's metadata service: the Raft glue around
// internal/meta, the gRPC Master service, chunk placement and the leader's
// soft state about chunkservers.
//
// Model: hard state (namespace, chunk map, server registry) lives in a
// meta.State that changes only through Raft log entries (hashicorp/raft,
// bolt log store, file snapshots). The leader stamps times and computes
// placement before proposing, so applying an entry is deterministic. Soft
// state (heartbeat times, free space, replica inventories, which replicas
// were confirmed created) lives only on the leader and is rebuilt from
// heartbeats after a failover.
//
// Invariants:
//   - only the leader serves RPCs, and only after a Raft barrier since it
//     took office, so its state holds every committed entry; others answer
//     NOT_LEADER with the leader's gRPC address when known;
//   - a chunk returned by AllocateChunk has a replica on every chain member
//     (CreateReplica succeeded on each), or the call fails with UNAVAILABLE
//     and a retry re-sends CreateReplica;
//   - Heartbeat asks a server to delete only handles below the next-handle
//     counter that are absent from the chunk map, so a chunk being
//     allocated concurrently is never collected.
//
// Caller's duties: Start returns a running master; call Close once. Config
// fields are read only at Start.
package master
