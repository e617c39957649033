package meta

import (
	"maps"
	"slices"
)

// Volumes are block devices of fixed size (served over NBD). Each is an
// inode like a file (chunk map, replication, chunk size, size) but lives in
// its own namespace, name -> inode, outside the directory tree: its inode
// has parent 0 and its name is the volume name, so it is never listed nor
// reachable by path. Chunk-level commands (AllocateChunk, GetChunks) work
// on a volume's inode unchanged.

// VolumeBlockSize is the granularity of a volume's size.
const VolumeBlockSize = 512

// MaxVolumeSize bounds a volume (NBD sizes are 63-bit; keep chunk indexes small).
const MaxVolumeSize = 1 << 50

// MaxFileSize bounds a file's size and the end of every write to it (1
// PiB). The master refuses a larger size or a chunk past it before it
// proposes anything (FILE_TOO_BIG); Apply does not check it, so a log
// written before the bound replays as it did.
const MaxFileSize = 1 << 50

// CreateVolume creates a sparse volume of Size bytes. Replication 0 and
// ChunkSize 0 mean the defaults.
type CreateVolume struct {
	Name        string
	Size        int64
	Replication int
	ChunkSize   int64
	Time        int64
}

// RemoveVolume deletes a volume; its chunks are released.
type RemoveVolume struct {
	Name string
	Time int64
}

// ResizeVolume grows a volume to Size; shrinking is refused.
type ResizeVolume struct {
	Name string
	Size int64
	Time int64
}

func (CreateVolume) commandType() string { return "volcreate" }
func (RemoveVolume) commandType() string { return "volremove" }
func (ResizeVolume) commandType() string { return "volresize" }

// decodeVolume decodes the volume commands; ok is false for other types.
func decodeVolume(typ string, raw []byte) (c Command, ok bool, err error) {
	switch typ {
	case "volcreate":
		c, err = decodeAs[CreateVolume](raw)
	case "volremove":
		c, err = decodeAs[RemoveVolume](raw)
	case "volresize":
		c, err = decodeAs[ResizeVolume](raw)
	default:
		return nil, false, nil
	}
	return c, true, err
}

// CheckVolumeSize validates a volume size.
func CheckVolumeSize(size int64) error {
	if size <= 0 || size > MaxVolumeSize || size%VolumeBlockSize != 0 {
		return errorf(ErrInvalid, "volume size %d is not a positive multiple of %d up to %d", size, VolumeBlockSize, int64(MaxVolumeSize))
	}
	return nil
}

func (s *State) volumeInfo(n *inode) FileInfo {
	fi := FileInfo{Inode: n.id, Name: n.name, Mode: n.mode, Size: n.size, MTime: n.mtime,
		Replication: n.replication, ChunkSize: n.chunkSize, ReadOnly: n.ro}
	if n.att != nil {
		fi.OverlayOf = n.att.Of
	}
	return fi
}

func (s *State) volume(name string) (*inode, error) {
	id, ok := s.volumes[name]
	if !ok {
		return nil, errorf(ErrNotFound, "volume %q", name)
	}
	return s.inodes[id], nil
}

func (s *State) createVolume(c CreateVolume) Result {
	if err := checkVolumeName(c.Name); err != nil {
		return fail(err)
	}
	if err := CheckVolumeSize(c.Size); err != nil {
		return fail(err)
	}
	repl, cs, err := CheckFileParams(c.Replication, c.ChunkSize)
	if err != nil {
		return fail(err)
	}
	if _, ok := s.volumes[c.Name]; ok {
		return fail(errorf(ErrExists, "volume %q", c.Name))
	}
	if s.volumes == nil {
		s.volumes = map[string]uint64{}
	}
	n := &inode{id: s.nextInode, name: c.Name, mode: 0o600, mtime: c.Time, size: c.Size,
		replication: repl, chunkSize: cs, chunks: map[int64]uint64{}}
	s.nextInode++
	s.inodes[n.id] = n
	s.volumes[c.Name] = n.id
	return Result{Info: s.volumeInfo(n)}
}

func (s *State) removeVolume(c RemoveVolume) Result {
	n, err := s.volume(c.Name)
	if err != nil {
		return fail(err)
	}
	if snaps, _ := s.VolumeSnapshots(c.Name); len(snaps) > 0 {
		return fail(errorf(ErrNotEmpty, "volume %q has %d snapshots (catena volume snapshot rm)", c.Name, len(snaps)))
	}
	if ovs, _ := s.Overlays(c.Name); len(ovs) > 0 {
		return fail(errorf(ErrNotEmpty, "volume %q has %d overlays (catena overlay detach)", c.Name, len(ovs)))
	}
	s.dropChunks(n, 0)
	delete(s.inodes, n.id)
	delete(s.volumes, c.Name)
	return Result{}
}

func (s *State) resizeVolume(c ResizeVolume) Result {
	n, err := s.volume(c.Name)
	if err != nil {
		return fail(err)
	}
	if err := CheckVolumeSize(c.Size); err != nil {
		return fail(err)
	}
	if c.Size < n.size {
		return fail(errorf(ErrInvalid, "volume %q: shrinking from %d to %d", c.Name, n.size, c.Size))
	}
	n.size, n.mtime = c.Size, c.Time
	return Result{Info: s.volumeInfo(n)}
}

// Volume returns the info of a volume (Path is empty).
func (s *State) Volume(name string) (FileInfo, error) {
	n, err := s.volume(name)
	if err != nil {
		return FileInfo{}, err
	}
	return s.volumeInfo(n), nil
}

// Volumes returns every volume but the snapshots, sorted by name.
func (s *State) Volumes() []FileInfo {
	out := make([]FileInfo, 0, len(s.volumes))
	for _, name := range slices.Sorted(maps.Keys(s.volumes)) {
		if n := s.inodes[s.volumes[name]]; !n.ro { // snapshots: VolumeSnapshots
			out = append(out, s.volumeInfo(n))
		}
	}
	return out
}

// IsVolume reports whether ino is a volume's inode.
func (s *State) IsVolume(ino uint64) bool {
	n, ok := s.inodes[ino]
	return ok && !n.dir && n.parent == 0 && ino != RootInode && s.volumes[n.name] == ino
}
