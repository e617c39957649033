// Package client is the Go client library of Catena, the only public Go API.
// The CLI, the FUSE mount and the NBD export all go through it.
//
// # Model
//
// A Client talks to the master group for metadata and directly to
// chunkservers for data; data never flows through the master. gRPC
// connections are created lazily and shared by every File of the Client.
//
// Master calls go to the current leader guess. NOT_LEADER moves the guess to
// the leader the answering master names (or to the next configured address
// when it names none); a transport failure (gRPC Unavailable without a
// Catena code, or the expiry of one attempt) moves it to the next address
// after a short exponential backoff. After OpTimeout the call fails with
// ErrMasterUnreachable naming the addresses tried and the last cause.
//
// # What is cached
//
// Each File caches its chunk map (index -> handle, epoch, chain), filled from
// the master in batches of 64 indexes and reloaded per chunk when a
// chunkserver answers STALE_EPOCH, NOT_HEAD, NOT_TAIL, NOT_FOUND or
// UNAVAILABLE, or cannot be reached. An index the master reported as
// unallocated is a hole: reads return zeros without any request, and the
// first write allocates it (AllocateChunk is idempotent).
//
// # Writes and exactly-once
//
// WriteAt splits its range at chunk boundaries and into pieces of at most
// MaxIOSize, keeps up to IOConcurrency pieces in flight, and sends each to
// the head of its chunk's chain with the cached epoch. Every piece carries
// (client id, request id): the client id is random per Client, the request
// id comes from an atomic counter and is fixed before the first attempt, so
// every retry of a piece — to the same head or to a new head after a chain
// change — reuses it and the chain applies the piece once. When WriteAt
// returns without error every byte is durable on every replica of its chain.
// Each piece is atomic on its own chunk; a WriteAt spanning pieces is not
// atomic as a whole, and on error n counts the leading pieces written.
//
// Reads go to the tail (committed data only), pieces in parallel. CORRUPT
// is retried after a refresh (the master replaces the bad replica) a few
// times, then returned as ErrCorrupt.
//
// # Size visibility (close-to-open)
//
// File size lives in the master. A File knows the size it saw at Open plus
// its own writes and truncates; ReadAt returns io.EOF past that size. A File
// that grew the file reports the new size with one SetSize(EXTEND) on Sync or
// Close, not per write; other clients see it when they Open or Stat after
// that. Truncate sets the size on the master at once (SetSize(EXACT)).
//
// # Errors
//
// Errors are the sentinels of api.go wrapped with the operation and path
// ("stat /a: no such file or directory"), meant to be printed as is and
// classified with errors.Is. ErrNotFound, ErrExist, ErrInvalid and ErrClosed
// also match their io/fs counterparts.
//
// # Concurrency and the caller's duties
//
// Client, and File's ReadAt and WriteAt, are safe for concurrent use.
// Overlapping concurrent writes to the same range have no defined order.
// Truncate must not run concurrently with other I/O on the same File. Close
// every File to publish its size, and the Client to release connections.
package client
