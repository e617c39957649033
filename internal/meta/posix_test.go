package meta

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// posixFixture: the fixture (/d, /d/e, /d/f with one chunk) plus, by the
// inode commands, /d/p (file 0640 owned 7:8), /d/s -> "d/f" and /d/h, a
// second name of /d/f.
func posixFixture(t *testing.T) (s *State, d, e, f, p FileInfo) {
	t.Helper()
	s = fixture(t)
	d, _ = s.Lookup("/d")
	e, _ = s.Lookup("/d/e")
	f, _ = s.Lookup("/d/f")
	r := s.Apply(CreateAt{Parent: d.Inode, Name: "p", Mode: 0o640, Uid: 7, Gid: 8, Time: 10})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	p = r.Info
	applyOK(t, s, Symlink{Parent: d.Inode, Name: "s", Target: "d/f", Uid: 7, Gid: 8, Time: 11})
	applyOK(t, s, Link{Inode: f.Inode, Parent: d.Inode, Name: "h", Time: 12})
	f, _ = s.Stat(f.Inode)
	return s, d, e, f, p
}

func applyOK(t *testing.T, s *State, c Command) Result {
	t.Helper()
	r := s.Apply(c)
	if r.Err != nil {
		t.Fatalf("%#v: %v", c, r.Err)
	}
	checkRoundTrip(t, s)
	return r
}

func TestPosixCreateMkdirSymlink(t *testing.T) {
	s, d, _, _, p := posixFixture(t)
	if p.Mode != 0o640 || p.Uid != 7 || p.Gid != 8 || p.Nlink != 1 || p.ATime != 10 || p.CTime != 10 || p.MTime != 10 {
		t.Fatalf("created file %+v", p)
	}
	r := applyOK(t, s, MkdirAt{Parent: d.Inode, Name: "m", Mode: 0o1777, Uid: 3, Gid: 4, Time: 20})
	if !r.Info.IsDir || r.Info.Mode != 0o1777 || r.Info.Uid != 3 || r.Info.Nlink != 2 {
		t.Fatalf("mkdir %+v", r.Info)
	}
	// A subdirectory counts in its parent's nlink: ., .., e, m.
	if d2, _ := s.Stat(d.Inode); d2.Nlink != 4 || d2.MTime != 20 {
		t.Fatalf("parent after mkdir: nlink %d mtime %d", d2.Nlink, d2.MTime)
	}
	sl, err := s.LookupChild(d.Inode, "s")
	if err != nil || !sl.Symlink || sl.Target != "d/f" || sl.Size != 3 || sl.Mode != 0o777 {
		t.Fatalf("symlink %+v, %v", sl, err)
	}
	ents, _, err := s.ReadDirInode(d.Inode, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "e,f,h,m,p,s" {
		t.Fatalf("readdir %s", got)
	}
}

func TestPosixLinkAndUnlink(t *testing.T) {
	s, d, e, f, _ := posixFixture(t)
	if f.Nlink != 2 {
		t.Fatalf("nlink after link %d", f.Nlink)
	}
	h, err := s.LookupChild(d.Inode, "h")
	if err != nil || h.Inode != f.Inode {
		t.Fatalf("link name: %+v %v", h, err)
	}
	// A third name in another directory; removing the primary name keeps
	// the file and its chunk, reachable by the promoted name.
	applyOK(t, s, Link{Inode: f.Inode, Parent: e.Inode, Name: "g", Time: 13})
	applyOK(t, s, Unlink{Parent: d.Inode, Name: "f", Time: 14})
	if fi, _ := s.Stat(f.Inode); fi.Nlink != 2 || fi.CTime != 14 {
		t.Fatalf("after unlink of primary: %+v", fi)
	}
	if _, err := s.Lookup("/d/h"); err != nil {
		t.Fatalf("promoted name: %v", err)
	}
	if len(s.Chunks()) != 1 {
		t.Fatal("chunk released while the file has names")
	}
	applyOK(t, s, Unlink{Parent: d.Inode, Name: "h", Time: 15})
	if fi, err := s.Lookup("/d/e/g"); err != nil || fi.Nlink != 1 {
		t.Fatalf("last name: %+v %v", fi, err)
	}
	applyOK(t, s, Unlink{Parent: e.Inode, Name: "g", Time: 16})
	if _, err := s.Stat(f.Inode); !errors.Is(err, ErrNotFound) {
		t.Fatalf("file after last unlink: %v", err)
	}
	if len(s.Chunks()) != 0 {
		t.Fatal("chunk kept after the last name went")
	}
	// Rmdir of an empty directory.
	applyOK(t, s, Unlink{Parent: d.Inode, Name: "e", Dir: true, Time: 17})
	if _, err := s.LookupChild(d.Inode, "e"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rmdir: %v", err)
	}
}

func TestPosixRenameAt(t *testing.T) {
	s, d, e, f, p := posixFixture(t)
	// Replace onto an existing file: the old target goes, with its inode.
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: e.Inode, DstName: "x", Time: 20})
	applyOK(t, s, CreateAt{Parent: d.Inode, Name: "q", Mode: 0o600, Time: 21})
	applyOK(t, s, RenameAt{SrcParent: e.Inode, SrcName: "x", DstParent: d.Inode, DstName: "q", Time: 22})
	q, err := s.LookupChild(d.Inode, "q")
	if err != nil || q.Inode != p.Inode || q.CTime != 22 {
		t.Fatalf("replaced entry %+v %v", q, err)
	}
	if _, err := s.LookupChild(e.Inode, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old name still there: %v", err)
	}
	// Renaming one name of a file onto another of its names does nothing.
	before, _ := s.Checkpoint()
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "f", DstParent: d.Inode, DstName: "h", Time: 23})
	if after, _ := s.Checkpoint(); !bytes.Equal(before, after) {
		t.Fatal("rename between two names of one file changed the state")
	}
	// Moving the extra name of a hard link keeps the primary.
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "h", DstParent: e.Inode, DstName: "h2", Time: 24})
	if fi, err := s.Lookup("/d/e/h2"); err != nil || fi.Inode != f.Inode || fi.Nlink != 2 {
		t.Fatalf("moved link %+v %v", fi, err)
	}
	// Replace an empty directory by a directory.
	applyOK(t, s, MkdirAt{Parent: d.Inode, Name: "m1", Time: 25})
	applyOK(t, s, MkdirAt{Parent: d.Inode, Name: "m2", Time: 25})
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "m1", DstParent: d.Inode, DstName: "m2", Time: 26})
	if _, err := s.LookupChild(d.Inode, "m1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("m1 still there: %v", err)
	}
	// NoReplace onto a free name works.
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "m2", DstParent: d.Inode, DstName: "m3", NoReplace: true, Time: 27})
}

