// Package testtools decides what a test does when something it needs from
// the machine is missing: an external program (nbdinfo, qemu-img, fio,
// sqlite3, ...), root, or /dev/fuse.
//
// On a developer's machine the test is skipped with one line naming the
// package and what to install, so that the README's test command passes
// on a fresh machine with nothing but Go. Under CI=true (the CI, whose
// .ci/run installs everything) the same absence fails the test, so that
// CI never passes by skipping. For use by tests only.
package testtools
