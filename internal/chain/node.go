package chain

import (
	"fmt"
	"slices"
)

// Role is a node's position in its chain.
type Role uint8

const (
	RoleNone   Role = iota // not a member of the current configuration
	RoleHead               // first of several
	RoleMiddle             // neither first nor last
	RoleTail               // last of several
	RoleSingle             // the only member: head and tail at once
)

func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RoleHead:
		return "head"
	case RoleMiddle:
		return "middle"
	case RoleTail:
		return "tail"
	case RoleSingle:
		return "single"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

const (
	// reqMemory is how many recent request ids a node remembers for
	// deduplication. A retry older than that is applied again.
	reqMemory = 4096
	// maxPending bounds the out-of-order buffer. An update beyond it is
	// dropped; the predecessor re-sends it from its Sent list.
	maxPending = 4096
)

// reqEntry is one remembered request id, the sequence number it got and
// the offset it was applied at (a record append's answer).
type reqEntry struct {
	req RequestID
	seq uint64
	off int64
}

// Node is the chain-replication state machine of one replica of one chunk.
// It is not safe for concurrent use: the caller serialises every call.
type Node struct {
	self NodeID
	cfg  Config
	role Role
	pred NodeID // 0 when head, single or not a member
	succ NodeID // 0 when tail, single or not a member

	applied   uint64 // highest seq handed out in Apply
	persisted uint64 // highest seq reported durable; <= applied
	succAck   uint64 // successor's highest cumulative ack
	acked     uint64 // durable here and downstream; never decreases

	sent []Update // forwarded, not acked by the successor; ascending seq
	// flight: sent[:flight] went to the successor, the rest waits for the
	// send window (sendWindow); flightBytes is their data's size.
	flight      int
	flightBytes int64
	pending     map[uint64]Update // buffered out-of-order updates, seq > applied+1

	reqs    map[RequestID]reqEntry // request id -> its entry, the last reqMemory ids
	reqRing []reqEntry             // insertion order of reqs, for eviction
	reqHead int                    // oldest entry in reqRing once it is full
	reqCap  int

	waiting map[uint64]reqEntry // head only: seq -> request to answer on commit

	damaged []Range // ranges the local replica cannot verify (SetDamaged)

	size           int64  // chunk size (0: unbounded)
	appliedEpoch   uint64 // epoch of the update at applied
	persistedEpoch uint64 // epoch of the update at persisted
	log            *UpdateLog

	// Admission (admission.go).
	fencedThrough uint64 // no client I/O at any epoch <= this
	rejoining     bool   // reloaded, not yet rejoined: Reconfigure keeps it fenced
	catchingUp    bool   // may lack updates the predecessor applied before us
	failed        bool   // the local store failed
	// startEpoch: a follower installed this epoch by Reconfigure and
	// takes it as started once it applied an update of it (the head's
	// epoch start, proposed after re-sending its Sent list): until then
	// updates of earlier epochs may still reach it (see starting).
	startEpoch uint64

	// Watchdogs (Tick).
	stalledTicks int    // ticks with updates in Sent and no ack progress
	tickAcked    uint64 // acked at the last tick
	gapTicks     int    // ticks a gap stayed open with nothing applied
	tickApplied  uint64 // applied at the last tick

	rd Ready
}

// NewNode returns the state machine of node self in configuration cfg,
// starting from what its local replica holds (see Start).
func NewNode(self NodeID, cfg Config, st Start) *Node {
	logLen := st.LogLen
	if logLen <= 0 {
		logLen = DefaultLogLen
	}
	n := &Node{
		self:   self,
		size:   st.Size,
		reqCap: reqMemory,
		log:    NewUpdateLog(logLen, st.AppliedEpoch, st.Applied),
		// pending, reqs and waiting are made by their first entry: a
		// chunkserver holds many idle nodes.
	}
	n.reset(cfg, st.Applied, st.AppliedEpoch, st.Ahead)
	n.RememberRequests(st.Requests)
	if st.Committed {
		n.acked = st.Applied
		n.tickAcked = n.acked
	}
	if st.Reloaded {
		n.rejoining = true
		n.fencedThrough = cfg.Epoch
	}
	n.check()
	return n
}

