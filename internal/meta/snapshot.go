package meta

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// Snapshots and clones (GFS's snapshot, at chunk granularity in the
// metadata; the chunk engine shares 64 KiB blocks below it).
//
// A snapshot or a clone copies inodes, never data: every file of the copy
// names the same chunks as its original, whose Refs count the slots
// naming them. A chunk named by more than one slot is shared: nobody may
// write it (the master signs only read capabilities for it), so the
// first write to a slot that names it forks it (ForkChunk): a new handle
// whose replicas the chain members clone locally from the old one
// (chunkstore.Store.Clone), after which the slot names the new chunk
// alone (ForkDone). Until then the new chunk holds one reference to its
// origin (Chunk.Origin) and readers of the slot are sent to the origin.
//
// The GFS rule: a chunk that becomes shared (Refs 1 -> 2) moves to a new
// epoch in the same command, so writes signed for the old epoch are
// refused once its members hear of it (the master tells them before it
// answers the snapshot call), and none lands in the shared chunk later.
//
// A directory's snapshots hang under a hidden, read-only directory
// (SnapshotDirName, inode.hidden) that is not one of its entries: it is
// reached by name ("DIR/.snapshot/NAME/..."), never listed. A file's
// snapshot is a read-only directory NAME there holding the file alone.
// Every inode of a snapshot is read-only (inode.ro): each command that
// would change one, or an entry of one, fails with ErrReadOnly.
// A volume's snapshots are read-only volumes named "VOL@NAME".

// SnapshotDirName is the name under which a directory's snapshots are
// read. No entry may be created with it.
const SnapshotDirName = ".snapshot"

// VolumeSnapshotSep separates a volume's name from its snapshot's.
const VolumeSnapshotSep = "@"

// Snapshot makes a read-only, point-in-time copy of the directory or file
// at Path, readable at DIR/.snapshot/Name (DIR: Path, or a file's
// directory).
type Snapshot struct {
	Path string
	Name string
	Time int64
}

// RemoveSnapshot deletes snapshot Name of Path (a directory, or a file
// whose directory holds it), releasing its chunks.
type RemoveSnapshot struct {
	Path string
	Name string
	Time int64
}

// Clone makes Dst a writable copy of the file or tree at Src, sharing
// every chunk (catena cp). With Owner, every copy belongs to Uid and Gid
// (a caller other than root owns what it clones).
type Clone struct {
	Src, Dst string
	Owner    bool   `json:",omitempty"`
	Uid      uint32 `json:",omitempty"`
	Gid      uint32 `json:",omitempty"`
	Time     int64
}

// SnapshotVolume makes read-only volume Volume@Name, a copy of Volume.
type SnapshotVolume struct {
	Volume, Name string
	Time         int64
}

// RemoveVolumeSnapshot deletes volume snapshot Volume@Name.
type RemoveVolumeSnapshot struct {
	Volume, Name string
	Time         int64
}

// CloneVolume makes writable volume Dst, a copy of volume (or volume
// snapshot) Src.
type CloneVolume struct {
	Src, Dst string
	Time     int64
}

// RollbackVolume makes Volume's content that of its snapshot Name: its
// chunks are released (each fenced at a new epoch, Result.Fenced) and it
// names the snapshot's instead. Its size becomes the snapshot's.
type RollbackVolume struct {
	Volume, Name string
	Time         int64
}

// ForkChunk gives slot (Inode, Index), which names shared chunk Source at
// Epoch, a chunk of its own: a new handle on Source's chain (less its
// syncing members) whose Origin is Source. The slot's reference to Source
// moves to the new chunk until ForkDone. A slot that no longer names
// Source at Epoch is ErrEpochMismatch (re-read and retry), as is a
// Source that is unshared or itself a fork in progress.
//
// Source moves to a new epoch, which the new chunk starts at: a reader
// that cached the slot's chunk (Source at its old epoch) is refused by
// Source's members from then on and learns the slot's new chunk, so it
// never reads Source's old data after a write to the new one.
type ForkChunk struct {
	Inode  uint64
	Index  int64
	Source uint64
	Epoch  uint64
}

