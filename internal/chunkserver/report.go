package chunkserver

import (
	"sync"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/chunkstore"
)

// Replica reports are incremental (api.HeartbeatRequest.report_gen): the
// first report to a master is the whole inventory, each later one carries
// the replicas whose information changed since the last report the master
// accepted, the handles removed since, and reportWindow more replicas
// picked at random (so that a change no hook saw, such as a bad block a
// read found, still reaches the master). A server with a million idle
// replicas thus sends a few hundred per heartbeat, not a million.
//
// A master that does not hold the report a delta is based on (it just
// took office, or the server's previous report was applied but its answer
// lost) answers full_report and grants no lease; the server then sends a
// full report at once.
//
// A full report goes in pages of reportPage replicas to a master that
// takes them (RegisterResponse.paged_reports), back to back: the pages
// share out a snapshot of the store's handles, and each later page adds
// the replicas changed and removed since the one before. A page that
// fails, or that the master refuses, starts the full report again.

// reportWindow is how many replicas beyond the changed ones each
// incremental report carries.
const reportWindow = 256

// reportPage is how many replicas of its share a page of a full report
// carries (about 2 MB on the wire).
const reportPage = 50000

// reporter tracks what the master was told. Safe for concurrent use.
type reporter struct {
	mu      sync.Mutex
	window  int    // replicas beyond the changed ones per report
	gen     uint64 // the last report generation handed out
	acked   uint64 // the last report the master accepted; 0: none
	full    bool   // the next report is a full one
	changed map[chunkstore.Handle]struct{}
	removed map[chunkstore.Handle]struct{}
	// Paging of full reports: pageSize replicas a page (0: the master
	// takes no pages); while one is under way, page is the last page the
	// master accepted and rest the handles no page carried yet.
	pageSize int
	paging   bool
	page     uint32
	rest     []chunkstore.Handle
}

func newReporter() *reporter {
	return &reporter{window: reportWindow, full: true, changed: map[chunkstore.Handle]struct{}{}, removed: map[chunkstore.Handle]struct{}{}}
}

// report is one report under way: what it took out of the reporter.
type report struct {
	gen, base uint64
	full      bool
	window    int
	changed   map[chunkstore.Handle]struct{}
	removed   map[chunkstore.Handle]struct{}
	// A full report's page (fill sets rest and more): page 0 takes a
	// snapshot of the handles, a later one goes on with rest.
	pageSize int
	page     uint32
	rest     []chunkstore.Handle
	more     bool
}

// setPaged says whether the master takes full reports in pages, of n
// replicas each (0: it does not).
func (p *reporter) setPaged(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pageSize = n
}

// setWindow sets how many unchanged replicas each incremental report
// carries (tests).
func (p *reporter) setWindow(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.window = n
}

// noteChanged records that h's reportable information changed (or h
// appeared).
func (p *reporter) noteChanged(h chunkstore.Handle) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changed[h] = struct{}{}
	delete(p.removed, h)
}

// noteRemoved records that the server no longer holds h.
func (p *reporter) noteRemoved(h chunkstore.Handle) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removed[h] = struct{}{}
	delete(p.changed, h)
}

// needFull makes the next report a full one (after a registration, or
// when the master asks).
func (p *reporter) needFull() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.full = true
}

// begin takes the next report's contents; the caller ends it with done
// or failed.
func (p *reporter) begin() *report {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	r := &report{gen: p.gen, base: p.acked, full: p.full || p.acked == 0, window: p.window, changed: p.changed, removed: p.removed,
		pageSize: p.pageSize}
	if r.full {
		p.paging, p.rest = false, nil // a new full report starts at page 0
	} else if p.paging {
		r.full, r.page, r.rest = true, p.page+1, p.rest
	}
	p.full = false
	p.changed, p.removed = map[chunkstore.Handle]struct{}{}, map[chunkstore.Handle]struct{}{}
	return r
}

// done ends r with the master's answer: accepted, or a request for a full
// report.
func (p *reporter) done(r *report, fullReport bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fullReport {
		p.full, p.paging, p.rest = true, false, nil
		return
	}
	p.acked = max(p.acked, r.gen)
	if r.full {
		p.paging, p.page, p.rest = r.more, r.page, r.rest
	}
}

