package meta

import (
	"errors"
	"testing"
)

func TestVolumeLifecycle(t *testing.T) {
	s := New()
	s.Apply(RegisterServer{ID: 1, Addr: "a:1"})
	r := s.Apply(CreateVolume{Name: "vm", Size: 1 << 30, Replication: 1, ChunkSize: 1 << 20, Time: 5})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	ino := r.Info.Inode
	if r.Info.Size != 1<<30 || r.Info.Replication != 1 || r.Info.ChunkSize != 1<<20 || r.Info.Path != "" {
		t.Fatalf("info %+v", r.Info)
	}
	if !s.IsVolume(ino) {
		t.Fatal("not a volume")
	}
	// Not visible in the namespace.
	if l, _, _ := s.List("/", "", 0); len(l) != 0 {
		t.Fatalf("volume listed in /: %+v", l)
	}
	if _, err := s.Lookup("/vm"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup /vm: %v", err)
	}
	// A file of the same name is independent.
	if r := s.Apply(Create{Path: "/vm", Time: 6}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := s.Apply(CreateVolume{Name: "vm", Size: 512}); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("duplicate: %v", r.Err)
	}
	if r := s.Apply(AllocateChunk{Inode: ino, Index: 3, Chain: []ServerID{1}}); r.Err != nil || !r.Allocated {
		t.Fatalf("allocate: %+v", r)
	}
	checkRoundTrip(t, s)
	if r := s.Apply(ResizeVolume{Name: "vm", Size: 1 << 29}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("shrink: %v", r.Err)
	}
	if r := s.Apply(ResizeVolume{Name: "vm", Size: 2 << 30, Time: 7}); r.Err != nil || r.Info.Size != 2<<30 {
		t.Fatalf("grow: %+v", r)
	}
	vs := s.Volumes()
	if len(vs) != 1 || vs[0].Name != "vm" || vs[0].Size != 2<<30 {
		t.Fatalf("volumes %+v", vs)
	}
	checkRoundTrip(t, s)
	if r := s.Apply(RemoveVolume{Name: "vm"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if len(s.Chunks()) != 0 {
		t.Fatalf("chunks left: %+v", s.Chunks())
	}
	if _, err := s.Volume("vm"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after remove: %v", err)
	}
	if _, err := s.Lookup("/vm"); err != nil {
		t.Fatalf("file /vm lost: %v", err)
	}
	checkRoundTrip(t, s)
}

func TestVolumeInvalid(t *testing.T) {
	s := New()
	for _, c := range []CreateVolume{
		{Name: "", Size: 512},
		{Name: "a/b", Size: 512},
		{Name: "x", Size: 0},
		{Name: "x", Size: 513},
		{Name: "x", Size: 512, Replication: 99},
		{Name: "x", Size: 512, ChunkSize: 3},
	} {
		if r := s.Apply(c); !errors.Is(r.Err, ErrInvalid) {
			t.Errorf("%+v: %v", c, r.Err)
		}
	}
	if r := s.Apply(RemoveVolume{Name: "nope"}); !errors.Is(r.Err, ErrNotFound) {
		t.Errorf("remove missing: %v", r.Err)
	}
}

func TestVolumeCommandsEncode(t *testing.T) {
	for _, c := range []Command{
		CreateVolume{Name: "v", Size: 4096, Replication: 2, ChunkSize: 1 << 20, Time: 1},
		RemoveVolume{Name: "v", Time: 2},
		ResizeVolume{Name: "v", Size: 8192, Time: 3},
	} {
		if d := reencode(t, c); d != c {
			t.Fatalf("round trip %+v != %+v", d, c)
		}
	}
}

func TestVolumeRestoreRejectsBadTable(t *testing.T) {
	s := New()
	s.Apply(Create{Path: "/f"})
	b, _ := s.Checkpoint()
	// Point a volume at a namespace file.
	bad := []byte(string(b[:len(b)-1]) + `,"Volumes":{"v":2}}`)
	if _, err := RestoreCheckpoint(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("restore: %v", err)
	}
}
