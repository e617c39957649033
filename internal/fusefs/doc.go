// Package fusefs serves a Catena namespace as a FUSE file system
// (hanwen/go-fuse/v2, fs node API) through the client library.
//
// Model: one node per Catena inode (the FUSE inode number is the Catena
// inode number, so hard links share a node). Namespace operations are one
// FS-service call each; file data goes through client.File, opened by inode
// once per node while any handle is open and shared by all its handles.
//
// Invariants (the cache model of an open file, docs/fuse.md):
//   - the kernel enforces permissions (default_permissions); the mount passes
//     the caller's uid and gid to new inodes; mode 0000 is reported as 0000
//     (NullPermissions);
//   - names over 255 bytes are ENAMETOOLONG before any master call;
//   - fifos, device nodes and sockets are metadata (type, mode, rdev) in the
//     master; the kernel serves their I/O, so they have no openFile;
//   - RENAME_EXCHANGE is one master command (atomic swap);
//   - an open file's size (openFile.sizeLocked) is the replicas' size after
//     this mount's writes and truncates, extended by the write-back buffer;
//     every getattr, setattr and lookup reply of an open file carries it
//     (a lookup through fsys.open: go-fuse discards the fresh node it
//     builds), so the kernel's size and ours agree;
//   - writes are buffered per open file (one contiguous run up to
//     WriteBuffer) and reach the replicas on flush (close), fsync, release,
//     a non-contiguous write, a truncate or fallocate, or a full buffer;
//     reads overlay the buffer; the size goes to the master on flush and
//     fsync (close-to-open, as NFS): fsync returns once data is on every
//     replica and the size is committed;
//   - the read-ahead holds the replicas' bytes: an overlapping write,
//     a truncate, a punch and every open drop it, and a write-back patches
//     it with the buffer's bytes;
//   - the kernel's page cache is write-through (no writeback cache mode,
//     no direct_io: mmap needs the page cache) and dropped at every open
//     (no FOPEN_KEEP_CACHE); the offset of a write is the kernel's, never
//     moved (mmap pages come back through any writable handle, O_APPEND
//     ones included);
//   - an open of a file already open here reloads its size and chunk map
//     from the master unless it has changes of its own to publish;
//   - operations ignore FUSE_INTERRUPT (Go signals its threads constantly);
//   - the mount holds a session with the master (renewed every
//     SessionTTL/3) and tells it which files it holds open (Hold at the
//     first open, Unhold after the last release): a file that loses its
//     last name while held becomes an orphan, deleted when the last mount
//     holding it lets go or its session expires (a dead mount).
//
// Caller's duties: run as root or with fuse permissions; unmount with
// Server.Unmount (or fusermount3 -u) so the kernel releases open files.
// A lost master or chunkserver makes operations retry until the client's
// OpTimeout, then they fail with EIO. A process that serves a mount must
// not start children whose working directory or binary is on it: Go forks
// with vfork and the forking thread holds its P until exec, so a child
// blocked on the mount before exec deadlocks the next stop-the-world GC;
// nor touch an mmap of it (a page fault on the mount holds the P alike).
package fusefs
