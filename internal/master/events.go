package master

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/catena-io/catena/internal/console"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
)

// The recent events the web console shows (console.Snapshot.Events): a
// bounded ring in this master's memory, as this master saw them (a new
// leader starts with its own).

const (
	// maxEvents bounds the ring; the oldest go first.
	maxEvents = 200
	// burstWindow: an event of a bursty kind within this time of the last
	// of its kind, with nothing but bursty events since, adds to its
	// count instead of taking a slot (a dead server's chains change by
	// the thousand).
	burstWindow = 5 * time.Second
)

// bursty are the kinds that come in bursts.
var bursty = map[string]bool{console.EventChain: true, console.EventRepairDone: true, console.EventRepairFailed: true}

// eventRing holds the recent events. The zero value is ready. Safe for
// concurrent use.
type eventRing struct {
	mu  sync.Mutex
	buf []console.Event // oldest first
	// live is each server's liveness at the last repair tick.
	live map[uint64]decide.Liveness
}

func (r *eventRing) add(now time.Time, kind, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if bursty[kind] {
		for i := len(r.buf) - 1; i >= 0 && bursty[r.buf[i].Kind] && now.Sub(r.buf[i].Time) < burstWindow; i-- {
			if e := &r.buf[i]; e.Kind == kind {
				e.Time, e.Message, e.Count = now, msg, e.Count+1
				return
			}
		}
	}
	if len(r.buf) == maxEvents {
		r.buf = append(r.buf[:0], r.buf[1:]...)
	}
	r.buf = append(r.buf, console.Event{Time: now, Kind: kind, Message: msg, Count: 1})
}

// list returns the events, oldest first.
func (r *eventRing) list() []console.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.buf)
}

// swapLiveness records live and returns the liveness recorded before.
func (r *eventRing) swapLiveness(live map[uint64]decide.Liveness) map[uint64]decide.Liveness {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.live
	r.live = maps.Clone(live)
	return prev
}

// event records an event of kind for the console.
func (m *Master) event(kind, format string, args ...any) {
	m.events.add(m.cfg.Clock.Now(), kind, fmt.Sprintf(format, args...))
}

// observeLiveness records the servers declared dead since the last call
// and those alive again.
func (m *Master) observeLiveness(live map[uint64]decide.Liveness) {
	prev := m.events.swapLiveness(live)
	for _, id := range slices.Sorted(maps.Keys(live)) {
		was, seen := prev[id]
		switch now := live[id]; {
		case now == decide.Dead && was != decide.Dead:
			m.log.Info("master: chunkserver declared dead", "id", id, "silent_for", m.cfg.deadAfter())
			m.event(console.EventDead, "chunkserver %s declared dead: no heartbeat for %s", m.serverLabel(id), m.cfg.deadAfter())
		case now == decide.Alive && seen && was == decide.Dead:
			m.log.Info("master: chunkserver alive again", "id", id)
			m.event(console.EventAlive, "chunkserver %s alive again", m.serverLabel(id))
		}
	}
}

// serverLabel names server id with its address.
func (m *Master) serverLabel(id uint64) string {
	var sv meta.Server
	var ok bool
	m.fsm.view(func(st *meta.State) { sv, ok = st.Server(id) })
	switch {
	case !ok:
		return fmt.Sprint(id)
	case sv.Name != "":
		return fmt.Sprintf("%s (%d, %s)", sv.Name, id, sv.Addr)
	}
	return fmt.Sprintf("%d (%s)", id, sv.Addr)
}

// chainLabel names a chain's members, head first, by name where they
// have one ("[cs1 cs3 4825...]").
func (m *Master) chainLabel(chain []uint64) string {
	names := make([]string, len(chain))
	m.fsm.view(func(st *meta.State) {
		for i, id := range chain {
			names[i] = fmt.Sprint(id)
			if sv, ok := st.Server(id); ok && sv.Name != "" {
				names[i] = sv.Name
			}
		}
	})
	return "[" + strings.Join(names, " ") + "]"
}

// repairEnded records the end of a repair (what: re-replication, block
// restore) of handle onto target; a repair dropped because the chain
// moved is no event (it is planned again).
func (m *Master) repairEnded(what string, handle, target uint64, bytes int64, err error) {
	switch {
	case err == nil:
		m.event(console.EventRepairDone, "chunk %d: %s onto server %d done (%d bytes copied)", handle, what, target, bytes)
	case !errors.Is(err, errChainMoved):
		m.event(console.EventRepairFailed, "chunk %d: %s onto server %d failed: %v", handle, what, target, err)
	}
}

// labelList is labels as "k=v, ..." in key order ("none" when empty).
func labelList(labels map[string]string) string {
	if len(labels) == 0 {
		return "none"
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		kv = append(kv, k+"="+labels[k])
	}
	return strings.Join(kv, ", ")
}

// drainEvent records the start or (stop) the end of a drain.
func (m *Master) drainEvent(id uint64, stop bool) {
	m.log.Info("master: drain", "id", id, "stop", stop)
	if stop {
		m.event(console.EventDrain, "chunkserver %s: drain stopped", m.serverLabel(id))
		return
	}
	m.event(console.EventDrain, "chunkserver %s: drain started", m.serverLabel(id))
}
