package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrNetworkCut is returned by a Network dialer whose link is cut.
var ErrNetworkCut = errors.New("cluster: network cut")

// Node names the harness gives its processes on the Network.
const (
	// MasterNode is the master.
	MasterNode = "master"
	// ClientNode is every client made by Cluster.NewClient.
	ClientNode = "client"
)

// Network is the fault layer between the cluster's processes, after etcd's
// integration bridge. Every process dials through Dialer(its own name); the
// Network knows which node listens on which address, tracks every
// connection it made by (dialer, listener) and cuts them on demand.
//
// Model: a link is directed, from the node that dials to the node that
// listens. A cut link refuses new dials at once (ErrNetworkCut) and closes
// its open connections, so RPCs over it fail fast, as after a reset; it
// does not blackhole (drop silently), which would only make tests wait for
// timeouts. A connection carries requests one way and their answers back:
// PartitionOneWay(a, b) stops a reaching b (requests from a fail) while b
// still reaches a and gets its answers, which is the one-way partition an
// RPC system can observe. Addresses nobody registered belong to no node:
// only isolation of the dialer cuts them.
//
// Safe for concurrent use.
type Network struct {
	mu       sync.Mutex
	names    map[string]string // listen address -> node
	cut      map[link]bool
	isolated map[string]bool
	conns    map[*faultConn]struct{}
}

type link struct{ from, to string }

// NewNetwork returns a healed network with no node registered.
func NewNetwork() *Network {
	return &Network{
		names:    make(map[string]string),
		cut:      make(map[link]bool),
		isolated: make(map[string]bool),
		conns:    make(map[*faultConn]struct{}),
	}
}

// Register records that node listens on addr (replacing an earlier owner of
// addr, as a restarted server that took a new port).
func (n *Network) Register(addr, node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.names[addr] = node
}

// Node returns the node listening on addr, "" when unknown.
func (n *Network) Node(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.names[addr]
}

// Dialer returns the dial function of node from: it refuses links that are
// cut and tracks the connections it opens.
func (n *Network) Dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		n.mu.Lock()
		to := n.names[addr]
		blocked := n.blockedLocked(from, to)
		n.mu.Unlock()
		if blocked {
			return nil, fmt.Errorf("%w: %s -> %s (%s)", ErrNetworkCut, from, to, addr)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		fc := &faultConn{Conn: c, n: n, from: from, to: to}
		n.mu.Lock()
		defer n.mu.Unlock()
		// The link may have been cut while this dial was in progress.
		if n.blockedLocked(from, to) {
			c.Close()
			return nil, fmt.Errorf("%w: %s -> %s (%s)", ErrNetworkCut, from, to, addr)
		}
		n.conns[fc] = struct{}{}
		return fc, nil
	}
}

func (n *Network) blockedLocked(from, to string) bool {
	if from == to {
		return false
	}
	if n.isolated[from] || (to != "" && n.isolated[to]) {
		return true
	}
	return n.cut[link{from, to}]
}

// Partition cuts a from b in both directions.
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[link{a, b}] = true
	n.cut[link{b, a}] = true
	n.enforceLocked()
}

// PartitionOneWay stops from reaching to; to still reaches from.
func (n *Network) PartitionOneWay(from, to string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[link{from, to}] = true
	n.enforceLocked()
}

// Isolate cuts node from every other node, the master and clients
// included, in both directions.
func (n *Network) Isolate(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[node] = true
	n.enforceLocked()
}

// Rejoin undoes Isolate(node); partitions set by Partition stay.
func (n *Network) Rejoin(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.isolated, node)
}

// Heal removes every cut and isolation.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	clear(n.isolated)
}

// Conns returns the number of open connections the network tracks.
func (n *Network) Conns() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.conns)
}

// enforceLocked closes every open connection over a cut link.
func (n *Network) enforceLocked() {
	for c := range n.conns {
		if n.blockedLocked(c.from, c.to) {
			delete(n.conns, c)
			// Closing a TCP connection does not block.
			c.Conn.Close()
		}
	}
}

// faultConn is a connection the Network may close.
type faultConn struct {
	net.Conn
	n        *Network
	from, to string
}

func (c *faultConn) Close() error {
	c.n.mu.Lock()
	delete(c.n.conns, c)
	c.n.mu.Unlock()
	return c.Conn.Close()
}
