// Package nbd serves block devices to standard NBD clients (nbdinfo,
// nbdcopy, qemu, fio, the Linux kernel) over the fixed newstyle protocol of
// NetworkBlockDevice/nbd doc/proto.md.
//
// Model: a Server accepts connections; each goes through option haggling
// (EXPORT_NAME, GO, INFO, LIST, ABORT, STRUCTURED_REPLY; everything else is
// answered NBD_REP_ERR_UNSUP) and then transmission, where one goroutine
// reads and decodes requests and each request runs in its own goroutine
// (bounded per connection), so many requests are in flight and replies come
// back in completion order, serialised on the connection. Wire decoding is
// pure functions of byte slices (wire.go), fuzzed.
//
// Invariants:
//   - a reply is sent only after the Device call it answers has returned:
//     for a Device whose WriteAt/Zero/Trim are durable when they return (the
//     Catena volume), FLUSH has nothing left to do for durability and
//     CAN_MULTI_CONN holds (the volume's Flush may still wait for its
//     client's flush barrier: a --sync-flush mirror's checkpoint); FUA is
//     honoured by calling Flush after the write;
//   - malformed traffic gets the protocol's error reply (EINVAL for bad
//     ranges or unknown commands, ENOSPC for writes past the end) or a
//     closed connection (bad magic, oversized write payload), never a panic;
//   - a request range is checked against the export size before the Device
//     sees it, so a Device may assume in-bounds ranges.
//
// Caller's duties: Exports owns the devices (the Server never closes them);
// a Device must be safe for concurrent use; Close the Server to stop it.
package nbd
