package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chunkserver"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/durable"
	"github.com/catena-io/catena/internal/master"
)

// Errors returned by the harness.
var (
	// ErrClosed: the cluster was closed.
	ErrClosed = errors.New("cluster: closed")
	// ErrNoSuchChunkserver: the index is outside [0, Chunkservers).
	ErrNoSuchChunkserver = errors.New("cluster: no such chunkserver")
	// ErrStopped: the chunkserver is stopped.
	ErrStopped = errors.New("cluster: chunkserver stopped")
	// ErrRunning: RestartChunkserver on a chunkserver that is running.
	ErrRunning = errors.New("cluster: chunkserver running")
	// ErrNotReady: the cluster did not become ready before the deadline.
	ErrNotReady = errors.New("cluster: not ready")
	// ErrReplicasDiffer: CheckReplicas found a missing or divergent replica.
	ErrReplicasDiffer = errors.New("cluster: replicas differ")
	// ErrMastersDiffer: CheckMetadata found masters whose states differ at
	// one applied index, or that never reached one.
	ErrMastersDiffer = errors.New("cluster: masters' states differ")
)

// Defaults.
const (
	DefaultChunkservers = 3
	DefaultMasterAddr   = "127.0.0.1:0"
	DefaultRaftAddr     = "127.0.0.1:0"
	// DefaultReadyTimeout bounds Start and RestartChunkserver when ctx has
	// no deadline.
	DefaultReadyTimeout = 30 * time.Second
)

// pollInterval is how often the harness asks the master for its Status
// while waiting for a condition.
const pollInterval = 10 * time.Millisecond

// Config configures a Cluster.
type Config struct {
	// Dir holds all data: Dir/master, Dir/cs1, Dir/cs2, ... Required.
	Dir string
	// Chunkservers is the number of chunkservers (default 3).
	Chunkservers int
	// Masters is the number of master voters, 1, 3 or 5 (default 1). With
	// more than one, MasterAddr and RaftAddr are ignored: every master
	// listens on a loopback port of its own, Raft goes through the Network
	// and masters are named MasterNodeName(i) on it.
	Masters int
	// MasterAddr is the master's gRPC listen address (default 127.0.0.1:0).
	MasterAddr string
	// RaftAddr is the master's Raft address (default 127.0.0.1:0).
	RaftAddr string
	// MasterHTTPAddr, when set, is where the first master serves its web
	// console (master.Config.HTTPAddr); the others, with Masters > 1,
	// serve theirs on a free port of the same host. Each keeps its
	// address across restarts. "": no console.
	MasterHTTPAddr string
	// Labels returns the labels of chunkserver i (zero-based); optional.
	Labels func(i int) map[string]string
	// Capacity returns the capacity chunkserver i offers
	// (chunkserver.Config.Capacity); optional.
	Capacity func(i int) int64
	// RebalanceConcurrency is the master's (0: its default; negative:
	// no rebalancing).
	RebalanceConcurrency int
	// HeartbeatInterval of the chunkservers; 0 = the chunkserver default.
	HeartbeatInterval time.Duration
	// DeadAfter is the master's chunkserver liveness timeout when larger
	// than Lease + DriftMargin; 0 = Lease + DriftMargin.
	DeadAfter time.Duration
	// Lease is how long a heartbeat lets a chunkserver serve client I/O;
	// 0 = the master default.
	Lease time.Duration
	// DriftMargin is added to Lease before the master declares a silent
	// chunkserver dead; 0 = the master default.
	DriftMargin time.Duration
	// RepairInterval is the period of the master's repair loop; 0 = the
	// master default.
	RepairInterval time.Duration
	// RepairConcurrency bounds the repairs in flight; 0 = the master
	// default.
	RepairConcurrency int
	// RepairBytesPerSec limits each repair's copy; 0 = the master default,
	// negative = no limit.
	RepairBytesPerSec int64
	// ScrubInterval is the chunkservers' pause between scrub passes; 0 =
	// their default, negative disables scrubbing.
	ScrubInterval time.Duration
	// ScrubBytesPerSec bounds each chunkserver's scrubber; 0 = their
	// default.
	ScrubBytesPerSec int64
	// ColdAfter is how long a chunkserver's replica stays unused before
	// it is made cold (chunkserver.Config.ColdAfter); 0 = their default.
	ColdAfter time.Duration
	// ReportPage is how many replicas a page of a chunkserver's full
	// report carries (chunkserver.Config.ReportPage); 0 = their default.
	ReportPage int
	// Logger receives the logs of every process; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, receives every process's Prometheus collectors,
	// each labelled node="m1", "cs1", ... (catena dev --metrics-listen).
	Metrics prometheus.Registerer
	// MemDisks keeps each chunkserver's data on an in-memory disk
	// (chunkstore.MemFS), so that PowerCut can drop what was not synced.
	MemDisks bool
	// Insecure runs the cluster over plain TCP. By default every
	// connection is mutual TLS: a CA in Dir/tls/ca, and certificates for
	// the masters, the chunkservers and the clients (admin role: TLSDir)
	// issued from it, or those an earlier start made.
	Insecure bool
}

