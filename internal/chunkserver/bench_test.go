package chunkserver

import (
	"context"
	"runtime"
	"testing"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
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

// BenchmarkReplicaFootprint reports the heap an active replica costs the
// chunkserver beside the store's own (its chain node, channels, logger and
// maps): replicas are built as a use after a restart activates them
// (cold.go), b.N of them. go test -bench ReplicaFootprint -benchtime 100000x.
func BenchmarkReplicaFootprint(b *testing.B) {
	m := startFakeMaster(b)
	s := startServer(b, b.TempDir(), m.addr)
	stores := make([]*chunkstore.Replica, b.N)
	for i := range stores {
		rep, err := s.store.Create(chunkstore.Meta{Handle: chunkstore.Handle(1<<40 + i), Epoch: 1, ChunkSize: 64 << 20, Chain: []uint64{s.ID(), 2, 3}})
		if err != nil {
			b.Fatal(err)
		}
		stores[i] = rep
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	reps := make([]*replica, b.N)
	for i, st := range stores {
		reps[i] = s.newReplica(st, &coldState{rejoining: true, fencedThrough: 1}, nil) // as activated after a restart
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/float64(b.N), "B/replica")
	b.ReportMetric(float64(after.NumGC-before.NumGC), "GCs")
	runtime.KeepAlive(reps)
}
