package chunkserver

import (
	"context"
	"testing"

	"github.com/catena-io/catena/api"
)

// BenchmarkWrite4KiB: synchronous 4 KiB writes through a 3-node chain, one
// at a time; each costs about one fsync per replica, in parallel.
func BenchmarkWrite4KiB(b *testing.B) {
	benchWrite(b, 4<<10, 1)
}

// BenchmarkWrite4KiBParallel: 16 concurrent writers, showing group commit.
func BenchmarkWrite4KiBParallel(b *testing.B) {
	benchWrite(b, 4<<10, 16)
}

// BenchmarkWrite1MiBSequential: 1 MiB sequential writes through a 3-node chain.
func BenchmarkWrite1MiBSequential(b *testing.B) {
	benchWrite(b, 1<<20, 1)
}

func benchWrite(b *testing.B, size, writers int) {
	c := newTestCluster(b)
	data := pattern(9, size)
	slots := c.size / int64(size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	var next uint64
	ch := make(chan uint64)
	done := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for i := range ch {
				_, err := c.clients[0].Write(context.Background(), &api.WriteRequest{
					Handle: c.handle, Epoch: c.epoch.Load(), Kind: api.UpdateKind_WRITE,
					Offset: int64(i%uint64(slots)) * int64(size), Data: data, ClientId: 1, RequestId: i + 1,
				})
				if err != nil {
					done <- err
					for range ch {
					}
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < b.N; i++ {
		ch <- next
		next++
	}
	close(ch)
	for w := 0; w < writers; w++ {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
