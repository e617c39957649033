package chunkserver

import "errors"

// Errors returned by the package.
var (
	// ErrClosed: the server is closed.
	ErrClosed = errors.New("chunkserver: closed")
	// ErrBadServerID: Dir/server-id exists but does not hold a non-zero id.
	ErrBadServerID = errors.New("chunkserver: malformed server-id file")
	// ErrNoMaster: no master answered (every address failed or redirected).
	ErrNoMaster = errors.New("chunkserver: no master reachable")
	// ErrBadMessage: a chain message from a peer is malformed.
	ErrBadMessage = errors.New("chunkserver: malformed chain message")
	// ErrReplicaFailed: a store error stopped the replica; it applies and
	// acknowledges nothing more until it is re-created.
	ErrReplicaFailed = errors.New("chunkserver: replica failed")
)
