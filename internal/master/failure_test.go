package master

import (
	"context"
	"maps"
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
	"github.com/catena-io/catena/internal/meta"
)

// fakeCS is a chunkserver that records what the master asks of it.
type fakeCS struct {
	api.UnimplementedChunkserverServer
	id   uint64
	addr string

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every Reconfigure
	reconfigs  []*api.ReconfigureRequest
	replicates []*api.ReplicateRequest
}

func (f *fakeCS) CreateReplica(context.Context, *api.CreateReplicaRequest) (*api.CreateReplicaResponse, error) {
	return &api.CreateReplicaResponse{}, nil
}

func (f *fakeCS) Reconfigure(_ context.Context, req *api.ReconfigureRequest) (*api.ReconfigureResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reconfigs = append(f.reconfigs, req)
	close(f.changed)
	f.changed = make(chan struct{})
	return &api.ReconfigureResponse{}, nil
}

// awaitReconfig waits until the server got a Reconfigure for handle at
// epoch with chain (from the repair loop, not from a round the test ran).
func (f *fakeCS) awaitReconfig(t *testing.T, handle, epoch uint64, chain []uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if f.reconfiguredTo(handle, epoch, chain) {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("server %d: no Reconfigure of chunk %d to epoch %d chain %v", f.id, handle, epoch, chain)
		}
	}
}

func (f *fakeCS) Replicate(_ context.Context, req *api.ReplicateRequest) (*api.ReplicateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replicates = append(f.replicates, req)
	return &api.ReplicateResponse{AppliedSeq: 7, AppliedEpoch: req.Epoch, BytesCopied: 1000, Full: true}, nil
}

// reconfiguredTo reports whether the server got a Reconfigure for handle
// at epoch with the given chain.
func (f *fakeCS) reconfiguredTo(handle, epoch uint64, chain []uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.reconfigs {
		if r.Handle == handle && r.Epoch == epoch && slices.Equal(refIDs(r.Chain), chain) {
			return true
		}
	}
	return false
}

func (f *fakeCS) maxReconfigEpoch() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var e uint64
	for _, r := range f.reconfigs {
		e = max(e, r.Epoch)
	}
	return e
}

func (f *fakeCS) replicateCalls() []*api.ReplicateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.replicates)
}

func refIDs(refs []*api.ServerRef) []uint64 {
	var ids []uint64
	for _, r := range refs {
		ids = append(ids, r.Id)
	}
	return ids
}

func startFakeCS(t testing.TB, id uint64) *fakeCS {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCS{id: id, addr: lis.Addr().String(), changed: make(chan struct{})}
	gs := grpc.NewServer()
	api.RegisterChunkserverServer(gs, f)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return f
}

// failureEnv is a master on a fake clock with fake chunkservers 1..n;
// server i reports free space (n+1-i) GiB, so placement picks 1, 2, 3.
type failureEnv struct {
	t   testing.TB
	clk *clock.Fake
	m   *Master
	c   api.MasterClient
	cs  map[uint64]*fakeCS
}

// manualRepair is a repair interval no test advances its clock by: the
// repair loop never ticks by itself, the test runs each round (round).
const manualRepair = 24 * time.Hour

// newFailureEnv starts an env whose repair rounds run only when the test
// calls round, so every chain change happens at a known step.
func newFailureEnv(t testing.TB, n int) *failureEnv {
	t.Helper()
	return startFailureEnv(t, n, manualRepair)
}