// reset makes the node a fresh one at (epoch, seq) in cfg: nothing in
// flight, nothing buffered, no request ids, the update log restarted.
func (n *Node) reset(cfg Config, seq, epoch uint64, ahead []Range) {
	n.applied, n.persisted, n.acked, n.succAck = seq, seq, 0, 0
	n.appliedEpoch, n.persistedEpoch = epoch, epoch
	n.clearSent()
	clear(n.pending)
	clear(n.reqs)
	n.reqRing, n.reqHead = nil, 0
	n.log.Reset(epoch, seq)
	n.log.SetAhead(ahead)
	n.install(cfg)
	n.startEpoch = 0
	if n.succ == 0 {
		// A tail (or single, or non-member) commits what it holds durably.
		n.acked = seq
	}
	n.stalledTicks, n.gapTicks, n.tickAcked, n.tickApplied = 0, 0, n.acked, seq
}

// install sets the configuration and the derived role and neighbours.
func (n *Node) install(cfg Config) {
	n.cfg = Config{Epoch: cfg.Epoch, Chain: slices.Clone(cfg.Chain)}
	n.role, n.pred, n.succ = RoleNone, 0, 0
	i := slices.Index(n.cfg.Chain, n.self)
	if i < 0 {
		return
	}
	last := len(n.cfg.Chain) - 1
	if i > 0 {
		n.pred = n.cfg.Chain[i-1]
	}
	if i < last {
		n.succ = n.cfg.Chain[i+1]
	}
	switch {
	case last == 0:
		n.role = RoleSingle
	case i == 0:
		n.role = RoleHead
	case i == last:
		n.role = RoleTail
	default:
		n.role = RoleMiddle
	}
}

func (n *Node) isHead() bool { return n.role == RoleHead || n.role == RoleSingle }

// IsHead reports whether the node takes client updates (head or single
// member): what it retains then came from clients, not from a predecessor.
func (n *Node) IsHead() bool { return n.isHead() }

// Propose sequences a client write. Only the head accepts writes
// (ErrNotHead); the epoch must match (ErrStaleEpoch). A write whose
// RequestID was already sequenced is not applied again: if it is already
// acknowledged its Reply appears in the next Ready, otherwise it is answered
// when the original commits. The zero RequestID is never deduplicated.
// Data is retained (in Apply and the Sent list): the caller must not
// modify it afterwards.
func (n *Node) Propose(w ClientWrite) error {
	if err := n.admitWrite(w); err != nil {
		return err
	}
	length := w.Length
	switch w.Kind {
	case KindWrite:
		length = int64(len(w.Data))
	case KindZero:
	default:
		return fmt.Errorf("%w: kind %d", ErrInvalid, w.Kind)
	}
	if w.Offset < 0 || length < 0 || (n.size > 0 && (w.Offset > n.size || length > n.size-w.Offset)) {
		return fmt.Errorf("%w: range [%d, +%d) outside chunk of %d bytes", ErrInvalid, w.Offset, length, n.size)
	}
	if e, ok := n.reqs[w.Req]; ok && w.Req != (RequestID{}) {
		if seq := e.seq; seq <= n.acked {
			n.rd.Replies = append(n.rd.Replies, Reply{Req: w.Req, Seq: seq, Offset: e.off})
		} else {
			// In flight: one Reply when it commits, however many retries.
			n.wait(seq, w.Req, e.off)
		}
		return nil
	}
	for _, d := range n.damaged {
		end, dend := w.Offset+length, d.Off+d.Len
		if w.Offset < dend && end > d.Off && (w.Offset > d.Off || end < dend) {
			return fmt.Errorf("%w: [%d, %d) covers part of [%d, %d)", ErrDamaged, w.Offset, end, d.Off, dend)
		}
	}
	u := Update{
		Epoch:  n.cfg.Epoch,
		Seq:    n.applied + 1,
		Kind:   w.Kind,
		Offset: w.Offset,
		Length: length,
		Req:    w.Req,
	}
	if w.Kind == KindWrite {
		u.Data = w.Data
	}
	n.wait(u.Seq, w.Req, u.Offset)
	n.apply(u)
	n.check()
	return nil
}

