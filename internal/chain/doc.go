// Package chain implements chain replication (van Renesse & Schneider) for
// one chunk as a deterministic state machine, in the style of etcd-io/raft's
// RawNode: inputs are method calls, outputs accumulate in a Ready batch that
// the caller carries out. There are no goroutines, clocks, sockets or files
// here; network and disk I/O are the caller's (internal/chunkserver).
//
// # Model
//
// One Node exists per replica of one chunk. A Config names the chain, head
// first and tail last, and its epoch. The head sequences client writes
// (Propose): update seq = last applied + 1, tagged with the current epoch
// and the client's RequestID. Every node applies updates strictly in
// sequence order and forwards each one to its successor, keeping it in its
// Sent list until the successor acknowledges it. At most sendWindow bytes
// of the Sent list are out at the successor unacknowledged (one update
// always is); the rest wait in the list, unsent, until acknowledgements
// make room: a credit per chain, so one busy chain never floods its
// successor. Updates that arrive ahead of a gap are buffered; duplicates
// are never applied twice. Retained reports the bytes a node holds, for
// the caller's memory bound.
//
// Acks are cumulative. A node's ack point is min(its own persisted seq, its
// successor's ack) — for the tail just its persisted seq. When it advances,
// a non-head node sends MsgAck to its predecessor and drops acked updates
// from Sent; the head answers (Reply) every client write at or below it.
// A Reply therefore means the write is durable on every member.
//
// Roles: RoleHead (first of several), RoleMiddle, RoleTail (last of
// several), RoleSingle (head and tail at once), RoleNone (not a member of
// the current configuration: every Propose and Step is refused).
//
// # Invariants
//
//   - Update propagation: for i before j in the chain, the updates applied
//     at j are a prefix of those applied at i.
//   - Apply hands out each sequence number once, in increasing order.
//   - acked <= persisted <= applied; acked never decreases.
//   - Exactly one Reply per Propose of an acknowledged request, and one per
//     commit of an in-flight request however often it was retried.
//   - A node accepts messages only at its own epoch (ErrStaleEpoch), updates
//     only from its predecessor and acks only from its successor
//     (ErrNotMember). A refused input changes nothing.
//   - The head refuses a client write that covers only in part a range its
//     local replica cannot verify (SetDamaged, ErrDamaged, retryable): it
//     would need the range's old bytes. A write covering the range whole
//     heals it; a retry of a sequenced write is answered as usual
//     (testdata/damaged.txt).
//
// # Admission: when a replica may act
//
// Every rule by which a replica may serve a client or take part in its
// chain is decided here, from messages, ticks and the caller's inputs (the
// lease, the store's damaged ranges, store failure); the caller asks and
// carries out the answer. Transcripts: testdata/fence.txt, rejoin.txt,
// lease.txt, watchdog.txt, gap.txt, damaged.txt, epoch.txt.
//
//   - Writes (Propose), checked in this order: a failed store takes
//     nothing (ErrFailed); a fenced configuration takes no client I/O
//     (ErrFenced); the epoch must be the node's (StaleEpochError, which
//     says the node's epoch); only the head sequences (ErrNotHead); only
//     under a valid lease (ClientWrite.Leased, ErrNoLease); then the
//     range must lie in the chunk (ErrInvalid), a retry is deduplicated,
//     and a write covering a damaged range in part is refused (ErrDamaged).
//   - Reads (AdmitRead): at the node's epoch, not fenced, at the tail or
//     single (ErrNotTail), with a sound store, not catching up and with
//     its epoch started (ErrCatchingUp), under a lease. An admitted read
//     waits until everything applied so far is persisted locally (the
//     returned seq).
//   - Epoch start: a follower that Reconfigure gave a new epoch serves no
//     read and is not settled (AdmitSettled, Quiescent) until it applied
//     an update of that epoch; the head proposes one, empty, right after
//     re-sending its Sent list (testdata/epochstart.txt).
//   - Fencing (Fence): the master says the server is not a member at
//     configurations up to some epoch; no client I/O at any epoch up to
//     it. A fenced head drops chain messages (Step returns ErrFenced): it
//     may hold stale sequence numbers. A higher configuration lifts it.
//   - Rejoin: a node started from a reloaded replica (Start.Reloaded) is
//     fenced through its epoch and stays fenced across Reconfigures: it
//     may be behind its successor (it forwards before it persists). It acts
//     again only after a copy (Resync, then InstallCopy), or when a
//     Reconfigure makes it the sole member (the only copy left).
//   - Catch-up: a node that joins a chain behind a predecessor is catching
//     up (no reads) and asks for a copy (Ready.CatchUp); so does a node
//     whose gap stayed open CatchUpTicks ticks. CatchUpTarget names the
//     copy, CheckCatchUp judges it (retry under a changed configuration,
//     install if newer, else done), InstallCatchUp ends it.
//   - Watchdogs (Tick): the Sent list is re-sent after ResendTicks ticks
//     without ack progress; PeerReconnected re-sends the Sent list to a
//     successor and the cumulative ack to a predecessor.
//   - Delta resync: the node keeps an UpdateLog of the ranges its recent
//     updates touched (Since, Ahead), so a returning replica copies only
//     what changed after its own (epoch, seq).
//   - Lease: a Lease is granted from when the heartbeat asking for it was
//     sent and never shortened; the caller passes Lease.Valid(now).
//
// Under the invariants build tag every call that changes a node asserts
// acked <= persisted <= applied, Sent in order and within applied, the
// out-of-order buffer beyond applied+1 and the update log ending at
// applied.
//
// # Reconfiguration
//
// Reconfigure installs a higher epoch. A node with a successor re-sends its
// whole Sent list to it under the new epoch (a new successor after a middle
// node was removed ignores what it already has and re-acks it; the same
// successor refuses old-epoch messages). A node that became the tail commits
// everything it holds durably.
//
// The head then proposes the epoch's start: an empty update (KindZero of
// length 0, no request id) at the new epoch, as a Raft leader commits an
// empty entry at the start of its term. Updates sequenced under the old
// epoch and still in flight commit under the new one; without the start
// a tail could serve a read at the new epoch before such an update
// reached it, though a configuration change at the master (a snapshot's
// fence, which makes the chunk shared) already counted it as before the
// change: the snapshot would hold a write that a later read did not see.
// A follower applies updates in sequence order, so once it applied the
// start it holds every earlier one that will ever commit. A new head continues numbering after what it
// applied, and knows the request ids of the updates it applied as a
// follower, so client retries are answered without applying twice.
//
// # Caller's duties
//
//   - Serialise all calls on a Node (it is not safe for concurrent use).
//   - After any call, take Ready and carry it out in order: (1) send
//     Messages, so the chain persists in parallel; (2) apply Apply to the
//     store in order, make it durable and report the highest durable seq
//     with Persisted (group commit is fine: report once for many); (3)
//     answer Replies, fanning each out to every waiter of that request id.
//   - Do not modify Data handed to Propose or returned in Apply.
//   - Message delivery may drop, duplicate and reorder. Call Tick at a
//     fixed period (a node that is Idle may be skipped: a tick would not
//     change it), and PeerReconnected when a stream to a neighbour was
//     re-established. On ErrStaleEpoch with a higher peer epoch, fetch
//     the configuration and Reconfigure.
//   - Answer Ready.Abandoned writes with a retryable error; on
//     Ready.CatchUp fetch CatchUpTarget's copy (one fetch at a time).
//   - Request-id memory is bounded (the last 4096 ids) and lives in the
//     node: a caller that builds a node from a replica (a restart, a
//     node dropped while Quiescent, a clone) passes the ids the replica's
//     updates carried in Start.Requests, kept durably with the applied
//     seq that covers them (internal/chunkserver does, through
//     internal/chunkstore). A retry older than that is not deduplicated.
//   - Start.Applied must be durable, and a replica loaded from disk must
//     say so (Start.Reloaded). A restarted node starts with an empty Sent
//     list: a middle node re-forwards what its predecessor re-sends, but
//     a restarted head cannot re-send updates that never left it, which is
//     why a reloaded node rejoins through a copy.
//   - Install a catch-up copy durably before InstallCatchUp, and a resync
//     copy durably before InstallCopy.
package chain
