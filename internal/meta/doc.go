// Package meta is the master's metadata state machine: the namespace (an
// inode tree), the chunk map (handle -> epoch, chain, refcount) and the
// chunkserver registry.
//
// Model: State changes only through Apply(Command), which is deterministic.
// Everything that is not a pure function of the state and the command comes
// in the command: the leader stamps times (unix nanoseconds) and computes
// placement (the chain of an allocated chunk) before proposing. There are no
// goroutines, clocks or I/O here; the Raft glue in internal/master carries
// commands through the log (Encode/Decode) and checkpoints the whole state
// (Checkpoint/RestoreCheckpoint).
//
// Invariants (kept by Apply; State.Check, the metadata fsck, checks each
// of them by name on any state: RestoreCheckpoint runs it on what it
// decodes, the cluster harness on every master after every test, and Apply
// after every command when built with -tags invariants):
//   - inode 1 is the root directory; every other inode hangs under exactly
//     one directory (a hard-linked file under one per name, posix.go), by
//     a valid name, and is reachable from the root;
//     volume inodes are the exception: parent 0, named by the volume table
//     (name -> inode), outside the tree (volume.go); and so are orphans:
//     nameless files (nlink 0) that a mount session holds open, deleted
//     when the last session holding them lets go or ends (orphan.go);
//   - a chunk's refcount equals the number of (file, index) slots naming it,
//     and a chunk with refcount 0 is not in the map;
//   - every chain is non-empty, without duplicates, of registered servers;
//     its syncing members (joined through a copy, not yet known to have
//     caught up: they may lack acknowledged updates) are distinct members,
//     and its head is never one of them;
//   - a chunk's epoch starts at 1 and only grows, by exactly one per SetChain (a
//     compare-and-set: ErrEpochMismatch otherwise);
//   - inode and handle counters are above every id in use;
//   - every directory entry is a name its inode has, and the converse;
//     holder counts match the mount sessions, which hold existing files.
//
// Caller's duties: State is not safe for concurrent use; the caller
// serialises Apply and queries (the master holds a RWMutex). Paths must be
// absolute and already clean (CheckPath); meta does not clean them, so the
// same bytes always mean the same thing in the log. Results returned by
// queries are copies.
package meta