// ForkDone records that the members in Chain cloned their replica of
// its origin: the chunk stands on its own with that chain (epoch + 1 when
// it differs from the one ForkChunk gave: the origin's chain may have
// changed since), and its origin loses a reference. Done twice, or on a
// chunk that is no fork, it changes nothing.
type ForkDone struct {
	Handle uint64
	Chain  []ServerID
}

func (Snapshot) commandType() string             { return "snapshot" }
func (RemoveSnapshot) commandType() string       { return "snaprm" }
func (Clone) commandType() string                { return "clone" }
func (SnapshotVolume) commandType() string       { return "volsnap" }
func (RemoveVolumeSnapshot) commandType() string { return "volsnaprm" }
func (CloneVolume) commandType() string          { return "volclone" }
func (RollbackVolume) commandType() string       { return "volrollback" }
func (ForkChunk) commandType() string            { return "fork" }
func (ForkDone) commandType() string             { return "forkdone" }

// decodeSnapshot decodes the snapshot commands; ok is false for others.
func decodeSnapshot(typ string, raw []byte) (c Command, ok bool, err error) {
	switch typ {
	case "snapshot":
		c, err = decodeAs[Snapshot](raw)
	case "snaprm":
		c, err = decodeAs[RemoveSnapshot](raw)
	case "clone":
		c, err = decodeAs[Clone](raw)
	case "volsnap":
		c, err = decodeAs[SnapshotVolume](raw)
	case "volsnaprm":
		c, err = decodeAs[RemoveVolumeSnapshot](raw)
	case "volclone":
		c, err = decodeAs[CloneVolume](raw)
	case "volrollback":
		c, err = decodeAs[RollbackVolume](raw)
	case "fork":
		c, err = decodeAs[ForkChunk](raw)
	case "forkdone":
		c, err = decodeAs[ForkDone](raw)
	default:
		return decodeOverlay(typ, raw)
	}
	return c, true, err
}

func (s *State) applySnapshot(c Command) (Result, bool) {
	switch c := c.(type) {
	case Snapshot:
		return s.snapshot(c), true
	case RemoveSnapshot:
		return s.removeSnapshot(c), true
	case Clone:
		return s.clone(c), true
	case SnapshotVolume:
		return s.snapshotVolume(c), true
	case RemoveVolumeSnapshot:
		return s.removeVolumeSnapshot(c), true
	case CloneVolume:
		return s.cloneVolume(c), true
	case RollbackVolume:
		return s.rollbackVolume(c), true
	case ForkChunk:
		return s.forkChunk(c), true
	case ForkDone:
		return s.forkDone(c), true
	}
	return s.applyOverlay(c)
}

// copier copies inodes for a snapshot or a clone.
type copier struct {
	s     *State
	ro    bool
	owner bool
	uid   uint32
	gid   uint32
	// done maps an original file to its copy: a second name of it in the
	// tree becomes a second name of the copy (hard links stay links).
	done   map[uint64]*inode
	fenced []ChunkRef
}

func (s *State) newCopier(ro bool) *copier {
	return &copier{s: s, ro: ro, done: map[uint64]*inode{}}
}

// share adds a reference to chunk h; a chunk that becomes shared moves
// to a new epoch (the GFS rule), which the caller's Result lists.
func (cp *copier) share(h uint64) {
	ch := cp.s.chunks[h]
	ch.Refs++
	if ch.Refs == 2 {
		ch.Epoch++
		cp.fenced = append(cp.fenced, chunkRef(0, ch))
	}
}

// copyInode copies the attributes and chunks of src into a new inode
// named name in parent (parent nil: a volume, named name).
func (cp *copier) copyInode(src, parent *inode, name string) *inode {
	s := cp.s
	n := &inode{id: s.nextInode, dir: src.dir, name: name, mode: src.mode, mtime: src.mtime,
		size: src.size, replication: src.replication, chunkSize: src.chunkSize, ro: cp.ro}
	s.nextInode++
	n.posixAttrs = src.posixAttrs
	n.xattrs = maps.Clone(src.xattrs)
	n.links = nil
	if cp.owner {
		n.uid, n.gid = cp.uid, cp.gid
	}
	if parent != nil {
		n.parent = parent.id
		parent.children[name] = n.id
	}
	s.inodes[n.id] = n
	if n.dir {
		n.children = map[string]uint64{}
		return n
	}
	n.chunks = make(map[int64]uint64, len(src.chunks))
	cp.shareChunks(n, src)
	return n
}

