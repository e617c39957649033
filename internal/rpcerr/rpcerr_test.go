package rpcerr

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/catena-io/catena/api"
)

func TestRoundTrip(t *testing.T) {
	for code := range grpcCodes {
		err := New(code, "thing %d", 7)
		if got := Code(err); got != code {
			t.Errorf("Code(New(%v)) = %v", code, got)
		}
		if got := Message(err); got != "thing 7" {
			t.Errorf("Message = %q", got)
		}
		// Survives wrapping.
		if got := Code(fmt.Errorf("ctx: %w", err)); got != code {
			t.Errorf("Code(wrapped %v) = %v", code, got)
		}
		if st, _ := status.FromError(err); st.Code() != grpcCodes[code] {
			t.Errorf("grpc code for %v = %v", code, st.Code())
		}
	}
}

func TestNotLeader(t *testing.T) {
	err := NotLeader("10.0.0.1:7070")
	if Code(err) != api.ErrorCode_NOT_LEADER || LeaderAddr(err) != "10.0.0.1:7070" {
		t.Fatalf("got code %v addr %q", Code(err), LeaderAddr(err))
	}
}

func TestForeignErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("plain"), status.Error(codes.Unavailable, "conn refused")} {
		if got := Code(err); got != api.ErrorCode_ERROR_CODE_UNSPECIFIED {
			t.Errorf("Code(%v) = %v", err, got)
		}
		if LeaderAddr(err) != "" {
			t.Errorf("LeaderAddr(%v) not empty", err)
		}
	}
}
