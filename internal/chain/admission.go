package chain

import (
	"fmt"

	"github.com/catena-io/catena/internal/invariants"
)

// Watchdog periods, in ticks (the caller ticks every node at one fixed
// period; internal/chunkserver uses its heartbeat interval).
const (
	// ResendTicks: a node re-sends its Sent list when its successor has
	// acknowledged nothing for this many ticks while updates wait there
	// (updates or acks lost in flight, or refused by a successor that did
	// not have the replica yet).
	ResendTicks = 2
	// CatchUpTicks: a node asks for a catch-up copy (Ready.CatchUp) when a
	// gap in its sequence stayed open this many ticks with nothing applied
	// (its predecessor cannot re-send updates it applied before this node
	// became its successor). Longer than two of the predecessor's re-send
	// periods: a gap is most often updates this node refused while it had
	// not yet installed its predecessor's new epoch (the head's epoch
	// start, sent right after its Reconfigure), which a re-send fills at
	// the cost of those updates, not of a copy of the chunk.
	CatchUpTicks = 2*ResendTicks + 1
)

// admitWrite decides whether the node may sequence client write w, before
// its contents are looked at. In order: a failed replica takes nothing; a
// fenced configuration takes no client I/O; the epoch must be the node's;
// only the head sequences; and only under a lease.
func (n *Node) admitWrite(w ClientWrite) error {
	switch {
	case n.failed:
		return ErrFailed
	case n.Fenced():
		return fmt.Errorf("%w: configuration at epoch %d", ErrFenced, n.cfg.Epoch)
	case w.Epoch != n.cfg.Epoch:
		return &StaleEpochError{What: "write", Got: w.Epoch, Have: n.cfg.Epoch}
	case !n.isHead():
		return fmt.Errorf("%w: node %d is %s", ErrNotHead, n.self, n.role)
	case !w.Leased:
		return ErrNoLease
	}
	return nil
}

// AdmitRead decides whether the node may serve a client read now: at its
// epoch, not fenced, as the tail (or single), with a sound store, caught
// up, under a lease. When admitted it returns the sequence number that
// must be durable locally (Status().Persisted) before the bytes are read:
// everything applied so far, so a read never returns what a crash of this
// node could take back.
func (n *Node) AdmitRead(r ReadRequest) (waitFor uint64, err error) {
	switch {
	case r.Epoch != n.cfg.Epoch:
		return 0, &StaleEpochError{What: "read", Got: r.Epoch, Have: n.cfg.Epoch}
	case n.Fenced():
		return 0, fmt.Errorf("%w: configuration at epoch %d", ErrFenced, n.cfg.Epoch)
	case n.role != RoleTail && n.role != RoleSingle:
		return 0, fmt.Errorf("%w: node %d is %s", ErrNotTail, n.self, n.role)
	case n.failed:
		return 0, ErrFailed
	case n.catchingUp:
		return 0, ErrCatchingUp
	case n.starting():
		return 0, fmt.Errorf("%w: epoch %d not started here (no update of it applied)", ErrCatchingUp, n.cfg.Epoch)
	case !r.Leased:
		return 0, ErrNoLease
	}
	return n.applied, nil
}

// AdmitSettled decides whether the replica's state may be taken as its
// chain's at epoch, without the chain, by a local operation that reads
// the whole replica: a fork's clone (CloneReplica) or a mirror's diff of
// two replicas. The node must be a member at that epoch, unfenced, with
// a sound store, and settled (nothing in flight, everything applied
// durable and acknowledged downstream, no catch-up, its epoch started), so that every member holds the same committed updates and
// no update of an earlier epoch is still on its way to it.
func (n *Node) AdmitSettled(epoch uint64) error {
	switch {
	case epoch != n.cfg.Epoch:
		return &StaleEpochError{What: "settled state", Got: epoch, Have: n.cfg.Epoch}
	case n.Fenced():
		return fmt.Errorf("%w: configuration at epoch %d", ErrFenced, n.cfg.Epoch)
	case n.role == RoleNone:
		return fmt.Errorf("%w: node %d is no member at epoch %d", ErrFenced, n.self, n.cfg.Epoch)
	case n.failed:
		return ErrFailed
	case !n.settled():
		return fmt.Errorf("%w: %d sent, %d buffered, %d waiting, persisted %d of %d, catching up %v, epoch started %v",
			ErrNotSettled, len(n.sent), len(n.pending), len(n.waiting), n.persisted, n.applied, n.catchingUp, !n.starting())
	}
	return nil
}

// AdmitRestore decides whether the replica may rewrite its bad blocks
// from other replicas, as planned by the master at configuration epoch:
// only as the sole member (in a longer chain a local rewrite would make
// the replicas differ; a bad member there leaves the chain and returns by
// delta resync), at that epoch, with a sound store.
func (n *Node) AdmitRestore(epoch uint64) error {
	switch {
	case n.failed:
		return ErrFailed
	case epoch != n.cfg.Epoch:
		return &StaleEpochError{What: "restore", Got: epoch, Have: n.cfg.Epoch}
	case n.role != RoleSingle:
		return fmt.Errorf("%w: node %d is %s", ErrNotSole, n.self, n.role)
	}
	return nil
}

