package meta

import (
	"errors"
	"testing"
)

func applyChecked(t *testing.T, s *State, c Command) Result {
	t.Helper()
	r := s.Apply(c)
	if r.Err != nil {
		t.Fatalf("%T %+v: %v", c, c, r.Err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("after %T: %v", c, err)
	}
	return r
}

// checkpointRoundTrip restores s's checkpoint and checks that it encodes
// the same again.
func checkpointRoundTrip(t *testing.T, s *State) *State {
	t.Helper()
	b, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := RestoreCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if b2, _ := s2.Checkpoint(); string(b2) != string(b) {
		t.Fatal("checkpoint differs after restore")
	}
	return s2
}

func TestSnapshotSharesChunksAndFencesThem(t *testing.T) {
	s := fixture(t)
	f, _ := s.Lookup("/d/f")
	before, _, _ := s.FileChunk(f.Inode, 0)

	r := applyChecked(t, s, Snapshot{Path: "/d", Name: "s1", Time: 10})
	if r.Info.Path != "/d/.snapshot/s1" || !r.Info.ReadOnly || !r.Info.IsDir {
		t.Fatalf("snapshot root: %+v", r.Info)
	}
	if len(r.Fenced) != 1 || r.Fenced[0].Handle != before.Handle || r.Fenced[0].Epoch != before.Epoch+1 {
		t.Fatalf("fenced %+v, want chunk %d at epoch %d", r.Fenced, before.Handle, before.Epoch+1)
	}
	sf, err := s.Lookup("/d/.snapshot/s1/f")
	if err != nil || !sf.ReadOnly {
		t.Fatalf("snapshot file: %+v %v", sf, err)
	}
	ref, _, _ := s.FileChunk(sf.Inode, 0)
	live, _, _ := s.FileChunk(f.Inode, 0)
	if ref.Handle != before.Handle || !ref.Shared || !live.Shared {
		t.Fatalf("snapshot chunk %+v, live %+v: want shared %d", ref, live, before.Handle)
	}
	if _, err := s.Lookup("/d/.snapshot/s1/e"); err != nil {
		t.Fatal(err)
	}
	// Not an entry of /d.
	ents, _, _ := s.List("/d", "", 0)
	for _, e := range ents {
		if e.Name == SnapshotDirName {
			t.Fatalf("%s listed in /d", SnapshotDirName)
		}
	}
	// A second snapshot does not move the epoch again: the chunk was
	// shared (no write capability) already.
	if r := applyChecked(t, s, Snapshot{Path: "/d", Name: "s2", Time: 11}); len(r.Fenced) != 0 {
		t.Fatalf("second snapshot fenced %+v", r.Fenced)
	}
	if r := s.Apply(Snapshot{Path: "/d", Name: "s2", Time: 12}); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("same name twice: %v", r.Err)
	}
	if ch, _ := s.Chunk(before.Handle); ch.Refs != 3 {
		t.Fatalf("refs %d, want 3", ch.Refs)
	}
	// Checkpoints keep it all.
	s2 := checkpointRoundTrip(t, s)
	if _, err := s2.Lookup("/d/.snapshot/s2/f"); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotIsReadOnly(t *testing.T) {
	s := fixture(t)
	applyChecked(t, s, Snapshot{Path: "/d", Name: "s", Time: 10})
	sf, _ := s.Lookup("/d/.snapshot/s/f")
	sd, _ := s.Lookup("/d/.snapshot/s")
	snapdir, _ := s.Lookup("/d/.snapshot")
	for _, c := range []Command{
		Create{Path: "/d/.snapshot/s/g"},
		Create{Path: "/d/.snapshot/s/f", Overwrite: true},
		Mkdir{Path: "/d/.snapshot/s/x"},
		Mkdir{Path: "/d/.snapshot/x"},
		Remove{Path: "/d/.snapshot/s/f"},
		Remove{Path: "/d/.snapshot/s", Recursive: true},
		Rename{Src: "/d/.snapshot/s/f", Dst: "/d/g"},
		Rename{Src: "/d/f", Dst: "/d/.snapshot/s/g"},
		SetSize{Inode: sf.Inode, Size: 1, Mode: SizeExact},
		AllocateChunk{Inode: sf.Inode, Index: 1, Chain: []ServerID{1}},
		SetReplication{Inode: sf.Inode, Replication: 1},
		CreateAt{Parent: sd.Inode, Name: "n"},
		MkdirAt{Parent: snapdir.Inode, Name: "n"},
		Unlink{Parent: sd.Inode, Name: "f"},
		RenameAt{SrcParent: sd.Inode, SrcName: "f", DstParent: sd.Inode, DstName: "g"},
		Setattr{Inode: sf.Inode, Set: SetMode, Mode: 0o777},
		SetXattr{Inode: sf.Inode, Name: "user.x", Value: []byte("v")},
		Link{Inode: sf.Inode, Parent: sd.Inode, Name: "l"},
	} {
		if r := s.Apply(c); !errors.Is(r.Err, ErrReadOnly) {
			t.Errorf("%T %+v: %v, want ErrReadOnly", c, c, r.Err)
		}
	}
	// The directory keeps its snapshots: not removed as if empty.
	applyChecked(t, s, Remove{Path: "/d/f"})
	applyChecked(t, s, Remove{Path: "/d/e"})
	if r := s.Apply(Remove{Path: "/d"}); !errors.Is(r.Err, ErrNotEmpty) {
		t.Fatalf("rmdir of a directory with snapshots: %v", r.Err)
	}
	// The snapshot still reads the removed file's chunk.
	sf2, err := s.Lookup("/d/.snapshot/s/f")
	if err != nil {
		t.Fatal(err)
	}
	if ref, ok, _ := s.FileChunk(sf2.Inode, 0); !ok || !ref.Shared {
		t.Fatalf("snapshot's chunk after rm: %+v %v (read-only by its file: shared)", ref, ok)
	}
	applyChecked(t, s, RemoveSnapshot{Path: "/d", Name: "s"})
	if len(s.Chunks()) != 0 {
		t.Fatalf("chunks left: %+v", s.Chunks())
	}
	applyChecked(t, s, Remove{Path: "/d"})
}

func TestCloneForkAndDone(t *testing.T) {
	s := fixture(t)
	f, _ := s.Lookup("/d/f")
	orig, _, _ := s.FileChunk(f.Inode, 0)
	r := applyChecked(t, s, Clone{Src: "/d", Dst: "/c", Owner: true, Uid: 7, Gid: 8, Time: 5})
	if r.Info.Uid != 7 || r.Info.ReadOnly {
		t.Fatalf("clone: %+v", r.Info)
	}
	cf, _ := s.Lookup("/c/f")
	ref, _, _ := s.FileChunk(cf.Inode, 0)
	if ref.Handle != orig.Handle || !ref.Shared {
		t.Fatalf("clone chunk %+v", ref)
	}
	// A fork asked at the old epoch is refused.
	if r := s.Apply(ForkChunk{Inode: cf.Inode, Index: 0, Source: ref.Handle, Epoch: orig.Epoch}); !errors.Is(r.Err, ErrEpochMismatch) {
		t.Fatalf("stale fork: %v", r.Err)
	}
	fr := applyChecked(t, s, ForkChunk{Inode: cf.Inode, Index: 0, Source: ref.Handle, Epoch: ref.Epoch})
	fork := fr.Chunk.Handle
	// Until done, readers get the origin.
	got, _, _ := s.FileChunk(cf.Inode, 0)
	if got.Handle != orig.Handle || got.Fork != fork || !got.Shared {
		t.Fatalf("pending fork's slot: %+v", got)
	}
	if ch, _ := s.Chunk(orig.Handle); ch.Refs != 2 {
		t.Fatalf("origin refs %d, want 2 (its file, the fork)", ch.Refs)
	}
	if len(s.PendingForks()) != 1 {
		t.Fatal("no pending fork")
	}
	if r := s.Apply(ForkDone{Handle: fork, Chain: []ServerID{3, 9}}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("fork done on an unknown server: %v", r.Err)
	}
	done := applyChecked(t, s, ForkDone{Handle: fork, Chain: []ServerID{1, 3}})
	if done.Chunk.Epoch != fr.Chunk.Epoch+1 {
		t.Fatalf("a shrunk chain moves the epoch: %+v", done.Chunk)
	}
	applyChecked(t, s, ForkDone{Handle: fork, Chain: []ServerID{1, 3}}) // twice: no change
	got, _, _ = s.FileChunk(cf.Inode, 0)
	if got.Handle != fork || got.Shared || got.Fork != 0 {
		t.Fatalf("done fork's slot: %+v", got)
	}
	if o, _, _ := s.FileChunk(f.Inode, 0); o.Shared {
		t.Fatalf("origin still shared: %+v", o)
	}
	// A fork never done, whose file goes, releases its origin too.
	applyChecked(t, s, Clone{Src: "/d/f", Dst: "/g", Time: 6})
	g, _ := s.Lookup("/g")
	gr, _, _ := s.FileChunk(g.Inode, 0)
	applyChecked(t, s, ForkChunk{Inode: g.Inode, Index: 0, Source: gr.Handle, Epoch: gr.Epoch})
	applyChecked(t, s, Remove{Path: "/g"})
	if ch, _ := s.Chunk(orig.Handle); ch.Refs != 1 {
		t.Fatalf("origin refs %d after the pending fork's file went, want 1", ch.Refs)
	}
}

func TestVolumeSnapshotCloneRollback(t *testing.T) {
	s := New()
	applyChecked(t, s, RegisterServer{ID: 1, Addr: "a:1"})
	applyChecked(t, s, CreateVolume{Name: "v", Size: 1 << 30, Replication: 1, ChunkSize: 1 << 20})
	v, _ := s.Volume("v")
	applyChecked(t, s, AllocateChunk{Inode: v.Inode, Index: 0, Chain: []ServerID{1}})
	a, _, _ := s.FileChunk(v.Inode, 0)
	applyChecked(t, s, SnapshotVolume{Volume: "v", Name: "s"})
	snap, err := s.Volume("v@s")
	if err != nil || !snap.ReadOnly {
		t.Fatalf("v@s: %+v %v", snap, err)
	}
	if r := s.Apply(SnapshotVolume{Volume: "v@s", Name: "t"}); !errors.Is(r.Err, ErrReadOnly) {
		t.Fatalf("snapshot of a snapshot: %v", r.Err)
	}
	if r := s.Apply(ResizeVolume{Name: "v@s", Size: 2 << 30}); !errors.Is(r.Err, ErrReadOnly) {
		t.Fatalf("resize of a snapshot: %v", r.Err)
	}
	if r := s.Apply(RemoveVolume{Name: "v"}); !errors.Is(r.Err, ErrNotEmpty) {
		t.Fatalf("remove of a volume with snapshots: %v", r.Err)
	}
	applyChecked(t, s, CloneVolume{Src: "v@s", Dst: "w"})
	if l, _ := s.VolumeSnapshots("v"); len(l) != 1 || l[0].Name != "v@s" {
		t.Fatalf("snapshots of v: %+v", l)
	}
	// v's slot forked, then written: rollback gives it the snapshot's
	// chunk back and fences its own.
	ref, _, _ := s.FileChunk(v.Inode, 0)
	fr := applyChecked(t, s, ForkChunk{Inode: v.Inode, Index: 0, Source: ref.Handle, Epoch: ref.Epoch})
	applyChecked(t, s, ForkDone{Handle: fr.Chunk.Handle, Chain: []ServerID{1}})
	applyChecked(t, s, AllocateChunk{Inode: v.Inode, Index: 1, Chain: []ServerID{1}})
	r := applyChecked(t, s, RollbackVolume{Volume: "v", Name: "s"})
	if len(r.Fenced) != 2 {
		t.Fatalf("rollback fenced %+v, want v's two chunks", r.Fenced)
	}
	_, chunks, _ := s.FileChunks(v.Inode, 0, 0)
	if len(chunks) != 1 || chunks[0].Handle != a.Handle {
		t.Fatalf("v after rollback: %+v", chunks)
	}
	if s.HasChunk(fr.Chunk.Handle) {
		t.Fatal("v's own chunk survived the rollback")
	}
	applyChecked(t, s, RemoveVolumeSnapshot{Volume: "v", Name: "s"})
	applyChecked(t, s, RemoveVolume{Name: "w"})
	applyChecked(t, s, RemoveVolume{Name: "v"})
	if len(s.Chunks()) != 0 {
		t.Fatalf("chunks left: %+v", s.Chunks())
	}
}

func TestSnapshotOfFileAndHardLinks(t *testing.T) {
	s := fixture(t)
	f, _ := s.Lookup("/d/f")
	applyChecked(t, s, Link{Inode: f.Inode, Name: "x"}.withParent(s, "/d/e"))
	applyChecked(t, s, Snapshot{Path: "/d", Name: "s"})
	a, _ := s.Lookup("/d/.snapshot/s/f")
	b, _ := s.Lookup("/d/.snapshot/s/e/x")
	if a.Inode != b.Inode || a.Nlink != 2 {
		t.Fatalf("hard link in snapshot: %+v %+v", a, b)
	}
	applyChecked(t, s, Snapshot{Path: "/d/f", Name: "one"})
	if _, err := s.Lookup("/d/.snapshot/one/f"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.Snapshots("/d"); len(l) != 2 {
		t.Fatalf("snapshots: %+v", l)
	}
	applyChecked(t, s, Remove{Path: "/d", Recursive: true})
	if len(s.Chunks()) != 0 {
		t.Fatalf("chunks left: %+v", s.Chunks())
	}
}

// withParent sets a Link's parent to the directory at p.
func (l Link) withParent(s *State, p string) Link {
	d, _ := s.Lookup(p)
	l.Parent = d.Inode
	return l
}
