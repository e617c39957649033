package client

import (
	"context"
	"net"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/rpcerr"
)

// This file is an in-memory twin of a cluster for the client's tests: a
// fake master with a flat namespace and fake chunkservers whose head applies
// a write to every chain member in-process. Both speak real gRPC on
// loopback, so the client's connection, retry and failover code runs as in
// production. Faults are injected through hooks.

type fakeNode struct {
	info   *api.FileInfo
	chunks map[int64]*api.ChunkInfo
}

type fakeMaster struct {
	api.UnimplementedMasterServer
	addr string
	srv  *grpc.Server

	mu         sync.Mutex
	nodes      map[string]*fakeNode
	nextInode  uint64
	nextHandle uint64
	servers    []*fakeCS
	calls      map[string]int
	// lazy: AllocateChunk creates no replica; the chunkservers create
	// theirs from the first write's creation info, as the real ones do.
	lazy bool
	// hook, when set, runs first on every call; a non-nil error is returned.
	hook func(method string) error
}

func (m *fakeMaster) enter(method string) error {
	m.mu.Lock()
	m.calls[method]++
	hook := m.hook
	m.mu.Unlock()
	if hook != nil {
		return hook(method)
	}
	return nil
}

func (m *fakeMaster) callCount(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[method]
}

func (m *fakeMaster) setHook(h func(string) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hook = h
}

func (m *fakeMaster) mkdirLocked(p string, mode uint32) *fakeNode {
	m.nextInode++
	n := &fakeNode{info: &api.FileInfo{Inode: m.nextInode, Name: path.Base(p), Path: p, Type: api.FileType_DIRECTORY, Mode: mode}}
	if p == "/" {
		n.info.Name = ""
	}
	m.nodes[p] = n
	return n
}

func (m *fakeMaster) parentDirLocked(p string) error {
	parent, ok := m.nodes[path.Dir(p)]
	if !ok {
		return rpcerr.New(api.ErrorCode_NOT_FOUND, "no %s", path.Dir(p))
	}
	if parent.info.Type != api.FileType_DIRECTORY {
		return rpcerr.New(api.ErrorCode_NOT_DIR, "%s", path.Dir(p))
	}
	return nil
}

