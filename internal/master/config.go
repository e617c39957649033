package master

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/master/decide"
)

// Config configures a master.
type Config struct {
	// ID is this master's Raft server id (default "m1").
	ID string
	// Dir holds the Raft log, stable store and snapshots (Dir/raft).
	Dir string
	// ListenAddr is the gRPC address (default 127.0.0.1:7070).
	ListenAddr string
	// Listener, when set, is used for gRPC instead of ListenAddr.
	Listener net.Listener
	// RaftAddr is the Raft transport address (default: the listen host and
	// the listen port + 1; port 0 when the listen port is 0).
	RaftAddr string
	// Peers is "id=raftaddr,...": every voter of the group, the same on
	// each (as etcd's initial cluster). Empty: a single voter. When no
	// voter has state yet, each bootstraps with this configuration; later
	// it is ignored (membership changes go through the Admin service).
	Peers string
	// Join starts a master without Raft state that does not bootstrap: it
	// waits to be added to a running group (Admin/AddMaster, catena admin
	// master add), which copies the group's log to it. Exclusive with
	// Peers; ignored once the master has state.
	Join bool
	// CatchUpTimeout bounds how long AddMaster waits for a new master to
	// catch up with the log before it is removed again (default 2m).
	CatchUpTimeout time.Duration
	// AdvertiseAddr is the gRPC address other masters, chunkservers and
	// clients reach this master at (default: the bound address).
	AdvertiseAddr string
	// RaftListener, when set, carries Raft traffic instead of a listener
	// on RaftAddr; RaftDialer, when set, opens every Raft connection to
	// another master (the fault-injection harness wraps both).
	RaftListener net.Listener
	RaftDialer   func(ctx context.Context, addr string) (net.Conn, error)
	// DeadAfter is deprecated: a chunkserver is dead once Lease +
	// DriftMargin has passed since its last heartbeat. When DeadAfter is
	// larger, it is used instead (never smaller, so a server's lease always
	// expires before it is declared dead).
	DeadAfter time.Duration
	// Lease is how long a heartbeat lets a chunkserver serve client I/O,
	// counted from when it sent the heartbeat (default 1s).
	Lease time.Duration
	// DriftMargin is added to Lease before a silent chunkserver is declared
	// dead, covering clock-rate drift and message delay (default 250ms).
	DriftMargin time.Duration
	// RepairInterval is the period of the leader's repair loop (default
	// 100ms).
	RepairInterval time.Duration
	// RepairConcurrency bounds the re-replications in flight (default 4).
	RepairConcurrency int
	// RepairBytesPerSec is the copy rate limit of each re-replication,
	// passed to the joining chunkserver (default 64 MiB/s; negative = no
	// limit).
	RepairBytesPerSec int64
	// RebalanceConcurrency bounds the rebalancing moves in flight, within
	// RepairConcurrency and only while no repair is to be made (default
	// 2; negative: no rebalancing), and a drain's copies of chunks that
	// still have their full count (at least one at a time).
	RebalanceConcurrency int
	// RebalanceTolerance: servers are balanced when each one's used
	// fraction is within this fraction of the mean (default 0.1).
	RebalanceTolerance float64
	// TLS, when set, makes every listener and connection mutual TLS with
	// these credentials (a master certificate), and checks each call's
	// role (auth.Rules); nil: plain TCP, anyone may call anything.
	TLS *auth.Creds
	// HTTPAddr, when set, is where the master serves its web console
	// (internal/console; "" with no HTTPListener: none). It is plain
	// HTTP even with TLS, read-only and without authentication: anyone
	// who reaches it sees the cluster's state (servers, volume names,
	// the paths of damaged chunks), so bind it to loopback or an
	// operators' network.
	HTTPAddr string
	// HTTPListener, when set, is used for the console instead of
	// HTTPAddr.
	HTTPListener net.Listener
	// Dialer, when set, opens every connection the master makes to
	// chunkservers (the fault-injection harness wraps the network here).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
	// Metrics receives the master's Prometheus collectors (nil: none
	// are gathered).
	Metrics prometheus.Registerer
	// Logger receives logs (default slog.Default()).
	Logger *slog.Logger
	// Clock is the master's one source of time: the times it stamps and
	// judges liveness by, and the tickers of its repair and register
	// loops (nil: the system clock). Raft's own timers do not use it.
	Clock clock.Clock
}

