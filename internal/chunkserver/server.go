package chunkserver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/durable"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/serve"
)

// Defaults.
const (
	DefaultListenAddr        = "127.0.0.1:0"
	DefaultHeartbeatInterval = 250 * time.Millisecond
	DefaultScrubBytesPerSec  = 16 << 20
	DefaultScrubInterval     = time.Hour
	DefaultUpdateLogLen      = 16384

	serverIDFile = "server-id"
	maxChunkSize = 1 << 30
	maxReadSize  = 64 << 20
)

// Config configures a chunkserver.
type Config struct {
	// Dir holds the server id (Dir/server-id) and the replica store.
	Dir string
	// ListenAddr is the gRPC address (default "127.0.0.1:0").
	ListenAddr string
	// Listener, when set, is used instead of listening on ListenAddr; Close
	// closes it.
	Listener net.Listener
	// Masters lists master gRPC addresses; the server follows NOT_LEADER
	// redirects and tries each in turn.
	Masters []string
	// Labels are reported at registration (failure domains).
	Labels map[string]string
	// Name is the server's human name, unique in the cluster
	// (meta.ValidServerName; default DefaultName of the host and Dir).
	Name string
	// Capacity, when positive, is the space the server offers the
	// cluster, if its disk has less it is the disk's: the capacity and
	// free space it reports (the master places chunks and rebalances by
	// them). It is no quota: writes to chunks it holds are limited by the
	// disk alone.
	Capacity int64
	// HeartbeatInterval is the heartbeat period (default 250ms). Each
	// answered heartbeat renews the lease (HeartbeatResponse.lease_millis
	// from the time it was sent); client I/O is served only under a lease.
	HeartbeatInterval time.Duration
	// ScrubBytesPerSec bounds the background checksum scrubber (default
	// 16 MiB/s); ScrubInterval is the pause between two full passes
	// (default 1h). A negative ScrubInterval disables the scrubber.
	ScrubBytesPerSec int64
	ScrubInterval    time.Duration
	// UpdateLogLen is how many recent updates (epoch, seq, range) each
	// replica remembers for delta resync (default 16384).
	UpdateLogLen int
	// Dialer, when set, makes every outbound connection (peers, masters,
	// Fetch); the fault-injection harness wraps the network with it.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// TLS, when set, makes every listener and connection mutual TLS with
	// these credentials (a chunkserver certificate), and checks each
	// call's role (auth.Rules); nil: plain TCP, anyone may call anything.
	TLS *auth.Creds
	// FS is the replica store's file system (nil = chunkstore.OSFS).
	FS chunkstore.FS
	// MaxOpenFiles bounds the replica files the store keeps open (0 =
	// chunkstore.DefaultMaxOpenFiles); the others are reopened on demand.
	MaxOpenFiles int
	// ColdAfter is how long a replica stays unused and quiescent before
	// its chain node is dropped and only the store remembers it (default
	// DefaultColdAfter; see cold.go). A client retry older than that may
	// be applied again. Negative: never.
	ColdAfter time.Duration
	// ReportPage is how many replicas each page of a full report carries,
	// to a master that takes pages (default 50,000; see report.go).
	ReportPage int
	// WriteMemory bounds the bytes of client write data the server holds
	// at once, waiting for their chains (default 256 MiB, at least the
	// largest message): a write that finds no room within writeMemoryWait
	// is refused UNAVAILABLE (the client retries), instead of the server
	// growing with its clients' concurrency.
	WriteMemory int64
	// ChainMemory bounds the bytes of chain updates the server's
	// replicas hold for their successors (forwarded, not yet
	// acknowledged) or out of order (default 256 MiB). An update from a
	// predecessor that finds no room is dropped, and its sender sends it
	// again after ResendTicks; each chain's next update in order is taken
	// regardless while its replica holds none, so servers full of each
	// other's updates never stop every chain (chainmem.go).
	ChainMemory int64
	// Metrics receives the server's Prometheus collectors (nil: none
	// are gathered).
	Metrics prometheus.Registerer
	// Logger receives logs (nil = discard).
	Logger *slog.Logger
	// Clock tells the time and makes the server's timers (nil = the
	// system clock).
	Clock clock.Clock
}

// Name is the server's name (Config.Name).
func (s *Server) Name() string { return s.cfg.Name }

