package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/rpcerr"
)

// Errors of the command itself (client errors come from package client).
var (
	// errStdinToDir: put - into a directory, with no local name to use.
	errStdinToDir = errors.New("catena: destination is a directory; name the remote file when reading stdin")
	// errRemoveRoot: rm /.
	errRemoveRoot = errors.New("catena: cannot remove the root directory")
)

// opError is a failed user-level operation, printed "<op>: <reason>".
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + reason(e.err) }
func (e *opError) Unwrap() error { return e.err }

// fail names the operation that failed; it returns nil when err is nil.
func fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var oe *opError
	if errors.As(err, &oe) || errors.Is(err, client.ErrMasterUnreachable) {
		return err // already named, or reported on its own line
	}
	return &opError{op: op, err: err}
}

// usageError is a flag or argument error: printed with the command's usage.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// knownErrors are matched in order; the first one err wraps supplies the
// reason, so the line stays short whatever context the client added.
var knownErrors = []error{
	client.ErrNotFound,
	client.ErrExist,
	client.ErrNotDir,
	client.ErrIsDir,
	client.ErrNotEmpty,
	client.ErrReadOnly,
	client.ErrFenced,
	client.ErrNoChunkservers,
	client.ErrNoSpace,
	client.ErrCorrupt,
	client.ErrClosed,
	client.ErrMasterUnreachable,
	client.ErrInvalid,
}

// codeErrors maps server error codes the client passed through unwrapped.
var codeErrors = map[api.ErrorCode]error{
	api.ErrorCode_NOT_FOUND:       client.ErrNotFound,
	api.ErrorCode_EXISTS:          client.ErrExist,
	api.ErrorCode_NOT_DIR:         client.ErrNotDir,
	api.ErrorCode_IS_DIR:          client.ErrIsDir,
	api.ErrorCode_NOT_EMPTY:       client.ErrNotEmpty,
	api.ErrorCode_NO_CHUNKSERVERS: client.ErrNoChunkservers,
	api.ErrorCode_NO_SPACE:        client.ErrNoSpace,
	api.ErrorCode_CORRUPT:         client.ErrCorrupt,
}

// reason renders err for a user: the meaning, not the call stack.
func reason(err error) string {
	for _, k := range knownErrors {
		if errors.Is(err, k) {
			// Keep the detail the server or the client gave with the kind
			// ("not enough chunkservers available: need 5 chunkservers, 3
			// alive"), drop the client's call context around it.
			var de *client.DetailError
			if errors.As(err, &de) && errors.Is(de, k) {
				return de.Error()
			}
			return k.Error()
		}
	}
	if k, ok := codeErrors[rpcerr.Code(err)]; ok {
		return k.Error()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		inner := ne.Err
		var se *os.SyscallError
		if errors.As(inner, &se) {
			inner = se.Err
		}
		if ne.Addr != nil {
			return fmt.Sprintf("%s %s: %v", ne.Op, ne.Addr, inner)
		}
		return fmt.Sprintf("%s: %v", ne.Op, inner)
	}
	msg := rpcerr.Message(err)
	// Our own sentinels carry the package prefix for logs; users see the text.
	return strings.TrimPrefix(msg, "catena: ")
}

// errorLine renders a runtime error as the one line after "catena: ".
func errorLine(err error, masters string) string {
	if errors.Is(err, client.ErrMasterUnreachable) {
		return fmt.Sprintf("master unreachable at %s (is \"catena dev\" running?)", masters)
	}
	var oe *opError
	if errors.As(err, &oe) {
		return oneLine(oe.Error())
	}
	return oneLine(reason(err))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
