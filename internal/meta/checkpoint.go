package meta

import (
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
	RO          bool        `json:",omitempty"` // in a snapshot (snapshot.go)
	Hidden      bool        `json:",omitempty"` // a directory's snapshot directory
	Vol         *volAttach  `json:",omitempty"` // a volume's overlay and writer (overlay.go)
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
	if ha := s.ckptHA(); ha.Masters != nil || ha.Sessions != nil || ha.CapKeys != nil {
		snap.HA = &ha
	}
	for _, id := range slices.Sorted(maps.Keys(s.inodes)) {
		n := s.inodes[id]
		si := ckptInode{ID: n.id, Dir: n.dir, Parent: n.parent, Name: n.name, Mode: n.mode,
			MTime: n.mtime, Size: n.size, Replication: n.replication, ChunkSize: n.chunkSize, Orphan: n.orphan,
			RO: n.ro, Hidden: n.hidden}
		if n.att != nil {
			a := *n.att
			si.Vol = &a
		}
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

// RestoreCheckpoint decodes a checkpoint and runs Check on the state it
// describes. It wraps ErrCorrupt (and ErrInconsistent when a check fails).
func RestoreCheckpoint(b []byte) (*State, error) {
	var snap checkpoint
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, errorf(ErrCorrupt, "checkpoint: %v", err)
	}
	if snap.V != checkpointVersion {
		return nil, errorf(ErrCorrupt, "checkpoint version %d", snap.V)
	}
	s, err := build(&snap)
	if err == nil {
		err = s.Check()
	}
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrCorrupt, err)
	}
	return s, nil
}

// build makes the state a checkpoint describes, faithfully: it refuses
// only what a State cannot hold (two entries of one id, one chunk index
// twice in a file) and leaves every invariant to Check, so a bad
// checkpoint is judged by the same checks as a live state. Derived fields
// are rebuilt: directory entries from the inodes' names (the first claim
// of a name wins; Check reports the others), holder counts from the
// sessions.
func build(snap *checkpoint) (*State, error) {
	s := &State{
		inodes: map[uint64]*inode{}, chunks: map[uint64]*Chunk{}, servers: map[ServerID]*Server{},
		volumes: map[string]uint64{}, nextInode: snap.NextInode, nextHandle: snap.NextHandle,
	}
	maps.Copy(s.volumes, snap.Volumes)
	for _, sv := range snap.Servers {
		if s.servers[sv.ID] != nil {
			return nil, fmt.Errorf("server %d twice", sv.ID)
		}
		s.servers[sv.ID] = &Server{ID: sv.ID, Addr: sv.Addr, Labels: maps.Clone(sv.Labels), Name: sv.Name, CertName: sv.CertName, Draining: sv.Draining}
	}
	for _, ch := range snap.Chunks {
		if s.chunks[ch.Handle] != nil {
			return nil, fmt.Errorf("chunk %d twice", ch.Handle)
		}
		c := ch.clone()
		s.chunks[ch.Handle] = &c
	}
	for _, si := range snap.Inodes {
		if s.inodes[si.ID] != nil {
			return nil, fmt.Errorf("inode %d twice", si.ID)
		}
		n := &inode{id: si.ID, dir: si.Dir, parent: si.Parent, name: si.Name, mode: si.Mode,
			mtime: si.MTime, size: si.Size, replication: si.Replication, chunkSize: si.ChunkSize, orphan: si.Orphan,
			ro: si.RO, hidden: si.Hidden}
		if si.Vol != nil {
			a := *si.Vol
			n.att = &a
		}
		n.posixAttrs = si.attrs()
		if n.dir {
			n.children = map[string]uint64{}
		}
		if !n.dir || len(si.Chunks) > 0 {
			n.chunks = map[int64]uint64{}
		}
		for _, p := range si.Chunks {
			idx := int64(p[0])
			if _, dup := n.chunks[idx]; dup {
				return nil, fmt.Errorf("inode %d: chunk index %d twice", si.ID, idx)
			}
			n.chunks[idx] = p[1]
		}
		s.inodes[n.id] = n
	}
	fillChunkSizes(s)
	if err := s.restoreMounts(snap.Mounts); err != nil {
		return nil, err
	}
	if snap.HA != nil {
		var err error
		if s.ha, err = restoreHA(*snap.HA); err != nil {
			return nil, err
		}
	}
	s.linkNames()
	return s, nil
}

// linkNames makes the directory entries of a restored state from the
// inodes' names, in a fixed order (primary names, then extra links, by
// inode) so that the same checkpoint always gives the same state. A name
// in a parent that is not a directory, or taken already, is left out for
// Check to report.
func (s *State) linkNames() {
	ids := slices.Sorted(maps.Keys(s.inodes))
	add := func(id uint64, l link) {
		if d := s.inodes[l.Parent]; d != nil && d.dir {
			if _, taken := d.children[l.Name]; !taken {
				d.children[l.Name] = id
			}
		}
	}
	for _, id := range ids {
		if n := s.inodes[id]; n.hidden {
			if d := s.inodes[n.parent]; d != nil && d.dir && d.snapdir == 0 {
				d.snapdir = id
			}
		} else if n.parent != 0 {
			add(id, link{Parent: n.parent, Name: n.name})
		}
	}
	for _, id := range ids {
		if n := s.inodes[id]; n.parent != 0 {
			for _, l := range n.links {
				add(id, l)
			}
		}
	}
}
