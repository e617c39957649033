package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/rpcerr"
)

// TestSetReplication: setrep 3 -> 5 -> 2 on a file of four chunks while a
// writer keeps overwriting it: every chunk's chain grows to five members
// and shrinks to two, the writer never fails, the servers taken out of a
// chain delete their replica, and the file reads what was last written
// (the cleanup compares every chain's replicas).
func TestSetReplication(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 5, RepairInterval: 50 * time.Millisecond})
	ctx := context.Background()
	cl := clustertest.Client(t, c)
	const cs = 1 << 20
	f, err := cl.Create(ctx, "/f", client.CreateOptions{ChunkSize: cs, Replication: 3})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 4*cs/16)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}

	// A writer overwrites one block of each chunk in turn, throughout.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var writeErr error
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			off := int64(i%4)*cs + int64(i%16)*4096
			b := bytes.Repeat([]byte{byte('A' + i%26)}, 4096)
			if _, err := f.WriteAt(b, off); err != nil {
				mu.Lock()
				writeErr = fmt.Errorf("write %d at %d: %w", i, off, err)
				mu.Unlock()
				return
			}
			mu.Lock()
			copy(data[off:], b)
			mu.Unlock()
		}
	})

	chainLens := func(want int) func() error {
		return func() error {
			fi, chunks, err := cl.StatChunks(ctx, "/f")
			if err != nil {
				return err
			}
			if fi.Replication != want {
				return fmt.Errorf("file replication %d", fi.Replication)
			}
			if len(chunks) != 4 {
				return fmt.Errorf("%d chunks", len(chunks))
			}
			for _, ch := range chunks {
				if len(ch.Chain) != want {
					return fmt.Errorf("chunk %d: chain of %d, want %d", ch.Handle, len(ch.Chain), want)
				}
			}
			return nil
		}
	}
	for _, n := range []int{5, 2} {
		fi, err := cl.SetReplication(ctx, "/f", n)
		if err != nil {
			t.Fatalf("setrep %d: %v", n, err)
		}
		if fi.Replication != n {
			t.Fatalf("setrep %d: replication %d", n, fi.Replication)
		}
		clustertest.Eventually(t, 60*time.Second, chainLens(n))
	}
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("the writer failed during setrep: %v", writeErr)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// The servers out of every chain hold nothing of the file.
	_, chunks, err := cl.StatChunks(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 60*time.Second, func() error {
		for i := range c.NumChunkservers() {
			id := c.ChunkserverID(i)
			held, err := c.ReplicaHandles(i)
			if err != nil {
				return err
			}
			for _, ch := range chunks {
				member := slices.ContainsFunc(ch.Chain, func(s client.Server) bool { return s.ID == id })
				if slices.Contains(held, ch.Handle) != member {
					return fmt.Errorf("server %d: holds chunk %d %v, member of its chain %v", id, ch.Handle, slices.Contains(held, ch.Handle), member)
				}
			}
		}
		return nil
	})
	got := make([]byte, len(data))
	r, err := cl.Open(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.ReadAt(got, 0); n != len(got) || (err != nil && !errors.Is(err, io.EOF)) {
		t.Fatalf("read %d of %d bytes: %v", n, len(got), err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the file after setrep differs from what was written")
	}

	// Bad factors and directories are refused.
	if _, err := cl.SetReplication(ctx, "/f", 0); err == nil {
		t.Error("setrep 0 accepted")
	}
	if err := cl.Mkdir(ctx, "/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SetReplication(ctx, "/d", 2); err == nil {
		t.Error("setrep of a directory accepted")
	}
}

// TestDrain: draining a chunkserver while a writer keeps writing moves
// every replica it holds elsewhere, one copy before each departure: it
// ends in no chain and holding nothing, every chain keeps its three
// members, no new chunk goes to it meanwhile, the writer never fails,
// and the data reads back.
func TestDrain(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 4, RepairInterval: 50 * time.Millisecond})
	ctx := context.Background()
	cl := clustertest.Client(t, c)
	const cs = 1 << 20
	f, err := cl.Create(ctx, "/f", client.CreateOptions{ChunkSize: cs, Replication: 3})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("drain me "), 6*cs/9+1)[:6*cs]
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	// The server in the most chains drains.
	_, chunks, err := cl.StatChunks(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	count := map[uint64]int{}
	for _, ch := range chunks {
		for _, s := range ch.Chain {
			count[s.ID]++
		}
	}
	var drained uint64
	for id, n := range count {
		if drained == 0 || n > count[drained] || (n == count[drained] && id < drained) {
			drained = id
		}
	}
	conn, err := grpc.NewClient(c.MasterAddr(), c.DialOption(auth.RoleMaster))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := api.NewAdminClient(conn).DrainChunkserver(ctx, &api.DrainChunkserverRequest{Id: drained}); err != nil {
		t.Fatalf("drain %d: %v", drained, err)
	}

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
			off := int64(i%8) * cs // chunks 6 and 7 are new: placed off the draining server
			b := bytes.Repeat([]byte{byte('a' + i%26)}, 4096)
			if _, err := f.WriteAt(b, off); err != nil {
				writeErr = fmt.Errorf("write %d at %d: %w", i, off, err)
				return
			}
			if int(off) < len(data) {
				copy(data[off:], b)
			} else {
				data = append(data, make([]byte, int(off)+len(b)-len(data))...)
				copy(data[off:], b)
			}
		}
	})
	clustertest.Eventually(t, 90*time.Second, func() error {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st.Chunkservers {
			if s.ID == drained && (!s.Draining || s.Chains != 0) {
				return fmt.Errorf("server %d: draining %v, in %d chains", s.ID, s.Draining, s.Chains)
			}
		}
		if st.ChunksUnderReplicated+st.ChunksOverReplicated != 0 {
			return fmt.Errorf("%d chunks under-, %d over-replicated", st.ChunksUnderReplicated, st.ChunksOverReplicated)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("the writer failed during the drain: %v", writeErr)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, chunks, err = cl.StatChunks(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chunks {
		if len(ch.Chain) != 3 || slices.ContainsFunc(ch.Chain, func(s client.Server) bool { return s.ID == drained }) {
			t.Fatalf("chunk %d: chain %v after draining %d", ch.Handle, ch.Chain, drained)
		}
	}
	clustertest.Eventually(t, 60*time.Second, func() error {
		held, err := c.ReplicaHandles(c.ChunkserverIndex(drained))
		if err != nil {
			return err
		}
		if len(held) != 0 {
			return fmt.Errorf("the drained server still holds %v", held)
		}
		return nil
	})
	r, err := cl.Open(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if n, err := r.ReadAt(got, 0); n != len(got) || (err != nil && !errors.Is(err, io.EOF)) {
		t.Fatalf("read %d of %d bytes: %v", n, len(got), err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the file after the drain differs from what was written")
	}

	// Then it is removed: refused while it runs, taken once stopped,
	// out of no chain.
	admin := api.NewAdminClient(conn)
	if _, err := admin.RemoveChunkserver(ctx, &api.RemoveChunkserverRequest{Id: drained}); rpcerr.Code(err) != api.ErrorCode_INVALID || !strings.Contains(rpcerr.Message(err), "alive") {
		t.Fatalf("remove of a running server: %v, want INVALID naming it alive", err)
	}
	if err := c.StopChunkserver(c.ChunkserverIndex(drained)); err != nil {
		t.Fatal(err)
	}
	var resp *api.RemoveChunkserverResponse
	clustertest.Eventually(t, 30*time.Second, func() error {
		resp, err = admin.RemoveChunkserver(ctx, &api.RemoveChunkserverRequest{Id: drained})
		return err
	})
	if resp.Chains != 0 {
		t.Fatalf("the drained server was in %d chains when removed", resp.Chains)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Chunkservers) != 3 || slices.ContainsFunc(st.Chunkservers, func(s client.ChunkserverStatus) bool { return s.ID == drained }) {
		t.Fatalf("status after removing %d: %+v", drained, st.Chunkservers)
	}
}

// TestRemoveDead: a dead server that was in chains is removed without a
// drain (its disk is gone): each chain it was in is repaired back to its
// factor from the other members and nothing is lost; the server holding
// the only up-to-date copy of a chunk is refused unless forced.
func TestRemoveDead(t *testing.T) {
	c := clustertest.New(t, cluster.Config{Chunkservers: 4, RepairInterval: 50 * time.Millisecond})
	ctx := context.Background()
	cl := clustertest.Client(t, c)
	const cs = 1 << 20
	f, err := cl.Create(ctx, "/f", client.CreateOptions{ChunkSize: cs, Replication: 3})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("remove me "), 4*cs/10+1)[:4*cs]
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	one, err := cl.Create(ctx, "/one", client.CreateOptions{ChunkSize: cs, Replication: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.WriteAt([]byte("only copy"), 0); err != nil {
		t.Fatal(err)
	}
	if err := one.Close(); err != nil {
		t.Fatal(err)
	}
	_, oneChunks, err := cl.StatChunks(ctx, "/one")
	if err != nil {
		t.Fatal(err)
	}
	sole := oneChunks[0].Chain[0].ID
	_, chunks, err := cl.StatChunks(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	var victim uint64 // a member of /f's chains other than /one's holder
	for _, ch := range chunks {
		for _, s := range ch.Chain {
			if s.ID != sole && victim == 0 {
				victim = s.ID
			}
		}
	}
	conn, err := grpc.NewClient(c.MasterAddr(), c.DialOption(auth.RoleMaster))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := api.NewAdminClient(conn)

	// The only replica of /one: refused, forced or not, alive or dead.
	if err := c.StopChunkserver(c.ChunkserverIndex(sole)); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 30*time.Second, func() error {
		_, err := admin.RemoveChunkserver(ctx, &api.RemoveChunkserverRequest{Id: sole, Force: true})
		if rpcerr.Code(err) == api.ErrorCode_INVALID && strings.Contains(rpcerr.Message(err), "only replica") {
			return nil
		}
		return fmt.Errorf("remove of the only replica's holder: %v", err)
	})
	if err := c.RestartChunkserver(ctx, c.ChunkserverIndex(sole)); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 60*time.Second, func() error {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if st.ChunksUnderReplicated != 0 {
			return fmt.Errorf("%d chunks under-replicated", st.ChunksUnderReplicated)
		}
		return nil
	})

	if err := c.StopChunkserver(c.ChunkserverIndex(victim)); err != nil {
		t.Fatal(err)
	}
	var resp *api.RemoveChunkserverResponse
	clustertest.Eventually(t, 30*time.Second, func() error {
		resp, err = admin.RemoveChunkserver(ctx, &api.RemoveChunkserverRequest{Id: victim})
		return err
	})
	if resp.Chains == 0 {
		t.Fatalf("server %d was in no chain when removed", victim)
	}
	clustertest.Eventually(t, 90*time.Second, func() error {
		_, chunks, err := cl.StatChunks(ctx, "/f")
		if err != nil {
			return err
		}
		for _, ch := range chunks {
			if len(ch.Chain) != 3 || slices.ContainsFunc(ch.Chain, func(s client.Server) bool { return s.ID == victim }) {
				return fmt.Errorf("chunk %d: chain %v", ch.Handle, ch.Chain)
			}
		}
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if st.ChunksUnderReplicated != 0 || len(st.Chunkservers) != 3 {
			return fmt.Errorf("%d chunks under-replicated, %d chunkservers", st.ChunksUnderReplicated, len(st.Chunkservers))
		}
		return nil
	})
	r, err := cl.Open(ctx, "/f")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if n, err := r.ReadAt(got, 0); n != len(got) || (err != nil && !errors.Is(err, io.EOF)) {
		t.Fatalf("read %d of %d bytes: %v", n, len(got), err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the file after the removal differs from what was written")
	}
	if err := c.CheckReplicas(ctx); err != nil {
		t.Fatal(err)
	}
}
