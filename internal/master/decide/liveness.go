package decide

import "time"

// Liveness is the leader's view of a chunkserver.
type Liveness uint8

const (
	// Unknown: silent, but this master has not led long enough to know
	// that its lease expired (it may have renewed with the previous
	// leader). Neither placed on nor removed.
	Unknown Liveness = iota
	// Alive: heard from within deadAfter.
	Alive
	// Dead: its lease has surely expired: it serves no client I/O and may
	// be replaced.
	Dead
)

func (l Liveness) String() string {
	switch l {
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	default:
		return "unknown"
	}
}

// Classify is the liveness rule. A server is dead when now > last
// heartbeat received + deadAfter (lease + drift): the chunkserver counts
// its lease from when it SENT that heartbeat, which is earlier, so its
// lease ran out at least the drift margin before. A server never heard
// from (last is zero) is dead once deadAfter has passed since this master
// took office (leaderSince); until then a silent server is Unknown.
func Classify(last, now, leaderSince time.Time, deadAfter time.Duration) Liveness {
	if !last.IsZero() && !now.After(last.Add(deadAfter)) {
		return Alive
	}
	if now.After(leaderSince.Add(deadAfter)) {
		return Dead
	}
	return Unknown
}
