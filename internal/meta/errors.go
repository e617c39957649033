package meta

import (
	"errors"
	"fmt"
)

// Errors returned by Apply (in Result.Err), by queries, by decoders and by
// Check.
// Apply wraps them with %w and context; classify with errors.Is.
var (
	// ErrNotFound: the path, inode or chunk does not exist.
	ErrNotFound = errors.New("meta: not found")
	// ErrExists: the path already exists.
	ErrExists = errors.New("meta: already exists")
	// ErrNotDir: a path component, or the target of a directory operation,
	// is not a directory.
	ErrNotDir = errors.New("meta: not a directory")
	// ErrIsDir: a file operation on a directory.
	ErrIsDir = errors.New("meta: is a directory")
	// ErrNotEmpty: the directory has entries.
	ErrNotEmpty = errors.New("meta: directory not empty")
	// ErrInvalid: a malformed argument (path, size, chain, ...).
	ErrInvalid = errors.New("meta: invalid argument")
	// ErrNameTooLong: a name is longer than MaxNameLen bytes, or a path
	// longer than MaxPathLen (ENAMETOOLONG). It wraps ErrInvalid, so a
	// caller that only knows ErrInvalid still classifies it.
	ErrNameTooLong = fmt.Errorf("%w: name too long", ErrInvalid)
	// ErrEpochMismatch: SetChain was computed from an epoch the chunk no
	// longer has (another change came first); re-read and retry.
	ErrEpochMismatch = errors.New("meta: chunk epoch changed")
	// ErrReadOnly: the command would change a snapshot (EROFS).
	ErrReadOnly = errors.New("meta: read-only snapshot")
	// ErrCorrupt: an encoded command or checkpoint cannot be decoded or
	// violates an invariant.
	ErrCorrupt = errors.New("meta: corrupt encoding")
	// ErrInconsistent: State.Check found a broken invariant: a bug in
	// Apply, or (wrapped with ErrCorrupt) a corrupt checkpoint.
	ErrInconsistent = errors.New("meta: inconsistent state")
)

// Error is what the package returns: a kind (one of the sentinels above,
// matched with errors.Is) and the detail of this occurrence, kept apart so
// that a caller can show "invalid argument: empty path element" without
// taking the kind's text out of the message.
type Error struct {
	Kind   error
	Detail string
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Detail }
func (e *Error) Unwrap() error { return e.Kind }

// errorf returns an *Error of kind with a formatted detail.
func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}
