package meta

import (
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
