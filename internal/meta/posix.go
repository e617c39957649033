package meta

import (
	"encoding/json"
	"maps"
	"slices"
)

// POSIX attributes and the inode-based commands the FUSE mount needs.
//
// Hard links: an inode's first name is (parent, name) as for every inode;
// further names of a file are in links. Directories and symlinks have one
// name. Removing the primary name promotes the first extra one, so parent
// and name always denote a live directory entry and pathOf stays valid.
// The inode (and its chunks) goes away with its last name.
//
// Special files (fifos, devices, sockets) are files without chunks, like
// symlinks: only their metadata lives here; the kernel serves their I/O.

// Limits of extended attributes.
const (
	MaxXattrName  = 255
	MaxXattrValue = 64 << 10
	MaxXattrTotal = 256 << 10 // names plus values of one inode
	MaxSymlinkLen = MaxPathLen
)

// File types of special files, made by Mknod: the S_IFMT bits of POSIX.
const (
	TypeFifo   uint32 = 0o010000
	TypeChar   uint32 = 0o020000
	TypeBlock  uint32 = 0o060000
	TypeSocket uint32 = 0o140000
)

// Setgid on a directory: new entries take its group, new directories the
// bit too (as Linux's inode_init_owner; FUSE leaves this to the file system).
const modeSetgid = 0o2000

func validSpecial(t uint32) bool {
	return t == TypeFifo || t == TypeChar || t == TypeBlock || t == TypeSocket
}

// link is one extra name of a hard-linked file.
type link struct {
	Parent uint64
	Name   string
}

// posixAttrs are the inode fields only the POSIX commands set. A zero value
// is an inode created by the path commands: owner root, times = mtime.
type posixAttrs struct {
	uid, gid     uint32
	atime, ctime int64
	symlink      bool
	target       string
	xattrs       map[string][]byte
	links        []link
	special      uint32 // TypeFifo, ...: a special file; 0 otherwise
	rdev         uint32 // device number of TypeChar and TypeBlock
}

// PosixInfo is the POSIX part of FileInfo.
type PosixInfo struct {
	Uid, Gid uint32
	Nlink    uint32
	ATime    int64 // unix nanoseconds
	CTime    int64
	Symlink  bool
	Target   string // symlinks only
	Special  uint32 // TypeFifo, TypeChar, TypeBlock or TypeSocket; 0 otherwise
	Rdev     uint32 // devices only
}

func (s *State) posixInfo(n *inode) PosixInfo {
	pi := PosixInfo{Uid: n.uid, Gid: n.gid, ATime: n.atime, CTime: n.ctime, Symlink: n.symlink, Target: n.target,
		Special: n.special, Rdev: n.rdev}
	if pi.ATime == 0 {
		pi.ATime = n.mtime
	}
	if pi.CTime == 0 {
		pi.CTime = n.mtime
	}
	if n.dir {
		pi.Nlink = 2
		for _, id := range n.children {
			if c := s.inodes[id]; c != nil && c.dir {
				pi.Nlink++
			}
		}
	} else if !n.orphan {
		pi.Nlink = uint32(1 + len(n.links))
	}
	return pi
}

// DirEntry is one entry of a directory listing by inode.
type DirEntry struct {
	Name string
	Info FileInfo
}

// XattrMode says whether SetXattr may create or replace.
type XattrMode uint8

const (
	XattrAny     XattrMode = 0
	XattrCreate  XattrMode = 1 // ErrExists when set
	XattrReplace XattrMode = 2 // ErrNotFound when not set
)

// Setattr field mask.
const (
	SetMode  uint32 = 1 << iota
	SetUid          // owner
	SetGid          // group
	SetATime        // access time
	SetMTime        // modification time
)

// CreateAt creates an empty file Name in directory Parent; ErrExists when
// the name is taken. Its mode is Mode less the creator's Umask, unless
// Parent has a default ACL, which governs instead (as Linux's
// posix_acl_create: the umask is ignored there).
type CreateAt struct {
	Parent      uint64
	Name        string
	Mode        uint32
	Umask       uint32 `json:",omitempty"`
	Uid, Gid    uint32
	Replication int
	ChunkSize   int64
	Time        int64
}

// MkdirAt creates directory Name in directory Parent (Umask as CreateAt's).
type MkdirAt struct {
	Parent   uint64
	Name     string
	Mode     uint32
	Umask    uint32 `json:",omitempty"`
	Uid, Gid uint32
	Time     int64
}