// shareChunks makes dst's slots name src's chunks (dst's own were
// dropped before).
func (cp *copier) shareChunks(dst, src *inode) {
	for _, idx := range slices.Sorted(maps.Keys(src.chunks)) {
		h := src.chunks[idx]
		dst.chunks[idx] = h
		cp.share(h)
	}
}

// copyTree copies src and everything under it (its snapshots excepted)
// as entry name of parent.
func (cp *copier) copyTree(src, parent *inode, name string) *inode {
	if d, ok := cp.done[src.id]; ok {
		parent.children[name] = d.id
		d.links = append(d.links, link{Parent: parent.id, Name: name})
		return d
	}
	n := cp.copyInode(src, parent, name)
	if !src.dir {
		if len(src.links) > 0 {
			cp.done[src.id] = n
		}
		return n
	}
	for _, cn := range slices.Sorted(maps.Keys(src.children)) {
		cp.copyTree(cp.s.inodes[src.children[cn]], n, cn)
	}
	return n
}

func (cp *copier) result(info FileInfo) Result {
	slices.SortFunc(cp.fenced, func(a, b ChunkRef) int { return cmp.Compare(a.Handle, b.Handle) })
	return Result{Info: info, Fenced: cp.fenced}
}

// snapshotHome returns the inode at p and the directory whose .snapshot
// holds its snapshots (p itself, or a file's directory by that path).
func (s *State) snapshotHome(p string) (n, dir *inode, err error) {
	n, err = s.lookup(p)
	if err != nil {
		return nil, nil, err
	}
	if n.dir {
		return n, n, nil
	}
	dir, _, err = s.parentOf(p)
	return n, dir, err
}

func (s *State) snapshot(c Snapshot) Result {
	if err := checkName(c.Name); err != nil {
		return fail(err)
	}
	n, dir, err := s.snapshotHome(c.Path)
	if err != nil {
		return fail(err)
	}
	switch {
	case n.ro || dir.ro:
		return fail(errorf(ErrReadOnly, "%s is in a snapshot already", c.Path))
	case !n.dir && (n.symlink || n.special != 0):
		return fail(errorf(ErrInvalid, "%s is not a regular file or a directory", c.Path))
	}
	sd := s.inodes[dir.snapdir]
	if sd != nil {
		if _, ok := sd.children[c.Name]; ok {
			return fail(errorf(ErrExists, "snapshot %q of %s", c.Name, s.pathOf(dir)))
		}
	}
	// Validation is complete; from here on nothing fails.
	if sd == nil {
		sd = &inode{id: s.nextInode, dir: true, parent: dir.id, name: SnapshotDirName, mode: 0o555,
			mtime: c.Time, children: map[string]uint64{}, ro: true, hidden: true}
		sd.uid, sd.gid = dir.uid, dir.gid
		s.nextInode++
		s.inodes[sd.id] = sd
		dir.snapdir = sd.id
	}
	sd.touch(c.Time)
	cp := s.newCopier(true)
	var root *inode
	if n.dir {
		root = cp.copyTree(n, sd, c.Name)
	} else {
		root = &inode{id: s.nextInode, dir: true, parent: sd.id, name: c.Name, mode: 0o555,
			mtime: c.Time, children: map[string]uint64{}, ro: true}
		root.uid, root.gid = n.uid, n.gid
		s.nextInode++
		s.inodes[root.id] = root
		sd.children[c.Name] = root.id
		_, base, _ := s.parentOf(c.Path)
		cp.copyTree(n, root, base)
	}
	return cp.result(s.info(root))
}

func (s *State) removeSnapshot(c RemoveSnapshot) Result {
	_, dir, err := s.snapshotHome(c.Path)
	if err != nil {
		return fail(err)
	}
	sd := s.inodes[dir.snapdir]
	if sd == nil {
		return fail(errorf(ErrNotFound, "snapshot %q of %s", c.Name, s.pathOf(dir)))
	}
	id, ok := sd.children[c.Name]
	if !ok {
		return fail(errorf(ErrNotFound, "snapshot %q of %s", c.Name, s.pathOf(dir)))
	}
	delete(sd.children, c.Name)
	s.deleteTree(s.inodes[id])
	if len(sd.children) == 0 {
		delete(s.inodes, sd.id)
		dir.snapdir = 0
	} else {
		sd.touch(c.Time)
	}
	return Result{}
}

