package chain

import "time"

// Lease is a server's lease from the master: client I/O may be served
// only while it is valid (ClientWrite.Leased, ReadRequest.Leased). The
// master grants d from when the heartbeat carrying the request was sent;
// it counts a server that stopped heartbeating as gone only after that,
// so a cut-off server stops serving before its chains are changed. Times
// come from the caller's clock; the zero Lease is never valid. Not safe
// for concurrent use.
type Lease struct {
	until time.Time
}

// Grant extends the lease to sent+d, never shortening it. A d <= 0 grants
// nothing.
func (l *Lease) Grant(sent time.Time, d time.Duration) {
	if d <= 0 {
		return
	}
	if until := sent.Add(d); until.After(l.until) {
		l.until = until
	}
}

// Valid reports whether the lease holds at now.
func (l *Lease) Valid(now time.Time) bool { return now.Before(l.until) }

// Until is the end of the lease (zero: never granted).
func (l *Lease) Until() time.Time { return l.until }