func TestPosixSetattr(t *testing.T) {
	s, d, _, f, p := posixFixture(t)
	r := applyOK(t, s, Setattr{Inode: p.Inode, Set: SetMode | SetUid, Mode: 0o104755, Uid: 99, Time: 30})
	if r.Info.Mode != 0o4755 || r.Info.Uid != 99 || r.Info.Gid != 8 || r.Info.CTime != 30 || r.Info.MTime != 10 {
		t.Fatalf("setattr mode/uid %+v", r.Info)
	}
	r = applyOK(t, s, Setattr{Inode: p.Inode, Set: SetGid | SetATime | SetMTime, Gid: 5, ATime: 1, MTime: 2, Time: 31})
	if r.Info.Gid != 5 || r.Info.ATime != 1 || r.Info.MTime != 2 || r.Info.Uid != 99 || r.Info.CTime != 31 {
		t.Fatalf("setattr gid/times %+v", r.Info)
	}
	// No fields: only ctime.
	r = applyOK(t, s, Setattr{Inode: d.Inode, Time: 32})
	if r.Info.CTime != 32 || r.Info.Mode != d.Mode {
		t.Fatalf("empty setattr %+v", r.Info)
	}
	// Through a hard link both names see it.
	applyOK(t, s, Setattr{Inode: f.Inode, Set: SetMode, Mode: 0o600, Time: 33})
	if h, _ := s.LookupChild(d.Inode, "h"); h.Mode != 0o600 {
		t.Fatalf("mode through link %o", h.Mode)
	}
}

