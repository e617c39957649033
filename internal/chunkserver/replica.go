package chunkserver

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
)

// writeResult answers one waiting Write RPC.
type writeResult struct {
	seq uint64
	err error
}

// replica is one chunk replica served by this server.
type replica struct {
	handle    chunkstore.Handle
	chunkSize int64
	store     *chunkstore.Replica
	log       *slog.Logger
	// send enqueues a message for a peer; it never blocks.
	send func(to chain.NodeID, m *api.ChainMessage)

	poke       chan struct{} // cap 1: wakes the syncer
	done       chan struct{} // closed when the replica is dropped or the server closes
	syncerDone chan struct{} // closed when the syncer has returned

	mu        sync.Mutex
	node      *chain.Node
	stored    uint64        // highest seq applied to the store without error
	persisted uint64        // highest seq reported with Node.Persisted
	persistCh chan struct{} // closed and replaced whenever persisted advances or failed is set
	failed    error         // sticky: set by a store error; nothing is applied after it
	dropped   bool
	waiters   map[waitKey][]chan writeResult
	lastAck   *api.ChainMessage // last ack sent, re-sent when the stream to its peer is re-established
	lastAckTo chain.NodeID

	appliedEpoch   uint64 // epoch of the update at stored
	persistedEpoch uint64 // epoch of the update at persisted
	// verified: every block was checked since the replica was loaded
	// from disk (true for replicas created or copied by this process).
	// Reported to the master as evidence for recovery decisions.
	verified bool
	ulog     *updateLog // recent updates, for Fetch deltas
	// catchingUp: the replica joined a chain (or saw a gap) and may lack
	// updates its predecessor applied before forwarding to it; it serves
	// no reads until a catch-up Fetch is installed. catchUpRunning: a
	// catch-up goroutine is active.
	catchingUp     bool
	catchUpRunning bool
	// fencedThrough: the master said this server is not a member of the
	// chunk's chain at that epoch, so no client I/O is served at any
	// epoch <= fencedThrough (the replica stays a delta-resync base).
	fencedThrough uint64
	// rejoin: the replica was reloaded at Start. Its request-id memory is
	// gone and its durable seq may be behind its successor's (forward
	// before persist), so it must not act in a chain again before it
	// rejoins through Replicate: every Reconfigure moves fencedThrough up
	// with it, except one that makes it the sole member (no successor to
	// collide with; the master's last resort to keep the only copy).
	rejoin bool
	// onFail reports a store error to the master; called with mu held,
	// it must not block.
	onFail func(err error)
}

func (s *Server) newReplica(store *chunkstore.Replica) *replica {
	m := store.Meta()
	r := newReplica(s.id, store, m, s.log, s.peers.send)
	r.ulog = newUpdateLog(s.cfg.UpdateLogLen, m.AppliedEpoch, m.AppliedSeq)
	r.ulog.setAhead(blockRanges(store.AheadBlocks(), m.ChunkSize))
	r.appliedEpoch, r.persistedEpoch = m.AppliedEpoch, m.AppliedEpoch
	r.onFail = func(err error) { s.reportError(r.handle, r.node.Config().Epoch, err) }
	return r
}

func newReplica(self chain.NodeID, store *chunkstore.Replica, m chunkstore.Meta, log *slog.Logger, send func(chain.NodeID, *api.ChainMessage)) *replica {
	members := make([]chain.NodeID, len(m.Chain))
	for i, id := range m.Chain {
		members[i] = chain.NodeID(id)
	}
	r := &replica{
		handle:     m.Handle,
		chunkSize:  m.ChunkSize,
		store:      store,
		log:        log.With("handle", uint64(m.Handle)),
		send:       send,
		poke:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		syncerDone: make(chan struct{}),
		node:       chain.NewNode(self, chain.Config{Epoch: m.Epoch, Chain: members}, m.AppliedSeq),
		stored:     m.AppliedSeq,
		persisted:  m.AppliedSeq,
		persistCh:  make(chan struct{}),
		waiters:    make(map[waitKey][]chan writeResult),
		verified:   true,
	}
	go r.syncer()
	return r
}

// processReadyLocked carries out the node's pending Ready in order: send,
// apply, reply.
func (r *replica) processReadyLocked() {
	rd := r.node.Ready()
	for _, m := range rd.Messages {
		msg := messageToAPI(r.handle, m)
		if m.Type == chain.MsgAck {
			r.lastAck, r.lastAckTo = msg, m.To
		}
		r.send(m.To, msg)
	}
	applied := false
	for _, u := range rd.Apply {
		if r.failed == nil {
			if err := r.applyLocked(u); err != nil {
				r.failLocked(err)
			} else {
				r.stored, r.appliedEpoch = u.Seq, u.Epoch
				if r.ulog != nil {
					r.ulog.add(u.Epoch, u.Seq, u.Offset, u.Length)
				}
				applied = true
			}
		}
		if r.failed != nil {
			r.completeLocked(keyOf(u.Req, u.Seq), writeResult{err: r.failed})
		}
	}
	if applied {
		r.store.SetAppliedAt(r.appliedEpoch, r.stored)
		select {
		case r.poke <- struct{}{}:
		default:
		}
	}
	for _, rep := range rd.Replies {
		r.completeLocked(keyOf(rep.Req, rep.Seq), writeResult{seq: rep.Seq})
	}
}

func (r *replica) applyLocked(u chain.Update) error {
	if u.Offset < 0 || u.End() > r.chunkSize || u.Length < 0 {
		return fmt.Errorf("%w: update %d range [%d,%d) outside chunk of %d", chunkstore.ErrRange, u.Seq, u.Offset, u.End(), r.chunkSize)
	}
	switch u.Kind {
	case chain.KindWrite:
		return r.store.WriteAt(u.Data, u.Offset)
	case chain.KindZero:
		return r.store.Zero(u.Offset, u.Length)
	}
	return fmt.Errorf("%w: update %d of kind %d", ErrBadMessage, u.Seq, u.Kind)
}

