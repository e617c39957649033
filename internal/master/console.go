package master

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/console"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
)

// consoleServer is the web console a master serves on Config.HTTPAddr or
// HTTPListener: plain HTTP, read-only, unauthenticated (see Config).
// Every master serves one; a follower's shows the leader's snapshot
// (Admin/ConsoleSnapshot), so any master's console follows the leader.
type consoleServer struct {
	con    *console.Console
	http   *http.Server
	lis    net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	cc     *grpc.ClientConn // to the leader at ccAddr, while following
	ccAddr string
}

// consoleReadHeaderTimeout bounds a console request's headers.
const consoleReadHeaderTimeout = 10 * time.Second

// startConsole starts the console when one is configured.
func (m *Master) startConsole() error {
	lis := m.cfg.HTTPListener
	if lis == nil {
		if m.cfg.HTTPAddr == "" {
			return nil
		}
		var err error
		if lis, err = net.Listen("tcp", m.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("master: console listen: %w", err)
		}
	}
	log := m.log.With("component", "console")
	c := &consoleServer{lis: lis}
	c.con = console.New(console.Config{Snapshot: m.ConsoleSnapshot, Logger: log, Clock: m.cfg.Clock})
	c.http = &http.Server{Handler: c.con.Handler(), ReadHeaderTimeout: consoleReadHeaderTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Go(func() { c.con.Run(ctx) })
	c.wg.Go(func() {
		if err := c.http.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("master: console serve", "err", err)
		}
	})
	m.console = c
	m.log.Info("master: console", "url", "http://"+lis.Addr().String()+"/")
	return nil
}

// closeConsole stops the console, if any, and waits for it.
func (m *Master) closeConsole() {
	c := m.console
	if c == nil {
		return
	}
	c.http.Close()
	c.cancel()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil {
		c.cc.Close()
		c.cc = nil
	}
}

// HTTPAddr returns the address the console is bound to, "" when this
// master serves none.
func (m *Master) HTTPAddr() string {
	if m.console == nil {
		return ""
	}
	return m.console.lis.Addr().String()
}

// ConsoleSnapshot is the cluster for the web console: this master's own
// view when it leads, else the leader's (fetched over Admin), under this
// master's id.
func (m *Master) ConsoleSnapshot(ctx context.Context) (*console.Snapshot, error) {
	if m.IsLeader() {
		s, err := m.localSnapshot(ctx)
		if rpcerr.Code(err) != api.ErrorCode_NOT_LEADER {
			return s, err
		}
	}
	s, err := m.leaderSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	s.Master = m.cfg.ID
	return s, nil
}