// Symlink creates symbolic link Name -> Target in directory Parent.
type Symlink struct {
	Parent   uint64
	Name     string
	Target   string
	Uid, Gid uint32
	Time     int64
}

// Link gives file Inode the extra name Name in directory Parent.
type Link struct {
	Inode  uint64
	Parent uint64
	Name   string
	Time   int64
}

// Unlink removes entry Name of directory Parent: a non-directory (Dir
// false: ErrIsDir on a directory) or an empty directory (Dir true: ErrNotDir
// on a non-directory, ErrNotEmpty). A file loses one link; with its last
// name it is deleted and its chunks are released.
type Unlink struct {
	Parent uint64
	Name   string
	Dir    bool
	Time   int64
}

// Mknod creates special file Name in directory Parent: Type is TypeFifo,
// TypeChar, TypeBlock or TypeSocket; Rdev is kept for devices only.
type Mknod struct {
	Parent   uint64
	Name     string
	Type     uint32
	Mode     uint32
	Umask    uint32 `json:",omitempty"` // as CreateAt's
	Rdev     uint32
	Uid, Gid uint32
	Time     int64
}

// RenameAt moves an entry, replacing an existing destination as rename(2)
// does unless NoReplace (RENAME_NOREPLACE: ErrExists). With Exchange
// (RENAME_EXCHANGE) both entries must exist and swap places atomically.
type RenameAt struct {
	SrcParent uint64
	SrcName   string
	DstParent uint64
	DstName   string
	NoReplace bool
	Exchange  bool `json:",omitempty"`
	Time      int64
}

// Setattr sets the fields named by Set (SetMode, ...); ctime becomes Time.
type Setattr struct {
	Inode        uint64
	Set          uint32
	Mode         uint32
	Uid, Gid     uint32
	ATime, MTime int64
	Time         int64
}

// SetXattr sets extended attribute Name of Inode.
type SetXattr struct {
	Inode uint64
	Name  string
	Value []byte
	Mode  XattrMode
	Time  int64
}

// RemoveXattr removes extended attribute Name of Inode (ErrNotFound when
// not set).
type RemoveXattr struct {
	Inode uint64
	Name  string
	Time  int64
}

func (CreateAt) commandType() string    { return "createat" }
func (MkdirAt) commandType() string     { return "mkdirat" }
func (Symlink) commandType() string     { return "symlink" }
func (Link) commandType() string        { return "link" }
func (Unlink) commandType() string      { return "unlink" }
func (RenameAt) commandType() string    { return "renameat" }
func (Mknod) commandType() string       { return "mknod" }
func (Setattr) commandType() string     { return "setattr" }
func (SetXattr) commandType() string    { return "setxattr" }
func (RemoveXattr) commandType() string { return "removexattr" }

func decodePosix(typ string, raw json.RawMessage) (Command, bool, error) {
	var c Command
	var err error
	switch typ {
	case "createat":
		c, err = decodeAs[CreateAt](raw)
	case "mkdirat":
		c, err = decodeAs[MkdirAt](raw)
	case "symlink":
		c, err = decodeAs[Symlink](raw)
	case "link":
		c, err = decodeAs[Link](raw)
	case "unlink":
		c, err = decodeAs[Unlink](raw)
	case "renameat":
		c, err = decodeAs[RenameAt](raw)
	case "mknod":
		c, err = decodeAs[Mknod](raw)
	case "setattr":
		c, err = decodeAs[Setattr](raw)
	case "setxattr":
		c, err = decodeAs[SetXattr](raw)
	case "removexattr":
		c, err = decodeAs[RemoveXattr](raw)
	default:
		return nil, false, nil
	}
	return c, true, err
}

func (s *State) applyPosix(c Command) (Result, bool) {
	switch c := c.(type) {
	case CreateAt:
		return s.createAt(c), true
	case MkdirAt:
		return s.mkdirAt(c), true
	case Symlink:
		return s.symlinkAt(c), true
	case Link:
		return s.link(c), true
	case Unlink:
		return s.unlink(c), true
	case RenameAt:
		return s.renameAt(c), true
	case Mknod:
		return s.mknod(c), true
	case Setattr:
		return s.setattr(c), true
	case SetXattr:
		return s.setXattr(c), true
	case RemoveXattr:
		return s.removeXattr(c), true
	}
	return Result{}, false
}

