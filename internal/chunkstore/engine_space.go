package chunkstore

import (
	"errors"
	"fmt"
	"sort"
)

// Space reclamation (docs/architecture.md, "The chunk engine", Space).
//
// Bytes of a segment die when nothing needs them any more: a record's head
// once the record is written (it is needed only to replay it), a piece's
// data when its last list lets it go. Either way they die at an LSN; they
// may be punched out once a durable checkpoint covers that LSN, since
// neither that checkpoint nor the replay after it can refer to them (a
// piece that died after the checkpoint may still be in it). Dead bytes
// are merged into each segment's free set so that runs of small dead
// records free whole pages; a segment with no live piece, nothing
// waiting and wholly before the checkpoint's replay position is removed.

// segment is one log file.
type segment struct {
	id   uint64
	path string
	f    File

	// Under appendMu.
	reserved int64        // space allocated (fallocate) from 0
	live     int64        // data bytes of live pieces
	pending  []deadExtent // dead bytes not yet covered by a checkpoint
	free     []extent     // dead and covered: merged, sorted
}

type extent struct{ off, n int64 }

func (x extent) end() int64 { return x.off + x.n }

type deadExtent struct {
	off, n int64
	lsn    uint64 // the record at which the bytes died
}

func segName(id uint64) string { return fmt.Sprintf("log-%016x.seg", id) }

func parseSegName(name string) (uint64, bool) {
	var id uint64
	if len(name) != len("log-0000000000000000.seg") {
		return 0, false
	}
	if _, err := fmt.Sscanf(name, "log-%016x.seg", &id); err != nil || segName(id) != name || id == 0 {
		return 0, false
	}
	return id, true
}

// addFree merges x into the sorted, merged set and returns the merged
// extent that now holds x.
func addFree(set *[]extent, x extent) extent {
	s := *set
	i := sort.Search(len(s), func(i int) bool { return s[i].end() >= x.off })
	j := i
	for j < len(s) && s[j].off <= x.end() {
		lo := min(s[j].off, x.off)
		x = extent{lo, max(s[j].end(), x.end()) - lo}
		j++
	}
	if i == j {
		s = append(s, extent{})
		copy(s[i+1:], s[i:])
		s[i] = x
	} else {
		s[i] = x
		s = append(s[:i+1], s[j:]...)
	}
	*set = s
	return x
}

// punchOp is a page-aligned range to punch out of a segment.
type punchOp struct {
	seg *segment
	x   extent
}

// reclaimLocked moves the dead bytes a durable checkpoint at lsn covers
// into their segment's free set, returning the whole pages to punch and
// the segments to remove (already taken out of e.segs). The caller holds
// appendMu and carries the operations out after releasing it.
func (e *Store) reclaimLocked(lsn, cpSeg uint64) ([]punchOp, []*segment) {
	var punches []punchOp
	var removes []*segment
	for _, s := range e.segs {
		keep := s.pending[:0]
		for _, d := range s.pending {
			if d.lsn >= lsn {
				keep = append(keep, d)
				continue
			}
			m := addFree(&s.free, extent{d.off, d.n})
			// The whole pages of the merged run that touch d: the others
			// were punched when their own bytes died.
			lo := max(alignUp(m.off, fsPageSize), d.off/fsPageSize*fsPageSize)
			hi := min(m.end()/fsPageSize*fsPageSize, alignUp(d.off+d.n, fsPageSize))
			if lo < hi {
				// Merge with the previous punch when they touch (pending
				// extents come in death order, not offset order).
				if n := len(punches); n > 0 && punches[n-1].seg == s && punches[n-1].x.end() >= lo && hi >= punches[n-1].x.off {
					px := &punches[n-1].x
					end := max(px.end(), hi)
					px.off = min(px.off, lo)
					px.n = end - px.off
				} else {
					punches = append(punches, punchOp{s, extent{lo, hi - lo}})
				}
			}
		}
		clear(s.pending[len(keep):])
		s.pending = keep
		if s.id < cpSeg && s != e.tail && s.live == 0 && len(s.pending) == 0 {
			removes = append(removes, s)
		}
	}
	for _, s := range removes {
		delete(e.segs, s.id)
	}
	return punches, removes
}

// carryOut punches and removes what reclaimLocked chose. Failures cost
// space, not data: they are logged.
func (e *Store) carryOut(punches []punchOp, removes []*segment) {
	for _, p := range punches {
		if err := p.seg.f.PunchHole(p.x.off, p.x.n); err != nil && !errors.Is(err, errors.ErrUnsupported) {
			e.log.Warn("cannot punch dead log bytes", "segment", p.seg.path, "off", p.x.off, "len", p.x.n, "err", err)
		}
	}
	if len(removes) == 0 {
		return
	}
	for _, s := range removes {
		s.f.Close()
		if err := e.fs.Remove(s.path); err != nil {
			e.log.Warn("cannot remove dead log segment", "segment", s.path, "err", err)
		}
	}
	if err := e.fs.SyncDir(e.dir); err != nil {
		e.log.Warn("cannot sync the engine directory", "err", err)
	}
}

// initFreeLocked sets, after recovery, the free set of every segment
// below the checkpoint's position to what no live piece holds, so that
// bytes dying later merge with those that died before the crash. Only
// called at open, before any death is reclaimed.
func (e *Store) initFreeLocked(cpSeg uint64, cpOff int64, live map[*segment][]extent) {
	for _, s := range e.segs {
		var limit int64
		switch {
		case s.id < cpSeg:
			if fi, err := s.f.Stat(); err == nil {
				limit = fi.Size()
			}
		case s.id == cpSeg:
			limit = cpOff
		default:
			continue
		}
		xs := live[s]
		sort.Slice(xs, func(i, j int) bool { return xs[i].off < xs[j].off })
		at := int64(0)
		for _, x := range xs {
			if x.off >= limit {
				break
			}
			if x.off > at {
				s.free = append(s.free, extent{at, x.off - at})
			}
			at = max(at, x.end())
		}
		if at < limit {
			s.free = append(s.free, extent{at, limit - at})
		}
	}
}
