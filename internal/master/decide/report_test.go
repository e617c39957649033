package decide

import (
	"slices"
	"testing"

	"github.com/catena-io/catena/internal/meta"
)

// chunkMap is a ChunkMap over a map, for verdicts that need no real state.
type chunkMap struct {
	chunks map[uint64]meta.Chunk
	next   uint64
}

var _ ChunkMap = chunkMap{}

func (m chunkMap) Chunk(h uint64) (meta.Chunk, bool) {
	ch, ok := m.chunks[h]
	return ch, ok
}

func (m chunkMap) NextHandle() uint64 { return m.next }

// TestReconcile runs on a real meta.State: handle 1 whole at epoch 2 on
// [1 2 3], handle 2 short at epoch 2 on [1 2], handle 3 truncated away,
// handle 9 not allocated yet.
func TestReconcile(t *testing.T) {
	st := meta.New()
	for id := uint64(1); id <= 4; id++ {
		st.Apply(meta.RegisterServer{ID: id, Addr: "cs"})
	}
	ino := st.Apply(meta.Create{Path: "/f", ChunkSize: 1 << 20}).Info.Inode
	st.Apply(meta.AllocateChunk{Inode: ino, Index: 0, Chain: []uint64{1, 2, 3}}) // handle 1, whole
	st.Apply(meta.AllocateChunk{Inode: ino, Index: 1, Chain: []uint64{1, 2, 3}}) // handle 2
	if r := st.Apply(meta.SetChain{Handle: 2, Epoch: 2, Chain: []uint64{1, 2}}); r.Err != nil {
		t.Fatal(r.Err)
	} // handle 2 short
	st.Apply(meta.SetChain{Handle: 1, Epoch: 2, Chain: []uint64{1, 2, 3}})
	st.Apply(meta.AllocateChunk{Inode: ino, Index: 2, Chain: []uint64{1}}) // handle 3, then truncated away
	if r := st.Apply(meta.SetSize{Inode: ino, Size: 2 << 20, Mode: meta.SizeExact}); r.Err != nil || st.HasChunk(3) {
		t.Fatalf("truncate: %v", r.Err)
	}
	rep := func(h, e uint64) Replica { return Replica{Handle: h, Epoch: e} }
	tests := []struct {
		name       string
		server     uint64
		reps       []Replica
		joining    map[uint64]uint64
		wantDelete []uint64
		wantMissed []uint64 // handles
	}{
		{"member up to date", 1, []Replica{rep(1, 2), rep(2, 2)}, nil, nil, nil},
		{"member at old epoch", 3, []Replica{rep(1, 1)}, nil, nil, []uint64{1}},
		{"member ahead of the master: left alone", 1, []Replica{rep(1, 3)}, nil, nil, nil},
		{"deleted chunk, and one being allocated", 1, []Replica{rep(9, 1), rep(3, 1)}, nil, []uint64{3}, nil},
		{"non-member, whole chain: stale", 4, []Replica{rep(1, 1), rep(1, 2)}, nil, []uint64{1, 1}, nil},
		{"non-member above the chunk's epoch: kept", 4, []Replica{rep(1, 3)}, nil, nil, nil},
		{"non-member, short chain: kept", 3, []Replica{rep(2, 1)}, nil, nil, nil},
		{"joining server kept", 4, []Replica{rep(1, 2)}, map[uint64]uint64{1: 4}, nil, nil},
		{"another server joining: stale", 4, []Replica{rep(1, 2)}, map[uint64]uint64{1: 3}, []uint64{1}, nil},
		{"empty inventory", 2, nil, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dels, missed := Reconcile(st, tt.server, tt.reps, tt.joining)
			var missedHandles []uint64
			for _, ch := range missed {
				missedHandles = append(missedHandles, ch.Handle)
				if ch.Epoch != 2 || ch.ChunkSize != 1<<20 || len(ch.Chain) != 3 {
					t.Errorf("missed chunk %+v: not the current configuration", ch)
				}
			}
			if !slices.Equal(dels, tt.wantDelete) || !slices.Equal(missedHandles, tt.wantMissed) {
				t.Fatalf("deletes %v missed %v, want %v %v", dels, missedHandles, tt.wantDelete, tt.wantMissed)
			}
		})
	}
}