func startFailureEnv(t testing.TB, n int, repairInterval time.Duration) *failureEnv {
	t.Helper()
	clk := newClock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := Start(ctx, Config{
		Dir: t.TempDir(), ListenAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Logger: quietLogger(), Clock: clk, RepairInterval: repairInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(m.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); m.Close() })
	e := &failureEnv{t: t, clk: clk, m: m, c: api.NewMasterClient(cc), cs: map[uint64]*fakeCS{}}
	for id := uint64(1); id <= uint64(n); id++ {
		f := startFakeCS(t, id)
		e.cs[id] = f
		if _, err := e.c.Register(context.Background(), &api.RegisterRequest{ServerId: id, Addr: f.addr,
			FreeBytes: int64(n+1-int(id)) << 30}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// heartbeat sends server id's heartbeat with replicas (handle, epoch).
func (e *failureEnv) heartbeat(id uint64, replicas ...[2]uint64) *api.HeartbeatResponse {
	e.t.Helper()
	var infos []*api.ReplicaInfo
	for _, r := range replicas {
		infos = append(infos, &api.ReplicaInfo{Handle: r[0], Epoch: r[1], Verified: true})
	}
	return e.heartbeatInfo(id, infos...)
}

// heartbeatInfo sends server id's heartbeat reporting infos.
func (e *failureEnv) heartbeatInfo(id uint64, infos ...*api.ReplicaInfo) *api.HeartbeatResponse {
	e.t.Helper()
	req := &api.HeartbeatRequest{ServerId: id, Addr: e.cs[id].addr, FreeBytes: int64(10-id) << 30, Replicas: infos}
	resp, err := e.c.Heartbeat(context.Background(), req)
	if err != nil {
		e.t.Fatalf("heartbeat %d: %v", id, err)
	}
	return resp
}

// allocate creates /f (replication 3) and allocates its chunk 0.
func (e *failureEnv) allocate() *api.ChunkInfo {
	e.t.Helper()
	ctx := context.Background()
	cr, err := e.c.Create(ctx, &api.CreateRequest{Path: "/f", Replication: 3, ChunkSize: 1 << 20})
	if err != nil {
		e.t.Fatal(err)
	}
	ar, err := e.c.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: cr.Info.Inode})
	if err != nil {
		e.t.Fatal(err)
	}
	return ar.Chunk
}

func (e *failureEnv) chunk(handle uint64) (epoch uint64, chain []uint64) {
	var got struct {
		epoch uint64
		chain []uint64
	}
	e.m.fsm.view(func(st *meta.State) {
		ch, _ := st.Chunk(handle)
		got.epoch, got.chain = ch.Epoch, ch.Chain
	})
	return got.epoch, got.chain
}

// round runs one round of the repair loop, as its tick would, and waits
// for the repairs it started: when it returns, the round's chain changes
// are committed and pushed to the servers.
func (e *failureEnv) round() {
	var repairs sync.WaitGroup
	e.m.repairTick(context.Background(), &repairs)
	repairs.Wait()
}

func (e *failureEnv) wantChain(handle, epoch uint64, chain ...uint64) {
	e.t.Helper()
	if ep, ch := e.chunk(handle); ep != epoch || !slices.Equal(ch, chain) {
		e.t.Fatalf("chunk %d at epoch %d chain %v, want epoch %d chain %v", handle, ep, ch, epoch, chain)
	}
}

func (e *failureEnv) status() *api.StatusResponse {
	e.t.Helper()
	st, err := e.c.Status(context.Background(), &api.StatusRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func aliveIn(st *api.StatusResponse, id uint64) bool {
	for _, cs := range st.Chunkservers {
		if cs.Id == id {
			return cs.Alive
		}
	}
	return false
}

// TestDeadMemberRemovedThenRepaired: a middle member whose heartbeats stop
// is declared dead only after lease + drift; its chain loses it at epoch+1
// and the survivors get Reconfigure; the short chain is re-replicated onto
// the spare server (Replicate from the tail, then Reconfigure with the
// spare at the tail); the returning server's stale replica is deleted and a
// member at an old epoch gets the current configuration by heartbeat.
func TestDeadMemberRemovedThenRepaired(t *testing.T) {
	e := newFailureEnv(t, 4)
	for id := uint64(1); id <= 4; id++ {
		if resp := e.heartbeat(id); resp.LeaseMillis != 1000 {
			t.Fatalf("lease_millis %d, want 1000", resp.LeaseMillis)
		}
	}
	ci := e.allocate()
	h := ci.Handle
	if got := refIDs(ci.Chain); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("placement %v", got)
	}

	// Server 2 falls silent. At lease + drift (1.25 s) it is still alive.
	e.clk.Advance(1250 * time.Millisecond)
	for _, id := range []uint64{1, 3, 4} {
		e.heartbeat(id, [2]uint64{h, 1})
	}
	if !aliveIn(e.status(), 2) {
		t.Fatal("server 2 dead before lease + drift passed")
	}
	e.round()
	e.wantChain(h, 1, 1, 2, 3)
	e.clk.Advance(10 * time.Millisecond)
	if aliveIn(e.status(), 2) {
		t.Fatal("server 2 alive after lease + drift")
	}

	// Removal at epoch 2, pushed to the survivors; then server 4 joins at
	// epoch 3 after copying from the tail (3).
	e.round()
	e.wantChain(h, 2, 1, 3)
	if !e.cs[1].reconfiguredTo(h, 2, []uint64{1, 3}) || !e.cs[3].reconfiguredTo(h, 2, []uint64{1, 3}) {
		t.Fatal("survivors not reconfigured to [1 3] at epoch 2")
	}
	e.round()
	e.wantChain(h, 3, 1, 3, 4)
	reps := e.cs[4].replicateCalls()
	if len(reps) != 1 || reps[0].Source.Id != 3 || reps[0].Epoch != 2 || !slices.Equal(refIDs(reps[0].Chain), []uint64{1, 3}) ||
		reps[0].ChunkSize != 1<<20 || reps[0].MaxBytesPerSec != defaultRepairBytesPerSec {
		t.Fatalf("replicate calls on server 4: %v", reps)
	}
	for _, id := range []uint64{1, 3, 4} {
		if !e.cs[id].reconfiguredTo(h, 3, []uint64{1, 3, 4}) {
			t.Fatalf("server %d not reconfigured to epoch 3", id)
		}
	}
	if e.cs[2].maxReconfigEpoch() != 0 {
		t.Fatal("dead server got a Reconfigure")
	}
	// 4 counts once it reports the chunk at epoch 3, caught up.
	if cs := e.status().Chunks; cs.UnderReplicated != 1 {
		t.Fatalf("a joiner not caught up yet counted: %v", cs)
	}
	e.heartbeat(4, [2]uint64{h, 3})
	e.round()
	if cs := e.status().Chunks; cs.RepairsDone != 1 || cs.RepairedBytes != 1000 || cs.ReReplicating != 0 || cs.UnderReplicated != 0 {
		t.Fatalf("repair not counted: %v", cs)
	}

	// Server 2 returns: its replica (epoch 1, not a member, chain whole) is
	// deleted. Server 1 reporting epoch 2 gets epoch 3's chain.
	if resp := e.heartbeat(2, [2]uint64{h, 1}); !slices.Equal(resp.DeleteHandles, []uint64{h}) || resp.LeaseMillis != 1000 {
		t.Fatalf("returning server: delete %v lease %d", resp.DeleteHandles, resp.LeaseMillis)
	}
	resp := e.heartbeat(1, [2]uint64{h, 2})
	if len(resp.Configs) != 1 || resp.Configs[0].Epoch != 3 || !slices.Equal(refIDs(resp.Configs[0].Chain), []uint64{1, 3, 4}) ||
		resp.Configs[0].ChunkSize != 1<<20 || len(resp.DeleteHandles) != 0 {
		t.Fatalf("heartbeat of member at old epoch: %v", resp)
	}
	if resp := e.heartbeat(4, [2]uint64{h, 3}); len(resp.Configs) != 0 || len(resp.DeleteHandles) != 0 {
		t.Fatalf("heartbeat of up-to-date member: %v", resp)
	}
}

// TestReturningServerPreferredAndBadReplica: a chain that lost a member
// with no spare alive waits; a returning server keeps its stale replica
// while the chain is short and is chosen over a fresh server (delta
// resync). A reported bad replica leaves its chain (the reporter is told
// too) and the repair avoids the reporter.
func TestReturningServerPreferredAndBadReplica(t *testing.T) {
	e := newFailureEnv(t, 4)
	for id := uint64(1); id <= 4; id++ {
		e.heartbeat(id)
	}
	h := e.allocate().Handle

	// 2 and 4 fall silent and die: the chain shrinks to [1 3] and no
	// repair target is alive.
	e.clk.Advance(2 * time.Second)
	e.heartbeat(1, [2]uint64{h, 1})
	e.heartbeat(3, [2]uint64{h, 1})
	e.round()
	e.wantChain(h, 2, 1, 3)
	if st := e.status(); st.Chunks.UnderReplicated != 1 || st.Chunks.Lost != 0 {
		t.Fatalf("status chunks: %v", st.Chunks)
	}

	// Both return; 2 still holds its replica, which is kept (chain short)
	// and makes 2 the preferred target.
	if resp := e.heartbeat(2, [2]uint64{h, 1}); len(resp.DeleteHandles) != 0 {
		t.Fatalf("stale replica deleted while the chain is short: %v", resp.DeleteHandles)
	}
	e.heartbeat(4)
	e.round()
	e.wantChain(h, 3, 1, 3, 2)
	if len(e.cs[4].replicateCalls()) != 0 || len(e.cs[2].replicateCalls()) != 1 {
		t.Fatalf("replicate calls: server 2 %d, server 4 %d", len(e.cs[2].replicateCalls()), len(e.cs[4].replicateCalls()))
	}

	// 3 reports its replica corrupt: it leaves the chain, and is told so.
	if _, err := e.c.ReportReplica(context.Background(), &api.ReportReplicaRequest{
		ServerId: 3, Handle: h, Epoch: 3, Problem: api.ReplicaProblem_REPLICA_CORRUPT}); err != nil {
		t.Fatal(err)
	}
	if ep, chain := e.chunk(h); ep < 4 || slices.Contains(chain, 3) {
		t.Fatalf("after report: epoch %d chain %v", ep, chain)
	}
	if !e.cs[3].reconfiguredTo(h, 4, []uint64{1, 2}) || !e.cs[1].reconfiguredTo(h, 4, []uint64{1, 2}) {
		t.Fatal("report: reconfigure not pushed to the reporter and the survivors")
	}
	// 3 still reports its (bad) replica: 4 is chosen anyway, once 2 has
	// caught up.
	e.heartbeat(3, [2]uint64{h, 3})
	e.round()
	e.wantChain(h, 4, 1, 2)
	e.heartbeat(2, [2]uint64{h, 4})
	e.round()
	e.wantChain(h, 5, 1, 2, 4)
	if len(e.cs[3].replicateCalls()) != 0 {
		t.Fatal("the reporter of a bad replica was chosen as repair target")
	}
	// Reporting again is harmless.
	if _, err := e.c.ReportReplica(context.Background(), &api.ReportReplicaRequest{ServerId: 3, Handle: h, Epoch: 3}); err != nil {
		t.Fatal(err)
	}
	if ep, _ := e.chunk(h); ep != 5 {
		t.Fatalf("second report changed the chain: epoch %d", ep)
	}
}

// newJoinEnv: four servers, a chunk on [1 2 3]; 3 falls silent and is
// removed (epoch 2), and 4 joins by repair (epoch 3, syncing).
func newJoinEnv(t *testing.T) (*failureEnv, uint64) {
	t.Helper()
	e := newFailureEnv(t, 4)
	for id := uint64(1); id <= 4; id++ {
		e.heartbeat(id)
	}
	h := e.allocate().Handle // [1 2 3]
	e.clk.Advance(1260 * time.Millisecond)
	e.heartbeat(1, [2]uint64{h, 1})
	e.heartbeat(2, [2]uint64{h, 1})
	e.heartbeat(4)
	e.round()
	e.wantChain(h, 2, 1, 2)
	e.round()
	e.wantChain(h, 3, 1, 2, 4)
	return e, h
}

// TestJoinerNeverSoleHolder: a repair target joins its chain syncing (it
// catches up on what the tail acknowledged after the copy); while it has
// not reported caught up it is no repair source, and the members holding
// every acknowledged update do not all leave: dead, the chain waits (the
// chunk counts as unavailable); one returning fenced (restarted) stays for
// the joiner to catch up from, and leaves only after that.
func TestJoinerNeverSoleHolder(t *testing.T) {
	e, h := newJoinEnv(t)
	var syncing []uint64
	e.m.fsm.view(func(st *meta.State) { c, _ := st.Chunk(h); syncing = c.Syncing })
	if !slices.Equal(syncing, []uint64{4}) {
		t.Fatalf("syncing %v after the join, want [4]", syncing)
	}

	// 4 reports catching up; then 1 and 2 die.
	catching := &api.ReplicaInfo{Handle: h, Epoch: 3, Verified: true, CatchingUp: true}
	e.heartbeatInfo(4, catching)
	e.clk.Advance(1260 * time.Millisecond)
	e.heartbeatInfo(4, catching)
	e.heartbeat(3)
	e.round()
	e.wantChain(h, 3, 1, 2, 4)
	st := e.status()
	if st.Chunks.Lost != 1 || len(st.Chunks.Problems) != 1 || st.Chunks.Problems[0].Handle != h {
		t.Fatalf("status with only the joiner alive: %v, want the chunk unavailable, with a problem", st.Chunks)
	}
	if len(e.cs[3].replicateCalls()) != 0 {
		t.Fatal("a syncing member was a repair source")
	}

	// 2 returns fenced (restarted): it stays, 1 (dead) leaves.
	e.heartbeatInfo(2, &api.ReplicaInfo{Handle: h, Epoch: 3, Verified: true, Fenced: true, AppliedSeq: 9, AppliedEpoch: 3})
	e.heartbeatInfo(4, catching)
	e.round()
	e.wantChain(h, 4, 2, 4)
	// 4 caught up from 2 at epoch 4: confirmed, and 2 (fenced) leaves.
	e.heartbeatInfo(2, &api.ReplicaInfo{Handle: h, Epoch: 4, Verified: true, Fenced: true, AppliedSeq: 9, AppliedEpoch: 3})
	e.heartbeatInfo(4, &api.ReplicaInfo{Handle: h, Epoch: 4, Verified: true, AppliedSeq: 9, AppliedEpoch: 3})
	e.heartbeat(3)
	e.round()
	e.wantChain(h, 5, 4)
	e.m.fsm.view(func(st *meta.State) { c, _ := st.Chunk(h); syncing = c.Syncing })
	if len(syncing) != 0 {
		t.Fatalf("syncing %v after the catch-up, want none", syncing)
	}
}

// TestSoleReplicaKept: a chain whose every member is dead keeps its chain
// (the chunk is lost until one returns).
func TestSoleReplicaKept(t *testing.T) {
	e := newFailureEnv(t, 3)
	for id := uint64(1); id <= 3; id++ {
		e.heartbeat(id)
	}
	h := e.allocate().Handle
	e.clk.Advance(2 * time.Second)
	if st := e.status(); st.Chunks.Lost != 1 {
		t.Fatalf("status chunks %v, want the chunk lost", st.Chunks)
	}
	e.round()
	e.wantChain(h, 1, 1, 2, 3) // all dead: unchanged
	// One member returns: the others are removed, the survivor kept.
	e.heartbeat(2, [2]uint64{h, 1})
	e.round()
	e.wantChain(h, 2, 2)
	if _, err := e.c.ReportReplica(context.Background(), &api.ReportReplicaRequest{ServerId: 2, Handle: h, Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	if ep, chain := e.chunk(h); ep != 2 || !slices.Equal(chain, []uint64{2}) {
		t.Fatalf("sole replica removed on report: epoch %d chain %v", ep, chain)
	}
}

// TestRepairLoopTicksOnClock: the repair loop's ticks come from the
// master's clock. Moving the clock past a silent member's lease both
// kills it and ticks the loop, which removes it: the test runs no round
// and waits for the Reconfigure the removal pushes.
func TestRepairLoopTicksOnClock(t *testing.T) {
	e := startFailureEnv(t, 3, 100*time.Millisecond)
	for id := uint64(1); id <= 3; id++ {
		e.heartbeat(id)
	}
	h := e.allocate().Handle
	e.clk.Advance(time.Second)
	e.heartbeat(1, [2]uint64{h, 1})
	e.heartbeat(2, [2]uint64{h, 1})
	e.clk.Advance(time.Second) // 3 silent for 2 s: dead
	e.cs[1].awaitReconfig(t, h, 2, []uint64{1, 2})
	e.wantChain(h, 2, 1, 2)
}

// TestIncrementalReports: after a full report a heartbeat carries only
// what changed (and what went); the master decides from the inventory it
// holds, changed by the report. A report based on an inventory the master
// does not hold gets no decision and no lease, only a request for a full
// one.
func TestIncrementalReports(t *testing.T) {
	e := newFailureEnv(t, 3)
	ch := e.allocate()
	beat, info, inv := reportHelpers(t, e, false)
	// A delta before any full report: no lease, ask for a full one.
	resp := beat(&api.HeartbeatRequest{ReportGen: 1, BaseGen: 0, Replicas: []*api.ReplicaInfo{info(ch.Handle, ch.Epoch)}})
	if !resp.FullReport || resp.LeaseMillis != 0 {
		t.Fatalf("delta without a base: full_report %v, lease %d; want a full report asked and no lease", resp.FullReport, resp.LeaseMillis)
	}
	resp = beat(&api.HeartbeatRequest{ReportGen: 2, Full: true, Replicas: []*api.ReplicaInfo{info(ch.Handle, ch.Epoch), info(999, 1)}})
	if resp.FullReport || resp.LeaseMillis == 0 {
		t.Fatalf("full report: full_report %v, lease %d", resp.FullReport, resp.LeaseMillis)
	}
	if got := inv(); len(got) != 2 || got[ch.Handle] != ch.Epoch {
		t.Fatalf("inventory after the full report: %v", got)
	}
	// An empty delta keeps the inventory (a full report would have
	// emptied it).
	resp = beat(&api.HeartbeatRequest{ReportGen: 3, BaseGen: 2})
	if resp.FullReport || resp.LeaseMillis == 0 {
		t.Fatalf("empty delta: full_report %v, lease %d", resp.FullReport, resp.LeaseMillis)
	}
	if got := inv(); len(got) != 2 {
		t.Fatalf("inventory after an empty delta: %v", got)
	}
	// A delta removes 999 and changes nothing else.
	beat(&api.HeartbeatRequest{ReportGen: 4, BaseGen: 3, Removed: []uint64{999}})
	if got := inv(); len(got) != 1 || got[ch.Handle] != ch.Epoch {
		t.Fatalf("inventory after removing 999: %v", got)
	}
	// A changed replica on the right base.
	resp = beat(&api.HeartbeatRequest{ReportGen: 5, BaseGen: 4, Replicas: []*api.ReplicaInfo{info(ch.Handle, ch.Epoch)}})
	if resp.FullReport {
		t.Fatal("a delta on the right base was refused")
	}
	// A delta on a stale base (report 5 was applied, its answer lost):
	// no lease, a full report asked, the inventory kept as it was.
	resp = beat(&api.HeartbeatRequest{ReportGen: 6, BaseGen: 4, Removed: []uint64{ch.Handle}})
	if !resp.FullReport || resp.LeaseMillis != 0 {
		t.Fatalf("delta on a stale base: full_report %v, lease %d", resp.FullReport, resp.LeaseMillis)
	}
	if got := inv(); len(got) != 1 {
		t.Fatalf("a refused delta changed the inventory: %v", got)
	}
	// A new leader holds no inventory: the first delta after it took
	// office asks for a full report.
	e.m.soft.reset(e.clk.Now())
	if resp = beat(&api.HeartbeatRequest{ReportGen: 7, BaseGen: 5}); !resp.FullReport || resp.LeaseMillis != 0 {
		t.Fatalf("delta to a new leader: full_report %v, lease %d", resp.FullReport, resp.LeaseMillis)
	}
}

// reportHelpers returns, for the report tests: beat, which sends a
// heartbeat of server 1 (full when full says so); info, a replica's
// report; and inv, the inventory the master holds for server 1.
func reportHelpers(t *testing.T, e *failureEnv, full bool) (beat func(*api.HeartbeatRequest) *api.HeartbeatResponse, info func(h, epoch uint64) *api.ReplicaInfo, inv func() map[uint64]uint64) {
	beat = func(req *api.HeartbeatRequest) *api.HeartbeatResponse {
		t.Helper()
		req.ServerId, req.Addr = 1, e.cs[1].addr
		req.Full = req.Full || full
		resp, err := e.c.Heartbeat(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	info = func(h, epoch uint64) *api.ReplicaInfo {
		return &api.ReplicaInfo{Handle: h, Epoch: epoch, Verified: true, AppliedSeq: 4}
	}
	inv = func() map[uint64]uint64 {
		sv, _ := e.m.soft.get(1)
		return sv.replicas
	}
	return beat, info, inv
}

// TestPagedFullReport: the pages of a full report are gathered with no
// lease and no decision before the last, which replaces the inventory
// (its own share, the earlier pages', minus the handles a later page
// removed); a page that does not follow the one before is refused and the
// inventory kept; deltas then build on the last page.
func TestPagedFullReport(t *testing.T) {
	e := newFailureEnv(t, 3)
	ch := e.allocate()
	beat, info, inv := reportHelpers(t, e, true)
	resp, err := e.c.Register(context.Background(), &api.RegisterRequest{ServerId: 1, Addr: e.cs[1].addr})
	if err != nil || !resp.PagedReports {
		t.Fatalf("register: paged_reports %v, %v", resp.GetPagedReports(), err)
	}
	if r := beat(&api.HeartbeatRequest{ReportGen: 1, Page: 0, More: true, Replicas: []*api.ReplicaInfo{info(ch.Handle, ch.Epoch), info(900, 1)}}); r.LeaseMillis != 0 || r.FullReport || len(r.DeleteHandles) > 0 {
		t.Fatalf("first page: lease %d, full_report %v, deletes %v: want none", r.LeaseMillis, r.FullReport, r.DeleteHandles)
	}
	if got := inv(); got != nil {
		t.Fatalf("inventory after the first page: %v, want none yet", got)
	}
	if r := beat(&api.HeartbeatRequest{ReportGen: 2, BaseGen: 1, Page: 1, More: true, Replicas: []*api.ReplicaInfo{info(901, 1)}}); r.LeaseMillis != 0 {
		t.Fatalf("second page: lease %d", r.LeaseMillis)
	}
	r := beat(&api.HeartbeatRequest{ReportGen: 3, BaseGen: 2, Page: 2, Replicas: []*api.ReplicaInfo{info(902, 1)}, Removed: []uint64{900}})
	if r.LeaseMillis == 0 || r.FullReport {
		t.Fatalf("last page: lease %d, full_report %v", r.LeaseMillis, r.FullReport)
	}
	want := map[uint64]uint64{ch.Handle: ch.Epoch, 901: 1, 902: 1}
	if got := inv(); !maps.Equal(got, want) {
		t.Fatalf("inventory after the last page: %v, want %v", got, want)
	}
	// Pages out of order: refused, the inventory kept.
	if r := beat(&api.HeartbeatRequest{ReportGen: 4, Page: 0, More: true, Replicas: []*api.ReplicaInfo{info(ch.Handle, ch.Epoch)}}); r.FullReport {
		t.Fatal("a first page was refused")
	}
	if r := beat(&api.HeartbeatRequest{ReportGen: 6, BaseGen: 5, Page: 2, Replicas: []*api.ReplicaInfo{info(903, 1)}}); !r.FullReport || r.LeaseMillis != 0 {
		t.Fatalf("a page that skips one: full_report %v, lease %d", r.FullReport, r.LeaseMillis)
	}
	if got := inv(); !maps.Equal(got, want) {
		t.Fatalf("a refused page changed the inventory: %v", got)
	}
	// A delta on the last accepted page.
	d, err := e.c.Heartbeat(context.Background(), &api.HeartbeatRequest{ServerId: 1, Addr: e.cs[1].addr, ReportGen: 7, BaseGen: 3, Removed: []uint64{901}})
	if err != nil || d.FullReport {
		t.Fatalf("delta on the last page: full_report %v, %v", d.GetFullReport(), err)
	}
	delete(want, 901)
	if got := inv(); !maps.Equal(got, want) {
		t.Fatalf("inventory after the delta: %v, want %v", got, want)
	}
}

// TestStatusFencedMemberShort: a chain member that reports the chunk
// fenced at its current epoch (reloaded by a restart, not rejoined) counts
// as missing from the chain in Status until it rejoins, but the chunk is
// not lost.
func TestStatusFencedMemberShort(t *testing.T) {
	e := newFailureEnv(t, 3)
	ch := e.allocate()
	for id := uint64(1); id <= 3; id++ {
		e.heartbeat(id, [2]uint64{ch.Handle, ch.Epoch})
	}
	if st := e.status(); st.Chunks.UnderReplicated != 0 || st.Chunks.Lost != 0 {
		t.Fatalf("every member serving: %v", st.Chunks)
	}
	beat, _, _ := reportHelpers(t, e, true)
	beat(&api.HeartbeatRequest{ReportGen: 100, Replicas: []*api.ReplicaInfo{{Handle: ch.Handle, Epoch: ch.Epoch, Fenced: true, Verified: true}}})
	if st := e.status(); st.Chunks.UnderReplicated != 1 || st.Chunks.Lost != 0 {
		t.Fatalf("one member fenced at the chunk's epoch: %v, want under-replicated and not lost", st.Chunks)
	}
}

// TestStuckJoinerNamed: catena status names a member that has stayed
// syncing (joined, not caught up) for a minute while its chunk waits.
func TestStuckJoinerNamed(t *testing.T) {
	e, h := newJoinEnv(t)
	catching := &api.ReplicaInfo{Handle: h, Epoch: 3, Verified: true, CatchingUp: true}
	beat := func() {
		e.heartbeat(1, [2]uint64{h, 3})
		e.heartbeat(2, [2]uint64{h, 3})
		e.heartbeatInfo(4, catching)
		e.heartbeat(3)
	}
	beat()
	e.round()
	problems := func() []*api.ChunkProblem { return e.status().Chunks.Problems }
	if p := problems(); len(p) != 0 {
		t.Fatalf("problems right after the join: %v", p)
	}
	for range 7 { // a minute and more, everyone heard from
		e.clk.Advance(10 * time.Second)
		beat()
		e.round()
	}
	p := problems()
	if len(p) != 1 || p[0].Handle != h || !strings.Contains(p[0].Reason, "server 4") || !strings.Contains(p[0].Reason, "has not caught up") {
		t.Fatalf("problems after a minute of syncing: %v", p)
	}
	// Caught up: named no more.
	e.heartbeatInfo(4, &api.ReplicaInfo{Handle: h, Epoch: 3, Verified: true})
	e.round()
	if p := problems(); len(p) != 0 {
		t.Fatalf("problems after the catch-up: %v", p)
	}
}
