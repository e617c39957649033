package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/console"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
	"github.com/catena-io/catena/internal/serve"
)

// Metadata keys of a mutating call's request id; the client library sets
// them once per operation and keeps them across retries.
const (
	MDClientID  = "catena-client-id"
	MDRequestID = "catena-request-id"
)

// registerInterval is how often a master whose gRPC address is not yet in
// the replicated state tries to record it.
const registerInterval = 200 * time.Millisecond

// ParsePeers parses "id=raftaddr,..." into id -> Raft address.
func ParsePeers(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		id, addr, ok := strings.Cut(p, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("%w: peer %q: want id=raftaddr", ErrConfig, p)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%w: peer %q: %v", ErrConfig, p, err)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("%w: peer id %q twice", ErrConfig, id)
		}
		out[id] = addr
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty peers", ErrConfig)
	}
	return out, nil
}

// bootConfiguration is the first Raft configuration: every peer, or this
// master alone.
func (m *Master) bootConfiguration() (raft.Configuration, error) {
	if m.cfg.Peers == "" {
		return raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: raft.ServerID(m.cfg.ID), Address: m.transport.LocalAddr(),
		}}}, nil
	}
	peers, err := ParsePeers(m.cfg.Peers)
	if err != nil {
		return raft.Configuration{}, err
	}
	var conf raft.Configuration
	// Peers' addresses as given, ours too: every voter boots the same
	// configuration, and a name survives a change of IP.
	for id, addr := range peers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(addr)})
	}
	sort.Slice(conf.Servers, func(i, j int) bool { return conf.Servers[i].ID < conf.Servers[j].ID })
	return conf, nil
}

// newTransport opens the Raft transport: over Config.RaftListener (else a
// TCP listener on raftAddr) and RaftDialer (else TCP), at most
// raftMaxConns connections at once, each ended after raftIdle without a
// byte (serve.Limit, serve.Idle): a peer that connects and stays silent
// holds no slot for ever.
func (m *Master) newTransport(raftAddr string, hlog hclog.Logger) (*raft.NetworkTransport, error) {
	ln := m.cfg.RaftListener
	var adv net.Addr
	if ln == nil {
		var err error
		if m.cfg.RaftDialer == nil {
			if adv, err = advertiseAddr(raftAddr); err != nil {
				return nil, err
			}
		}
		if ln, err = net.Listen("tcp", raftAddr); err != nil {
			return nil, fmt.Errorf("master: raft listen: %w", err)
		}
	}
	if adv == nil {
		adv = ln.Addr()
	}
	if tcp, ok := adv.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("%w: raft address %s is not one peers can reach: give a host", ErrConfig, adv)
	}
	bounded := serve.Idle(serve.Limit(ln, raftMaxConns), raftIdle)
	if creds := m.cfg.TLS; creds != nil {
		bounded = creds.Listener(bounded, auth.RoleMaster) // only masters speak Raft
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{Listener: bounded, addr: adv, dial: m.dialRaft},
		MaxPool: 3, Timeout: raftTimeout, Logger: hlog,
	}), nil
}

const (
	// raftMaxConns bounds the Raft listener's connections (each peer
	// pools three).
	raftMaxConns = 256
	// raftIdle ends a Raft connection that received nothing for that long
	// (a leader sends to each follower several times a second).
	raftIdle = 15 * time.Minute
)

// streamLayer is a raft.StreamLayer over a listener and a dial function,
// advertised at addr.
type streamLayer struct {
	net.Listener
	addr net.Addr
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Addr() net.Addr { return s.addr }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dial(ctx, string(addr))
}

// advertised is the gRPC address this master is reached at.
func (m *Master) advertised() string {
	if m.cfg.AdvertiseAddr != "" {
		return m.cfg.AdvertiseAddr
	}
	return m.Addr()
}

// masterAddr returns master id's gRPC address: ours, or the one recorded
// in the replicated state; "" when unknown.
func (m *Master) masterAddr(id raft.ServerID) string {
	if id == "" {
		return ""
	}
	if string(id) == m.cfg.ID {
		return m.advertised()
	}
	var addr string
	m.fsm.view(func(st *meta.State) { addr = st.MasterAddr(string(id)) })
	return addr
}

