package client

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc/metadata"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/rpcerr"
)

// maxCorruptTries bounds the reads of a piece that come back CORRUPT at one
// chain epoch: the master needs a moment to take a bad replica out of the
// chain (or to restore its bad blocks), so a read is retried after a
// refresh, at least corruptWait apart, before ErrCorrupt; an answer at a new
// epoch starts the count again.
const (
	maxCorruptTries = 3
	corruptWait     = 300 * time.Millisecond
)

// File is an open file. ReadAt and WriteAt are safe for concurrent use.
// Writes are durable on every replica when WriteAt returns; the new size is
// reported to the master on Sync or Close (close-to-open).
type File struct {
	c         *Client
	path      string
	info      FileInfo // as of Open/Create; Size is kept in size below
	chunkSize int64

	// fetchMu serializes chunk-map fetches so concurrent pieces of one
	// request do not ask the master for the same batch.
	fetchMu sync.Mutex
	// flushMu runs one size report at a time: callers that waited find
	// their size reported by the one before them, or send one for all
	// (concurrent Appends of one File share reports).
	flushMu sync.Mutex

	mu       sync.Mutex
	size     int64 // size at Open plus this File's writes and truncates
	reported int64 // size the master is known to hold
	chunks   map[int64]ChunkInfo
	known    map[int64]bool // batches (index/chunkBatch) fetched from the master
	closed   bool
	// appendIndex is the chunk this File's last record append went to
	// (records.go).
	appendIndex int64
	// session is a volume writer's session (overlay.go), named on every
	// chunk call; set before the first I/O.
	session string
}

// withSession names f's writer session, if any, on a master call.
func (f *File) withSession(ctx context.Context) context.Context {
	if f.session == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, mdSession, f.session)
}

func newFile(c *Client, path string, fi FileInfo) *File {
	cs := fi.ChunkSize
	if cs <= 0 {
		cs = DefaultChunkSize
	}
	return &File{
		c:         c,
		path:      path,
		info:      fi,
		chunkSize: cs,
		size:      fi.Size,
		reported:  fi.Size,
		chunks:    make(map[int64]ChunkInfo),
		known:     make(map[int64]bool),
	}
}

// Name returns the path the file was opened with.
func (f *File) Name() string { return f.path }

// Size returns the file size as this File knows it: the size at Open plus
// its own writes and truncates.
func (f *File) Size() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size
}

// Stat returns the file's info as of Open, with the size this File knows.
// It does not ask the master.
func (f *File) Stat() (*FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, opError("stat", f.path, ErrClosed)
	}
	fi := f.info
	fi.Size = f.size
	return &fi, nil
}

