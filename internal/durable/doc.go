// Package durable creates directories so that they survive a power cut.
//
// os.MkdirAll makes a directory visible at once, but its entry in the
// parent lives in the parent directory's own data, which reaches the disk
// only when the parent is fsynced. After a power cut a process that wrote
// and synced files in a directory it created at first start can find the
// directory (and so the files) gone. MkdirAll here creates the missing
// components one by one and fsyncs each new directory and its parent, so
// once it returns the whole path is durable.
//
// Model: a small FS interface (MkdirAll, Stat, SyncDir) that the
// chunkstore's FS already satisfies, so the chunkserver's in-memory tests
// keep working; OS is the operating system's file system.
//
// Caller's duties: creating a file inside the directory still needs a
// SyncDir of that directory after the file's own fsync.
package durable