// SetDamaged tells the node which ranges of its local replica do not
// verify (whole checksum blocks, from the caller's store). The head then
// refuses client writes that cover one of them only in part (ErrDamaged):
// they would need its old bytes. A write covering a range whole is
// admitted (it heals the range); retries of sequenced writes are answered
// as usual. Followers apply what their predecessor sends regardless.
func (n *Node) SetDamaged(rs []Range) { n.damaged = slices.Clone(rs) }

// apply hands u (seq == applied+1) to the caller and forwards it.
func (n *Node) apply(u Update) {
	n.applied, n.appliedEpoch = u.Seq, u.Epoch
	n.log.Add(u.Epoch, u.Seq, Range{Off: u.Offset, Len: u.Length})
	n.remember(u.Req, u.Seq, u.Offset)
	n.rd.Apply = append(n.rd.Apply, u)
	if n.succ != 0 {
		n.sent = append(n.sent, u)
		n.pump()
	}
}

// sendWindow bounds the update bytes a node has sent to its successor
// and not had acknowledged: a credit per chain, so that one busy chain
// neither fills its successor's memory nor gets its updates dropped
// there (internal/chunkserver's chain memory). Updates past it wait in
// the Sent list, unsent, and go as acknowledgements come back; at the
// head the client writes wait with them, which is the backpressure a
// client meets. One update always goes, whatever its size.
var sendWindow int64 = 8 << 20

// pump sends the Sent list's waiting updates the window has room for.
func (n *Node) pump() {
	for n.flight < len(n.sent) && (n.flight == 0 || n.flightBytes+int64(len(n.sent[n.flight].Data)) <= sendWindow) {
		u := n.sent[n.flight]
		n.flight++
		n.flightBytes += int64(len(u.Data))
		n.send(u)
	}
}

// clearSent empties the Sent list.
func (n *Node) clearSent() {
	n.sent, n.flight, n.flightBytes = nil, 0, 0
}

func (n *Node) send(u Update) {
	n.rd.Messages = append(n.rd.Messages, Message{
		Type: MsgUpdate, From: n.self, To: n.succ, Epoch: n.cfg.Epoch, Update: u,
	})
}

// Known reports whether req is a remembered request (a retry): Propose
// answers it with its first sequence number and offset, whatever the
// retry says.
func (n *Node) Known(req RequestID) bool {
	_, ok := n.reqs[req]
	return ok && req != (RequestID{})
}

// Requests returns the request ids the node remembers, oldest first
// (for Start.Requests).
func (n *Node) Requests() []Remembered {
	out := make([]Remembered, 0, len(n.reqRing))
	seen := make(map[RequestID]bool, len(n.reqRing))
	for i := range n.reqRing {
		e := n.reqRing[(n.reqHead+i)%len(n.reqRing)]
		if cur, ok := n.reqs[e.req]; ok && !seen[e.req] {
			seen[e.req] = true
			out = append(out, Remembered{Req: cur.req, Seq: cur.seq, Offset: cur.off})
		}
	}
	return out
}

// RememberRequests adds request ids another replica of the chunk
// remembers (Requests), of updates at or below what this node holds:
// after InstallCatchUp or InstallCopy, whose installed range came with no
// request ids, those its source sent (a catch-up's or copy's last
// message), so that a client's retry of one of those writes is answered,
// not applied again, should this node become the head. Ids it knows are
// left as they are.
func (n *Node) RememberRequests(reqs []Remembered) {
	for _, r := range reqs {
		if r.Seq <= n.applied && r.Seq > 0 && !n.Known(r.Req) {
			n.remember(r.Req, r.Seq, r.Offset)
		}
	}
}