// failLocked stops the replica after a store error: every waiter fails and
// nothing more is applied, persisted or acknowledged.
func (r *replica) failLocked(err error) {
	if r.failed != nil {
		return
	}
	r.failed = fmt.Errorf("%w: %w", ErrReplicaFailed, err)
	r.log.Error("replica failed", "err", err)
	if r.onFail != nil {
		r.onFail(err)
	}
	for k := range r.waiters {
		r.completeLocked(k, writeResult{err: r.failed})
	}
	close(r.persistCh)
	r.persistCh = make(chan struct{})
}

// waitKey names the Write RPCs waiting for one update: the request id, or
// for a write without one (never deduplicated) its sequence number.
type waitKey struct {
	req chain.RequestID
	seq uint64 // 0 unless req is zero
}

func keyOf(req chain.RequestID, seq uint64) waitKey {
	if req == (chain.RequestID{}) {
		return waitKey{seq: seq}
	}
	return waitKey{req: req}
}

func (r *replica) completeLocked(k waitKey, res writeResult) {
	for _, ch := range r.waiters[k] {
		ch <- res // cap 1, one result per channel
	}
	delete(r.waiters, k)
}

// failWaitersLocked answers every waiting Write RPC with err.
func (r *replica) failWaitersLocked(err error) {
	for k := range r.waiters {
		r.completeLocked(k, writeResult{err: err})
	}
}

func (r *replica) removeWaiter(k waitKey, ch chan writeResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := r.waiters[k]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(r.waiters, k)
	} else {
		r.waiters[k] = ws
	}
}

// syncer is the replica's group commit loop.
func (r *replica) syncer() {
	defer close(r.syncerDone)
	for {
		select {
		case <-r.poke:
		case <-r.done:
			return
		}
		r.mu.Lock()
		seq, epoch, persisted, failed := r.stored, r.appliedEpoch, r.persisted, r.failed
		r.mu.Unlock()
		if seq <= persisted || failed != nil {
			continue
		}
		err := r.store.Sync() // one fdatasync covers every update applied so far
		r.mu.Lock()
		if err != nil {
			r.failLocked(err)
		} else if r.failed == nil && !r.dropped && seq > r.persisted && seq <= r.stored {
			r.node.Persisted(seq)
			r.persisted, r.persistedEpoch = seq, epoch
			close(r.persistCh)
			r.persistCh = make(chan struct{})
			r.processReadyLocked()
		}
		r.mu.Unlock()
	}
}

// drop stops the replica: waiters fail with err and the syncer exits.
func (r *replica) drop(err error) {
	r.mu.Lock()
	if !r.dropped {
		r.dropped = true
		for k := range r.waiters {
			r.completeLocked(k, writeResult{err: err})
		}
		close(r.done)
	}
	r.mu.Unlock()
	<-r.syncerDone
}

// successor and predecessor of self in the current configuration (0: none).
func neighbours(self chain.NodeID, cfg chain.Config) (pred, succ chain.NodeID) {
	for i, id := range cfg.Chain {
		if id != self {
			continue
		}
		if i > 0 {
			pred = cfg.Chain[i-1]
		}
		if i+1 < len(cfg.Chain) {
			succ = cfg.Chain[i+1]
		}
		return pred, succ
	}
	return 0, 0
}

// peerReconnected re-sends what the broken stream to peer may have lost.
func (r *replica) peerReconnected(self, peer chain.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped {
		return
	}
	pred, succ := neighbours(self, r.node.Config())
	if succ == peer {
		r.node.ResendSent()
		r.processReadyLocked()
	}
	if pred == peer && r.lastAck != nil && r.lastAckTo == peer {
		r.send(peer, r.lastAck)
	}
}

// fencedLocked reports whether client I/O on r is forbidden: its
// configuration is one the master has fenced.
func (r *replica) fencedLocked() bool {
	return r.node.Config().Epoch <= r.fencedThrough
}

// storeErrCode maps a store error to the client's error code.
func storeErrCode(err error) api.ErrorCode {
	switch {
	case errors.Is(err, chunkstore.ErrNoSpace):
		return api.ErrorCode_NO_SPACE
	case errors.Is(err, chunkstore.ErrCorrupt):
		return api.ErrorCode_CORRUPT
	case errors.Is(err, chunkstore.ErrRange), errors.Is(err, chunkstore.ErrInvalidMeta):
		return api.ErrorCode_INVALID
	case errors.Is(err, chunkstore.ErrNotFound):
		return api.ErrorCode_NOT_FOUND
	}
	return api.ErrorCode_UNAVAILABLE
}

// blockRanges converts chunk store block numbers to byte ranges of a
// chunk of size bytes, merged.
func blockRanges(blocks []int64, size int64) []byteRange {
	rs := make([]byteRange, 0, len(blocks))
	for _, b := range blocks {
		off := b * chunkstore.BlockSize
		if off < size {
			rs = append(rs, byteRange{off, min(int64(chunkstore.BlockSize), size-off)})
		}
	}
	return mergeRanges(rs)
}

// corruptLocked handles a checksum mismatch found by a read, a scrub or a
// Fetch: the chunk store lists the bad blocks and refuses them, the rest
// of the replica keeps serving, and the master is told (it takes the
// replica out of a chain that has other members, and repair restores the
// bad blocks by delta resync).
func (r *replica) corruptLocked(err error) {
	r.log.Warn("replica has bad blocks", "blocks", r.store.BadBlocks(), "err", err)
	if r.onFail != nil {
		r.onFail(err)
	}
}
