package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// TestRebalance: two servers added to three about 70% full receive
// replicas until every server's use is within 10% of the mean, by what
// the servers themselves report; a writer overwriting the data never
// fails meanwhile, every chunk keeps three distinct members, and the
// data reads back.
func TestRebalance(t *testing.T) {
	const (
		cs       = 1 << 20
		chunks   = 24
		capacity = 36 * cs // 24 MiB of replicas each: ~70% with the store's own
	)
	c := clustertest.New(t, cluster.Config{Chunkservers: 3, RepairInterval: 50 * time.Millisecond,
		Capacity: func(int) int64 { return capacity }})
	ctx := context.Background()
	cl := clustertest.Client(t, c)
	f, err := cl.Create(ctx, "/f", client.CreateOptions{ChunkSize: cs, Replication: 3})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, chunks*cs)
	for i := range data {
		data[i] = byte(i*7 + i/4093)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex // data
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			off := int64(i*37%chunks)*cs + int64(i%200)*4096
			b := bytes.Repeat([]byte{byte('a' + i%26)}, 4096)
			if _, err := f.WriteAt(b, off); err != nil {
				writeErr = fmt.Errorf("write %d at %d: %w", i, off, err)
				return
			}
			mu.Lock()
			copy(data[off:], b)
			mu.Unlock()
		}
	})
	for range 2 {
		if _, err := c.AddChunkserver(ctx); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := grpc.NewClient(c.MasterAddr(), c.DialOption(auth.RoleMaster))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := api.NewAdminClient(conn)
	var last *api.RebalanceResponse
	clustertest.Eventually(t, 120*time.Second, func() error {
		r, err := admin.Rebalance(ctx, &api.RebalanceRequest{})
		if err != nil {
			return err
		}
		last = r
		if !r.Balanced || r.MovesInFlight != 0 || len(r.Servers) != 5 {
			return fmt.Errorf("balanced %v, %d moves under way, %d done, servers %v", r.Balanced, r.MovesInFlight, r.MovesDone, r.Servers)
		}
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if st.ChunksUnderReplicated+st.ChunksOverReplicated != 0 {
			return fmt.Errorf("%d chunks under-, %d over-replicated", st.ChunksUnderReplicated, st.ChunksOverReplicated)
		}
		// What the servers report, not only what the master counts.
		var sum float64
		for _, s := range st.Chunkservers {
			sum += float64(s.UsedBytes) / float64(s.CapacityBytes)
		}
		mean := sum / float64(len(st.Chunkservers))
		for _, s := range st.Chunkservers {
			if f := float64(s.UsedBytes) / float64(s.CapacityBytes); f < mean*0.9 || f > mean*1.1 {
				return fmt.Errorf("server %d reports %.1f%% used, mean %.1f%%", s.ID, 100*f, 100*mean)
			}
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("the writer failed during the rebalance: %v", writeErr)
	}
	t.Logf("balanced after %d moves (%d bytes): mean %.1f%%, servers %v", last.MovesDone, last.MovedBytes, 100*last.Mean, last.Servers)
	if last.MovesDone < 10 {
		t.Fatalf("balanced after %d moves; two empty servers of five should take about 40%% of %d replicas", last.MovesDone, 3*chunks)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, chs, err := cl.StatChunks(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chs {
		ids := make([]uint64, 0, len(ch.Chain))
		for _, s := range ch.Chain {
			ids = append(ids, s.ID)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 3 {
			t.Fatalf("chunk %d: chain %v", ch.Handle, ch.Chain)
		}
	}
	r, err := cl.Open(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if n, err := r.ReadAt(got, 0); n != len(got) || (err != nil && !errors.Is(err, io.EOF)) {
		t.Fatalf("read %d of %d bytes: %v", n, len(got), err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the file after the rebalance differs from what was written")
	}
	if err := c.CheckReplicas(ctx); err != nil {
		t.Fatal(err)
	}
}
