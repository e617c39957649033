package chunkserver

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chain"
	"github.com/catena-io/catena/internal/chunkstore"
	"github.com/catena-io/catena/internal/rpcerr"
)

// writeResult answers one waiting Write RPC.
type writeResult struct {
	seq uint64
	off int64 // where it was applied (a record append's answer)
	err error
}

// replica is one chunk replica served by this server: its chain.Node,
// which decides every protocol question (admission, fencing, rejoin,
// catch-up, resend, the update log), and the means to carry out the
// node's batches: the store, the peers, the waiting Write RPCs and the
// group-commit syncer.
type replica struct {
	// s is the server: its peers carry the node's messages, its reporter
	// and tick loop hear of the replica's changes (a pointer, not a
	// closure each: a server may hold a million replicas).
	s         *Server
	handle    chunkstore.Handle
	chunkSize int64
	store     *chunkstore.Replica

	// pins counts the uses under way (acquire); used says the replica was
	// acquired since the last sweep (under s.mu). Only an unpinned replica
	// unused for a whole sweep period is made cold (cold.go).
	pins atomic.Int32
	used bool

	// syncers counts the running syncer (at most one). A syncer runs only
	// while there is something to sync, so an idle replica costs no
	// goroutine (a server may hold a million of them).
	syncers sync.WaitGroup

	mu   sync.Mutex
	node *chain.Node
	// persistCh and epochCh are made on first use (persistWaitLocked,
	// epochWaitLocked): most replicas of a server are idle, and nobody
	// waits on theirs.
	persistCh chan struct{} // closed and cleared whenever the node's persisted seq advances or failed is set
	epochCh   chan struct{} // closed and cleared whenever the node's configuration changes
	failed    error         // sticky store error (the node is told: Node.Fail)
	dropped   bool
	// appendEnd is where the next record append goes (the end of the
	// last non-zero byte), known for chain epoch appendEpoch (0: not
	// known; append.go).
	appendEnd   int64
	appendEpoch uint64
	// relayGap: an update from the predecessor was dropped for want of
	// chain memory, and none in order taken since (chainmem.go).
	relayGap bool
	// early: chain messages without data from an epoch the node has not
	// installed yet, stepped once it does (holdEarlyLocked).
	early []chain.Message
	// held is the node's retained update bytes as charged to the
	// server's chain memory (chargeLocked).
	held int64
	// relayHeld is the part of held charged against the bound on relays:
	// all of it, unless the node is its chain's head (chainmem.go).
	relayHeld int64
	waiters   map[waitKey][]chan writeResult
	// verified: every block was checked since the replica was loaded
	// from disk (true for replicas created or copied by this process).
	// Reported to the master as evidence for recovery decisions.
	verified       bool
	catchUpRunning bool // the catch-up goroutine is active
	syncing        bool // a syncer is running
	syncWanted     bool // updates were applied since the syncer last looked
	// told is what the reporter was last told of the replica
	// (noteLocked).
	told reportedState
}

// logger is the replica's logger (made when needed: logging is rare, and
// a logger each would cost every idle replica).
func (r *replica) logger() *slog.Logger { return r.s.log.With("handle", uint64(r.handle)) }

// reportedState is the part of a replica's api.ReplicaInfo that changes
// with its node or its checks (used bytes change with the applied seq).
type reportedState struct {
	epoch, persisted, persistedEpoch uint64
	fenced, verified, catchingUp     bool
}

// reportedLocked is r's reported state now.
func (r *replica) reportedLocked() reportedState {
	st := r.node.Status()
	return reportedState{st.Epoch, st.Persisted, st.PersistedEpoch, st.Fenced, r.verified && r.failed == nil, st.CatchingUp}
}

// noteLocked tells the reporter when the replica's reported state moved
// since it last did.
func (r *replica) noteLocked() {
	if now := r.reportedLocked(); now != r.told {
		r.told = now
		r.s.inv.noteChanged(r.handle)
	}
}

// newReplica returns the replica of store: a new one when cold is nil,
// else a cold one made active (cold.go), whose node starts from the
// store's metadata and the cold state (a replica loaded at Start starts
// fenced until it rejoins). Its node starts remembering reqs (a clone's:
// its source node's request ids), or else the request ids the store
// keeps with the replica (chain.Start.Requests; requests.go).
func (s *Server) newReplica(store *chunkstore.Replica, cold *coldState, reqs []chain.Remembered) *replica {
	m := store.Meta()
	if reqs == nil {
		reqs = nodeRequests(store.Requests())
	}
	var cs coldState
	if cold != nil {
		cs = *cold
	}
	st := chain.Start{
		Applied: m.AppliedSeq, AppliedEpoch: m.AppliedEpoch, Size: m.ChunkSize, Reloaded: cs.rejoining,
		Committed: cs.committed, Ahead: blockRanges(store.AheadBlocks(), m.ChunkSize), LogLen: s.cfg.UpdateLogLen,
		Requests: reqs,
	}
	members := make([]chain.NodeID, len(m.Chain))
	for i, id := range m.Chain {
		members[i] = chain.NodeID(id)
	}
	r := &replica{
		s:         s,
		handle:    m.Handle,
		chunkSize: m.ChunkSize,
		store:     store,
		node:      chain.NewNode(s.id, chain.Config{Epoch: m.Epoch, Chain: members}, st),
		verified:  cold == nil || cs.verified,
	}
	r.node.Fence(cs.fencedThrough)
	r.told = r.reportedLocked()
	if cold == nil {
		s.inv.noteChanged(r.handle) // new since the last report
	}
	return r
}

