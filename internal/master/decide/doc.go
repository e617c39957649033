// Package decide holds the master's pure decisions about chunks and
// chunkservers, as raft keeps quorum/ and confchange/ apart from its glue:
//
//   - placement: which servers a new chain goes on (Place);
//   - liveness: whether a silent server is alive, dead or not known yet
//     (Classify);
//   - repair plans: which members leave a chain (PlanRemovals), which short
//     chains grow and onto which server (PlanRepairs), which joined members
//     proved they caught up (PlanCaughtUp), which bad blocks of
//     a sole member are restored from which replicas (PlanHeals), which
//     blocks verify nowhere (LostBlocks), which chunks no write created
//     replicas for get them from the master (PlanCreates);
//   - replica-report verdicts: whether a member that reported its replica
//     bad leaves its chain (DropOnReport), and what a heartbeat answers
//     about a server's inventory (Reconcile, Fenced).
//
// Model: every function is a pure function of its arguments, on domain
// types: the chunk map (meta.Chunk, meta.Server, a read-only ChunkMap),
// the leader's view of the servers (a Liveness, free bytes and the
// Evidence of each replica, per server) and times passed in by the
// caller. There are no goroutines, clocks, I/O, RPC or Raft here, and no
// wire types: the master's handlers convert api messages to these types
// at the edge. Arguments are not modified. A decision is a plan that the
// caller carries out (SetChain through Raft, Replicate or RestoreBlocks on
// a chunkserver) or a verdict it answers with.
//
// Invariants every decision keeps:
//   - the last copy is never dropped: a planned chain is never empty, and
//     a chain whose live members hold no replica is left as it is until a
//     member returns, unless a live member vouched that it never held one
//     (replicas come into being with their chunk's first update: then no
//     update ever reached the chain, and the dead members hold nothing
//     acknowledged);
//   - a member leaves its chain only when it is Dead (its lease has surely
//     expired), fenced at the chunk's current epoch, known not to hold the
//     replica, or reported bad while another member can serve; an Unknown
//     server is neither removed, nor placed on, nor a repair target;
//   - which replica survives rests on what the replicas reported (epochs,
//     durable history, bad blocks, verification), never on a member's
//     position in the chain, and nothing is chosen among candidates not
//     verified yet;
//   - the master creates replicas itself (PlanCreates) only where no member
//     can have a history another lacks: no live server holds one, and
//     every member or none can still create its own from an update;
//   - a syncing member (meta.Chunk.Syncing: joined through a copy, not
//     confirmed caught up) may lack acknowledged updates: it is never a
//     keeper nor left as the head, so the members holding every
//     acknowledged update never all leave (live ones stay even fenced, for
//     the joiner to catch up from); it is confirmed only by a report at the
//     chunk's current epoch, neither fenced nor catching up;
//   - a chain grows only when every member is alive, none is syncing, and
//     its tail holds a replica (the copy's source), onto a live
//     non-member, a returning replica (delta resync) first; a new chain
//     has distinct servers, in distinct failure domains while any is left;
//   - a plan carries the epoch it was read at.
//
// Caller's duties: pass one consistent view per round (the chunk map and
// the servers' view read once); hold the state's read lock while a
// *meta.State is used as a ChunkMap; apply a plan only if the chunk is
// still at the plan's epoch (else plan again next round); report to a
// client the counts of a *ShortageError, not its text.
package decide
