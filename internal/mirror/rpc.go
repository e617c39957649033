package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/rpcerr"
)

// rpcs is the part of a cluster the client library does not expose: a
// volume's chunk map with capabilities (the master's GetChunks) and the
// chunkservers' DiffReplicas. Safe for concurrent use.
type rpcs struct {
	masters []string
	creds   grpc.DialOption
	clk     clock.Clock

	mu     sync.Mutex
	leader string
	conns  map[string]*grpc.ClientConn
}

func newRPCs(masters []string, tlsDir string, clk clock.Clock) (*rpcs, error) {
	creds := grpc.WithTransportCredentials(insecure.NewCredentials())
	if tlsDir != "" {
		tc, err := auth.Load(tlsDir)
		if err != nil {
			return nil, err
		}
		creds = tc.DialOption(auth.RoleMaster, auth.RoleChunkserver)
	}
	return &rpcs{masters: masters, creds: creds, clk: clk, leader: masters[0], conns: map[string]*grpc.ClientConn{}}, nil
}

func (r *rpcs) conn(addr string) (*grpc.ClientConn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cc := r.conns[addr]; cc != nil {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, r.creds, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	r.conns[addr] = cc
	return cc, nil
}

func (r *rpcs) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cc := range r.conns {
		cc.Close()
	}
	r.conns = map[string]*grpc.ClientConn{}
}

// attempts bounds the tries of one call across masters and elections.
const attempts = 40

// chunks returns the allocated chunks of inode ino from the master
// leader, following redirects.
func (r *rpcs) chunks(ctx context.Context, ino uint64) ([]*api.ChunkInfo, error) {
	var last error
	for i := 0; i < attempts; i++ {
		r.mu.Lock()
		addr := r.leader
		r.mu.Unlock()
		cc, err := r.conn(addr)
		if err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := api.NewMasterClient(cc).GetChunks(actx, &api.GetChunksRequest{Inode: ino})
		cancel()
		if err == nil {
			return resp.GetChunks(), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		last = err
		switch rpcerr.Code(err) {
		case api.ErrorCode_NOT_LEADER:
			if hint := rpcerr.LeaderAddr(err); hint != "" && hint != addr {
				r.setLeader(hint)
				continue
			}
			r.nextMaster(addr)
		case api.ErrorCode_UNAVAILABLE, api.ErrorCode_ERROR_CODE_UNSPECIFIED:
			r.nextMaster(addr)
		default:
			return nil, err
		}
		if !clock.Sleep(ctx, r.clk, backoff(i)) {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("get chunks of inode %d: %w", ino, last)
}

func (r *rpcs) setLeader(addr string) {
	r.mu.Lock()
	r.leader = addr
	r.mu.Unlock()
}

func (r *rpcs) nextMaster(after string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, m := range r.masters {
		if m == after {
			r.leader = r.masters[(i+1)%len(r.masters)]
			return
		}
	}
	r.leader = r.masters[0]
}

func backoff(i int) time.Duration {
	return min(10*time.Millisecond<<min(i, 5), 250*time.Millisecond)
}

// diff asks the server at addr which blocks chunks a and b differ in,
// retrying briefly while the server catches up with their epochs or its
// lease. An error means: ship the chunk whole.
func (r *rpcs) diff(ctx context.Context, addr string, a, b *api.ChunkInfo) ([]int64, error) {
	cc, err := r.conn(addr)
	if err != nil {
		return nil, err
	}
	var last error
	stale := 0
	for i := 0; i < 12; i++ {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := api.NewReplicaDiffClient(cc).DiffReplicas(actx, &api.DiffReplicasRequest{
			HandleA: a.GetHandle(), EpochA: a.GetEpoch(), CapabilityA: a.GetCapability(),
			HandleB: b.GetHandle(), EpochB: b.GetEpoch(), CapabilityB: b.GetCapability()})
		cancel()
		if err == nil {
			if bs := resp.GetBlockSize(); bs != BlockSize {
				return nil, fmt.Errorf("diff: block size %d, want %d", bs, BlockSize)
			}
			return resp.GetBlocks(), nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		last = err
		switch rpcerr.Code(err) {
		case api.ErrorCode_STALE_EPOCH:
			// The server has not heard the chunks' epoch yet, or has a
			// newer one: the caller's to reload after a few tries.
			if stale++; stale > 3 {
				return nil, err
			}
		case api.ErrorCode_UNAVAILABLE: // settling
		default:
			return nil, err
		}
		if !clock.Sleep(ctx, r.clk, backoff(i)) {
			return nil, ctx.Err()
		}
	}
	return nil, errors.Join(errors.New("diff: no answer at the chunks' epochs"), last)
}
