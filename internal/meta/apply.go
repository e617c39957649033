package meta

import (
	"maps"
	"math"
	"slices"

	"github.com/catena-io/catena/internal/invariants"
)

// Result is the outcome of Apply.
type Result struct {
	// Err wraps one of the package's sentinels; nil on success.
	Err error
	// Info is the affected inode after the command (Mkdir, Create, SetSize).
	Info FileInfo
	// Chunk is the chunk at the requested index (AllocateChunk).
	Chunk ChunkRef
	// Allocated is true when AllocateChunk made a new chunk.
	Allocated bool
	// Fenced lists the chunks the command moved to a new epoch (a
	// snapshot's or clone's newly shared chunks, a rollback's dropped
	// ones): the leader tells their members before it answers.
	Fenced []ChunkRef
}

func fail(err error) Result { return Result{Err: err} }

// Apply executes one command. It is deterministic: the same state and
// command always give the same result and new state. A failed command
// leaves the state unchanged.
//
// Built with the invariants tag, Apply panics on a broken invariant: it
// asserts the reference counts it changes as it goes, and runs Check after
// every command on a state of up to fullCheckMax inodes and chunks (Check
// is linear in the state; beyond that only State.Check calls run it).
func (s *State) Apply(c Command) Result {
	r := s.apply(c)
	if invariants.Enabled && len(s.inodes)+len(s.chunks) <= fullCheckMax {
		err := s.Check()
		invariants.Check(err == nil, "meta: after %T: %v", c, err)
	}
	return r
}

// fullCheckMax bounds the states Apply checks in full under the invariants
// tag: Check takes about 0.5 µs per inode or chunk (3 under the race
// detector), so this keeps every command of a test within a few ms.
const fullCheckMax = 1024

func (s *State) apply(c Command) Result {
	if err := s.readOnly(c); err != nil {
		return fail(err)
	}
	switch c := c.(type) {
	case Mkdir:
		return s.mkdir(c)
	case Create:
		return s.create(c)
	case Rename:
		return s.rename(c)
	case Remove:
		return s.remove(c)
	case SetSize:
		return s.setSize(c)
	case AllocateChunk:
		return s.allocateChunk(c)
	case RegisterServer:
		return s.registerServer(c)
	case SetChain:
		return s.setChain(c)
	case CaughtUp:
		return s.caughtUp(c)
	case CreateVolume:
		return s.createVolume(c)
	case RemoveVolume:
		return s.removeVolume(c)
	case ResizeVolume:
		return s.resizeVolume(c)
	case As:
		return s.applyAs(c)
	case SetReplication:
		return s.setReplication(c)
	case SetDraining:
		return s.setDraining(c)
	case RemoveServer:
		return s.removeServer(c)
	case Concat:
		return s.concat(c)
	default:
		if r, ok := s.applyHA(c); ok {
			return r
		}
		if r, ok := s.applyOrphan(c); ok {
			return r
		}
		if r, ok := s.applyPosix(c); ok {
			return r
		}
		if r, ok := s.applySnapshot(c); ok {
			return r
		}
		return fail(errorf(ErrInvalid, "unknown command %T", c))
	}
}

// resolve walks elems from the root. It returns the inode, or the deepest
// existing directory and the index of the first missing element.
func (s *State) resolve(elems []string) (n *inode, missing int, err error) {
	n = s.inodes[RootInode]
	for i, e := range elems {
		if !n.dir {
			return nil, i, errorf(ErrNotDir, "%s", s.pathOf(n))
		}
		child, ok := s.childNamed(n, e)
		if !ok {
			return n, i, nil
		}
		n = s.inodes[child]
	}
	return n, len(elems), nil
}

// lookup returns the inode at path p.
func (s *State) lookup(p string) (*inode, error) {
	elems, err := splitPath(p)
	if err != nil {
		return nil, err
	}
	n, i, err := s.resolve(elems)
	if err != nil {
		return nil, err
	}
	if i < len(elems) {
		return nil, errorf(ErrNotFound, "%s", p)
	}
	return n, nil
}

