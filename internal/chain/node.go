package chain

// Role is a node's position in its chain.
type Role uint8

const (
	RoleHead   Role = iota + 1 // first of several
	RoleMiddle                 // neither first nor last
	RoleTail                   // last of several
	RoleSingle                 // the only member: head and tail at once
)

// Node is the chain-replication state machine of one replica of one chunk.
// It is not safe for concurrent use: the caller serialises every call.
type Node struct{}

// NewNode returns the state machine of node self in configuration cfg.
// applied is the highest sequence number the local replica holds durably
// (0 for a new replica); numbering continues after it.
func NewNode(self NodeID, cfg Config, applied uint64) *Node { panic("unimplemented") }

// Propose sequences a client write. Only the head accepts writes
// (ErrNotHead); the epoch must match (ErrStaleEpoch). A write whose
// RequestID was already sequenced is not applied again: if it is already
// acknowledged its Reply appears in the next Ready, otherwise it is answered
// when the original commits.
func (n *Node) Propose(w ClientWrite) error { panic("unimplemented") }

// Step feeds a message from a neighbour.
func (n *Node) Step(m Message) error { panic("unimplemented") }

// Persisted reports that every update with sequence number <= seq handed
// out in Apply is durable on the local store.
func (n *Node) Persisted(seq uint64) { panic("unimplemented") }

// Reconfigure installs a new configuration (higher epoch). When the
// successor changed, the Sent list is re-sent to the new successor.
func (n *Node) Reconfigure(cfg Config) { panic("unimplemented") }

// ResendSent re-sends every forwarded, unacknowledged update to the
// successor (after its stream broke and was re-established).
func (n *Node) ResendSent() { panic("unimplemented") }

// Ready returns and clears the pending batch of work.
func (n *Node) Ready() Ready { panic("unimplemented") }

// Status returns the node's progress.
func (n *Node) Status() Status { panic("unimplemented") }

// Role returns the node's position in the current configuration.
func (n *Node) Role() Role { panic("unimplemented") }

// Config returns the current configuration.
func (n *Node) Config() Config { panic("unimplemented") }