// Fence records that the master says this server is not a member of the
// chunk's chain at configurations up to epoch: no client I/O at any epoch
// <= epoch (the replica stays a delta-resync base). It reports whether the
// current configuration became fenced by this call.
func (n *Node) Fence(epoch uint64) bool {
	if epoch <= n.fencedThrough {
		return false
	}
	was := n.Fenced()
	n.fencedThrough = epoch
	return !was && n.Fenced()
}

// Fenced reports whether the current configuration is fenced.
func (n *Node) Fenced() bool { return n.cfg.Epoch <= n.fencedThrough }

// Fail records that the local store failed: the node admits no client
// I/O and ignores Persisted from now on, so nothing more is acknowledged
// through it.
func (n *Node) Fail() { n.failed = true }

// Tick advances the node's watchdogs by one period: after ResendTicks
// ticks without ack progress while updates wait in Sent, the Sent list is
// re-sent; after CatchUpTicks ticks with a gap open and nothing applied,
// Ready.CatchUp asks for a catch-up copy. Each counts the ticks at which
// its condition held with no progress since the tick before, so it fires
// between N-1 and N periods after progress stopped.
func (n *Node) Tick() {
	if len(n.sent) > 0 && n.acked == n.tickAcked {
		n.stalledTicks++
	} else {
		n.stalledTicks = 0
	}
	n.tickAcked = n.acked
	if n.stalledTicks >= ResendTicks {
		n.stalledTicks = 0
		n.ResendSent()
	}
	if len(n.pending) > 0 && n.applied == n.tickApplied {
		n.gapTicks++
	} else {
		n.gapTicks = 0
	}
	n.tickApplied = n.applied
	if n.gapTicks >= CatchUpTicks {
		n.gapTicks = 0
		n.rd.CatchUp = true
	}
}

// Idle reports whether Tick would change nothing: no update waits for an
// ack or behind a gap, and the watchdogs' counters are at rest. A
// chunkserver ticks only the nodes that are not idle (it may hold a
// million), and asks again after each batch it carries out.
func (n *Node) Idle() bool {
	return len(n.sent) == 0 && len(n.pending) == 0 && n.stalledTicks == 0 && n.gapTicks == 0 &&
		n.tickAcked == n.acked && n.tickApplied == n.applied
}

// PeerReconnected tells the node that the stream to peer was
// re-established: whatever went over the old one may be lost. To a
// successor the Sent list is re-sent; to a predecessor the cumulative ack.
func (n *Node) PeerReconnected(peer NodeID) {
	if peer == 0 {
		return
	}
	if peer == n.succ {
		n.ResendSent()
	}
	if peer == n.pred && n.acked > 0 {
		n.sendAck()
	}
}

// CatchUp names what a catch-up copy must be fetched as: the
// predecessor's state since (SinceEpoch, SinceSeq), at configuration
// Epoch (the source waits until it has that epoch itself).
type CatchUp struct {
	From                 NodeID
	SinceEpoch, SinceSeq uint64
	Epoch                uint64
}

// CatchUpTarget returns the catch-up copy the node needs now, if any: it
// is catching up or a gap is open, and it has a predecessor. A node
// without a predecessor has nothing to catch up from (it is the head, the
// source of its chain's history) and stops catching up.
func (n *Node) CatchUpTarget() (CatchUp, bool) {
	if n.pred == 0 {
		n.catchingUp = false
		return CatchUp{}, false
	}
	if n.failed || (!n.catchingUp && len(n.pending) == 0) {
		return CatchUp{}, false
	}
	return CatchUp{From: n.pred, SinceEpoch: n.appliedEpoch, SinceSeq: n.applied, Epoch: n.cfg.Epoch}, true
}

// CatchUpVerdict says what to do with a fetched catch-up copy.
type CatchUpVerdict uint8

const (
	// CatchUpRetry: the configuration changed since the fetch began (or
	// the store failed); fetch again from CatchUpTarget.
	CatchUpRetry CatchUpVerdict = iota + 1
	// CatchUpInstall: write the copy durably, then InstallCatchUp.
	CatchUpInstall
	// CatchUpDone: the copy holds nothing newer; the catch-up is over.
	CatchUpDone
)

// CheckCatchUp judges a catch-up copy fetched for target, consistent at
// seq. On CatchUpDone the node is no longer catching up.
func (n *Node) CheckCatchUp(target CatchUp, seq uint64) CatchUpVerdict {
	switch {
	case n.failed || n.cfg.Epoch != target.Epoch || n.pred != target.From:
		return CatchUpRetry
	case seq > n.applied:
		return CatchUpInstall
	}
	n.catchingUp = false
	return CatchUpDone
}

