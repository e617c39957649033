package meta

import (
	"bytes"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to a
// command that decodes to the same encoding and applies without panicking.
func FuzzDecode(f *testing.F) {
	for _, c := range []Command{
		Mkdir{Path: "/a", Parents: true, Mode: 0o755, Time: 1},
		Create{Path: "/a/f", Replication: 2, ChunkSize: 1 << 20, Time: 2},
		Rename{Src: "/a", Dst: "/b", Time: 3},
		Remove{Path: "/b", Recursive: true},
		SetSize{Inode: 3, Size: 10, Mode: SizeExact},
		AllocateChunk{Inode: 3, Index: 0, Chain: []ServerID{1}},
		RegisterServer{ID: 1, Addr: "x:1", Labels: map[string]string{"zone": "a"}},
		RegisterServer{ID: 2, Addr: "x:2", CertName: "cs2"},
		SetChain{Handle: 1, Epoch: 2, Chain: []ServerID{1}},
		SetChain{Handle: 1, Epoch: 2, Chain: []ServerID{1, 2}, Joined: []ServerID{2}},
		CaughtUp{Members: []CaughtUpMember{{Handle: 1, Epoch: 2, Server: 2}}},
		SetMaster{ID: "m1", Addr: "x:1"},
		SetReplication{Inode: 2, Replication: 5, Time: 3},
		SetDraining{Server: 2, Draining: true},
		RemoveServer{Server: 2, Force: true},
		Request{Client: 1, Seq: 2, Time: 3, Cmd: Rename{Src: "/a", Dst: "/b"}},
		As{User: User{UID: 1, GID: 2, Groups: []uint32{3}}, Checks: []Check{{Op: CheckOpEntryPath, Path: "/a/g"}}, Cmd: Create{Path: "/a/g"}},
		Request{Client: 1, Seq: 3, Cmd: As{User: Nobody, Checks: []Check{{Op: CheckOpChown, Inode: 3, SetGID: true, GID: 5}}, Cmd: Setattr{Inode: 3}}},
		CreateVolume{Name: "v", Size: 1 << 20, Time: 4},
		AttachOverlay{Volume: "v", Name: "a", Lease: 1e9, Replace: true, Time: 5},
		SetWriter{Volume: "v+a", Session: "s", Owner: "o", Time: 6},
		SetWriter{Volume: "v", Session: "", Prev: "s", Time: 6},
		PromoteOverlay{Volume: "v", Name: "a", Time: 7},
		DetachOverlay{Volume: "v", Name: "a", Time: 8},
		Concat{Dst: "/a/f", Srcs: []string{"/a/g", "/a/h"}, Time: 9},
		As{User: User{UID: 1, GID: 1}, Checks: []Check{{Op: CheckOpEntryPath, Path: "/a/g", Remove: true}}, Cmd: Concat{Dst: "/a/f", Srcs: []string{"/a/g"}}},
	} {
		b, _ := Encode(c)
		f.Add(b)
	}
	for _, c := range posixSeeds() {
		b, _ := Encode(c)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		e1, err := Encode(c)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		c2, err := Decode(e1)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		e2, _ := Encode(c2)
		if !bytes.Equal(e1, e2) {
			t.Fatalf("unstable encoding %s vs %s", e1, e2)
		}
		s := New()
		s.Apply(RegisterServer{ID: 1, Addr: "x:1"})
		s.Apply(Mkdir{Path: "/a", Time: 1})
		s.Apply(Create{Path: "/a/f", Time: 1})
		s.Apply(c)
		checkRoundTrip(t, s)
	})
}

// FuzzRestore: Restore never panics, and an accepted checkpoint is a state
// that round-trips and survives commands.
func FuzzRestore(f *testing.F) {
	s := New()
	s.Apply(RegisterServer{ID: 1, Addr: "x:1"})
	s.Apply(Mkdir{Path: "/a/b", Parents: true, Time: 1})
	s.Apply(Create{Path: "/a/f", Time: 2})
	s.Apply(AllocateChunk{Inode: 4, Index: 2, Chain: []ServerID{1}})
	good, _ := s.Checkpoint()
	f.Add(good)
	// POSIX fields: owners, times, a symlink, a hard link, xattrs.
	for _, c := range posixSeeds() {
		if _, ok := c.(Unlink); !ok {
			s.Apply(c)
		}
	}
	s.Apply(Link{Inode: 3, Parent: 2, Name: "l2", Time: 6})
	s.Apply(SetXattr{Inode: 2, Name: "user.d", Value: []byte{0, 1}, Time: 6})
	posix, _ := s.Checkpoint()
	f.Add(posix)
	empty, _ := New().Checkpoint()
	f.Add(empty)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := RestoreCheckpoint(b)
		if err != nil {
			return
		}
		checkRoundTrip(t, r)
		r.Apply(Remove{Path: "/a", Recursive: true, Time: 3})
		r.Apply(Rename{Src: "/a", Dst: "/z", Time: 3})
		for _, fi := range mustList(t, r, "/") {
			if !fi.IsDir {
				r.Apply(SetSize{Inode: fi.Inode, Size: 0, Mode: SizeExact})
			}
		}
		checkRoundTrip(t, r)
	})
}

func mustList(t *testing.T, s *State, p string) []FileInfo {
	l, _, err := s.List(p, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// FuzzParseACL: an ACL xattr of any bytes (from a client) is taken or
// refused, never a panic; one taken is exactly its entries' encoding.
func FuzzParseACL(f *testing.F) {
	f.Add(aclValue([3]uint32{aclUserObj, 6, 0}, [3]uint32{aclUser, 4, 1001}, [3]uint32{aclGroupObj, 0, 0},
		[3]uint32{aclMask, 4, 0}, [3]uint32{aclOther, 0, 0}))
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		acl, err := parseACL(b)
		if err != nil {
			return
		}
		var es [][3]uint32
		for _, e := range acl {
			es = append(es, [3]uint32{uint32(e.tag), e.perm, e.id})
		}
		if got := aclValue(es...); !bytes.Equal(got, b) {
			t.Fatalf("taken %x, re-encoded %x", b, got)
		}
	})
}