// wait records that the head answers req when seq commits.
func (n *Node) wait(seq uint64, req RequestID, off int64) {
	if n.waiting == nil {
		n.waiting = make(map[uint64]reqEntry)
	}
	n.waiting[seq] = reqEntry{req: req, seq: seq, off: off}
}

// remember records req -> seq, forgetting the oldest id beyond reqCap.
func (n *Node) remember(req RequestID, seq uint64, off int64) {
	if req == (RequestID{}) {
		return
	}
	e := reqEntry{req: req, seq: seq, off: off}
	if _, ok := n.reqs[req]; ok {
		n.reqs[req] = e
		return
	}
	if n.reqs == nil {
		n.reqs = make(map[RequestID]reqEntry)
	}
	n.reqs[req] = e
	if len(n.reqRing) < n.reqCap {
		n.reqRing = append(n.reqRing, e)
		return
	}
	old := n.reqRing[n.reqHead]
	if n.reqs[old.req].seq == old.seq {
		delete(n.reqs, old.req)
	}
	n.reqRing[n.reqHead] = e
	n.reqHead = (n.reqHead + 1) % n.reqCap
}

// Step feeds a message from a neighbour: an update from the predecessor
// or an ack from the successor (ErrNotMember otherwise). The message epoch
// must equal the node's (ErrStaleEpoch); nothing changes on error.
func (n *Node) Step(m Message) error {
	if m.Epoch != n.cfg.Epoch {
		return &StaleEpochError{What: fmt.Sprintf("message from %d", m.From), Got: m.Epoch, Have: n.cfg.Epoch}
	}
	if m.To != n.self {
		return fmt.Errorf("%w: message for %d reached %d", ErrNotMember, m.To, n.self)
	}
	if n.isHead() && n.Fenced() {
		// A fenced head takes no part in its chain: a reloaded one may
		// hold stale sequence numbers. The master replaces it.
		return fmt.Errorf("%w: head at epoch %d takes no part in its chain", ErrFenced, n.cfg.Epoch)
	}
	defer n.check()
	switch m.Type {
	case MsgUpdate:
		if m.From == 0 || m.From != n.pred {
			return fmt.Errorf("%w: update from %d, predecessor is %d", ErrNotMember, m.From, n.pred)
		}
		u := m.Update
		if u.Seq == 0 {
			return fmt.Errorf("%w: update with seq 0", ErrInvalid)
		}
		if u.Offset < 0 || u.Length < 0 || (u.Kind == KindWrite && int64(len(u.Data)) != u.Length) ||
			(u.Kind != KindWrite && u.Kind != KindZero) || (n.size > 0 && (u.Offset > n.size || u.Length > n.size-u.Offset)) {
			return fmt.Errorf("%w: update %d: kind %d range [%d, +%d) in a chunk of %d bytes", ErrInvalid, u.Seq, u.Kind, u.Offset, u.Length, n.size)
		}
		n.stepUpdate(u)
	case MsgAck:
		if m.From == 0 || m.From != n.succ {
			return fmt.Errorf("%w: ack from %d, successor is %d", ErrNotMember, m.From, n.succ)
		}
		n.stepAck(m.Seq)
	default:
		return fmt.Errorf("%w: message type %d", ErrInvalid, m.Type)
	}
	return nil
}