// verifyLeader confirms with a quorum that we still lead (read-index):
// a leader cut off from the majority fails here within its lease instead
// of answering from state a new leader may already have changed.
func (m *Master) verifyLeader() bool {
	return m.raft.VerifyLeader().Error() == nil
}

// registerLoop records this master's gRPC address in the replicated state,
// through Raft when leading, else by asking the leader, until it is there.
func (m *Master) registerLoop() {
	defer m.wg.Done()
	t := m.cfg.Clock.NewTicker(registerInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C():
		}
		var have string
		m.fsm.view(func(st *meta.State) { have = st.MasterAddr(m.cfg.ID) })
		if have == m.advertised() {
			continue
		}
		if err := m.registerSelf(); err != nil {
			m.log.Debug("master: recording gRPC address", "err", err)
		}
	}
}

func (m *Master) registerSelf() error {
	cmd := meta.SetMaster{ID: m.cfg.ID, Addr: m.advertised()}
	if m.IsLeader() {
		b, err := meta.Encode(cmd)
		if err != nil {
			return err
		}
		return m.raft.Apply(b, applyTimeout).Error()
	}
	leader := m.leaderAddr()
	if leader == "" {
		return fmt.Errorf("no known leader")
	}
	cc, err := m.dialMaster(leader)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), raftTimeout)
	defer cancel()
	_, err = api.NewAdminClient(cc).RegisterMaster(ctx, &api.RegisterMasterRequest{Id: cmd.ID, Addr: cmd.Addr})
	return err
}

// requestID returns the (client id, request id) a client sent with a
// mutating call; zeros when absent.
func requestID(ctx context.Context) (client, seq uint64) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return 0, 0
	}
	get := func(k string) uint64 {
		if v := md.Get(k); len(v) == 1 {
			n, _ := strconv.ParseUint(v[0], 10, 64)
			return n
		}
		return 0
	}
	client, seq = get(MDClientID), get(MDRequestID)
	if client == 0 || seq == 0 {
		return 0, 0
	}
	return client, seq
}

// proposeOnce is propose for a command that a client may retry: with the
// client's request id it is applied at most once, and a retry gets the
// first attempt's result. Only for handlers that propose one command.
func (s *server) proposeOnce(ctx context.Context, c meta.Command) (meta.Result, error) {
	c = guarded(ctx, c) // inside the Request: a retry of a command that applied is answered, not checked again
	if client, seq := requestID(ctx); client != 0 {
		c = meta.Request{Client: client, Seq: seq, Time: s.now(), Cmd: c}
	}
	return s.propose(context.WithValue(ctx, guardKey{}, (*guard)(nil)), c)
}

// gcAllowed reports whether a heartbeat of server id may carry deletions.
// A new leader learns replica locations from heartbeats, and the previous
// leader may have had repairs in flight it cannot know: it deletes nothing
// until every lease the old leader granted has run out and the server has
// heartbeated to it once before.
func (m *Master) gcAllowed(id uint64, now time.Time) bool {
	m.soft.mu.Lock()
	since := m.soft.leaderSince
	_, heard := m.soft.servers[id]
	m.soft.mu.Unlock()
	return heard && !now.Before(since.Add(m.cfg.deadAfter()))
}

// adminServer implements api.AdminServer: membership of the master group.
type adminServer struct {
	api.UnimplementedAdminServer
	s *server
}

var _ api.AdminServer = (*adminServer)(nil)

