package meta

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
)

// The metadata fsck: the invariants of the package doc, one named check
// each. RestoreCheckpoint runs them on every state it decodes, the cluster
// harness on every master when a test ends, and Apply after every command
// under the invariants build tag.

// stateChecks are Check's checks, in the order it runs them. Each reads
// the state only, takes time linear in its size and never panics on a
// state a checkpoint can describe, even one no sequence of commands can
// produce.
var stateChecks = []struct {
	name  string
	check func(*State, *problems)
}{
	{"root", checkRoot},
	{"counters", checkCounters},
	{"servers", checkServers},
	{"chunks", checkChunks},
	{"refcounts", checkRefcounts},
	{"inodes", checkInodes},
	{"names", checkNames},
	{"entries", checkEntries},
	{"tree", checkTree},
	{"volumes", checkVolumes},
	{"mounts", checkMounts},
	{"requests", checkRequests},
}

// Check runs every check on the state and returns nil, or an error
// wrapping ErrInconsistent that names each failed check and its first
// problems ("meta: inconsistent state: refcounts: chunk 3: refs 2, but 1
// slots name it"). A failure is a bug in Apply (or a corrupt checkpoint),
// never a user error.
func (s *State) Check() error {
	// A first pass in map order is cheap enough to run after every Apply;
	// only a failure pays for a second pass in id order, so that the same
	// state always gives the same report.
	if s.check(false) == nil {
		return nil
	}
	return s.check(true)
}

