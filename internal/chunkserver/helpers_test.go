package chunkserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/bits"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/rpcerr"
)

// fakeMaster implements Register and Heartbeat.
type fakeMaster struct {
	api.UnimplementedMasterServer
	addr string

	mu         sync.Mutex
	redirect   string // when set, answer NOT_LEADER naming it
	servers    map[uint64]*api.RegisterRequest
	heartbeats map[uint64]*api.HeartbeatRequest
	deletes    map[uint64][]uint64 // server id -> handles to delete (once)
	reregister map[uint64]bool
	noLease    map[uint64]bool // servers denied a lease
	fenced     map[uint64][]*api.FencedReplica
	reports    []*api.ReportReplicaRequest
	history    map[uint64][]*api.HeartbeatRequest // every heartbeat, oldest first
	askFull    map[uint64]bool                    // answer the next delta with full_report
	// nextHandle is what Register answers as the next handle (the
	// servers' creation floor); 1 unless a test changes it.
	nextHandle uint64
	// noHistory: keep no heartbeat (lastHeartbeat answers nil), only
	// the counts of full reports; a scale test's own memory stays small.
	noHistory bool
	// paged: take full reports in pages (RegisterResponse.paged_reports);
	// fullCount counts the replicas of each server's last full report,
	// whether paged or not, and pages holds those of the pages so far.
	paged     bool
	fullCount map[uint64]int
	pages     map[uint64]handleSet
}

// handleSet is a set of handles as a bitmap in words of 64 handles: a
// million handles close together take a few hundred KB, where a map
// entry each took tens of MB.
type handleSet map[uint64]uint64

func (hs handleSet) add(h uint64) { hs[h/64] |= 1 << (h % 64) }
func (hs handleSet) remove(h uint64) {
	if w := hs[h/64] &^ (1 << (h % 64)); w != 0 {
		hs[h/64] = w
	} else {
		delete(hs, h/64)
	}
}

func (hs handleSet) len() int {
	n := 0
	for _, w := range hs {
		n += bits.OnesCount64(w)
	}
	return n
}

func startFakeMaster(t testing.TB) *fakeMaster {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMaster{
		addr:       lis.Addr().String(),
		servers:    make(map[uint64]*api.RegisterRequest),
		heartbeats: make(map[uint64]*api.HeartbeatRequest),
		deletes:    make(map[uint64][]uint64),
		reregister: make(map[uint64]bool),
		noLease:    make(map[uint64]bool),
		fenced:     make(map[uint64][]*api.FencedReplica),
		history:    make(map[uint64][]*api.HeartbeatRequest),
		askFull:    make(map[uint64]bool),
		fullCount:  make(map[uint64]int),
		pages:      make(map[uint64]handleSet),
		nextHandle: 1,
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsgSize)) // as the master's: full reports are large
	api.RegisterMasterServer(gs, m)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return m
}

func (m *fakeMaster) Register(ctx context.Context, req *api.RegisterRequest) (*api.RegisterResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.redirect != "" {
		return nil, rpcerr.NotLeader(m.redirect)
	}
	m.servers[req.GetServerId()] = req
	delete(m.reregister, req.GetServerId())
	return &api.RegisterResponse{NextHandle: m.nextHandle, PagedReports: m.paged, CapabilityKeys: testCapKeys()}, nil
}

func (m *fakeMaster) Heartbeat(ctx context.Context, req *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.redirect != "" {
		return nil, rpcerr.NotLeader(m.redirect)
	}
	id := req.GetServerId()
	if !m.noHistory {
		m.heartbeats[id] = req
		m.history[id] = append(m.history[id], req)
	}
	if m.askFull[id] && !req.GetFull() {
		delete(m.askFull, id)
		return &api.HeartbeatResponse{FullReport: true}, nil
	}
	if req.GetFull() {
		if req.GetPage() == 0 || m.pages[id] == nil {
			m.pages[id] = make(handleSet)
		}
		for _, r := range req.GetReplicas() {
			m.pages[id].add(r.GetHandle())
		}
		for _, h := range req.GetRemoved() {
			m.pages[id].remove(h)
		}
		if req.GetMore() {
			return &api.HeartbeatResponse{}, nil // no lease before the last page
		}
		m.fullCount[id] = m.pages[id].len()
		delete(m.pages, id)
	}
	resp := &api.HeartbeatResponse{DeleteHandles: m.deletes[id], Reregister: m.reregister[id], Fenced: m.fenced[id],
		CapabilityKeys: testCapKeys()}
	if !m.noLease[id] {
		resp.LeaseMillis = 1000
	}
	delete(m.deletes, id)
	if reg, ok := m.servers[id]; ok {
		reg.Addr = req.GetAddr()
	}
	for sid, reg := range m.servers {
		resp.Servers = append(resp.Servers, &api.ServerRef{Id: sid, Addr: reg.GetAddr()})
	}
	return resp, nil
}

