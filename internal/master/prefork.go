package master

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catena-io/catena/internal/meta"
)

// Forks ahead of an overlay's writer. Attaching an overlay shares every
// chunk of the volume with it, and the writer's first write to each of
// them would fork it on the way (ForkChunk, a clone on every member,
// ForkDone: 4-5 ms, four times a plain write). So after an attach (and a
// promote, whose new writer shares its chunks with the other overlays)
// the leader forks the volume's shared chunks itself, in the background,
// a few at a time: the writer then finds each chunk its own and pays one
// refresh of its chunk map. It writes meanwhile as before (a chunk it
// reaches first it forks itself; the two meet in forkSlot). The queue is
// the leader's soft state: after a leader change the writer forks what
// is left on its own writes.

// preForkParallel bounds the background forks in flight.
const preForkParallel = 4

// preForkRetry holds back a volume whose background forks failed.
const preForkRetry = time.Second

// preForkQueue is the volumes to fork ahead, each with the time from
// which it is due and, when not all its shared chunks, the slots.
type preForkQueue struct {
	mu      sync.Mutex
	vols    map[string]time.Time
	only    map[string]map[int64]bool // vol -> the slots to fork (absent: every shared one)
	running atomic.Bool               // preForkVolumes is under way
}

// add queues vol's shared chunks at the slots of only (nil: all of them).
func (q *preForkQueue) add(vol string, at time.Time, only []int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.vols == nil {
		q.vols, q.only = map[string]time.Time{}, map[string]map[int64]bool{}
	}
	cur, queued := q.vols[vol]
	if !queued || at.Before(cur) {
		q.vols[vol] = at
	}
	switch set, some := q.only[vol]; {
	case only == nil:
		delete(q.only, vol) // all
	case !queued || some:
		if set == nil {
			set = map[int64]bool{}
			q.only[vol] = set
		}
		for _, i := range only {
			set[i] = true
		}
	}
}

// due reports whether a volume is due at now.
func (q *preForkQueue) due(now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, at := range q.vols {
		if !now.Before(at) {
			return true
		}
	}
	return false
}

// take removes and returns the volumes due at now, each with its slots
// (nil: every shared one).
func (q *preForkQueue) take(now time.Time) map[string]map[int64]bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := map[string]map[int64]bool{}
	for v, at := range q.vols {
		if !now.Before(at) {
			out[v] = q.only[v]
			delete(q.vols, v)
			delete(q.only, v)
		}
	}
	return out
}

// schedulePreFork queues volume vol's shared chunks for the repair loop
// to fork.
func (m *Master) schedulePreFork(vol string) {
	m.preForks.add(vol, m.cfg.Clock.Now(), nil)
	m.kickRepair()
}

// Forks ahead after a volume snapshot. A snapshot shares every chunk of
// the volume, and the next write to each forks it; a mirror's checkpoints
// (internal/mirror) snapshot a volume every second while it is written,
// so its writer would pay a fork per chunk it writes, every second. The
// chunks it is likely to write next are those it wrote since the
// previous snapshot: shared by the live volume and the new snapshot
// only, not by an older snapshot. After a snapshot of a volume that has
// an older one, the leader forks those ahead. (The first snapshot of a
// volume forks nothing ahead: every written chunk would qualify.)

// scheduleHotForks queues the slots of volume vol that its newest
// snapshot made shared for the first time, when vol has an older one.
func (m *Master) scheduleHotForks(vol string) {
	var hot []int64
	m.fsm.view(func(st *meta.State) {
		snaps, err := st.VolumeSnapshots(vol)
		if err != nil || len(snaps) < 2 {
			return
		}
		fi, err := st.Volume(vol)
		if err != nil || fi.ReadOnly {
			return
		}
		_, all, err := st.FileChunks(fi.Inode, 0, 0)
		if err != nil {
			return
		}
		for _, r := range all {
			if ch, ok := st.Chunk(r.Handle); ok && r.Shared && r.Fork == 0 && ch.Refs == 2 {
				hot = append(hot, r.Index)
			}
		}
	})
	if len(hot) == 0 {
		return
	}
	m.preForks.add(vol, m.cfg.Clock.Now(), hot)
	m.kickRepair()
}

// preForkVolumes forks the shared chunks of the volumes due, up to
// preForkParallel at once; a volume some of whose forks failed (members
// busy or unreachable) is queued again for preForkRetry later.
func (m *Master) preForkVolumes(ctx context.Context) {
	for vol, only := range m.preForks.take(m.cfg.Clock.Now()) {
		var ino uint64
		var refs []meta.ChunkRef
		m.fsm.view(func(st *meta.State) {
			fi, err := st.Volume(vol)
			if err != nil || fi.ReadOnly {
				return // gone, or a snapshot: nobody writes it
			}
			_, all, err := st.FileChunks(fi.Inode, 0, 0)
			if err != nil {
				return
			}
			ino = fi.Inode
			for _, r := range all {
				if r.Shared && (only == nil || only[r.Index]) {
					refs = append(refs, r)
				}
			}
		})
		if len(refs) == 0 {
			continue
		}
		start := m.cfg.Clock.Now()
		s := &server{m: m}
		sem := make(chan struct{}, preForkParallel)
		var failed atomic.Int64
		var wg sync.WaitGroup
		for _, ref := range refs {
			select {
			case <-ctx.Done():
			case sem <- struct{}{}:
			}
			if ctx.Err() != nil {
				break
			}
			wg.Go(func() {
				defer func() { <-sem }()
				if _, err := s.forkSlot(ctx, ino, ref.Index, ref); err != nil {
					failed.Add(1)
					m.log.Debug("master: background fork", "volume", vol, "index", ref.Index, "err", err)
				}
			})
		}
		wg.Wait()
		if ctx.Err() != nil {
			return // no longer leader, or stopping
		}
		if n := failed.Load(); n > 0 {
			var again []int64 // nil: all, as before
			for i := range only {
				again = append(again, i)
			}
			if only != nil && len(again) == 0 {
				continue
			}
			m.preForks.add(vol, m.cfg.Clock.Now().Add(preForkRetry), again)
			m.log.Info("master: background forks ahead of a volume's writer failed; retrying", "volume", vol, "failed", n, "of", len(refs))
			continue
		}
		m.log.Debug("master: background forks done", "volume", vol, "chunks", len(refs), "took", m.cfg.Clock.Now().Sub(start))
	}
}
