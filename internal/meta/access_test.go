package meta

import (
	"bytes"
	"errors"
	"testing"
)

// TestAccess: POSIX permission checks by owner, group and other bits,
// search permission on the way, the sticky bit, chown's rules, rm -r,
// and root passing everything.
func TestAccess(t *testing.T) {
	s := New()
	root := User{Root: true}
	alice := User{UID: 1000, GID: 1000}
	bob := User{UID: 1001, GID: 1001, Groups: []uint32{50}}
	home := applyOK(t, s, Mkdir{Path: "/home", Mode: 0o755, Time: 1}).Info
	a := applyOK(t, s, MkdirAt{Parent: home.Inode, Name: "alice", Mode: 0o750, Uid: 1000, Gid: 50, Time: 2}).Info
	secret := applyOK(t, s, CreateAt{Parent: a.Inode, Name: "secret", Mode: 0o600, Uid: 1000, Gid: 1000, Time: 3}).Info
	shared := applyOK(t, s, CreateAt{Parent: a.Inode, Name: "shared", Mode: 0o640, Uid: 1000, Gid: 50, Time: 3}).Info
	tmp := applyOK(t, s, Mkdir{Path: "/tmp", Mode: 0o1777, Time: 4}).Info
	bobs := applyOK(t, s, CreateAt{Parent: tmp.Inode, Name: "bobs", Mode: 0o666, Uid: 1001, Gid: 1001, Time: 5}).Info
	owned := applyOK(t, s, Create{Path: "/tmp/owned", Mode: 0o644, Uid: 1000, Gid: 1000, Time: 6}).Info
	if owned.Uid != 1000 || owned.Gid != 1000 {
		t.Fatalf("a file created by path for a user: owner %d:%d", owned.Uid, owned.Gid)
	}

	for _, c := range []struct {
		name string
		err  error
		ok   bool
	}{
		{"alice reads her secret", s.CheckPath(alice, "/home/alice/secret", MayRead), true},
		{"bob reads alice's secret", s.CheckPath(bob, "/home/alice/secret", MayRead), false},
		{"bob, in group 50, reads shared", s.CheckPath(bob, "/home/alice/shared", MayRead), true},
		{"bob writes shared (group has r only)", s.CheckInode(bob, shared.Inode, MayWrite), false},
		{"nobody cannot search alice's home", s.CheckPath(Nobody, "/home/alice/shared", 0), false},
		{"nobody reaches /home", s.CheckPath(Nobody, "/home", MayRead), true},
		{"a missing path is no permission error", s.CheckPath(alice, "/home/alice/nope", MayRead), true},
		{"root reads anything", s.CheckPath(root, "/home/alice/secret", MayRead|MayWrite), true},
		{"bob creates in alice's home (group r-x)", s.CheckEntryPath(bob, "/home/alice/new", false), false},
		{"alice creates in her home", s.CheckEntryPath(alice, "/home/alice/new", false), true},
		{"alice creates in /home (root 0755)", s.CheckEntryPath(alice, "/home/other", false), false},
		{"alice removes bob's file from sticky /tmp", s.CheckEntryPath(alice, "/tmp/bobs", true), false},
		{"bob removes his own from sticky /tmp", s.CheckEntry(bob, tmp.Inode, "bobs", true), true},
		{"alice adds to sticky /tmp", s.CheckEntryPath(alice, "/tmp/hers", false), true},
		{"alice chmods her secret", s.CheckOwner(alice, secret.Inode), true},
		{"bob chmods alice's secret", s.CheckOwner(bob, secret.Inode), false},
		{"alice gives her secret to bob", s.CheckChown(alice, secret.Inode, 1001, 1000), false},
		{"alice moves her secret to a group she is not in", s.CheckChown(alice, secret.Inode, 1000, 50), false},
		{"bob moves his file to his group 50", s.CheckChown(bob, bobs.Inode, 1001, 50), true},
		{"root gives anything away", s.CheckChown(root, secret.Inode, 1001, 50), true},
		{"alice removes her home tree", s.CheckTree(alice, "/home/alice"), true},
		{"bob removes alice's tree", s.CheckTree(bob, "/home/alice"), false},
	} {
		if got := c.err == nil; got != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, c.err, c.ok)
		}
		if c.err != nil && !errors.Is(c.err, ErrPermission) {
			t.Errorf("%s: %v is not ErrPermission", c.name, c.err)
		}
	}
	if r, w := s.Rights(bob, shared.Inode); !r || w {
		t.Errorf("bob's rights on shared: read %v write %v, want read only", r, w)
	}
	if r, w := s.Rights(bob, secret.Inode); r || w {
		t.Errorf("bob's rights on secret: read %v write %v, want none", r, w)
	}
}