// localSnapshot builds the snapshot from what Status answers, the
// volumes, the repairs in flight and the events; NOT_LEADER unless this
// master leads.
func (m *Master) localSnapshot(ctx context.Context) (*console.Snapshot, error) {
	st, err := (&server{m: m}).Status(ctx, &api.StatusRequest{})
	if err != nil {
		return nil, err
	}
	s := &console.Snapshot{Time: m.cfg.Clock.Now(), Master: m.cfg.ID, Files: st.Files, Directories: st.Directories,
		Masters: []console.Master{}, Chunkservers: []console.Chunkserver{}, Repairs: []console.Repair{}, Volumes: []console.Volume{}}
	for _, ms := range st.Masters {
		s.Masters = append(s.Masters, console.Master{ID: ms.Id, Addr: ms.Addr, Leader: ms.Leader})
	}
	for _, cs := range st.Chunkservers {
		c := console.Chunkserver{ID: cs.Id, Name: cs.GetName(), Addr: cs.Addr, Alive: cs.Alive, Draining: cs.Draining,
			CapacityBytes: cs.CapacityBytes, UsedBytes: cs.UsedBytes, FreeBytes: cs.FreeBytes, Replicas: cs.Replicas,
			Chains: cs.Chains, Labels: cs.Labels, Domain: cs.Labels[decide.DefaultDomainKey]}
		if cs.LastHeartbeatUnixNano > 0 {
			c.LastHeartbeat = time.Unix(0, cs.LastHeartbeatUnixNano)
		}
		if io := cs.GetIo(); io != nil {
			c.IO = &console.IOCounters{Writes: io.Writes, WriteBytes: io.WriteBytes, WriteSeconds: io.WriteSeconds,
				Reads: io.Reads, ReadBytes: io.ReadBytes, ReadSeconds: io.ReadSeconds}
		}
		s.Chunkservers = append(s.Chunkservers, c)
	}
	ch := st.GetChunks()
	s.Chunks = console.ChunkStats{Total: ch.GetTotal(), UnderReplicated: ch.GetUnderReplicated(), OverReplicated: ch.GetOverReplicated(),
		ReReplicating: ch.GetReReplicating(), Lost: ch.GetLost(), RepairsDone: ch.GetRepairsDone(), RepairedBytes: ch.GetRepairedBytes(),
		Problems: []console.Problem{}}
	for _, p := range ch.GetProblems() {
		s.Chunks.Problems = append(s.Chunks.Problems, console.Problem{Handle: p.Handle, Reason: p.Reason, LostBlocks: len(p.LostBlocks), Paths: p.Paths})
	}
	for h, target := range m.soft.repairTargets() {
		s.Repairs = append(s.Repairs, console.Repair{Handle: h, Target: target})
	}
	slices.SortFunc(s.Repairs, func(a, b console.Repair) int { return cmp.Compare(a.Handle, b.Handle) })
	m.fsm.view(func(st *meta.State) {
		for _, fi := range st.Volumes() {
			s.Volumes = append(s.Volumes, console.Volume{Name: fi.Name, SizeBytes: fi.Size, Replication: fi.Replication, Export: fi.Name})
		}
	})
	s.Events = m.events.list()
	return s, nil
}

// leaderSnapshot asks the leader for its snapshot, over a connection
// kept while the leader stays the same.
func (m *Master) leaderSnapshot(ctx context.Context) (*console.Snapshot, error) {
	addr := m.leaderAddr()
	if addr == "" {
		return nil, fmt.Errorf("master %s does not lead and knows no leader", m.cfg.ID)
	}
	var cc *grpc.ClientConn
	var err error
	if m.console != nil {
		cc, err = m.console.leaderConn(m, addr)
	} else if cc, err = m.dialMaster(addr); err == nil {
		defer cc.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("leader at %s: %w", addr, err)
	}
	resp, err := api.NewAdminClient(cc).ConsoleSnapshot(ctx, &api.ConsoleSnapshotRequest{})
	if err != nil {
		return nil, fmt.Errorf("leader at %s: %w", addr, err)
	}
	var s console.Snapshot
	if err := json.Unmarshal(resp.Json, &s); err != nil {
		return nil, fmt.Errorf("leader at %s: snapshot: %w", addr, err)
	}
	return &s, nil
}

// leaderConn returns the connection to the leader at addr, replacing the
// one to a former leader.
func (c *consoleServer) leaderConn(m *Master, addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil && c.ccAddr == addr {
		return c.cc, nil
	}
	if c.cc != nil {
		c.cc.Close()
		c.cc = nil
	}
	cc, err := m.dialMaster(addr)
	if err != nil {
		return nil, err
	}
	c.cc, c.ccAddr = cc, addr
	return cc, nil
}

// ConsoleSnapshot answers, on the leader, its console snapshot as JSON.
func (a *adminServer) ConsoleSnapshot(ctx context.Context, req *api.ConsoleSnapshotRequest) (*api.ConsoleSnapshotResponse, error) {
	s, err := a.s.m.localSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, rpcerr.New(api.ErrorCode_UNAVAILABLE, "console snapshot: %v", err)
	}
	return &api.ConsoleSnapshotResponse{Json: b}, nil
}
