package chunkstore

import (
	"errors"
	"fmt"
	"sort"
)

// check verifies the engine's index against a recount (for tests and
// fsck): every list's and piece's reference count, the live bytes of
// every segment and of the engine, the shape of every block map and
// list, and that no free or dead extent overlaps a live piece. It stops
// the world (every mutation) while it runs.
func (e *Store) check() error {
	e.cpMu.Lock()
	defer e.cpMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.appendMu.Lock()
	defer e.appendMu.Unlock()
	return errors.Join(e.checkBlockMapsLocked(), e.checkRefsLocked(), e.checkSpaceLocked())
}

func (e *Store) checkBlockMapsLocked() error {
	var errs []error
	for h, r := range e.replicas {
		if r.h != h || r.meta.Handle != h || r.gone {
			errs = append(errs, fmt.Errorf("replica %016x: handle or state wrong", uint64(h)))
		}
		nb := numBlocks(r.meta.ChunkSize)
		for i, br := range r.blocks {
			if br.l == nil || int64(br.b) >= nb || (i > 0 && br.b <= r.blocks[i-1].b) {
				errs = append(errs, fmt.Errorf("replica %016x: block map entry %d (block %d) invalid", uint64(h), i, br.b))
			}
		}
	}
	for h, r := range e.replicas {
		if r.covered > r.lastLSN || r.lastLSN >= e.nextLSN {
			errs = append(errs, fmt.Errorf("replica %016x: covers LSN %d, last record %d, next LSN %d", uint64(h), r.covered, r.lastLSN, e.nextLSN))
		}
		for b, lsn := range r.since {
			if lsn <= r.covered || lsn > r.lastLSN {
				errs = append(errs, fmt.Errorf("replica %016x: block %d changed at LSN %d, outside (%d, %d]", uint64(h), b, lsn, r.covered, r.lastLSN))
			}
		}
	}
	for r := range e.dirty {
		if r.gone {
			errs = append(errs, fmt.Errorf("deleted replica %016x is dirty", uint64(r.h)))
		}
	}
	return errors.Join(errs...)
}

func (e *Store) checkRefsLocked() error {
	var errs []error
	listRefs := make(map[*pieceList]int32)
	for _, r := range e.replicas {
		for _, br := range r.blocks {
			listRefs[br.l]++
		}
	}
	pieceRefs := make(map[*piece]int32)
	for l, n := range listRefs {
		if l.refs != n {
			errs = append(errs, fmt.Errorf("list %p: %d references counted, %d recorded", l, n, l.refs))
		}
		errs = append(errs, checkList(l))
		for _, p := range l.pieces {
			pieceRefs[p]++
		}
	}
	segLive := make(map[*segment]int64)
	var live int64
	for p, n := range pieceRefs {
		if p.refs != n {
			errs = append(errs, fmt.Errorf("piece %p: %d references counted, %d recorded", p, n, p.refs))
		}
		if !p.zero() {
			if e.segs[p.seg.id] != p.seg {
				errs = append(errs, fmt.Errorf("piece %p in segment %d, which is not open", p, p.seg.id))
			}
			segLive[p.seg] += int64(p.n)
			live += int64(p.n)
		}
	}
	for _, s := range e.segs {
		if s.live != segLive[s] {
			errs = append(errs, fmt.Errorf("segment %d: %d live bytes counted, %d recorded", s.id, segLive[s], s.live))
		}
	}
	if e.live != live {
		errs = append(errs, fmt.Errorf("engine: %d live bytes counted, %d recorded", live, e.live))
	}
	return errors.Join(errs...)
}

// checkList checks one list's shape.
func checkList(l *pieceList) error {
	if l.bad {
		if len(l.pieces) > 0 {
			return fmt.Errorf("list %p: bad with pieces", l)
		}
		return nil
	}
	if len(l.pieces) == 0 || len(l.pieces) > engineMaxPieces+1 {
		return fmt.Errorf("list %p: %d pieces", l, len(l.pieces))
	}
	data := false
	for _, p := range l.pieces {
		if p.lo < 0 || p.n <= 0 || p.hi() > BlockSize {
			return fmt.Errorf("list %p: piece [%d, +%d)", l, p.lo, p.n)
		}
		data = data || !p.zero()
	}
	if !data {
		return fmt.Errorf("list %p: only zero pieces", l)
	}
	if v := visiblePieces(append([]*piece(nil), l.pieces...)); len(v) != len(l.pieces) {
		return fmt.Errorf("list %p: holds hidden pieces", l)
	}
	return nil
}

// checkSpaceLocked checks that no byte of a live piece is free or dead.
func (e *Store) checkSpaceLocked() error {
	var errs []error
	lives := make(map[*segment][]extent)
	seen := make(map[*piece]bool)
	for _, r := range e.replicas {
		for _, br := range r.blocks {
			for _, p := range br.l.pieces {
				if !p.zero() && !seen[p] {
					seen[p] = true
					lives[p.seg] = append(lives[p.seg], extent{p.off, int64(p.n)})
				}
			}
		}
	}
	for _, s := range e.segs {
		xs := lives[s]
		sort.Slice(xs, func(i, j int) bool { return xs[i].off < xs[j].off })
		overlaps := func(x extent) bool {
			i := sort.Search(len(xs), func(i int) bool { return xs[i].end() > x.off })
			return i < len(xs) && xs[i].off < x.end()
		}
		for i, f := range s.free {
			if i > 0 && s.free[i-1].end() >= f.off {
				errs = append(errs, fmt.Errorf("segment %d: free set not merged at %d", s.id, f.off))
			}
			if overlaps(f) {
				errs = append(errs, fmt.Errorf("segment %d: free extent [%d, +%d) holds live data", s.id, f.off, f.n))
			}
		}
		for _, d := range s.pending {
			if overlaps(extent{d.off, d.n}) {
				errs = append(errs, fmt.Errorf("segment %d: dead extent [%d, +%d) holds live data", s.id, d.off, d.n))
			}
		}
	}
	return errors.Join(errs...)
}