func (m *fakeMaster) ReportReplica(ctx context.Context, req *api.ReportReplicaRequest) (*api.ReportReplicaResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reports = append(m.reports, req)
	return &api.ReportReplicaResponse{}, nil
}

func (m *fakeMaster) reported() []*api.ReportReplicaRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*api.ReportReplicaRequest(nil), m.reports...)
}

func (m *fakeMaster) registered(id uint64) *api.RegisterRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.servers[id]
}

func (m *fakeMaster) lastHeartbeat(id uint64) *api.HeartbeatRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heartbeats[id]
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CHUNKSERVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func startServer(t testing.TB, dir string, masters ...string) *Server {
	t.Helper()
	return startServerFS(t, nil, dir, masters...)
}

func startServerFS(t testing.TB, fs chunkstore.FS, dir string, masters ...string) *Server {
	t.Helper()
	s, err := Start(context.Background(), Config{
		FS:                fs,
		Dir:               dir,
		Masters:           masters,
		Labels:            map[string]string{"rack": "r1"},
		HeartbeatInterval: 20 * time.Millisecond,
		Logger:            testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// testCapKey is the fake master's capability key.
var testCapKey = auth.CapabilityKey{ID: 1, Secret: bytes.Repeat([]byte{7}, 32)}

func testCapKeys() []*api.CapabilityKey {
	return []*api.CapabilityKey{{Id: testCapKey.ID, Secret: testCapKey.Secret}}
}

// testCapability is what the master would grant for (handle, epoch):
// read and write for ten minutes; with spec, its chunk size and chain.
func testCapability(handle, epoch uint64, spec *api.ReplicaSpec) *api.Capability {
	body := &api.CapabilityBody{Handle: handle, Epoch: epoch, Rights: uint32(auth.RightRead | auth.RightWrite),
		ExpiresUnixMilli: time.Now().Add(10 * time.Minute).UnixMilli(), ChunkSize: spec.GetChunkSize()}
	for _, ref := range spec.GetChain() {
		body.Chain = append(body.Chain, ref.GetId())
	}
	return auth.Sign(testCapKey, body)
}

// withCapabilities gives every Read and Write without a capability the
// one the master would grant, as a client holds it.
func withCapabilities(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	switch r := req.(type) {
	case *api.WriteRequest:
		if r.Capability == nil {
			r = proto.Clone(r).(*api.WriteRequest)
			r.Capability = testCapability(r.Handle, r.Epoch, r.Create)
			req = r
		}
	case *api.ReadRequest:
		if r.Capability == nil {
			r = proto.Clone(r).(*api.ReadRequest)
			r.Capability = testCapability(r.Handle, r.Epoch, nil)
			req = r
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// dialServer dials a chunkserver as a client would (withCapabilities);
// dialRaw sends requests as they are.
func dialServer(t testing.TB, addr string) api.ChunkserverClient {
	t.Helper()
	return dial(t, addr, grpc.WithUnaryInterceptor(withCapabilities))
}

func dialRaw(t testing.TB, addr string) api.ChunkserverClient {
	t.Helper()
	return dial(t, addr)
}

func dial(t testing.TB, addr string, opts ...grpc.DialOption) api.ChunkserverClient {
	t.Helper()
	c, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return api.NewChunkserverClient(c)
}

// testCluster is a fake master and three chunkservers holding chunk handle
// in the chain [0, 1, 2].
type testCluster struct {
	t       testing.TB
	master  *fakeMaster
	dirs    []string
	servers []*Server
	clients []api.ChunkserverClient
	handle  uint64
	size    int64
	epoch   atomic.Uint64
}

const testChunkSize = 4 << 20

func newTestCluster(t testing.TB) *testCluster {
	t.Helper()
	return newTestClusterFS(t, nil)
}

// newTestClusterFS is newTestCluster with server 0 (the head) on headFS.
func newTestClusterFS(t testing.TB, headFS chunkstore.FS) *testCluster {
	t.Helper()
	c := &testCluster{t: t, master: startFakeMaster(t), handle: 7, size: testChunkSize}
	c.epoch.Store(1)
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		var fs chunkstore.FS
		if i == 0 {
			fs = headFS
		}
		s := startServerFS(t, fs, dir, c.master.addr)
		c.dirs = append(c.dirs, dir)
		c.servers = append(c.servers, s)
		c.clients = append(c.clients, dialServer(t, s.Addr()))
	}
	for _, s := range c.servers {
		waitFor(t, "lease", s.leaseValid)
	}
	c.createReplicas(c.epoch.Load(), 0, 1, 2)
	return c
}

func (c *testCluster) chainRefs(members ...int) []*api.ServerRef {
	var refs []*api.ServerRef
	for _, i := range members {
		refs = append(refs, &api.ServerRef{Id: c.servers[i].ID(), Addr: c.servers[i].Addr()})
	}
	return refs
}

func (c *testCluster) createReplicas(epoch uint64, members ...int) {
	c.t.Helper()
	refs := c.chainRefs(members...)
	for _, i := range members {
		_, err := c.clients[i].CreateReplica(ctxT(c.t), &api.CreateReplicaRequest{
			Handle: c.handle, Epoch: epoch, ChunkSize: c.size, Chain: refs,
		})
		if err != nil {
			c.t.Fatalf("CreateReplica on %d: %v", i, err)
		}
	}
}

func (c *testCluster) write(i int, reqID uint64, off int64, data []byte) (uint64, error) {
	resp, err := c.clients[i].Write(ctxT(c.t), &api.WriteRequest{
		Handle: c.handle, Epoch: c.epoch.Load(), Kind: api.UpdateKind_WRITE,
		Offset: off, Data: data, ClientId: 1, RequestId: reqID,
	})
	return resp.GetSeq(), err
}

func (c *testCluster) read(i int, off, n int64) ([]byte, error) {
	resp, err := c.clients[i].Read(ctxT(c.t), &api.ReadRequest{Handle: c.handle, Epoch: c.epoch.Load(), Offset: off, Length: n})
	return resp.GetData(), err
}

// storeBytes reads server i's whole replica through its store.
func (c *testCluster) storeBytes(i int) []byte {
	c.t.Helper()
	r, err := c.servers[i].store.Get(chunkstore.Handle(c.handle))
	if err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, c.size)
	if _, err := r.ReadAt(buf, 0); err != nil {
		c.t.Fatal(err)
	}
	return buf
}

// checkIdentical asserts the replicas of members are byte-identical and
// returns the content.
func (c *testCluster) checkIdentical(members ...int) []byte {
	c.t.Helper()
	first := c.storeBytes(members[0])
	for _, i := range members[1:] {
		if !bytes.Equal(first, c.storeBytes(i)) {
			c.t.Fatalf("replica on server %d differs from server %d", i, members[0])
		}
	}
	return first
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 10*time.Second, what, cond)
}

// waitWithin is waitFor with a deadline of d.
func waitWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantCode(t testing.TB, err error, code api.ErrorCode) {
	t.Helper()
	if got := rpcerr.Code(err); got != code {
		t.Fatalf("error %v: code %v, want %v", err, got, code)
	}
}

func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// replica returns the replica of h, activating it if it is cold (nil when
// the server holds none), unpinned: tests look, they do not hold.
func (s *Server) replica(h chunkstore.Handle) *replica {
	r := s.acquire(h)
	if r != nil {
		r.release()
	}
	return r
}
