package chain

import "slices"

// DefaultLogLen is how many recent updates a node's update log keeps when
// Start.LogLen is 0.
const DefaultLogLen = 16384

// logEntry is one applied update: its identity and the range it touched.
type logEntry struct {
	epoch, seq uint64
	rg         Range
}

// UpdateLog is a replica's bounded log of recent updates, for delta
// resync: which byte ranges changed after a given (epoch, seq). Entries
// have consecutive sequence numbers after (baseEpoch, baseSeq), the state
// before the oldest entry. A Node owns one; it is not safe for concurrent
// use.
type UpdateLog struct {
	capacity  int
	baseEpoch uint64
	baseSeq   uint64
	entries   []logEntry // ring in insertion order, oldest at head
	head      int
	// ahead: ranges whose bytes are newer than the base state by updates
	// the log never saw (blocks the chunk store found written after its
	// last sync when it loaded the replica, or the source's own such
	// ranges after a copy). Every delta includes them.
	ahead []Range
}

// NewUpdateLog returns an empty log of the given capacity (at least 1)
// whose base state is (epoch, seq).
func NewUpdateLog(capacity int, epoch, seq uint64) *UpdateLog {
	return &UpdateLog{capacity: max(capacity, 1), baseEpoch: epoch, baseSeq: seq}
}

func (l *UpdateLog) at(i int) logEntry { return l.entries[(l.head+i)%len(l.entries)] }

// LastSeq is the sequence number of the newest entry (the base when empty).
func (l *UpdateLog) LastSeq() uint64 { return l.baseSeq + uint64(len(l.entries)) }

// Add records an applied update. A seq that does not follow the last one
// restarts the log after it, with an unknown base epoch.
func (l *UpdateLog) Add(epoch, seq uint64, rg Range) {
	if seq != l.LastSeq()+1 {
		l.Reset(0, seq-1)
	}
	e := logEntry{epoch: epoch, seq: seq, rg: rg}
	if len(l.entries) < l.capacity {
		l.entries = append(l.entries, e)
		return
	}
	old := l.entries[l.head]
	l.baseEpoch, l.baseSeq = old.epoch, old.seq
	l.entries[l.head] = e
	l.head = (l.head + 1) % len(l.entries)
}

// Reset forgets every entry and every ahead range: the state is now
// (epoch, seq). An epoch of 0 is unknown and never matches a request.
func (l *UpdateLog) Reset(epoch, seq uint64) {
	l.baseEpoch, l.baseSeq = epoch, seq
	l.entries, l.head = l.entries[:0], 0
	l.ahead = nil
}

// EpochAt returns the epoch of the update at seq, if the log reaches it.
func (l *UpdateLog) EpochAt(seq uint64) (uint64, bool) {
	switch {
	case seq == l.baseSeq:
		return l.baseEpoch, l.baseEpoch != 0
	case seq < l.baseSeq || seq > l.LastSeq():
		return 0, false
	}
	return l.at(int(seq - l.baseSeq - 1)).epoch, true
}

// NoBytesSince reports whether every update after seq changed no byte
// (an epoch's start is empty), and the epoch of the update at seq; false
// when the log does not reach back to seq. Ahead ranges do not count:
// they hold the bytes every replica has there.
func (l *UpdateLog) NoBytesSince(seq uint64) (epoch uint64, ok bool) {
	if epoch, ok = l.EpochAt(seq); !ok {
		return 0, false
	}
	for i := int(seq - l.baseSeq); i < len(l.entries); i++ {
		if l.at(i).rg.Len > 0 {
			return 0, false
		}
	}
	return epoch, true
}

// SetAhead replaces the ranges newer than the base state (see ahead).
func (l *UpdateLog) SetAhead(rs []Range) { l.ahead = MergeRanges(slices.Clone(rs)) }

// AddAhead adds a range newer than the base state.
func (l *UpdateLog) AddAhead(r Range) { l.ahead = MergeRanges(append(slices.Clone(l.ahead), r)) }

// Ahead returns the ranges every delta re-sends (a copy).
func (l *UpdateLog) Ahead() []Range { return slices.Clone(l.ahead) }

// Since returns the merged ranges touched by every update after (epoch,
// seq), plus the ahead ranges, and whether the log can tell: it must reach
// back to seq, and its update at seq must have that epoch (then the
// asker's history is a prefix of this one). seq 0 (a full copy) is never
// answered.
func (l *UpdateLog) Since(epoch, seq uint64) ([]Range, bool) {
	if seq == 0 || epoch == 0 {
		return nil, false
	}
	if e, ok := l.EpochAt(seq); !ok || e != epoch {
		return nil, false
	}
	rs := slices.Clone(l.ahead)
	for i := int(seq - l.baseSeq); i < len(l.entries); i++ {
		if e := l.at(i); e.rg.Len > 0 {
			rs = append(rs, e.rg)
		}
	}
	return MergeRanges(rs), true
}

// End returns the offset just past the range.
func (r Range) End() int64 { return r.Off + r.Len }

// MergeRanges sorts rs in place and merges overlapping or adjacent ranges.
func MergeRanges(rs []Range) []Range {
	slices.SortFunc(rs, func(a, b Range) int {
		switch {
		case a.Off < b.Off:
			return -1
		case a.Off > b.Off:
			return 1
		}
		return 0
	})
	var out []Range
	for _, r := range rs {
		if n := len(out); n > 0 && r.Off <= out[n-1].End() {
			out[n-1].Len = max(out[n-1].End(), r.End()) - out[n-1].Off
			continue
		}
		out = append(out, r)
	}
	return out
}

// TotalLen is the sum of the ranges' lengths.
func TotalLen(rs []Range) int64 {
	var n int64
	for _, r := range rs {
		n += r.Len
	}
	return n
}
