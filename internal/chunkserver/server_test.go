package chunkserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
)

func TestWriteThroughHeadReadFromTail(t *testing.T) {
	c := newTestCluster(t)
	model := make([]byte, c.size)
	writes := []struct {
		off int64
		n   int
	}{{0, 4096}, {100, 10}, {chunkstore.BlockSize - 3, 7}, {c.size - 4096, 4096}, {1 << 20, 300000}}
	var lastSeq uint64
	for i, w := range writes {
		data := pattern(byte(i+1), w.n)
		seq, err := c.write(0, uint64(i+1), w.off, data)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if seq <= lastSeq {
			t.Fatalf("write %d: seq %d after %d", i, seq, lastSeq)
		}
		lastSeq = seq
		copy(model[w.off:], data)
	}
	// A ZERO update punches [2000, 70000).
	if _, err := c.clients[0].Write(ctxT(t), &api.WriteRequest{
		Handle: c.handle, Epoch: c.epoch.Load(), Kind: api.UpdateKind_ZERO, Offset: 2000, Length: 68000, ClientId: 1, RequestId: 100,
	}); err != nil {
		t.Fatal(err)
	}
	clear(model[2000:70000])

	got, err := c.read(2, 0, c.size)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, model) {
		t.Fatal("tail read differs from the writes")
	}
	part, err := c.read(2, 90, 50)
	if err != nil || !bytes.Equal(part, model[90:140]) {
		t.Fatalf("partial read: %v", err)
	}
	if !bytes.Equal(c.checkIdentical(0, 1, 2), model) {
		t.Fatal("store content differs from the writes")
	}
}