// parentOf returns the directory that holds (or would hold) p and p's last
// element. The parent must exist.
func (s *State) parentOf(p string) (*inode, string, error) {
	elems, err := splitPath(p)
	if err != nil {
		return nil, "", err
	}
	if len(elems) == 0 {
		return nil, "", errorf(ErrInvalid, "the root has no parent")
	}
	dir, i, err := s.resolve(elems[:len(elems)-1])
	if err != nil {
		return nil, "", err
	}
	if i < len(elems)-1 {
		return nil, "", errorf(ErrNotFound, "parent of %s", p)
	}
	if !dir.dir {
		return nil, "", errorf(ErrNotDir, "parent of %s", p)
	}
	return dir, elems[len(elems)-1], nil
}

func (s *State) newInode(parent *inode, name string, dir bool, mode uint32, t int64) *inode {
	_, taken := parent.children[name]
	invariants.Check(s.inodes[s.nextInode] == nil && !taken, "meta: next inode %d in use or %q taken in directory %d", s.nextInode, name, parent.id)
	n := &inode{id: s.nextInode, dir: dir, parent: parent.id, name: name, mode: mode & 0o7777, mtime: t}
	s.nextInode++
	if dir {
		n.children = map[string]uint64{}
	} else {
		n.chunks = map[int64]uint64{}
	}
	s.inodes[n.id] = n
	parent.children[name] = n.id
	parent.touch(t)
	return n
}

func (s *State) mkdir(c Mkdir) Result {
	elems, err := splitPath(c.Path)
	if err != nil {
		return fail(err)
	}
	n, i, err := s.resolve(elems)
	if err != nil {
		return fail(err)
	}
	if i == len(elems) {
		if c.Parents && n.dir {
			return Result{Info: s.info(n)}
		}
		return fail(errorf(ErrExists, "%s", c.Path))
	}
	if !n.dir {
		return fail(errorf(ErrNotDir, "%s", s.pathOf(n)))
	}
	if i < len(elems)-1 && !c.Parents {
		return fail(errorf(ErrNotFound, "parent of %s", c.Path))
	}
	// Validation is complete; from here on nothing fails.
	for _, e := range elems[i:] {
		n = s.newInode(n, e, true, c.Mode, c.Time)
		n.uid, n.gid = c.Uid, c.Gid
	}
	return Result{Info: s.info(n)}
}

// CheckFileParams validates replication and chunk size (0 = default) and
// returns the effective values.
func CheckFileParams(replication int, chunkSize int64) (int, int64, error) {
	if replication == 0 {
		replication = DefaultReplication
	}
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if replication < 1 || replication > MaxReplication {
		return 0, 0, errorf(ErrInvalid, "replication %d not in [1, %d]", replication, MaxReplication)
	}
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize || chunkSize&(chunkSize-1) != 0 {
		return 0, 0, errorf(ErrInvalid, "chunk size %d is not a power of two in [1 MiB, 1 GiB]", chunkSize)
	}
	return replication, chunkSize, nil
}

func (s *State) create(c Create) Result {
	repl, cs, err := CheckFileParams(c.Replication, c.ChunkSize)
	if err != nil {
		return fail(err)
	}
	dir, name, err := s.parentOf(c.Path)
	if err != nil {
		return fail(err)
	}
	if id, ok := dir.children[name]; ok {
		n := s.inodes[id]
		if n.dir {
			return fail(errorf(ErrIsDir, "%s", c.Path))
		}
		if !c.Overwrite {
			return fail(errorf(ErrExists, "%s", c.Path))
		}
		s.dropChunks(n, 0)
		n.size, n.mode, n.replication, n.chunkSize = 0, c.Mode&0o7777, repl, cs
		n.touch(c.Time)
		return Result{Info: s.info(n)}
	}
	n := s.newInode(dir, name, false, c.Mode, c.Time)
	n.replication, n.chunkSize = repl, cs
	n.uid, n.gid = c.Uid, c.Gid
	return Result{Info: s.info(n)}
}

