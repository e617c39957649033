package bench

import (
	"context"
	"flag"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
)

var benchMoveSize = flag.Int64("catena.bench.movesize", 768<<20,
	"bytes of data (replication 3, 64 MiB chunks) BenchmarkDrain and BenchmarkRebalance move around")

// loadWriter overwrites a 128 MiB file in 1 MiB durable writes, one at a
// time, until stopped, counting the bytes acknowledged.
type loadWriter struct {
	bytes atomic.Int64
	stop  chan struct{}
	done  chan error
}

func startLoad(b *testing.B, cl *client.Client) *loadWriter {
	const size, block = 128 << 20, 1 << 20
	ctx := context.Background()
	f, err := cl.Create(ctx, "/load", client.CreateOptions{Replication: 3})
	if err != nil {
		b.Fatal(err)
	}
	w := &loadWriter{stop: make(chan struct{}), done: make(chan error, 1)}
	buf := pattern(block)
	go func() {
		defer f.Close()
		for i := int64(0); ; i++ {
			select {
			case <-w.stop:
				w.done <- nil
				return
			default:
			}
			if _, err := f.WriteAtContext(ctx, buf, i%(size/block)*block); err != nil {
				w.done <- err
				return
			}
			w.bytes.Add(block)
		}
	}()
	return w
}

// rate is the writer's MB/s over d from now.
func (w *loadWriter) rate(d time.Duration) float64 {
	n0, t0 := w.bytes.Load(), time.Now()
	time.Sleep(d) // a measuring window: there is no event to await
	return float64(w.bytes.Load()-n0) / time.Since(t0).Seconds() / 1e6
}

func (w *loadWriter) end(b *testing.B) {
	close(w.stop)
	if err := <-w.done; err != nil {
		b.Fatalf("the client's writes failed: %v", err)
	}
}

// during measures the writer's MB/s from now until cond holds (polled on
// Status), and returns it with the Status and the time taken.
func (c *procCluster) during(w *loadWriter, what string, cond func(*client.Status) error) (float64, *client.Status, time.Duration) {
	n0, t0 := w.bytes.Load(), time.Now()
	st := c.awaitWithin(what, 10*time.Minute, cond)
	el := time.Since(t0)
	return float64(w.bytes.Load()-n0) / el.Seconds() / 1e6, st, el
}

func (c *procCluster) admin(b *testing.B) api.AdminClient {
	conn, err := grpc.NewClient(c.master, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return api.NewAdminClient(conn)
}

func (c *procCluster) fill(b *testing.B, size int64) {
	ctx := context.Background()
	f, err := c.cl.Create(ctx, "/data", client.CreateOptions{Replication: 3})
	if err != nil {
		b.Fatal(err)
	}
	if err := writeSeq(ctx, f, size, DefaultBlock, 4); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDrain: 4 chunkservers (processes), -catena.bench.movesize of
// data at replication 3, a client overwriting another file in 1 MiB
// durable writes; drain the server in the most chains and report the
// drain's copy rate and the client's throughput during it against
// before.
func BenchmarkDrain(b *testing.B) {
	for range b.N {
		c := startProcCluster(b, procClusterConfig{Chunkservers: 4})
		c.fill(b, *benchMoveSize)
		w := startLoad(b, c.cl)
		before := w.rate(5 * time.Second)
		st := c.await("quiet", c.repaired)
		var drained uint64
		var most uint64
		for _, s := range st.Chunkservers {
			if s.Chains > most {
				drained, most = s.ID, s.Chains
			}
		}
		if _, err := c.admin(b).DrainChunkserver(context.Background(), &api.DrainChunkserverRequest{Id: drained}); err != nil {
			b.Fatal(err)
		}
		during, end, el := c.during(w, "the drain", func(st *client.Status) error {
			for _, s := range st.Chunkservers {
				if s.ID == drained && s.Chains != 0 {
					return fmt.Errorf("in %d chains", s.Chains)
				}
			}
			if st.ChunksUnderReplicated+st.ChunksOverReplicated+st.ChunksReReplicating != 0 {
				return fmt.Errorf("%d under-, %d over-replicated", st.ChunksUnderReplicated, st.ChunksOverReplicated)
			}
			return nil
		})
		w.end(b)
		moved := end.RepairedBytes - st.RepairedBytes
		b.Logf("drained a server in %d chains: %s copied in %v, %.0f MB/s; client %.0f MB/s before, %.0f MB/s during (%.2fx)",
			most, ByteSize(moved), el.Round(time.Millisecond), float64(moved)/el.Seconds()/1e6, before, during, during/before)
		b.ReportMetric(float64(moved)/el.Seconds()/1e6, "moved-MB/s")
		b.ReportMetric(during/before, "client-ratio")
	}
}

// BenchmarkRebalance: 3 chunkservers offering 1.6 GiB each hold
// -catena.bench.movesize at replication 3 (~70% full at the default);
// two more join, and the client above keeps writing. Reports the
// rebalance's rate (bytes moved over the time to balance) and the
// client's throughput during it against before.
func BenchmarkRebalance(b *testing.B) {
	capacity := fmt.Sprint(*benchMoveSize * 3 / 2)
	for range b.N {
		c := startProcCluster(b, procClusterConfig{Chunkservers: 3, ChunkserverArgs: []string{"--capacity", capacity}})
		c.fill(b, *benchMoveSize)
		w := startLoad(b, c.cl)
		before := w.rate(5 * time.Second)
		admin := c.admin(b)
		for range 2 {
			c.addChunkserver("--capacity", capacity)
		}
		during, _, el := c.during(w, "the rebalance", func(st *client.Status) error {
			r, err := admin.Rebalance(context.Background(), &api.RebalanceRequest{})
			if err != nil {
				return err
			}
			if len(r.Servers) != 5 || !r.Balanced || r.MovesInFlight != 0 || st.ChunksOverReplicated != 0 {
				return fmt.Errorf("balanced %v, %d servers, %d moves under way", r.Balanced, len(r.Servers), r.MovesInFlight)
			}
			return nil
		})
		w.end(b)
		r, err := admin.Rebalance(context.Background(), &api.RebalanceRequest{})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("rebalanced onto 2 new servers: %d moves, %s in %v, %.0f MB/s; client %.0f MB/s before, %.0f MB/s during (%.2fx)",
			r.MovesDone, ByteSize(r.MovedBytes), el.Round(time.Millisecond), float64(r.MovedBytes)/el.Seconds()/1e6, before, during, during/before)
		b.ReportMetric(float64(r.MovedBytes)/el.Seconds()/1e6, "moved-MB/s")
		b.ReportMetric(during/before, "client-ratio")
	}
}
