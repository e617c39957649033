package meta

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// checkpointVersion is the version of the checkpoint encoding.
const checkpointVersion = 1

type ckptInode struct {
	ID          uint64
	Dir         bool        `json:",omitempty"`
	Parent      uint64      `json:",omitempty"`
	Name        string      `json:",omitempty"`
	Mode        uint32      `json:",omitempty"`
	MTime       int64       `json:",omitempty"`
	Size        int64       `json:",omitempty"`
	Replication int         `json:",omitempty"`
	ChunkSize   int64       `json:",omitempty"`
	Chunks      [][2]uint64 `json:",omitempty"` // (index, handle) pairs
	Orphan      bool        `json:",omitempty"` // a nameless file held open (orphan.go)
	ckptPosix               // POSIX attributes (posix.go)
}

type checkpoint struct {
	V          int
	NextInode  uint64
	NextHandle uint64
	Inodes     []ckptInode
	Chunks     []Chunk
	Servers    []Server
	Volumes    map[string]uint64 `json:",omitempty"` // volume name -> inode
	HA         *ckptHA           `json:",omitempty"` // master addresses, sessions (ha.go)
	Mounts     []ckptMount       `json:",omitempty"` // mount sessions (orphan.go)
}

// Checkpoint encodes the whole state (the master's Raft snapshots; "snapshot"
// means the user feature). The encoding is deterministic.
func (s *State) Checkpoint() ([]byte, error) {
	snap := checkpoint{V: checkpointVersion, NextInode: s.nextInode, NextHandle: s.nextHandle,
		Chunks: s.Chunks(), Servers: s.Servers(), Volumes: s.volumes, Mounts: s.ckptMounts()}
	if ha := s.ckptHA(); ha.Masters != nil || ha.Sessions != nil {
		snap.HA = &ha
	}
	for _, id := range slices.Sorted(maps.Keys(s.inodes)) {
		n := s.inodes[id]
		si := ckptInode{ID: n.id, Dir: n.dir, Parent: n.parent, Name: n.name, Mode: n.mode,
			MTime: n.mtime, Size: n.size, Replication: n.replication, ChunkSize: n.chunkSize, Orphan: n.orphan}
		si.ckptPosix = n.ckptPosix()
		for _, idx := range slices.Sorted(maps.Keys(n.chunks)) {
			si.Chunks = append(si.Chunks, [2]uint64{uint64(idx), n.chunks[idx]})
		}
		snap.Inodes = append(snap.Inodes, si)
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return nil, fmt.Errorf("meta: encode checkpoint: %w", err)
	}
	return b, nil
}

// RestoreCheckpoint decodes a checkpoint and checks every invariant of the package
// doc. It wraps ErrCorrupt.
func RestoreCheckpoint(b []byte) (*State, error) {
	var snap checkpoint
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, errorf(ErrCorrupt, "checkpoint: %v", err)
	}
	if snap.V != checkpointVersion {
		return nil, errorf(ErrCorrupt, "checkpoint version %d", snap.V)
	}
	s, err := build(&snap)
	if err != nil {
		return nil, errorf(ErrCorrupt, "checkpoint: %v", err)
	}
	return s, nil
}