// DefaultName is a chunkserver's name when none is given: the host's
// name and the data directory's last element ("db7-disk2"), with what
// meta.ValidServerName refuses replaced by '-'.
func DefaultName(dir string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	host, _, _ = strings.Cut(host, ".")
	base := filepath.Base(filepath.Clean(dir))
	if base == "/" || base == "." {
		base = "data"
	}
	var b strings.Builder
	for _, r := range host + "-" + base {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.TrimLeft(b.String(), "._-")
	if len(name) > meta.MaxServerNameLen {
		name = name[len(name)-meta.MaxServerNameLen:]
		name = strings.TrimLeft(name, "._-")
	}
	if name == "" {
		name = "chunkserver"
	}
	return name
}

// Server is a running chunkserver.
type Server struct {
	cfg      Config
	writeMem *semaphore.Weighted // Config.WriteMemory
	chainMem chainMemory         // Config.ChainMemory
	fetches  *semaphore.Weighted // Fetch streams served (maxFetches)
	clk      clock.Clock
	id       chain.NodeID
	addr     string
	log      *slog.Logger
	store    *chunkstore.Store
	grpc     *grpc.Server
	peers    *peers
	caps     auth.Keyring // capability keys from the master

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines (peers, heartbeats)

	// createMu serialises creations and deletes of replicas: CreateReplica,
	// Replicate and deletes hold it; a creation by a write or an update
	// (create.go) shares it with the others of its kind and holds the
	// stripe of its handle, so that new chunks are created in parallel.
	createMu      sync.RWMutex
	createStripes [64]sync.Mutex

	// createFloor is the master's next handle at this process's first
	// registration (0 until then): every chunk at or above it was
	// allocated after the store was opened (create.go).
	createFloor atomic.Uint64
	// inv tracks what the master was told of the replicas (report.go).
	inv *reporter
	// busyMu guards busyReps: the replicas whose chain node is not idle,
	// which the tick loop ticks (the others would not change).
	busyMu   sync.Mutex
	busyReps map[*replica]struct{}

	metrics metrics

	leaseMu sync.Mutex
	lease   chain.Lease // client I/O is served only while it is valid

	reports chan *api.ReportReplicaRequest // to the master, by reportLoop

	fetchMu    sync.Mutex
	fetchConns map[string]*grpc.ClientConn // Fetch connections by address

	mu sync.Mutex
	// replicas are the active replicas; the store holds the cold ones,
	// and cold the state of those that differs from a replica loaded at
	// Start (cold.go).
	replicas map[chunkstore.Handle]*replica
	cold     map[chunkstore.Handle]coldState
	// loadedVerified: verifyLoaded checked the replicas loaded at Start
	// below this handle, but those in unverified (cold.go).
	loadedVerified chunkstore.Handle
	unverified     map[chunkstore.Handle]struct{}
	// deleted holds the handles whose replica this process deleted: it
	// never re-creates them from a write or an update (create.go).
	deleted map[chunkstore.Handle]struct{}
	// absentFloor: for a chunk this server never held, the highest epoch
	// a Reconfigure named while it held no replica. No write or update
	// below it creates the replica: the master moved the chunk on (a
	// snapshot made it shared) before any write reached this server, and
	// a writer still holding the old epoch must be refused, not create
	// the replica at it (clone.go).
	absentFloor map[chunkstore.Handle]uint64
	closed      bool
}

// Start opens the store in cfg.Dir (its replicas are cold: a chain node is
// rebuilt from a replica's metadata when it is first used, cold.go),
// starts serving gRPC and returns once listening. It
// registers with the master in the background, retrying until it succeeds,
// then heartbeats. The server runs until Close, whatever becomes of ctx.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("chunkserver: Config.Dir is empty")
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = DefaultListenAddr
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.FS == nil {
		cfg.FS = chunkstore.OSFS
	}
	if cfg.ScrubBytesPerSec <= 0 {
		cfg.ScrubBytesPerSec = DefaultScrubBytesPerSec
	}
	if cfg.ScrubInterval == 0 {
		cfg.ScrubInterval = DefaultScrubInterval
	}
	if cfg.UpdateLogLen <= 0 {
		cfg.UpdateLogLen = DefaultUpdateLogLen
	}
	if cfg.ReportPage <= 0 {
		cfg.ReportPage = reportPage
	}
	if cfg.WriteMemory <= 0 {
		cfg.WriteMemory = defaultWriteMemory
	}
	cfg.WriteMemory = max(cfg.WriteMemory, maxMsgSize)
	if cfg.ChainMemory <= 0 {
		cfg.ChainMemory = defaultChainMemory
	}
	if cfg.ColdAfter == 0 {
		cfg.ColdAfter = DefaultColdAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName(cfg.Dir)
	}
	if err := meta.ValidServerName(cfg.Name); err != nil {
		return nil, fmt.Errorf("chunkserver: %w", err)
	}
	// Every directory made at first start is fsynced into its parent
	// (chunkstore's Open does the same for chunks and corrupt): files
	// synced into a directory whose own entry was lost to a power cut are
	// lost with it.
	if err := durable.MkdirAllFS(cfg.FS, cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("chunkserver: %w", err)
	}
	id, err := loadServerID(cfg.FS, cfg.Dir)
	if err != nil {
		return nil, err
	}
	raiseFileLimit(cfg.Logger)
	store, err := chunkstore.OpenConfig(chunkstore.Config{
		FS: cfg.FS, Dir: cfg.Dir, Logger: cfg.Logger, MaxOpenFiles: cfg.MaxOpenFiles,
	})
	if err != nil {
		return nil, fmt.Errorf("chunkserver: open store: %w", err)
	}
	lis := cfg.Listener
	if lis == nil {
		lis, err = net.Listen("tcp", cfg.ListenAddr)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("chunkserver: %w", err)
		}
	}
	s := &Server{
		cfg:         cfg,
		writeMem:    semaphore.NewWeighted(cfg.WriteMemory),
		fetches:     semaphore.NewWeighted(maxFetches),
		clk:         clock.Or(cfg.Clock),
		id:          id,
		addr:        lis.Addr().String(),
		store:       store,
		replicas:    make(map[chunkstore.Handle]*replica),
		cold:        make(map[chunkstore.Handle]coldState),
		unverified:  make(map[chunkstore.Handle]struct{}),
		deleted:     make(map[chunkstore.Handle]struct{}),
		absentFloor: make(map[chunkstore.Handle]uint64),
		reports:     make(chan *api.ReportReplicaRequest, 256),
		inv:         newReporter(),
		busyReps:    make(map[*replica]struct{}),
		fetchConns:  make(map[string]*grpc.ClientConn),
	}
	s.chainMem.limit.Store(cfg.ChainMemory)
	s.log = cfg.Logger.With("server", uint64(id), "name", cfg.Name)
	s.registerMetrics(cfg.Metrics)
	store.OnSync(s.metrics.prom.fsync.Observe)
	// The server outlives Start's ctx: only Close stops it.
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.peers = &peers{
		ctx:         s.ctx,
		log:         s.log,
		wg:          &s.wg,
		self:        id,
		clk:         s.clk,
		reconnected: s.peerReconnected,
		dialOpts:    s.dialOpts(),
		m:           make(map[chain.NodeID]*peer),
	}
	// The replicas loaded are cold (cold.go): fenced until they rejoin
	// their chains, unverified until verifyLoaded has read every block.
	opts := append(append(s.metrics.prom.rpc.ServerOptions(), serve.Options(maxMsgSize)...), grpc.WaitForHandlers(true))
	if cfg.TLS != nil {
		opts = append(opts, cfg.TLS.ServerOptions()...)
	}
	s.grpc = grpc.NewServer(opts...)
	api.RegisterChunkserverServer(s.grpc, &service{s: s})
	api.RegisterReplicaDiffServer(s.grpc, &diffService{s: s})
	s.wg.Add(5)
	go func() {
		defer s.wg.Done()
		s.reportLoop()
	}()
	go func() {
		defer s.wg.Done()
		s.scrubLoop()
	}()
	go func() {
		defer s.wg.Done()
		s.tickLoop()
	}()
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(serve.Limit(lis, 0)); err != nil {
			s.log.Error("grpc serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.heartbeatLoop()
	}()
	s.log.Info("chunkserver started", "addr", s.addr, "dir", cfg.Dir, "replicas", store.Len())
	return s, nil
}