func (m *fakeMaster) Mkdir(_ context.Context, r *api.MkdirRequest) (*api.MkdirResponse, error) {
	if err := m.enter("Mkdir"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.nodes[r.Path]; ok {
		if r.Parents && n.info.Type == api.FileType_DIRECTORY {
			return &api.MkdirResponse{Info: n.info}, nil
		}
		return nil, rpcerr.New(api.ErrorCode_EXISTS, "%s exists", r.Path)
	}
	if r.Parents {
		var parts []string
		for d := path.Dir(r.Path); d != "/"; d = path.Dir(d) {
			parts = append(parts, d)
		}
		for i := len(parts) - 1; i >= 0; i-- {
			if n, ok := m.nodes[parts[i]]; !ok {
				m.mkdirLocked(parts[i], r.Mode)
			} else if n.info.Type != api.FileType_DIRECTORY {
				return nil, rpcerr.New(api.ErrorCode_NOT_DIR, "%s", parts[i])
			}
		}
	}
	if err := m.parentDirLocked(r.Path); err != nil {
		return nil, err
	}
	return &api.MkdirResponse{Info: m.mkdirLocked(r.Path, r.Mode).info}, nil
}

func (m *fakeMaster) Create(_ context.Context, r *api.CreateRequest) (*api.CreateResponse, error) {
	if err := m.enter("Create"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !strings.HasPrefix(r.Path, "/") {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "path %q is not absolute", r.Path)
	}
	if n, ok := m.nodes[r.Path]; ok {
		if n.info.Type == api.FileType_DIRECTORY {
			return nil, rpcerr.New(api.ErrorCode_IS_DIR, "%s", r.Path)
		}
		if !r.Overwrite {
			return nil, rpcerr.New(api.ErrorCode_EXISTS, "%s", r.Path)
		}
	}
	if err := m.parentDirLocked(r.Path); err != nil {
		return nil, err
	}
	cs := r.ChunkSize
	if cs == 0 {
		cs = DefaultChunkSize
	}
	m.nextInode++
	n := &fakeNode{
		info:   &api.FileInfo{Inode: m.nextInode, Name: path.Base(r.Path), Path: r.Path, Type: api.FileType_FILE, Mode: r.Mode, ChunkSize: cs, Replication: 3},
		chunks: map[int64]*api.ChunkInfo{},
	}
	m.nodes[r.Path] = n
	return &api.CreateResponse{Info: n.info}, nil
}

func (m *fakeMaster) Lookup(_ context.Context, r *api.LookupRequest) (*api.LookupResponse, error) {
	if err := m.enter("Lookup"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[r.Path]
	if !ok {
		return nil, rpcerr.New(api.ErrorCode_NOT_FOUND, "no %s", r.Path)
	}
	resp := &api.LookupResponse{Info: proto.Clone(n.info).(*api.FileInfo)}
	if r.WithChunks {
		for _, c := range n.chunks {
			resp.Chunks = append(resp.Chunks, proto.Clone(c).(*api.ChunkInfo))
		}
	}
	return resp, nil
}

func (m *fakeMaster) List(_ context.Context, r *api.ListRequest) (*api.ListResponse, error) {
	if err := m.enter("List"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nodes[r.Path]; !ok {
		return nil, rpcerr.New(api.ErrorCode_NOT_FOUND, "no %s", r.Path)
	}
	// Pages of two, as the master pages (sorted, after StartAfter), so
	// that every listing exercises the client's paging.
	resp := &api.ListResponse{}
	for p, n := range m.nodes {
		if p != "/" && path.Dir(p) == r.Path && path.Base(p) > r.StartAfter {
			resp.Entries = append(resp.Entries, n.info)
		}
	}
	slices.SortFunc(resp.Entries, func(a, b *api.FileInfo) int { return strings.Compare(a.Name, b.Name) })
	if len(resp.Entries) > 2 {
		resp.Entries, resp.More = resp.Entries[:2], true
	}
	return resp, nil
}

func (m *fakeMaster) Rename(_ context.Context, r *api.RenameRequest) (*api.RenameResponse, error) {
	if err := m.enter("Rename"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[r.Src]
	if !ok {
		return nil, rpcerr.New(api.ErrorCode_NOT_FOUND, "no %s", r.Src)
	}
	delete(m.nodes, r.Src)
	n.info.Path, n.info.Name = r.Dst, path.Base(r.Dst)
	m.nodes[r.Dst] = n
	return &api.RenameResponse{}, nil
}

func (m *fakeMaster) Remove(_ context.Context, r *api.RemoveRequest) (*api.RemoveResponse, error) {
	if err := m.enter("Remove"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.nodes[r.Path]; !ok {
		return nil, rpcerr.New(api.ErrorCode_NOT_FOUND, "no %s", r.Path)
	}
	var below []string
	for p := range m.nodes {
		if strings.HasPrefix(p, r.Path+"/") {
			below = append(below, p)
		}
	}
	if len(below) > 0 && !r.Recursive {
		return nil, rpcerr.New(api.ErrorCode_NOT_EMPTY, "%s", r.Path)
	}
	for _, p := range below {
		delete(m.nodes, p)
	}
	delete(m.nodes, r.Path)
	return &api.RemoveResponse{}, nil
}

func (m *fakeMaster) byInodeLocked(inode uint64) (*fakeNode, error) {
	for _, n := range m.nodes {
		if n.info.Inode == inode {
			return n, nil
		}
	}
	return nil, rpcerr.New(api.ErrorCode_NOT_FOUND, "no inode %d", inode)
}

func (m *fakeMaster) SetSize(_ context.Context, r *api.SetSizeRequest) (*api.SetSizeResponse, error) {
	if err := m.enter("SetSize"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.byInodeLocked(r.Inode)
	if err != nil {
		return nil, err
	}
	switch r.Mode {
	case api.SetSizeMode_EXTEND:
		n.info.Size = max(n.info.Size, r.Size)
	case api.SetSizeMode_EXACT:
		n.info.Size = r.Size
		for i := range n.chunks {
			if i*n.info.ChunkSize >= r.Size {
				delete(n.chunks, i)
			}
		}
	default:
		return nil, rpcerr.New(api.ErrorCode_INVALID, "mode")
	}
	return &api.SetSizeResponse{Info: n.info}, nil
}

func (m *fakeMaster) GetChunks(_ context.Context, r *api.GetChunksRequest) (*api.GetChunksResponse, error) {
	if err := m.enter("GetChunks"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.byInodeLocked(r.Inode)
	if err != nil {
		return nil, err
	}
	resp := &api.GetChunksResponse{Info: proto.Clone(n.info).(*api.FileInfo)}
	for i, c := range n.chunks {
		if i >= r.FirstIndex && (r.Count == 0 || i < r.FirstIndex+r.Count) {
			resp.Chunks = append(resp.Chunks, proto.Clone(c).(*api.ChunkInfo))
		}
	}
	sort.Slice(resp.Chunks, func(i, j int) bool { return resp.Chunks[i].Index < resp.Chunks[j].Index })
	return resp, nil
}

func (m *fakeMaster) AllocateChunk(_ context.Context, r *api.AllocateChunkRequest) (*api.AllocateChunkResponse, error) {
	if err := m.enter("AllocateChunk"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.byInodeLocked(r.Inode)
	if err != nil {
		return nil, err
	}
	if c, ok := n.chunks[r.Index]; ok {
		return &api.AllocateChunkResponse{Chunk: c}, nil
	}
	if len(m.servers) == 0 {
		return nil, rpcerr.New(api.ErrorCode_NO_CHUNKSERVERS, "need 3 chunkservers, 0 alive")
	}
	m.nextHandle++
	c := &api.ChunkInfo{Index: r.Index, Handle: m.nextHandle, Epoch: 1, ChunkSize: n.info.ChunkSize}
	for i, s := range m.servers {
		if !m.lazy {
			s.createReplica(c.Handle, 1)
		}
		c.Chain = append(c.Chain, &api.ServerRef{Id: uint64(i + 1), Addr: s.addr})
	}
	n.chunks[r.Index] = c
	return &api.AllocateChunkResponse{Chunk: c}, nil
}

func (m *fakeMaster) isLazy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lazy
}

// reconfigure installs a new chain with epoch+1 for the chunk at (path,
// index), as the master does after a failure, and returns it.
// setCapability makes the master hand out c with chunk index of p.
func (m *fakeMaster) setCapability(p string, index int64, c *api.Capability) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[p].chunks[index].Capability = c
}

func (m *fakeMaster) reconfigure(t *testing.T, p string, index int64, chain []*fakeCS) *api.ChunkInfo {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.nodes[p].chunks[index]
	c.Epoch++
	c.Chain = nil
	for i, s := range chain {
		s.setEpoch(c.Handle, c.Epoch)
		c.Chain = append(c.Chain, &api.ServerRef{Id: uint64(i + 1), Addr: s.addr})
	}
	return proto.Clone(c).(*api.ChunkInfo)
}

func (m *fakeMaster) Status(context.Context, *api.StatusRequest) (*api.StatusResponse, error) {
	if err := m.enter("Status"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	resp := &api.StatusResponse{Masters: []*api.MasterStatus{{Id: "m1", Addr: m.addr, Leader: true}}, Chunks: &api.ChunkStats{}}
	for i, s := range m.servers {
		resp.Chunkservers = append(resp.Chunkservers, &api.ChunkserverStatus{Id: uint64(i + 1), Addr: s.addr, Alive: true, LastHeartbeatUnixNano: 1})
	}
	for _, n := range m.nodes {
		if n.info.Type == api.FileType_DIRECTORY {
			resp.Directories++
		} else {
			resp.Files++
			resp.Chunks.Total += uint64(len(n.chunks))
		}
	}
	return resp, nil
}

type reqKey struct{ client, req uint64 }

type fakeReplica struct {
	epoch   uint64
	data    []byte
	applied map[reqKey]int
}

type fakeCS struct {
	api.UnimplementedChunkserverServer
	addr string
	srv  *grpc.Server
	// peers resolves chain addresses to the fake that serves them.
	peers     func(addr string) *fakeCS
	masterRef *fakeMaster

	mu       sync.Mutex
	replicas map[uint64]*fakeReplica
	reads    int
	writes   []*api.WriteRequest
	// hook runs before a Write or Read is served; a non-nil error is
	// returned, and after==true runs it after the write was applied (a lost
	// ack).
	hook func(method string, handle uint64) (err error, after bool)
	// capCheck, when set, judges the capability of every Write and Read.
	capCheck func(c *api.Capability) error
}

func (s *fakeCS) checkCap(c *api.Capability) error {
	s.mu.Lock()
	check := s.capCheck
	s.mu.Unlock()
	if check == nil {
		return nil
	}
	return check(c)
}

func (s *fakeCS) createReplica(handle, epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replicas[handle] = &fakeReplica{epoch: epoch, applied: map[reqKey]int{}}
}

func (s *fakeCS) setEpoch(handle, epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.replicas[handle]; r != nil {
		r.epoch = epoch
	}
}

func (s *fakeCS) setHook(h func(string, uint64) (error, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

func (s *fakeCS) runHook(method string, handle uint64) (error, bool) {
	s.mu.Lock()
	h := s.hook
	s.mu.Unlock()
	if h == nil {
		return nil, false
	}
	return h(method, handle)
}

// apply applies w once per request id; it reports the replica's epoch
// check.
func (s *fakeCS) apply(w *api.WriteRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.replicas[w.Handle]
	if r == nil && w.Create != nil && s.masterRef.isLazy() {
		r = &fakeReplica{epoch: w.Epoch, applied: map[reqKey]int{}}
		s.replicas[w.Handle] = r
	}
	if r == nil {
		return rpcerr.New(api.ErrorCode_NOT_FOUND, "no chunk %d", w.Handle)
	}
	if r.epoch != w.Epoch {
		return rpcerr.New(api.ErrorCode_STALE_EPOCH, "epoch %d, replica at %d", w.Epoch, r.epoch)
	}
	k := reqKey{w.ClientId, w.RequestId}
	r.applied[k]++
	if r.applied[k] > 1 {
		return nil
	}
	end := w.Offset + int64(len(w.Data))
	if w.Kind == api.UpdateKind_ZERO {
		end = w.Offset + w.Length
	}
	if int64(len(r.data)) < end {
		r.data = append(r.data, make([]byte, end-int64(len(r.data)))...)
	}
	if w.Kind == api.UpdateKind_ZERO {
		clear(r.data[w.Offset:end])
	} else {
		copy(r.data[w.Offset:], w.Data)
	}
	return nil
}

func (s *fakeCS) Write(ctx context.Context, w *api.WriteRequest) (*api.WriteResponse, error) {
	s.mu.Lock()
	s.writes = append(s.writes, proto.Clone(w).(*api.WriteRequest))
	s.mu.Unlock()
	if err := s.checkCap(w.Capability); err != nil {
		return nil, err
	}
	err, after := s.runHook("Write", w.Handle)
	if err != nil && !after {
		return nil, err
	}
	if err := s.apply(w); err != nil {
		return nil, err
	}
	// The head forwards down the chain; the fake does it in-process. Each
	// replica dedups by request id, as the real chain does.
	for _, p := range s.chainPeers(w.Handle) {
		if err := p.apply(w); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	return &api.WriteResponse{Seq: 1}, nil
}

// chainPeers returns the other replicas of handle in its current chain.
func (s *fakeCS) chainPeers(handle uint64) []*fakeCS {
	var out []*fakeCS
	for _, addr := range s.chainLookup(handle) {
		if p := s.peers(addr); p != nil && p != s {
			out = append(out, p)
		}
	}
	return out
}

func (s *fakeCS) Read(ctx context.Context, r *api.ReadRequest) (*api.ReadResponse, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	if err := s.checkCap(r.Capability); err != nil {
		return nil, err
	}
	if err, _ := s.runHook("Read", r.Handle); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rep := s.replicas[r.Handle]
	if rep == nil && s.masterRef.isLazy() {
		return &api.ReadResponse{NoReplica: true}, nil // never held
	}
	if rep == nil {
		return nil, rpcerr.New(api.ErrorCode_NOT_FOUND, "no chunk %d", r.Handle)
	}
	if rep.epoch != r.Epoch {
		return nil, rpcerr.New(api.ErrorCode_STALE_EPOCH, "epoch %d, replica at %d", r.Epoch, rep.epoch)
	}
	if r.Offset >= int64(len(rep.data)) {
		return &api.ReadResponse{}, nil
	}
	end := min(r.Offset+r.Length, int64(len(rep.data)))
	return &api.ReadResponse{Data: append([]byte(nil), rep.data[r.Offset:end]...)}, nil
}

func (s *fakeCS) applied(handle uint64, k reqKey) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.replicas[handle]; r != nil {
		return r.applied[k]
	}
	return 0
}

func (s *fakeCS) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// fakeCluster is one fake master and three fake chunkservers.
type fakeCluster struct {
	m   *fakeMaster
	css []*fakeCS
}

// chainLookup returns the current chain of handle from the fake master.
func (s *fakeCS) chainLookup(handle uint64) []string {
	m := s.masterRef
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nodes {
		for _, c := range n.chunks {
			if c.Handle == handle {
				var out []string
				for _, r := range c.Chain {
					out = append(out, r.Addr)
				}
				return out
			}
		}
	}
	return nil
}

func serve(t *testing.T, register func(*grpc.Server)) (string, *grpc.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), srv
}

func newFakeMaster(t *testing.T) *fakeMaster {
	m := &fakeMaster{nodes: map[string]*fakeNode{}, calls: map[string]int{}}
	m.mkdirLocked("/", 0o755)
	m.addr, m.srv = serve(t, func(s *grpc.Server) { api.RegisterMasterServer(s, m) })
	return m
}

func newFakeCluster(t *testing.T) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{m: newFakeMaster(t)}
	byAddr := map[string]*fakeCS{}
	for range 3 {
		s := &fakeCS{replicas: map[uint64]*fakeReplica{}, masterRef: fc.m}
		s.peers = func(addr string) *fakeCS { return byAddr[addr] }
		s.addr, s.srv = serve(t, func(g *grpc.Server) { api.RegisterChunkserverServer(g, s) })
		byAddr[s.addr] = s
		fc.css = append(fc.css, s)
	}
	fc.m.servers = fc.css
	return fc
}

// fastClock is the real clock with every timer cut to at most a
// millisecond: a test client retries without waiting out its backoff.
type fastClock struct{ clock.Real }

func (fastClock) NewTimer(d time.Duration) clock.Timer {
	return clock.Real{}.NewTimer(min(d, time.Millisecond))
}

// newTestClient returns a client of masters with fast backoff (unless cfg
// brings its own clock).
func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = fastClock{}
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
