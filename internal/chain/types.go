package chain

import (
	"errors"
	"fmt"
)

// Errors returned by Node.
var (
	// ErrStaleEpoch: the request or message carries an epoch other than the
	// node's current configuration epoch.
	ErrStaleEpoch = errors.New("chain: stale epoch")
	// ErrNotHead: a client write reached a node that is not the head.
	ErrNotHead = errors.New("chain: not the head")
	// ErrNotMember: a message came from a node that is not this node's
	// predecessor or successor in the current configuration.
	ErrNotMember = errors.New("chain: sender is not a neighbour")
	// ErrInvalid: a client write or message is malformed (unknown kind or
	// message type, negative offset or length, sequence number 0).
	ErrInvalid = errors.New("chain: invalid write or message")
	// ErrDamaged: a client write covers in part a range the local replica
	// cannot verify (SetDamaged): applying it would need the range's old
	// bytes. Retryable: the range is restored, or a write covers it whole.
	ErrDamaged = errors.New("chain: write covers a damaged range in part")
	// ErrNotTail: a client read reached a node that is not the tail.
	ErrNotTail = errors.New("chain: not the tail")
	// ErrFenced: the node's configuration is fenced (the master said this
	// server is not a member at that epoch, or the replica was reloaded
	// and has not rejoined): no client I/O, and a fenced head takes no part
	// in its chain. The client reloads the chain from the master.
	ErrFenced = errors.New("chain: replica fenced")
	// ErrCatchingUp: the node joined its chain (or saw a gap) and may lack
	// updates its predecessor applied before forwarding to it; it serves
	// no reads until a catch-up copy is installed. Retryable.
	ErrCatchingUp = errors.New("chain: replica catching up")
	// ErrNotSettled: the replica has updates in flight, buffered, waiting
	// for their commit or not yet durable, or is catching up (not
	// Quiescent), so what it holds may not be what the other members hold.
	// Retryable: it settles once its chain has carried everything through.
	ErrNotSettled = errors.New("chain: replica not settled")
	// ErrNoLease: the server holds no valid lease from the master, so it
	// may not serve client I/O. Retryable.
	ErrNoLease = errors.New("chain: no valid lease")
	// ErrNotSole: a restore of bad blocks reached a node that is not its
	// chain's only member.
	ErrNotSole = errors.New("chain: not the sole member")
	// ErrFailed: the local store failed (Node.Fail); the replica takes no
	// more client I/O. The caller reports its store error.
	ErrFailed = errors.New("chain: replica failed")
)

// StaleEpochError is the ErrStaleEpoch of a request or message at an
// epoch other than the node's: it says which epoch the node has, so the
// caller can tell an old client (Got < Have) from an old node.
type StaleEpochError struct {
	What string // "write", "read" or "message from N"
	Got  uint64 // the epoch of the request or message
	Have uint64 // the node's configuration epoch
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("%v: %s at epoch %d, node at epoch %d", ErrStaleEpoch, e.What, e.Got, e.Have)
}

// Is makes errors.Is(err, ErrStaleEpoch) hold.
func (e *StaleEpochError) Is(target error) bool { return target == ErrStaleEpoch }

// Range is [Off, Off+Len) of a chunk.
type Range struct {
	Off, Len int64
}

// NodeID identifies a chunkserver.
type NodeID uint64

// Kind is the kind of an update.
type Kind uint8

const (
	KindWrite Kind = iota + 1 // Data at Offset
	KindZero                  // zeros over [Offset, Offset+Length)
)

// Start is what a node begins from: the state its local replica holds.
type Start struct {
	// Applied is the highest sequence number the replica holds durably
	// (0 for a new replica); AppliedEpoch the epoch of that update (0:
	// none or unknown). Numbering continues after Applied.
	Applied, AppliedEpoch uint64
	// Size is the chunk size: writes and updates must lie within [0,
	// Size) (0: unbounded).
	Size int64
	// Reloaded: the replica was loaded from disk after a restart. Its
	// durable seq may be behind its successor's (forward before
	// persist); its request ids are Requests (the caller keeps them
	// durable with the replica). So the node starts fenced
	// through its epoch and stays fenced across Reconfigures until it
	// rejoins through a copy (Resync, InstallCopy) or becomes the sole
	// member (no successor to collide with: the master's last resort to
	// keep the only copy).
	Reloaded bool
	// Ahead are ranges newer than (AppliedEpoch, Applied) by updates no
	// log saw (the store found them written after its last sync): every
	// delta from this replica re-sends them.
	Ahead []Range
	// LogLen is the update log's capacity (0: DefaultLogLen).
	LogLen int
	// Committed: every update up to Applied is known durable on every
	// later member (a node rebuilt from one that was Quiescent with
	// Acked == Applied); otherwise only a node without a successor counts
	// what it holds as committed.
	Committed bool
	// Requests are request ids the replica's updates carried, oldest
	// first (Node.Requests of the node it was made from, or what the
	// caller kept durably with the replica). A node built from a replica
	// (a restart, a node dropped while Quiescent, a clone) takes them: a
	// client that retries a write the replica holds is answered, not
	// applied a second time over a later write.
	Requests []Remembered
}

