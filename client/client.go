package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/rpcerr"
)

const (
	defaultOpTimeout     = 30 * time.Second
	defaultMaxIOSize     = 1 << 20
	defaultIOConcurrency = 8
	// maxMsgSize bounds gRPC messages; a piece is at most MaxIOSize plus
	// framing, so 64 MiB leaves room for a large MaxIOSize.
	maxMsgSize = 64<<20 + 1<<20
	// maxAttempt bounds one RPC attempt, so a hung server costs one attempt,
	// not the whole operation.
	maxAttempt     = 10 * time.Second
	backoffInitial = 10 * time.Millisecond
	backoffMax     = 250 * time.Millisecond
	chunkBatch     = 64 // GetChunks batch when filling the cache
	// Metadata keys of a master call's request id (internal/master reads
	// them; the names are the wire contract).
	mdClientID  = "catena-client-id"
	mdRequestID = "catena-request-id"
	// mdSession names a volume writer's session (overlay.go).
	mdSession = "catena-session"
)

// Client is a connection to a Catena cluster. Safe for concurrent use.
type Client struct {
	cfg      Config
	log      *slog.Logger
	clientID uint64
	reqSeq   atomic.Uint64
	clock    clock.Clock // cfg.Clock, or the real one

	creds grpc.DialOption // the transport: mutual TLS (cfg.TLSDir) or plain TCP

	// flushBarrier: what Volume.Flush waits for besides durability
	// (SetFlushBarrier); nil for none.
	flushBarrier atomic.Pointer[FlushBarrier]

	mu      sync.Mutex
	masters []string // configured addresses, plus leaders learned from redirects
	leader  string   // current leader guess
	conns   map[string]*grpc.ClientConn
	closed  bool
}

// New returns a client for the cluster whose masters are cfg.Masters.
// Connections are made lazily, on first use.
func New(cfg Config) (*Client, error) {
	if len(cfg.Masters) == 0 {
		cfg.Masters = []string{DefaultMaster}
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = defaultOpTimeout
	}
	if cfg.MaxIOSize <= 0 {
		cfg.MaxIOSize = defaultMaxIOSize
	}
	if cfg.MaxIOSize > 32<<20 {
		return nil, fmt.Errorf("client: %w", detailf(ErrInvalid, "MaxIOSize %d above 32 MiB", cfg.MaxIOSize))
	}
	if cfg.IOConcurrency <= 0 {
		cfg.IOConcurrency = defaultIOConcurrency
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var masters []string
	for _, m := range cfg.Masters {
		if m = strings.TrimSpace(m); m != "" && !contains(masters, m) {
			masters = append(masters, m)
		}
	}
	if len(masters) == 0 {
		return nil, fmt.Errorf("client: %w", detailf(ErrInvalid, "no master address"))
	}
	creds := grpc.WithTransportCredentials(insecure.NewCredentials())
	if cfg.TLSDir != "" {
		tc, err := auth.Load(cfg.TLSDir)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		creds = tc.DialOption(auth.RoleMaster, auth.RoleChunkserver)
	}
	id, err := randomID()
	if err != nil {
		return nil, fmt.Errorf("client: client id: %w", err)
	}
	return &Client{
		cfg:      cfg,
		log:      log,
		clientID: id,
		creds:    creds,
		clock:    clock.Or(cfg.Clock),
		masters:  masters,
		leader:   masters[0],
		conns:    make(map[string]*grpc.ClientConn),
	}, nil
}

func randomID() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return id, nil
		}
	}
}

// sleep waits d on the client's clock (a retry's backoff), or until ctx
// is done: then it returns ctx's error.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if !clock.Sleep(ctx, c.clock, d) {
		return ctx.Err()
	}
	return nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// Masters returns the master addresses the client knows, the current leader
// guess first.
func (c *Client) Masters() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []string{c.leader}
	for _, m := range c.masters {
		if m != c.leader {
			out = append(out, m)
		}
	}
	return out
}

// Close closes every connection. Files opened from c fail afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.closed = true
	var errs []error
	for addr, cc := range c.conns {
		if err := cc.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", addr, err))
		}
	}
	c.conns = nil
	return errors.Join(errs...)
}

// conn returns the (lazily created) connection to addr.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if cc := c.conns[addr]; cc != nil {
		return cc, nil
	}
	bc := backoff.DefaultConfig
	// gRPC's default reconnect backoff grows to 2 minutes; a restarted
	// server must be found again within one operation.
	bc.MaxDelay = time.Second
	opts := []grpc.DialOption{
		c.creds,
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 2 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
	}
	if c.cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(c.cfg.Dialer))
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