func (f *File) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// ReadAt reads len(p) bytes at off, as io.ReaderAt: it returns io.EOF with
// n < len(p) when the range passes the end of the file. Holes read as zeros.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// WriteAt writes p at off. The bytes are on every replica when it returns.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	return f.WriteAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt bounded by ctx (and OpTimeout).
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if f.isClosed() {
		return 0, opError("read", f.path, ErrClosed)
	}
	if off < 0 {
		return 0, opError("read", f.path, detailf(ErrInvalid, "negative offset %d", off))
	}
	size := f.Size()
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := len(p)
	if rest := size - off; int64(n) > rest {
		n = int(rest)
	}
	ctx, cancel := f.c.opContext(ctx)
	defer cancel()
	pieces := splitRange(off, n, f.chunkSize, f.c.cfg.MaxIOSize)
	fresh, err := f.freshHoles(ctx, pieces)
	if err != nil {
		return 0, opError("read", f.path, err)
	}
	done, err := f.run(ctx, pieces, func(ctx context.Context, pc piece) error {
		return f.readPiece(ctx, pc, p[pc.bufOff:pc.bufOff+pc.n], fresh)
	})
	if err != nil {
		return done, opError("read", f.path, err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAtContext is WriteAt bounded by ctx (and OpTimeout).
func (f *File) WriteAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if f.isClosed() {
		return 0, opError("write", f.path, ErrClosed)
	}
	if off < 0 {
		return 0, opError("write", f.path, detailf(ErrInvalid, "negative offset %d", off))
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off > MaxFileSize-int64(len(p)) {
		return 0, opError("write", f.path, detailf(ErrFileTooBig, "%d bytes at %d end past %d", len(p), off, int64(MaxFileSize)))
	}
	ctx, cancel := f.c.opContext(ctx)
	defer cancel()
	pieces := splitRange(off, len(p), f.chunkSize, f.c.cfg.MaxIOSize)
	done, err := f.run(ctx, pieces, func(ctx context.Context, pc piece) error {
		req := &api.WriteRequest{
			Kind:     api.UpdateKind_WRITE,
			Offset:   pc.chunkOff,
			Data:     p[pc.bufOff : pc.bufOff+pc.n],
			ClientId: f.c.clientID,
			// Fixed before the first attempt: every retry of this piece
			// carries the same id, so the chain applies it once.
			RequestId: f.c.reqSeq.Add(1),
		}
		_, err := f.update(ctx, pc.index, req, true)
		return err
	})
	if done > 0 {
		f.mu.Lock()
		f.size = max(f.size, off+int64(done))
		f.mu.Unlock()
	}
	if err != nil {
		return done, opError("write", f.path, err)
	}
	return done, nil
}

// run executes do for every piece with up to IOConcurrency in flight. It
// returns the number of bytes in the leading run of pieces that succeeded
// and the first error; an error cancels the pieces not yet done.
func (f *File) run(ctx context.Context, pieces []piece, do func(context.Context, piece) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(pieces))
	sem := make(chan struct{}, f.c.cfg.IOConcurrency)
	var wg sync.WaitGroup
	for i, pc := range pieces {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := do(ctx, pc); err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}
	wg.Wait()
	done := 0
	for i, pc := range pieces {
		if errs[i] != nil {
			return done, firstError(errs)
		}
		done += pc.n
	}
	return done, nil
}

// firstError prefers a real failure over the cancellations it caused.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// holeView is the master's answer, asked after a read began, for the
// chunks [lo, hi] that the cache did not hold when it began.
type holeView struct {
	lo, hi int64
	chunks map[int64]ChunkInfo
}

// freshHoles asks the master, in one call, about every chunk of pieces the
// cache does not hold (nil when it holds them all). A hole in the cache is
// not authoritative: another client may have allocated and written the
// chunk since the map was loaded, and a read that begins after that write
// was acknowledged must see it. The answer is also cached.
func (f *File) freshHoles(ctx context.Context, pieces []piece) (*holeView, error) {
	lo, hi := int64(-1), int64(-1)
	f.mu.Lock()
	for _, pc := range pieces {
		if _, ok := f.chunks[pc.index]; ok {
			continue
		}
		if lo < 0 || pc.index < lo {
			lo = pc.index
		}
		hi = max(hi, pc.index)
	}
	f.mu.Unlock()
	if lo < 0 {
		return nil, nil
	}
	v := &holeView{lo: lo, hi: hi, chunks: make(map[int64]ChunkInfo)}
	err := f.fetch(ctx, lo, hi-lo+1, func(chunks map[int64]ChunkInfo) {
		maps.Copy(v.chunks, chunks)
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// readPiece reads one piece from the tail of its chunk's chain. fresh, when
// it covers the piece's chunk, decides the first attempt's chain (or hole).
func (f *File) readPiece(ctx context.Context, pc piece, buf []byte, fresh *holeView) error {
	var lastErr error
	corrupt, corruptEpoch := 0, uint64(0)
	for attempt := 0; ; attempt++ {
		var (
			ci  ChunkInfo
			ok  bool
			err error
		)
		if attempt == 0 && fresh != nil && pc.index >= fresh.lo && pc.index <= fresh.hi {
			// Not the cache: a concurrent, older fetch may have refilled it
			// with a view from before this read began.
			ci, ok = fresh.chunks[pc.index]
		} else {
			ci, ok, err = f.chunk(ctx, pc.index, false)
		}
		if err != nil {
			if lastErr != nil && ended(ctx) {
				return retryTimeout(ctx, pc.index, lastErr, err)
			}
			return err
		}
		if !ok {
			clear(buf) // a hole: never fetched
			return nil
		}
		err = errEmptyChain
		expired := false
		if len(ci.Chain) > 0 {
			var resp *api.ReadResponse
			tail := ci.Chain[len(ci.Chain)-1]
			resp, expired, err = callChunk(ctx, f.c, tail.Addr, func(ctx context.Context, cs api.ChunkserverClient) (*api.ReadResponse, error) {
				return cs.Read(ctx, &api.ReadRequest{Handle: ci.Handle, Epoch: ci.Epoch, Offset: pc.chunkOff, Length: int64(pc.n), Capability: ci.cap})
			})
			if err == nil && resp.GetNoReplica() {
				// The tail never held a replica: if the master still names
				// it the tail at this epoch, no write to the chunk ever
				// became visible (the tail applies each one first), so the
				// range reads as zeros. After a reconfiguration (a
				// snapshot's fence) the head must hold none either: an
				// update it sequenced before, which the configuration
				// change counted as before it, may still be on its way to
				// create the tail's replica.
				if err = f.headHoldsNone(ctx, ci); err == nil {
					err = f.stillTail(ctx, pc.index, ci)
				}
				if err == nil {
					clear(buf)
					return nil
				}
			} else if err == nil {
				// A replica shorter than the range holds zeros past its end.
				m := copy(buf, resp.GetData())
				clear(buf[m:])
				return nil
			}
		}
		switch classifyChunk(err, expired) {
		case chunkDone:
			if ended(ctx) {
				return retryTimeout(ctx, pc.index, lastErr, err)
			}
			return err
		case chunkCorrupt:
			if ci.Epoch != corruptEpoch {
				corrupt, corruptEpoch = 0, ci.Epoch
			}
			if corrupt++; corrupt >= maxCorruptTries {
				// Name what is lost: the chunk, where in it, and the
				// tail's word on the block (catena status lists the
				// chunk with its lost blocks and files).
				return detailf(ErrCorrupt, "chunk %d (index %d), bytes [%d, %d) of the chunk: %s",
					ci.Handle, pc.index, pc.chunkOff, pc.chunkOff+int64(pc.n), rpcerr.Message(err))
			}
		}
		lastErr = err
		f.c.log.Debug("read retry", "path", f.path, "index", pc.index, "err", err)
		if classifyChunk(err, expired) == chunkCorrupt {
			if err := f.c.sleep(ctx, corruptWait); err != nil {
				return retryTimeout(ctx, pc.index, lastErr, err)
			}
		}
		if err := f.retryWait(ctx, pc.index, attempt, err); err != nil {
			if !ended(ctx) {
				return err // the master's answer to the refresh (the file is gone)
			}
			return retryTimeout(ctx, pc.index, lastErr, err)
		}
	}
}

// update sends a WRITE or ZERO update (or a record append) of chunk
// index to the head of its chain, refreshing the chain and retrying with
// the same request id until it is acknowledged. Without alloc an
// unallocated chunk is left alone (nil response).
func (f *File) update(ctx context.Context, index int64, req *api.WriteRequest, alloc bool) (*api.WriteResponse, error) {
	var lastErr error
	for attempt := 0; ; attempt++ {
		ci, ok, err := f.chunk(ctx, index, alloc)
		if err != nil {
			if lastErr != nil && ended(ctx) {
				return nil, retryTimeout(ctx, index, lastErr, err)
			}
			return nil, err
		}
		if !ok {
			return nil, nil
		}
		if ci.shared {
			// Shared with a snapshot or clone: the master forks it.
			if ci, _, err = f.allocate(ctx, index); err != nil {
				if lastErr != nil && ended(ctx) {
					return nil, retryTimeout(ctx, index, lastErr, err)
				}
				return nil, err
			}
		}
		err = errEmptyChain
		expired := false
		if len(ci.Chain) > 0 {
			req.Handle, req.Epoch, req.Create, req.Capability = ci.Handle, ci.Epoch, replicaSpec(ci), ci.cap
			var resp *api.WriteResponse
			resp, expired, err = callChunk(ctx, f.c, ci.Chain[0].Addr, func(ctx context.Context, cs api.ChunkserverClient) (*api.WriteResponse, error) {
				return cs.Write(ctx, req)
			})
			if err == nil {
				return resp, nil
			}
		}
		if classifyChunk(err, expired) == chunkDone {
			if ended(ctx) {
				return nil, retryTimeout(ctx, index, lastErr, err)
			}
			return nil, err
		}
		lastErr = err
		f.c.log.Debug("write retry", "path", f.path, "index", index, "request", req.RequestId, "err", err)
		if err := f.retryWait(ctx, index, attempt, err); err != nil {
			if !ended(ctx) {
				return nil, err // the master's answer to the refresh (the file is gone)
			}
			return nil, retryTimeout(ctx, index, lastErr, err)
		}
	}
}

// ReadOnly reports whether the file is in a snapshot (as the master said
// at open): its writes fail with ErrReadOnly.
func (f *File) ReadOnly() bool { return f.info.ReadOnly }

// errEmptyChain is retried like a stale chain: the master is repairing it.
var errEmptyChain = fmt.Errorf("chunk has no replicas: %w", ErrStaleEpoch)

// errChainMoved: a tail that never held a replica is no longer the tail at
// the epoch read; retried on the new chain.
var errChainMoved = fmt.Errorf("the tail holds no replica and the chain moved: %w", ErrStaleEpoch)

// errHeadHolds: the tail of a reconfigured chain holds no replica yet, and
// its head holds one: updates it sequenced may still reach the tail.
var errHeadHolds = fmt.Errorf("the tail holds no replica yet and the head does: %w", ErrStaleEpoch)

// headHoldsNone checks, for a chain configured since its chunk was
// allocated (epoch above 1), that its head never held a replica of it
// either (its Read answers no_replica too); nil for a chain of one or at
// its first epoch.
func (f *File) headHoldsNone(ctx context.Context, ci ChunkInfo) error {
	if len(ci.Chain) < 2 || ci.Epoch <= 1 {
		return nil
	}
	resp, _, err := callChunk(ctx, f.c, ci.Chain[0].Addr, func(ctx context.Context, cs api.ChunkserverClient) (*api.ReadResponse, error) {
		return cs.Read(ctx, &api.ReadRequest{Handle: ci.Handle, Epoch: ci.Epoch, Offset: 0, Length: 0, Capability: ci.cap})
	})
	if err == nil && !resp.GetNoReplica() {
		err = errHeadHolds
	}
	if err != nil && rpcerr.Code(err) == api.ErrorCode_NOT_TAIL {
		err = errHeadHolds
	}
	return err
}

// stillTail asks the master whether ci (whose tail answered that it never
// held a replica) is still chunk index's configuration: nil if it is,
// errChainMoved if not. The answer also refreshes the cache.
func (f *File) stillTail(ctx context.Context, index int64, ci ChunkInfo) error {
	if err := f.refresh(ctx, index); err != nil {
		return err
	}
	f.mu.Lock()
	cur, ok := f.chunks[index]
	f.mu.Unlock()
	if !ok || cur.Handle != ci.Handle || cur.Epoch != ci.Epoch || len(cur.Chain) != len(ci.Chain) ||
		cur.Chain[len(cur.Chain)-1].ID != ci.Chain[len(ci.Chain)-1].ID {
		return errChainMoved
	}
	return nil
}

// replicaSpec is what the head needs to create its replica of ci when it
// holds none yet (a new chunk's first write); nil when the master gave no
// chunk size.
func replicaSpec(ci ChunkInfo) *api.ReplicaSpec {
	if ci.size <= 0 {
		return nil
	}
	spec := &api.ReplicaSpec{ChunkSize: ci.size, Chain: make([]*api.ServerRef, 0, len(ci.Chain))}
	for _, s := range ci.Chain {
		spec.Chain = append(spec.Chain, &api.ServerRef{Id: s.ID, Addr: s.Addr})
	}
	return spec
}

// retryWait backs off and then reloads the chunk's chain from the master.
func (f *File) retryWait(ctx context.Context, index int64, attempt int, cause error) error {
	// A replica at a newer epoch than the cached one: the master committed
	// that epoch before it told the replica, so the first refresh goes at
	// once (after a snapshot, an overlay's attach or a repair, every
	// cached chunk of a writer meets this once).
	if attempt > 0 || rpcerr.Code(cause) != api.ErrorCode_STALE_EPOCH {
		if err := f.c.sleep(ctx, backoffDelay(attempt)); err != nil {
			return err
		}
	}
	return f.refresh(ctx, index)
}

// retryTimeout is the error of a chunk request whose context ended while
// retrying: the caller's cancellation as is, else a timeout naming the last
// chunkserver failure (not the refresh that the deadline happened to cut).
func retryTimeout(ctx context.Context, index int64, lastErr, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	if lastErr == nil {
		lastErr = err
	}
	return fmt.Errorf("chunk %d: %w (last error: %s)", index, context.DeadlineExceeded, shortCause(lastErr))
}

// callChunk runs one attempt of fn against the chunkserver at addr. expired
// reports whether the attempt's own deadline ended it.
func callChunk[T any](ctx context.Context, c *Client, addr string, fn func(context.Context, api.ChunkserverClient) (T, error)) (resp T, expired bool, err error) {
	cc, err := c.conn(addr)
	if err != nil {
		return resp, false, err
	}
	actx, cancel := c.attemptContext(ctx)
	defer cancel()
	resp, err = fn(actx, api.NewChunkserverClient(cc))
	return resp, err != nil && ended(actx) && !ended(ctx), err
}

// chunk returns chunk index from the cache, filling the cache from the master
// in batches. ok is false when the chunk is not allocated; with alloc it is
// allocated instead.
func (f *File) chunk(ctx context.Context, index int64, alloc bool) (ChunkInfo, bool, error) {
	batch := index / chunkBatch
	f.mu.Lock()
	ci, ok := f.chunks[index]
	known := f.known[batch]
	f.mu.Unlock()
	if ok {
		return ci, true, nil
	}
	if !known {
		if err := f.fetchBatch(ctx, batch); err != nil {
			return ChunkInfo{}, false, err
		}
		f.mu.Lock()
		ci, ok = f.chunks[index]
		f.mu.Unlock()
		if ok {
			return ci, true, nil
		}
	}
	if !alloc {
		return ChunkInfo{}, false, nil
	}
	return f.allocate(ctx, index)
}

// allocate asks the master for a chunk at index to write: a new one for
// a hole, a fork of its own for a shared one (snapshots, clones).
func (f *File) allocate(ctx context.Context, index int64) (ChunkInfo, bool, error) {
	resp, err := callMaster(f.withSession(ctx), f.c, func(ctx context.Context, m api.MasterClient) (*api.AllocateChunkResponse, error) {
		return m.AllocateChunk(ctx, &api.AllocateChunkRequest{Inode: f.info.Inode, Index: index})
	})
	if err != nil {
		return ChunkInfo{}, false, err
	}
	ci := chunkInfoFromAPI(resp.GetChunk())
	ci.Index = index
	f.mu.Lock()
	f.chunks[index] = ci
	f.mu.Unlock()
	return ci, true, nil
}

func (f *File) fetchBatch(ctx context.Context, batch int64) error {
	f.fetchMu.Lock()
	defer f.fetchMu.Unlock()
	f.mu.Lock()
	known := f.known[batch]
	f.mu.Unlock()
	if known {
		return nil
	}
	return f.fetch(ctx, batch*chunkBatch, chunkBatch, func(map[int64]ChunkInfo) { f.known[batch] = true })
}

// refresh reloads chunk index from the master after a chunkserver refused
// or failed a request on the cached chain.
func (f *File) refresh(ctx context.Context, index int64) error {
	return f.fetch(ctx, index, 1, nil)
}

// fetch replaces the cached chunks [first, first+count) with the master's
// view; onDone runs under f.mu with the result installed, and is handed
// the chunks of the answer.
func (f *File) fetch(ctx context.Context, first, count int64, onDone func(map[int64]ChunkInfo)) error {
	resp, err := callMaster(f.withSession(ctx), f.c, func(ctx context.Context, m api.MasterClient) (*api.GetChunksResponse, error) {
		return m.GetChunks(ctx, &api.GetChunksRequest{Inode: f.info.Inode, FirstIndex: first, Count: count})
	})
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := first; i < first+count; i++ {
		delete(f.chunks, i)
	}
	got := make(map[int64]ChunkInfo)
	for _, c := range resp.GetChunks() {
		if c.GetIndex() >= first && c.GetIndex() < first+count {
			got[c.GetIndex()] = chunkInfoFromAPI(c)
			f.chunks[c.GetIndex()] = got[c.GetIndex()]
		}
	}
	if onDone != nil {
		onDone(got)
	}
	return nil
}

// Sync reports the size to the master when this File extended the file.
// Data is already durable; Sync makes the size visible to other clients.
//
// With a flush barrier (SetFlushBarrier) and a file opened by its path,
// Sync then waits for the barrier with that path (a --sync-flush mirror
// of the tree holding the file: its checkpoint applied at the target).
func (f *File) Sync() error {
	if f.isClosed() {
		return opError("sync", f.path, ErrClosed)
	}
	if err := f.flush(context.Background()); err != nil {
		return err
	}
	if b := f.c.flushBarrier.Load(); b != nil && strings.HasPrefix(f.path, "/") {
		if err := (*b)(context.Background(), f.path); err != nil {
			return opError("sync", f.path, err)
		}
	}
	return nil
}

// Close flushes the size like Sync and closes the file. A second Close
// returns ErrClosed.
func (f *File) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return opError("close", f.path, ErrClosed)
	}
	f.closed = true
	f.mu.Unlock()
	return f.flush(context.Background())
}

// flush sends one SetSize(EXTEND) when the file grew since the last report.
func (f *File) flush(ctx context.Context) error {
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	f.mu.Lock()
	size, need := f.size, f.size > f.reported
	f.mu.Unlock()
	if !need {
		return nil
	}
	ctx, cancel := f.c.opContext(ctx)
	defer cancel()
	_, err := callMaster(ctx, f.c, func(ctx context.Context, m api.MasterClient) (*api.SetSizeResponse, error) {
		return m.SetSize(ctx, &api.SetSizeRequest{Inode: f.info.Inode, Size: size, Mode: api.SetSizeMode_EXTEND})
	})
	if err != nil {
		return opError("sync", f.path, err)
	}
	f.mu.Lock()
	f.reported = max(f.reported, size)
	f.mu.Unlock()
	return nil
}

// Truncate sets the file size to exactly size. Shrinking zeroes the cut part
// of the chunk that holds the new end, so growing later reads zeros there;
// growing leaves a hole. It must not run concurrently with writes to f.
func (f *File) Truncate(ctx context.Context, size int64) error {
	if f.isClosed() {
		return opError("truncate", f.path, ErrClosed)
	}
	if size < 0 {
		return opError("truncate", f.path, detailf(ErrInvalid, "negative size %d", size))
	}
	if size > MaxFileSize {
		return opError("truncate", f.path, detailf(ErrFileTooBig, "size %d past %d", size, int64(MaxFileSize)))
	}
	ctx, cancel := f.c.opContext(ctx)
	defer cancel()
	cs := f.chunkSize
	index, within := size/cs, size%cs
	// A fresh view of the chunk holding the new end and of the master's size.
	resp, err := callMaster(f.withSession(ctx), f.c, func(ctx context.Context, m api.MasterClient) (*api.GetChunksResponse, error) {
		return m.GetChunks(ctx, &api.GetChunksRequest{Inode: f.info.Inode, FirstIndex: index, Count: 1})
	})
	if err != nil {
		return opError("truncate", f.path, err)
	}
	f.mu.Lock()
	cur := max(f.size, resp.GetInfo().GetSize())
	delete(f.chunks, index)
	for _, c := range resp.GetChunks() {
		if c.GetIndex() == index {
			f.chunks[index] = chunkInfoFromAPI(c)
		}
	}
	_, allocated := f.chunks[index]
	f.mu.Unlock()

	// Zero before shrinking: a crash in between leaves zeros inside the
	// file, never stale bytes that a later grow would expose.
	if size < cur && within != 0 && allocated {
		end := min(cs, cur-index*cs)
		req := &api.WriteRequest{
			Kind:      api.UpdateKind_ZERO,
			Offset:    within,
			Length:    end - within,
			ClientId:  f.c.clientID,
			RequestId: f.c.reqSeq.Add(1),
		}
		if _, err := f.update(ctx, index, req, false); err != nil {
			return opError("truncate", f.path, err)
		}
	}
	_, err = callMaster(ctx, f.c, func(ctx context.Context, m api.MasterClient) (*api.SetSizeResponse, error) {
		return m.SetSize(ctx, &api.SetSizeRequest{Inode: f.info.Inode, Size: size, Mode: api.SetSizeMode_EXACT})
	})
	if err != nil {
		return opError("truncate", f.path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.size, f.reported = size, size
	for i := range f.chunks {
		if i*cs >= size {
			delete(f.chunks, i)
		}
	}
	return nil
}

// Reload, when this File has no size change of its own left to report,
// takes the master's size and forgets the cached chunk map, so reads see
// what other clients wrote and truncated and then published (close-to-open
// for a file that stayed open here). With changes of its own pending it
// does nothing: they win, as on NFS.
func (f *File) Reload(ctx context.Context) error {
	if f.isClosed() {
		return opError("reload", f.path, ErrClosed)
	}
	ctx, cancel := f.c.opContext(ctx)
	defer cancel()
	resp, err := callMaster(f.withSession(ctx), f.c, func(ctx context.Context, m api.MasterClient) (*api.GetChunksResponse, error) {
		return m.GetChunks(ctx, &api.GetChunksRequest{Inode: f.info.Inode, FirstIndex: 0, Count: 1})
	})
	if err != nil {
		return opError("reload", f.path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.size != f.reported {
		return nil
	}
	f.size = resp.GetInfo().GetSize()
	f.reported = f.size
	clear(f.chunks)
	clear(f.known)
	return nil
}