// addrOf returns the address of a server (this one included; "" when
// unknown), for the ReplicaSpec sent with first updates.
func (r *replica) addrOf(id chain.NodeID) string {
	if id == r.s.id {
		return r.s.addr
	}
	return r.s.peers.addr(id)
}

// processReadyLocked carries out the node's pending Ready in order: send,
// apply, reply.
func (r *replica) processReadyLocked() {
	rd := r.node.Ready()
	// Until the successor acknowledged an update it may not hold the
	// replica yet: updates carry what it needs to create it.
	withSpec := false
	for _, m := range rd.Messages {
		if m.Type == chain.MsgUpdate {
			withSpec = r.node.Status().SuccAck == 0
			break
		}
	}
	for _, m := range rd.Messages {
		out := messageToAPI(r.handle, m)
		if withSpec && m.Type == chain.MsgUpdate {
			out.Create = r.specLocked()
		}
		r.s.peers.send(m.To, out)
	}
	var last *chain.Update
	var reqs []chunkstore.Request
	for i, u := range rd.Apply {
		if r.failed == nil {
			if err := r.applyLocked(u); err != nil {
				r.failLocked(err)
			} else {
				last = &rd.Apply[i]
				if u.Req != (chain.RequestID{}) {
					reqs = append(reqs, chunkstore.Request{Client: u.Req.Client, ID: u.Req.Seq, Seq: u.Seq, Offset: u.Offset})
				}
				if u.Kind == chain.KindWrite && r.appendEpoch != 0 {
					r.appendEnd = max(r.appendEnd, u.Offset+u.Length)
				}
			}
		}
		if r.failed != nil {
			r.completeLocked(keyOf(u.Req, u.Seq), writeResult{err: r.failed})
		}
	}
	if last != nil {
		// The request ids go with the seq that accounts for their
		// updates, durable with them (requests.go).
		r.store.SetAppliedAt(last.Epoch, last.Seq, reqs...)
		r.wantSyncLocked()
	}
	for _, rep := range rd.Replies {
		r.completeLocked(keyOf(rep.Req, rep.Seq), writeResult{seq: rep.Seq, off: rep.Offset})
	}
	for _, rep := range rd.Abandoned {
		epoch := r.node.Config().Epoch
		r.completeLocked(keyOf(rep.Req, rep.Seq), writeResult{
			err: rpcerr.New(api.ErrorCode_STALE_EPOCH, "chunk %d: at epoch %d this replica is not the head", r.handle, epoch)})
	}
	if rd.CatchUp {
		r.s.startCatchUpLocked(r)
	}
	r.noteLocked()
	r.chargeLocked()
	if !r.node.Idle() {
		r.s.busy(r)
	}
}

