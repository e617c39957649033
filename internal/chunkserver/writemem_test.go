package chunkserver

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
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

// TestChainMemory: the chain updates a server holds for its successors
// are bounded, and the bound never stops the chains. Three chains with
// each server once head, once middle and once tail (so every server is
// full of updates waiting for the others' acknowledgements), a chain
// memory of 64 KiB, and 8 writers per chain of 32 KiB writes: updates are
// dropped and sent again, every write completes, the three replicas of
// each chunk end equal to what was written, the peak stays within the
// bound, and nothing stays charged once the chains are idle.
func TestChainMemory(t *testing.T) {
	c := newTestCluster(t)
	const (
		limit   = 64 << 10
		size    = 32 << 10
		writers = 8
		each    = 8
	)
	chains := map[uint64][]int{7: {0, 1, 2}, 8: {1, 2, 0}, 9: {2, 0, 1}}
	for h, members := range chains {
		if h == c.handle {
			continue
		}
		refs := c.chainRefs(members...)
		for _, i := range members {
			if _, err := c.clients[i].CreateReplica(ctxT(t), &api.CreateReplicaRequest{
				Handle: h, Epoch: 1, ChunkSize: c.size, Chain: refs}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, s := range c.servers {
		s.chainMem.limit.Store(limit)
	}

	want := map[uint64][]byte{}
	for h := range chains {
		want[h] = make([]byte, writers*each*size)
		for i := range want[h] {
			want[h][i] = byte(h) ^ byte(i*31+i/size*7)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(chains)*writers)
	for h, members := range chains {
		data := want[h]
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range each {
					off := (w*each + k) * size
					_, err := c.clients[members[0]].Write(ctxT(t), &api.WriteRequest{Handle: h, Epoch: 1, Kind: api.UpdateKind_WRITE,
						Offset: int64(off), Data: data[off : off+size], ClientId: uint64(100 + w), RequestId: uint64(k + 1)})
					if err != nil {
						errs <- fmt.Errorf("chunk %d writer %d write %d: %w", h, w, k, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	var dropped uint64
	for i, s := range c.servers {
		m := s.Metrics()
		dropped += m.RelaysDropped
		// The bound: the limit, plus the head's own client writes in
		// flight (bounded by the write memory, not by this), plus one
		// update per chain taken past the limit.
		if bound := int64(limit + writers*size + len(chains)*size); m.ChainMemoryPeak > bound {
			t.Errorf("server %d: chain memory peaked at %d bytes, bound %d", i, m.ChainMemoryPeak, bound)
		}
		waitFor(t, "chain memory released", func() bool { return s.Metrics().ChainMemory == 0 })
	}
	if dropped == 0 {
		t.Error("no update was dropped: the test did not fill the chain memory")
	}
	for h, members := range chains {
		for _, i := range members {
			r, err := c.servers[i].store.Get(chunkstore.Handle(h))
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(want[h]))
			if _, err := r.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[h]) {
				t.Errorf("chunk %d on server %d differs from what was written", h, i)
			}
		}
	}
	t.Logf("updates dropped and sent again: %d", dropped)
}