func TestConcurrentWritersSameChunk(t *testing.T) {
	c := newTestCluster(t)
	const writers, perWriter, size = 8, 15, 4096
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < perWriter; k++ {
				req := &api.WriteRequest{
					Handle: c.handle, Epoch: c.epoch.Load(), Kind: api.UpdateKind_WRITE,
					Offset:   int64(w*perWriter+k) * size,
					Data:     pattern(byte(w*perWriter+k), size),
					ClientId: uint64(w + 1), RequestId: uint64(k + 1),
				}
				if k%3 == 0 { // everybody also fights over the last block
					req.Offset, req.RequestId = c.size-size, uint64(1000+k)
				}
				if _, err := c.clients[0].Write(context.Background(), req); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := c.read(2, 0, c.size)
	if err != nil {
		t.Fatal(err)
	}
	for w := 0; w < writers; w++ {
		for k := 0; k < perWriter; k++ {
			if k%3 == 0 {
				continue
			}
			off := (w*perWriter + k) * size
			if !bytes.Equal(got[off:off+size], pattern(byte(w*perWriter+k), size)) {
				t.Fatalf("acked write (%d,%d) not visible at the tail", w, k)
			}
		}
	}
	if !bytes.Equal(c.checkIdentical(0, 1, 2), got) {
		t.Fatal("tail read differs from the stores")
	}
}

func TestRetriedRequestAppliedOnce(t *testing.T) {
	c := newTestCluster(t)
	a, b := pattern(1, 512), pattern(2, 512)
	seqA, err := c.write(0, 1, 0, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.write(0, 2, 0, b); err != nil {
		t.Fatal(err)
	}
	// The retry of request 1 must answer with the original seq and not
	// overwrite b.
	seqRetry, err := c.write(0, 1, 0, a)
	if err != nil {
		t.Fatal(err)
	}
	if seqRetry != seqA {
		t.Fatalf("retry answered seq %d, original %d", seqRetry, seqA)
	}
	got, err := c.read(2, 0, 512)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) {
		t.Fatal("retried request was applied twice")
	}
	c.checkIdentical(0, 1, 2)
}

func TestErrors(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	write := func(i int, mut func(*api.WriteRequest)) error {
		req := &api.WriteRequest{Handle: c.handle, Epoch: c.epoch.Load(), Offset: 0, Data: []byte("y"), ClientId: 2, RequestId: 1}
		mut(req)
		_, err := c.clients[i].Write(ctx, req)
		return err
	}
	read := func(i int, mut func(*api.ReadRequest)) error {
		req := &api.ReadRequest{Handle: c.handle, Epoch: c.epoch.Load(), Offset: 0, Length: 1}
		mut(req)
		_, err := c.clients[i].Read(ctx, req)
		return err
	}
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Epoch = 2 }), api.ErrorCode_STALE_EPOCH)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Epoch = 0 }), api.ErrorCode_STALE_EPOCH)
	wantCode(t, write(1, func(r *api.WriteRequest) {}), api.ErrorCode_NOT_HEAD)
	wantCode(t, write(2, func(r *api.WriteRequest) {}), api.ErrorCode_NOT_HEAD)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Handle = 99 }), api.ErrorCode_NOT_FOUND)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Offset = c.size }), api.ErrorCode_INVALID)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Offset = -1 }), api.ErrorCode_INVALID)
	wantCode(t, write(0, func(r *api.WriteRequest) { r.Kind, r.Data, r.Offset, r.Length = api.UpdateKind_ZERO, nil, 10, c.size }), api.ErrorCode_INVALID)

	wantCode(t, read(2, func(r *api.ReadRequest) { r.Epoch = 2 }), api.ErrorCode_STALE_EPOCH)
	wantCode(t, read(0, func(r *api.ReadRequest) {}), api.ErrorCode_NOT_TAIL)
	wantCode(t, read(1, func(r *api.ReadRequest) {}), api.ErrorCode_NOT_TAIL)
	// A chunk this server never held: no error, no_replica (create_test.go).
	if resp, err := c.clients[2].Read(ctx, &api.ReadRequest{Handle: 99, Epoch: 1, Length: 1}); err != nil || !resp.GetNoReplica() {
		t.Fatalf("read of a chunk never held: %v, %v", resp, err)
	}
	wantCode(t, read(2, func(r *api.ReadRequest) { r.Offset, r.Length = c.size-1, 2 }), api.ErrorCode_INVALID)
	wantCode(t, read(2, func(r *api.ReadRequest) { r.Length = -1 }), api.ErrorCode_INVALID)

	// CreateReplica: idempotent on the same epoch, stale below it, INVALID
	// when this server is not a member.
	create := func(i int, epoch uint64, members ...int) error {
		_, err := c.clients[i].CreateReplica(ctx, &api.CreateReplicaRequest{
			Handle: c.handle, Epoch: epoch, ChunkSize: c.size, Chain: c.chainRefs(members...),
		})
		return err
	}
	if err := create(1, c.epoch.Load(), 0, 1, 2); err != nil {
		t.Fatalf("repeated CreateReplica: %v", err)
	}
	wantCode(t, create(1, 0, 0, 1, 2), api.ErrorCode_STALE_EPOCH)
	wantCode(t, create(1, c.epoch.Load(), 0, 2), api.ErrorCode_INVALID)
	got, err := c.read(2, 0, 1)
	if err != nil || string(got) != "x" {
		t.Fatalf("read after errors: %q, %v", got, err)
	}
}

func TestReconfigureDropsTail(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, []byte("before")); err != nil {
		t.Fatal(err)
	}
	// Epoch 2: chain [0, 1]; server 1 becomes the tail.
	c.createReplicas(2, 0, 1)
	if _, err := c.write(0, 2, 0, []byte("stale!")); err == nil {
		t.Fatal("write on the old epoch succeeded")
	} else {
		wantCode(t, err, api.ErrorCode_STALE_EPOCH)
	}
	c.epoch.Store(2)
	if _, err := c.write(0, 3, 0, []byte("after!")); err != nil {
		t.Fatal(err)
	}
	got, err := c.read(1, 0, 6)
	if err != nil || string(got) != "after!" {
		t.Fatalf("read from new tail: %q, %v", got, err)
	}
	c.checkIdentical(0, 1)
	if m := c.servers[1].replica(chunkstore.Handle(c.handle)).store.Meta(); m.Epoch != 2 || len(m.Chain) != 2 {
		t.Fatalf("stored meta after reconfigure: %+v", m)
	}
}

