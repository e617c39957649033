package mirror

import "errors"

// Errors of the mirror.
var (
	// ErrBadRecord: a stored mirror record does not decode or breaks an
	// invariant (Record.Check).
	ErrBadRecord = errors.New("mirror: bad record")
	// ErrPromoted: the target volume was promoted (catena mirror
	// promote); no checkpoint is applied to it any more.
	ErrPromoted = errors.New("mirror: target volume promoted")
	// ErrNotMirror: the target holds a volume of that name that is not a
	// mirror (no record), or a mirror of another source.
	ErrNotMirror = errors.New("mirror: target volume is not a mirror of this source")
	// ErrNoRecord: the cluster holds no mirror record for the volume.
	ErrNoRecord = errors.New("mirror: no mirror record")
)