func (a *adminServer) AddMaster(ctx context.Context, req *api.AddMasterRequest) (*api.AddMasterResponse, error) {
	if err := a.s.checkLeader(); err != nil {
		return nil, err
	}
	if req.Id == "" || req.RaftAddr == "" {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "add master: id and raft_addr are required")
	}
	// A voter nobody can reach would count in every quorum and never
	// answer: with one more such, the group could commit nothing, and
	// could not even remove it. Refuse it until it answers.
	if err := a.s.m.probeRaft(ctx, req.RaftAddr); err != nil {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "add master %s: its Raft address %s does not answer (%v): start it first", req.Id, req.RaftAddr, err)
	}
	if req.Addr != "" {
		if _, err := a.s.propose(ctx, meta.SetMaster{ID: req.Id, Addr: req.Addr}); err != nil {
			return nil, err
		}
	}
	m := a.s.m
	if m.isVoter(req.Id) {
		// Already a voter: at most a new address.
		if err := m.raft.AddVoter(raft.ServerID(req.Id), raft.ServerAddress(req.RaftAddr), 0, applyTimeout).Error(); err != nil {
			return nil, raftErr(m, err)
		}
		return &api.AddMasterResponse{}, nil
	}
	// A learner first (etcd's): it receives the log but counts in no
	// quorum, so a slow or broken newcomer costs the group nothing; it
	// becomes a voter only once it has caught up.
	f := m.raft.AddNonvoter(raft.ServerID(req.Id), raft.ServerAddress(req.RaftAddr), 0, applyTimeout)
	if err := f.Error(); err != nil {
		return nil, raftErr(m, err)
	}
	m.log.Info("master: learner added", "id", req.Id, "raft", req.RaftAddr)
	if err := m.awaitCatchUp(ctx, req.Id, f.Index()); err != nil {
		if rerr := m.raft.RemoveServer(raft.ServerID(req.Id), 0, applyTimeout).Error(); rerr != nil {
			m.log.Warn("master: removing a learner that did not catch up", "id", req.Id, "err", rerr)
		}
		return nil, rpcerr.New(api.ErrorCode_UNAVAILABLE, "add master %s: it did not catch up with the group's log (%v), so it was removed again: is it running with --join, and can it reach the other masters' Raft ports?", req.Id, err)
	}
	if err := m.raft.AddVoter(raft.ServerID(req.Id), raft.ServerAddress(req.RaftAddr), 0, applyTimeout).Error(); err != nil {
		return nil, raftErr(m, err)
	}
	m.log.Info("master: voter added", "id", req.Id, "raft", req.RaftAddr)
	return &api.AddMasterResponse{}, nil
}

// awaitCatchUp waits until master id has applied the log up to index
// (its own addition), asking it (Admin/Progress) at the gRPC address it
// registers, by ctx and Config.CatchUpTimeout.
func (m *Master) awaitCatchUp(ctx context.Context, id string, index uint64) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.CatchUpTimeout)
	defer cancel()
	// Real time, as the bound: a poll of another process.
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	last := "no answer yet"
	for {
		var addr string
		m.fsm.view(func(st *meta.State) { addr = st.MasterAddr(id) })
		if addr == "" {
			last = "its gRPC address is not registered yet"
		} else if applied, err := m.progress(ctx, addr); err != nil {
			last = err.Error()
		} else if applied >= index {
			return nil
		} else {
			last = fmt.Sprintf("applied %d of %d", applied, index)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last: %s", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// dialMaster connects to another master's gRPC address (the caller
// closes it), proving this master's certificate.
func (m *Master) dialMaster(addr string) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{transportCreds(m.cfg.TLS, auth.RoleMaster)}
	if m.cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(m.cfg.Dialer))
	}
	return grpc.NewClient(addr, opts...)
}

// progress asks the master at addr how far it applied its log.
func (m *Master) progress(ctx context.Context, addr string) (uint64, error) {
	cc, err := m.dialMaster(addr)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, raftTimeout)
	defer cancel()
	resp, err := api.NewAdminClient(cc).Progress(ctx, &api.ProgressRequest{})
	if err != nil {
		return 0, err
	}
	return resp.AppliedIndex, nil
}

// isVoter reports whether id is a voter of the current configuration.
func (m *Master) isVoter(id string) bool {
	for _, s := range m.raftServers() {
		if string(s.ID) == id {
			return s.Suffrage == raft.Voter
		}
	}
	return false
}