// dropChunks removes the file's chunks with index >= from, releasing their
// references.
func (s *State) dropChunks(n *inode, from int64) {
	for idx, h := range n.chunks {
		if idx < from {
			continue
		}
		delete(n.chunks, idx)
		ch := s.chunks[h]
		invariants.Check(ch != nil && ch.Refs > 0, "meta: inode %d index %d: chunk %d missing or refs <= 0", n.id, idx, h)
		s.unrefChunk(h)
	}
}

func (s *State) rename(c Rename) Result {
	src, err := s.lookup(c.Src)
	if err != nil {
		return fail(err)
	}
	if src.id == RootInode {
		return fail(errorf(ErrInvalid, "cannot rename the root"))
	}
	dstDir, name, err := s.parentOf(c.Dst)
	if err != nil {
		return fail(err)
	}
	if _, ok := dstDir.children[name]; ok {
		return fail(errorf(ErrExists, "%s", c.Dst))
	}
	if src.dir && s.isAncestor(src, dstDir) {
		return fail(errorf(ErrInvalid, "cannot move %s into its own subtree", c.Src))
	}
	// Src may name an extra link of a hard-linked file (posix.go).
	srcDir, srcName, _ := s.parentOf(c.Src)
	s.moveName(src, srcDir, srcName, dstDir, name, c.Time)
	return Result{Info: s.info(src)}
}

func (s *State) remove(c Remove) Result {
	n, err := s.lookup(c.Path)
	if err != nil {
		return fail(err)
	}
	if n.id == RootInode {
		return fail(errorf(ErrInvalid, "cannot remove the root"))
	}
	if n.hidden {
		return fail(errorf(ErrReadOnly, "%s holds snapshots (catena snapshot rm)", c.Path))
	}
	if n.dir && !n.emptyDir() && !c.Recursive {
		if len(n.children) == 0 {
			return fail(errorf(ErrNotEmpty, "%s has snapshots (catena snapshot rm)", c.Path))
		}
		return fail(errorf(ErrNotEmpty, "%s", c.Path))
	}
	parent, name, _ := s.parentOf(c.Path)
	s.removeEntry(parent, name, c.Time)
	return Result{}
}

func (s *State) deleteTree(n *inode) {
	if n.dir && n.snapdir != 0 {
		s.deleteTree(s.inodes[n.snapdir])
	}
	if n.dir {
		for _, name := range slices.Sorted(maps.Keys(n.children)) {
			// A hard-linked file survives under its other names.
			if c := s.inodes[n.children[name]]; c.dir || s.dropName(c, n.id, name) {
				s.deleteTree(c)
			}
		}
	} else {
		if s.keepOrphan(n) {
			return
		}
		s.dropChunks(n, 0)
	}
	delete(s.inodes, n.id)
}

func (s *State) file(id uint64) (*inode, error) {
	n, ok := s.inodes[id]
	if !ok {
		return nil, errorf(ErrNotFound, "inode %d", id)
	}
	if n.dir {
		return nil, errorf(ErrIsDir, "inode %d", id)
	}
	return n, nil
}

func (s *State) setSize(c SetSize) Result {
	if c.Size < 0 {
		return fail(errorf(ErrInvalid, "negative size %d", c.Size))
	}
	if c.Mode != SizeExtend && c.Mode != SizeExact {
		return fail(errorf(ErrInvalid, "size mode %d", c.Mode))
	}
	n, err := s.dataFile(c.Inode)
	if err != nil {
		return fail(err)
	}
	switch {
	case c.Mode == SizeExtend:
		n.size = max(n.size, c.Size)
	default:
		// Chunk i covers [i*cs, (i+1)*cs): drop those starting at or past
		// the new size, even when the recorded size is smaller (a writer
		// may have allocated chunks it has not reported yet). The bytes
		// past the size in the last kept chunk stay on the replicas:
		// zeroing them is the client's duty.
		from := int64(0)
		if c.Size > 0 {
			from = (c.Size-1)/n.chunkSize + 1
		}
		s.dropChunks(n, from)
		n.size = c.Size
	}
	n.touch(c.Time)
	return Result{Info: s.info(n)}
}