func TestPosixXattrs(t *testing.T) {
	s, _, _, _, p := posixFixture(t)
	applyOK(t, s, SetXattr{Inode: p.Inode, Name: "user.a", Value: []byte("1"), Mode: XattrCreate, Time: 40})
	applyOK(t, s, SetXattr{Inode: p.Inode, Name: "user.a", Value: []byte("22"), Mode: XattrReplace, Time: 41})
	applyOK(t, s, SetXattr{Inode: p.Inode, Name: "user.b", Value: nil, Time: 42})
	if v, err := s.Xattr(p.Inode, "user.a"); err != nil || string(v) != "22" {
		t.Fatalf("xattr %q %v", v, err)
	}
	if names, _ := s.Xattrs(p.Inode); strings.Join(names, ",") != "user.a,user.b" {
		t.Fatalf("xattr names %v", names)
	}
	// Up to the limits is fine: one maximal value, total just at the cap.
	applyOK(t, s, SetXattr{Inode: p.Inode, Name: strings.Repeat("n", MaxXattrName), Value: make([]byte, MaxXattrValue), Time: 43})
	r := applyOK(t, s, RemoveXattr{Inode: p.Inode, Name: "user.a", Time: 44})
	if r.Info.CTime != 44 {
		t.Fatalf("removexattr ctime %d", r.Info.CTime)
	}
	if _, err := s.Xattr(p.Inode, "user.a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed xattr: %v", err)
	}
	// Values returned are copies.
	v, _ := s.Xattr(p.Inode, "user.b")
	v = append(v, 'x')
	if w, _ := s.Xattr(p.Inode, "user.b"); len(w) != 0 {
		t.Fatalf("query returned shared value %q", w)
	}
	_ = v
}

