package meta

import (
	"errors"
	"slices"
)

// Access control: who may do what to an inode, by its owner, group and
// permission bits, or by its POSIX access ACL when it has one (acl.go).
// The master checks a caller against the state before it proposes a
// command (internal/master, access.go), and proposes it as an As with
// the same checks (guard.go), which Apply evaluates again where the
// command lands in the log.

// ErrPermission: the caller may not (EACCES).
var ErrPermission = errors.New("meta: permission denied")

// User is a caller: a POSIX identity, or Root, who may do anything.
type User struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups
	Root     bool
}

// Nobody is the identity of a caller whose certificate names none.
var Nobody = User{UID: 65534, GID: 65534}

// Access bits, as access(2)'s.
const (
	MayExec  uint32 = 1
	MayWrite uint32 = 2
	MayRead  uint32 = 4
)

// modeSticky on a directory: an entry may be removed or renamed only by
// its owner, the directory's owner or root.
const modeSticky = 0o1000

// InGroup reports whether g is u's group or one of its supplementary ones.
func (u User) InGroup(g uint32) bool { return u.GID == g || slices.Contains(u.Groups, g) }

// allows reports whether u may use n as want (MayRead|MayWrite|MayExec),
// as Linux decides (acl_permission_check): the owner by the owner bits;
// anyone else by the access ACL when n has one and its group bits (the
// ACL's mask) are not all clear, else by the group bits for a member of
// n's group and the others' bits for the rest.
func (n *inode) allows(u User, want uint32) bool {
	if u.Root {
		return true
	}
	if u.UID == n.uid {
		return (n.mode>>6)&7&want == want
	}
	if n.mode&0o070 != 0 {
		if allowed, ok := n.aclAllows(u, want); ok {
			return allowed
		}
	}
	bits := n.mode // the others'
	if u.InGroup(n.gid) {
		bits = n.mode >> 3
	}
	return bits&7&want == want
}

func denied(u User, n *inode, what string) error {
	return errorf(ErrPermission, "uid %d may not %s (mode %04o, owner %d:%d)", u.UID, what, n.mode&0o7777, n.uid, n.gid)
}

// walk follows path p as u, who needs search permission on every
// directory on the way; it returns the inode at p, or nil when p does
// not exist (which is no permission error: the command says so), and the
// directory holding it (nil for "/", or when that does not exist).
func (s *State) walk(u User, p string) (parent, n *inode, err error) {
	elems, err := splitPath(p)
	if err != nil {
		return nil, nil, err
	}
	n = s.inodes[RootInode]
	for _, e := range elems {
		if !n.dir {
			return nil, nil, nil
		}
		if !n.allows(u, MayExec) {
			return nil, nil, denied(u, n, "search "+s.pathOf(n))
		}
		child, ok := n.children[e]
		if !ok {
			return n, nil, nil
		}
		parent, n = n, s.inodes[child]
	}
	return parent, n, nil
}

// CheckPath: u may reach path p and use what is there as want (0: only
// reach it). A path that does not exist passes.
func (s *State) CheckPath(u User, p string, want uint32) error {
	_, n, err := s.walk(u, p)
	if err != nil || n == nil || want == 0 || n.allows(u, want) {
		return err
	}
	return denied(u, n, accessVerb(want)+" "+p)
}

// CheckInode: u may reach inode ino (CheckReach) and use it as want
// (0: only reach it). A missing inode passes.
func (s *State) CheckInode(u User, ino uint64, want uint32) error {
	n := s.inodes[ino]
	if n == nil || u.Root {
		return nil
	}
	if err := s.CheckReach(u, ino); err != nil {
		return err
	}
	if want == 0 || n.allows(u, want) {
		return nil
	}
	return denied(u, n, accessVerb(want)+" inode "+s.pathOf(n))
}

// CheckReach: u could reach inode ino by a path, as a call by path
// requires: search permission on every directory above one of its names
// (a hard-linked file has several). A caller that knows an inode's
// number gets no further than its path would let it. A missing inode
// passes.
func (s *State) CheckReach(u User, ino uint64) error {
	n := s.inodes[ino]
	if n == nil || u.Root || n.id == RootInode {
		return nil
	}
	parents := []uint64{n.parent}
	for _, l := range n.links {
		parents = append(parents, l.Parent)
	}
	var blocked *inode
	for _, p := range parents {
		d := s.inodes[p]
		for d != nil && d.allows(u, MayExec) {
			if d.id == RootInode {
				return nil
			}
			d = s.inodes[d.parent]
		}
		if d != nil && blocked == nil {
			blocked = d
		}
	}
	if blocked == nil { // an orphan: held open, no name left
		return nil
	}
	return denied(u, blocked, "search "+s.pathOf(blocked))
}

// CheckEntry: u may add (remove false) or remove or rename (remove true)
// the entry name of directory dir: reach it (CheckReach), write and
// search permission on it,
// and in a sticky directory, for a removal, owning it or the entry.
func (s *State) CheckEntry(u User, dir uint64, name string, remove bool) error {
	d := s.inodes[dir]
	if d == nil || !d.dir {
		return nil
	}
	if err := s.CheckReach(u, dir); err != nil {
		return err
	}
	if !d.allows(u, MayWrite|MayExec) {
		return denied(u, d, "change entries of "+s.pathOf(d))
	}
	if !remove {
		return nil
	}
	if c, ok := d.children[name]; ok && s.inodes[c] != nil && !stickyAllows(u, d, s.inodes[c]) {
		return denied(u, d, "remove another user's "+name+" from sticky "+s.pathOf(d))
	}
	return nil
}

