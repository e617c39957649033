// Package chunkstore keeps a chunkserver's chunk replicas on disk, all
// through a small FS interface (OSFS for the real disk, MemFS with
// CrashClone for tests, ErrorFS for faults).
//
// # The chunk engine (format 4): Store and Replica
//
// Every replica of a disk lives in one log-structured engine in
// DIR/engine: segments of packed, checksummed records (create, put,
// meta, clone, invalidate, delete), an in-memory index of each replica's
// blocks as lists of reference-counted pieces (each piece with its own
// CRC32C, at most 64 KiB), and a checkpoint of that index that bounds
// recovery. The design, what one write costs, recovery and space
// reclamation are in docs/architecture.md ("The chunk engine"); the code
// is engine*.go.
//
// Model: Create appends a record and creates no file; WriteAt, Zero and
// Invalidate append records (no sync); Sync is the engine's group commit:
// a meta record for each changed replica, then one fdatasync of what was
// appended, shared by concurrent callers across all replicas. Clone makes
// a replica that shares every piece of its source; a first write to a
// shared block stores only the new bytes. Diff lists the blocks two
// replicas may differ in without reading data.
//
// Invariants: every read verifies the CRC32C of each piece it reads; a
// mismatch marks the block bad (BadBlocks), fails the read with
// ErrCorrupt naming handle and block, and returns no data for it; a
// partial write or zero into a bad block fails (ErrCorrupt), a whole-block
// write heals it. Holes read as zeros and take no space. After a crash the
// records that survive are a prefix of the log (a record counts only if
// it and every piece verify, its LSN follows the previous one and its
// incarnation is not older), so every write covered by a completed Sync
// survives, no torn piece is ever returned, and each replica's state is a
// prefix of its history: its metadata as of its last durable marker, and
// the blocks changed after the LSN that marker covers listed by
// AheadBlocks (a delta resync re-sends them). SetAppliedAt covers every
// change of the replica made before it: the caller applies updates, then
// says how far it got; a marker written in between (another replica's
// Sync, a checkpoint) does not hide the uncovered changes. A replica also
// keeps the client request ids of its newest updates (Requests;
// engine_requests.go): SetAppliedAt records them with the seq that
// accounts for their updates, so they are durable, or lost to a crash,
// together with it; ReplaceRequestsAt replaces them (a copy installed);
// a clone takes its source's.
//
// Caller's duties: Sync before acknowledging anything as durable (Close
// does not sync replicas' writes); open one Store per directory at a time
// (a checker uses the running server's Store); treat ErrFailed as a lost
// replica and reopen the store; restore the blocks BadBlocks lists whole
// from another replica.
//
// # Upgrading: the one-file-per-replica formats 2 and 3
//
// OpenConfig converts the replicas an older chunkserver kept in
// DIR/chunks into the engine, each synced before its old file is removed
// (with its metadata, bad blocks and ahead blocks), and removes the
// emptied directory. The code of those formats (store.go, replica.go,
// format.go, filecache.go: fileStore and fileReplica) remains only to read
// them for that; what follows describes them.
//
// # Format
//
// A replica lives in DIR/chunks/<handle as 16 hex digits>.chunk:
//
//	[0, 4 KiB)        header slot A
//	[4 KiB, 8 KiB)    header slot B
//	[8 KiB, 72 KiB)   checksum table: one little-endian uint32 per 64 KiB
//	                  block, room for 16384 blocks (MaxChunkSize = 1 GiB)
//	[72 KiB, 136 KiB) pending table: per block, the raw CRC32C of the
//	                  content last written to it, 0 for none (format 3)
//	[136 KiB, ...)    data, 4 KiB aligned, ceil(ChunkSize/64 KiB) blocks
//
// Format 2 files (no pending table, data at 72 KiB) are still read and
// written in their own layout; new replicas are format 3.
//
// The file is created at full size and is sparse: never-written ranges are
// holes and read as zeros. A block's table entry is CRC32C(block) xor
// CRC32C(zero block), so a zero block, and thus an all-zero table, is
// valid. A header slot holds magic, format version, a generation, handle,
// epoch, chunk size, chain, applied sequence number and epoch, the blocks changed by
// the Sync that wrote it with their entries, and a CRC32C of the slot.
//
// # Invariants
//
//   - ReadAt returns only bytes whose block matches its entry; otherwise
//     ErrCorrupt (with handle and block) and no data. Verify scans all.
//   - A partial-block WriteAt or Zero verifies the old block first, so a
//     corrupt block is never given a fresh checksum.
//   - WriteAt, Zero and ReadAt of a replica exclude each other (RWMutex):
//     a read never observes half a write.
//   - Sync writes the table entries of the previous Sync's blocks, then its
//     header, listing its own changed blocks with their entries, into the
//     slot not currently trusted (generation+1), then one fdatasync: the
//     table in the file lags the headers by one Sync, so it never holds an
//     entry that no durable header vouches for (a power cut can land the
//     table page without the header). Concurrent Syncs share one
//     fdatasync when one covers the other's changes. When more than 314
//     blocks (~20 MiB) changed since the last Sync, the data and their
//     table entries are fdatasynced before the header is written (two
//     fdatasyncs).
//
// # Open files
//
// A Store keeps at most Config.MaxOpenFiles (default 1024) replica files
// open, so that a server with tens of thousands of replicas does not run
// out of descriptors; the others are reopened on demand by the next
// ReadAt, WriteAt, Zero, Sync or Verify. When a file must be opened, the
// least recently used idle file is closed first. Idle means: no
// operation is using it (each operation pins the file while it runs, so
// a file in use is never closed) and it is clean: every write to it was
// covered by a successful fdatasync. A file with writes since its last
// Sync is never closed, because a Sync through a new descriptor might not
// learn of a writeback error of the old one; if every open file is dirty
// or in use the limit is exceeded until Syncs make some idle. While all
// files are clean and at most MaxOpenFiles operations run at once, the
// Store never holds more than MaxOpenFiles descriptors. UsedBytes of a
// closed file is the value recorded when it was closed (nothing writes a
// closed file), so it opens nothing.
//
// # Crash behaviour and recovery
//
// Open reads both slots; the valid one with the higher generation is the
// candidate. A torn slot fails its CRC, so the other (previous) header
// survives. Each header lists the blocks its Sync changed with their
// entries before (Old) and after (New). The candidate is rejected, and the
// previous header used instead, when a listed block still holds its Old
// content: that Sync's data demonstrably did not reach the disk, and the
// header must not claim it (applied seq, epoch and chain go back one
// Sync, never forward past missing data). A listed block matching neither
// was torn or rewritten later: it reads as ErrCorrupt or as its newer
// content. The entries the valid headers list (the older one first) are
// taken where the data holds them, and written to the table by the next
// Sync.
//
// Format 3: WriteAt and Zero write each block's new pending entry before
// its data (no sync), so that recovery can tell a whole newer write from a
// torn one. For every block whose pending entry differs from its table
// entry (the table only holds entries a durable header vouches for),
// recovery reads the data: matching the pending entry, the write
// reached the disk whole (a process crash keeps the page cache: this is
// the common case) and the block is adopted and listed by AheadBlocks;
// matching the table entry, the write never landed; matching neither, the
// block is torn and listed by BadBlocks. So after a SIGKILL every block
// verifies and holds its newest content, while the applied seq is that of
// the last Sync: the replica's bytes may be ahead of its seq, and a delta
// resync must re-send the ahead blocks.
//
// After a crash, everything made durable by the last completed Sync reads
// back unchanged, except blocks written again after it: such a block reads
// as its synced or its newest content, or ErrCorrupt when data and
// checksum disagree (a torn write under power loss), never silently wrong.
// A bad block fails reads of it and partial writes into it (ErrCorrupt);
// the rest of the replica keeps serving, and writing the block whole
// heals it. The metadata is that of
// the last completed Sync; rarely (a block of that Sync rewritten to its
// content before that Sync, and the crash hit before the next header
// landed) that of the Sync before it, which is conservative. A file with
// no usable header is logged and moved to DIR/corrupt; Open does not fail
// for it.
//
// ENOSPC is reported as ErrNoSpace. WriteAt reserves space (fallocate)
// before writing, so a full disk fails it with nothing stored changed.
// A failed fdatasync makes the replica ErrFailed for good: reopen the
// store to continue from what is on disk.
//
// # Caller's duties (formats 2 and 3)
//
//   - Sync before acknowledging anything as durable; Close does not Sync.
//   - Sync replicas after writing them: a replica with unsynced writes
//     keeps its file open (beyond MaxOpenFiles if need be).
//   - A Replica is invalid after Delete or Store.Close (ErrClosed).
//   - Only one Store may write a directory. A second, read-only Store
//     (a checker) sees data as of the writer's last Sync; it must not
//     write or Create.
//   - Treat ErrFailed as a lost replica. ErrCorrupt concerns the blocks
//     BadBlocks lists: restore them whole from another replica (or leave
//     the chain and let the master re-replicate).
package chunkstore