// dirInode returns directory id.
func (s *State) dirInode(id uint64) (*inode, error) {
	n, ok := s.inodes[id]
	if !ok || (n.parent == 0 && id != RootInode) {
		return nil, errorf(ErrNotFound, "inode %d", id)
	}
	if !n.dir {
		return nil, errorf(ErrNotDir, "inode %d", id)
	}
	return n, nil
}

// freeName checks that dir exists and name is valid and free.
func (s *State) freeName(parent uint64, name string) (*inode, error) {
	dir, err := s.dirInode(parent)
	if err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	if _, ok := dir.children[name]; ok {
		return nil, errorf(ErrExists, "%q in directory %d", name, parent)
	}
	return dir, nil
}

// touch records a change of n's data or entries at t: mtime and ctime.
// (An explicit mtime, Setattr, may go back or forward; ctime never follows
// it, so a later change always moves ctime on.)
func (n *inode) touch(t int64) { n.mtime, n.ctime = t, t }

func (s *State) newPosixInode(dir *inode, name string, isDir bool, mode, uid, gid uint32, t int64) *inode {
	if dir.mode&modeSetgid != 0 {
		gid = dir.gid
		if isDir {
			mode |= modeSetgid
		}
	}
	n := s.newInode(dir, name, isDir, mode, t)
	n.uid, n.gid, n.atime, n.ctime = uid, gid, t, t
	dir.ctime = t
	return n
}

func (s *State) createAt(c CreateAt) Result {
	repl, cs, err := CheckFileParams(c.Replication, c.ChunkSize)
	if err != nil {
		return fail(err)
	}
	dir, err := s.freeName(c.Parent, c.Name)
	if err != nil {
		return fail(err)
	}
	n := s.newPosixInode(dir, c.Name, false, dir.createMode(c.Mode, c.Umask), c.Uid, c.Gid, c.Time)
	n.replication, n.chunkSize = repl, cs
	n.inheritACL(dir)
	return Result{Info: s.info(n)}
}

func (s *State) mkdirAt(c MkdirAt) Result {
	dir, err := s.freeName(c.Parent, c.Name)
	if err != nil {
		return fail(err)
	}
	n := s.newPosixInode(dir, c.Name, true, dir.createMode(c.Mode, c.Umask), c.Uid, c.Gid, c.Time)
	n.inheritACL(dir)
	return Result{Info: s.info(n)}
}

func (s *State) symlinkAt(c Symlink) Result {
	if c.Target == "" {
		return fail(errorf(ErrInvalid, "empty symlink target"))
	}
	if len(c.Target) > MaxSymlinkLen {
		return fail(errorf(ErrNameTooLong, "symlink target of %d bytes, more than %d", len(c.Target), MaxSymlinkLen))
	}
	dir, err := s.freeName(c.Parent, c.Name)
	if err != nil {
		return fail(err)
	}
	n := s.newPosixInode(dir, c.Name, false, 0o777, c.Uid, c.Gid, c.Time)
	// A symlink is a file without chunks; its parameters only satisfy
	// the invariants of files.
	n.replication, n.chunkSize = 1, MinChunkSize
	n.symlink, n.target, n.size = true, c.Target, int64(len(c.Target))
	return Result{Info: s.info(n)}
}

func (s *State) mknod(c Mknod) Result {
	if !validSpecial(c.Type) {
		return fail(errorf(ErrInvalid, "mknod of file type %#o", c.Type))
	}
	dir, err := s.freeName(c.Parent, c.Name)
	if err != nil {
		return fail(err)
	}
	n := s.newPosixInode(dir, c.Name, false, dir.createMode(c.Mode, c.Umask), c.Uid, c.Gid, c.Time)
	// Like a symlink, a special file is a file without chunks.
	n.replication, n.chunkSize = 1, MinChunkSize
	n.special = c.Type
	if c.Type == TypeChar || c.Type == TypeBlock {
		n.rdev = c.Rdev
	}
	n.inheritACL(dir)
	return Result{Info: s.info(n)}
}

// dataFile returns file id if it may hold data: not a directory
// (ErrIsDir), a symlink or a special file (ErrInvalid).
func (s *State) dataFile(id uint64) (*inode, error) {
	n, err := s.file(id)
	if err != nil {
		return nil, err
	}
	if n.symlink || n.special != 0 {
		return nil, errorf(ErrInvalid, "inode %d is not a regular file", id)
	}
	return n, nil
}

