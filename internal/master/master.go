package master

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/console"
	"github.com/catena-io/catena/internal/durable"
	"github.com/catena-io/catena/internal/serve"
)

// Raft tuning for fast local start; see DESIGN.md (master).
const (
	raftTimeout       = time.Second
	applyTimeout      = 10 * time.Second
	snapshotThreshold = 8192
	// snapshotInterval is how often Raft checks the threshold; its default
	// (120 s) lets a busy master replay minutes of log after a restart.
	snapshotInterval  = 10 * time.Second
	trailingLogs      = 10240
	snapshotsRetained = 2
)

// Master is a running master: a Raft node plus the gRPC Master service.
type Master struct {
	cfg  Config
	log  *slog.Logger
	fsm  *fsm
	raft *raft.Raft

	logStore  *raftboltdb.BoltStore
	transport *raft.NetworkTransport
	lis       net.Listener
	grpc      *grpc.Server

	// ready is true while this node is leader and has applied every entry
	// committed before its term (a barrier passed).
	ready       atomic.Bool
	notifyCh    chan bool
	leaderReady chan struct{} // closed the first time ready becomes true
	leaderOnce  sync.Once
	stop        chan struct{}
	wg          sync.WaitGroup

	soft *softState
	pool *connPool
	mx   *masterMetrics
	// placements counts the chains this master placed: their heads go
	// round (decide.RotateHead).
	placements atomic.Uint64
	// forks serialises the finishing of each fork (snapshot.go).
	forks        forkLocks
	forksRunning atomic.Bool  // the repair loop's finishForks is under way
	expiring     atomic.Bool  // the repair loop's expireOverlays is under way
	expiredAt    atomic.Int64 // when it last started (unix ns)
	preForks     preForkQueue // volumes whose shared chunks the leader forks ahead (prefork.go)

	events  eventRing      // recent events for the console (events.go)
	console *consoleServer // nil without Config.HTTPAddr (console.go)

	// stopRepair stops the current term's repair loop; nil when none
	// runs. Used by watchLeadership only.
	stopRepair func()
	// repairKick wakes the repair loop before its next tick when a repair
	// ends, so that its slot is used again at once (capacity 1: kicks
	// coalesce).
	repairKick chan struct{}

	// capKeyMu serialises ensureCapabilityKey.
	capKeyMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// Start opens (or bootstraps) the Raft node, waits until it leads, starts
// the gRPC server and returns.
func Start(ctx context.Context, cfg Config) (*Master, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Master{
		cfg: cfg, log: cfg.Logger.With("master", cfg.ID),
		notifyCh: make(chan bool, 8), leaderReady: make(chan struct{}), stop: make(chan struct{}),
		soft: newSoftState(), pool: newConnPool(cfg.Dialer, transportCreds(cfg.TLS, auth.RoleChunkserver)), repairKick: make(chan struct{}, 1),
	}
	m.fsm = newFSM(m.log)
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()

	m.lis = cfg.Listener
	if m.lis == nil {
		if m.lis, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("master: listen: %w", err)
		}
	}
	raftAddr := cfg.RaftAddr
	if raftAddr == "" {
		if raftAddr, err = defaultRaftAddr(m.lis.Addr().String()); err != nil {
			return nil, err
		}
	}
	if cfg.RaftListener != nil {
		raftAddr = cfg.RaftListener.Addr().String()
	}
	m.mx = newMasterMetrics(m, cfg.Metrics)
	if err := m.openRaft(raftAddr); err != nil {
		return nil, err
	}
	m.wg.Add(2)
	go m.watchLeadership()
	go m.registerLoop()

	opts := append(m.mx.rpc.ServerOptions(), serve.Options(maxMsgSize)...)
	if cfg.TLS != nil {
		// The caller's role first (auth.Rules), then its permissions.
		opts = append(opts, cfg.TLS.ServerOptions()...)
		opts = append(opts, grpc.ChainUnaryInterceptor(m.authorize))
	}
	m.grpc = grpc.NewServer(opts...)
	api.RegisterAdminServer(m.grpc, &adminServer{s: &server{m: m}})
	api.RegisterMasterServer(m.grpc, &server{m: m})
	api.RegisterVolumesServer(m.grpc, &volumeServer{s: &server{m: m}})
	api.RegisterFSServer(m.grpc, &fsServer{s: &server{m: m}})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.grpc.Serve(serve.Limit(m.lis, 0)); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			m.log.Error("master: grpc serve", "err", err)
		}
	}()
	if err := m.startConsole(); err != nil {
		return nil, err
	}
	// A sole voter leads at once: return when it serves. A member of a
	// group serves (NOT_LEADER redirects) while the election goes on, and
	// a joining master until it is added.
	if m.soleVoter() {
		select {
		case <-m.leaderReady:
		case <-ctx.Done():
			return nil, fmt.Errorf("master: waiting for leadership: %w", ctx.Err())
		}
	}
	m.log.Info("master started", "addr", m.Addr(), "raft", raftAddr, "peers", m.cfg.Peers)
	ok = true
	return m, nil
}