// opContext bounds one operation, retries included, by OpTimeout.
func (c *Client) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.OpTimeout)
}

// attemptContext bounds one RPC attempt.
func (c *Client) attemptContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.cfg.OpTimeout / 3
	if d > maxAttempt {
		d = maxAttempt
	}
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	return context.WithTimeout(ctx, d)
}

// ended reports whether ctx is done or past its deadline. gRPC ends a
// call at its deadline by its own timer, which may fire before the
// context's: a call can fail DeadlineExceeded while ctx.Err() is still
// nil, and the time tells which deadline it was.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// backoffDelay is the wait before retry number n (0-based): exponential from
// backoffInitial, capped at backoffMax, with jitter so clients spread out.
func backoffDelay(n int) time.Duration {
	d := time.Duration(float64(backoffInitial) * math.Pow(2, float64(min(n, 16))))
	if d > backoffMax {
		d = backoffMax
	}
	return d/2 + mrand.N(d/2+1)
}

// nextMaster moves the leader guess after a failure at addr: to hint when
// the failed master named a leader, else to the address after addr.
func (c *Client) nextMaster(addr, hint string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if hint != "" && hint != addr {
		if !contains(c.masters, hint) {
			c.masters = append(c.masters, hint)
		}
		c.leader = hint
		return
	}
	for i, m := range c.masters {
		if m == addr {
			c.leader = c.masters[(i+1)%len(c.masters)]
			return
		}
	}
	c.leader = c.masters[0]
}

func (c *Client) leaderGuess() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// callMaster runs fn against the master leader's Master service; see
// callLeader.
func callMaster[T any](ctx context.Context, c *Client, fn func(context.Context, api.MasterClient) (T, error)) (T, error) {
	return callLeader(ctx, c, func(ctx context.Context, cc *grpc.ClientConn) (T, error) {
		return fn(ctx, api.NewMasterClient(cc))
	})
}

// callLeader runs fn against the master leader, following NOT_LEADER
// redirects and failing over on transport errors, until ctx (which the caller
// bounds with opContext) is done. The error is the server's answer, ctx's
// error when the caller cancelled, or ErrMasterUnreachable. Every service the
// master serves (Master, Volumes, FS) goes through here.
func callLeader[T any](ctx context.Context, c *Client, fn func(context.Context, *grpc.ClientConn) (T, error)) (T, error) {
	var zero T
	var tried []string
	var lastErr error
	// One request id per operation, the same on every retry: a mutation the
	// old leader committed before failing over is not applied twice.
	ctx = metadata.AppendToOutgoingContext(ctx,
		mdClientID, strconv.FormatUint(c.clientID, 10), mdRequestID, strconv.FormatUint(c.reqSeq.Add(1), 10))
	for attempt := 0; ; attempt++ {
		addr := c.leaderGuess()
		if !contains(tried, addr) {
			tried = append(tried, addr)
		}
		cc, err := c.conn(addr)
		if err != nil {
			return zero, err
		}
		actx, cancel := c.attemptContext(ctx)
		resp, err := fn(actx, cc)
		expired := ended(actx) && !ended(ctx)
		cancel()
		if err == nil {
			return resp, nil
		}
		if ended(ctx) {
			return zero, c.unreachable(ctx, tried, lastErr, err)
		}
		switch classifyMaster(err, expired) {
		case masterDone:
			return zero, err
		case masterRedirect:
			hint := rpcerr.LeaderAddr(err)
			c.log.Debug("master redirect", "from", addr, "to", hint)
			c.nextMaster(addr, hint)
			lastErr = err
			// A named leader is tried at once; an unknown one (election
			// in progress) after a backoff.
			if hint != "" && hint != addr && attempt < 2*len(c.Masters()) {
				continue
			}
		case masterNext:
			c.log.Debug("master unreachable", "addr", addr, "err", err)
			c.nextMaster(addr, "")
			lastErr = err
		}
		if err := c.sleep(ctx, backoffDelay(attempt)); err != nil {
			return zero, c.unreachable(ctx, tried, lastErr, err)
		}
	}
}

// unreachable builds the error of a master call whose context ended: the
// caller's own cancellation as is, our OpTimeout as ErrMasterUnreachable.
func (c *Client) unreachable(ctx context.Context, tried []string, lastErr, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	if lastErr == nil {
		lastErr = err
	}
	return fmt.Errorf("%w at %s: %s", ErrMasterUnreachable, strings.Join(tried, ", "), shortCause(lastErr))
}