func (s *State) check(ordered bool) error {
	var errs []error
	for _, c := range stateChecks {
		p := problems{ordered: ordered}
		c.check(s, &p)
		if err := p.err(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInconsistent, errors.Join(errs...))
}

// maxProblems caps the problems one check reports.
const maxProblems = 8

// problems collects what one check found.
type problems struct {
	ordered bool // visit maps in key order (see keys)
	list    []string
	more    int
}

func (p *problems) addf(format string, args ...any) {
	if len(p.list) == maxProblems {
		p.more++
		return
	}
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	msg := strings.Join(p.list, "; ")
	if p.more > 0 {
		msg += fmt.Sprintf("; and %d more", p.more)
	}
	return errors.New(msg)
}

// keys visits the keys of m, in ascending order when p is ordered.
func keys[M ~map[K]V, K cmp.Ordered, V any](p *problems, m M) iter.Seq[K] {
	if !p.ordered {
		return maps.Keys(m)
	}
	return slices.Values(slices.Sorted(maps.Keys(m)))
}

// checkRoot: inode 1 is a directory with no parent, name or extra link.
func checkRoot(s *State, p *problems) {
	root := s.inodes[RootInode]
	switch {
	case root == nil:
		p.addf("no inode %d", RootInode)
	case !root.dir:
		p.addf("inode %d is not a directory", RootInode)
	case root.parent != 0 || root.name != "" || len(root.links) > 0 || root.orphan:
		p.addf("inode %d has a parent (%d), a name (%q), extra links or is an orphan", RootInode, root.parent, root.name)
	}
}

// checkCounters: nextInode and nextHandle are above every id in use, so
// the next allocation never reuses one.
func checkCounters(s *State, p *problems) {
	if s.nextInode <= RootInode {
		p.addf("next inode %d", s.nextInode)
	}
	if s.nextHandle == 0 {
		p.addf("next handle 0")
	}
	for id := range keys(p, s.inodes) {
		if id == 0 || id >= s.nextInode {
			p.addf("inode %d is not in [1, next inode %d)", id, s.nextInode)
		}
	}
	for h := range keys(p, s.chunks) {
		if h == 0 || h >= s.nextHandle {
			p.addf("chunk %d is not in [1, next handle %d)", h, s.nextHandle)
		}
	}
}

// checkServers: every registered chunkserver has its id and an address.
func checkServers(s *State, p *problems) {
	named := map[string]ServerID{}
	for id := range keys(p, s.servers) {
		sv := s.servers[id]
		switch {
		case sv == nil || sv.ID != id:
			p.addf("server %d: entry of another id", id)
		case id == 0 || sv.Addr == "":
			p.addf("server %d: id 0 or no address", id)
		case sv.Name == "":
		case ValidServerName(sv.Name) != nil:
			p.addf("server %d: bad name %q", id, sv.Name)
		case named[sv.Name] != 0:
			p.addf("server %d: name %q is server %d's too", id, sv.Name, named[sv.Name])
		default:
			named[sv.Name] = id
		}
	}
}

// checkChunks: every chunk-map entry is well formed: epoch above 0,
// referenced, a valid replication factor and chunk size, a non-empty
// chain of distinct registered servers, and syncing members that are
// distinct members other than the head (nil when there are none).
func checkChunks(s *State, p *problems) {
	for h := range keys(p, s.chunks) {
		ch := s.chunks[h]
		if ch == nil || ch.Handle != h {
			p.addf("chunk %d: entry of another handle", h)
			continue
		}
		if ch.Epoch == 0 {
			p.addf("chunk %d: epoch 0", h)
		}
		if ch.Refs <= 0 {
			p.addf("chunk %d: refs %d (an unreferenced chunk leaves the map)", h, ch.Refs)
		}
		if !validFileParams(ch.Replication, ch.ChunkSize) {
			p.addf("chunk %d: replication %d or chunk size %d out of bounds", h, ch.Replication, ch.ChunkSize)
		}
		if err := s.checkChain(ch.Chain); err != nil {
			p.addf("chunk %d: chain %v: %v", h, ch.Chain, err)
		}
		if err := checkSyncing(ch.Chain, ch.Syncing); err != nil || (ch.Syncing != nil && len(ch.Syncing) == 0) {
			p.addf("chunk %d: syncing %v: %v", h, ch.Syncing, err)
		}
	}
}

// validFileParams reports whether replication and chunk size are explicit
// valid values (0, a default for commands, is not).
func validFileParams(replication int, chunkSize int64) bool {
	r, cs, err := CheckFileParams(replication, chunkSize)
	return err == nil && r == replication && cs == chunkSize
}

// checkRefcounts: a chunk's refcount is the number of (file, index) slots
// naming it, every slot names a chunk of the map, and a chunk has the
// chunk size of the files naming it.
func checkRefcounts(s *State, p *problems) {
	slots := map[uint64]int{}
	for id := range keys(p, s.inodes) {
		n := s.inodes[id]
		for idx := range keys(p, n.chunks) {
			h := n.chunks[idx]
			ch := s.chunks[h]
			if ch == nil {
				p.addf("inode %d index %d: chunk %d is not in the chunk map", id, idx, h)
				continue
			}
			slots[h]++
			if ch.ChunkSize != n.chunkSize {
				p.addf("inode %d index %d: chunk %d has chunk size %d, the file %d", id, idx, h, ch.ChunkSize, n.chunkSize)
			}
			if ch.Replication != n.replication && ch.Refs == 1 {
				p.addf("inode %d index %d: chunk %d has replication %d, the file %d", id, idx, h, ch.Replication, n.replication)
			}
		}
	}
	for h := range keys(p, s.chunks) {
		ch := s.chunks[h]
		if ch == nil || ch.Origin == 0 {
			continue
		}
		switch o := s.chunks[ch.Origin]; {
		case o == nil:
			p.addf("chunk %d: fork of chunk %d, which is not in the chunk map", h, ch.Origin)
		case o.Origin != 0:
			p.addf("chunk %d: fork of chunk %d, itself a fork not done", h, ch.Origin)
		default:
			slots[ch.Origin]++ // a fork not done holds its origin
		}
	}
	for h := range keys(p, s.chunks) {
		if ch := s.chunks[h]; ch != nil && ch.Refs != slots[h] {
			p.addf("chunk %d: refs %d, but %d slots name it", h, ch.Refs, slots[h])
		}
	}
}

// checkInodes: each inode is well formed for its kind (directory, file,
// symlink, special file) on its own; how inodes name each other is
// checkNames' and checkEntries' business.
func checkInodes(s *State, p *problems) {
	for id := range keys(p, s.inodes) {
		n := s.inodes[id]
		if n == nil || n.id != id {
			p.addf("inode %d: entry of another inode", id)
			continue
		}
		if n.mode&^0o7777 != 0 {
			p.addf("inode %d: mode %#o beyond permission bits", id, n.mode)
		}
		if n.dir {
			checkDirInode(n, p)
		} else {
			checkFileInode(n, p)
		}
		if n.rdev != 0 && n.special != TypeChar && n.special != TypeBlock {
			p.addf("inode %d: device number on a non-device", id)
		}
		for k := range keys(p, n.xattrs) {
			if err := checkXattrName(k); err != nil {
				p.addf("inode %d: %v", id, err)
			}
		}
	}
}

func checkDirInode(n *inode, p *problems) {
	switch {
	case n.children == nil:
		p.addf("directory %d: no entry table", n.id)
	case len(n.chunks) > 0 || n.size != 0:
		p.addf("directory %d: chunks or a size (%d)", n.id, n.size)
	case len(n.links) > 0 || n.orphan:
		p.addf("directory %d: extra names or an orphan", n.id)
	case n.symlink || n.target != "" || n.special != 0:
		p.addf("directory %d: also a symlink or a special file", n.id)
	}
}

func checkFileInode(n *inode, p *problems) {
	if n.children != nil {
		p.addf("file %d: directory entries", n.id)
	}
	if n.chunks == nil {
		p.addf("file %d: no chunk table", n.id)
	}
	if n.size < 0 {
		p.addf("file %d: negative size %d", n.id, n.size)
	}
	if !validFileParams(n.replication, n.chunkSize) {
		p.addf("file %d: replication %d or chunk size %d out of bounds", n.id, n.replication, n.chunkSize)
	} else {
		for idx := range keys(p, n.chunks) {
			if idx < 0 || idx > math.MaxInt64/n.chunkSize-1 {
				p.addf("file %d: chunk index %d out of range", n.id, idx)
				break
			}
		}
	}
	switch {
	case n.symlink && (n.target == "" || len(n.target) > MaxSymlinkLen || len(n.chunks) > 0):
		p.addf("symlink %d: bad target or has chunks", n.id)
	case !n.symlink && n.target != "":
		p.addf("inode %d: target without symlink", n.id)
	case n.special != 0 && (!validSpecial(n.special) || n.symlink || len(n.chunks) > 0):
		p.addf("special file %d: bad type %#o, a symlink or has chunks", n.id, n.special)
	}
}

// hasName reports whether n is called name in directory dir, by its
// primary name or an extra link.
func (n *inode) hasName(dir uint64, name string) bool {
	return (n.parent != 0 && n.parent == dir && n.name == name) || slices.Contains(n.links, link{Parent: dir, Name: name})
}

// checkNames: every inode's parent links hold: each of its names is a
// valid name, once, in a directory whose entry of that name is this
// inode; an inode without a parent is the root, a volume or an orphan.
func checkNames(s *State, p *problems) {
	for id := range keys(p, s.inodes) {
		n := s.inodes[id]
		if n == nil || id == RootInode {
			continue
		}
		if n.parent == 0 {
			if !n.orphan && (n.dir || s.volumes[n.name] != id) {
				p.addf("inode %d: no parent, and neither a volume nor an orphan", id)
			}
			if len(n.links) > 0 {
				p.addf("inode %d: extra links without a primary name", id)
			}
			continue
		}
		if n.hidden {
			d := s.inodes[n.parent]
			if d == nil || !d.dir || d.snapdir != id || n.name != SnapshotDirName || !n.dir || !n.ro || len(n.links) > 0 {
				p.addf("inode %d: a snapshot directory that is not %q of directory %d", id, SnapshotDirName, n.parent)
			}
			continue
		}
		if d := s.inodes[n.parent]; d != nil && d.ro && !n.ro {
			p.addf("inode %d: writable, in read-only directory %d", id, n.parent)
		}
		checkOneName(s, p, n, link{Parent: n.parent, Name: n.name})
		for i, l := range n.links {
			if (l.Parent == n.parent && l.Name == n.name) || slices.Contains(n.links[:i], l) {
				p.addf("inode %d: named %q in directory %d twice", id, l.Name, l.Parent)
				continue
			}
			checkOneName(s, p, n, l)
		}
	}
}

// checkOneName checks one name l of inode n for checkNames.
func checkOneName(s *State, p *problems, n *inode, l link) {
	if err := checkName(l.Name); err != nil {
		p.addf("inode %d: %v", n.id, err)
	}
	d := s.inodes[l.Parent]
	switch {
	case d == nil || !d.dir:
		p.addf("inode %d: parent %d of %q is not a directory", n.id, l.Parent, l.Name)
	case d.children[l.Name] != n.id:
		p.addf("inode %d: directory %d has no entry %q for it (names inode %d)", n.id, l.Parent, l.Name, d.children[l.Name])
	}
}

// checkEntries: every directory entry names an existing inode that has
// that name (the converse of checkNames): no dangling entry, no entry an
// inode does not know about.
func checkEntries(s *State, p *problems) {
	for id := range keys(p, s.inodes) {
		d := s.inodes[id]
		if d == nil || !d.dir {
			continue
		}
		for name := range keys(p, d.children) {
			cid := d.children[name]
			c := s.inodes[cid]
			switch {
			case c == nil:
				p.addf("directory %d: entry %q names inode %d, which does not exist", id, name, cid)
			case !c.hasName(id, name):
				p.addf("directory %d: entry %q names inode %d, which has no such name", id, name, cid)
			}
		}
	}
}

// checkTree: every named inode is reachable from the root: no cycle, no
// detached subtree.
func checkTree(s *State, p *problems) {
	root := s.inodes[RootInode]
	if root == nil {
		return // checkRoot's
	}
	reached := map[uint64]bool{RootInode: true}
	stack := []*inode{root}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if sd := s.inodes[d.snapdir]; sd != nil && sd.hidden && sd.parent == d.id && !reached[sd.id] {
			reached[sd.id] = true
			stack = append(stack, sd)
		}
		for _, cid := range d.children {
			c := s.inodes[cid]
			if c == nil || reached[cid] {
				continue
			}
			reached[cid] = true
			if c.dir {
				stack = append(stack, c)
			}
		}
	}
	for id := range keys(p, s.inodes) {
		if n := s.inodes[id]; n != nil && n.parent != 0 && !reached[id] {
			p.addf("inode %d: not reachable from the root (a cycle or a detached subtree)", id)
		}
	}
}