func build(snap *checkpoint) (*State, error) {
	s := &State{
		inodes: map[uint64]*inode{}, chunks: map[uint64]*Chunk{}, servers: map[ServerID]*Server{},
		nextInode: snap.NextInode, nextHandle: snap.NextHandle,
	}
	for _, sv := range snap.Servers {
		if sv.ID == 0 || sv.Addr == "" || s.servers[sv.ID] != nil {
			return nil, fmt.Errorf("bad or duplicate server %d", sv.ID)
		}
		s.servers[sv.ID] = &Server{ID: sv.ID, Addr: sv.Addr, Labels: maps.Clone(sv.Labels)}
	}
	refs := map[uint64]int{}
	for _, ch := range snap.Chunks {
		if ch.Handle == 0 || ch.Handle >= s.nextHandle || s.chunks[ch.Handle] != nil {
			return nil, fmt.Errorf("bad or duplicate chunk handle %d", ch.Handle)
		}
		if ch.Epoch == 0 || ch.Refs <= 0 || ch.Replication < 1 || ch.Replication > MaxReplication || ch.ChunkSize < 0 {
			return nil, fmt.Errorf("chunk %d: bad epoch, refs or replication", ch.Handle)
		}
		if err := s.checkChain(ch.Chain); err != nil {
			return nil, fmt.Errorf("chunk %d: %v", ch.Handle, err)
		}
		c := ch.clone()
		s.chunks[ch.Handle] = &c
	}
	for _, si := range snap.Inodes {
		if si.ID == 0 || si.ID >= s.nextInode || s.inodes[si.ID] != nil {
			return nil, fmt.Errorf("bad or duplicate inode %d", si.ID)
		}
		n := &inode{id: si.ID, dir: si.Dir, parent: si.Parent, name: si.Name, mode: si.Mode,
			mtime: si.MTime, size: si.Size, replication: si.Replication, chunkSize: si.ChunkSize, orphan: si.Orphan}
		n.posixAttrs = si.attrs()
		if si.Size < 0 {
			return nil, fmt.Errorf("inode %d: negative size", si.ID)
		}
		if n.dir {
			if len(si.Chunks) > 0 || si.Size != 0 {
				return nil, fmt.Errorf("directory %d with chunks or size", si.ID)
			}
			n.children = map[string]uint64{}
		} else {
			if r, cs, err := CheckFileParams(si.Replication, si.ChunkSize); err != nil || r != si.Replication || cs != si.ChunkSize {
				return nil, fmt.Errorf("file %d: bad replication or chunk size", si.ID)
			}
			n.chunks = map[int64]uint64{}
			for _, p := range si.Chunks {
				idx, h := int64(p[0]), p[1]
				if idx < 0 || s.chunks[h] == nil {
					return nil, fmt.Errorf("file %d: bad chunk (%d, %d)", si.ID, p[0], h)
				}
				if _, dup := n.chunks[idx]; dup {
					return nil, fmt.Errorf("file %d: chunk index %d twice", si.ID, idx)
				}
				n.chunks[idx] = h
				refs[h]++
			}
		}
		s.inodes[n.id] = n
	}
	fillChunkSizes(s)
	for h, ch := range s.chunks {
		if refs[h] != ch.Refs {
			return nil, fmt.Errorf("chunk %d: refs %d, referenced %d times", h, ch.Refs, refs[h])
		}
	}
	vols, err := s.restoreVolumes(snap.Volumes)
	if err != nil {
		return nil, err
	}
	orphans, err := s.restoreMounts(snap.Mounts)
	if err != nil {
		return nil, err
	}
	if snap.HA != nil {
		if s.ha, err = restoreHA(*snap.HA); err != nil {
			return nil, err
		}
	}
	root, ok := s.inodes[RootInode]
	if !ok || !root.dir || root.parent != 0 || root.name != "" {
		return nil, fmt.Errorf("bad root")
	}
	// Link children in a fixed order so that errors are deterministic.
	ids := slices.SortedFunc(maps.Keys(s.inodes), cmp.Compare[uint64])
	for _, id := range ids {
		n := s.inodes[id]
		if id == RootInode || vols[id] || orphans[id] {
			continue
		}
		p, ok := s.inodes[n.parent]
		if !ok || !p.dir {
			return nil, fmt.Errorf("inode %d: parent %d is not a directory", id, n.parent)
		}
		if err := checkName(n.name); err != nil {
			return nil, fmt.Errorf("inode %d: %v", id, err)
		}
		if _, dup := p.children[n.name]; dup {
			return nil, fmt.Errorf("inode %d: name %q twice in directory %d", id, n.name, p.id)
		}
		p.children[n.name] = id
	}
	if err := s.restorePosix(); err != nil {
		return nil, err
	}
	// Every inode reaches the root: no cycles, no detached subtrees.
	reached := map[uint64]bool{RootInode: true}
	maps.Copy(reached, vols)
	maps.Copy(reached, orphans)
	var walk func(n *inode)
	walk = func(n *inode) {
		for _, c := range n.children {
			if !reached[c] {
				reached[c] = true
				if s.inodes[c].dir {
					walk(s.inodes[c])
				}
			}
		}
	}
	walk(root)
	if len(reached) != len(s.inodes) {
		return nil, fmt.Errorf("%d inodes not reachable from the root", len(s.inodes)-len(reached))
	}
	return s, nil
}
