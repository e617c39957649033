package meta

import (
	"errors"
	"testing"
)

// overlayFixture: volume v with chunk 0 allocated, and overlays a and b.
func overlayFixture(t *testing.T) (s *State, v FileInfo, base ChunkRef) {
	t.Helper()
	s = New()
	applyChecked(t, s, RegisterServer{ID: 1, Addr: "a:1"})
	applyChecked(t, s, CreateVolume{Name: "v", Size: 1 << 30, Replication: 1, ChunkSize: 1 << 20})
	v, _ = s.Volume("v")
	applyChecked(t, s, AllocateChunk{Inode: v.Inode, Index: 0, Chain: []ServerID{1}})
	base, _, _ = s.FileChunk(v.Inode, 0)
	r := applyChecked(t, s, AttachOverlay{Volume: "v", Name: "a", Lease: 1e9, Time: 5})
	if r.Info.Name != "v+a" || r.Info.OverlayOf != "v" || r.Info.ReadOnly {
		t.Fatalf("attach: %+v", r.Info)
	}
	// The chunk becomes shared: it moves to a new epoch (the writer's
	// capabilities for the old one die).
	if len(r.Fenced) != 1 || r.Fenced[0].Handle != base.Handle || r.Fenced[0].Epoch != base.Epoch+1 {
		t.Fatalf("attach fenced %+v", r.Fenced)
	}
	applyChecked(t, s, AttachOverlay{Volume: "v", Name: "b", Lease: 1e9, Time: 6})
	return s, v, base
}

