package meta

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// fixture: /d (dir) /d/e (dir) /d/f (file, one chunk) on servers 1..3.
func fixture(t *testing.T) *State {
	t.Helper()
	s := New()
	for _, c := range []Command{
		RegisterServer{ID: 1, Addr: "a:1"}, RegisterServer{ID: 2, Addr: "b:1"}, RegisterServer{ID: 3, Addr: "c:1"},
		Mkdir{Path: "/d/e", Parents: true, Mode: 0o755, Time: 1},
		Create{Path: "/d/f", Mode: 0o644, Time: 2},
	} {
		if r := s.Apply(c); r.Err != nil {
			t.Fatalf("%T: %v", c, r.Err)
		}
	}
	f, err := s.Lookup("/d/f")
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Apply(AllocateChunk{Inode: f.Inode, Index: 0, Chain: []ServerID{1, 2, 3}, Time: 3}); r.Err != nil || !r.Allocated {
		t.Fatalf("allocate: %+v", r)
	}
	return s
}

func TestErrorsAreSentinelsAndLeaveStateUnchanged(t *testing.T) {
	s := fixture(t)
	f, _ := s.Lookup("/d/f")
	d, _ := s.Lookup("/d")
	cases := []struct {
		cmd  Command
		want error
	}{
		{Mkdir{Path: "/d"}, ErrExists},
		{Mkdir{Path: "/x/y"}, ErrNotFound},
		{Mkdir{Path: "/d/f/g", Parents: true}, ErrNotDir},
		{Mkdir{Path: "/d/f", Parents: true}, ErrExists},
		{Mkdir{Path: "rel"}, ErrInvalid},
		{Mkdir{Path: "/" + strings.Repeat("n", 256)}, ErrInvalid},
		{Mkdir{Path: strings.Repeat("/n", 2049)}, ErrInvalid},
		{Mkdir{Path: "/a\x00b"}, ErrInvalid},
		{Create{Path: "/d/f"}, ErrExists},
		{Create{Path: "/d/e"}, ErrIsDir},
		{Create{Path: "/d/e", Overwrite: true}, ErrIsDir},
		{Create{Path: "/nope/f"}, ErrNotFound},
		{Create{Path: "/d/f/x"}, ErrNotDir},
		{Create{Path: "/g", Replication: -1}, ErrInvalid},
		{Create{Path: "/g", ChunkSize: 3 << 20}, ErrInvalid},
		{Create{Path: "/"}, ErrInvalid},
		{Rename{Src: "/d", Dst: "/d/e/d"}, ErrInvalid},
		{Rename{Src: "/", Dst: "/r"}, ErrInvalid},
		{Rename{Src: "/d/f", Dst: "/d/e"}, ErrExists},
		{Rename{Src: "/zz", Dst: "/r"}, ErrNotFound},
		{Rename{Src: "/d/f", Dst: "/"}, ErrInvalid},
		{Remove{Path: "/d"}, ErrNotEmpty},
		{Remove{Path: "/"}, ErrInvalid},
		{Remove{Path: "/zz"}, ErrNotFound},
		{SetSize{Inode: d.Inode, Size: 1, Mode: SizeExact}, ErrIsDir},
		{SetSize{Inode: 999, Size: 1, Mode: SizeExact}, ErrNotFound},
		{SetSize{Inode: f.Inode, Size: 1, Mode: 9}, ErrInvalid},
		{SetSize{Inode: f.Inode, Size: -5, Mode: SizeExtend}, ErrInvalid},
		{AllocateChunk{Inode: f.Inode, Index: 1, Chain: []ServerID{7}}, ErrInvalid},
		{AllocateChunk{Inode: f.Inode, Index: 1 << 60, Chain: []ServerID{1}}, ErrInvalid},
		{AllocateChunk{Inode: d.Inode, Index: 0, Chain: []ServerID{1}}, ErrIsDir},
		{RegisterServer{ID: 0, Addr: "x"}, ErrInvalid},
		{RegisterServer{ID: 4}, ErrInvalid},
	}
	before, _ := s.Checkpoint()
	for _, c := range cases {
		r := s.Apply(c.cmd)
		if !errors.Is(r.Err, c.want) {
			t.Errorf("%#v: got %v, want %v", c.cmd, r.Err, c.want)
		}
		after, _ := s.Checkpoint()
		if !bytes.Equal(before, after) {
			t.Fatalf("%#v changed the state", c.cmd)
		}
	}
}

