package meta

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
)

// Lookup returns the info of the file or directory at path p.
func (s *State) Lookup(p string) (FileInfo, error) {
	n, err := s.lookup(p)
	if err != nil {
		return FileInfo{}, err
	}
	return s.info(n), nil
}

// Stat returns the info of an inode.
func (s *State) Stat(ino uint64) (FileInfo, error) {
	n, ok := s.inodes[ino]
	if !ok {
		return FileInfo{}, errorf(ErrNotFound, "inode %d", ino)
	}
	return s.info(n), nil
}

// List returns the entries of the directory at p, sorted by name: those
// after after (all when ""), at most limit (<= 0: all), and whether more
// follow.
func (s *State) List(p string, after string, limit int) (_ []FileInfo, more bool, _ error) {
	n, err := s.lookup(p)
	if err != nil {
		return nil, false, err
	}
	if !n.dir {
		return nil, false, errorf(ErrNotDir, "%s", p)
	}
	names, more := page(n.children, after, limit)
	out := make([]FileInfo, 0, len(names))
	for _, name := range names {
		fi := s.info(s.inodes[n.children[name]])
		// An extra name of a hard-linked file is listed under that
		// name, not under its primary one elsewhere.
		fi.Name, fi.Path = name, path.Join(p, name)
		out = append(out, fi)
	}
	return out, more, nil
}

// page returns the names of children after after (all when ""), sorted,
// at most limit of them (limit <= 0: all), and whether more follow.
func page(children map[string]uint64, after string, limit int) ([]string, bool) {
	names := slices.Sorted(maps.Keys(children))
	if after != "" {
		i, found := slices.BinarySearch(names, after)
		if found {
			i++
		}
		names = names[i:]
	}
	if limit > 0 && len(names) > limit {
		return names[:limit], true
	}
	return names, false
}

// FileChunks returns the allocated chunks of a file with index in
// [first, first+count) (count <= 0: all from first), ascending by index.
func (s *State) FileChunks(ino uint64, first, count int64) (FileInfo, []ChunkRef, error) {
	n, err := s.file(ino)
	if err != nil {
		return FileInfo{}, nil, err
	}
	var out []ChunkRef
	for idx, h := range n.chunks {
		if idx < first || (count > 0 && idx-first >= count) {
			continue
		}
		out = append(out, s.slotRef(n, idx, h))
	}
	slices.SortFunc(out, func(a, b ChunkRef) int { return cmp.Compare(a.Index, b.Index) })
	return s.info(n), out, nil
}

// FileChunk returns the chunk at index of a file; ok is false for a hole.
func (s *State) FileChunk(ino uint64, index int64) (ref ChunkRef, ok bool, err error) {
	n, err := s.file(ino)
	if err != nil {
		return ChunkRef{}, false, err
	}
	h, ok := n.chunks[index]
	if !ok {
		return ChunkRef{}, false, nil
	}
	return s.slotRef(n, index, h), true, nil
}

// slotRef is what slot (n, index) naming chunk h gives a client: the
// chunk, marked Shared when a write must fork it first, or for a fork
// not done the origin (with Fork set), which holds the same data.
func (s *State) slotRef(n *inode, index int64, h uint64) ChunkRef {
	ch := s.chunks[h]
	if ch.Origin != 0 {
		if o := s.chunks[ch.Origin]; o != nil {
			ref := chunkRef(index, o)
			ref.Shared, ref.Fork = true, h
			return ref
		}
	}
	ref := chunkRef(index, ch)
	ref.Shared = ref.Shared || n.ro
	return ref
}

// Chunk returns the chunk-map entry of a handle.
func (s *State) Chunk(handle uint64) (Chunk, bool) {
	ch, ok := s.chunks[handle]
	if !ok {
		return Chunk{}, false
	}
	return ch.clone(), true
}

// Chunks returns every chunk of the map, ascending by handle.
func (s *State) Chunks() []Chunk {
	out := make([]Chunk, 0, len(s.chunks))
	for _, h := range slices.Sorted(maps.Keys(s.chunks)) {
		out = append(out, s.chunks[h].clone())
	}
	return out
}

// HasChunk reports whether handle is in the chunk map.
func (s *State) HasChunk(handle uint64) bool {
	_, ok := s.chunks[handle]
	return ok
}

// NextHandle is the handle the next allocation will get; every handle ever
// allocated is below it.
func (s *State) NextHandle() uint64 { return s.nextHandle }

// Server returns a registered chunkserver.
func (s *State) Server(id ServerID) (Server, bool) {
	sv, ok := s.servers[id]
	if !ok {
		return Server{}, false
	}
	return sv.clone(), true
}

// Servers returns the registry, ascending by id.
func (s *State) Servers() []Server {
	out := make([]Server, 0, len(s.servers))
	for _, id := range slices.Sorted(maps.Keys(s.servers)) {
		out = append(out, s.servers[id].clone())
	}
	return out
}

// Counts returns the number of files and of directories (the root not
// counted).
func (s *State) Counts() (files, dirs uint64) {
	for _, n := range s.inodes {
		if n.dir {
			dirs++
		} else {
			files++
		}
	}
	return files, dirs - 1
}

// PathsOfChunks names the files holding each handle in want: a file by
// its path, a volume as "volume NAME", an unlinked file still open as
// "unlinked file, inode N". It scans every inode: for status reports of a
// few damaged chunks, not for the data path.
func (s *State) PathsOfChunks(want map[uint64]bool) map[uint64][]string {
	out := map[uint64][]string{}
	if len(want) == 0 {
		return out
	}
	ids := make([]uint64, 0, len(s.inodes))
	for id := range s.inodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		n := s.inodes[id]
		for _, h := range n.chunks {
			if want[h] {
				p := s.pathOf(n)
				switch {
				case n.orphan:
					p = fmt.Sprintf("unlinked file, inode %d", n.id)
				case n.parent == 0 && n.id != RootInode:
					p = "volume " + n.name
				}
				if !slices.Contains(out[h], p) {
					out[h] = append(out[h], p)
				}
			}
		}
	}
	return out
}