func TestPosixErrorsLeaveStateUnchanged(t *testing.T) {
	s, d, e, f, p := posixFixture(t)
	sl, _ := s.LookupChild(d.Inode, "s")
	applyOK(t, s, SetXattr{Inode: p.Inode, Name: "user.big", Value: make([]byte, MaxXattrValue), Time: 50})
	applyOK(t, s, SetXattr{Inode: p.Inode, Name: "user.big2", Value: make([]byte, MaxXattrValue), Time: 50})
	applyOK(t, s, SetXattr{Inode: p.Inode, Name: "user.big3", Value: make([]byte, MaxXattrValue), Time: 50})
	long := strings.Repeat("n", 256)
	cases := []struct {
		cmd  Command
		want error
	}{
		{CreateAt{Parent: d.Inode, Name: "f"}, ErrExists},
		{CreateAt{Parent: d.Inode, Name: "e"}, ErrExists},
		{CreateAt{Parent: 999, Name: "x"}, ErrNotFound},
		{CreateAt{Parent: f.Inode, Name: "x"}, ErrNotDir},
		{CreateAt{Parent: d.Inode, Name: long}, ErrNameTooLong},
		{CreateAt{Parent: d.Inode, Name: "a/b"}, ErrInvalid},
		{CreateAt{Parent: d.Inode, Name: ""}, ErrInvalid},
		{CreateAt{Parent: d.Inode, Name: "x", Replication: -1}, ErrInvalid},
		{CreateAt{Parent: d.Inode, Name: "x", ChunkSize: 3 << 20}, ErrInvalid},
		{MkdirAt{Parent: d.Inode, Name: "e"}, ErrExists},
		{MkdirAt{Parent: d.Inode, Name: "s"}, ErrExists},
		{MkdirAt{Parent: 999, Name: "x"}, ErrNotFound},
		{MkdirAt{Parent: p.Inode, Name: "x"}, ErrNotDir},
		{Symlink{Parent: d.Inode, Name: "s", Target: "t"}, ErrExists},
		{Symlink{Parent: d.Inode, Name: "x", Target: ""}, ErrInvalid},
		{Symlink{Parent: d.Inode, Name: "x", Target: strings.Repeat("t", MaxSymlinkLen+1)}, ErrNameTooLong},
		{Symlink{Parent: d.Inode, Name: long, Target: "t"}, ErrNameTooLong},
		{MkdirAt{Parent: d.Inode, Name: long}, ErrNameTooLong},
		{Link{Inode: f.Inode, Parent: d.Inode, Name: long}, ErrNameTooLong},
		{Mknod{Parent: d.Inode, Name: long, Type: TypeFifo}, ErrNameTooLong},
		{Mknod{Parent: d.Inode, Name: "f", Type: TypeFifo}, ErrExists},
		{Mknod{Parent: d.Inode, Name: "x", Type: 0o100000}, ErrInvalid}, // S_IFREG goes through CreateAt
		{Mknod{Parent: d.Inode, Name: "x", Type: 0}, ErrInvalid},
		{Mknod{Parent: f.Inode, Name: "x", Type: TypeFifo}, ErrNotDir},
		{Mknod{Parent: 999, Name: "x", Type: TypeSocket}, ErrNotFound},
		{Unlink{Parent: d.Inode, Name: long}, ErrNameTooLong},
		{Unlink{Parent: d.Inode, Name: long, Dir: true}, ErrNameTooLong},
		{RenameAt{SrcParent: d.Inode, SrcName: long, DstParent: d.Inode, DstName: "y"}, ErrNameTooLong},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: d.Inode, DstName: "f", Exchange: true, NoReplace: true}, ErrInvalid},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: d.Inode, DstName: "zz", Exchange: true}, ErrNotFound},
		{RenameAt{SrcParent: d.Inode, SrcName: "zz", DstParent: d.Inode, DstName: "p", Exchange: true}, ErrNotFound},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: d.Inode, DstName: long, Exchange: true}, ErrNameTooLong},
		// A directory swapped into its own subtree, or its ancestor into it.
		{RenameAt{SrcParent: RootInode, SrcName: "d", DstParent: d.Inode, DstName: "p", Exchange: true}, ErrInvalid},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: RootInode, DstName: "d", Exchange: true}, ErrInvalid},
		// Only regular files hold data.
		{SetSize{Inode: sl.Inode, Size: 1, Mode: SizeExact}, ErrInvalid},
		{AllocateChunk{Inode: sl.Inode, Chain: []ServerID{1}}, ErrInvalid},
		{Symlink{Parent: f.Inode, Name: "x", Target: "t"}, ErrNotDir},
		{Link{Inode: f.Inode, Parent: d.Inode, Name: "p"}, ErrExists},
		{Link{Inode: e.Inode, Parent: d.Inode, Name: "x"}, ErrIsDir},
		{Link{Inode: 999, Parent: d.Inode, Name: "x"}, ErrNotFound},
		{Link{Inode: f.Inode, Parent: 999, Name: "x"}, ErrNotFound},
		{Link{Inode: f.Inode, Parent: p.Inode, Name: "x"}, ErrNotDir},
		{Unlink{Parent: d.Inode, Name: "zz"}, ErrNotFound},
		{Unlink{Parent: d.Inode, Name: "e"}, ErrIsDir},
		{Unlink{Parent: d.Inode, Name: "f", Dir: true}, ErrNotDir},
		{Unlink{Parent: RootInode, Name: "d", Dir: true}, ErrNotEmpty},
		{Unlink{Parent: f.Inode, Name: "x"}, ErrNotDir},
		{Unlink{Parent: 999, Name: "x"}, ErrNotFound},
		{RenameAt{SrcParent: d.Inode, SrcName: "zz", DstParent: d.Inode, DstName: "y"}, ErrNotFound},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: d.Inode, DstName: "f", NoReplace: true}, ErrExists},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: d.Inode, DstName: "p", NoReplace: true}, ErrExists},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: d.Inode, DstName: "e"}, ErrIsDir},
		{RenameAt{SrcParent: d.Inode, SrcName: "e", DstParent: d.Inode, DstName: "p"}, ErrNotDir},
		{RenameAt{SrcParent: RootInode, SrcName: "d", DstParent: e.Inode, DstName: "d"}, ErrInvalid},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: 999, DstName: "y"}, ErrNotFound},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: f.Inode, DstName: "y"}, ErrNotDir},
		{RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: d.Inode, DstName: long}, ErrNameTooLong},
		{Setattr{Inode: 999, Set: SetMode, Mode: 0o777}, ErrNotFound},
		{SetXattr{Inode: 999, Name: "user.a"}, ErrNotFound},
		{SetXattr{Inode: p.Inode, Name: ""}, ErrInvalid},
		{SetXattr{Inode: p.Inode, Name: long}, ErrInvalid},
		{SetXattr{Inode: p.Inode, Name: "user.a", Value: make([]byte, MaxXattrValue+1)}, ErrInvalid},
		{SetXattr{Inode: p.Inode, Name: "user.big", Mode: XattrCreate}, ErrExists},
		{SetXattr{Inode: p.Inode, Name: "user.a", Mode: XattrReplace}, ErrNotFound},
		{SetXattr{Inode: p.Inode, Name: "user.a", Mode: 3}, ErrInvalid},
		// The fourth maximal value passes the per-inode total.
		{SetXattr{Inode: p.Inode, Name: "user.big4", Value: make([]byte, MaxXattrValue)}, ErrInvalid},
		{RemoveXattr{Inode: p.Inode, Name: "user.a"}, ErrNotFound},
		{RemoveXattr{Inode: 999, Name: "user.a"}, ErrNotFound},
		{RemoveXattr{Inode: sl.Inode, Name: "user.a"}, ErrNotFound},
	}
	before, _ := s.Checkpoint()
	for _, c := range cases {
		r := s.Apply(c.cmd)
		if !errors.Is(r.Err, c.want) {
			t.Errorf("%T %+v: got %v, want %v", c.cmd, c.cmd, r.Err, c.want)
		}
		if after, _ := s.Checkpoint(); !bytes.Equal(before, after) {
			t.Fatalf("%T %+v changed the state", c.cmd, c.cmd)
		}
	}
	// Replacing a non-empty directory.
	applyOK(t, s, MkdirAt{Parent: d.Inode, Name: "m", Time: 60})
	before, _ = s.Checkpoint()
	if r := s.Apply(RenameAt{SrcParent: d.Inode, SrcName: "m", DstParent: RootInode, DstName: "d"}); !errors.Is(r.Err, ErrNotEmpty) {
		t.Fatalf("rename onto non-empty dir: %v", r.Err)
	}
	if after, _ := s.Checkpoint(); !bytes.Equal(before, after) {
		t.Fatal("failed rename changed the state")
	}
}

