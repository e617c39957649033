package master

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/console"
	"github.com/catena-io/catena/internal/master/decide"
)

func TestEventRingBurstsAndBound(t *testing.T) {
	var r eventRing
	t0 := time.Unix(1000, 0)
	r.add(t0, console.EventDead, "server 1 dead")
	for i := range 5 {
		r.add(t0.Add(time.Duration(i)*time.Second), console.EventChain, fmt.Sprintf("chunk %d", i))
		r.add(t0.Add(time.Duration(i)*time.Second), console.EventRepairDone, fmt.Sprintf("repair %d", i))
	}
	got := r.list()
	if len(got) != 3 || got[1].Kind != console.EventChain || got[1].Count != 5 || got[1].Message != "chunk 4" ||
		got[2].Kind != console.EventRepairDone || got[2].Count != 5 {
		t.Fatalf("a burst of chains and repairs: %+v", got)
	}
	// A significant event ends the burst; so does a pause.
	r.add(t0.Add(5*time.Second), console.EventAlive, "server 1 alive")
	r.add(t0.Add(5*time.Second), console.EventChain, "chunk 5")
	r.add(t0.Add(20*time.Second), console.EventChain, "chunk 6")
	if got := r.list(); len(got) != 6 || got[4].Count != 1 || got[5].Count != 1 {
		t.Fatalf("bursts not ended: %+v", got)
	}

	for i := range maxEvents + 10 {
		r.add(t0.Add(time.Minute), console.EventRegistered, fmt.Sprint(i))
	}
	got = r.list()
	if len(got) != maxEvents || got[0].Message != "10" || got[len(got)-1].Message != fmt.Sprint(maxEvents+9) {
		t.Fatalf("ring of %d: first %+v last %+v", len(got), got[0], got[len(got)-1])
	}
}

func TestObserveLiveness(t *testing.T) {
	fake := clock.NewFake(time.Unix(1000, 0))
	m := &Master{cfg: Config{Clock: fake, Lease: time.Second, DriftMargin: 250 * time.Millisecond}, fsm: newFSM(slog.New(slog.DiscardHandler)), log: slog.New(slog.DiscardHandler)}
	steps := []map[uint64]decide.Liveness{
		{1: decide.Unknown, 2: decide.Unknown}, // a new leader: nothing known
		{1: decide.Alive, 2: decide.Alive},
		{1: decide.Dead, 2: decide.Alive},
		{1: decide.Dead, 2: decide.Alive}, // still dead: no new event
		{1: decide.Alive, 2: decide.Dead},
	}
	for _, live := range steps {
		m.observeLiveness(live)
	}
	var got []string
	for _, e := range m.events.list() {
		got = append(got, e.Kind+": "+e.Message)
	}
	want := []string{"dead: chunkserver 1 declared dead", "alive: chunkserver 1 alive again", "dead: chunkserver 2 declared dead"}
	if len(got) != len(want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("event %d: %q, want %q...", i, got[i], want[i])
		}
	}

	m.repairEnded("re-replication", 7, 2, 0, errChainMoved)
	m.repairEnded("re-replication", 7, 2, 0, errors.New("disk full"))
	if e := m.events.list(); e[len(e)-1].Kind != console.EventRepairFailed || !strings.Contains(e[len(e)-1].Message, "disk full") || len(e) != 4 {
		t.Errorf("repair events: %+v", e)
	}
}