func (s *State) clone(c Clone) Result {
	src, err := s.lookup(c.Src)
	if err != nil {
		return fail(err)
	}
	if src.hidden {
		return fail(errorf(ErrInvalid, "%s holds snapshots: clone one of them", c.Src))
	}
	dstDir, name, err := s.parentOf(c.Dst)
	if err != nil {
		return fail(err)
	}
	switch _, taken := dstDir.children[name]; {
	case dstDir.ro:
		return fail(errorf(ErrReadOnly, "%s is in a snapshot", c.Dst))
	case taken:
		return fail(errorf(ErrExists, "%s", c.Dst))
	case src.dir && s.isAncestor(src, dstDir):
		return fail(errorf(ErrInvalid, "cannot clone %s into its own subtree", c.Src))
	}
	cp := s.newCopier(false)
	cp.owner, cp.uid, cp.gid = c.Owner, c.Uid, c.Gid
	n := cp.copyTree(src, dstDir, name)
	dstDir.touch(c.Time)
	n.ctime = c.Time
	return cp.result(s.info(n))
}

// VolumeSnapshotName is the volume name of snapshot name of volume vol.
func VolumeSnapshotName(vol, name string) string { return vol + VolumeSnapshotSep + name }

func (s *State) snapshotVolume(c SnapshotVolume) Result {
	if err := checkName(c.Name); err != nil {
		return fail(err)
	}
	v, err := s.volume(c.Volume)
	if err != nil {
		return fail(err)
	}
	if v.ro {
		return fail(errorf(ErrReadOnly, "volume %q is a snapshot", c.Volume))
	}
	key := VolumeSnapshotName(c.Volume, c.Name)
	if _, ok := s.volumes[key]; ok {
		return fail(errorf(ErrExists, "volume snapshot %q", key))
	}
	cp := s.newCopier(true)
	n := cp.copyInode(v, nil, key)
	n.mtime = c.Time
	s.volumes[key] = n.id
	return cp.result(s.volumeInfo(n))
}

func (s *State) removeVolumeSnapshot(c RemoveVolumeSnapshot) Result {
	key := VolumeSnapshotName(c.Volume, c.Name)
	n, err := s.volume(key)
	if err != nil {
		return fail(err)
	}
	s.dropChunks(n, 0)
	delete(s.inodes, n.id)
	delete(s.volumes, key)
	return Result{}
}

func (s *State) cloneVolume(c CloneVolume) Result {
	if err := checkVolumeName(c.Dst); err != nil {
		return fail(err)
	}
	src, err := s.volume(c.Src)
	if err != nil {
		return fail(err)
	}
	if _, ok := s.volumes[c.Dst]; ok {
		return fail(errorf(ErrExists, "volume %q", c.Dst))
	}
	cp := s.newCopier(false)
	n := cp.copyInode(src, nil, c.Dst)
	n.mtime = c.Time
	s.volumes[c.Dst] = n.id
	return cp.result(s.volumeInfo(n))
}

func (s *State) rollbackVolume(c RollbackVolume) Result {
	v, err := s.volume(c.Volume)
	if err != nil {
		return fail(err)
	}
	if v.ro {
		return fail(errorf(ErrReadOnly, "volume %q is a snapshot", c.Volume))
	}
	snap, err := s.volume(VolumeSnapshotName(c.Volume, c.Name))
	if err != nil {
		return fail(err)
	}
	cp := s.newCopier(false)
	// The volume's own chunks move to a new epoch before they go, so a
	// writer still holding them is refused from then on.
	cp.fenced = s.fenceAll(v)
	s.dropChunks(v, 0)
	cp.shareChunks(v, snap)
	v.size, v.mtime = snap.size, c.Time
	return cp.result(s.volumeInfo(v))
}