func TestRestartKeepsReplicasAndID(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, pattern(1, 8192)); err != nil {
		t.Fatal(err)
	}
	oldID := c.servers[1].ID()
	if err := c.servers[1].Close(); err != nil {
		t.Fatal(err)
	}
	// A write while the middle is down waits for it.
	done := make(chan error, 1)
	go func() {
		_, err := c.write(0, 2, 4096, pattern(2, 8192))
		done <- err
	}()
	// The update is in flight at the head and cannot be acknowledged.
	head := c.servers[0].replica(chunkstore.Handle(c.handle))
	waitFor(t, "update in flight", func() bool {
		head.mu.Lock()
		defer head.mu.Unlock()
		return head.node.Status().Applied >= 2
	})
	select {
	case err := <-done:
		t.Fatalf("write acknowledged while the middle was down: %v", err)
	default:
	}
	// Restart on a new port: the head learns it from the master's address book.
	s := startServer(t, c.dirs[1], c.master.addr)
	c.servers[1] = s
	c.clients[1] = dialServer(t, s.Addr())
	if s.ID() != oldID {
		t.Fatalf("id changed across restart: %d -> %d", oldID, s.ID())
	}
	if s.replica(chunkstore.Handle(c.handle)) == nil {
		t.Fatal("replica lost across restart")
	}
	if err := <-done; err != nil {
		t.Fatalf("write across the restart: %v", err)
	}
	if _, err := c.write(0, 3, 100000, pattern(3, 100)); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, c.size)
	copy(want, pattern(1, 8192))
	copy(want[4096:], pattern(2, 8192))
	copy(want[100000:], pattern(3, 100))
	got, err := c.read(2, 0, c.size)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("tail content wrong after restart")
	}
	c.checkIdentical(0, 1, 2)
}

func TestHeartbeatInventoryAndDelete(t *testing.T) {
	c := newTestCluster(t)
	if _, err := c.write(0, 1, 0, pattern(1, 4096)); err != nil {
		t.Fatal(err)
	}
	s := c.servers[2]
	reg := c.master.registered(s.ID())
	if reg == nil {
		waitFor(t, "registration", func() bool { return c.master.registered(s.ID()) != nil })
		reg = c.master.registered(s.ID())
	}
	if reg.GetLabels()["rack"] != "r1" || reg.GetCapacityBytes() <= 0 {
		t.Fatalf("registration: %v", reg)
	}
	waitFor(t, "inventory", func() bool {
		hb := c.master.lastHeartbeat(s.ID())
		if hb == nil || len(hb.GetReplicas()) != 1 {
			return false
		}
		r := hb.GetReplicas()[0]
		return r.GetHandle() == c.handle && r.GetEpoch() == c.epoch.Load() && r.GetAppliedSeq() >= 1
	})
	c.master.mu.Lock()
	c.master.deletes[s.ID()] = []uint64{c.handle}
	c.master.mu.Unlock()
	waitFor(t, "delete", func() bool { return s.replica(chunkstore.Handle(c.handle)) == nil })
	if _, err := s.store.Get(chunkstore.Handle(c.handle)); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("store still has the deleted replica: %v", err)
	}
	_, err := c.read(2, 0, 1)
	wantCode(t, err, api.ErrorCode_NOT_FOUND)
}

func TestMasterRedirectAndReregister(t *testing.T) {
	leader := startFakeMaster(t)
	follower := startFakeMaster(t)
	follower.redirect = leader.addr
	s := startServer(t, t.TempDir(), follower.addr)
	waitFor(t, "registration at the leader", func() bool { return leader.registered(s.ID()) != nil })
	if follower.registered(s.ID()) != nil {
		t.Fatal("registered at a follower")
	}
	// The master forgets the server and asks it to register again.
	leader.mu.Lock()
	delete(leader.servers, s.ID())
	leader.reregister[s.ID()] = true
	leader.mu.Unlock()
	waitFor(t, "re-registration", func() bool { return leader.registered(s.ID()) != nil })
}

func TestServerIDFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, serverIDFile), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), Config{Dir: dir}); !errors.Is(err, ErrBadServerID) {
		t.Fatalf("start with id 0: %v, want ErrBadServerID", err)
	}
	dir = t.TempDir()
	s := startServer(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, serverIDFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d\n", s.ID()); string(b) != want || s.ID() == 0 {
		t.Fatalf("server-id file %q, id %d", b, s.ID())
	}
}

func TestNoSpace(t *testing.T) {
	var full atomic.Bool
	fs := &chunkstore.ErrorFS{FS: chunkstore.OSFS, Inject: func(op chunkstore.Op, path string, off int64) error {
		// The chunk engine's log segments: the disk is full for data.
		if full.Load() && (op == chunkstore.OpAllocate || op == chunkstore.OpWrite) && strings.HasSuffix(path, ".seg") {
			return syscall.ENOSPC
		}
		return nil
	}}
	c := newTestClusterFS(t, fs)
	if _, err := c.write(0, 1, 0, []byte("fits")); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	_, err := c.write(0, 2, 8192, pattern(1, 8192))
	wantCode(t, err, api.ErrorCode_NO_SPACE)
	// The replica stays failed: later writes are refused at once.
	_, err = c.write(0, 3, 0, []byte("more"))
	wantCode(t, err, api.ErrorCode_NO_SPACE)
	got, err := c.read(2, 0, 4)
	if err != nil || string(got) != "fits" {
		t.Fatalf("tail read: %q, %v", got, err)
	}
}

// Writes without a request id are never deduplicated, and concurrent ones
// each wait for their own update.
func TestWritesWithoutRequestID(t *testing.T) {
	c := newTestCluster(t)
	const n = 12
	var wg sync.WaitGroup
	seqs := make([]uint64, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.clients[0].Write(ctxT(t), &api.WriteRequest{
				Handle: c.handle, Epoch: c.epoch.Load(), Kind: api.UpdateKind_WRITE,
				Offset: int64(i) * 100, Data: pattern(byte(i), 100),
			})
			seqs[i], errs[i] = resp.GetSeq(), err
		}()
	}
	wg.Wait()
	seen := make(map[uint64]bool)
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[seqs[i]] {
			t.Fatalf("two anonymous writes answered with seq %d", seqs[i])
		}
		seen[seqs[i]] = true
	}
	// The same anonymous write twice is applied twice (two sequence numbers).
	for i := 0; i < 2; i++ {
		resp, err := c.clients[0].Write(ctxT(t), &api.WriteRequest{Handle: c.handle, Epoch: c.epoch.Load(), Data: []byte("z")})
		if err != nil || seen[resp.GetSeq()] {
			t.Fatalf("anonymous write: seq %d, %v", resp.GetSeq(), err)
		}
		seen[resp.GetSeq()] = true
	}
	got, err := c.read(2, 0, n*100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		want := pattern(byte(i), 100)
		if i == 0 {
			want[0] = 'z'
		}
		if !bytes.Equal(got[i*100:(i+1)*100], want) {
			t.Fatalf("write %d not visible", i)
		}
	}
	c.checkIdentical(0, 1, 2)
}