// Addr returns the gRPC address the server listens on.
func (s *Server) Addr() string { return s.addr }

// Store returns the server's chunk store, for checkers and fault
// injection in tests (a second Store must not be opened on a running
// server's directory).
func (s *Server) Store() *chunkstore.Store { return s.store }

// ID returns the server's id, kept in Dir/server-id.
func (s *Server) ID() uint64 { return uint64(s.id) }

// Close stops gRPC, heartbeats, peer streams and syncers, then closes the
// store. Writes in flight fail; those already applied stay.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.grpc.Stop()
	s.wg.Wait()
	s.fetchMu.Lock()
	for _, c := range s.fetchConns {
		c.Close()
	}
	s.fetchMu.Unlock()
	s.closeReplicas()
	if err := s.store.Close(); err != nil {
		return fmt.Errorf("chunkserver: close store: %w", err)
	}
	return nil
}

func (s *Server) closeReplicas() {
	s.mu.Lock()
	rs := make([]*replica, 0, len(s.replicas))
	for _, r := range s.replicas {
		rs = append(rs, r)
	}
	s.mu.Unlock()
	for _, r := range rs {
		r.drop(errUnavailable("server closing"))
	}
}

func (s *Server) allReplicas() []*replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := make([]*replica, 0, len(s.replicas))
	for _, r := range s.replicas {
		rs = append(rs, r)
	}
	return rs
}

func (s *Server) peerReconnected(peer chain.NodeID) {
	for _, r := range s.allReplicas() {
		r.peerReconnected(peer)
	}
}

