package master

import "errors"

// Errors returned by Start.
var (
	// ErrConfig: the Config is invalid.
	ErrConfig = errors.New("master: invalid config")
	// ErrPeersUnsupported: multi-voter groups (Config.Peers) are not
	// implemented yet.
	ErrPeersUnsupported = errors.New("master: multiple voters not supported yet")
)

// ErrNoChunkservers: fewer live chunkservers than a chain needs.
var ErrNoChunkservers = errors.New("master: not enough chunkservers")
