package decide

import "time"

// WriterVerdict is the answer to a writer asking for a volume's (or an
// overlay's) writer session.
type WriterVerdict uint8

const (
	// WriterNew: no session, or one that may be replaced: a new session
	// is committed, and the old one (if any) is fenced.
	WriterNew WriterVerdict = iota
	// WriterJoin: the same writer identity holds the session (restarted,
	// or another of its processes): it shares it, nothing is fenced.
	WriterJoin
	// WriterRefuse: another writer holds a live session.
	WriterRefuse
)

func (v WriterVerdict) String() string {
	switch v {
	case WriterJoin:
		return "join"
	case WriterRefuse:
		return "refuse"
	default:
		return "new"
	}
}

// WriterAsk is one request for a writer session, with what the leader
// knows of the current one.
type WriterAsk struct {
	// Session and Owner: the current session ("": none) and the identity
	// that holds it ("": anonymous).
	Session, Owner string
	// Asker: the identity asking ("": anonymous, never joins).
	Asker string
	// TakeOver: the asker replaces a live session on purpose (the old
	// writer is fenced).
	TakeOver bool
	// SinceRenewal: how long ago the current session was last renewed
	// (or attached); Lease: how long a renewal keeps it live.
	SinceRenewal, Lease time.Duration
}

// Writer is the one-writer rule. The same named identity joins the
// current session; anyone else gets a new session (fencing the old one)
// only when there is none, when it takes over, or when the current one's
// lease ran out since its last renewal (a renewal exactly Lease ago still
// holds: the holder counts its lease from before it sent the renewal).
func Writer(a WriterAsk) WriterVerdict {
	switch {
	case a.Session == "":
		return WriterNew
	case a.Asker != "" && a.Asker == a.Owner:
		return WriterJoin
	case a.TakeOver || a.SinceRenewal > a.Lease:
		return WriterNew
	}
	return WriterRefuse
}