// Progress answers, leader or not, how far this master applied its log.
func (a *adminServer) Progress(ctx context.Context, req *api.ProgressRequest) (*api.ProgressResponse, error) {
	return &api.ProgressResponse{Id: a.s.m.cfg.ID, AppliedIndex: a.s.m.raft.AppliedIndex()}, nil
}

// probeRaft checks that a master's Raft transport answers at addr: a
// connection, and with TLS a handshake proving a master certificate.
func (m *Master) probeRaft(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, raftProbeTimeout)
	defer cancel()
	conn, err := m.dialRaft(ctx, addr)
	if err != nil {
		return err
	}
	return conn.Close()
}

// dialRaft opens a connection to another master's Raft transport:
// Config.RaftDialer (else TCP), and with TLS a handshake that proves a
// master certificate, by ctx's deadline (else raftTimeout).
func (m *Master) dialRaft(ctx context.Context, addr string) (net.Conn, error) {
	var conn net.Conn
	var err error
	if m.cfg.RaftDialer != nil {
		conn, err = m.cfg.RaftDialer(ctx, addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil || m.cfg.TLS == nil {
		return conn, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(raftTimeout)
	}
	return m.cfg.TLS.Client(conn, deadline, auth.RoleMaster)
}

// raftProbeTimeout bounds probeRaft.
const raftProbeTimeout = 3 * time.Second

func (a *adminServer) DrainChunkserver(ctx context.Context, req *api.DrainChunkserverRequest) (*api.DrainChunkserverResponse, error) {
	if err := a.s.checkLeader(); err != nil {
		return nil, err
	}
	if _, err := a.s.propose(ctx, meta.SetDraining{Server: req.Id, Draining: !req.Stop}); err != nil {
		return nil, err
	}
	a.s.m.drainEvent(req.Id, req.Stop)
	a.s.m.kickRepair()
	return &api.DrainChunkserverResponse{}, nil
}

func (a *adminServer) RemoveChunkserver(ctx context.Context, req *api.RemoveChunkserverRequest) (*api.RemoveChunkserverResponse, error) {
	if err := a.s.checkLeader(); err != nil {
		return nil, err
	}
	m := a.s.m
	switch m.soft.liveness(req.Id, m.cfg.Clock.Now(), m.cfg.deadAfter()) {
	case decide.Alive:
		return nil, rpcerr.New(api.ErrorCode_INVALID, "chunkserver %d is alive: stop it first (a removed server that comes back registers again, as a new one)", req.Id)
	case decide.Unknown:
		return nil, rpcerr.New(api.ErrorCode_UNAVAILABLE, "chunkserver %d: this master took office less than %s ago and cannot tell yet whether it is stopped", req.Id, m.cfg.deadAfter())
	}
	var chains uint64
	m.fsm.view(func(st *meta.State) {
		for _, ch := range st.Chunks() {
			if slices.Contains(ch.Chain, req.Id) {
				chains++
			}
		}
	})
	if _, err := a.s.propose(ctx, meta.RemoveServer{Server: req.Id, Force: req.Force}); err != nil {
		return nil, err
	}
	m.log.Info("master: chunkserver removed", "id", req.Id, "chains", chains, "force", req.Force)
	m.event(console.EventRemoved, "chunkserver %d removed from %d chains (force %v)", req.Id, chains, req.Force)
	m.kickRepair()
	return &api.RemoveChunkserverResponse{Chains: chains}, nil
}

func (a *adminServer) Rebalance(ctx context.Context, req *api.RebalanceRequest) (*api.RebalanceResponse, error) {
	if err := a.s.checkLeader(); err != nil {
		return nil, err
	}
	m := a.s.m
	if req.Kick {
		m.kickRepair()
	}
	var chunks []meta.Chunk
	var servers []meta.Server
	m.fsm.view(func(st *meta.State) { chunks, servers = st.Chunks(), st.Servers() })
	ids := make([]uint64, 0, len(servers))
	for _, sv := range servers {
		ids = append(ids, sv.ID)
	}
	b := decide.Measure(m.rebalanceInput(chunks, servers, m.soft.snapshotServers(ids, m.cfg.Clock.Now(), m.cfg.deadAfter())))
	resp := &api.RebalanceResponse{Mean: b.Mean, Tolerance: m.cfg.RebalanceTolerance, MinSpread: decide.RebalanceMinSpread,
		Balanced: b.Balanced, Enabled: m.cfg.RebalanceConcurrency > 0}
	for _, sv := range servers {
		if l, ok := b.Load[sv.ID]; ok {
			resp.Servers = append(resp.Servers, &api.RebalanceResponse_Server{Id: sv.ID, Name: sv.Name, Addr: sv.Addr, LoadBytes: l,
				CapacityBytes: b.Capacity[sv.ID], Fraction: b.Fraction[sv.ID]})
		}
	}
	resp.MovesInFlight, resp.MovesDone, resp.MovedBytes = m.soft.moveStats()
	return resp, nil
}

func (a *adminServer) RemoveMaster(ctx context.Context, req *api.RemoveMasterRequest) (*api.RemoveMasterResponse, error) {
	if err := a.s.checkLeader(); err != nil {
		return nil, err
	}
	if req.Id == "" {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "remove master: id is required")
	}
	// Forget the address first: once we remove ourselves we cannot propose.
	if _, err := a.s.propose(ctx, meta.SetMaster{ID: req.Id}); err != nil {
		return nil, err
	}
	if err := a.s.m.raft.RemoveServer(raft.ServerID(req.Id), 0, applyTimeout).Error(); err != nil {
		return nil, raftErr(a.s.m, err)
	}
	a.s.m.log.Info("master: voter removed", "id", req.Id)
	return &api.RemoveMasterResponse{}, nil
}

func (a *adminServer) ListMasters(ctx context.Context, req *api.ListMastersRequest) (*api.ListMastersResponse, error) {
	if err := a.s.checkLeader(); err != nil {
		return nil, err
	}
	f := a.s.m.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, raftErr(a.s.m, err)
	}
	_, leader := a.s.m.raft.LeaderWithID()
	resp := &api.ListMastersResponse{}
	for _, srv := range f.Configuration().Servers {
		resp.Masters = append(resp.Masters, &api.MasterMember{
			Id: string(srv.ID), RaftAddr: string(srv.Address), Addr: a.s.m.masterAddr(srv.ID),
			Leader: srv.ID == leader, Voter: srv.Suffrage == raft.Voter,
		})
	}
	return resp, nil
}

