// Package fuse runs real programs (sqlite3, git, tar, fio) on a FUSE mount
// of an in-process cluster, and checks close-to-open between two mounts.
// Tests skip when not root, without /dev/fuse or without the program.
package fuse