func TestPosixCommandsEncode(t *testing.T) {
	for _, c := range posixSeeds() {
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		b2, _ := Encode(got)
		if !bytes.Equal(b, b2) {
			t.Fatalf("%T: %s != %s", c, b, b2)
		}
	}
}

// posixSeeds are one of each POSIX command, on the fuzzers' base state
// (/a is inode 2, /a/f inode 3).
func posixSeeds() []Command {
	return []Command{
		CreateAt{Parent: 2, Name: "c", Mode: 0o644, Uid: 1, Gid: 2, Replication: 2, ChunkSize: 1 << 20, Time: 5},
		MkdirAt{Parent: 2, Name: "m", Mode: 0o755, Uid: 1, Gid: 2, Time: 5},
		Symlink{Parent: 2, Name: "s", Target: "f", Uid: 1, Time: 5},
		Link{Inode: 3, Parent: 1, Name: "l", Time: 5},
		Unlink{Parent: 2, Name: "f", Time: 5},
		Unlink{Parent: 1, Name: "a", Dir: true, Time: 5},
		RenameAt{SrcParent: 2, SrcName: "f", DstParent: 1, DstName: "a", Time: 5},
		RenameAt{SrcParent: 2, SrcName: "f", DstParent: 1, DstName: "g", NoReplace: true, Time: 5},
		RenameAt{SrcParent: 2, SrcName: "f", DstParent: 1, DstName: "a", Exchange: true, Time: 5},
		Mknod{Parent: 2, Name: "fifo", Type: TypeFifo, Mode: 0o600, Uid: 1, Gid: 2, Time: 5},
		Mknod{Parent: 2, Name: "dev", Type: TypeBlock, Mode: 0o600, Rdev: 0x801, Time: 5},
		Setattr{Inode: 3, Set: SetMode | SetUid | SetGid | SetATime | SetMTime, Mode: 0o600, Uid: 1, Gid: 1, ATime: 1, MTime: 2, Time: 5},
		SetXattr{Inode: 3, Name: "user.x", Value: []byte("v"), Mode: XattrCreate, Time: 5},
		RemoveXattr{Inode: 3, Name: "user.x", Time: 5},
	}
}

