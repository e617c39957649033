package chain

import "errors"

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
)

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
}

// Reply answers a client write at the head once it is durable on every
// member of the chain.
type Reply struct {
	Req RequestID
	Seq uint64
}

// Ready is a batch of work the caller must carry out, in this order:
//  1. send Messages (updates are forwarded before they are persisted, so
//     the chain persists in parallel);
//  2. apply Apply to the store in order, then make them durable and report
//     the highest durable sequence number with Node.Persisted;
//  3. answer Replies.
type Ready struct {
	Messages []Message
	Apply    []Update
	Replies  []Reply
}

// Empty reports whether the batch holds nothing.
func (r Ready) Empty() bool {
	return len(r.Messages) == 0 && len(r.Apply) == 0 && len(r.Replies) == 0
}

// Status is a snapshot of a node's progress.
type Status struct {
	Epoch     uint64
	Applied   uint64 // highest sequence number handed out in Apply
	Persisted uint64 // highest sequence number reported durable
	Acked     uint64 // highest sequence number durable here and downstream
	SentLen   int    // updates forwarded and not yet acked
	Pending   int    // out-of-order updates buffered
	// NextPending is the lowest buffered sequence number (0: none). While
	// it is set, applied+1 is missing: a gap the predecessor may no longer
	// be able to re-send (see Node.InstallCatchUp).
	NextPending uint64
}
