package master

import "errors"

// Errors returned by Start.
var (
	// ErrConfig: the Config is invalid.
	ErrConfig = errors.New("master: invalid config")
	// ErrPeersUnsupported is no longer returned: multi-voter groups are
	// supported. Kept so older callers still compile.
	ErrPeersUnsupported = errors.New("master: multiple voters not supported yet")
)
