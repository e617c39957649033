package master

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/rpcerr"
)

// newClock returns the fake clock a test master runs on: time, and so
// liveness and the repair and register loops' ticks, move only when the
// test advances it.
func newClock() *clock.Fake { return clock.NewFake(time.Unix(1_700_000_000, 0)) }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startMaster(t *testing.T, dir string, clk clock.Clock) (*Master, api.MasterClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := Start(ctx, Config{
		Dir: dir, ListenAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		DeadAfter: 5 * time.Second, Logger: quietLogger(), Clock: clk,
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	cc, err := grpc.NewClient(m.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); m.Close() })
	return m, api.NewMasterClient(cc)
}

func wantCode(t *testing.T, what string, err error, code api.ErrorCode) {
	t.Helper()
	if got := rpcerr.Code(err); got != code {
		t.Errorf("%s: code %v (err %v), want %v", what, got, err, code)
	}
}

func TestNamespace(t *testing.T) {
	_, c := startMaster(t, t.TempDir(), newClock())
	ctx := context.Background()

	if _, err := c.Mkdir(ctx, &api.MkdirRequest{Path: "/a/b", Parents: true}); err != nil {
		t.Fatal(err)
	}
	cr, err := c.Create(ctx, &api.CreateRequest{Path: "/a/f", Replication: 2, ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if fi := cr.Info; fi.Type != api.FileType_FILE || fi.Mode != 0o644 || fi.Replication != 2 || fi.ChunkSize != 1<<20 || fi.Path != "/a/f" {
		t.Fatalf("create info: %v", fi)
	}
	lr, err := c.Lookup(ctx, &api.LookupRequest{Path: "/a/b"})
	if err != nil || lr.Info.Type != api.FileType_DIRECTORY || lr.Info.Mode != 0o755 {
		t.Fatalf("lookup /a/b: %v %v", lr, err)
	}
	ls, err := c.List(ctx, &api.ListRequest{Path: "/a"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ls.Entries {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"b", "f"}) {
		t.Fatalf("list /a: %v", names)
	}
	sr, err := c.SetSize(ctx, &api.SetSizeRequest{Inode: cr.Info.Inode, Size: 100, Mode: api.SetSizeMode_EXTEND})
	if err != nil || sr.Info.Size != 100 {
		t.Fatalf("setsize: %v %v", sr, err)
	}
	if _, err := c.Rename(ctx, &api.RenameRequest{Src: "/a/f", Dst: "/a/b/g"}); err != nil {
		t.Fatal(err)
	}
	gc, err := c.GetChunks(ctx, &api.GetChunksRequest{Inode: cr.Info.Inode})
	if err != nil || gc.Info.Path != "/a/b/g" || gc.Info.Size != 100 || len(gc.Chunks) != 0 {
		t.Fatalf("getchunks after rename: %v %v", gc, err)
	}

	_, err = c.Mkdir(ctx, &api.MkdirRequest{Path: "/a"})
	wantCode(t, "mkdir existing", err, api.ErrorCode_EXISTS)
	_, err = c.Create(ctx, &api.CreateRequest{Path: "/a/b/g"})
	wantCode(t, "create existing", err, api.ErrorCode_EXISTS)
	_, err = c.Lookup(ctx, &api.LookupRequest{Path: "/nope"})
	wantCode(t, "lookup missing", err, api.ErrorCode_NOT_FOUND)
	_, err = c.Create(ctx, &api.CreateRequest{Path: "/a/b/g/x"})
	wantCode(t, "create under file", err, api.ErrorCode_NOT_DIR)
	_, err = c.Create(ctx, &api.CreateRequest{Path: "/a/b"})
	wantCode(t, "create on dir", err, api.ErrorCode_IS_DIR)
	_, err = c.SetSize(ctx, &api.SetSizeRequest{Inode: lr.Info.Inode, Size: 1, Mode: api.SetSizeMode_EXACT})
	wantCode(t, "setsize dir", err, api.ErrorCode_IS_DIR)
	_, err = c.Remove(ctx, &api.RemoveRequest{Path: "/a"})
	wantCode(t, "remove non-empty", err, api.ErrorCode_NOT_EMPTY)
	_, err = c.Rename(ctx, &api.RenameRequest{Src: "/a", Dst: "/a/b/a"})
	wantCode(t, "rename into subtree", err, api.ErrorCode_INVALID)
	for _, p := range []string{"", "rel", "/a/", "/a/../b", "/a\x00"} {
		_, err = c.Mkdir(ctx, &api.MkdirRequest{Path: p})
		wantCode(t, "mkdir "+p, err, api.ErrorCode_INVALID)
	}
	_, err = c.Create(ctx, &api.CreateRequest{Path: "/x", ChunkSize: 12345})
	wantCode(t, "bad chunk size", err, api.ErrorCode_INVALID)
	if err != nil && !strings.Contains(rpcerr.Message(err), "chunk size") {
		t.Errorf("unclear message: %q", rpcerr.Message(err))
	}
	_, err = c.Create(ctx, &api.CreateRequest{Path: "/x", Replication: 1000})
	wantCode(t, "bad replication", err, api.ErrorCode_INVALID)
	_, err = c.SetSize(ctx, &api.SetSizeRequest{Inode: cr.Info.Inode, Size: 1})
	wantCode(t, "setsize without mode", err, api.ErrorCode_INVALID)
	_, err = c.SetSize(ctx, &api.SetSizeRequest{Inode: cr.Info.Inode, Size: -1, Mode: api.SetSizeMode_EXACT})
	wantCode(t, "negative size", err, api.ErrorCode_INVALID)

	if _, err := c.Remove(ctx, &api.RemoveRequest{Path: "/a", Recursive: true}); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx, &api.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 0 || st.Directories != 0 || len(st.Masters) != 1 || !st.Masters[0].Leader || st.Masters[0].Id != "m1" {
		t.Fatalf("status: %v", st)
	}
}

func TestRestartKeepsNamespace(t *testing.T) {
	dir := t.TempDir()
	m, c := startMaster(t, dir, newClock())
	ctx := context.Background()
	if _, err := c.Mkdir(ctx, &api.MkdirRequest{Path: "/keep/me", Parents: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, &api.RegisterRequest{ServerId: 7, Addr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	// A checkpoint, then more log: the restart goes through Restore and
	// replay of the entries after it.
	if err := m.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, &api.CreateRequest{Path: "/keep/f"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	m2, c2 := startMaster(t, dir, newClock())
	for _, p := range []string{"/keep/me", "/keep/f"} {
		if _, err := c2.Lookup(ctx, &api.LookupRequest{Path: p}); err != nil {
			t.Fatalf("after restart, lookup %s: %v", p, err)
		}
	}
	hb, err := c2.Heartbeat(ctx, &api.HeartbeatRequest{ServerId: 7, Addr: "127.0.0.1:1"})
	if err != nil || hb.Reregister || len(hb.Servers) != 1 {
		t.Fatalf("registry lost on restart: %v %v", hb, err)
	}
	if m2.Addr() == "" || !m2.IsLeader() {
		t.Fatal("restarted master does not lead")
	}
}

// fakeChunkserver implements only CreateReplica, recording calls.
type fakeChunkserver struct {
	api.UnimplementedChunkserverServer
	addr string

	mu    sync.Mutex
	calls []*api.CreateReplicaRequest
	fail  bool
}

func (f *fakeChunkserver) CreateReplica(_ context.Context, req *api.CreateReplicaRequest) (*api.CreateReplicaResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, req)
	if f.fail {
		return nil, rpcerr.New(api.ErrorCode_NO_SPACE, "disk full")
	}
	return &api.CreateReplicaResponse{}, nil
}

func (f *fakeChunkserver) setFail(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = v
}

func (f *fakeChunkserver) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func startFakeChunkserver(t *testing.T) *fakeChunkserver {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeChunkserver{addr: lis.Addr().String()}
	s := grpc.NewServer()
	api.RegisterChunkserverServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return f
}

// cluster registers n fake chunkservers with ids 1..n, the given zones and
// free space 1000*id (so higher ids are preferred).
func registerFakes(t *testing.T, c api.MasterClient, zones ...string) map[uint64]*fakeChunkserver {
	t.Helper()
	fakes := map[uint64]*fakeChunkserver{}
	for i, z := range zones {
		id := uint64(i + 1)
		f := startFakeChunkserver(t)
		fakes[id] = f
		var labels map[string]string
		if z != "" {
			labels = map[string]string{"zone": z}
		}
		if _, err := c.Register(context.Background(), &api.RegisterRequest{
			ServerId: id, Addr: f.addr, Labels: labels, CapacityBytes: 1 << 40, FreeBytes: int64(1000 * id),
		}); err != nil {
			t.Fatal(err)
		}
	}
	return fakes
}

func TestAllocateChunk(t *testing.T) {
	_, c := startMaster(t, t.TempDir(), newClock())
	ctx := context.Background()
	// Server 4 and 3 share zone b; 2 is in a, 1 in c. Most free: 4, 3, 2, 1.
	fakes := registerFakes(t, c, "c", "a", "b", "b")
	cr, err := c.Create(ctx, &api.CreateRequest{Path: "/f", ChunkSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ino := cr.Info.Inode
	ar, err := c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: ino, Index: 3})
	if err != nil {
		t.Fatal(err)
	}
	ch := ar.Chunk
	var ids []uint64
	for _, s := range ch.Chain {
		ids = append(ids, s.Id)
		if s.Addr != fakes[s.Id].addr {
			t.Errorf("server %d addr %q, want %q", s.Id, s.Addr, fakes[s.Id].addr)
		}
	}
	if want := []uint64{4, 2, 1}; !slices.Equal(ids, want) {
		t.Fatalf("chain %v, want %v (distinct zones, most free first)", ids, want)
	}
	if ch.Index != 3 || ch.Epoch != 1 || ch.Handle == 0 || ch.ChunkSize != 1<<20 {
		t.Fatalf("chunk %v", ch)
	}
	// The answer comes right after the Raft commit: the replicas are
	// created by the first write, which carries the chunk size and chain.
	for id, f := range fakes {
		if f.callCount() != 0 {
			t.Fatalf("server %d got %d CreateReplica calls", id, f.callCount())
		}
	}

	// Idempotent: same chunk.
	again, err := c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: ino, Index: 3})
	if err != nil || again.Chunk.Handle != ch.Handle || again.Chunk.Epoch != 1 {
		t.Fatalf("second allocate: %v %v", again, err)
	}
	lr, err := c.Lookup(ctx, &api.LookupRequest{Path: "/f", WithChunks: true})
	if err != nil || len(lr.Chunks) != 1 || lr.Chunks[0].Handle != ch.Handle || lr.Chunks[0].ChunkSize != 1<<20 {
		t.Fatalf("lookup with chunks: %v %v", lr, err)
	}

	// A member that would fail CreateReplica changes nothing: no call.
	fakes[2].setFail(true)
	ok, err := c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: ino, Index: 0})
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	fakes[2].setFail(false)
	if fakes[2].callCount() != 0 || fakes[4].callCount() != 0 {
		t.Fatalf("CreateReplica sent: %d, %d calls", fakes[2].callCount(), fakes[4].callCount())
	}
	gc, err := c.GetChunks(ctx, &api.GetChunksRequest{Inode: ino})
	if err != nil || len(gc.Chunks) != 2 || gc.Chunks[0].Handle != ok.Chunk.Handle || gc.Chunks[1].Index != 3 {
		t.Fatalf("getchunks: %v %v", gc, err)
	}
	_, err = c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: 999, Index: 0})
	wantCode(t, "allocate on missing inode", err, api.ErrorCode_NOT_FOUND)
	_, err = c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: ino, Index: -1})
	wantCode(t, "negative index", err, api.ErrorCode_INVALID)

	st, err := c.Status(ctx, &api.StatusRequest{})
	if err != nil || st.Chunks.Total != 2 || st.Chunks.UnderReplicated != 0 || len(st.Chunkservers) != 4 {
		t.Fatalf("status: %v %v", st, err)
	}
}