func (cfg Config) withDefaults() Config {
	if cfg.Chunkservers <= 0 {
		cfg.Chunkservers = DefaultChunkservers
	}
	if cfg.Masters <= 0 {
		cfg.Masters = 1
	}
	if cfg.MasterAddr == "" {
		cfg.MasterAddr = DefaultMasterAddr
	}
	if cfg.RaftAddr == "" {
		cfg.RaftAddr = DefaultRaftAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Cluster is a running in-process cluster. Safe for concurrent use.
type Cluster struct {
	cfg Config
	log *slog.Logger

	net *Network
	tls *clusterTLS // nil: plain TCP

	mu      sync.Mutex
	closed  bool
	masters []*mNode // masters.go
	servers []*csNode
	// opened: stores of stopped chunkservers opened by checks and fault
	// injection (storeOf), closed before their server starts again.
	opened map[uint64]*chunkstore.Store
}

// csNode is one chunkserver slot; srv is nil while stopped.
type csNode struct {
	name string // on the Network: cs1, cs2, ...
	dir  string
	addr string // last bound address, reused on restart
	id   uint64
	srv  *chunkserver.Server
	disk *diskFaults
}

// Start starts the master and the chunkservers and returns once the master
// leads and every chunkserver is registered and alive.
func Start(ctx context.Context, cfg Config) (_ *Cluster, err error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("cluster: Config.Dir is required")
	}
	cfg = cfg.withDefaults()
	c := &Cluster{cfg: cfg, log: cfg.Logger, net: NewNetwork()}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	ctx, cancel := withReadyTimeout(ctx)
	defer cancel()
	if !cfg.Insecure {
		if c.tls, err = newClusterTLS(filepath.Join(cfg.Dir, "tls")); err != nil {
			return nil, err
		}
	}

	if err := c.startMasters(ctx); err != nil {
		return nil, err
	}

	start := time.Now()
	for i := 0; i < cfg.Chunkservers; i++ {
		n := c.newSlot(i)
		c.servers = append(c.servers, n)
		if err := c.startChunkserver(ctx, i, n); err != nil {
			return nil, err
		}
	}
	for i := range c.servers {
		if err := c.awaitAlive(ctx, i, start); err != nil {
			return nil, err
		}
	}
	c.log.Info("cluster ready", "masters", c.MasterAddrs(), "chunkservers", cfg.Chunkservers, "dir", cfg.Dir)
	return c, nil
}

// newSlot is chunkserver slot i, not started.
func (c *Cluster) newSlot(i int) *csNode {
	n := &csNode{
		name: chunkserverNode(i),
		dir:  filepath.Join(c.cfg.Dir, fmt.Sprintf("cs%d", i+1)),
		disk: &diskFaults{},
	}
	if c.cfg.MemDisks {
		n.disk.mem.Store(chunkstore.NewMemFS())
	}
	return n
}

// AddChunkserver starts one more chunkserver, a new one on an empty
// directory, and returns its index once the master sees it alive.
func (c *Cluster) AddChunkserver(ctx context.Context) (int, error) {
	ctx, cancel := withReadyTimeout(ctx)
	defer cancel()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	i := len(c.servers)
	n := c.newSlot(i)
	c.servers = append(c.servers, n)
	c.cfg.Chunkservers++
	start := time.Now()
	err := c.startChunkserver(ctx, i, n)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return i, c.awaitAlive(ctx, i, start)
}

func withReadyTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, DefaultReadyTimeout)
}

