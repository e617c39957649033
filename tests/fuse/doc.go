// Package fuse runs real programs (sqlite3, git, tar, fio) on a FUSE mount
// of an in-process cluster, checks close-to-open between two mounts,
// orphans (files unlinked while open), and runs the fsx exerciser: random
// file operations checked against an in-memory model (fsx_test.go).
// Tests skip when not root, without /dev/fuse or without the program.
package fuse