func TestNoChunkservers(t *testing.T) {
	clk := newClock()
	_, c := startMaster(t, t.TempDir(), clk)
	ctx := context.Background()
	registerFakes(t, c, "")
	cr, err := c.Create(ctx, &api.CreateRequest{Path: "/f"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: cr.Info.Inode, Index: 0})
	wantCode(t, "allocate", err, api.ErrorCode_NO_CHUNKSERVERS)
	if !strings.Contains(rpcerr.Message(err), "need 3 chunkservers, 1 alive") {
		t.Fatalf("message %q", rpcerr.Message(err))
	}
	one, err := c.Create(ctx, &api.CreateRequest{Path: "/one", Replication: 1})
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(6 * time.Second) // past DeadAfter: the server is dead
	_, err = c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: one.Info.Inode, Index: 0})
	wantCode(t, "allocate with a dead server", err, api.ErrorCode_NO_CHUNKSERVERS)
	if _, err := c.Heartbeat(ctx, &api.HeartbeatRequest{ServerId: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: one.Info.Inode, Index: 0}); err != nil {
		t.Fatalf("allocate after heartbeat: %v", err)
	}
	st, err := c.Status(ctx, &api.StatusRequest{})
	if err != nil || len(st.Chunkservers) != 1 || !st.Chunkservers[0].Alive {
		t.Fatalf("status: %v %v", st, err)
	}
	clk.Advance(6 * time.Second)
	st, err = c.Status(ctx, &api.StatusRequest{})
	if err != nil || st.Chunkservers[0].Alive || st.Chunks.UnderReplicated != 1 {
		t.Fatalf("status after death: %v %v", st, err)
	}
}

