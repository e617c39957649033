// Package fuse runs real programs (sqlite3, git, tar, fio) on a FUSE mount
// of an in-process cluster, checks close-to-open between two mounts,
// orphans (files unlinked while open), and runs the fsx exerciser: random
// file operations checked against an in-memory model (fsx_test.go).
// posix_test.go checks the errnos POSIX suites expect, each call as root and
// as uid 65534 (a child process: this test binary re-executed with
// CATENA_POSIX_CHILD set), and the ctime rules.
// Tests skip when not root, without /dev/fuse or without the program.
package fuse
