package meta

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// POSIX access control lists, as Linux keeps them in the xattr
// system.posix_acl_access (set by setfacl through the FUSE mount, or by
// any client with SetXattr): a little-endian uint32 version (2), then
// entries of uint16 tag, uint16 permission bits (rwx) and uint32 id.
// When an inode has one, access is decided by it (acl.allows), as
// Linux's posix_acl_permission: the owner by its entry; a named user by
// its entry under the mask; the owning group and named groups, under the
// mask, any of them granting; the others by theirs.

// ACLAccessXattr is the xattr holding an inode's access ACL;
// ACLDefaultXattr a directory's default ACL (applied by the kernel of a
// FUSE mount to what is created in it).
const (
	ACLAccessXattr  = "system.posix_acl_access"
	ACLDefaultXattr = "system.posix_acl_default"
)

// ACL entry tags.
const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
	aclVersion  = 2
)

type aclEntry struct {
	tag  uint16
	perm uint32
	id   uint32
}

// parseACL decodes an ACL xattr value, checking what setfacl would: a
// known version and tags, permissions within rwx, exactly one owner,
// owning group and other entry, named entries at most once each, and a
// mask when there are named entries.
func parseACL(b []byte) ([]aclEntry, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 {
		return nil, fmt.Errorf("ACL of %d bytes", len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != aclVersion {
		return nil, fmt.Errorf("ACL version %d", v)
	}
	var out []aclEntry
	count := map[uint16]int{}
	named := map[[2]uint32]bool{}
	for p := b[4:]; len(p) > 0; p = p[8:] {
		e := aclEntry{tag: binary.LittleEndian.Uint16(p), perm: uint32(binary.LittleEndian.Uint16(p[2:])), id: binary.LittleEndian.Uint32(p[4:])}
		if e.perm&^7 != 0 {
			return nil, fmt.Errorf("ACL permission %#o", e.perm)
		}
		switch e.tag {
		case aclUserObj, aclGroupObj, aclMask, aclOther:
		case aclUser, aclGroup:
			k := [2]uint32{uint32(e.tag), e.id}
			if named[k] {
				return nil, fmt.Errorf("ACL entry for id %d twice", e.id)
			}
			named[k] = true
		default:
			return nil, fmt.Errorf("ACL tag %#x", e.tag)
		}
		count[e.tag]++
		out = append(out, e)
	}
	if count[aclUserObj] != 1 || count[aclGroupObj] != 1 || count[aclOther] != 1 || count[aclMask] > 1 {
		return nil, fmt.Errorf("ACL without exactly one owner, group and other entry")
	}
	if (count[aclUser] > 0 || count[aclGroup] > 0) && count[aclMask] == 0 {
		return nil, fmt.Errorf("ACL with named entries and no mask")
	}
	return out, nil
}

// CheckACLXattr validates the value of an ACL xattr about to be set
// (callers check it at the edge, as CheckNewName); other names pass.
func CheckACLXattr(name string, value []byte) error {
	if name != ACLAccessXattr && name != ACLDefaultXattr {
		return nil
	}
	if _, err := parseACL(value); err != nil {
		return errorf(ErrInvalid, "%s: %v", name, err)
	}
	return nil
}

// aclAllows decides u's access to n by n's access ACL; ok is false when
// n has none (or an unreadable one: the mode bits decide then). The
// caller asks it only of a user other than the owner, and only when
// n's group bits (the ACL's mask) are not all clear (inode.allows).
func (n *inode) aclAllows(u User, want uint32) (allowed, ok bool) {
	v, has := n.xattrs[ACLAccessXattr]
	if !has {
		return false, false
	}
	acl, err := parseACL(v)
	if err != nil {
		return false, false
	}
	mask := uint32(7)
	for _, e := range acl {
		if e.tag == aclMask {
			mask = e.perm
		}
	}
	grants := func(perm uint32) bool { return perm&want == want }
	for _, e := range acl {
		switch {
		case e.tag == aclUserObj && u.UID == n.uid:
			return grants(e.perm), true
		case e.tag == aclUser && e.id == u.UID && u.UID != n.uid:
			return grants(e.perm & mask), true
		}
	}
	inGroup := false
	for _, e := range acl {
		if (e.tag == aclGroupObj && u.InGroup(n.gid)) || (e.tag == aclGroup && u.InGroup(e.id)) {
			inGroup = true
			if grants(e.perm & mask) {
				return true, true
			}
		}
	}
	if inGroup {
		return false, true
	}
	for _, e := range acl {
		if e.tag == aclOther {
			return grants(e.perm), true
		}
	}
	return false, true
}

// modeFromACL makes n's permission bits those its access ACL implies
// (the owner's entry, the mask or else the owning group's, the others'),
// as a local file system does when an ACL is set; a FUSE mount leaves it
// to the file system. An unreadable ACL changes nothing.
func (n *inode) modeFromACL() {
	acl, err := parseACL(n.xattrs[ACLAccessXattr])
	if err != nil {
		return
	}
	var user, group, mask, other uint32
	hasMask := false
	for _, e := range acl {
		switch e.tag {
		case aclUserObj:
			user = e.perm
		case aclGroupObj:
			group = e.perm
		case aclMask:
			mask, hasMask = e.perm, true
		case aclOther:
			other = e.perm
		}
	}
	if hasMask {
		group = mask
	}
	n.mode = n.mode&^0o777 | user<<6 | group<<3 | other
}

// chmodACL brings n's access ACL in step with its new permission bits
// (Linux's posix_acl_chmod): the owner's and others' entries take theirs,
// the mask (else the owning group's entry) the group's.
func (n *inode) chmodACL() {
	v, has := n.xattrs[ACLAccessXattr]
	if !has {
		return
	}
	acl, err := parseACL(v)
	if err != nil {
		return
	}
	fitMode(acl, n.mode, false)
	n.xattrs[ACLAccessXattr] = encodeACL(acl)
}

// fitMode sets (narrow false) or narrows (narrow true) the owner's entry,
// the mask (else the owning group's entry) and the others' entry of acl
// to the matching permission bits of mode.
func fitMode(acl []aclEntry, mode uint32, narrow bool) {
	hasMask := false
	for _, e := range acl {
		hasMask = hasMask || e.tag == aclMask
	}
	for i, e := range acl {
		var bits uint32
		switch {
		case e.tag == aclUserObj:
			bits = mode >> 6 & 7
		case e.tag == aclMask, e.tag == aclGroupObj && !hasMask:
			bits = mode >> 3 & 7
		case e.tag == aclOther:
			bits = mode & 7
		default:
			continue
		}
		if narrow {
			acl[i].perm &= bits
		} else {
			acl[i].perm = bits
		}
	}
}

func encodeACL(acl []aclEntry) []byte {
	out := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range acl {
		out = binary.LittleEndian.AppendUint16(out, e.tag)
		out = binary.LittleEndian.AppendUint16(out, uint16(e.perm))
		out = binary.LittleEndian.AppendUint32(out, e.id)
	}
	return out
}

// createMode is the mode of what is made in dir with mode asked and the
// creator's umask: the umask's permission bits cleared, unless dir has a
// default ACL (which then narrows the mode instead: inheritACL).
func (dir *inode) createMode(mode, umask uint32) uint32 {
	if _, has := dir.xattrs[ACLDefaultXattr]; has {
		return mode
	}
	return mode &^ (umask & 0o777)
}

// inheritACL gives n, just made in dir, what dir's default ACL implies
// (Linux's posix_acl_create): an access ACL of its entries, the owner's,
// the others' and the mask (else the owning group's) narrowed by n's
// requested mode, which then follows the ACL; a directory also inherits
// the default ACL. A mount with ACLs leaves this to the file system.
func (n *inode) inheritACL(dir *inode) {
	def, has := dir.xattrs[ACLDefaultXattr]
	if !has {
		return
	}
	acl, err := parseACL(def)
	if err != nil {
		return
	}
	fitMode(acl, n.mode, true)
	if n.xattrs == nil {
		n.xattrs = map[string][]byte{}
	}
	n.xattrs[ACLAccessXattr] = encodeACL(acl)
	n.modeFromACL()
	if len(acl) == 3 { // the mode says it all
		delete(n.xattrs, ACLAccessXattr)
	}
	if n.dir {
		n.xattrs[ACLDefaultXattr] = slices.Clone(def)
	}
	if len(n.xattrs) == 0 {
		n.xattrs = nil
	}
}
