package chunkserver

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/clock"
)

const (
	// maxMsgSize bounds one gRPC message: a 64 MiB payload plus headers.
	maxMsgSize = 64<<20 + 1<<20

	backoffMin = 20 * time.Millisecond
	backoffMax = time.Second
)

// peers holds the outbound streams, one per peer server.
type peers struct {
	ctx  context.Context // cancelled by Close
	log  *slog.Logger
	wg   *sync.WaitGroup
	self chain.NodeID
	clk  clock.Clock
	// reconnected is called after every (re)connect to a peer, without locks.
	reconnected func(peer chain.NodeID)
	// dialOpts are the options of every outbound connection.
	dialOpts []grpc.DialOption

	mu sync.Mutex
	m  map[chain.NodeID]*peer
	// certNames: each server's certificate name, from the master's
	// address book only (never from a peer or a client).
	certNames map[chain.NodeID]string
}

// peer is the ordered outbound queue to one server and its sender.
type peer struct {
	id chain.NodeID

	mu        sync.Mutex
	addr      string
	queue     []*api.ChainMessage
	connected bool          // the stream is up; messages queued while down are dropped
	started   bool          // the sender goroutine runs
	wake      chan struct{} // cap 1: queue non-empty or addr changed
	addrGen   int
}

func (ps *peers) get(id chain.NodeID) *peer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.m[id]
	if p == nil {
		p = &peer{id: id, wake: make(chan struct{}, 1)}
		ps.m[id] = p
	}
	return p
}

// setCertName records, from the master's address book, the name in the
// certificate server id registered with.
func (ps *peers) setCertName(id chain.NodeID, name string) {
	if id == 0 || name == "" {
		return
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.certNames == nil {
		ps.certNames = map[chain.NodeID]string{}
	}
	ps.certNames[id] = name
}

// sentBy reports whether a caller whose certificate names name may send
// messages as server id: the master's address book binds id to name.
func (ps *peers) sentBy(id chain.NodeID, name string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	want, ok := ps.certNames[id]
	return ok && want == name
}

// setAddr records a peer's address; a change breaks the current stream.
func (ps *peers) setAddr(id chain.NodeID, addr string) {
	if id == ps.self || id == 0 || addr == "" {
		return
	}
	p := ps.get(id)
	p.mu.Lock()
	if p.addr != addr {
		p.addr = addr
		p.addrGen++
		p.signal()
	}
	p.mu.Unlock()
}

// send enqueues m for peer id without blocking. While the peer is not
// connected the message is dropped: the reconnect re-sends what matters.
func (ps *peers) send(id chain.NodeID, m *api.ChainMessage) {
	if id == ps.self || id == 0 {
		return
	}
	p := ps.get(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		p.started = true
		ps.wg.Add(1)
		go ps.run(p)
	}
	if p.connected {
		p.queue = append(p.queue, m)
		p.signal()
	}
}

func (p *peer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run keeps a Chain stream to p open and drains its queue into it.
func (ps *peers) run(p *peer) {
	defer ps.wg.Done()
	log := ps.log.With("peer", uint64(p.id))
	var (
		conn     *grpc.ClientConn
		connAddr string
		backoff  = backoffMin
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for ps.ctx.Err() == nil {
		p.mu.Lock()
		addr, gen := p.addr, p.addrGen
		p.mu.Unlock()
		if addr == "" {
			select {
			case <-p.wake:
			case <-ps.ctx.Done():
			}
			continue
		}
		if conn == nil || connAddr != addr {
			if conn != nil {
				conn.Close()
			}
			c, err := grpc.NewClient(addr, ps.dialOpts...)
			if err != nil {
				log.Warn("dial peer", "addr", addr, "err", err)
				conn = nil
				if !clock.Sleep(ps.ctx, ps.clk, backoff) {
					return
				}
				backoff = min(2*backoff, backoffMax)
				continue
			}
			conn, connAddr = c, addr
		}
		if ps.stream(p, conn, gen, log) {
			backoff = backoffMin
		}
		if !clock.Sleep(ps.ctx, ps.clk, backoff) {
			return
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// stream runs one Chain stream until it breaks, the peer's address changes
// or the server closes. It reports whether the stream was established.
func (ps *peers) stream(p *peer, conn *grpc.ClientConn, gen int, log *slog.Logger) bool {
	ctx, cancel := context.WithCancel(ps.ctx)
	defer cancel()
	st, err := api.NewChunkserverClient(conn).Chain(ctx)
	if err != nil {
		log.Debug("open chain stream", "err", err)
		return false
	}
	// The peer never sends; Recv returns when the stream or connection ends.
	go func() {
		for {
			if _, err := st.Recv(); err != nil {
				cancel()
				return
			}
		}
	}()
	p.mu.Lock()
	p.connected = true
	p.queue = nil
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.connected = false
		p.queue = nil
		p.mu.Unlock()
	}()
	log.Debug("chain stream up")
	ps.reconnected(p.id)
	for {
		p.mu.Lock()
		batch := p.queue
		p.queue = nil
		changed := p.addrGen != gen
		p.mu.Unlock()
		if changed {
			return true
		}
		for _, m := range batch {
			if err := st.Send(m); err != nil {
				log.Debug("chain stream broke", "err", err)
				return true
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-p.wake:
		case <-ctx.Done():
			return true
		}
	}
}

// addr returns the known address of peer id ("" when unknown).
func (ps *peers) addr(id chain.NodeID) string {
	p := ps.get(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}
