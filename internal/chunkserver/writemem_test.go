package chunkserver

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/rpcerr"
)

// TestWriteMemory: the client write data a server holds at once is
// bounded: with the room taken by a write waiting for its chain, another
// write is refused UNAVAILABLE ("busy") after writeMemoryWait, and the
// room comes back when the waiting write ends.
func TestWriteMemory(t *testing.T) {
	defer func(d time.Duration) { writeMemoryWait = d }(writeMemoryWait)
	writeMemoryWait = 50 * time.Millisecond
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("a")); err != nil {
		t.Fatal(err)
	}
	head := c.servers[0]
	head.writeMem = semaphore.NewWeighted(6 << 10)

	// The tail is down: a 4 KiB write waits at the head for its ack.
	if err := c.servers[2].Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.clients[0].Write(ctx, &api.WriteRequest{Handle: c.handle, Epoch: 1, Kind: api.UpdateKind_WRITE,
			Data: bytes.Repeat([]byte("x"), 4<<10), ClientId: 1, RequestId: 2})
		done <- err
	}()
	h := chunkstore.Handle(c.handle)
	waitFor(t, "the write in flight", func() bool {
		r := c.servers[1].replica(h)
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.node.Status().SentLen > 0
	})
	_, err := c.write(0, 3, 8192, bytes.Repeat([]byte("y"), 4<<10))
	if rpcerr.Code(err) != api.ErrorCode_UNAVAILABLE || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("a write past the write memory: %v, want UNAVAILABLE busy", err)
	}
	if n := head.Metrics().WritesRefusedBusy; n != 1 {
		t.Fatalf("WritesRefusedBusy %d, want 1", n)
	}
	cancel()
	<-done
	waitFor(t, "the room given back", func() bool {
		if head.writeMem.TryAcquire(6 << 10) {
			head.writeMem.Release(6 << 10)
			return true
		}
		return false
	})
}