// startChunkserver starts slot i, on its previous address when it had one
// and that address is still free.
func (c *Cluster) startChunkserver(ctx context.Context, i int, n *csNode) error {
	if err := durable.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	addr := "127.0.0.1:0"
	if n.addr != "" {
		addr = n.addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil && n.addr != "" {
		// The old port was taken meanwhile; the master learns the new
		// address from the registration.
		c.log.Warn("chunkserver address taken, using a new one", "addr", n.addr, "err", err)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("cluster: chunkserver %d: listen: %w", i, err)
	}
	// Register before serving: peers may dial it as soon as it heartbeats.
	c.net.Register(ln.Addr().String(), n.name)
	if st := c.opened[n.id]; st != nil {
		st.Close() // one Store per directory at a time
		delete(c.opened, n.id)
	}
	srv, err := chunkserver.Start(ctx, c.chunkserverConfig(i, n, ln))
	if err != nil {
		ln.Close()
		return fmt.Errorf("cluster: start chunkserver %d: %w", i, err)
	}
	n.srv, n.addr, n.id = srv, srv.Addr(), srv.ID()
	c.net.Register(n.addr, n.name)
	return nil
}

// awaitAlive polls the master's Status until chunkserver i is listed alive
// at its current address with a heartbeat newer than since.
func (c *Cluster) awaitAlive(ctx context.Context, i int, since time.Time) error {
	c.mu.Lock()
	n := c.servers[i]
	id, addr := n.id, n.addr
	c.mu.Unlock()
	return c.poll(ctx, fmt.Sprintf("chunkserver %d (id %d) alive", i, id), func(st *api.StatusResponse) bool {
		for _, cs := range st.GetChunkservers() {
			if cs.GetId() == id && cs.GetAlive() && cs.GetAddr() == addr &&
				cs.GetLastHeartbeatUnixNano() >= since.UnixNano() {
				return true
			}
		}
		return false
	})
}

// poll calls the master's Status until cond holds or ctx is done.
func (c *Cluster) poll(ctx context.Context, what string, cond func(*api.StatusResponse) bool) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var last error
	for {
		st, err := c.Status(ctx)
		if err == nil && cond(st) {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w: waiting for %s: %w (last status error: %v)", ErrNotReady, what, ctx.Err(), last)
			}
			return fmt.Errorf("%w: waiting for %s: %w", ErrNotReady, what, ctx.Err())
		case <-t.C:
		}
	}
}

// MasterAddr returns the gRPC address of master 0.
func (c *Cluster) MasterAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.masters) == 0 {
		return ""
	}
	return c.masters[0].addr
}

// TLSDir is the TLS directory of an admin client of the cluster ("" when
// it runs without TLS).
func (c *Cluster) TLSDir() string {
	if c.tls == nil {
		return ""
	}
	return c.tls.clientDir
}

// DialOption is the transport of a connection, as an admin client, to a
// server of role want (a master or a chunkserver): mutual TLS, or plain
// TCP for an insecure cluster.
func (c *Cluster) DialOption(want auth.Role) grpc.DialOption { return c.tls.dialOption(want) }

// Dir returns the cluster's data directory.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// Config returns the configuration the cluster runs with (defaults filled).
func (c *Cluster) Config() Config { return c.cfg }

// Master returns the leading master process, else master 0 (nil while
// stopped).
func (c *Cluster) Master() *master.Master {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.masters {
		if n.m != nil && n.m.IsLeader() {
			return n.m
		}
	}
	if len(c.masters) == 0 {
		return nil
	}
	return c.masters[0].m
}