func TestPosixMknod(t *testing.T) {
	s, d, _, _, _ := posixFixture(t)
	for _, c := range []struct {
		name       string
		typ, rdev  uint32
		wantRdev   uint32
		mode, want uint32
	}{
		{"fifo", TypeFifo, 0x801, 0, 0o644, 0o644},
		{"chr", TypeChar, 0x103, 0x103, 0o600, 0o600},
		{"blk", TypeBlock, 0x801, 0x801, 0, 0},
		{"sock", TypeSocket, 7, 0, 0o4755, 0o4755},
	} {
		r := applyOK(t, s, Mknod{Parent: d.Inode, Name: c.name, Type: c.typ, Mode: c.mode, Rdev: c.rdev, Uid: 5, Gid: 6, Time: 30})
		fi, err := s.LookupChild(d.Inode, c.name)
		if err != nil || fi != r.Info {
			t.Fatalf("%s: lookup %+v %v, created %+v", c.name, fi, err, r.Info)
		}
		if fi.Special != c.typ || fi.Rdev != c.wantRdev || fi.Mode != c.want || fi.Uid != 5 || fi.Gid != 6 ||
			fi.Nlink != 1 || fi.Size != 0 || fi.IsDir || fi.Symlink || fi.CTime != 30 {
			t.Fatalf("%s: %+v", c.name, fi)
		}
		// A special file holds no data.
		if r := s.Apply(SetSize{Inode: fi.Inode, Size: 10, Mode: SizeExact}); !errors.Is(r.Err, ErrInvalid) {
			t.Fatalf("%s: SetSize: %v", c.name, r.Err)
		}
	}
	// Hard links and renames keep the type and device number.
	blk, _ := s.LookupChild(d.Inode, "blk")
	applyOK(t, s, Link{Inode: blk.Inode, Parent: RootInode, Name: "blk2", Time: 31})
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "blk", DstParent: RootInode, DstName: "blk3", Time: 32})
	if fi, err := s.Lookup("/blk3"); err != nil || fi.Special != TypeBlock || fi.Rdev != 0x801 || fi.Nlink != 2 || fi.CTime != 32 {
		t.Fatalf("renamed device %+v %v", fi, err)
	}
	if d2, _ := s.Stat(d.Inode); d2.MTime != 32 || d2.CTime != 32 {
		t.Fatalf("parent after mknod and rename: %+v", d2)
	}
}

func TestPosixLookupNameTooLong(t *testing.T) {
	s, d, _, _, _ := posixFixture(t)
	if _, err := s.LookupChild(d.Inode, strings.Repeat("x", MaxNameLen+1)); !errors.Is(err, ErrNameTooLong) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("lookup of a long name: %v", err)
	}
	if _, err := s.LookupChild(d.Inode, strings.Repeat("x", MaxNameLen)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup of a missing name of %d bytes: %v", MaxNameLen, err)
	}
	applyOK(t, s, CreateAt{Parent: d.Inode, Name: strings.Repeat("x", MaxNameLen), Time: 40})
	if err := CheckPath("/" + strings.Repeat("x", MaxNameLen+1)); !errors.Is(err, ErrNameTooLong) {
		t.Fatalf("CheckPath of a long name: %v", err)
	}
}

