package master

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"
)

// Clock tells the time; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

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
	// Peers is "id=raftaddr,..."; reserved, must be empty for now (single
	// voter).
	Peers string
	// DeadAfter: a chunkserver without a heartbeat for this long is dead
	// (default 5s).
	DeadAfter time.Duration
	// Logger receives logs (default slog.Default()).
	Logger *slog.Logger
	// Clock tells the time (default the system clock).
	Clock Clock
}

const (
	defaultID         = "m1"
	defaultListenAddr = "127.0.0.1:7070"
	defaultDeadAfter  = 5 * time.Second
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
	if c.Peers != "" {
		return c, ErrPeersUnsupported
	}
	if c.ListenAddr == "" {
		c.ListenAddr = defaultListenAddr
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = defaultDeadAfter
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
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