// Resync takes the node out of service before its replica is replaced by
// a copy (delta or full) from another member: it installs cfg (in which
// it is not a member) and forgets what it had in flight; its waiting
// writes go to Ready.Abandoned. A reloaded node is rejoining now: the
// join's epoch lifts its fence.
func (n *Node) Resync(cfg Config) {
	n.abandonWaiting()
	n.install(cfg)
	n.clearSent()
	clear(n.pending)
	n.rejoining, n.catchingUp = false, false
	n.startEpoch = 0
	n.stalledTicks, n.gapTicks = 0, 0
	n.check()
}

// InstallCopy records that the caller replaced the replica, durably, by a
// copy of another member's state at (epoch, seq): the node starts afresh
// there (a returning replica's own later, unacknowledged updates are gone),
// with the source's ahead ranges. Call it after Resync.
func (n *Node) InstallCopy(epoch, seq uint64, ahead []Range) {
	n.abandonWaiting()
	n.reset(n.cfg, seq, epoch, ahead)
	n.rejoining, n.catchingUp = false, false
	n.check()
}

// Since returns the byte ranges changed after (epoch, seq), for a delta
// resync, and whether the node's update log can tell (see UpdateLog).
func (n *Node) Since(epoch, seq uint64) ([]Range, bool) { return n.log.Since(epoch, seq) }

// NoBytesSince reports whether the updates applied after seq changed no
// byte, and the epoch of the update at seq (UpdateLog.NoBytesSince).
func (n *Node) NoBytesSince(seq uint64) (uint64, bool) { return n.log.NoBytesSince(seq) }

// Ahead returns the ranges every delta from this replica re-sends.
func (n *Node) Ahead() []Range { return n.log.Ahead() }

// AddAhead adds a range rewritten outside the update sequence (a block
// restored from another replica): every later delta re-sends it.
func (n *Node) AddAhead(r Range) { n.log.AddAhead(r) }

// check asserts the node's invariants under the invariants build tag.
func (n *Node) check() {
	if !invariants.Enabled {
		return
	}
	invariants.Check(n.acked <= n.persisted && n.persisted <= n.applied,
		"node %d: acked %d <= persisted %d <= applied %d", n.self, n.acked, n.persisted, n.applied)
	var flying int64
	for _, u := range n.sent[:min(n.flight, len(n.sent))] {
		flying += int64(len(u.Data))
	}
	invariants.Check(n.flight <= len(n.sent) && flying == n.flightBytes,
		"node %d: %d of %d sent updates in flight, %d bytes counted of %d", n.self, n.flight, len(n.sent), n.flightBytes, flying)
	for i, u := range n.sent {
		invariants.Check(u.Seq <= n.applied && (i == 0 || n.sent[i-1].Seq < u.Seq),
			"node %d: Sent[%d] seq %d out of order or beyond applied %d", n.self, i, u.Seq, n.applied)
	}
	for seq := range n.pending {
		invariants.Check(seq > n.applied+1, "node %d: pending seq %d with applied %d", n.self, seq, n.applied)
	}
	invariants.Check(n.log.LastSeq() == n.applied, "node %d: update log ends at %d, applied %d", n.self, n.log.LastSeq(), n.applied)
	invariants.Check(n.succ != 0 || len(n.sent) == 0, "node %d: Sent list without a successor", n.self)
}

// FencedThrough is the highest epoch at which the node admits no client
// I/O (0: none).
func (n *Node) FencedThrough() uint64 { return n.fencedThrough }

// Quiescent reports whether the node holds nothing but what its replica
// and its admission state say: nothing in flight or buffered, no write
// waiting for its commit, everything applied durable, no catch-up, its
// epoch started (a follower applied an update of it), no damaged range,
// no batch pending, the store sound. A chunkserver may
// then drop the node and later rebuild it with NewNode from its replica's
// metadata (Start) and Fence(FencedThrough()): the rebuilt node differs
// only in what it forgot (the update log, its successor's acks), which a
// reload forgets too; its request ids come back through Start.Requests.
func (n *Node) Quiescent() bool {
	return n.Idle() && n.settled()
}

// settled reports whether the node holds exactly what its replica says
// and every member after it acknowledged: nothing sent unacknowledged,
// buffered or waiting for its commit, everything applied durable, no
// catch-up, its epoch started, no damaged range, no batch pending, the
// store sound. Unlike Quiescent it does not wait for a watchdog tick to
// see the counters at rest (a fork's clone right after a snapshot's
// epoch start committed need not wait a tick).
func (n *Node) settled() bool {
	return len(n.sent) == 0 && len(n.pending) == 0 && len(n.waiting) == 0 && n.persisted == n.applied &&
		!n.catchingUp && !n.starting() && !n.failed && len(n.damaged) == 0 && n.rd.Empty()
}
