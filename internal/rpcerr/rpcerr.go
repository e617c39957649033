// Package rpcerr translates between Catena's error codes and gRPC statuses.
//
// Every error a Catena server returns is a gRPC status carrying a
// google.rpc.ErrorInfo detail whose Reason is an api.ErrorCode name, so a
// client classifies it with Code(err) instead of parsing the message. A
// NOT_LEADER error also carries the leader's address (LeaderAddr).
package rpcerr

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/catena-io/catena/api"
)

const (
	domain        = "catena"
	leaderAddrKey = "leader_addr"
)

var grpcCodes = map[api.ErrorCode]codes.Code{
	api.ErrorCode_NOT_FOUND:         codes.NotFound,
	api.ErrorCode_EXISTS:            codes.AlreadyExists,
	api.ErrorCode_NOT_DIR:           codes.FailedPrecondition,
	api.ErrorCode_IS_DIR:            codes.FailedPrecondition,
	api.ErrorCode_NOT_EMPTY:         codes.FailedPrecondition,
	api.ErrorCode_INVALID:           codes.InvalidArgument,
	api.ErrorCode_NO_CHUNKSERVERS:   codes.ResourceExhausted,
	api.ErrorCode_NOT_LEADER:        codes.Unavailable,
	api.ErrorCode_STALE_EPOCH:       codes.FailedPrecondition,
	api.ErrorCode_NOT_HEAD:          codes.FailedPrecondition,
	api.ErrorCode_NOT_TAIL:          codes.FailedPrecondition,
	api.ErrorCode_CORRUPT:           codes.DataLoss,
	api.ErrorCode_NO_SPACE:          codes.ResourceExhausted,
	api.ErrorCode_UNAVAILABLE:       codes.Unavailable,
	api.ErrorCode_NAME_TOO_LONG:     codes.InvalidArgument,
	api.ErrorCode_FILE_TOO_BIG:      codes.OutOfRange,
	api.ErrorCode_PERMISSION_DENIED: codes.PermissionDenied,
}

// New returns a status error with the given code and message.
func New(code api.ErrorCode, format string, args ...any) error {
	return with(code, fmt.Sprintf(format, args...), nil)
}

// NotLeader returns a NOT_LEADER error naming the leader's address ("" when
// no leader is known).
func NotLeader(leaderAddr string) error {
	return with(api.ErrorCode_NOT_LEADER, "not the leader", map[string]string{leaderAddrKey: leaderAddr})
}

func with(code api.ErrorCode, msg string, md map[string]string) error {
	gc, ok := grpcCodes[code]
	if !ok {
		gc = codes.Unknown
	}
	st := status.New(gc, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: code.String(), Domain: domain, Metadata: md}); err == nil {
		st = d
	}
	return st.Err()
}

func info(err error) *errdetails.ErrorInfo {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return nil
	}
	for _, d := range se.GRPCStatus().Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.Domain == domain {
			return ei
		}
	}
	return nil
}

// Code returns the Catena error code carried by err, or
// ERROR_CODE_UNSPECIFIED when err is nil or carries none.
func Code(err error) api.ErrorCode {
	ei := info(err)
	if ei == nil {
		return api.ErrorCode_ERROR_CODE_UNSPECIFIED
	}
	return api.ErrorCode(api.ErrorCode_value[ei.Reason])
}

// LeaderAddr returns the leader address carried by a NOT_LEADER error.
func LeaderAddr(err error) string {
	if ei := info(err); ei != nil {
		return ei.Metadata[leaderAddrKey]
	}
	return ""
}

// Message returns the human-readable message of a status error, or
// err.Error() for other errors.
func Message(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}