func TestPosixRenameExchange(t *testing.T) {
	s, d, e, f, p := posixFixture(t)
	applyOK(t, s, CreateAt{Parent: e.Inode, Name: "x", Time: 19})
	x, _ := s.LookupChild(e.Inode, "x")
	// A file and a directory swap across directories.
	applyOK(t, s, MkdirAt{Parent: RootInode, Name: "m", Time: 19})
	m, _ := s.LookupChild(RootInode, "m")
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: RootInode, DstName: "m", Exchange: true, Time: 20})
	if fi, _ := s.Lookup("/m"); fi.Inode != p.Inode || fi.CTime != 20 || fi.Path != "/m" {
		t.Fatalf("/m after exchange %+v", fi)
	}
	if fi, _ := s.Lookup("/d/p"); fi.Inode != m.Inode || !fi.IsDir || fi.CTime != 20 || fi.Path != "/d/p" {
		t.Fatalf("/d/p after exchange %+v", fi)
	}
	// ., .., e and now p: the directory moved in counts in nlink.
	if d2, _ := s.Stat(d.Inode); d2.Nlink != 4 || d2.MTime != 20 || d2.CTime != 20 {
		t.Fatalf("/d after exchange %+v", d2)
	}
	if r, _ := s.Stat(RootInode); r.Nlink != 3 || r.MTime != 20 {
		t.Fatalf("/ after exchange %+v", r)
	}
	// The extra name of a hard-linked file swaps with a file; the
	// primary name stays.
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "h", DstParent: e.Inode, DstName: "x", Exchange: true, Time: 21})
	if fi, _ := s.Lookup("/d/e/x"); fi.Inode != f.Inode || fi.Nlink != 2 {
		t.Fatalf("/d/e/x %+v", fi)
	}
	if fi, _ := s.Lookup("/d/h"); fi.Inode != x.Inode || fi.Path != "/d/h" {
		t.Fatalf("/d/h %+v", fi)
	}
	if fi, _ := s.Lookup("/d/f"); fi.Inode != f.Inode {
		t.Fatalf("/d/f %+v", fi)
	}
	// Two names of one file, or one entry with itself: nothing happens.
	before, _ := s.Checkpoint()
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "f", DstParent: e.Inode, DstName: "x", Exchange: true, Time: 22})
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "f", DstParent: d.Inode, DstName: "f", Exchange: true, Time: 22})
	if after, _ := s.Checkpoint(); !bytes.Equal(before, after) {
		t.Fatal("exchange of one inode with itself changed the state")
	}
	// Swapping twice restores the names.
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "s", DstParent: RootInode, DstName: "m", Exchange: true, Time: 23})
	applyOK(t, s, RenameAt{SrcParent: d.Inode, SrcName: "s", DstParent: RootInode, DstName: "m", Exchange: true, Time: 24})
	if fi, _ := s.Lookup("/d/s"); !fi.Symlink {
		t.Fatalf("/d/s after two exchanges %+v", fi)
	}
}

// TestPosixCtime: every change of an inode sets its ctime (POSIX): chmod,
// chown, utimens, link, unlink of one of its names, rename, truncate,
// write (SetSize), xattrs; lookups and failures do not.
func TestPosixCtime(t *testing.T) {
	s, d, e, f, p := posixFixture(t)
	tm := int64(100)
	for _, c := range []struct {
		name string
		cmd  func(t int64) Command
		ino  uint64
	}{
		{"chmod", func(t int64) Command { return Setattr{Inode: p.Inode, Set: SetMode, Mode: 0o600, Time: t} }, p.Inode},
		{"chown", func(t int64) Command { return Setattr{Inode: p.Inode, Set: SetUid | SetGid, Uid: 1, Gid: 1, Time: t} }, p.Inode},
		{"utimens in the past", func(t int64) Command {
			return Setattr{Inode: p.Inode, Set: SetATime | SetMTime, ATime: 1, MTime: 1, Time: t}
		}, p.Inode},
		{"utimens in the future", func(t int64) Command {
			return Setattr{Inode: p.Inode, Set: SetMTime, MTime: 1 << 62, Time: t}
		}, p.Inode},
		{"chmod after a future mtime", func(t int64) Command { return Setattr{Inode: p.Inode, Set: SetMode, Mode: 0o640, Time: t} }, p.Inode},
		{"write after a future mtime", func(t int64) Command {
			return SetSize{Inode: p.Inode, Size: 5, Mode: SizeExtend, Time: t}
		}, p.Inode},
		{"link", func(t int64) Command { return Link{Inode: p.Inode, Parent: e.Inode, Name: "p2", Time: t} }, p.Inode},
		{"unlink of another name", func(t int64) Command { return Unlink{Parent: e.Inode, Name: "p2", Time: t} }, p.Inode},
		{"rename", func(t int64) Command {
			return RenameAt{SrcParent: d.Inode, SrcName: "p", DstParent: e.Inode, DstName: "p", Time: t}
		}, p.Inode},
		{"rename of a directory", func(t int64) Command {
			return RenameAt{SrcParent: d.Inode, SrcName: "e", DstParent: RootInode, DstName: "e", Time: t}
		}, e.Inode},
		{"truncate", func(t int64) Command { return SetSize{Inode: f.Inode, Size: 0, Mode: SizeExact, Time: t} }, f.Inode},
		{"write", func(t int64) Command { return SetSize{Inode: f.Inode, Size: 10, Mode: SizeExtend, Time: t} }, f.Inode},
		{"setxattr", func(t int64) Command { return SetXattr{Inode: p.Inode, Name: "user.a", Value: []byte("v"), Time: t} }, p.Inode},
		{"removexattr", func(t int64) Command { return RemoveXattr{Inode: p.Inode, Name: "user.a", Time: t} }, p.Inode},
		{"mknod in a directory", func(t int64) Command { return Mknod{Parent: e.Inode, Name: "fifo", Type: TypeFifo, Time: t} }, e.Inode},
	} {
		tm++
		applyOK(t, s, c.cmd(tm))
		fi, err := s.Stat(c.ino)
		if err != nil || fi.CTime != tm {
			t.Fatalf("%s: ctime %d, want %d (%v)", c.name, fi.CTime, tm, err)
		}
		// A failed command does not touch it.
		s.Apply(SetXattr{Inode: c.ino, Name: "user.x", Mode: XattrReplace, Time: tm + 1000})
		if fi, _ := s.Stat(c.ino); fi.CTime != tm {
			t.Fatalf("%s: failed command set ctime %d", c.name, fi.CTime)
		}
	}
}