// stickyAllows: u may remove or rename entry n of directory d as far as
// the sticky bit goes: d is not sticky, or u owns d or n, or is root.
func stickyAllows(u User, d, n *inode) bool {
	return u.Root || d.mode&modeSticky == 0 || d.uid == u.UID || n.uid == u.UID
}

// CheckMove: u may move entry name of directory dir into directory to
// (rename across directories): a directory that changes parent has its
// ".." entry changed, which needs write permission on it (as Linux).
// The entries' own checks are CheckEntry's. A missing entry passes.
func (s *State) CheckMove(u User, dir uint64, name string, to uint64) error {
	d := s.inodes[dir]
	if u.Root || dir == to || d == nil {
		return nil
	}
	c, ok := d.children[name]
	n := s.inodes[c]
	if !ok || n == nil || !n.dir || n.allows(u, MayWrite) {
		return nil
	}
	return denied(u, n, "move directory "+s.pathOf(n)+" to another one")
}

// CheckMovePath is CheckMove for the entry at path src moving to dst,
// both reached by u.
func (s *State) CheckMovePath(u User, src, dst string) error {
	from, _, err := s.walk(u, src)
	if err != nil || from == nil {
		return err
	}
	to, _, err := s.walk(u, dst)
	if err != nil || to == nil {
		return err
	}
	elems, _ := splitPath(src)
	return s.CheckMove(u, from.id, elems[len(elems)-1], to.id)
}

// CheckLinkSource: u may give inode ino another name: u could reach it,
// and owns it or may read and write it, a regular file neither setuid
// nor setgid-executable (Linux's fs.protected_hardlinks, on by default:
// no pinning another user's file, a setuid program above all, by a name
// in one's own directory). A missing inode passes.
func (s *State) CheckLinkSource(u User, ino uint64) error {
	n := s.inodes[ino]
	if n == nil || u.Root {
		return nil
	}
	if err := s.CheckReach(u, ino); err != nil {
		return err
	}
	safe := !n.dir && !n.symlink && n.special == 0 && n.mode&0o4000 == 0 && n.mode&0o2010 != 0o2010 && n.allows(u, MayRead|MayWrite)
	if n.uid == u.UID || safe {
		return nil
	}
	return denied(u, n, "link "+s.pathOf(n)+" (neither its owner nor allowed to read and write it)")
}

// CheckEntryPath is CheckEntry for the entry at path p, reached by u.
func (s *State) CheckEntryPath(u User, p string, remove bool) error {
	parent, _, err := s.walk(u, p)
	if err != nil || parent == nil {
		return err
	}
	elems, _ := splitPath(p)
	return s.CheckEntry(u, parent.id, elems[len(elems)-1], remove)
}

// CheckOwner: u owns inode ino or is root (chmod, chown, times).
func (s *State) CheckOwner(u User, ino uint64) error {
	n := s.inodes[ino]
	if n == nil || u.Root || n.uid == u.UID {
		return nil
	}
	return denied(u, n, "change the attributes of "+s.pathOf(n))
}

// CheckChown: u may give inode ino owner uid and group gid (the
// current ones where unchanged): only root changes the owner; the owner
// may change the group to one of its own.
func (s *State) CheckChown(u User, ino uint64, uid, gid uint32) error {
	n := s.inodes[ino]
	if n == nil || u.Root {
		return nil
	}
	if uid != n.uid {
		return denied(u, n, "give away "+s.pathOf(n))
	}
	if n.uid != u.UID || (gid != n.gid && !u.InGroup(gid)) {
		return denied(u, n, "change the group of "+s.pathOf(n))
	}
	return nil
}

// Rights reports what u may do with the data of inode ino: read, write.
func (s *State) Rights(u User, ino uint64) (read, write bool) {
	n := s.inodes[ino]
	if n == nil {
		return false, false
	}
	return n.allows(u, MayRead), n.allows(u, MayWrite)
}

func accessVerb(want uint32) string {
	switch want {
	case MayRead:
		return "read"
	case MayWrite:
		return "write"
	case MayExec:
		return "search"
	case MayRead | MayExec:
		return "list"
	}
	return "use"
}

// CheckReadTree: u may read everything at and under p (a clone of it
// is u's): every file readable, every directory listable and searchable.
func (s *State) CheckReadTree(u User, p string) error {
	_, n, err := s.walk(u, p)
	if err != nil || n == nil {
		return err
	}
	var check func(n *inode) error
	check = func(n *inode) error {
		want := MayRead
		if n.dir {
			want |= MayExec
		}
		if !n.symlink && !n.allows(u, want) {
			return denied(u, n, "read "+s.pathOf(n))
		}
		for _, c := range n.children {
			if child := s.inodes[c]; child != nil {
				if err := check(child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return check(n)
}

// CheckTree: u may remove everything under directory p (rm -r): list,
// search and change the entries of every directory in it that has any,
// and remove each entry of a sticky one (stickyAllows).
func (s *State) CheckTree(u User, p string) error {
	_, n, err := s.walk(u, p)
	if err != nil || n == nil || !n.dir {
		return err
	}
	var check func(d *inode) error
	check = func(d *inode) error {
		if len(d.children) == 0 {
			return nil // rmdir asks only of its parent
		}
		if !d.allows(u, MayRead|MayWrite|MayExec) {
			return denied(u, d, "remove the entries of "+s.pathOf(d))
		}
		for name, c := range d.children {
			child := s.inodes[c]
			if child == nil {
				continue
			}
			if !stickyAllows(u, d, child) {
				return denied(u, d, "remove another user's "+name+" from sticky "+s.pathOf(d))
			}
			if child.dir {
				if err := check(child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return check(n)
}