func TestRemoveRecursiveReleasesChunks(t *testing.T) {
	s := fixture(t)
	if len(s.Chunks()) != 1 {
		t.Fatalf("chunks: %v", s.Chunks())
	}
	if r := s.Apply(Remove{Path: "/d", Recursive: true, Time: 9}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if n := len(s.Chunks()); n != 0 {
		t.Fatalf("%d chunks left", n)
	}
	if s.HasChunk(1) || s.NextHandle() != 2 {
		t.Fatalf("handle 1 still mapped or counter moved back: next=%d", s.NextHandle())
	}
	if f, d := s.Counts(); f != 0 || d != 0 {
		t.Fatalf("counts %d %d", f, d)
	}
	root, _ := s.Lookup("/")
	if root.MTime != 9 {
		t.Fatalf("root mtime %d, want 9", root.MTime)
	}
}

func TestRenameMovesSubtree(t *testing.T) {
	s := fixture(t)
	if r := s.Apply(Rename{Src: "/d", Dst: "/m", Time: 5}); r.Err != nil {
		t.Fatal(r.Err)
	}
	fi, err := s.Lookup("/m/f")
	if err != nil || fi.Path != "/m/f" {
		t.Fatalf("lookup /m/f: %+v %v", fi, err)
	}
	if _, err := s.Lookup("/d/f"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old path: %v", err)
	}
	_, refs, err := s.FileChunks(fi.Inode, 0, 0)
	if err != nil || len(refs) != 1 || refs[0].Handle != 1 {
		t.Fatalf("chunks after rename: %v %v", refs, err)
	}
	st, _ := s.Stat(fi.Inode)
	if st.Path != "/m/f" {
		t.Fatalf("stat path %q", st.Path)
	}
}

func TestApplyIsDeterministic(t *testing.T) {
	a, b := fixture(t), fixture(t)
	sa, _ := a.Checkpoint()
	sb, _ := b.Checkpoint()
	if !bytes.Equal(sa, sb) {
		t.Fatal("same commands gave different states")
	}
}

func TestQueriesReturnCopies(t *testing.T) {
	s := fixture(t)
	ch, _ := s.Chunk(1)
	ch.Chain[0] = 99
	if again, _ := s.Chunk(1); again.Chain[0] != 1 {
		t.Fatal("Chunk shares its chain with the state")
	}
	s.Apply(RegisterServer{ID: 5, Addr: "e:1", Labels: map[string]string{"zone": "z"}})
	sv, _ := s.Server(5)
	sv.Labels["zone"] = "other"
	if again, _ := s.Server(5); again.Labels["zone"] != "z" {
		t.Fatal("Server shares its labels with the state")
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `nope`, `{"v":2,"type":"mkdir","cmd":{}}`, `{"v":1,"type":"bogus","cmd":{}}`,
		`{"v":1,"type":"mkdir"}`, `{"v":1,"type":"mkdir","cmd":{"Bogus":1}}`, `{"v":1,"type":"mkdir","cmd":[]}`,
	} {
		if _, err := Decode([]byte(in)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Decode(%q) = %v, want ErrCorrupt", in, err)
		}
	}
	if _, err := Encode(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode(nil) = %v", err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, c := range []Command{
		Mkdir{Path: "/a", Parents: true, Mode: 0o700, Time: 1},
		Create{Path: "/a/f", Mode: 0o600, Replication: 2, ChunkSize: 1 << 20, Overwrite: true, Time: 2},
		Rename{Src: "/a", Dst: "/b", Time: 3},
		Remove{Path: "/b", Recursive: true, Time: 4},
		SetSize{Inode: 7, Size: 100, Mode: SizeExact, Time: 5},
		AllocateChunk{Inode: 7, Index: 3, Chain: []ServerID{1, 2}, Time: 6},
		RegisterServer{ID: 3, Addr: "h:1", Labels: map[string]string{"zone": "a"}},
	} {
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decode(b)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		b2, _ := Encode(d)
		if !bytes.Equal(b, b2) {
			t.Errorf("%T round trip: %s != %s", c, b, b2)
		}
	}
}

func TestRestoreRejectsBrokenInvariants(t *testing.T) {
	good, err := fixture(t).Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreCheckpoint(good); err != nil {
		t.Fatalf("good checkpoint: %v", err)
	}
	mutations := map[string][2]string{
		"refcount":      {`"Refs":1`, `"Refs":2`},
		"version":       {`"V":1`, `"V":7`},
		"counter":       {`"NextInode":5`, `"NextInode":2`},
		"handle":        {`"NextHandle":2`, `"NextHandle":1`},
		"unknown chain": {`"Chain":[1,2,3]`, `"Chain":[1,2,9]`},
		"dup chain":     {`"Chain":[1,2,3]`, `"Chain":[1,1,3]`},
		"self parent":   {`{"ID":3,"Dir":true,"Parent":2`, `{"ID":3,"Dir":true,"Parent":3`},
		"bad name":      {`"Name":"e"`, `"Name":".."`},
		"dup name":      {`"Name":"e"`, `"Name":"f"`},
	}
	for name, m := range mutations {
		bad := strings.Replace(string(good), m[0], m[1], 1)
		if bad == string(good) {
			t.Fatalf("%s: mutation %q did not apply to %s", name, m[0], good)
		}
		if _, err := RestoreCheckpoint([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Restore = %v, want ErrCorrupt", name, err)
		}
	}
}
