package chunkserver

import (
	"slices"
)

// logEntry is one applied update: its identity and the byte range it touched.
type logEntry struct {
	epoch, seq  uint64
	off, length int64
}

// byteRange is [off, off+length) of a chunk.
type byteRange struct{ off, length int64 }

// updateLog is a replica's bounded in-memory log of recent updates, for
// delta resync: entries have consecutive seqs after (baseEpoch, baseSeq),
// the state before the oldest entry. Not safe for concurrent use (the
// replica's mutex guards it).
type updateLog struct {
	capacity  int
	baseEpoch uint64
	baseSeq   uint64
	entries   []logEntry // ring in insertion order, oldest at head
	head      int
	// ahead: ranges whose bytes are newer than the base state by updates
	// the log never saw (blocks the chunk store found written after its
	// last sync when it loaded the replica). Every delta includes them.
	ahead []byteRange
}

func newUpdateLog(capacity int, baseEpoch, baseSeq uint64) *updateLog {
	return &updateLog{capacity: max(capacity, 1), baseEpoch: baseEpoch, baseSeq: baseSeq}
}

func (l *updateLog) at(i int) logEntry { return l.entries[(l.head+i)%len(l.entries)] }

func (l *updateLog) lastSeq() uint64 { return l.baseSeq + uint64(len(l.entries)) }

// add records an applied update. A seq that does not follow the last one
// (the replica installed a copy) restarts the log after it.
func (l *updateLog) add(epoch, seq uint64, off, length int64) {
	if seq != l.lastSeq()+1 {
		l.reset(0, seq-1)
	}
	e := logEntry{epoch: epoch, seq: seq, off: off, length: length}
	if len(l.entries) < l.capacity {
		l.entries = append(l.entries, e)
		return
	}
	old := l.entries[l.head]
	l.baseEpoch, l.baseSeq = old.epoch, old.seq
	l.entries[l.head] = e
	l.head = (l.head + 1) % len(l.entries)
}

// reset forgets every entry: the state is now (epoch, seq). An epoch of 0
// is unknown and never matches a delta request at seq.
func (l *updateLog) reset(epoch, seq uint64) {
	l.baseEpoch, l.baseSeq = epoch, seq
	l.entries, l.head = l.entries[:0], 0
	l.ahead = nil
}

// setAhead records ranges newer than the base state (see ahead).
func (l *updateLog) setAhead(rs []byteRange) { l.ahead = mergeRanges(slices.Clone(rs)) }

// since returns the merged byte ranges touched by every update after
// (epoch, seq), and whether the log can tell: it must reach back to seq,
// and its update at seq must have that epoch (then the asker's history is
// a prefix of this one). seq 0 (a full copy) is never answered.
func (l *updateLog) since(epoch, seq uint64) ([]byteRange, bool) {
	if seq == 0 || seq < l.baseSeq || seq > l.lastSeq() || epoch == 0 {
		return nil, false
	}
	if seq == l.baseSeq {
		if l.baseEpoch != epoch {
			return nil, false
		}
	} else if l.at(int(seq-l.baseSeq-1)).epoch != epoch {
		return nil, false
	}
	rs := slices.Clone(l.ahead)
	for i := int(seq - l.baseSeq); i < len(l.entries); i++ {
		e := l.at(i)
		if e.length > 0 {
			rs = append(rs, byteRange{e.off, e.length})
		}
	}
	return mergeRanges(rs), true
}

// mergeRanges sorts rs and merges overlapping or adjacent ranges.
func mergeRanges(rs []byteRange) []byteRange {
	slices.SortFunc(rs, func(a, b byteRange) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
	var out []byteRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.off <= out[n-1].off+out[n-1].length {
			last := &out[n-1]
			last.length = max(last.off+last.length, r.off+r.length) - last.off
			continue
		}
		out = append(out, r)
	}
	return out
}

func totalLen(rs []byteRange) int64 {
	var n int64
	for _, r := range rs {
		n += r.length
	}
	return n
}