func (s *State) link(c Link) Result {
	n, err := s.file(c.Inode)
	if err != nil {
		return fail(err)
	}
	switch {
	case n.orphan:
		// As linkat of an unlinked file on Linux: it has no name to link.
		return fail(errorf(ErrNotFound, "inode %d was unlinked", c.Inode))
	case n.parent == 0:
		return fail(errorf(ErrInvalid, "inode %d is a volume", c.Inode))
	}
	dir, err := s.freeName(c.Parent, c.Name)
	if err != nil {
		return fail(err)
	}
	dir.children[c.Name] = n.id
	dir.mtime, dir.ctime = c.Time, c.Time
	n.links = append(n.links, link{Parent: dir.id, Name: c.Name})
	n.ctime = c.Time
	return Result{Info: s.info(n)}
}

// dropName forgets that n is called name in directory dir (the caller
// removes the directory entry). It reports whether n has no name left.
func (s *State) dropName(n *inode, dir uint64, name string) bool {
	if n.parent == dir && n.name == name {
		if len(n.links) == 0 {
			return true
		}
		n.parent, n.name = n.links[0].Parent, n.links[0].Name
		n.links = slices.Delete(n.links, 0, 1)
		return false
	}
	if i := slices.Index(n.links, link{Parent: dir, Name: name}); i >= 0 {
		n.links = slices.Delete(n.links, i, i+1)
	}
	return false
}

// removeEntry deletes entry name of dir, and its inode with its last name
// (an orphan instead while a mount holds it open, orphan.go).
func (s *State) removeEntry(dir *inode, name string, t int64) {
	n := s.inodes[dir.children[name]]
	delete(dir.children, name)
	dir.mtime, dir.ctime = t, t
	if s.dropName(n, dir.id, name) {
		s.deleteTree(n)
	} else {
		n.ctime = t
	}
}

// entry returns the inode named name in directory parent; a name over
// MaxNameLen is ErrNameTooLong, not ErrNotFound (ENAMETOOLONG, as lookup).
func (s *State) entry(parent uint64, name string) (*inode, *inode, error) {
	dir, err := s.dirInode(parent)
	if err != nil {
		return nil, nil, err
	}
	if len(name) > MaxNameLen {
		return nil, nil, errorf(ErrNameTooLong, "name of %d bytes, more than %d", len(name), MaxNameLen)
	}
	id, ok := s.childNamed(dir, name)
	if !ok {
		return nil, nil, errorf(ErrNotFound, "%q in directory %d", name, parent)
	}
	return dir, s.inodes[id], nil
}

func (s *State) unlink(c Unlink) Result {
	dir, n, err := s.entry(c.Parent, c.Name)
	if err != nil {
		return fail(err)
	}
	switch {
	case c.Dir && !n.dir:
		return fail(errorf(ErrNotDir, "%q", c.Name))
	case !c.Dir && n.dir:
		return fail(errorf(ErrIsDir, "%q", c.Name))
	case n.hidden:
		return fail(errorf(ErrReadOnly, "%q holds snapshots (catena snapshot rm)", c.Name))
	case n.dir && !n.emptyDir():
		return fail(errorf(ErrNotEmpty, "%q", c.Name))
	}
	s.removeEntry(dir, c.Name, c.Time)
	return Result{}
}

func (s *State) renameAt(c RenameAt) Result {
	if c.Exchange && c.NoReplace {
		return fail(errorf(ErrInvalid, "RENAME_EXCHANGE with RENAME_NOREPLACE"))
	}
	srcDir, n, err := s.entry(c.SrcParent, c.SrcName)
	if err != nil {
		return fail(err)
	}
	dstDir, err := s.dirInode(c.DstParent)
	if err != nil {
		return fail(err)
	}
	if err := checkName(c.DstName); err != nil {
		return fail(err)
	}
	if c.Exchange {
		return s.exchange(c, srcDir, n, dstDir)
	}
	if srcDir == dstDir && c.SrcName == c.DstName {
		if c.NoReplace {
			return fail(errorf(ErrExists, "%q", c.DstName))
		}
		return Result{Info: s.info(n)}
	}
	if n.dir && s.isAncestor(n, dstDir) {
		return fail(errorf(ErrInvalid, "cannot move a directory into its own subtree"))
	}
	if id, ok := dstDir.children[c.DstName]; ok {
		d := s.inodes[id]
		switch {
		case c.NoReplace:
			return fail(errorf(ErrExists, "%q", c.DstName))
		case d == n:
			// Two names of one file: rename(2) does nothing.
			return Result{Info: s.info(n)}
		case n.dir && !d.dir:
			return fail(errorf(ErrNotDir, "%q", c.DstName))
		case !n.dir && d.dir:
			return fail(errorf(ErrIsDir, "%q", c.DstName))
		case d.dir && !d.emptyDir():
			return fail(errorf(ErrNotEmpty, "%q", c.DstName))
		}
		s.removeEntry(dstDir, c.DstName, c.Time)
	}
	s.moveName(n, srcDir, c.SrcName, dstDir, c.DstName, c.Time)
	return Result{Info: s.info(n)}
}