// checkVolumes: each volume names a file outside the tree (parent 0),
// called by the volume's name, with a valid volume size.
func checkVolumes(s *State, p *problems) {
	seen := map[uint64]string{}
	for name := range keys(p, s.volumes) {
		id := s.volumes[name]
		n := s.inodes[id]
		switch {
		case n == nil:
			p.addf("volume %q: inode %d does not exist", name, id)
		case seen[id] != "":
			p.addf("volume %q: inode %d is volume %q too", name, id, seen[id])
		case n.dir || n.parent != 0 || n.name != name || n.orphan || n.symlink || n.special != 0:
			p.addf("volume %q: inode %d is not a nameless regular file called %q", name, id, name)
		default:
			if err := checkName(name); err != nil {
				p.addf("volume %q: %v", name, err)
			}
			if err := CheckVolumeSize(n.size); err != nil {
				p.addf("volume %q: %v", name, err)
			}
			if a := n.att; a != nil {
				base := s.inodes[s.volumes[a.Of]]
				switch {
				case a.empty():
					p.addf("volume %q: empty attachment record", name)
				case a.Owner != "" && a.Writer == "":
					p.addf("volume %q: a writer owner without a session", name)
				case n.ro:
					p.addf("volume %q: a snapshot with an attachment", name)
				case a.Of != "" && (base == nil || base.att != nil && base.att.Of != "" || !strings.HasPrefix(name, a.Of+VolumeOverlaySep)):
					p.addf("volume %q: an overlay of %q, which is not a volume's name", name, a.Of)
				case a.Of != "" && a.Lease <= 0:
					p.addf("volume %q: an overlay with lease %d", name, a.Lease)
				}
			}
		}
		seen[id] = name
	}
}