func (s *State) forkChunk(c ForkChunk) Result {
	n, err := s.file(c.Inode)
	if err != nil {
		return fail(err)
	}
	if n.ro {
		return fail(errorf(ErrReadOnly, "inode %d is in a snapshot", c.Inode))
	}
	h, ok := n.chunks[c.Index]
	if !ok || h != c.Source {
		return fail(errorf(ErrEpochMismatch, "inode %d index %d no longer names chunk %d", c.Inode, c.Index, c.Source))
	}
	ch := s.chunks[h]
	switch {
	case ch.Epoch != c.Epoch:
		return fail(errorf(ErrEpochMismatch, "chunk %d is at epoch %d, fork asked at %d", h, ch.Epoch, c.Epoch))
	case ch.Refs < 2:
		return fail(errorf(ErrEpochMismatch, "chunk %d is no longer shared", h))
	case ch.Origin != 0:
		return fail(errorf(ErrEpochMismatch, "chunk %d is a fork in progress", h))
	}
	var chain []ServerID
	for _, id := range ch.Chain {
		if !ch.IsSyncing(id) {
			chain = append(chain, id)
		}
	}
	ch.Epoch++
	nh := s.nextHandle
	s.nextHandle++
	s.chunks[nh] = &Chunk{Handle: nh, Epoch: ch.Epoch, Chain: chain, Refs: 1,
		Replication: ch.Replication, ChunkSize: ch.ChunkSize, Origin: h}
	n.chunks[c.Index] = nh
	return Result{Chunk: chunkRef(c.Index, s.chunks[nh]), Allocated: true, Fenced: []ChunkRef{chunkRef(0, ch)}}
}

func (s *State) forkDone(c ForkDone) Result {
	ch, ok := s.chunks[c.Handle]
	if !ok {
		return fail(errorf(ErrNotFound, "chunk %d", c.Handle))
	}
	if ch.Origin == 0 {
		return Result{Chunk: chunkRef(0, ch)}
	}
	if err := s.checkChain(c.Chain); err != nil {
		return fail(errorf(ErrInvalid, "chunk %d: fork done: %v", c.Handle, err))
	}
	if !slices.Equal(c.Chain, ch.Chain) {
		ch.Chain = slices.Clone(c.Chain)
		ch.Epoch++
	}
	origin := ch.Origin
	ch.Origin = 0
	s.unrefChunk(origin)
	return Result{Chunk: chunkRef(0, ch)}
}

// unrefChunk drops one reference to chunk h, which leaves the map with
// its last (and releases its origin's, for a fork never done).
func (s *State) unrefChunk(h uint64) {
	ch := s.chunks[h]
	if ch == nil {
		return
	}
	ch.Refs--
	if ch.Refs <= 0 {
		delete(s.chunks, h)
		if ch.Origin != 0 {
			s.unrefChunk(ch.Origin)
		}
	}
}

// emptyDir: a directory with neither entries nor snapshots.
func (n *inode) emptyDir() bool { return len(n.children) == 0 && n.snapdir == 0 }

// childNamed is entry name of directory n, or its snapshot directory for
// SnapshotDirName when it has no entry of that name.
func (s *State) childNamed(n *inode, name string) (uint64, bool) {
	if id, ok := n.children[name]; ok {
		return id, true
	}
	if name == SnapshotDirName && n.snapdir != 0 {
		return n.snapdir, true
	}
	return 0, false
}

