// Package chunkserver runs the chain-replication nodes of one chunkserver:
// it glues the pure state machine of internal/chain to the on-disk replica
// store of internal/chunkstore, to gRPC (the Chunkserver service and one
// outbound Chain stream per peer) and to the master (Register, Heartbeat).
//
// # Model
//
// Every replica has a chain.Node, which decides every protocol question
// (admission of reads and writes, fencing, rejoin, catch-up, re-sends, the
// delta-resync update log; see internal/chain's doc.go), its
// chunkstore.Replica, one mutex that
// serialises every Node call, a waiter table (client request id -> Write
// RPCs waiting for the Reply; retries may add several waiters for one id;
// a write without a request id waits on its sequence number)
// and a syncer goroutine. A Ready is processed while the mutex is held, so
// its order is kept: (1) messages are enqueued on the per-peer ordered
// outbound queues (never blocking), (2) updates are applied to the store in
// order and the syncer is poked, (3) waiters of Replies are completed.
//
// Group commit: the syncer waits for a poke, reads the highest sequence
// number applied to the store, runs one Replica.Sync (fdatasync) outside
// the mutex, then reports Node.Persisted and processes the resulting Ready.
// Writes applied during an fsync are covered by the next one, so a chain
// persists concurrent writes in parallel with about one fsync per replica
// per batch.
//
// Peers: messages to a peer go to one outbound Chain stream fed by an
// ordered queue. The server side of Chain only receives and dispatches.
// While a peer is disconnected its queue is dropped; on every (re)connect
// the server tells every node (PeerReconnected), which re-sends what the
// old stream may have lost. One loop ticks every node at the heartbeat
// interval (chain.Node.Tick) and carries out what the watchdogs decide.
//
// Inputs the server gives the nodes: the lease (chain.Lease, renewed by
// heartbeat answers, read from the injected clock), the store's bad blocks
// (SetDamaged), store failures (Fail) and the master's fences (Fence).
//
// # Creation
//
// A new chunk's replicas come into being with its first write; the master
// allocates the chunk and calls no chunkserver (create.go). The client's
// Write carries the chunk size and chain the master gave
// (WriteRequest.create): a head without a replica creates it at the
// write's epoch if the write would be admitted (head of that chain, a
// valid lease, the range inside the chunk), then proposes as usual. Until
// a node's successor has acknowledged an update, its updates carry its
// chain and chunk size (ChainMessage.create), and a successor without a
// replica creates it from the first update that reaches it from its
// predecessor at that epoch: a later update creates it and waits in the
// out-of-order buffer, a duplicate or a racing CreateReplica finds it
// created (creations of one handle are serialised; of different handles
// by writes and updates, not). A replica created so is
// durable with the Sync that precedes its first acknowledgement, so a
// crash before that loses nothing acknowledged. CreateReplica (the
// master's creation for a chunk no write reached, and tests) syncs before
// it answers, and Replicate creates a repair target's replica.
//
// A write or an update creates a replica only where the server never held
// one (neverHeld): the chunk was allocated after the store was opened (at
// or above the master's next handle at the first registration) and this
// process deleted no replica of it. An empty replica must never stand in
// for a lost history: a head killed before its first sync may have
// forwarded (e, 1) to its successor, and re-created empty it would number
// a different write (e, 1), which the successor would ack as a duplicate;
// a server whose stale replica was deleted must not take writes at an old
// epoch. Such a server answers NOT_FOUND; the master drops it from the
// chain once it lacked the chunk long enough (heartbeats report the
// floor as never_held_from) and repairs the chain. A creation at an old
// epoch (a stale client or update) is moved on by the heartbeat's missed
// configurations, fenced if the server is no longer a member, and deleted
// if the chunk is gone. A tail that never held a replica answers a Read
// with no_replica, which the client turns into zeros once the master
// confirms it is still the tail at that epoch (then no write ever became
// visible).
//
// Security: any caller can call CreateReplica today, and the creation
// info of a Write is the client's word. Issue 16 adds master-signed
// capabilities; the creation info of a Write (chunk size, chain, epoch)
// must then come inside the capability, so that a client cannot make a
// server create a replica the master did not allocate there.
//
// # Invariants
//
//   - A Write is answered only after the chain's Reply, i.e. when the update
//     is durable on every member; a store error (ErrNoSpace, ...) marks the
//     replica failed: no later update is applied or acknowledged on it.
//   - Only the tail (or a single member) serves reads, on the current epoch,
//     after everything it had applied when the read arrived is durable.
//     A read may also observe updates applied after its arrival that are
//     not yet durable on the tail (they are on every predecessor's store).
//   - Client I/O needs a valid lease, and a lease is taken into use only
//     after the heartbeat answer that granted it has been applied: its
//     fences (replicas the master says this server is not a member of, at
//     the master's epoch: no client I/O at any epoch <= that one, though
//     they stay delta-resync bases) and its missed configurations. A
//     restarted server has no lease until its first heartbeat is answered,
//     so a stale replica is never served at its old epoch.
//   - A replica loaded at Start is cold (cold.go); its first use gives it
//     a node started as reloaded (chain.Start.Reloaded): fenced until it
//     rejoins through Replicate or becomes the sole member. Heartbeats
//     report it fenced; the master then removes it and re-adds it by
//     delta resync.
//   - A replica unused and quiescent for Config.ColdAfter is made cold
//     again: its node is dropped, and rebuilt from the store's metadata
//     and the fence, rejoin and verified state the server keeps when it
//     is next needed.
//   - Request ids are durable with the replica (requests.go): each
//     applied update's id goes to the store with the applied seq that
//     accounts for it, in the same Sync; a copy's or catch-up's ids with
//     the seq it installs (a copy's replace the replica's); a clone's
//     with its blocks. Every node built from a replica (reloaded, made
//     cold and used again, cloned) starts remembering them, so a retry
//     of a write the chain applied is answered, not applied again,
//     whichever member it reaches as the head. Only a retry older than
//     the replica's last 4,096 updates (or the store's bound) is not.
//   - A replica that stops being the head answers its waiting Write RPCs
//     at once (STALE_EPOCH), so clients retry at the new head.
//   - The server id is random, non-zero, created once and kept in
//     Dir/server-id.
//
// # Caller's duties
//
// Start the server with a Dir no other process uses, and Close it when
// done. A server creates replicas from writes and updates only after its
// first registration with a master (before it, it knows no floor).
// Clients give every distinct write a distinct (client id, request id)
// and re-use it on retry; a write without one (both zero) is never
// deduplicated: each arrival, retries included, is applied again.
package chunkserver