// chargeLocked brings the server's chain memory up to date with what
// the node retains now (a dropped replica retains nothing).
func (r *replica) chargeLocked() {
	var now int64
	if !r.dropped {
		now = r.node.Retained()
	}
	if now != r.held {
		r.s.chargeChain(now - r.held)
		r.held = now
	}
	relay := now
	if r.node.IsHead() {
		relay = 0 // client data, bounded by the write memory
	}
	if relay != r.relayHeld {
		r.s.chainMem.relay.Add(relay - r.relayHeld)
		r.relayHeld = relay
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
	r.node.Fail()
	r.logger().Error("replica failed", "err", err)
	r.s.reportError(r.handle, r.node.Config().Epoch, err)
	for k := range r.waiters {
		r.completeLocked(k, writeResult{err: r.failed})
	}
	r.persistedLocked()
	r.noteLocked()
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

// wantSyncLocked asks for a group commit of what was applied, starting the
// syncer unless it runs (it then looks again before it returns).
func (r *replica) wantSyncLocked() {
	if r.dropped {
		return
	}
	r.syncWanted = true
	if !r.syncing {
		r.syncing = true
		r.syncers.Add(1)
		go r.syncer()
	}
}

// syncer is the replica's group commit loop: it runs while updates keep
// being applied, and returns once there is nothing left to sync.
func (r *replica) syncer() {
	defer r.syncers.Done()
	for {
		r.mu.Lock()
		if !r.syncWanted || r.dropped {
			r.syncing = false
			r.mu.Unlock()
			return
		}
		r.syncWanted = false
		st, failed := r.node.Status(), r.failed
		r.mu.Unlock()
		seq := st.Applied
		if seq <= st.Persisted || failed != nil {
			continue
		}
		err := r.store.Sync() // one fdatasync covers every update applied so far
		r.mu.Lock()
		if err != nil {
			r.failLocked(err)
		} else if !r.dropped {
			// The node ignores a seq it already has, or one a copy
			// installed meanwhile moved below.
			before := r.node.Status().Persisted
			r.node.Persisted(seq)
			if r.node.Status().Persisted != before {
				r.persistedLocked()
			}
			r.processReadyLocked()
		}
		r.mu.Unlock()
	}
}

// persistedLocked wakes the reads waiting for the node's persisted seq.
func (r *replica) persistedLocked() {
	if r.persistCh != nil {
		close(r.persistCh)
		r.persistCh = nil
	}
}

// persistWaitLocked returns a channel closed when the node's persisted seq
// next advances (or the replica fails).
func (r *replica) persistWaitLocked() <-chan struct{} {
	if r.persistCh == nil {
		r.persistCh = make(chan struct{})
	}
	return r.persistCh
}

// epochWaitLocked returns a channel closed when the node's configuration
// next changes.
func (r *replica) epochWaitLocked() <-chan struct{} {
	if r.epochCh == nil {
		r.epochCh = make(chan struct{})
	}
	return r.epochCh
}

// reconfiguredLocked wakes what waits for the node's configuration.
// maxEarly bounds the messages a replica holds for an epoch it has not
// installed yet.
const maxEarly = 8

// holdEarlyLocked keeps m, which the node refused with err, when it is of
// a later epoch than the node's and carries no data: the master pushes a
// new configuration to every member at once, so a head that installed it
// first sends its epoch start (chain package) before its successor knows
// the epoch. Held, it is stepped as soon as the successor installs the
// epoch (stepEarlyLocked) instead of when the head's re-send watchdog
// fires, and the successor serves reads a tick sooner. Updates with data
// are left to the watchdog (no memory held for them here).
func (r *replica) holdEarlyLocked(m chain.Message, err error) bool {
	if !errors.Is(err, chain.ErrStaleEpoch) || m.Epoch <= r.node.Config().Epoch || len(m.Update.Data) > 0 || len(r.early) >= maxEarly {
		return false
	}
	for _, h := range r.early {
		if h.Type == m.Type && h.From == m.From && h.Epoch == m.Epoch && h.Seq == m.Seq && h.Update.Seq == m.Update.Seq {
			return true // a re-send of one held
		}
	}
	r.early = append(r.early, m)
	return true
}

// stepEarlyLocked steps the held messages of the node's epoch, keeps
// those of later ones and drops the rest.
func (r *replica) stepEarlyLocked() {
	if len(r.early) == 0 {
		return
	}
	epoch := r.node.Config().Epoch
	held := r.early
	r.early = nil
	for _, m := range held {
		switch {
		case m.Epoch == epoch:
			if err := r.node.Step(m); err == nil {
				r.s.metrics.earlyStepped.Add(1)
			}
		case m.Epoch > epoch:
			r.early = append(r.early, m)
		}
	}
}

func (r *replica) reconfiguredLocked() {
	if r.epochCh != nil {
		close(r.epochCh)
		r.epochCh = nil
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
		r.chargeLocked()
	}
	r.mu.Unlock()
	r.syncers.Wait()
}

// peerReconnected tells the node the stream to peer was re-established.
func (r *replica) peerReconnected(peer chain.NodeID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped {
		return
	}
	r.node.PeerReconnected(peer)
	r.processReadyLocked()
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
func blockRanges(blocks []int64, size int64) []chain.Range {
	rs := make([]chain.Range, 0, len(blocks))
	for _, b := range blocks {
		off := b * chunkstore.BlockSize
		if off < size {
			rs = append(rs, chain.Range{Off: off, Len: min(int64(chunkstore.BlockSize), size-off)})
		}
	}
	return chain.MergeRanges(rs)
}

// corruptLocked handles a checksum mismatch found by a read, a scrub or a
// Fetch: the chunk store lists the bad blocks and refuses them, the rest
// of the replica keeps serving, and the master is told (it takes the
// replica out of a chain that has other members, and repair restores the
// bad blocks by delta resync).
func (r *replica) corruptLocked(err error) {
	r.logger().Warn("replica has bad blocks", "blocks", r.store.BadBlocks(), "err", err)
	r.s.reportError(r.handle, r.node.Config().Epoch, err)
	r.s.inv.noteChanged(r.handle) // its bad blocks, in the next report
}
