package client

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/rpcerr"
)

func TestSplitRange(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name      string
		off       int64
		n         int
		chunkSize int64
		maxIO     int
		want      []piece
	}{
		{"empty", 0, 0, 64, 16, nil},
		{"inside one piece", 3, 5, 64, 16, []piece{{0, 3, 0, 5}}},
		{"exact piece", 0, 16, 64, 16, []piece{{0, 0, 0, 16}}},
		{"split by maxIO", 0, 40, 64, 16, []piece{{0, 0, 0, 16}, {0, 16, 16, 16}, {0, 32, 32, 8}}},
		{"cross chunk boundary", 60, 8, 64, 16, []piece{{0, 60, 0, 4}, {1, 0, 4, 4}}},
		{"chunk boundary before maxIO", 56, 32, 64, 16, []piece{{0, 56, 0, 8}, {1, 0, 8, 16}, {1, 16, 24, 8}}},
		{"starts at chunk boundary", 128, 10, 64, 16, []piece{{2, 0, 0, 10}}},
		{"whole chunks", 64, 128, 64, 64, []piece{{1, 0, 0, 64}, {2, 0, 64, 64}}},
		{"large offsets", 5*64*mib - 1, 2, 64 * mib, mib, []piece{{4, 64*mib - 1, 0, 1}, {5, 0, 1, 1}}},
		{"maxIO larger than chunk", 0, 10, 4, 100, []piece{{0, 0, 0, 4}, {1, 0, 4, 4}, {2, 0, 8, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitRange(tt.off, tt.n, tt.chunkSize, tt.maxIO)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("splitRange(%d, %d, %d, %d) = %v, want %v", tt.off, tt.n, tt.chunkSize, tt.maxIO, got, tt.want)
			}
		})
	}
}

// TestSplitRangeCovers checks the invariants over many shapes: pieces tile
// the buffer in order, never cross a chunk and never exceed maxIO.
func TestSplitRangeCovers(t *testing.T) {
	for _, cs := range []int64{1, 3, 8, 64} {
		for _, maxIO := range []int{1, 5, 8, 100} {
			for off := int64(0); off < 20; off++ {
				for n := 0; n < 70; n++ {
					next := 0
					for _, p := range splitRange(off, n, cs, maxIO) {
						if p.bufOff != next || p.n <= 0 || p.n > maxIO {
							t.Fatalf("cs=%d maxIO=%d off=%d n=%d: bad piece %+v at %d", cs, maxIO, off, n, p, next)
						}
						pos := off + int64(p.bufOff)
						if p.index != pos/cs || p.chunkOff != pos%cs || p.chunkOff+int64(p.n) > cs {
							t.Fatalf("cs=%d off=%d n=%d: piece %+v misplaced", cs, off, n, p)
						}
						next += p.n
					}
					if next != n {
						t.Fatalf("cs=%d maxIO=%d off=%d n=%d: covered %d", cs, maxIO, off, n, next)
					}
				}
			}
		}
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		code    api.ErrorCode
		msg     string
		want    error
		wantFS  error
		wantMsg string
	}{
		{api.ErrorCode_NOT_FOUND, "no /a", ErrNotFound, fs.ErrNotExist, "stat /a: no such file or directory"},
		{api.ErrorCode_EXISTS, "exists", ErrExist, fs.ErrExist, "stat /a: file exists"},
		{api.ErrorCode_NOT_DIR, "x", ErrNotDir, nil, "stat /a: not a directory"},
		{api.ErrorCode_IS_DIR, "x", ErrIsDir, nil, "stat /a: is a directory"},
		{api.ErrorCode_NOT_EMPTY, "volume \"v\" has 1 snapshots", ErrNotEmpty, nil, "stat /a: directory not empty: volume \"v\" has 1 snapshots"},
		{api.ErrorCode_READ_ONLY, "/d/.snapshot/s/f is in a snapshot", ErrReadOnly, nil, "stat /a: read-only snapshot: /d/.snapshot/s/f is in a snapshot"},
		{api.ErrorCode_INVALID, "bad chunk size", ErrInvalid, fs.ErrInvalid, "stat /a: invalid argument: bad chunk size"},
		{api.ErrorCode_NAME_TOO_LONG, "name of 256 bytes, more than 255", ErrNameTooLong, ErrInvalid,
			"stat /a: file name too long: name of 256 bytes, more than 255"},
		{api.ErrorCode_NO_CHUNKSERVERS, "need 3, have 1", ErrNoChunkservers, nil, "stat /a: not enough chunkservers available: need 3, have 1"},
		{api.ErrorCode_NO_SPACE, "x", ErrNoSpace, nil, "stat /a: no space left on device"},
		{api.ErrorCode_CORRUPT, "x", ErrCorrupt, nil, "stat /a: data corrupt on every replica"},
		{api.ErrorCode_STALE_EPOCH, "x", ErrStaleEpoch, nil, "stat /a: stale chain epoch"},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			err := opError("stat", "/a", rpcerr.New(tt.code, "%s", tt.msg))
			if !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want)
			}
			if tt.wantFS != nil && !errors.Is(err, tt.wantFS) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantFS)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("message %q, want %q", err.Error(), tt.wantMsg)
			}
			// The server's detail comes as a *DetailError of the kind,
			// without the operation's context.
			var de *DetailError
			if hasDetail := tt.want == ErrInvalid || tt.want == ErrNameTooLong || tt.want == ErrNoChunkservers ||
				tt.want == ErrNotEmpty || tt.want == ErrReadOnly; errors.As(err, &de) != hasDetail {
				t.Errorf("errors.As(%v, *DetailError) = %v, want %v", err, de != nil, hasDetail)
			} else if hasDetail && (de.Kind != tt.want || de.Detail != tt.msg) {
				t.Errorf("detail error %+v, want kind %v detail %q", de, tt.want, tt.msg)
			}
		})
	}
	if err := opError("stat", "/a", nil); err != nil {
		t.Errorf("opError(nil) = %v", err)
	}
	if got := opError("status", "", ErrClosed).Error(); got != "status: file already closed" {
		t.Errorf("no path: %q", got)
	}
	plain := errors.New("boom")
	if got := opError("stat", "/a", plain); !errors.Is(got, plain) {
		t.Errorf("uncoded error lost: %v", got)
	}
}