func TestHeartbeatGC(t *testing.T) {
	clk := newClock()
	_, c := startMaster(t, t.TempDir(), clk)
	ctx := context.Background()
	registerFakes(t, c, "")
	cr, err := c.Create(ctx, &api.CreateRequest{Path: "/f", Replication: 1})
	if err != nil {
		t.Fatal(err)
	}
	var handles []uint64
	for i := range int64(2) {
		ar, err := c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: cr.Info.Inode, Index: i})
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, ar.Chunk.Handle)
	}
	// Truncate away chunk 1: its handle leaves the chunk map.
	if _, err := c.SetSize(ctx, &api.SetSizeRequest{Inode: cr.Info.Inode, Size: 10, Mode: api.SetSizeMode_EXACT}); err != nil {
		t.Fatal(err)
	}
	future := handles[1] + 100 // not allocated yet: must not be collected
	beat := func() *api.HeartbeatResponse {
		t.Helper()
		hb, err := c.Heartbeat(ctx, &api.HeartbeatRequest{ServerId: 1, UsedBytes: 5, Replicas: []*api.ReplicaInfo{
			{Handle: handles[0], Epoch: 1}, {Handle: handles[1], Epoch: 1}, {Handle: future, Epoch: 1},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return hb
	}
	// A new leader deletes nothing while it learns locations: not before
	// lease+drift (DeadAfter here) after taking office.
	if hb := beat(); len(hb.DeleteHandles) != 0 {
		t.Fatalf("deleted while learning locations: %v", hb.DeleteHandles)
	}
	clk.Advance(6 * time.Second)
	hb := beat()
	if !slices.Equal(hb.DeleteHandles, []uint64{handles[1]}) || hb.Reregister || len(hb.Servers) != 1 {
		t.Fatalf("heartbeat: %v", hb)
	}
	st, err := c.Status(ctx, &api.StatusRequest{})
	if err != nil || st.Chunkservers[0].Replicas != 3 || st.Chunkservers[0].UsedBytes != 5 {
		t.Fatalf("status: %v %v", st, err)
	}
	hb, err = c.Heartbeat(ctx, &api.HeartbeatRequest{ServerId: 42, Addr: "127.0.0.1:9"})
	if err != nil || !hb.Reregister {
		t.Fatalf("unknown server: %v %v", hb, err)
	}
	_, err = c.Register(ctx, &api.RegisterRequest{ServerId: 0, Addr: "x"})
	wantCode(t, "register id 0", err, api.ErrorCode_INVALID)
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Start(ctx, Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("no Dir: %v", err)
	}
	if _, err := Start(ctx, Config{Dir: t.TempDir(), Peers: "m2=127.0.0.1:1"}); !errors.Is(err, ErrConfig) {
		t.Errorf("self not in peers: %v", err)
	}
	if _, err := Start(ctx, Config{Dir: t.TempDir(), Peers: "m1=nocolon"}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad peers: %v", err)
	}
	if got, err := defaultRaftAddr("127.0.0.1:7070"); err != nil || got != "127.0.0.1:7071" {
		t.Errorf("defaultRaftAddr: %q %v", got, err)
	}
}

func TestNotLeaderAnswer(t *testing.T) {
	m, c := startMaster(t, t.TempDir(), newClock())
	// Simulate the window after an election before the barrier passed.
	m.ready.Store(false)
	_, err := c.Lookup(context.Background(), &api.LookupRequest{Path: "/"})
	wantCode(t, "lookup while not ready", err, api.ErrorCode_NOT_LEADER)
	if got := rpcerr.LeaderAddr(err); got != m.Addr() {
		t.Fatalf("leader addr %q, want %q", got, m.Addr())
	}
	m.ready.Store(true)
	if _, err := c.Lookup(context.Background(), &api.LookupRequest{Path: "/"}); err != nil {
		t.Fatal(err)
	}
}

// A master that just took office has not heard the chunkservers yet: placing
// a chunk then is a retryable wait (UNAVAILABLE), not NO_CHUNKSERVERS.
func TestAllocateWhileLearningLiveness(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	m, c := startMaster(t, dir, clk)
	ctx := context.Background()
	registerFakes(t, c, "a", "b", "c")
	cr, err := c.Create(ctx, &api.CreateRequest{Path: "/f"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	_, c = startMaster(t, dir, clk) // the registry survives, liveness does not
	_, err = c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: cr.Info.Inode, Index: 0})
	wantCode(t, "allocate before any heartbeat", err, api.ErrorCode_UNAVAILABLE)
	clk.Advance(6 * time.Second) // past DeadAfter since taking office: they are dead
	_, err = c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: cr.Info.Inode, Index: 0})
	wantCode(t, "allocate after the learning window", err, api.ErrorCode_NO_CHUNKSERVERS)
}

