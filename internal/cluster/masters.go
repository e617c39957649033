package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/durable"
	"github.com/catena-io/catena/internal/master"
)

// Errors of the master slots.
var (
	// ErrNoSuchMaster: the index is outside [0, Masters).
	ErrNoSuchMaster = errors.New("cluster: no such master")
	// ErrNoLeader: no running master leads right now.
	ErrNoLeader = errors.New("cluster: no master leads")
)

// mNode is one master slot; m is nil while stopped. Its addresses are kept
// across restarts, as a real master's would be.
type mNode struct {
	id       string // Raft id: m1, m2, ...
	name     string // on the Network
	dir      string
	addr     string // gRPC
	raftAddr string
	httpAddr string // the console's, "" for none (Config.MasterHTTPAddr)
	m        *master.Master
	conn     *grpc.ClientConn // harness's own, outside the Network
	mc       api.MasterClient
	// lns holds the listeners reserved for the first start (gRPC, Raft),
	// handed to the master so no other process can take the ports between
	// reservation and start. Restarts listen on the same addresses again.
	lns []net.Listener
}

// MasterNodeName is the Network name of master slot i: MasterNode for 0
// (so single-master tests keep their name), "master2", ... for the others.
func MasterNodeName(i int) string {
	if i == 0 {
		return MasterNode
	}
	return fmt.Sprintf("master%d", i+1)
}

func (c *Cluster) startMasters(ctx context.Context) error {
	multi := c.cfg.Masters > 1
	var peers []string
	for i := range c.cfg.Masters {
		n := &mNode{id: fmt.Sprintf("m%d", i+1), name: MasterNodeName(i), dir: filepath.Join(c.cfg.Dir, "master")}
		if i > 0 {
			n.dir = filepath.Join(c.cfg.Dir, fmt.Sprintf("master%d", i+1))
		}
		addr, raftAddr := c.cfg.MasterAddr, c.cfg.RaftAddr
		if multi {
			addr, raftAddr = "127.0.0.1:0", "127.0.0.1:0"
		}
		gl, err := reserve(addr)
		if err != nil {
			return err
		}
		rl, err := reserve(raftAddr)
		if err != nil {
			gl.Close()
			return err
		}
		n.addr, n.raftAddr, n.lns = gl.Addr().String(), rl.Addr().String(), []net.Listener{gl, rl}
		peers = append(peers, n.id+"="+n.raftAddr)
		c.masters = append(c.masters, n)
	}
	peerList := ""
	if multi {
		peerList = strings.Join(peers, ",")
	}
	for i := range c.masters {
		if err := c.startMaster(ctx, i, peerList); err != nil {
			return err
		}
	}
	_, err := c.AwaitLeader(ctx)
	return err
}

// reserve listens on addr ("host:0" gets a free port) so a master keeps its
// addresses across restarts and peers know them upfront.
func reserve(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: reserve %s: %w", addr, err)
	}
	return ln, nil
}

func (c *Cluster) startMaster(ctx context.Context, i int, peers string) error {
	n := c.masters[i]
	if err := durable.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cfg := c.masterConfig(n.dir)
	cfg.ID = n.id
	cfg.Logger = c.log.With("proc", n.name)
	cfg.Metrics = c.metricsOf(n.id)
	cfg.Dialer = c.net.Dialer(n.name)
	cfg.ListenAddr = n.addr
	c.net.Register(n.addr, n.name)
	c.net.Register(n.raftAddr, n.name)
	lns := n.lns
	n.lns = nil
	if lns == nil {
		for _, a := range []string{n.addr, n.raftAddr} {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				for _, l := range lns {
					l.Close()
				}
				return fmt.Errorf("cluster: master %d: listen: %w", i, err)
			}
			lns = append(lns, ln)
		}
	}
	cfg.Listener, cfg.RaftListener = lns[0], lns[1]
	cfg.HTTPAddr = c.masterHTTPAddr(i)
	if peers != "" {
		cfg.Peers, cfg.RaftDialer = peers, c.net.Dialer(n.name)
	} else {
		cfg.RaftAddr = n.raftAddr
	}
	m, err := master.Start(ctx, cfg)
	if err != nil {
		for _, l := range lns {
			l.Close()
		}
		return fmt.Errorf("cluster: start master %d: %w", i, err)
	}
	n.m = m
	n.httpAddr = m.HTTPAddr()
	if n.conn == nil {
		if n.conn, err = grpc.NewClient(n.addr, c.tls.dialOption(auth.RoleMaster)); err != nil {
			return fmt.Errorf("cluster: dial master %d: %w", i, err)
		}
		n.mc = api.NewMasterClient(n.conn)
	}
	return nil
}