// stepUpdate handles an update from the predecessor (middle or tail).
func (n *Node) stepUpdate(u Update) {
	switch {
	case u.Seq <= n.applied:
		n.stepDuplicate(u)
		return
	case u.Seq > n.applied+1:
		if len(n.pending) < maxPending {
			if n.pending == nil {
				n.pending = make(map[uint64]Update)
			}
			n.pending[u.Seq] = u
		}
		return
	}
	n.apply(u)
	for {
		next, ok := n.pending[n.applied+1]
		if !ok {
			break
		}
		delete(n.pending, next.Seq)
		n.apply(next)
	}
	// Out-of-order leftovers at or below applied cannot exist: pending
	// only holds seq > applied+1 and apply advances one at a time.
}

// stepDuplicate handles an update this node already applied. Two reasons
// to act:
//  1. The predecessor re-sent its Sent list because it lost our ack (a
//     broken stream, or a new successor after a reconfiguration): if we
//     already acked the update, re-send the cumulative ack now.
//  2. This node restarted (empty Sent list) after applying the update but
//     before it reached the successor: forward it again, or the successor
//     would wait for it forever. A copy still in Sent is left to ResendSent.
func (n *Node) stepDuplicate(u Update) {
	if u.Seq <= n.acked {
		n.sendAck()
		return
	}
	if n.succ == 0 || u.Seq <= n.succAck {
		return
	}
	i, found := slices.BinarySearchFunc(n.sent, u.Seq, func(s Update, seq uint64) int {
		switch {
		case s.Seq < seq:
			return -1
		case s.Seq > seq:
			return 1
		}
		return 0
	})
	if found {
		return
	}
	n.sent = slices.Insert(n.sent, i, u)
	if i <= n.flight { // among what was sent: send it now
		n.flight++
		n.flightBytes += int64(len(u.Data))
		n.send(u)
	}
}

// stepAck handles a cumulative ack from the successor.
func (n *Node) stepAck(seq uint64) {
	if seq <= n.succAck {
		return
	}
	n.succAck = seq
	n.trimSent()
	n.maybeCommit()
}

func (n *Node) trimSent() {
	i := 0
	for i < len(n.sent) && n.sent[i].Seq <= n.succAck {
		if i < n.flight {
			n.flightBytes -= int64(len(n.sent[i].Data))
		}
		i++
	}
	n.sent = slices.Delete(n.sent, 0, i)
	n.flight = max(n.flight-i, 0)
	n.pump()
}

// ackable is the highest seq durable here and on every node after this one.
func (n *Node) ackable() uint64 {
	if n.succ == 0 {
		return n.persisted
	}
	return min(n.persisted, n.succAck)
}

// maybeCommit advances acked and emits the ack (non-head) or the replies
// (head) it allows.
func (n *Node) maybeCommit() {
	a := n.ackable()
	if a <= n.acked {
		return
	}
	n.acked = a
	if n.role == RoleNone {
		return
	}
	if !n.isHead() {
		n.sendAck()
		return
	}
	var done []uint64
	for seq := range n.waiting {
		if seq <= n.acked {
			done = append(done, seq)
		}
	}
	slices.Sort(done)
	for _, seq := range done {
		w := n.waiting[seq]
		n.rd.Replies = append(n.rd.Replies, Reply{Req: w.req, Seq: seq, Offset: w.off})
		delete(n.waiting, seq)
	}
}

// sendAck queues the cumulative ack to the predecessor, folding it into an
// ack already queued in this batch so a re-sent Sent list costs one ack.
func (n *Node) sendAck() {
	if n.pred == 0 {
		return
	}
	for i := range n.rd.Messages {
		m := &n.rd.Messages[i]
		if m.Type == MsgAck && m.To == n.pred && m.Epoch == n.cfg.Epoch {
			m.Seq = max(m.Seq, n.acked)
			return
		}
	}
	n.rd.Messages = append(n.rd.Messages, Message{
		Type: MsgAck, From: n.self, To: n.pred, Epoch: n.cfg.Epoch, Seq: n.acked,
	})
}