// aclValue encodes ACL entries (tag, perm, id) as the xattr holds them.
func aclValue(entries ...[3]uint32) []byte {
	acl := make([]aclEntry, len(entries))
	for i, e := range entries {
		acl[i] = aclEntry{tag: uint16(e[0]), perm: e[1], id: e[2]}
	}
	return encodeACL(acl)
}

// TestACL: an access ACL decides access as Linux's: named users and
// groups under the mask, the owner and others by their own entries; a
// malformed one is refused at the edge.
func TestACL(t *testing.T) {
	s := New()
	f := applyOK(t, s, CreateAt{Parent: RootInode, Name: "f", Mode: 0o600, Uid: 1000, Gid: 1000, Time: 1}).Info
	bob := User{UID: 1001, GID: 1001}
	carol := User{UID: 1002, GID: 1002, Groups: []uint32{50}}
	dave := User{UID: 1003, GID: 1003}
	if s.CheckInode(bob, f.Inode, MayRead) == nil {
		t.Fatal("bob reads a 0600 file without an ACL")
	}
	acl := aclValue([3]uint32{aclUserObj, 6, 0}, [3]uint32{aclUser, 4, 1001}, [3]uint32{aclGroupObj, 0, 0},
		[3]uint32{aclGroup, 6, 50}, [3]uint32{aclMask, 4, 0}, [3]uint32{aclOther, 0, 0})
	if err := CheckACLXattr(ACLAccessXattr, acl); err != nil {
		t.Fatal(err)
	}
	applyOK(t, s, SetXattr{Inode: f.Inode, Name: ACLAccessXattr, Value: acl, Time: 2})
	for _, c := range []struct {
		name string
		u    User
		want uint32
		ok   bool
	}{
		{"the owner writes", User{UID: 1000, GID: 1000}, MayRead | MayWrite, true},
		{"bob, named, reads", bob, MayRead, true},
		{"bob, named, writes", bob, MayWrite, false},
		{"carol's group 50 reads", carol, MayRead, true},
		{"carol's group 50 writes: rw- under the mask r--", carol, MayWrite, false},
		{"dave, other", dave, MayRead, false},
	} {
		if err := s.CheckInode(c.u, f.Inode, c.want); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
	for _, bad := range [][]byte{
		aclValue([3]uint32{aclUserObj, 6, 0}), // no group or other
		aclValue([3]uint32{aclUserObj, 6, 0}, [3]uint32{aclGroupObj, 0, 0}, [3]uint32{aclOther, 9, 0}),                           // perm past rwx
		aclValue([3]uint32{aclUserObj, 6, 0}, [3]uint32{aclUser, 4, 5}, [3]uint32{aclGroupObj, 0, 0}, [3]uint32{aclOther, 0, 0}), // no mask
		{1, 0, 0, 0}, // version 1
		{2, 0, 0},    // short
	} {
		if err := CheckACLXattr(ACLAccessXattr, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckACLXattr(%x) = %v, want ErrInvalid", bad, err)
		}
	}
	if CheckACLXattr("user.x", []byte{1}) != nil {
		t.Error("a user xattr judged as an ACL")
	}
}

// TestACLMode: setting an access ACL sets the mode's permission bits, a
// chmod updates the ACL, and a default ACL is inherited, narrowed by the
// requested mode (as Linux's posix_acl_create and posix_acl_chmod).
func TestACLMode(t *testing.T) {
	s := New()
	d := applyOK(t, s, MkdirAt{Parent: RootInode, Name: "d", Mode: 0o700, Time: 1}).Info
	acl := aclValue([3]uint32{aclUserObj, 7, 0}, [3]uint32{aclUser, 7, 1001}, [3]uint32{aclGroupObj, 5, 0},
		[3]uint32{aclMask, 7, 0}, [3]uint32{aclOther, 0, 0})
	applyOK(t, s, SetXattr{Inode: d.Inode, Name: ACLAccessXattr, Value: acl, Time: 2})
	if fi, _ := s.Stat(d.Inode); fi.Mode != 0o770 {
		t.Fatalf("mode after setting the ACL: %#o, want 0770 (mask rwx)", fi.Mode)
	}
	applyOK(t, s, Setattr{Inode: d.Inode, Set: SetMode, Mode: 0o750, Time: 3})
	got, _ := s.Xattr(d.Inode, ACLAccessXattr)
	if want := aclValue([3]uint32{aclUserObj, 7, 0}, [3]uint32{aclUser, 7, 1001}, [3]uint32{aclGroupObj, 5, 0},
		[3]uint32{aclMask, 5, 0}, [3]uint32{aclOther, 0, 0}); !bytes.Equal(got, want) {
		t.Fatalf("ACL after chmod 750: %x, want the mask r-x", got)
	}
	def := aclValue([3]uint32{aclUserObj, 6, 0}, [3]uint32{aclUser, 6, 1001}, [3]uint32{aclGroupObj, 4, 0},
		[3]uint32{aclMask, 6, 0}, [3]uint32{aclOther, 4, 0})
	applyOK(t, s, SetXattr{Inode: d.Inode, Name: ACLDefaultXattr, Value: def, Time: 4})
	f := applyOK(t, s, CreateAt{Parent: d.Inode, Name: "f", Mode: 0o640, Time: 5}).Info
	if f.Mode != 0o640 {
		t.Fatalf("inherited file mode %#o, want 0640", f.Mode)
	}
	got, _ = s.Xattr(f.Inode, ACLAccessXattr)
	if want := aclValue([3]uint32{aclUserObj, 6, 0}, [3]uint32{aclUser, 6, 1001}, [3]uint32{aclGroupObj, 4, 0},
		[3]uint32{aclMask, 4, 0}, [3]uint32{aclOther, 0, 0}); !bytes.Equal(got, want) {
		t.Fatalf("inherited access ACL %x, want %x", got, want)
	}
	if _, err := s.Xattr(f.Inode, ACLDefaultXattr); err == nil {
		t.Fatal("a file inherited a default ACL")
	}
	sub := applyOK(t, s, MkdirAt{Parent: d.Inode, Name: "sub", Mode: 0o777, Time: 6}).Info
	if got, err := s.Xattr(sub.Inode, ACLDefaultXattr); err != nil || !bytes.Equal(got, def) {
		t.Fatalf("a directory's default ACL: %x, %v", got, err)
	}
	bob := User{UID: 1001, GID: 1001}
	if s.CheckInode(bob, f.Inode, MayRead) != nil || s.CheckInode(bob, f.Inode, MayWrite) == nil {
		t.Fatal("bob on the inherited file: want read (rw- under mask r--), not write")
	}
}

// TestReach: a call by inode number gets no further than a path would:
// a 0644 file below a directory its caller may not search is out of
// reach, unless another name of it is within reach.
func TestReach(t *testing.T) {
	s := New()
	alice := User{UID: 1000, GID: 1000}
	priv := applyOK(t, s, MkdirAt{Parent: RootInode, Name: "priv", Mode: 0o700, Uid: 2000, Gid: 2000, Time: 1}).Info
	f := applyOK(t, s, CreateAt{Parent: priv.Inode, Name: "f", Mode: 0o644, Uid: 2000, Gid: 2000, Time: 2}).Info
	if err := s.CheckInode(alice, f.Inode, MayRead); !errors.Is(err, ErrPermission) {
		t.Fatalf("alice reads a file in a directory she may not search: %v", err)
	}
	if err := s.CheckReach(alice, f.Inode); !errors.Is(err, ErrPermission) {
		t.Fatalf("alice reaches it: %v", err)
	}
	pub := applyOK(t, s, MkdirAt{Parent: RootInode, Name: "pub", Mode: 0o755, Time: 3}).Info
	applyOK(t, s, Link{Inode: f.Inode, Parent: pub.Inode, Name: "f", Time: 4})
	if err := s.CheckInode(alice, f.Inode, MayRead); err != nil {
		t.Fatalf("alice reads it through a link in a public directory: %v", err)
	}
	if err := s.CheckEntry(alice, priv.Inode, "x", false); !errors.Is(err, ErrPermission) {
		t.Fatalf("alice adds to the private directory: %v", err)
	}
}

// TestUmaskUnlessDefaultACL: what is made takes the creator's umask off
// its mode, except in a directory with a default ACL, whose mask then
// governs instead (Linux's posix_acl_create ignores the umask): a file
// made 0666 with umask 022 under a default ACL granting a user rw- gives
// that user rw-, where the umask would have left r--.
func TestUmaskUnlessDefaultACL(t *testing.T) {
	s := New()
	plain := applyOK(t, s, MkdirAt{Parent: RootInode, Name: "plain", Mode: 0o777, Umask: 0o022, Time: 1}).Info
	if plain.Mode != 0o755 {
		t.Fatalf("mkdir 0777 with umask 022: mode %#o, want 0755", plain.Mode)
	}
	for _, c := range []struct {
		cmd  Command
		want uint32
	}{
		{CreateAt{Parent: plain.Inode, Name: "f", Mode: 0o666, Umask: 0o077, Time: 2}, 0o600},
		{CreateAt{Parent: plain.Inode, Name: "g", Mode: 0o4777, Umask: 0o7022, Time: 2}, 0o4755}, // umask: permission bits only
		{Mknod{Parent: plain.Inode, Name: "p", Type: TypeFifo, Mode: 0o666, Umask: 0o002, Time: 2}, 0o664},
	} {
		if got := applyOK(t, s, c.cmd).Info.Mode; got != c.want {
			t.Errorf("%#v: mode %#o, want %#o", c.cmd, got, c.want)
		}
	}
	shared := applyOK(t, s, MkdirAt{Parent: RootInode, Name: "shared", Mode: 0o775, Time: 3}).Info
	def := aclValue([3]uint32{aclUserObj, 7, 0}, [3]uint32{aclUser, 6, 1001}, [3]uint32{aclGroupObj, 7, 0},
		[3]uint32{aclMask, 7, 0}, [3]uint32{aclOther, 0, 0})
	applyOK(t, s, SetXattr{Inode: shared.Inode, Name: ACLDefaultXattr, Value: def, Time: 4})
	f := applyOK(t, s, CreateAt{Parent: shared.Inode, Name: "f", Mode: 0o666, Umask: 0o022, Time: 5}).Info
	if f.Mode != 0o660 {
		t.Fatalf("file made 0666 with umask 022 under a default ACL: mode %#o, want 0660 (the ACL's, no umask)", f.Mode)
	}
	if err := s.CheckInode(User{UID: 1001, GID: 1001}, f.Inode, MayWrite); err != nil {
		t.Fatalf("the default ACL's user may not write what was made under it: %v", err)
	}
	d := applyOK(t, s, MkdirAt{Parent: shared.Inode, Name: "d", Mode: 0o777, Umask: 0o077, Time: 6}).Info
	if d.Mode != 0o770 {
		t.Fatalf("directory made 0777 with umask 077 under a default ACL: mode %#o, want 0770", d.Mode)
	}
}

// TestMinimalACLIsTheMode: setting an access ACL of only the owner, group
// and others entries sets the mode and keeps no ACL (as Linux: getfattr
// finds none, and ls shows no "+").
func TestMinimalACLIsTheMode(t *testing.T) {
	s := New()
	f := applyOK(t, s, CreateAt{Parent: RootInode, Name: "f", Mode: 0o600, Time: 1}).Info
	applyOK(t, s, SetXattr{Inode: f.Inode, Name: ACLAccessXattr, Time: 2,
		Value: aclValue([3]uint32{aclUserObj, 6, 0}, [3]uint32{aclGroupObj, 4, 0}, [3]uint32{aclOther, 4, 0})})
	fi, err := s.Stat(f.Inode)
	if err != nil || fi.Mode != 0o644 {
		t.Fatalf("mode after a minimal ACL: %#o, %v, want 0644", fi.Mode, err)
	}
	if v, err := s.Xattr(f.Inode, ACLAccessXattr); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a minimal ACL is kept: %x, %v", v, err)
	}
}
