// Package fusefs serves a Catena namespace as a FUSE file system
// (hanwen/go-fuse/v2, fs node API) through the client library.
//
// Model: one node per Catena inode (the FUSE inode number is the Catena
// inode number, so hard links share a node). Namespace operations are one
// FS-service call each; file data goes through client.File, opened by inode
// once per node while any handle is open and shared by all its handles.
//
// Invariants:
//   - the kernel enforces permissions (default_permissions); the mount passes
//     the caller's uid and gid to new inodes; mode 0000 is reported as 0000
//     (NullPermissions);
//   - names over 255 bytes are ENAMETOOLONG before any master call;
//   - fifos, device nodes and sockets are metadata (type, mode, rdev) in the
//     master; the kernel serves their I/O, so they have no openFile;
//   - RENAME_EXCHANGE is one master command (atomic swap);
//   - an open file's size is the master's size at open plus this mount's
//     writes and truncates; getattr of an open file reports it, so the
//     kernel sees its own writes before they are flushed;
//   - writes are buffered per open file (contiguous runs up to WriteBuffer)
//     and reach the replicas as large WriteAt calls on flush (close), fsync,
//     release, a non-contiguous write or a full buffer; the size goes to the
//     master on flush and fsync (close-to-open, as NFS): fsync returns once
//     data is on every replica and the size is committed;
//   - sequential reads fetch ReadAhead bytes at a time; the read-ahead is
//     dropped by any write to the file and with the last handle.
//
// Caller's duties: run as root or with fuse permissions; unmount with
// Server.Unmount (or fusermount3 -u) so the kernel releases open files.
// A lost master or chunkserver makes operations retry until the client's
// OpTimeout, then they fail with EIO. A process that serves a mount must
// not start children whose working directory or binary is on it: Go forks
// with vfork and the forking thread holds its P until exec, so a child
// blocked on the mount before exec deadlocks the next stop-the-world GC.
package fusefs
