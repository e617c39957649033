package chunkserver

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/catena-io/catena/internal/chunkstore"
)

// reportModelMaster is the master's side of incremental reports as
// api.HeartbeatRequest.report_gen specifies it: a full report replaces the
// inventory, a delta is merged when it is based on the report the master
// holds and refused (full_report) otherwise; the pages of a full report
// (page, more) are gathered, each based on the one before, and replace
// the inventory at the last.
type reportModelMaster struct {
	gen uint64 // 0: holds nothing
	inv map[chunkstore.Handle]int
	// The pages gathered so far, and the last one's gen.
	pages   map[chunkstore.Handle]int
	pageGen uint64
}

func (m *reportModelMaster) receive(full bool, page uint32, more bool, gen, base uint64, replicas map[chunkstore.Handle]int, removed []chunkstore.Handle) (fullReport bool) {
	if full && (page > 0 || more) {
		switch {
		case page == 0:
			m.pages = map[chunkstore.Handle]int{}
		case m.pages == nil || m.pageGen != base:
			m.pages = nil
			return true
		}
		maps.Copy(m.pages, replicas)
		for _, h := range removed {
			delete(m.pages, h)
		}
		m.pageGen = gen
		if !more {
			m.gen, m.inv, m.pages = gen, m.pages, nil
		}
		return false
	}
	if full {
		m.gen, m.inv = gen, maps.Clone(replicas)
		return false
	}
	if m.gen == 0 || m.gen != base {
		return true
	}
	maps.Copy(m.inv, replicas)
	for _, h := range removed {
		delete(m.inv, h)
	}
	m.gen = gen
	return false
}

// TestReporterRandomized drives the reporter with random changes and
// removals of replicas and heartbeats whose request or answer is lost, or
// whose master lost its state (a new leader), against the model master:
// every report the master accepts leaves it holding exactly the server's
// replicas and their state as of that report, and after a lost answer or
// a new leader the server converges again within two heartbeats (a
// paged full report within two and its pages). Full reports go in pages
// of 1 to 7 replicas, or in one piece, as the seed says.
func TestReporterRandomized(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5e9))
			p := newReporter()
			pageSize := 0
			if seed%4 != 0 {
				pageSize = 1 + int(seed%7)
			}
			p.setPaged(pageSize)
			truth := map[chunkstore.Handle]int{} // handle -> version of its state
			m := &reportModelMaster{}
			// heartbeat builds the report as Server.fill does (window 0)
			// and delivers it with the given fate.
			// It returns whether pages of a full report follow.
			pages := 0
			heartbeat := func(fate int) bool {
				r := p.begin()
				reps := map[chunkstore.Handle]int{}
				var removed []chunkstore.Handle
				hs := slices.Collect(maps.Keys(r.changed))
				if r.full {
					hs = r.pageHandles(func() []chunkstore.Handle { return slices.Collect(maps.Keys(truth)) })
				}
				for _, h := range hs {
					if v, ok := truth[h]; ok {
						reps[h] = v
					}
				}
				if r.listsRemoved() {
					for h := range r.removed {
						if _, ok := truth[h]; !ok {
							removed = append(removed, h)
						}
					}
				}
				switch fate {
				case 0: // request lost
					p.failed(r)
				case 1: // answer lost
					m.receive(r.full, r.page, r.more, r.gen, r.base, reps, removed)
					p.failed(r)
				default:
					if fr := m.receive(r.full, r.page, r.more, r.gen, r.base, reps, removed); fr {
						p.done(r, true)
						return false
					}
					p.done(r, false)
					if r.more {
						pages++
						return true
					}
					if !maps.Equal(m.inv, truth) {
						t.Fatalf("accepted report %d (full %v, page %d, base %d): master holds %v, server %v", r.gen, r.full, r.page, r.base, m.inv, truth)
					}
				}
				return false
			}
			for step := range 2000 {
				switch x := rng.IntN(20); {
				case x < 8: // a replica appears or its state moves
					h := chunkstore.Handle(rng.IntN(30) + 1)
					truth[h]++
					p.noteChanged(h)
				case x < 10: // a replica goes
					h := chunkstore.Handle(rng.IntN(30) + 1)
					if _, ok := truth[h]; ok {
						delete(truth, h)
						p.noteRemoved(h)
					}
				case x < 11: // a new leader: it holds nothing
					m = &reportModelMaster{}
				case x < 12: // the server registers again
					p.needFull()
				default:
					heartbeat(rng.IntN(8))
				}
				if step%100 == 99 {
					// Two heartbeats delivered: the first may be refused
					// (full_report), the second is then full; and the
					// pages of a full report, back to back.
					heartbeat(2)
					for heartbeat(2) {
					}
					if !maps.Equal(m.inv, truth) {
						t.Fatalf("step %d: after two delivered heartbeats the master holds %v, server %v", step, m.inv, truth)
					}
				}
			}
			if pageSize > 0 && pages == 0 {
				t.Fatal("no full report went in pages")
			}
		})
	}
}
