package meta

import (
	"errors"
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