// checkMounts: mount sessions hold existing files, the derived holder
// counts match them, and every orphan is a nameless file some session
// holds (so it is deleted when the last one lets go, never leaked).
func checkMounts(s *State, p *problems) {
	held := map[uint64]int{}
	for sid := range keys(p, s.mounts) {
		m := s.mounts[sid]
		if m == nil || sid == 0 || m.ttl <= 0 {
			p.addf("mount session %d: missing, id 0 or ttl <= 0", sid)
			continue
		}
		for ino := range keys(p, m.held) {
			if !m.held[ino] {
				p.addf("mount session %d: inode %d recorded as not held", sid, ino)
				continue
			}
			if n := s.inodes[ino]; n == nil || n.dir {
				p.addf("mount session %d: holds inode %d, which is not a file", sid, ino)
			}
			held[ino]++
		}
	}
	for ino := range keys(p, s.holders) {
		if s.holders[ino] != held[ino] {
			p.addf("inode %d: %d holders recorded, held by %d sessions", ino, s.holders[ino], held[ino])
		}
	}
	for ino := range keys(p, held) {
		if _, ok := s.holders[ino]; !ok {
			p.addf("inode %d: held by %d sessions, no holders recorded", ino, held[ino])
		}
	}
	for id := range keys(p, s.inodes) {
		n := s.inodes[id]
		if n == nil || !n.orphan {
			continue
		}
		switch {
		case n.dir || n.parent != 0 || n.name != "" || len(n.links) > 0:
			p.addf("orphan %d: a directory or has a name", id)
		case held[id] == 0:
			p.addf("orphan %d: held by no session (leaked)", id)
		}
	}
}