func (s *State) allocateChunk(c AllocateChunk) Result {
	n, err := s.dataFile(c.Inode)
	if err != nil {
		return fail(err)
	}
	if c.Index < 0 || c.Index > math.MaxInt64/n.chunkSize-1 {
		return fail(errorf(ErrInvalid, "chunk index %d", c.Index))
	}
	if h, ok := n.chunks[c.Index]; ok {
		return Result{Chunk: chunkRef(c.Index, s.chunks[h])}
	}
	if err := s.checkChain(c.Chain); err != nil {
		return fail(err)
	}
	invariants.Check(s.chunks[s.nextHandle] == nil, "meta: next handle %d in use", s.nextHandle)
	ch := &Chunk{Handle: s.nextHandle, Epoch: 1, Chain: slices.Clone(c.Chain), Refs: 1, Replication: n.replication, ChunkSize: n.chunkSize}
	s.nextHandle++
	s.chunks[ch.Handle] = ch
	n.chunks[c.Index] = ch.Handle
	n.touch(c.Time)
	return Result{Chunk: chunkRef(c.Index, ch), Allocated: true}
}

func chunkRef(index int64, ch *Chunk) ChunkRef {
	return ChunkRef{Index: index, Handle: ch.Handle, Epoch: ch.Epoch, Chain: slices.Clone(ch.Chain), Shared: ch.Refs > 1}
}

// checkChain requires a non-empty chain of distinct registered servers.
func (s *State) checkChain(chain []ServerID) error {
	if len(chain) == 0 || len(chain) > MaxReplication {
		return errorf(ErrInvalid, "chain of %d servers", len(chain))
	}
	seen := map[ServerID]bool{}
	for _, id := range chain {
		if seen[id] {
			return errorf(ErrInvalid, "server %d twice in chain", id)
		}
		seen[id] = true
		if _, ok := s.servers[id]; !ok {
			return errorf(ErrInvalid, "chain server %d is not registered", id)
		}
	}
	return nil
}

// MaxServerNameLen bounds a chunkserver's name.
const MaxServerNameLen = 64

// ValidServerName checks a chunkserver's name: 1 to MaxServerNameLen
// letters, digits and '.', '_', '-', starting with a letter or digit (it
// is typed in commands and used as a metrics label).
func ValidServerName(name string) error {
	if name == "" || len(name) > MaxServerNameLen {
		return errorf(ErrInvalid, "chunkserver name %q: want 1 to %d characters", name, MaxServerNameLen)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '.' || r == '_' || r == '-')
		if !ok {
			return errorf(ErrInvalid, "chunkserver name %q: only letters, digits, '.', '_' and '-' (not first)", name)
		}
	}
	return nil
}

func (s *State) registerServer(c RegisterServer) Result {
	if c.ID == 0 || c.Addr == "" {
		return fail(errorf(ErrInvalid, "server id 0 or empty address"))
	}
	name := c.CertName
	if old, ok := s.servers[c.ID]; ok && old.CertName != "" {
		if name != old.CertName {
			return fail(errorf(ErrExists, "server %d is bound to certificate %q", c.ID, old.CertName))
		}
	}
	if c.Name != "" {
		if err := ValidServerName(c.Name); err != nil {
			return fail(err)
		}
		for _, o := range s.servers {
			if o.ID != c.ID && o.Name == c.Name && !c.TakeName {
				return fail(errorf(ErrExists, "chunkserver name %q is taken by server %d, which is alive: give each server its own --name", c.Name, o.ID))
			}
		}
		for _, o := range s.servers {
			if o.ID != c.ID && o.Name == c.Name {
				o.Name = ""
			}
		}
	}
	draining := false
	if old, ok := s.servers[c.ID]; ok {
		draining = old.Draining // a restart does not end a drain
	}
	s.servers[c.ID] = &Server{ID: c.ID, Addr: c.Addr, Labels: maps.Clone(c.Labels), Name: c.Name, CertName: name, Draining: draining}
	return Result{}
}