// Persisted reports that every update with sequence number <= seq handed
// out in Apply is durable on the local store. A seq beyond what was handed
// out is clamped; a lower one than before is ignored.
func (n *Node) Persisted(seq uint64) {
	seq = min(seq, n.applied)
	if seq <= n.persisted || n.failed {
		return
	}
	n.persisted = seq
	if e, ok := n.log.EpochAt(seq); ok {
		n.persistedEpoch = e
	} else if seq == n.applied {
		n.persistedEpoch = n.appliedEpoch
	} else {
		n.persistedEpoch = 0 // beyond the log: unknown
	}
	n.maybeCommit()
	n.check()
}

// Reconfigure installs a new configuration (higher epoch). When the node has a successor, its Sent list is re-sent
// to it under the new epoch: a new successor needs it (a middle node was
// removed), and the same successor refuses what was in flight under the
// old epoch. Buffered out-of-order updates are dropped when the
// predecessor changed (the new one re-sends them). A node that became the
// tail commits everything it holds durably; a node that stopped being the
// head forgets the replies it owed (the clients retry).
//
// Admission across a reconfiguration: a rejoining (reloaded) node stays
// fenced through the new epoch unless it is now the sole member; a node
// that joins the chain behind a predecessor is catching up (no reads) and
// asks for a catch-up copy (Ready.CatchUp); the waiting writes of a node
// that stopped being the head go to Ready.Abandoned.
//
// It reports whether the configuration changed: the same epoch again is a
// no-op, a lower one is refused (StaleEpochError).
func (n *Node) Reconfigure(cfg Config) (bool, error) {
	switch {
	case cfg.Epoch == n.cfg.Epoch:
		return false, nil
	case cfg.Epoch < n.cfg.Epoch:
		return false, &StaleEpochError{What: "configuration", Got: cfg.Epoch, Have: n.cfg.Epoch}
	}
	wasMember := n.role != RoleNone
	oldPred := n.pred
	n.install(cfg)
	if n.pred != oldPred || n.isHead() {
		clear(n.pending)
	}
	if !n.isHead() {
		n.abandonWaiting()
	}
	if n.succ == 0 {
		n.clearSent()
	} else {
		n.ResendSent()
	}
	if n.rejoining {
		if n.role == RoleSingle {
			n.rejoining = false // fencedThrough < epoch: served again
		} else {
			n.fencedThrough = max(n.fencedThrough, cfg.Epoch)
		}
	}
	switch {
	case !wasMember && (n.role == RoleTail || n.role == RoleMiddle):
		n.catchingUp = true
		n.rd.CatchUp = true
	case n.pred == 0:
		n.catchingUp = false // the head is its chain's history: nothing to fetch
	}
	n.startEpoch = 0
	switch {
	case n.pred != 0:
		n.startEpoch = cfg.Epoch
	case n.succ != 0:
		n.proposeEpochStart()
	}
	n.maybeCommit()
	n.check()
	return true, nil
}

// proposeEpochStart sequences the head's first update of a new epoch: an
// empty one (KindZero of length 0, no request id) after the re-sent Sent
// list, as a Raft leader commits an empty entry at the start of its term.
// Updates reach every member in sequence order, so a follower that
// applied it holds every update sequenced under an earlier epoch that
// will ever commit; until then it serves no read and is not settled
// (starting). A head that may take no client write (fenced, failed)
// proposes nothing: its followers wait for the next configuration.
func (n *Node) proposeEpochStart() {
	if n.failed || n.Fenced() {
		return
	}
	n.apply(Update{Epoch: n.cfg.Epoch, Seq: n.applied + 1, Kind: KindZero})
}

// starting reports whether the node is a follower that has not yet
// applied an update of its epoch since Reconfigure installed it: an
// update sequenced under an earlier epoch may still be on its way (the
// head re-sends its Sent list under the new epoch), so a read served now
// could miss a write that a configuration change (a snapshot's fence)
// already counted as before it.
func (n *Node) starting() bool {
	return n.startEpoch != 0 && n.appliedEpoch < n.startEpoch
}