// TestPosixSetgidDirectory: entries of a setgid directory take its group,
// and directories the setgid bit, as Linux does for local file systems.
func TestPosixSetgidDirectory(t *testing.T) {
	s, d, _, _, _ := posixFixture(t)
	g := applyOK(t, s, MkdirAt{Parent: d.Inode, Name: "g", Mode: 0o2775, Uid: 1, Gid: 50, Time: 20}).Info
	sub := applyOK(t, s, MkdirAt{Parent: g.Inode, Name: "sub", Mode: 0o755, Uid: 2, Gid: 2, Time: 21}).Info
	file := applyOK(t, s, CreateAt{Parent: g.Inode, Name: "f", Mode: 0o644, Uid: 2, Gid: 2, Time: 21}).Info
	fifo := applyOK(t, s, Mknod{Parent: g.Inode, Name: "p", Type: TypeFifo, Mode: 0o644, Uid: 2, Gid: 2, Time: 21}).Info
	if sub.Gid != 50 || sub.Mode != 0o2755 || file.Gid != 50 || file.Mode != 0o644 || fifo.Gid != 50 {
		t.Fatalf("in a setgid directory: dir %+v, file %+v, fifo %+v", sub, file, fifo)
	}
	plain := applyOK(t, s, CreateAt{Parent: d.Inode, Name: "plain", Mode: 0o644, Uid: 2, Gid: 2, Time: 21}).Info
	if plain.Gid != 2 {
		t.Fatalf("outside: %+v", plain)
	}
}

// TestListNamesHardLinks: the path-based List names each entry by its name
// in the listed directory, also for the extra name of a hard-linked file
// whose primary name is elsewhere (the cluster's namespace walk looks the
// listed paths up).
func TestListNamesHardLinks(t *testing.T) {
	s, _, e, f, _ := posixFixture(t)
	applyOK(t, s, Link{Inode: f.Inode, Parent: e.Inode, Name: "g", Time: 20})
	ls, _, err := s.List("/d/e", "", 0)
	if err != nil || len(ls) != 1 || ls[0].Name != "g" || ls[0].Path != "/d/e/g" || ls[0].Inode != f.Inode {
		t.Fatalf("list /d/e: %+v %v", ls, err)
	}
	for _, fi := range ls {
		if _, err := s.Lookup(fi.Path); err != nil {
			t.Fatalf("listed path %s: %v", fi.Path, err)
		}
	}
	if ls, _, _ := s.List("/d", "", 0); ls[1].Name != "f" || ls[2].Name != "h" || ls[2].Path != "/d/h" {
		t.Fatalf("list /d: %+v", ls)
	}
}