func TestClassify(t *testing.T) {
	transport := status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`)
	deadline := status.Error(codes.DeadlineExceeded, "context deadline exceeded")
	tests := []struct {
		name    string
		err     error
		expired bool
		master  masterAction
		chunk   chunkAction
	}{
		{"not leader", rpcerr.NotLeader("m2:1"), false, masterRedirect, chunkDone},
		{"catena unavailable", rpcerr.New(api.ErrorCode_UNAVAILABLE, "lease"), false, masterNext, chunkRefresh},
		{"transport", transport, false, masterNext, chunkRefresh},
		{"attempt deadline", deadline, true, masterNext, chunkRefresh},
		{"caller deadline", deadline, false, masterDone, chunkDone},
		{"wrapped transport", fmt.Errorf("x: %w", transport), false, masterNext, chunkRefresh},
		{"stale epoch", rpcerr.New(api.ErrorCode_STALE_EPOCH, "e"), false, masterDone, chunkRefresh},
		{"not head", rpcerr.New(api.ErrorCode_NOT_HEAD, "e"), false, masterDone, chunkRefresh},
		{"not tail", rpcerr.New(api.ErrorCode_NOT_TAIL, "e"), false, masterDone, chunkRefresh},
		{"not found", rpcerr.New(api.ErrorCode_NOT_FOUND, "e"), false, masterDone, chunkRefresh},
		{"corrupt", rpcerr.New(api.ErrorCode_CORRUPT, "e"), false, masterDone, chunkCorrupt},
		{"invalid", rpcerr.New(api.ErrorCode_INVALID, "e"), false, masterDone, chunkDone},
		{"no space", rpcerr.New(api.ErrorCode_NO_SPACE, "e"), false, masterDone, chunkDone},
		{"empty chain", errEmptyChain, false, masterDone, chunkRefresh},
		{"internal", status.Error(codes.Internal, "panic"), false, masterDone, chunkDone},
		{"canceled", context.Canceled, false, masterDone, chunkDone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyMaster(tt.err, tt.expired); got != tt.master {
				t.Errorf("classifyMaster = %v, want %v", got, tt.master)
			}
			if got := classifyChunk(tt.err, tt.expired); got != tt.chunk {
				t.Errorf("classifyChunk = %v, want %v", got, tt.chunk)
			}
		})
	}
}

func TestShortCause(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7070: connect: connection refused"`), "connection refused"},
		{rpcerr.NotLeader(""), "not the leader"},
		{errors.New("plain"), "plain"},
		{nil, "timeout"},
	}
	for _, tt := range tests {
		if got := shortCause(tt.err); got != tt.want {
			t.Errorf("shortCause(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	for n := 0; n < 40; n++ {
		d := backoffDelay(n)
		if d < backoffInitial/2 || d > backoffMax {
			t.Fatalf("backoffDelay(%d) = %v out of [%v, %v]", n, d, backoffInitial/2, backoffMax)
		}
	}
	if backoffDelay(30) < backoffMax/2 {
		t.Errorf("backoff does not grow: %v", backoffDelay(30))
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Masters(); !reflect.DeepEqual(got, []string{DefaultMaster}) {
		t.Errorf("Masters() = %v", got)
	}
	if c.clientID == 0 {
		t.Error("client id is zero")
	}
	if c.cfg.OpTimeout != 30*time.Second || c.cfg.MaxIOSize != 1<<20 || c.cfg.IOConcurrency != 8 {
		t.Errorf("defaults: %+v", c.cfg)
	}
	c2, _ := New(Config{Masters: []string{"a:1", " b:2 ", "a:1"}})
	defer c2.Close()
	if got := c2.Masters(); !reflect.DeepEqual(got, []string{"a:1", "b:2"}) {
		t.Errorf("Masters() = %v", got)
	}
	if c2.clientID == c.clientID {
		t.Error("two clients share an id")
	}
	if err := c2.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := c2.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if _, err := New(Config{MaxIOSize: 1 << 30}); !errors.Is(err, ErrInvalid) {
		t.Errorf("huge MaxIOSize: %v", err)
	}
}

func TestNextMaster(t *testing.T) {
	c, _ := New(Config{Masters: []string{"a:1", "b:2", "c:3"}})
	defer c.Close()
	c.nextMaster("a:1", "")
	if g := c.leaderGuess(); g != "b:2" {
		t.Fatalf("after a fails: %s", g)
	}
	c.nextMaster("c:3", "")
	if g := c.leaderGuess(); g != "a:1" {
		t.Fatalf("wrap around: %s", g)
	}
	c.nextMaster("a:1", "d:4")
	if g := c.leaderGuess(); g != "d:4" {
		t.Fatalf("redirect: %s", g)
	}
	if got := c.Masters(); !reflect.DeepEqual(got, []string{"d:4", "a:1", "b:2", "c:3"}) {
		t.Fatalf("Masters() = %v", got)
	}
}
