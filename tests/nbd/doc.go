// Package nbd tests Catena's NBD export with real clients from Debian's
// packages (libnbd-bin: nbdinfo, nbdcopy; qemu-utils: qemu-img, qemu-io;
// fio with its nbd engine) against an in-process cluster and NBD server.
// A missing tool fails the test: CI installs them (.ci/run).
package nbd