// masterHTTPAddr is where master i serves its console: where it did
// before, else Config.MasterHTTPAddr (its host with a free port for all
// but the first).
func (c *Cluster) masterHTTPAddr(i int) string {
	if n := c.masters[i]; n.httpAddr != "" || c.cfg.MasterHTTPAddr == "" || i == 0 {
		return cmp.Or(n.httpAddr, c.cfg.MasterHTTPAddr)
	}
	host, _, err := net.SplitHostPort(c.cfg.MasterHTTPAddr)
	if err != nil {
		return c.cfg.MasterHTTPAddr // the master reports it
	}
	return net.JoinHostPort(host, "0")
}

// MasterHTTPAddr returns the address of master i's console ("" for none,
// or when it never ran).
func (c *Cluster) MasterHTTPAddr(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.masters) {
		return ""
	}
	return c.masters[i].httpAddr
}

// NumMasters returns the number of master slots.
func (c *Cluster) NumMasters() int { return len(c.masters) }

// MasterAddrs returns every master's gRPC address.
func (c *Cluster) MasterAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.masterAddrsLocked()
}

func (c *Cluster) masterAddrsLocked() []string {
	var out []string
	for _, n := range c.masters {
		out = append(out, n.addr)
	}
	return out
}

// MasterAt returns master i, nil while stopped.
func (c *Cluster) MasterAt(i int) *master.Master {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.masters) {
		return nil
	}
	return c.masters[i].m
}

// LeaderIndex returns the slot of a running master that leads, -1 if none.
func (c *Cluster) LeaderIndex() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaderIndexLocked()
}

func (c *Cluster) leaderIndexLocked() int {
	for i, n := range c.masters {
		if n.m != nil && n.m.IsLeader() {
			return i
		}
	}
	return -1
}

// leaderClient returns a Master client of the leader (the harness's own
// connection, not through the Network).
func (c *Cluster) leaderClient() (api.MasterClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.leaderIndexLocked(); i >= 0 {
		return c.masters[i].mc, nil
	}
	return nil, ErrNoLeader
}

// AwaitLeader waits until a running master leads and returns its slot.
func (c *Cluster) AwaitLeader(ctx context.Context) (int, error) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if i := c.LeaderIndex(); i >= 0 {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("%w: waiting for a leader: %w", ErrNotReady, ctx.Err())
		case <-t.C:
		}
	}
}

// KillMaster stops master i (its Raft state stays on disk).
func (c *Cluster) KillMaster(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.masters) {
		return fmt.Errorf("%w: %d", ErrNoSuchMaster, i)
	}
	n := c.masters[i]
	if n.m == nil {
		return fmt.Errorf("master %d: %w", i, ErrStopped)
	}
	err := n.m.Close()
	n.m = nil
	return err
}

// RestartMaster starts the stopped master i again on its directory and
// addresses. It does not wait for a leader (see AwaitLeader).
func (c *Cluster) RestartMaster(ctx context.Context, i int) error {
	ctx, cancel := withReadyTimeout(ctx)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if i < 0 || i >= len(c.masters) {
		return fmt.Errorf("%w: %d", ErrNoSuchMaster, i)
	}
	if c.masters[i].m != nil {
		return fmt.Errorf("master %d: %w", i, ErrRunning)
	}
	peers := ""
	if len(c.masters) > 1 {
		var ps []string
		for _, n := range c.masters {
			ps = append(ps, n.id+"="+n.raftAddr)
		}
		peers = strings.Join(ps, ",")
	}
	return c.startMaster(ctx, i, peers)
}

// IsolateMaster cuts master i from every other process (masters,
// chunkservers, clients); Heal or RejoinMaster undoes it.
func (c *Cluster) IsolateMaster(i int) { c.net.Isolate(MasterNodeName(i)) }

// RejoinMaster undoes IsolateMaster(i).
func (c *Cluster) RejoinMaster(i int) { c.net.Rejoin(MasterNodeName(i)) }

func (c *Cluster) closeMastersLocked() []error {
	var errs []error
	for i, n := range c.masters {
		if n.conn != nil {
			n.conn.Close()
		}
		if n.m != nil {
			if err := n.m.Close(); err != nil {
				errs = append(errs, fmt.Errorf("master %d: %w", i, err))
			}
			n.m = nil
		}
	}
	return errs
}
