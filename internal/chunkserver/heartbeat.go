package chunkserver

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/rpcerr"
)

// masters calls the master leader, following NOT_LEADER redirects and
// trying each configured address in turn. Used by one goroutine only.
type masters struct {
	addrs  []string
	leader string // last address that answered
	conns  map[string]*grpc.ClientConn
	// dialOpts are the options of every connection.
	dialOpts []grpc.DialOption
}

func (m *masters) conn(addr string) (*grpc.ClientConn, error) {
	if c := m.conns[addr]; c != nil {
		return c, nil
	}
	c, err := grpc.NewClient(addr, m.dialOpts...)
	if err != nil {
		return nil, err
	}
	m.conns[addr] = c
	return c, nil
}

func (m *masters) close() {
	for _, c := range m.conns {
		c.Close()
	}
}

// call runs fn against the leader; timeout bounds each attempt.
func (m *masters) call(ctx context.Context, timeout time.Duration, fn func(context.Context, api.MasterClient) error) error {
	if len(m.addrs) == 0 {
		return fmt.Errorf("%w: no master configured", ErrNoMaster)
	}
	candidates := make([]string, 0, len(m.addrs)+1)
	if m.leader != "" {
		candidates = append(candidates, m.leader)
	}
	candidates = append(candidates, m.addrs...)
	tried := make(map[string]bool)
	lastErr := error(nil)
	// Redirects may add candidates; bound the total work.
	for i := 0; i < len(candidates) && i < 2*len(m.addrs)+4; i++ {
		addr := candidates[i]
		if tried[addr] {
			continue
		}
		tried[addr] = true
		c, err := m.conn(addr)
		if err != nil {
			lastErr = err
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err = fn(cctx, api.NewMasterClient(c))
		cancel()
		if err == nil {
			m.leader = addr
			return nil
		}
		lastErr = err
		if rpcerr.Code(err) == api.ErrorCode_NOT_LEADER {
			if la := rpcerr.LeaderAddr(err); la != "" && !tried[la] {
				// Try the named leader next.
				candidates = append(candidates[:i+1], append([]string{la}, candidates[i+1:]...)...)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	m.leader = ""
	return fmt.Errorf("%w: %w", ErrNoMaster, lastErr)
}

// perReportedReplica is the time a heartbeat's deadline grows by for each
// replica it reports.
const perReportedReplica = 20 * time.Microsecond

// heartbeatLoop registers with the master, then heartbeats every interval,
// re-registering when the master asks.
func (s *Server) heartbeatLoop() {
	ms := s.newMasters()
	defer ms.close()
	interval := s.cfg.HeartbeatInterval
	timeout := max(2*interval, time.Second)
	registered := false
	t := s.clk.NewTicker(interval)
	defer t.Stop()
	for {
		if !registered {
			err := ms.call(s.ctx, timeout, func(ctx context.Context, c api.MasterClient) error {
				resp, err := c.Register(ctx, s.registerRequest())
				if err == nil {
					s.caps.Set(resp.GetCapabilityKeys())
					s.setCreateFloor(resp.GetNextHandle())
					paged := 0
					if resp.GetPagedReports() {
						paged = s.cfg.ReportPage
					}
					s.inv.setPaged(paged)
				}
				return err
			})
			if err == nil {
				registered = true
				s.inv.needFull()
				s.log.Info("registered with master", "master", ms.leader)
			} else if s.ctx.Err() == nil {
				s.log.Debug("register", "err", err)
			}
		}
		if registered {
			var resp *api.HeartbeatResponse
			var sent time.Time
			rep := s.inv.begin()
			req := s.heartbeatRequest(rep)
			// A full report of a large server takes a while to send and
			// to apply (about 30 MB at a million replicas).
			hbTimeout := timeout + time.Duration(len(req.GetReplicas()))*perReportedReplica
			err := ms.call(s.ctx, hbTimeout, func(ctx context.Context, c api.MasterClient) error {
				var err error
				// The lease runs from when this attempt was sent.
				sent = s.clk.Now()
				resp, err = c.Heartbeat(ctx, req)
				return err
			})
			if err != nil {
				s.inv.failed(rep)
				if s.ctx.Err() == nil {
					s.log.Debug("heartbeat", "err", err)
				}
			} else {
				s.inv.done(rep, resp.GetFullReport())
				registered = !resp.GetReregister()
				// Fences and missed configs first: the new lease must
				// never cover a replica the master considers stale.
				s.caps.Set(resp.GetCapabilityKeys())
				s.applyHeartbeat(resp)
				s.renewLease(sent, time.Duration(resp.GetLeaseMillis())*time.Millisecond)
				if resp.GetFullReport() && registered && !rep.full {
					continue // the full report at once: no lease until the master has it
				}
				if rep.more && registered && !resp.GetFullReport() {
					s.metrics.reportPages.Add(1)
					continue // the next page at once
				}
			}
		}
		select {
		case <-t.C():
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *Server) registerRequest() *api.RegisterRequest {
	capacity, free := s.space()
	return &api.RegisterRequest{
		ServerId:      uint64(s.id),
		Addr:          s.addr,
		Labels:        s.cfg.Labels,
		Name:          s.cfg.Name,
		CapacityBytes: capacity,
		FreeBytes:     free,
	}
}

// heartbeatRequest builds the heartbeat carrying report rep (see
// report.go).
func (s *Server) heartbeatRequest(rep *report) *api.HeartbeatRequest {
	capacity, free := s.space()
	req := &api.HeartbeatRequest{
		ServerId:      uint64(s.id),
		Addr:          s.addr,
		CapacityBytes: capacity,
		FreeBytes:     free,
		UsedBytes:     s.store.UsedBytes(),
		NeverHeldFrom: s.createFloor.Load(),
		Io:            s.ioCounters(),
	}
	s.fill(req, rep)
	return req
}

func (s *Server) applyHeartbeat(resp *api.HeartbeatResponse) {
	for _, ref := range resp.GetServers() {
		s.peers.setAddr(chain.NodeID(ref.GetId()), ref.GetAddr())
		s.peers.setCertName(chain.NodeID(ref.GetId()), ref.GetCertName())
	}
	for _, f := range resp.GetFenced() {
		s.fenceHandle(chunkstore.Handle(f.GetHandle()), f.GetEpoch())
	}
	for _, h := range resp.GetDeleteHandles() {
		s.deleteReplica(chunkstore.Handle(h))
	}
	for _, c := range resp.GetConfigs() {
		members, ids, err := parseChain(c.GetChain())
		if err != nil {
			continue
		}
		r := s.acquire(chunkstore.Handle(c.GetHandle()))
		if r == nil {
			continue
		}
		for _, ref := range c.GetChain() {
			s.peers.setAddr(chain.NodeID(ref.GetId()), ref.GetAddr())
		}
		if err := s.reconfigure(r, c.GetEpoch(), members, ids); err != nil {
			s.log.Warn("reconfigure from heartbeat", "handle", c.GetHandle(), "err", err)
		}
		r.release()
	}
}

// fence forbids client I/O on r at any epoch <= epoch.
func (r *replica) fence(epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.node.Fence(epoch) {
		r.logger().Info("replica fenced", "epoch", r.node.Config().Epoch, "master_epoch", epoch)
	}
	r.noteLocked()
}

// space is the capacity and free space the server reports: its disk's,
// capped by Config.Capacity.
func (s *Server) space() (capacity, free int64) {
	capacity, free = diskSpace(s.cfg.Dir)
	if c := s.cfg.Capacity; c > 0 && (capacity == 0 || c < capacity) {
		capacity = c
		free = min(free, max(0, c-s.store.UsedBytes()))
	}
	return capacity, free
}