// exchange swaps entries (srcDir, c.SrcName), which names n, and
// (dstDir, c.DstName): RENAME_EXCHANGE, one command so never half done.
func (s *State) exchange(c RenameAt, srcDir, n, dstDir *inode) Result {
	id, ok := dstDir.children[c.DstName]
	if !ok {
		return fail(errorf(ErrNotFound, "%q in directory %d", c.DstName, dstDir.id))
	}
	d := s.inodes[id]
	if d == n {
		// One entry, or two names of one file: nothing to swap.
		return Result{Info: s.info(n)}
	}
	if (n.dir && s.isAncestor(n, dstDir)) || (d.dir && s.isAncestor(d, srcDir)) {
		return fail(errorf(ErrInvalid, "cannot move a directory into its own subtree"))
	}
	srcDir.children[c.SrcName], dstDir.children[c.DstName] = d.id, n.id
	renameRef(n, srcDir.id, c.SrcName, dstDir.id, c.DstName)
	renameRef(d, dstDir.id, c.DstName, srcDir.id, c.SrcName)
	t := c.Time
	srcDir.mtime, srcDir.ctime, dstDir.mtime, dstDir.ctime = t, t, t, t
	n.ctime, d.ctime = t, t
	return Result{Info: s.info(n)}
}

// moveName renames n's entry from (from, fromName) to the free (to, toName).
func (s *State) moveName(n, from *inode, fromName string, to *inode, toName string, t int64) {
	delete(from.children, fromName)
	to.children[toName] = n.id
	from.mtime, from.ctime, to.mtime, to.ctime = t, t, t, t
	renameRef(n, from.id, fromName, to.id, toName)
	n.ctime = t
}

// renameRef changes n's record of its name (from, fromName) to (to,
// toName); the caller updates the directories' entries.
func renameRef(n *inode, from uint64, fromName string, to uint64, toName string) {
	if n.parent == from && n.name == fromName {
		n.parent, n.name = to, toName
	} else if i := slices.Index(n.links, link{Parent: from, Name: fromName}); i >= 0 {
		n.links[i] = link{Parent: to, Name: toName}
	}
}

func (s *State) anyInode(id uint64) (*inode, error) {
	n, ok := s.inodes[id]
	if !ok {
		return nil, errorf(ErrNotFound, "inode %d", id)
	}
	return n, nil
}

func (s *State) setattr(c Setattr) Result {
	n, err := s.anyInode(c.Inode)
	if err != nil {
		return fail(err)
	}
	if c.Set&SetMode != 0 {
		n.mode = c.Mode & 0o7777
		n.chmodACL()
	}
	if c.Set&SetUid != 0 {
		n.uid = c.Uid
	}
	if c.Set&SetGid != 0 {
		n.gid = c.Gid
	}
	if c.Set&SetATime != 0 {
		n.atime = c.ATime
	}
	if c.Set&SetMTime != 0 {
		n.mtime = c.MTime
	}
	n.ctime = c.Time
	return Result{Info: s.info(n)}
}

func checkXattrName(name string) error {
	if name == "" || len(name) > MaxXattrName {
		return errorf(ErrInvalid, "xattr name of %d bytes", len(name))
	}
	return nil
}