func TestSingleMemberChain(t *testing.T) {
	m := startFakeMaster(t)
	s := startServer(t, t.TempDir(), m.addr)
	waitFor(t, "lease", s.leaseValid) // a write is refused until the first heartbeat grants one
	cl := dialServer(t, s.Addr())
	if _, err := cl.CreateReplica(ctxT(t), &api.CreateReplicaRequest{
		Handle: 1, Epoch: 3, ChunkSize: 1 << 20, Chain: []*api.ServerRef{{Id: s.ID(), Addr: s.Addr()}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Write(ctxT(t), &api.WriteRequest{Handle: 1, Epoch: 3, Offset: 10, Data: []byte("solo"), ClientId: 1, RequestId: 1}); err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Read(ctxT(t), &api.ReadRequest{Handle: 1, Epoch: 3, Offset: 8, Length: 8})
	if err != nil || !bytes.Equal(resp.GetData(), []byte("\x00\x00solo\x00\x00")) {
		t.Fatalf("read: %q, %v", resp.GetData(), err)
	}
}

// TestIdleReplicasRunNoSyncer: a replica's syncer runs only while there is
// something to sync (a server may hold a million replicas, and a goroutine
// each would not fit), and starts again with the next write; the tick
// loop, likewise, ticks only nodes that are not idle.
func TestIdleReplicasRunNoSyncer(t *testing.T) {
	m := startFakeMaster(t)
	s := startServer(t, t.TempDir(), m.addr)
	waitFor(t, "lease", s.leaseValid)
	cl := dialServer(t, s.Addr())
	const n = 50
	for h := uint64(1); h <= n; h++ {
		if _, err := cl.CreateReplica(ctxT(t), &api.CreateReplicaRequest{
			Handle: h, Epoch: 1, ChunkSize: 1 << 20, Chain: []*api.ServerRef{{Id: s.ID(), Addr: s.Addr()}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	syncing := func() int {
		k := 0
		for h := uint64(1); h <= n; h++ {
			r := s.replica(chunkstore.Handle(h))
			r.mu.Lock()
			if r.syncing {
				k++
			}
			r.mu.Unlock()
		}
		return k
	}
	if k := syncing(); k != 0 {
		t.Fatalf("%d syncers running on replicas never written", k)
	}
	for round := uint64(1); round <= 2; round++ {
		for h := uint64(1); h <= n; h++ {
			if _, err := cl.Write(ctxT(t), &api.WriteRequest{Handle: h, Epoch: 1, Offset: 0, Data: []byte("x"), ClientId: 1, RequestId: round*1000 + h}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "every syncer to return", func() bool { return syncing() == 0 })
		// Committed and quiet: the tick loop has no node left to tick.
		waitFor(t, "no busy node", func() bool {
			s.busyMu.Lock()
			defer s.busyMu.Unlock()
			return len(s.busyReps) == 0
		})
	}
}

// TestIncrementalReports: the first heartbeat reports every replica, the
// next ones only what changed (a write, a deletion) plus a window of
// others; a master that asks for a full report gets one at once.
func TestIncrementalReports(t *testing.T) {
	m := startFakeMaster(t)
	s := startServer(t, t.TempDir(), m.addr)
	s.inv.setWindow(0)
	waitFor(t, "lease", s.leaseValid)
	cl := dialServer(t, s.Addr())
	for h := uint64(1); h <= 3; h++ {
		if _, err := cl.CreateReplica(ctxT(t), &api.CreateReplicaRequest{
			Handle: h, Epoch: 1, ChunkSize: 1 << 20, Chain: []*api.ServerRef{{Id: s.ID(), Addr: s.Addr()}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	id := s.ID()
	history := func() []*api.HeartbeatRequest {
		m.mu.Lock()
		defer m.mu.Unlock()
		return slices.Clone(m.history[id])
	}
	handles := func(req *api.HeartbeatRequest) []uint64 {
		var hs []uint64
		for _, r := range req.GetReplicas() {
			hs = append(hs, r.GetHandle())
		}
		slices.Sort(hs)
		return hs
	}
	// awaitReport returns the first heartbeat after n that satisfies ok.
	awaitReport := func(n int, what string, ok func(*api.HeartbeatRequest) bool) (*api.HeartbeatRequest, int) {
		t.Helper()
		var found *api.HeartbeatRequest
		at := 0
		waitFor(t, what, func() bool {
			h := history()
			for i := n; i < len(h); i++ {
				if ok(h[i]) {
					found, at = h[i], i
					return true
				}
			}
			return false
		})
		return found, at
	}
	if first := history()[0]; !first.GetFull() || first.GetReportGen() == 0 {
		t.Fatalf("first heartbeat: full %v, gen %d; want a full report", first.GetFull(), first.GetReportGen())
	}
	// Once the creations are reported, idle heartbeats carry nothing.
	_, at := awaitReport(0, "a report with all three", func(r *api.HeartbeatRequest) bool { return slices.Contains(handles(r), 3) })
	idle, at := awaitReport(at+1, "an idle report", func(r *api.HeartbeatRequest) bool { return len(r.GetReplicas()) == 0 })
	if idle.GetFull() || idle.GetBaseGen() == 0 || idle.GetBaseGen() >= idle.GetReportGen() {
		t.Fatalf("idle report: full %v, base %d, gen %d", idle.GetFull(), idle.GetBaseGen(), idle.GetReportGen())
	}
	// A write to 2 reports 2 alone, with its new applied seq.
	if _, err := cl.Write(ctxT(t), &api.WriteRequest{Handle: 2, Epoch: 1, Data: []byte("x"), ClientId: 1, RequestId: 1}); err != nil {
		t.Fatal(err)
	}
	got, at := awaitReport(at+1, "the write's report", func(r *api.HeartbeatRequest) bool {
		return len(r.GetReplicas()) > 0 && r.GetReplicas()[0].GetAppliedSeq() == 1
	})
	if hs := handles(got); !slices.Equal(hs, []uint64{2}) || got.GetFull() {
		t.Fatalf("after a write to 2: report of %v (full %v), want [2] alone", hs, got.GetFull())
	}
	// A deletion is reported as removed.
	m.mu.Lock()
	m.deletes[id] = []uint64{3}
	m.mu.Unlock()
	got, at = awaitReport(at+1, "the removal", func(r *api.HeartbeatRequest) bool { return len(r.GetRemoved()) > 0 })
	if !slices.Equal(got.GetRemoved(), []uint64{3}) || len(got.GetReplicas()) != 0 {
		t.Fatalf("after deleting 3: removed %v, replicas %v", got.GetRemoved(), handles(got))
	}
	// Asked for a full report, the server sends one at once.
	m.mu.Lock()
	m.askFull[id] = true
	m.mu.Unlock()
	asked, at := awaitReport(at+1, "the refused delta", func(r *api.HeartbeatRequest) bool { return !r.GetFull() })
	if f, _ := awaitReport(at+1, "the next heartbeat", func(*api.HeartbeatRequest) bool { return true }); !f.GetFull() || !slices.Equal(handles(f), []uint64{1, 2}) || f.GetReportGen() <= asked.GetReportGen() {
		t.Fatalf("the heartbeat after full_report: full %v, replicas %v", f.GetFull(), handles(f))
	}
}

// TestReporterFailedReportGoesOutAgain: what a report that got no answer
// carried is carried again, on the same base, with what changed meanwhile;
// a removal meanwhile wins over the old change, and a full report that
// failed is full again.
func TestReporterFailedReportGoesOutAgain(t *testing.T) {
	p := newReporter()
	first := p.begin()
	if !first.full || first.base != 0 {
		t.Fatalf("first report: full %v, base %d", first.full, first.base)
	}
	p.failed(first)
	if r := p.begin(); !r.full {
		t.Fatal("a failed full report was not full again")
	} else {
		p.done(r, false)
	}
	p.noteChanged(1)
	p.noteChanged(2)
	r := p.begin()
	p.noteChanged(3) // while r is under way
	p.noteRemoved(2)
	p.failed(r)
	next := p.begin()
	if next.full || next.base != r.base {
		t.Fatalf("after a failure: full %v, base %d, want a delta on base %d", next.full, next.base, r.base)
	}
	changed := slices.Sorted(maps.Keys(next.changed))
	removed := slices.Sorted(maps.Keys(next.removed))
	if !slices.Equal(changed, []chunkstore.Handle{1, 3}) || !slices.Equal(removed, []chunkstore.Handle{2}) {
		t.Fatalf("after a failure: changed %v, removed %v; want [1 3], [2]", changed, removed)
	}
	p.done(next, false)
	if r := p.begin(); r.base != next.gen || len(r.changed)+len(r.removed) != 0 {
		t.Fatalf("after an accepted report: base %d (want %d), %d changes", r.base, next.gen, len(r.changed)+len(r.removed))
	}
	p.needFull()
	if r := p.begin(); !r.full {
		t.Fatal("needFull did not make the next report full")
	}
}