// TestFenced: a server must not serve a replica of a chunk whose current
// chain leaves it out; members and deleted chunks are not listed.
func TestFenced(t *testing.T) {
	chunks := chunkMap{next: 10, chunks: map[uint64]meta.Chunk{
		1: {Handle: 1, Epoch: 4, Chain: []uint64{1, 2, 3}},
		2: {Handle: 2, Epoch: 7, Chain: []uint64{2, 3}},
	}}
	type fence struct{ handle, epoch uint64 }
	tests := []struct {
		name   string
		server uint64
		reps   []Replica
		want   []fence
	}{
		{"member at the current epoch", 2, []Replica{{1, 4}, {2, 7}}, nil},
		{"member at an old epoch: a config, not a fence", 3, []Replica{{1, 2}}, nil},
		{"removed while away: fenced at the chunk's epoch", 1, []Replica{{1, 4}, {2, 5}}, []fence{{2, 7}}},
		{"non-member ahead of the master: fenced", 4, []Replica{{1, 9}}, []fence{{1, 4}}},
		{"deleted chunk and one being allocated: not listed", 1, []Replica{{5, 1}, {12, 1}}, nil},
	}
	for _, tt := range tests {
		var got []fence
		for _, ch := range Fenced(chunks, tt.server, tt.reps) {
			got = append(got, fence{ch.Handle, ch.Epoch})
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: fenced %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDropOnReport: a reported replica leaves its chain only when another
// member can serve in its place, or when it failed (a disk error).
func TestDropOnReport(t *testing.T) {
	live := map[uint64]Liveness{1: Alive, 2: Alive, 3: Alive, 4: Dead}
	ch := meta.Chunk{Handle: 7, Epoch: 5, Chain: []uint64{1, 2, 3}}
	good := Evidence{Epoch: 5, Verified: true}
	tests := []struct {
		name     string
		chain    []uint64
		failed   bool
		others   Evidence // evidence of members 2 and 3
		reporter uint64
		want     bool
		syncing  []uint64 // members that have not caught up
	}{
		{"bad blocks, a clean member serves", []uint64{1, 2, 3}, false, good, 1, true, nil},
		{"bad blocks everywhere: stays", []uint64{1, 2, 3}, false, Evidence{Epoch: 5, Verified: true, BadBlocks: 1}, 1, false, nil},
		{"others fenced (restart): stays", []uint64{1, 2, 3}, false, Evidence{Epoch: 5, Verified: true, Fenced: true}, 1, false, nil},
		{"others not verified yet: stays", []uint64{1, 2, 3}, false, Evidence{Epoch: 5}, 1, false, nil},
		{"failed replica leaves", []uint64{1, 2, 3}, true, Evidence{Epoch: 5, Verified: true, BadBlocks: 1}, 1, true, nil},
		{"sole member stays", []uint64{1}, true, good, 1, false, nil},
		{"not a member", []uint64{1, 2, 3}, true, good, 9, false, nil},
		{"the clean member is dead", []uint64{1, 4}, false, good, 1, false, nil},
		{"failed, the others syncing: stays", []uint64{1, 2, 3}, true, good, 1, false, []uint64{2, 3}},
		{"failed, a holder left besides the joiner", []uint64{1, 2, 3}, true, good, 2, true, []uint64{3}},
	}
	for _, tt := range tests {
		c := ch
		c.Chain, c.Syncing = tt.chain, tt.syncing
		ev := map[uint64]map[uint64]Evidence{1: {7: {Epoch: 5, Verified: true, BadBlocks: 2}}, 2: {7: tt.others}, 3: {7: tt.others}, 4: {7: good}}
		if got := DropOnReport(c, tt.reporter, tt.failed, live, ev); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