// soleVoter reports whether this master is the only voter of its Raft
// configuration.
func (m *Master) soleVoter() bool {
	srv := m.raftServers()
	return len(srv) == 1 && srv[0].ID == raft.ServerID(m.cfg.ID) && srv[0].Suffrage == raft.Voter
}

// raftServers is the current Raft configuration (nil when unreadable).
func (m *Master) raftServers() []raft.Server {
	f := m.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}

func (m *Master) openRaft(raftAddr string) error {
	dir, err := makeRaftDirs(m.cfg.Dir)
	if err != nil {
		return err
	}
	hlog := newHCLog(m.log)
	if m.logStore, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")}); err != nil {
		return fmt.Errorf("master: open raft log: %w", err)
	}
	// bolt fsyncs raft.db's data, not its entry in the directory.
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("master: %w", err)
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetained, hlog)
	if err != nil {
		return fmt.Errorf("master: open snapshots: %w", err)
	}
	snaps := &durableSnapshots{FileSnapshotStore: fileSnaps, dir: filepath.Join(dir, raftSnapshotsDir)}
	if m.transport, err = m.newTransport(raftAddr, hlog); err != nil {
		return err
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(m.cfg.ID)
	rc.HeartbeatTimeout = 500 * time.Millisecond
	rc.ElectionTimeout = 500 * time.Millisecond
	rc.LeaderLeaseTimeout = 250 * time.Millisecond
	rc.CommitTimeout = 20 * time.Millisecond
	rc.SnapshotThreshold = snapshotThreshold
	rc.SnapshotInterval = snapshotInterval
	rc.TrailingLogs = trailingLogs
	rc.NotifyCh = m.notifyCh
	rc.Logger = hlog

	exists, err := raft.HasExistingState(m.logStore, m.logStore, snaps)
	if err != nil {
		return fmt.Errorf("master: raft state: %w", err)
	}
	if !exists && !m.cfg.Join {
		conf, err := m.bootConfiguration()
		if err != nil {
			return err
		}
		if err := raft.BootstrapCluster(rc, m.logStore, m.logStore, snaps, m.transport, conf); err != nil {
			return fmt.Errorf("master: bootstrap: %w", err)
		}
	}
	if m.raft, err = raft.NewRaft(rc, m.fsm, m.logStore, m.logStore, snaps, m.transport); err != nil {
		return fmt.Errorf("master: start raft: %w", err)
	}
	return nil
}

// advertiseAddr returns nil (use the bound address) unless the bind host is
// unspecified, which Raft cannot advertise: then loopback.
func advertiseAddr(bind string) (net.Addr, error) {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return nil, fmt.Errorf("%w: raft address %q: %v", ErrConfig, bind, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return nil, nil
	}
	if port == "0" {
		return nil, fmt.Errorf("%w: raft address %q: give a host or a port", ErrConfig, bind)
	}
	return net.ResolveTCPAddr("tcp", net.JoinHostPort("127.0.0.1", port))
}