// busy marks r's node as one to tick.
func (s *Server) busy(r *replica) {
	s.busyMu.Lock()
	defer s.busyMu.Unlock()
	s.busyReps[r] = struct{}{}
}

// tickLoop ticks, at the tick period, every active replica's node that is
// not idle, and carries out what its watchdogs decide (re-send a stalled
// Sent list, fetch a gap that does not close; see chain.Node.Tick). A node
// stays on the list while it is not idle after its batch (see busy).
// Every ColdAfter it sweeps the active replicas for ones to make cold.
func (s *Server) tickLoop() {
	t := s.clk.NewTicker(s.tickPeriod())
	defer t.Stop()
	sweepEvery := 0 // ticks between two sweeps for cold replicas
	if s.cfg.ColdAfter > 0 {
		sweepEvery = max(1, int(s.cfg.ColdAfter/s.tickPeriod()))
	}
	for ticks := 1; ; ticks++ {
		select {
		case <-t.C():
		case <-s.ctx.Done():
			return
		}
		if sweepEvery > 0 && ticks%sweepEvery == 0 {
			s.sweepCold()
		}
		s.busyMu.Lock()
		busy := s.busyReps
		s.busyReps = make(map[*replica]struct{}, len(busy))
		s.busyMu.Unlock()
		for r := range busy {
			r.mu.Lock()
			if !r.dropped {
				r.node.Tick()
				r.processReadyLocked()
			}
			r.mu.Unlock()
		}
	}
}

// tickPeriod is the chain nodes' tick: the heartbeat interval, at least
// 50 ms (chain.ResendTicks and CatchUpTicks count these).
func (s *Server) tickPeriod() time.Duration { return max(s.cfg.HeartbeatInterval, 50*time.Millisecond) }

// deleteReplica drops the node of h and removes its replica from the store.
func (s *Server) deleteReplica(h chunkstore.Handle) {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	s.deleteReplicaLocked(h)
}

// deleteReplicaLocked is deleteReplica with createMu held.
func (s *Server) deleteReplicaLocked(h chunkstore.Handle) {
	s.mu.Lock()
	r := s.replicas[h]
	delete(s.replicas, h)
	delete(s.cold, h)
	s.deleted[h] = struct{}{}
	s.mu.Unlock()
	s.inv.noteRemoved(h)
	if r != nil {
		r.drop(errNotFound(h))
	}
	if err := s.store.Delete(h); err != nil && !errors.Is(err, chunkstore.ErrNotFound) {
		s.log.Warn("delete replica", "handle", uint64(h), "err", err)
		return
	}
	s.log.Info("replica deleted", "handle", uint64(h))
}

// loadServerID reads Dir/server-id, creating it with a random id if absent.
func loadServerID(fs chunkstore.FS, dir string) (chain.NodeID, error) {
	path := filepath.Join(dir, serverIDFile)
	b, err := readFile(fs, path)
	if err == nil {
		id, err := parseServerID(b)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrBadServerID, path, err)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("chunkserver: %w", err)
	}
	var id chain.NodeID
	for id == 0 {
		var buf [8]byte
		if _, err := rand.Read(buf[:]); err != nil {
			return 0, fmt.Errorf("chunkserver: %w", err)
		}
		// Keep ids within int63 so tools that parse them as signed are safe.
		id = chain.NodeID(binary.LittleEndian.Uint64(buf[:]) >> 1)
	}
	if err := writeFileSync(fs, path, []byte(strconv.FormatUint(uint64(id), 10)+"\n")); err != nil {
		return 0, err
	}
	return id, nil
}

// parseServerID decodes the server-id file: a non-zero decimal id.
func parseServerID(b []byte) (chain.NodeID, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, err
	}
	if v == 0 {
		return 0, errors.New("id is zero")
	}
	return chain.NodeID(v), nil
}

func readFile(fs chunkstore.FS, path string) ([]byte, error) {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > 64 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadServerID, st.Size())
	}
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// writeFileSync writes path durably: temp file, sync, rename, sync dir.
func writeFileSync(fs chunkstore.FS, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("chunkserver: %w", err)
	}
	_, err = f.WriteAt(data, 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = fs.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("chunkserver: write %s: %w", path, err)
	}
	return nil
}

// raiseFileLimit lifts the soft limit on open files to the hard one: the
// store bounds its replica files, but peers, clients and several servers
// in one process need descriptors too. Go raises it at start on some
// systems already; failing to is not fatal.
func raiseFileLimit(log *slog.Logger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Debug("cannot read the open file limit", "err", err)
		return
	}
	if lim.Cur >= lim.Max {
		return
	}
	old := lim.Cur
	lim.Cur = lim.Max
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Debug("cannot raise the open file limit", "soft", old, "hard", lim.Max, "err", err)
		return
	}
	log.Debug("raised the open file limit", "from", old, "to", lim.Max)
}