func (a *adminServer) RegisterMaster(ctx context.Context, req *api.RegisterMasterRequest) (*api.RegisterMasterResponse, error) {
	if err := a.s.checkLeader(); err != nil {
		return nil, err
	}
	if req.Id == "" || req.Addr == "" {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "register master: id and addr are required")
	}
	if a.s.m.masterAddr(raft.ServerID(req.Id)) == req.Addr {
		return &api.RegisterMasterResponse{}, nil
	}
	if _, err := a.s.propose(ctx, meta.SetMaster{ID: req.Id, Addr: req.Addr}); err != nil {
		return nil, err
	}
	return &api.RegisterMasterResponse{}, nil
}

func raftErr(m *Master, err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return rpcerr.NotLeader(m.leaderAddr())
	}
	return rpcerr.New(api.ErrorCode_UNAVAILABLE, "raft: %v", err)
}

// AppliedIndex returns the index of the last Raft entry in this master's
// state.
func (m *Master) AppliedIndex() uint64 {
	m.fsm.mu.RLock()
	defer m.fsm.mu.RUnlock()
	return m.fsm.applied
}

// Snapshot encodes this master's replicated state (meta.State.Checkpoint):
// tests compare masters with it.
func (m *Master) Snapshot() ([]byte, error) {
	_, b, err := m.fsm.checkpoint()
	return b, err
}

// StateAt returns this master's replicated state (as Snapshot) and the
// index of the last Raft entry in it, read together.
func (m *Master) StateAt() (uint64, []byte, error) { return m.fsm.checkpoint() }