// TestRegisterNames: a chunkserver's name is shown by Status; another
// live server's name is refused, a dead one's taken over (a disk
// replaced: the server starts anew under its old name), and a bad name
// is refused.
func TestRegisterNames(t *testing.T) {
	clk := newClock()
	_, c := startMaster(t, t.TempDir(), clk)
	ctx := context.Background()
	if _, err := c.Register(ctx, &api.RegisterRequest{ServerId: 1, Addr: "127.0.0.1:1", Name: "db7-disk1"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Register(ctx, &api.RegisterRequest{ServerId: 2, Addr: "127.0.0.1:2", Name: "db7-disk1"})
	wantCode(t, "a live server's name", err, api.ErrorCode_INVALID)
	_, err = c.Register(ctx, &api.RegisterRequest{ServerId: 3, Addr: "127.0.0.1:3", Name: "bad name"})
	wantCode(t, "a bad name", err, api.ErrorCode_INVALID)
	clk.Advance(6 * time.Second) // past DeadAfter: server 1 is dead
	if _, err := c.Register(ctx, &api.RegisterRequest{ServerId: 2, Addr: "127.0.0.1:2", Name: "db7-disk1"}); err != nil {
		t.Fatalf("taking a dead server's name: %v", err)
	}
	st, err := c.Status(ctx, &api.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[uint64]string{}
	for _, s := range st.Chunkservers {
		names[s.Id] = s.Name
	}
	if len(names) != 2 || names[1] != "" || names[2] != "db7-disk1" {
		t.Fatalf("names after the takeover: %v", names)
	}
}
