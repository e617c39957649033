// Package cluster runs a whole Catena cluster inside one process: one master
// (a single-voter Raft group) and N chunkservers on loopback, every one with
// its data under one directory. It is what `catena dev` runs and what the
// in-process scenario tests start (through package clustertest).
//
// Layout on disk: Dir/master holds the master's Raft state; Dir/cs1,
// Dir/cs2, ... hold the chunkservers' data. Chunkserver indexes in this API
// are zero-based: Chunkserver(0) keeps its data in Dir/cs1.
//
// Model:
//   - Start returns only when the master leads and every chunkserver has
//     registered and is reported alive by the master's Status. It waits by
//     polling Status, never by sleeping for a guessed duration.
//   - StopChunkserver and RestartChunkserver inject the simplest fault, a
//     clean stop and restart on the same directory (so the same server id).
//     A restarted chunkserver listens on its previous address when it is
//     still free, so its peers' streams reconnect to it.
//   - Faults (faults.go): every process dials through a Network (netfault.go)
//     under its own node name ("master", "cs1", ..., "client"), so
//     Partition, PartitionOneWay, Pause (isolation) and Heal cut real gRPC
//     connections with no flag in production code: a cut closes open
//     connections and refuses new dials (fail fast, no blackhole). Each
//     chunkserver's disk is a chunkstore.ErrorFS with toggles (SlowDisk,
//     DiskFull) that survive restarts; CorruptReplica flips a byte of a
//     replica file behind the store's back; Kill/Restart are a stop and a
//     start on the same directory; WipeChunkserver empties a stopped
//     server's directory but keeps its id.
//   - Settle is the cleanup invariant after faults: clear every fault,
//     restart stopped masters and chunkservers, wait (bounded, polling
//     Status) until every chain has its replication factor and no repair
//     runs, then CheckReplicas and CheckMetadata.
//   - CheckReplicas is the invariant scan tests run on cleanup: every chunk
//     the namespace refers to has a replica on every chain member, and those
//     replicas hold the same epoch, the same applied sequence number and the
//     same bytes. It reads the replicas through chunkstore on each
//     chunkserver's directory, not through the servers, so a server that
//     serves wrong data cannot hide a divergent copy.
//   - CheckMetadata is the metadata fsck of the cleanup: meta.State.Check
//     on every running master's live state, then, once the masters have
//     applied the same Raft index, their checkpoints compared byte for
//     byte (a follower may lag; a difference that lasts at one index is a
//     divergence).
//
// Invariants: at most one instance of each process runs at a time; a closed
// Cluster refuses every call with ErrClosed.
//
// Caller's duties: call Close exactly once the cluster is no longer needed
// (it is idempotent); call CheckReplicas only while no write is in flight,
// since a write that is applied on the head but not yet on the tail is a
// legitimate, transient difference.
package cluster
