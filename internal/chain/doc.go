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
// Sent list until the successor acknowledges it. Updates that arrive ahead
// of a gap are buffered; duplicates are never applied twice.
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
// # Reconfiguration
//
// Reconfigure installs a higher epoch. A node with a successor re-sends its
// whole Sent list to it under the new epoch (a new successor after a middle
// node was removed ignores what it already has and re-acks it; the same
// successor refuses old-epoch messages). A node that became the tail commits
// everything it holds durably. A new head continues numbering after what it
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
//   - Message delivery may drop, duplicate and reorder. When a stream to
//     the successor broke, a message was refused, or acks stop advancing
//     while Status().SentLen > 0, call ResendSent. On ErrStaleEpoch with a
//     higher peer epoch, fetch the configuration and Reconfigure.
//   - Request-id memory is volatile and bounded (the last 4096 ids): a
//     restarted node, or a retry older than that, is not deduplicated.
//   - NewNode's applied must be durable. A restarted node starts with an
//     empty Sent list: a middle node re-forwards what its predecessor
//     re-sends, but a restarted head cannot re-send updates that never left
//     it, so a restarted head must rejoin through a new configuration.
//   - A member joining a chain (at the tail) may lag its predecessor: it
//     fetches the predecessor's state as of some seq, installs it durably
//     and calls InstallCatchUp(seq). Do the same whenever Status shows a
//     gap (NextPending > 0) that does not close: the predecessor cannot
//     re-send updates it applied before the joiner was its successor.
//     Until caught up, a tail must not serve reads.
package chain