// Remembered is a request id a node remembers, with the sequence number
// and offset it was sequenced at.
type Remembered struct {
	Req    RequestID
	Seq    uint64
	Offset int64
}

// RequestID identifies a client request; a retry carries the same id, so a
// node that already sequenced it does not apply it twice.
type RequestID struct {
	Client uint64
	Seq    uint64
}

// Update is one sequenced change to a chunk. Updates are identified by
// (Epoch, Seq): Epoch is the configuration epoch the head sequenced it in.
type Update struct {
	Epoch  uint64
	Seq    uint64
	Kind   Kind
	Offset int64
	Length int64 // len(Data) for KindWrite
	Data   []byte
	Req    RequestID
}

// End returns the offset just past the update's byte range.
func (u Update) End() int64 { return u.Offset + u.Length }

// Config is a chain configuration: the members head first, tail last, and
// the epoch that names this configuration.
type Config struct {
	Epoch uint64
	Chain []NodeID
}

// MsgType is the type of a node-to-node message.
type MsgType uint8

const (
	// MsgUpdate carries an update from a predecessor to its successor.
	MsgUpdate MsgType = iota + 1
	// MsgAck carries a cumulative ack from a successor to its predecessor:
	// every update with sequence number <= Seq is durable on the sender and
	// on every node after it.
	MsgAck
)

// Message is a message between two nodes of the same chain (same chunk).
type Message struct {
	Type   MsgType
	From   NodeID
	To     NodeID
	Epoch  uint64 // sender's configuration epoch
	Update Update // MsgUpdate
	Seq    uint64 // MsgAck
}

// ClientWrite is a write proposed by a client at the head.
type ClientWrite struct {
	Epoch  uint64 // the epoch the client believes current
	Req    RequestID
	Kind   Kind
	Offset int64
	Length int64 // KindZero; ignored for KindWrite (len(Data))
	Data   []byte
	// Leased: the server holds a valid lease (see Lease) now. A head
	// without one refuses new writes (ErrNoLease).
	Leased bool
}

// ReadRequest is a client read arriving at a node.
type ReadRequest struct {
	Epoch  uint64 // the epoch the client believes current
	Leased bool   // the server holds a valid lease now
}

// Reply answers a client write at the head once it is durable on every
// member of the chain.
type Reply struct {
	Req RequestID
	Seq uint64
	// Offset is where the update was applied (remembered with its
	// request id: a retried record append learns its first offset).
	Offset int64
}

// Ready is a batch of work the caller must carry out, in this order:
//  1. send Messages (updates are forwarded before they are persisted, so
//     the chain persists in parallel);
//  2. apply Apply to the store in order, then make them durable and report
//     the highest durable sequence number with Node.Persisted;
//  3. answer Replies.
//
// Abandoned lists client writes the node will no longer answer (it stopped
// being the head, or is being resynced): answer them with a retryable
// error so their clients retry at the new head, which deduplicates by
// request id. CatchUp asks the caller to fetch the predecessor's state
// (Node.CatchUpTarget) and install it (Node.InstallCatchUp).
type Ready struct {
	Messages  []Message
	Apply     []Update
	Replies   []Reply
	Abandoned []Reply
	CatchUp   bool
}

// Empty reports whether the batch holds nothing.
func (r Ready) Empty() bool {
	return len(r.Messages) == 0 && len(r.Apply) == 0 && len(r.Replies) == 0 &&
		len(r.Abandoned) == 0 && !r.CatchUp
}

// Status is a snapshot of a node's progress.
type Status struct {
	Epoch          uint64
	Applied        uint64 // highest sequence number handed out in Apply
	AppliedEpoch   uint64 // epoch of the update at Applied (0: unknown)
	Persisted      uint64 // highest sequence number reported durable
	PersistedEpoch uint64 // epoch of the update at Persisted (0: unknown)
	Acked          uint64 // highest sequence number durable here and downstream
	// SuccAck is the successor's highest cumulative ack (0: none since the
	// node started or installed a copy). Once it is set, every member after
	// this one holds a replica of the chunk.
	SuccAck uint64
	SentLen int // updates forwarded and not yet acked
	Pending int // out-of-order updates buffered
	// NextPending is the lowest buffered sequence number (0: none). While
	// it is set, applied+1 is missing: a gap the predecessor may no longer
	// be able to re-send (see Node.InstallCatchUp).
	NextPending uint64
	// Fenced: no client I/O at this configuration (Node.Fence, or a
	// reloaded replica that has not rejoined). Rejoining: reloaded, not
	// yet rejoined. CatchingUp: no reads until a catch-up is installed.
	// Failed: Node.Fail was called.
	Fenced, Rejoining, CatchingUp, Failed bool
}