// NewClient returns a client of this cluster; the caller closes it.
func (c *Cluster) NewClient() (*client.Client, error) {
	return c.NewClientConfig(client.Config{})
}

// NewClientConfig returns a client of this cluster configured by cfg, with
// Masters set to the cluster's master and, unless cfg has its own, a
// Dialer on the Network as ClientNode; the caller closes it.
func (c *Cluster) NewClientConfig(cfg client.Config) (*client.Client, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	cfg.Masters = c.MasterAddrs()
	if cfg.Logger == nil {
		cfg.Logger = c.log.With("proc", "client")
	}
	if cfg.Dialer == nil {
		cfg.Dialer = c.net.Dialer(ClientNode)
	}
	if cfg.TLSDir == "" && c.tls != nil {
		cfg.TLSDir = c.tls.clientDir
	}
	return client.New(cfg)
}

// NumChunkservers returns the number of chunkserver slots.
func (c *Cluster) NumChunkservers() int { return c.cfg.Chunkservers }

// Chunkserver returns chunkserver i (zero-based), nil while it is stopped or
// when i is out of range.
func (c *Cluster) Chunkserver(i int) *chunkserver.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.servers) {
		return nil
	}
	return c.servers[i].srv
}

// ChunkserverID returns the server id of chunkserver i, kept across
// restarts; 0 when i is out of range.
func (c *Cluster) ChunkserverID(i int) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.servers) {
		return 0
	}
	return c.servers[i].id
}

// ChunkserverDir returns the data directory of chunkserver i (Dir/cs<i+1>).
func (c *Cluster) ChunkserverDir(i int) string {
	return filepath.Join(c.cfg.Dir, fmt.Sprintf("cs%d", i+1))
}

// DiskBytes is the space every chunkserver's data directory takes on
// disk (allocated blocks, so holes count nothing); tests measure what a
// write, a trim or a detach costs or frees with it.
func (c *Cluster) DiskBytes() int64 {
	var total int64
	for i := range c.NumChunkservers() {
		filepath.WalkDir(c.ChunkserverDir(i), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			var st syscall.Stat_t
			if syscall.Stat(p, &st) == nil {
				total += st.Blocks * 512
			}
			return nil
		})
	}
	return total
}

// StopChunkserver stops chunkserver i cleanly. Its data stays on disk.
func (c *Cluster) StopChunkserver(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.slotLocked(i)
	if err != nil {
		return err
	}
	if n.srv == nil {
		return fmt.Errorf("chunkserver %d: %w", i, ErrStopped)
	}
	err = n.srv.Close()
	n.srv = nil
	if err != nil {
		return fmt.Errorf("cluster: stop chunkserver %d: %w", i, err)
	}
	return nil
}

// RestartChunkserver starts the stopped chunkserver i again on the same
// directory (hence the same id) and returns once the master sees it alive.
func (c *Cluster) RestartChunkserver(ctx context.Context, i int) error {
	ctx, cancel := withReadyTimeout(ctx)
	defer cancel()
	c.mu.Lock()
	n, err := c.slotLocked(i)
	if err == nil && n.srv != nil {
		err = fmt.Errorf("chunkserver %d: %w", i, ErrRunning)
	}
	if err != nil {
		c.mu.Unlock()
		return err
	}
	start := time.Now()
	err = c.startChunkserver(ctx, i, n)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.awaitAlive(ctx, i, start)
}

func (c *Cluster) slotLocked(i int) (*csNode, error) {
	if c.closed {
		return nil, ErrClosed
	}
	if i < 0 || i >= len(c.servers) {
		return nil, fmt.Errorf("%w: %d", ErrNoSuchChunkserver, i)
	}
	return c.servers[i], nil
}

// Close stops every chunkserver, then the master. Idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for i, n := range c.servers {
		if n.srv == nil {
			continue
		}
		if err := n.srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("chunkserver %d: %w", i, err))
		}
		n.srv = nil
	}
	errs = append(errs, c.closeMastersLocked()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: close: %w", err)
	}
	return nil
}