func (s *State) setXattr(c SetXattr) Result {
	n, err := s.anyInode(c.Inode)
	if err != nil {
		return fail(err)
	}
	if err := checkXattrName(c.Name); err != nil {
		return fail(err)
	}
	if len(c.Value) > MaxXattrValue {
		return fail(errorf(ErrInvalid, "xattr value of %d bytes", len(c.Value)))
	}
	_, has := n.xattrs[c.Name]
	switch {
	case c.Mode == XattrCreate && has:
		return fail(errorf(ErrExists, "xattr %q", c.Name))
	case c.Mode == XattrReplace && !has:
		return fail(errorf(ErrNotFound, "xattr %q", c.Name))
	case c.Mode > XattrReplace:
		return fail(errorf(ErrInvalid, "xattr mode %d", c.Mode))
	}
	total := len(c.Name) + len(c.Value)
	for k, v := range n.xattrs {
		if k != c.Name {
			total += len(k) + len(v)
		}
	}
	if total > MaxXattrTotal {
		return fail(errorf(ErrInvalid, "xattrs of inode %d above %d bytes", n.id, MaxXattrTotal))
	}
	if n.xattrs == nil {
		n.xattrs = map[string][]byte{}
	}
	n.xattrs[c.Name] = slices.Clone(c.Value)
	if c.Name == ACLAccessXattr {
		n.modeFromACL()
		// An ACL of the owner, group and others only is the mode itself:
		// Linux keeps none (posix_acl_update_mode), and so does meta.
		if acl, err := parseACL(c.Value); err == nil && len(acl) == 3 {
			delete(n.xattrs, ACLAccessXattr)
			if len(n.xattrs) == 0 {
				n.xattrs = nil
			}
		}
	}
	n.ctime = c.Time
	return Result{Info: s.info(n)}
}

func (s *State) removeXattr(c RemoveXattr) Result {
	n, err := s.anyInode(c.Inode)
	if err != nil {
		return fail(err)
	}
	if _, ok := n.xattrs[c.Name]; !ok {
		return fail(errorf(ErrNotFound, "xattr %q", c.Name))
	}
	delete(n.xattrs, c.Name)
	if len(n.xattrs) == 0 {
		n.xattrs = nil
	}
	n.ctime = c.Time
	return Result{Info: s.info(n)}
}

// LookupChild returns the entry name of directory parent.
func (s *State) LookupChild(parent uint64, name string) (FileInfo, error) {
	_, n, err := s.entry(parent, name)
	if err != nil {
		return FileInfo{}, err
	}
	return s.info(n), nil
}

// ReadDirInode returns the entries of directory ino, sorted by name, in
// pages as List.
func (s *State) ReadDirInode(ino uint64, after string, limit int) (_ []DirEntry, more bool, _ error) {
	dir, err := s.dirInode(ino)
	if err != nil {
		return nil, false, err
	}
	names, more := page(dir.children, after, limit)
	out := make([]DirEntry, 0, len(names))
	for _, name := range names {
		out = append(out, DirEntry{Name: name, Info: s.info(s.inodes[dir.children[name]])})
	}
	return out, more, nil
}

// Xattr returns the value of extended attribute name of ino.
func (s *State) Xattr(ino uint64, name string) ([]byte, error) {
	n, err := s.anyInode(ino)
	if err != nil {
		return nil, err
	}
	v, ok := n.xattrs[name]
	if !ok {
		return nil, errorf(ErrNotFound, "xattr %q", name)
	}
	return slices.Clone(v), nil
}

// Xattrs returns the names of ino's extended attributes, sorted.
func (s *State) Xattrs(ino uint64) ([]string, error) {
	n, err := s.anyInode(ino)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(n.xattrs)), nil
}

// ckptPosix is the checkpoint form of posixAttrs, embedded in ckptInode;
// every field is omitted when zero so older checkpoints restore unchanged.
type ckptPosix struct {
	Uid     uint32            `json:",omitempty"`
	Gid     uint32            `json:",omitempty"`
	ATime   int64             `json:",omitempty"`
	CTime   int64             `json:",omitempty"`
	Symlink bool              `json:",omitempty"`
	Target  string            `json:",omitempty"`
	Xattrs  map[string][]byte `json:",omitempty"`
	Links   []link            `json:",omitempty"`
	Special uint32            `json:",omitempty"`
	Rdev    uint32            `json:",omitempty"`
}

func (n *inode) ckptPosix() ckptPosix {
	return ckptPosix{Uid: n.uid, Gid: n.gid, ATime: n.atime, CTime: n.ctime, Symlink: n.symlink,
		Target: n.target, Xattrs: n.xattrs, Links: n.links, Special: n.special, Rdev: n.rdev}
}

func (p ckptPosix) attrs() posixAttrs {
	a := posixAttrs{uid: p.Uid, gid: p.Gid, atime: p.ATime, ctime: p.CTime, symlink: p.Symlink,
		target: p.Target, links: slices.Clone(p.Links), special: p.Special, rdev: p.Rdev}
	if len(p.Xattrs) > 0 {
		a.xattrs = map[string][]byte{}
		for k, v := range p.Xattrs {
			a.xattrs[k] = slices.Clone(v)
		}
	}
	return a
}
