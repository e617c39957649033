package meta

import (
	"errors"
	"slices"
	"testing"
)

// TestSetReplication: a file's and a volume's factor change with every
// chunk's; bad factors and inodes that hold no data are refused and
// change nothing.
func TestSetReplication(t *testing.T) {
	s := New()
	for i := uint64(1); i <= 3; i++ {
		applyOK(t, s, RegisterServer{ID: i, Addr: "cs:" + string(rune('0'+i))})
	}
	f := applyOK(t, s, Create{Path: "/f", Replication: 3, ChunkSize: MinChunkSize, Time: 1}).Info
	for idx := int64(0); idx < 3; idx++ {
		applyOK(t, s, AllocateChunk{Inode: f.Inode, Index: idx, Chain: []ServerID{1, 2, 3}})
	}
	v := applyOK(t, s, CreateVolume{Name: "v", Size: 4 * MinChunkSize, Time: 2}).Info
	applyOK(t, s, AllocateChunk{Inode: v.Inode, Index: 1, Chain: []ServerID{1, 2, 3}})
	d := applyOK(t, s, Mkdir{Path: "/d", Time: 3}).Info

	for _, c := range []struct {
		cmd SetReplication
		err error
	}{
		{SetReplication{Inode: f.Inode, Replication: 0}, ErrInvalid},
		{SetReplication{Inode: f.Inode, Replication: MaxReplication + 1}, ErrInvalid},
		{SetReplication{Inode: d.Inode, Replication: 2}, ErrIsDir},
		{SetReplication{Inode: 999, Replication: 2}, ErrNotFound},
	} {
		before := checkpointOf(t, s)
		if r := s.Apply(c.cmd); !errors.Is(r.Err, c.err) {
			t.Errorf("%+v: %v, want %v", c.cmd, r.Err, c.err)
		}
		if checkpointOf(t, s) != before {
			t.Errorf("%+v changed the state", c.cmd)
		}
	}
	for _, n := range []int{5, 1, 2} {
		if got := applyOK(t, s, SetReplication{Inode: f.Inode, Replication: n, Time: 4}).Info.Replication; got != n {
			t.Fatalf("setrep %d: file replication %d", n, got)
		}
		applyOK(t, s, SetReplication{Inode: v.Inode, Replication: n, Time: 4})
		for _, ch := range s.Chunks() {
			if ch.Replication != n {
				t.Fatalf("setrep %d: chunk %d has replication %d", n, ch.Handle, ch.Replication)
			}
		}
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	}
	// A chunk allocated afterwards takes the new factor.
	r := applyOK(t, s, AllocateChunk{Inode: f.Inode, Index: 7, Chain: []ServerID{1, 2}})
	if ch, _ := s.Chunk(r.Chunk.Handle); ch.Replication != 2 {
		t.Fatalf("a chunk allocated after setrep 2: replication %d", ch.Replication)
	}
}

// TestSetDraining: a drain is recorded, survives the server's
// re-registration (a restart) and a checkpoint, and ends; an unknown
// server is refused.
func TestSetDraining(t *testing.T) {
	s := New()
	applyOK(t, s, RegisterServer{ID: 4, Addr: "cs:4"})
	if r := s.Apply(SetDraining{Server: 5, Draining: true}); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("drain of an unknown server: %v", r.Err)
	}
	applyOK(t, s, SetDraining{Server: 4, Draining: true})
	applyOK(t, s, RegisterServer{ID: 4, Addr: "cs:4b"})
	r := restoreOf(t, checkpointOf(t, s))
	if sv, _ := r.Server(4); !sv.Draining || sv.Addr != "cs:4b" {
		t.Fatalf("after re-registration and a checkpoint: %+v, want draining", sv)
	}
	applyOK(t, s, SetDraining{Server: 4, Draining: false})
	if sv, _ := s.Server(4); sv.Draining {
		t.Fatal("drain not ended")
	}
}

// TestRemoveServer: a server leaves every chain it is in with the epoch
// moved on, and is forgotten; where it is the only up-to-date member it
// is refused unless forced, where it is the only member always; a
// refusal changes nothing.
func TestRemoveServer(t *testing.T) {
	s := New()
	for i := uint64(1); i <= 4; i++ {
		applyOK(t, s, RegisterServer{ID: i, Addr: "cs:" + string(rune('0'+i))})
	}
	f := applyOK(t, s, Create{Path: "/f", Replication: 3, ChunkSize: MinChunkSize, Time: 1}).Info
	// a: 1 in a healthy chain. b: 1 the head, 4 joining behind it, 2
	// up to date. c: 1 the only up-to-date member, 4 joining.
	a := applyOK(t, s, AllocateChunk{Inode: f.Inode, Index: 0, Chain: []ServerID{2, 1, 3}}).Chunk
	b := applyOK(t, s, AllocateChunk{Inode: f.Inode, Index: 1, Chain: []ServerID{1, 2}}).Chunk
	applyOK(t, s, SetChain{Handle: b.Handle, Epoch: b.Epoch + 1, Chain: []ServerID{1, 4, 2}, Joined: []ServerID{4}})
	c := applyOK(t, s, AllocateChunk{Inode: f.Inode, Index: 2, Chain: []ServerID{1}}).Chunk

	refused := func(cmd RemoveServer, err error) {
		t.Helper()
		before := checkpointOf(t, s)
		if r := s.Apply(cmd); !errors.Is(r.Err, err) {
			t.Fatalf("%+v: %v, want %v", cmd, r.Err, err)
		}
		if checkpointOf(t, s) != before {
			t.Fatalf("%+v changed the state", cmd)
		}
	}
	refused(RemoveServer{Server: 9}, ErrNotFound)
	refused(RemoveServer{Server: 1}, ErrInvalid)              // sole member of c
	refused(RemoveServer{Server: 1, Force: true}, ErrInvalid) // even forced
	applyOK(t, s, SetChain{Handle: c.Handle, Epoch: c.Epoch + 1, Chain: []ServerID{1, 4}, Joined: []ServerID{4}})
	refused(RemoveServer{Server: 1}, ErrInvalid) // only up-to-date member of c

	applyOK(t, s, RemoveServer{Server: 1, Force: true})
	if _, ok := s.Server(1); ok {
		t.Fatal("server 1 still registered")
	}
	for _, want := range []struct {
		handle, epoch uint64
		chain         []ServerID
		syncing       []ServerID
	}{
		{a.Handle, a.Epoch + 1, []ServerID{2, 3}, nil},
		{b.Handle, b.Epoch + 2, []ServerID{2, 4}, []ServerID{4}}, // an up-to-date head
		{c.Handle, c.Epoch + 2, []ServerID{4}, nil},              // forced: the joiner is all there is
	} {
		ch, _ := s.Chunk(want.handle)
		if ch.Epoch != want.epoch || !slices.Equal(ch.Chain, want.chain) || !slices.Equal(ch.Syncing, want.syncing) {
			t.Errorf("chunk %d: epoch %d chain %v syncing %v, want %d %v %v", want.handle, ch.Epoch, ch.Chain, ch.Syncing, want.epoch, want.chain, want.syncing)
		}
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	// Out of every chain, a server goes without force.
	applyOK(t, s, RegisterServer{ID: 5, Addr: "cs:5"})
	applyOK(t, s, RemoveServer{Server: 5})
	r := restoreOf(t, checkpointOf(t, s))
	if _, ok := r.Server(5); ok {
		t.Fatal("removed server back after a checkpoint")
	}
}