// failed ends r unanswered: what it carried is reported again (relative
// to the same base; a master that applied r anyway asks for a full one).
func (p *reporter) failed(r *report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.full {
		p.full, p.paging, p.rest = true, false, nil
	}
	for h := range r.changed {
		if _, gone := p.removed[h]; !gone {
			p.changed[h] = struct{}{}
		}
	}
	for h := range r.removed {
		if _, back := p.changed[h]; !back {
			p.removed[h] = struct{}{}
		}
	}
}

// pageHandles returns the handles full report r carries: its share of
// the handles (snapshot, taken by page 0, lists every handle held), and
// on a later page those changed since the page before. It sets r.more.
func (r *report) pageHandles(snapshot func() []chunkstore.Handle) []chunkstore.Handle {
	if r.page == 0 {
		r.rest = snapshot()
	}
	n := len(r.rest)
	if r.pageSize > 0 {
		n = min(n, r.pageSize)
	}
	hs := r.rest[:n:n]
	r.rest = r.rest[n:]
	r.more = len(r.rest) > 0
	if r.page > 0 {
		for h := range r.changed {
			hs = append(hs, h)
		}
	}
	return hs
}

// listsRemoved says whether r lists the handles removed since the report
// before (a delta, or a page of a full report after the first).
func (r *report) listsRemoved() bool { return !r.full || r.page > 0 }

// fill adds r's replicas to req: every replica for a full report, else the
// changed ones and up to reportWindow others. Active replicas are pinned
// while their information is read; cold ones are read from the store.
func (s *Server) fill(req *api.HeartbeatRequest, r *report) {
	req.ReportGen, req.BaseGen, req.Full, req.Page = r.gen, r.base, r.full, r.page
	var hs []chunkstore.Handle
	if r.full {
		hs = r.pageHandles(s.store.Handles)
		req.More = r.more
	} else {
		hs = make([]chunkstore.Handle, 0, len(r.changed)+r.window)
		for h := range r.changed {
			hs = append(hs, h)
		}
		for _, h := range s.store.Sample(r.window + len(r.changed)) {
			if len(hs) >= len(r.changed)+r.window {
				break
			}
			if _, in := r.changed[h]; !in {
				hs = append(hs, h)
			}
		}
	}
	type item struct {
		r        *replica   // active, pinned; nil: cold
		cs       *coldState // cold, in Server.cold; nil: as loaded
		verified bool       // as loaded: verifyLoaded checked it
	}
	items := make([]item, len(hs))
	s.mu.Lock()
	for i, h := range hs {
		if rep := s.replicas[h]; rep != nil {
			rep.pins.Add(1) // not marked used: a report is no use
			items[i].r = rep
		} else if cs, ok := s.cold[h]; ok {
			items[i].cs = &cs
		} else {
			items[i].verified = s.loadedVerifiedLocked(h)
		}
	}
	if r.listsRemoved() {
		for h := range r.removed {
			if !s.heldLocked(h) {
				req.Removed = append(req.Removed, uint64(h))
			}
		}
	}
	s.mu.Unlock()
	for i, it := range items {
		var info *api.ReplicaInfo
		if it.r != nil {
			info = it.r.info()
			it.r.release()
		} else {
			info = s.coldInfo(hs[i], it.cs, it.verified)
		}
		if info != nil {
			req.Replicas = append(req.Replicas, info)
		}
	}
}

// info is what the master is told of r; nil once r was dropped.
func (r *replica) info() *api.ReplicaInfo {
	used := r.store.UsedBytes()
	bad := r.store.BadBlocks()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped {
		return nil
	}
	st := r.node.Status()
	return &api.ReplicaInfo{
		Handle:       uint64(r.handle),
		Epoch:        st.Epoch,
		UsedBytes:    used,
		AppliedSeq:   st.Persisted, // durable, not merely applied
		AppliedEpoch: st.PersistedEpoch,
		Fenced:       st.Fenced,
		BadBlocks:    bad,
		Verified:     r.verified && r.failed == nil,
		CatchingUp:   st.CatchingUp,
	}
}