// abandonWaiting forgets the replies the node owed, handing them to the
// caller (Ready.Abandoned) to answer with a retryable error.
func (n *Node) abandonWaiting() {
	seqs := make([]uint64, 0, len(n.waiting))
	for seq := range n.waiting {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		n.rd.Abandoned = append(n.rd.Abandoned, Reply{Req: n.waiting[seq].req, Seq: seq})
	}
	clear(n.waiting)
}

// InstallCatchUp records that the caller installed, durably, its
// predecessor's state as of (epoch, seq) (a catch-up copy, fetched after a
// gap or on joining a chain; see CatchUpTarget and CheckCatchUp): applied =
// persisted = seq, the update log restarts at (epoch, seq) with the
// source's ahead ranges, and the node is no longer catching up. Buffered
// updates at or below seq are dropped and those after it are applied in
// order. A seq at or below applied changes nothing but ends the catch-up.
// Request ids of the installed range are unknown, so retries of them are
// not deduplicated here (only the head deduplicates, and a catching-up
// node is not it).
func (n *Node) InstallCatchUp(epoch, seq uint64, ahead []Range) {
	defer n.check()
	n.catchingUp = false
	if seq <= n.applied {
		return
	}
	n.applied, n.persisted = seq, seq
	n.appliedEpoch, n.persistedEpoch = epoch, epoch
	n.log.Reset(epoch, seq)
	n.log.SetAhead(ahead)
	for s := range n.pending {
		if s <= seq {
			delete(n.pending, s)
		}
	}
	for {
		next, ok := n.pending[n.applied+1]
		if !ok {
			break
		}
		delete(n.pending, next.Seq)
		n.apply(next)
	}
	n.maybeCommit()
}

// ResendSent re-sends every forwarded, unacknowledged update to the
// successor (after its stream broke and was re-established), and those
// waiting for the window as it allows.
func (n *Node) ResendSent() {
	if n.succ == 0 {
		return
	}
	for _, u := range n.sent[:n.flight] {
		n.send(u)
	}
	n.pump()
}

// Retained is the bytes of update data the node holds beyond the
// current batch: forwarded and not yet acknowledged by the successor
// (the Sent list), and buffered out of order. The caller bounds it
// (internal/chunkserver's chain memory).
func (n *Node) Retained() int64 {
	var b int64
	for _, u := range n.sent {
		b += int64(len(u.Data))
	}
	for _, u := range n.pending {
		b += int64(len(u.Data))
	}
	return b
}

// Ready returns and clears the pending batch of work.
func (n *Node) Ready() Ready {
	rd := n.rd
	n.rd = Ready{}
	return rd
}

// Status returns the node's progress.
func (n *Node) Status() Status {
	st := Status{
		Epoch:          n.cfg.Epoch,
		Applied:        n.applied,
		AppliedEpoch:   n.appliedEpoch,
		Persisted:      n.persisted,
		PersistedEpoch: n.persistedEpoch,
		Acked:          n.acked,
		SuccAck:        n.succAck,
		SentLen:        len(n.sent),
		Pending:        len(n.pending),
		Fenced:         n.Fenced(),
		Rejoining:      n.rejoining,
		CatchingUp:     n.catchingUp,
		Failed:         n.failed,
	}
	for seq := range n.pending {
		if st.NextPending == 0 || seq < st.NextPending {
			st.NextPending = seq
		}
	}
	return st
}

// Role returns the node's position in the current configuration
// (RoleNone when the node is not a member).
func (n *Node) Role() Role { return n.role }

// Predecessor and Successor are the node's neighbours in the current
// configuration (0: none).
func (n *Node) Predecessor() NodeID { return n.pred }
func (n *Node) Successor() NodeID   { return n.succ }

// Config returns the current configuration. The caller may keep it: the
// chain is a copy.
func (n *Node) Config() Config {
	return Config{Epoch: n.cfg.Epoch, Chain: slices.Clone(n.cfg.Chain)}
}