func TestOverlayAttachListDetach(t *testing.T) {
	s, v, base := overlayFixture(t)
	ovs, err := s.Overlays("v")
	if err != nil || len(ovs) != 2 || ovs[0].Name != "v+a" || ovs[1].Name != "v+b" {
		t.Fatalf("overlays: %+v %v", ovs, err)
	}
	a, _ := s.Volume("v+a")
	if ref, _, _ := s.FileChunk(a.Inode, 0); ref.Handle != base.Handle || !ref.Shared {
		t.Fatalf("overlay chunk %+v, want shared %d", ref, base.Handle)
	}
	for _, c := range []struct {
		cmd  Command
		want error
	}{
		{AttachOverlay{Volume: "v", Name: "a", Lease: 1e9}, ErrExists},
		{AttachOverlay{Volume: "v+a", Name: "c", Lease: 1e9}, ErrInvalid},        // an overlay of an overlay
		{AttachOverlay{Volume: "v", Name: "c+d", Lease: 1e9}, ErrInvalid},        // separator in the name
		{AttachOverlay{Volume: "v", Name: "c", Lease: 0}, ErrInvalid},            // no lease
		{AttachOverlay{Volume: "nope", Name: "c", Lease: 1e9}, ErrNotFound},      // no volume
		{CreateVolume{Name: "x+y", Size: 1 << 20}, ErrInvalid},                   // reserved separator
		{CloneVolume{Src: "v", Dst: "x+y"}, ErrInvalid},                          // reserved separator
		{RemoveVolume{Name: "v"}, ErrNotEmpty},                                   // overlays first
		{DetachOverlay{Volume: "v", Name: "zz"}, ErrNotFound},                    // no overlay
		{PromoteOverlay{Volume: "v", Name: "zz"}, ErrNotFound},                   // no overlay
		{SetWriter{Volume: "v", Session: "s2", Prev: "other"}, ErrEpochMismatch}, // a release by a non-holder
	} {
		if r := s.Apply(c.cmd); !errors.Is(r.Err, c.want) {
			t.Errorf("%T %+v: %v, want %v", c.cmd, c.cmd, r.Err, c.want)
		}
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	// Re-attach (a copier's restart): a new inode, the old one's chunks
	// fenced and released in the same command.
	old, _ := s.Volume("v+b")
	r0 := applyChecked(t, s, AttachOverlay{Volume: "v", Name: "b", Lease: 1e9, Replace: true, Time: 7})
	if r0.Info.Inode == old.Inode || len(r0.Fenced) == 0 {
		t.Fatalf("re-attach: %+v", r0)
	}
	// Detach releases its reference and fences its chunks.
	ch, _ := s.Chunk(base.Handle)
	r := applyChecked(t, s, DetachOverlay{Volume: "v", Name: "a"})
	if len(r.Fenced) != 1 || r.Fenced[0].Epoch != ch.Epoch+1 {
		t.Fatalf("detach fenced %+v", r.Fenced)
	}
	if ch, _ := s.Chunk(base.Handle); ch.Refs != 2 {
		t.Fatalf("refs %d after detach, want 2", ch.Refs)
	}
	applyChecked(t, s, DetachOverlay{Volume: "v", Name: "b"})
	applyChecked(t, s, RemoveVolume{Name: "v"})
	if _, ok := s.Chunk(base.Handle); ok {
		t.Fatal("chunk survives its last volume")
	}
	_ = v
}

func TestOverlayPromote(t *testing.T) {
	s, v, base := overlayFixture(t)
	a, _ := s.Volume("v+a")
	applyChecked(t, s, SetWriter{Volume: "v", Session: "w"})
	applyChecked(t, s, SetWriter{Volume: "v+a", Session: "ca"})
	// The writer forks chunk 0; the copiers keep the original.
	fr := applyChecked(t, s, ForkChunk{Inode: v.Inode, Index: 0, Source: base.Handle, Epoch: base.Epoch + 1})
	applyChecked(t, s, ForkDone{Handle: fr.Chunk.Handle, Chain: []ServerID{1}})
	mine := fr.Chunk.Handle
	r := applyChecked(t, s, PromoteOverlay{Volume: "v", Name: "a", Time: 9})
	if r.Info.Inode != a.Inode || r.Info.Name != "v" || r.Info.OverlayOf != "" {
		t.Fatalf("promoted: %+v", r.Info)
	}
	// The old writer's chunk is fenced and gone; the volume is the
	// overlay's inode, whose writer session stays.
	if len(r.Fenced) != 1 || r.Fenced[0].Handle != mine {
		t.Fatalf("promote fenced %+v, want chunk %d", r.Fenced, mine)
	}
	if _, ok := s.Chunk(mine); ok {
		t.Fatal("the old writer's chunk survives the promote")
	}
	if sess, of, _, _, ok := s.VolumeWriter(a.Inode); !ok || sess != "ca" || of != "" {
		t.Fatalf("writer of the promoted volume: %q %q %v", sess, of, ok)
	}
	if _, _, _, _, ok := s.VolumeWriter(v.Inode); ok {
		t.Fatal("the old volume inode survives")
	}
	if nv, _ := s.Volume("v"); nv.Inode != a.Inode {
		t.Fatalf("v is inode %d, want %d", nv.Inode, a.Inode)
	}
	if ref, _, _ := s.FileChunk(a.Inode, 0); ref.Handle != base.Handle {
		t.Fatalf("promoted chunk %d, want %d", ref.Handle, base.Handle)
	}
	// The other overlay keeps its view and its base.
	if ovs, _ := s.Overlays("v"); len(ovs) != 1 || ovs[0].Name != "v+b" {
		t.Fatalf("overlays after promote: %+v", ovs)
	}
	// A new session fences the old one's chunks.
	if r := applyChecked(t, s, SetWriter{Volume: "v", Session: "n"}); len(r.Fenced) != 1 {
		t.Fatalf("takeover fenced %+v", r.Fenced)
	}
	// Release by the holder only.
	if r := s.Apply(SetWriter{Volume: "v", Session: "", Prev: "ca"}); !errors.Is(r.Err, ErrEpochMismatch) {
		t.Fatalf("release by the old holder: %v", r.Err)
	}
	applyChecked(t, s, SetWriter{Volume: "v", Session: "", Prev: "n"})
	if sess, _, _, _, _ := s.VolumeWriter(a.Inode); sess != "" {
		t.Fatalf("session %q after release", sess)
	}
	// Checkpoints keep overlays and sessions.
	applyChecked(t, s, SetWriter{Volume: "v+b", Session: "cb"})
	s2 := checkpointRoundTrip(t, s)
	vb, _ := s2.Volume("v+b")
	if sess, of, lease, _, _ := s2.VolumeWriter(vb.Inode); sess != "cb" || of != "v" || lease != 1e9 {
		t.Fatalf("restored overlay: %q %q %d", sess, of, lease)
	}
}
