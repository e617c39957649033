package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/rpcerr"
)

// sentinel maps a server error to the package's sentinel error, keeping the
// server's message as a *DetailError where it explains the sentinel
// (INVALID, NAME_TOO_LONG, NO_CHUNKSERVERS). Errors without a Catena code
// are returned unchanged.
func sentinel(err error) error {
	if err == nil {
		return nil
	}
	switch rpcerr.Code(err) {
	case api.ErrorCode_NOT_FOUND:
		return ErrNotFound
	case api.ErrorCode_EXISTS:
		return ErrExist
	case api.ErrorCode_NOT_DIR:
		return ErrNotDir
	case api.ErrorCode_IS_DIR:
		return ErrIsDir
	case api.ErrorCode_NOT_EMPTY:
		return withMessage(ErrNotEmpty, err)
	case api.ErrorCode_NAME_TOO_LONG:
		return withMessage(ErrNameTooLong, err)
	case api.ErrorCode_FILE_TOO_BIG:
		return withMessage(ErrFileTooBig, err)
	case api.ErrorCode_PERMISSION_DENIED:
		return withMessage(ErrPermission, err)
	case api.ErrorCode_INVALID:
		return withMessage(ErrInvalid, err)
	case api.ErrorCode_NO_CHUNKSERVERS:
		return withMessage(ErrNoChunkservers, err)
	case api.ErrorCode_NO_SPACE:
		return ErrNoSpace
	case api.ErrorCode_CORRUPT:
		return ErrCorrupt
	case api.ErrorCode_STALE_EPOCH:
		return ErrStaleEpoch
	case api.ErrorCode_READ_ONLY:
		return withMessage(ErrReadOnly, err)
	case api.ErrorCode_FENCED:
		return withMessage(ErrFenced, err)
	}
	return err
}

func withMessage(s, err error) error {
	msg := rpcerr.Message(err)
	if msg == "" {
		return s
	}
	return &DetailError{Kind: s, Detail: msg}
}

// opError wraps err as "op path: err" (os.PathError style, but the message is
// meant to be printed as is by the CLI).
func opError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	if path == "" {
		return fmt.Errorf("%s: %w", op, sentinel(err))
	}
	return fmt.Errorf("%s %s: %w", op, path, sentinel(err))
}

// masterAction says what a master call does after an error.
type masterAction int

const (
	masterDone     masterAction = iota // return the error to the caller
	masterRedirect                     // NOT_LEADER: go to the named leader, or the next address
	masterNext                         // transport failure or UNAVAILABLE: next address after a backoff
)

// classifyMaster decides how a master call proceeds after err. attemptExpired
// says whether the per-attempt deadline (not the caller's) has passed.
func classifyMaster(err error, attemptExpired bool) masterAction {
	switch rpcerr.Code(err) {
	case api.ErrorCode_NOT_LEADER:
		return masterRedirect
	case api.ErrorCode_UNAVAILABLE:
		return masterNext
	case api.ErrorCode_ERROR_CODE_UNSPECIFIED:
		if isTransport(err, attemptExpired) {
			return masterNext
		}
	}
	return masterDone
}

// chunkAction says what a chunkserver request does after an error.
type chunkAction int

const (
	chunkDone    chunkAction = iota // return the error to the caller
	chunkRefresh                    // reload the chunk's chain from the master, back off, retry
	chunkCorrupt                    // CORRUPT: refresh and retry a bounded number of times
)

// classifyChunk decides how a chunkserver request proceeds after err.
func classifyChunk(err error, attemptExpired bool) chunkAction {
	if errors.Is(err, ErrStaleEpoch) { // a local verdict, e.g. an empty chain
		return chunkRefresh
	}
	switch rpcerr.Code(err) {
	case api.ErrorCode_STALE_EPOCH, api.ErrorCode_NOT_HEAD, api.ErrorCode_NOT_TAIL,
		api.ErrorCode_NOT_FOUND, api.ErrorCode_UNAVAILABLE, api.ErrorCode_CAPABILITY_EXPIRED:
		return chunkRefresh
	case api.ErrorCode_CORRUPT:
		return chunkCorrupt
	case api.ErrorCode_ERROR_CODE_UNSPECIFIED:
		if isTransport(err, attemptExpired) {
			return chunkRefresh
		}
	}
	return chunkDone
}

// isTransport reports whether err is a failure to reach the server rather
// than an answer from it: gRPC Unavailable without a Catena code, or the
// expiry of this attempt's own deadline.
func isTransport(err error, attemptExpired bool) bool {
	if rpcerr.Code(err) != api.ErrorCode_ERROR_CODE_UNSPECIFIED {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	case codes.DeadlineExceeded:
		return attemptExpired
	}
	return attemptExpired && errors.Is(err, context.DeadlineExceeded)
}

// shortCause reduces a transport error to its innermost cause, so
// "master unreachable at a:1: connection refused" reads well.
func shortCause(err error) string {
	if err == nil {
		return "timeout"
	}
	msg := rpcerr.Message(err)
	msg = strings.TrimRight(msg, `"`)
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if msg == "" {
		return err.Error()
	}
	return msg
}