// watchLeadership tracks Raft leadership. On gaining it, a barrier makes
// sure the FSM holds every earlier committed entry before RPCs are served;
// the soft state of a former term is dropped (it is rebuilt from
// heartbeats).
func (m *Master) watchLeadership() {
	defer m.wg.Done()
	for {
		select {
		case <-m.stop:
			return
		case leader := <-m.notifyCh:
			m.mx.leaderChanges.Inc()
			m.ready.Store(false)
			m.stopRepairLoop()
			if !leader {
				m.log.Info("master: lost leadership")
				m.event(console.EventFollower, "master %s lost leadership", m.cfg.ID)
				continue
			}
			if err := m.raft.Barrier(applyTimeout).Error(); err != nil {
				m.log.Warn("master: barrier after election", "err", err)
				continue
			}
			if m.raft.State() != raft.Leader {
				continue
			}
			if err := m.ensureCapabilityKey(context.Background()); err != nil {
				m.log.Warn("master: capability key", "err", err) // the repair loop retries
			}
			m.soft.reset(m.cfg.Clock.Now())
			m.startRepairLoop()
			m.ready.Store(true)
			m.leaderOnce.Do(func() { close(m.leaderReady) })
			m.log.Info("master: leading")
			m.event(console.EventLeader, "master %s leads", m.cfg.ID)
		}
	}
}

// Addr returns the gRPC address actually bound.
func (m *Master) Addr() string { return m.lis.Addr().String() }

// RaftAddr is the address of this master's Raft transport.
func (m *Master) RaftAddr() string { return string(m.transport.LocalAddr()) }

// IsLeader reports whether this master serves RPCs now.
func (m *Master) IsLeader() bool { return m.ready.Load() && m.raft.State() == raft.Leader }

// leaderAddr returns the leader's gRPC address, "" when unknown.
func (m *Master) leaderAddr() string {
	_, id := m.raft.LeaderWithID()
	return m.masterAddr(id)
}

// Close stops gRPC, shuts Raft down and closes the stores. Safe to call
// more than once.
func (m *Master) Close() error {
	m.closeOnce.Do(func() {
		m.closeConsole()
		var errs []error
		if m.grpc != nil {
			m.grpc.GracefulStop()
		} else if m.lis != nil {
			m.lis.Close()
		}
		if m.raft != nil {
			errs = append(errs, m.raft.Shutdown().Error())
		}
		close(m.stop)
		m.wg.Wait()
		m.stopRepairLoop()
		if m.transport != nil {
			errs = append(errs, m.transport.Close())
		}
		if m.logStore != nil {
			errs = append(errs, m.logStore.Close())
		}
		errs = append(errs, m.pool.close())
		m.closeErr = errors.Join(errs...)
	})
	return m.closeErr
}

// connPool keeps one client connection per chunkserver address.
type connPool struct {
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	dialer func(ctx context.Context, addr string) (net.Conn, error) // nil: grpc's
	creds  grpc.DialOption
}

func newConnPool(dialer func(context.Context, string) (net.Conn, error), creds grpc.DialOption) *connPool {
	return &connPool{conns: map[string]*grpc.ClientConn{}, dialer: dialer, creds: creds}
}

// transportCreds is the dial option of connections to servers of role
// want: mutual TLS with creds, or plain TCP when creds is nil.
func transportCreds(creds *auth.Creds, want auth.Role) grpc.DialOption {
	if creds == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return creds.DialOption(want)
}

func (p *connPool) chunkserver(addr string) (api.ChunkserverClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cc, ok := p.conns[addr]; ok {
		return api.NewChunkserverClient(cc), nil
	}
	// Reconnect to a restarted chunkserver within a repair round or two,
	// not after gRPC's default backoff (1 s growing to 2 minutes).
	bc := backoff.DefaultConfig
	bc.BaseDelay, bc.MaxDelay = 100*time.Millisecond, time.Second
	opts := []grpc.DialOption{p.creds,
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 2 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize))}
	if p.dialer != nil {
		opts = append(opts, grpc.WithContextDialer(p.dialer))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	p.conns[addr] = cc
	return api.NewChunkserverClient(cc), nil
}

func (p *connPool) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for addr, cc := range p.conns {
		errs = append(errs, cc.Close())
		delete(p.conns, addr)
	}
	return errors.Join(errs...)
}

// hclogWriter forwards hashicorp/raft's hclog lines to slog.
type hclogWriter struct{ log *slog.Logger }

func (w hclogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelInfo
	switch {
	case strings.Contains(line, "[ERROR]"):
		level = slog.LevelError
	case strings.Contains(line, "[WARN]"):
		level = slog.LevelWarn
	case strings.Contains(line, "[DEBUG]"), strings.Contains(line, "[TRACE]"):
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, line, "component", "raft")
	return len(p), nil
}

func newHCLog(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.Info, Output: hclogWriter{l}, DisableTime: true,
	})
}
