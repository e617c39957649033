package chunkserver

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/clock"
)

// dialOpts are the options of every outbound gRPC connection.
func (s *Server) dialOpts() []grpc.DialOption {
	// gRPC's default reconnect backoff starts at 1 s and grows to 2
	// minutes: a restarted master (or peer) would hear from this server
	// only after the master had declared it dead. Reconnect within a
	// heartbeat or two instead.
	bc := backoff.DefaultConfig
	bc.BaseDelay, bc.MaxDelay = 100*time.Millisecond, time.Second
	creds := grpc.WithTransportCredentials(insecure.NewCredentials())
	if s.cfg.TLS != nil {
		creds = s.cfg.TLS.DialOption(auth.RoleMaster, auth.RoleChunkserver)
	}
	opts := []grpc.DialOption{
		creds,
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 2 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
	}
	if s.cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(s.cfg.Dialer))
	}
	return opts
}

func (s *Server) newMasters() *masters {
	return &masters{addrs: s.cfg.Masters, conns: make(map[string]*grpc.ClientConn), dialOpts: s.dialOpts()}
}

// renewLease extends the lease to sent+lease, never shortening it.
func (s *Server) renewLease(sent time.Time, lease time.Duration) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	s.lease.Grant(sent, lease)
}

// leaseValid reports whether the server holds a valid lease now (an input
// to the nodes' admission decisions).
func (s *Server) leaseValid() bool {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	return s.lease.Valid(s.clk.Now())
}

// reportError tells the master that a replica hit a store error. It never
// blocks: a full queue drops the report (the replica stays failed and is
// reported again by the next read or scrub that trips on it).
func (s *Server) reportError(h chunkstore.Handle, epoch uint64, err error) {
	problem := api.ReplicaProblem_REPLICA_FAILED
	switch {
	case errors.Is(err, chunkstore.ErrCorrupt):
		problem = api.ReplicaProblem_REPLICA_CORRUPT
	case errors.Is(err, chunkstore.ErrNoSpace):
		problem = api.ReplicaProblem_REPLICA_NO_SPACE
	case errors.Is(err, chunkstore.ErrClosed), errors.Is(err, chunkstore.ErrRange):
		return // not a disk problem
	}
	req := &api.ReportReplicaRequest{ServerId: uint64(s.id), Handle: uint64(h), Epoch: epoch, Problem: problem, Detail: err.Error()}
	select {
	case s.reports <- req:
	default:
		s.log.Warn("report queue full, dropping replica report", "handle", uint64(h))
	}
}

// reportLoop sends replica reports to the master, retrying each until
// it is delivered or the server closes.
func (s *Server) reportLoop() {
	ms := s.newMasters()
	defer ms.close()
	timeout := max(2*s.cfg.HeartbeatInterval, time.Second)
	for {
		var req *api.ReportReplicaRequest
		select {
		case req = <-s.reports:
		case <-s.ctx.Done():
			return
		}
		for s.ctx.Err() == nil {
			err := ms.call(s.ctx, timeout, func(ctx context.Context, c api.MasterClient) error {
				_, err := c.ReportReplica(ctx, req)
				return err
			})
			if err == nil {
				s.log.Warn("replica reported to master", "handle", req.GetHandle(), "problem", req.GetProblem(), "detail", req.GetDetail())
				break
			}
			s.log.Debug("report replica", "err", err)
			clock.Sleep(s.ctx, s.clk, s.cfg.HeartbeatInterval)
		}
	}
}

// scrubLoop first verifies the replicas loaded at start, at full speed
// (verifyLoaded: the master may be waiting for that evidence), then
// verifies every replica's checksums in the background, at about
// ScrubBytesPerSec, one pass every ScrubInterval (none when negative),
// starting one interval later. Bad blocks are reported.
func (s *Server) scrubLoop() {
	s.verifyLoaded()
	if s.cfg.ScrubInterval < 0 || !clock.Sleep(s.ctx, s.clk, s.cfg.ScrubInterval) {
		return
	}
	for {
		for _, h := range s.store.Handles() {
			if s.ctx.Err() != nil {
				return
			}
			start := s.clk.Now()
			size, _ := s.verifyHandle(h, false)
			// Pace the passes: a replica of n bytes earns n/rate seconds.
			pace := time.Duration(float64(size) / float64(s.cfg.ScrubBytesPerSec) * float64(time.Second))
			if !clock.Sleep(s.ctx, s.clk, pace-clock.Since(s.clk, start)) {
				return
			}
		}
		if !clock.Sleep(s.ctx, s.clk, s.cfg.ScrubInterval) {
			return
		}
	}
}

// verifyLoaded reads every block of the replicas loaded at start, at full
// speed and once (the scrubber's first pass), so that their evidence (bad
// blocks, verified) reaches the master soon: after a crash of every member of a chain, the master chooses the
// member to keep from it (internal/master/decide/plan.go).
//
// It goes in handle order, so that the cold replicas it verified need no
// state of their own: those below Server.loadedVerified are verified, but
// for the few whose check could not be made (Server.unverified).
func (s *Server) verifyLoaded() {
	hs := s.store.Handles()
	slices.Sort(hs)
	for _, h := range hs {
		if s.ctx.Err() != nil {
			return
		}
		_, ok := s.verifyHandle(h, true)
		s.mu.Lock()
		if !ok {
			s.unverified[h] = struct{}{}
		}
		s.loadedVerified = h + 1
		if cs, in := s.cold[h]; in {
			if rep, err := s.store.Get(h); err == nil {
				s.setColdLocked(h, rep.Meta(), cs) // drops the entry if it is the default now
			}
		}
		s.mu.Unlock()
	}
}

// verify reads every block of r: bad ones are listed by the store and
// reported; once every block was read, r counts as verified.
func (r *replica) verify() {
	err := r.store.Verify()
	r.mu.Lock()
	defer r.mu.Unlock()
	if errors.Is(err, chunkstore.ErrCorrupt) && !r.dropped {
		r.corruptLocked(err)
	}
	if err == nil || errors.Is(err, chunkstore.ErrCorrupt) {
		r.verified = true
	}
	r.noteLocked()
}