const (
	defaultID         = "m1"
	defaultListenAddr = "127.0.0.1:7070"
	// Lease defaults: a killed chain member stalls writes for about
	// lease + drift + one repair tick, ~1.5 s.
	defaultLease             = time.Second
	defaultDriftMargin       = 250 * time.Millisecond
	defaultRepairInterval    = 100 * time.Millisecond
	defaultCatchUpTimeout    = 2 * time.Minute
	defaultRepairConcurrency = 4
	defaultRepairBytesPerSec = 64 << 20
	// defaultRebalanceConcurrency: two moves at a time, each at the
	// repair rate, leave clients most of the disks.
	defaultRebalanceConcurrency = 2
	// maxMsgSize bounds gRPC messages; data never flows through the master
	// but listings and chunk maps of big files can be large.
	maxMsgSize = 64<<20 + 1<<20
)

func (c Config) withDefaults() (Config, error) {
	if c.ID == "" {
		c.ID = defaultID
	}
	if c.Dir == "" {
		return c, fmt.Errorf("%w: Dir is empty", ErrConfig)
	}
	if c.Join && c.Peers != "" {
		return c, fmt.Errorf("%w: Join and Peers exclude each other (a joining master learns the group from it)", ErrConfig)
	}
	if c.Peers != "" {
		peers, err := ParsePeers(c.Peers)
		if err != nil {
			return c, err
		}
		addr, ok := peers[c.ID]
		if !ok {
			return c, fmt.Errorf("%w: id %q is not in Peers %q", ErrConfig, c.ID, c.Peers)
		}
		if c.RaftAddr == "" && c.RaftListener == nil {
			c.RaftAddr = addr
		}
	}
	if c.ListenAddr == "" {
		c.ListenAddr = defaultListenAddr
	}
	if c.CatchUpTimeout <= 0 {
		c.CatchUpTimeout = defaultCatchUpTimeout
	}
	if c.Lease <= 0 {
		c.Lease = defaultLease
	}
	if c.DriftMargin < 0 {
		return c, fmt.Errorf("%w: negative DriftMargin", ErrConfig)
	}
	if c.DriftMargin == 0 {
		c.DriftMargin = defaultDriftMargin
	}
	if c.RepairInterval <= 0 {
		c.RepairInterval = defaultRepairInterval
	}
	if c.RepairConcurrency <= 0 {
		c.RepairConcurrency = defaultRepairConcurrency
	}
	switch {
	case c.RebalanceConcurrency == 0:
		c.RebalanceConcurrency = defaultRebalanceConcurrency
	case c.RebalanceConcurrency < 0:
		c.RebalanceConcurrency = 0
	}
	if c.RebalanceTolerance <= 0 {
		c.RebalanceTolerance = decide.DefaultRebalanceTolerance
	}
	switch {
	case c.RepairBytesPerSec == 0:
		c.RepairBytesPerSec = defaultRepairBytesPerSec
	case c.RepairBytesPerSec < 0:
		c.RepairBytesPerSec = 0 // the wire's "no limit"
	}
	if c.Lease%time.Millisecond != 0 {
		c.Lease = c.Lease.Truncate(time.Millisecond) // lease_millis on the wire
		if c.Lease <= 0 {
			return c, fmt.Errorf("%w: Lease below 1ms", ErrConfig)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Clock = clock.Or(c.Clock)
	return c, nil
}

// defaultRaftAddr derives the Raft address from the gRPC address: same
// host, port + 1 (port 0 stays 0).
func defaultRaftAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("%w: listen address %q: %v", ErrConfig, listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p >= 65535 {
		return "", fmt.Errorf("%w: listen port %q", ErrConfig, port)
	}
	if p != 0 {
		p++
	}
	return net.JoinHostPort(host, strconv.Itoa(p)), nil
}

// deadAfter is how long after its last heartbeat a server is declared
// dead: never before its lease has surely expired.
func (c Config) deadAfter() time.Duration {
	return max(c.Lease+c.DriftMargin, c.DeadAfter)
}