// readOnly is ErrReadOnly when command c would change a read-only inode
// or an entry of one (an inode of a snapshot), nil otherwise (c then
// applies, or fails, as it would have).
func (s *State) readOnly(c Command) error {
	ro := func(n *inode) bool { return n != nil && n.ro }
	byID := func(ids ...uint64) error {
		for _, id := range ids {
			if n := s.inodes[id]; ro(n) {
				if n.parent != 0 || n.orphan {
					return errorf(ErrReadOnly, "%s is in a snapshot", s.pathOf(n))
				}
				return errorf(ErrReadOnly, "volume %q is a snapshot", n.name)
			}
		}
		return nil
	}
	byPath := func(p string, self bool) error {
		elems, err := splitPath(p)
		if err != nil || len(elems) == 0 {
			return nil
		}
		n, i, err := s.resolve(elems)
		if err != nil {
			return nil
		}
		// The parent when p exists; the deepest existing directory when
		// not (where a Mkdir or Create would add entries).
		if i == len(elems) {
			if self && ro(n) {
				return errorf(ErrReadOnly, "%s is in a snapshot", p)
			}
			n = s.inodes[n.parent]
		}
		if ro(n) {
			return errorf(ErrReadOnly, "%s is in a snapshot", p)
		}
		return nil
	}
	switch c := c.(type) {
	case Mkdir:
		return byPath(c.Path, false)
	case Create:
		return byPath(c.Path, true)
	case Rename:
		if err := byPath(c.Src, false); err != nil {
			return err
		}
		return byPath(c.Dst, false)
	case Remove:
		return byPath(c.Path, false)
	case SetSize:
		return byID(c.Inode)
	case AllocateChunk:
		return byID(c.Inode)
	case SetReplication:
		return byID(c.Inode)
	case ResizeVolume:
		if n := s.inodes[s.volumes[c.Name]]; ro(n) {
			return errorf(ErrReadOnly, "volume %q is a snapshot", c.Name)
		}
	case RemoveVolume:
		if n := s.inodes[s.volumes[c.Name]]; ro(n) {
			return errorf(ErrReadOnly, "volume %q is a snapshot (catena volume snapshot rm)", c.Name)
		}
	case CreateAt:
		return byID(c.Parent)
	case MkdirAt:
		return byID(c.Parent)
	case Symlink:
		return byID(c.Parent)
	case Mknod:
		return byID(c.Parent)
	case Link:
		return byID(c.Parent, c.Inode)
	case Unlink:
		return byID(c.Parent)
	case RenameAt:
		return byID(c.SrcParent, c.DstParent)
	case Setattr:
		return byID(c.Inode)
	case SetXattr:
		return byID(c.Inode)
	case RemoveXattr:
		return byID(c.Inode)
	}
	return nil
}

// Snapshots returns the names of the snapshots of the directory at p (or
// of a file's directory), sorted.
func (s *State) Snapshots(p string) ([]FileInfo, error) {
	_, dir, err := s.snapshotHome(p)
	if err != nil {
		return nil, err
	}
	sd := s.inodes[dir.snapdir]
	if sd == nil {
		return nil, nil
	}
	out := make([]FileInfo, 0, len(sd.children))
	for _, name := range slices.Sorted(maps.Keys(sd.children)) {
		out = append(out, s.info(s.inodes[sd.children[name]]))
	}
	return out, nil
}

// VolumeSnapshots returns the snapshots of volume vol, sorted by name
// (FileInfo.Name is the whole "VOL@NAME").
func (s *State) VolumeSnapshots(vol string) ([]FileInfo, error) {
	if _, err := s.volume(vol); err != nil {
		return nil, err
	}
	prefix := vol + VolumeSnapshotSep
	var out []FileInfo
	for _, name := range slices.Sorted(maps.Keys(s.volumes)) {
		if strings.HasPrefix(name, prefix) && !strings.Contains(name[len(prefix):], VolumeSnapshotSep) {
			out = append(out, s.volumeInfo(s.inodes[s.volumes[name]]))
		}
	}
	return out, nil
}

// TreeChunks returns the chunks (each once) of the file, volume or
// directory tree (its snapshots excepted) at inode ino: what a snapshot
// or clone of it shares.
func (s *State) TreeChunks(ino uint64) ([]ChunkRef, error) {
	root, ok := s.inodes[ino]
	if !ok {
		return nil, errorf(ErrNotFound, "inode %d", ino)
	}
	seen := map[uint64]bool{}
	var out []ChunkRef
	stack := []*inode{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, id := range n.children {
			stack = append(stack, s.inodes[id])
		}
		for _, h := range n.chunks {
			if !seen[h] {
				seen[h] = true
				out = append(out, chunkRef(0, s.chunks[h]))
			}
		}
	}
	slices.SortFunc(out, func(a, b ChunkRef) int { return cmp.Compare(a.Handle, b.Handle) })
	return out, nil
}

// PendingForks returns the chunks whose fork is not done, by handle.
func (s *State) PendingForks() []Chunk {
	var out []Chunk
	for _, h := range slices.Sorted(maps.Keys(s.chunks)) {
		if ch := s.chunks[h]; ch.Origin != 0 {
			out = append(out, ch.clone())
		}
	}
	return out
}