// checkRequests: the master address book has ids and addresses, at most
// MaxCapabilityKeys capability keys of the right size in ascending order,
// and each
// client session keeps at most MaxSessionResults results, in ascending
// request order above its floor.
func checkRequests(s *State, p *problems) {
	for id := range keys(p, s.ha.masters) {
		if id == "" || s.ha.masters[id] == "" {
			p.addf("master %q: empty id or address", id)
		}
	}
	if len(s.ha.capKeys) > MaxCapabilityKeys {
		p.addf("%d capability keys, more than %d", len(s.ha.capKeys), MaxCapabilityKeys)
	}
	for i, k := range s.ha.capKeys {
		if len(k.Secret) != CapabilityKeySize || (i > 0 && k.ID <= s.ha.capKeys[i-1].ID) {
			p.addf("capability key %d: %d bytes or out of order", k.ID, len(k.Secret))
		}
	}
	for c := range keys(p, s.ha.sessions) {
		ss := s.ha.sessions[c]
		switch {
		case ss == nil || c == 0:
			p.addf("client session %x: missing or client 0", c)
		case len(ss.results) > MaxSessionResults:
			p.addf("client session %x: %d results, more than %d", c, len(ss.results), MaxSessionResults)
		default:
			for i, r := range ss.results {
				if r.Seq <= ss.floor || (i > 0 && r.Seq <= ss.results[i-1].Seq) {
					p.addf("client session %x: results out of order at request %d", c, r.Seq)
					break
				}
			}
		}
	}
}
