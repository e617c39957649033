package meta

import (
	"maps"
	"slices"
	"strings"
)

// Overlays (HoleyCoW on chunk clones; docs/overlays.md) and writer
// sessions.
//
// An overlay NAME of volume VOL is the writable volume "VOL+NAME", a
// clone of VOL as of the attach (AttachOverlay): it sees VOL as it was
// then plus its own writes. The writer of VOL and each overlay's writer
// then write different inodes that share chunks; a first write to a
// shared chunk forks it (ForkChunk), which keeps the old bytes, by local
// clones on the chain, for every other inode naming it: the "stable
// before write" rule of HoleyCoW, made durable with the fork's commit,
// and waiting on no copier.
//
// PromoteOverlay makes the overlay's inode the volume: "VOL" names it
// from then on, the volume's old inode goes with its chunks, which move
// to a new epoch first (so its writer's next write is refused), and the
// overlay's writer session stays: its writer now writes the volume.
//
// A writer session (SetWriter) is a random token naming the one writer
// of a volume or overlay: while one is set, the master signs write
// capabilities for the inode's chunks only to calls naming it. A new
// session replacing another moves every chunk of the inode to a new
// epoch (the old writer's capabilities die with it). How long a session
// lives without renewals is the leader's soft state (internal/master);
// an overlay whose lease lapses is detached (DetachOverlay).

// VolumeOverlaySep separates a volume's name from its overlay's.
const VolumeOverlaySep = "+"

// volAttach is what a volume inode holds of overlays and writers.
type volAttach struct {
	// Of is the volume this inode is an overlay of ("" for a volume).
	Of string `json:",omitempty"`
	// Lease (ns) and Attached (time) of an overlay.
	Lease    int64 `json:",omitempty"`
	Attached int64 `json:",omitempty"`
	// Writer is the writer session ("" when none), and Owner the writer
	// identity that holds it (its processes share it, so one restarted
	// after a crash takes its session back at once).
	Writer string `json:",omitempty"`
	Owner  string `json:",omitempty"`
}

func (a *volAttach) empty() bool { return a == nil || *a == volAttach{} }

// AttachOverlay makes overlay Name of Volume: writable volume
// Volume+Name, a copy of Volume now, detached when no writer renews it
// for Lease ns. With Replace, an overlay of that name is detached first,
// in the same command: a copier's restart (HoleyCoW's proactive
// recovery), which returns the old overlay's own space.
type AttachOverlay struct {
	Volume  string
	Name    string
	Lease   int64
	Replace bool `json:",omitempty"`
	Time    int64
}

// DetachOverlay removes overlay Name of Volume (its chunks are released).
type DetachOverlay struct {
	Volume string
	Name   string
	Time   int64
}

// PromoteOverlay makes overlay Name's inode volume Volume (see above).
type PromoteOverlay struct {
	Volume string
	Name   string
	Time   int64
}

// SetWriter makes Session the writer session of volume (or overlay)
// Volume; Session "" clears it. When Prev is set, the command applies
// only while the current session is Prev (a release by its holder).
type SetWriter struct {
	Volume  string
	Session string
	Owner   string `json:",omitempty"`
	Prev    string `json:",omitempty"`
	Time    int64
}

func (AttachOverlay) commandType() string  { return "ovattach" }
func (DetachOverlay) commandType() string  { return "ovdetach" }
func (PromoteOverlay) commandType() string { return "ovpromote" }
func (SetWriter) commandType() string      { return "setwriter" }

func decodeOverlay(typ string, raw []byte) (c Command, ok bool, err error) {
	switch typ {
	case "ovattach":
		c, err = decodeAs[AttachOverlay](raw)
	case "ovdetach":
		c, err = decodeAs[DetachOverlay](raw)
	case "ovpromote":
		c, err = decodeAs[PromoteOverlay](raw)
	case "setwriter":
		c, err = decodeAs[SetWriter](raw)
	default:
		return nil, false, nil
	}
	return c, true, err
}

func (s *State) applyOverlay(c Command) (Result, bool) {
	switch c := c.(type) {
	case AttachOverlay:
		return s.attachOverlay(c), true
	case DetachOverlay:
		return s.detachOverlay(c), true
	case PromoteOverlay:
		return s.promoteOverlay(c), true
	case SetWriter:
		return s.setWriter(c), true
	}
	return Result{}, false
}

// VolumeOverlayName is the volume name of overlay name of volume vol.
func VolumeOverlayName(vol, name string) string { return vol + VolumeOverlaySep + name }

// checkVolumeName refuses the separators of snapshots and overlays in a
// new volume's own name.
func checkVolumeName(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if strings.ContainsAny(name, VolumeSnapshotSep+VolumeOverlaySep) {
		return errorf(ErrInvalid, "volume name %q contains %q or %q", name, VolumeSnapshotSep, VolumeOverlaySep)
	}
	return nil
}

// baseVolume is volume name, which must be a writable volume that is
// neither a snapshot nor an overlay.
func (s *State) baseVolume(name string) (*inode, error) {
	v, err := s.volume(name)
	if err != nil {
		return nil, err
	}
	if v.ro {
		return nil, errorf(ErrReadOnly, "volume %q is a snapshot", name)
	}
	if v.att != nil && v.att.Of != "" {
		return nil, errorf(ErrInvalid, "volume %q is an overlay of %q", name, v.att.Of)
	}
	return v, nil
}

func (s *State) overlay(vol, name string) (*inode, error) {
	key := VolumeOverlayName(vol, name)
	n, err := s.volume(key)
	if err != nil {
		return nil, errorf(ErrNotFound, "overlay %q of volume %q", name, vol)
	}
	if n.att == nil || n.att.Of != vol {
		return nil, errorf(ErrInvalid, "volume %q is not an overlay of %q", key, vol)
	}
	return n, nil
}

func (s *State) attachOverlay(c AttachOverlay) Result {
	if err := checkVolumeName(c.Name); err != nil {
		return fail(err)
	}
	if c.Lease <= 0 {
		return fail(errorf(ErrInvalid, "overlay lease %d ns is not positive", c.Lease))
	}
	v, err := s.baseVolume(c.Volume)
	if err != nil {
		return fail(err)
	}
	key := VolumeOverlayName(c.Volume, c.Name)
	var fenced []ChunkRef
	if _, ok := s.volumes[key]; ok {
		if !c.Replace {
			return fail(errorf(ErrExists, "overlay %q of volume %q", c.Name, c.Volume))
		}
		r := s.detachOverlay(DetachOverlay{Volume: c.Volume, Name: c.Name, Time: c.Time})
		if r.Err != nil {
			return r
		}
		fenced = r.Fenced
	}
	cp := s.newCopier(false)
	n := cp.copyInode(v, nil, key)
	n.mtime = c.Time
	n.att = &volAttach{Of: c.Volume, Lease: c.Lease, Attached: c.Time}
	s.volumes[key] = n.id
	r := cp.result(s.volumeInfo(n))
	r.Fenced = append(fenced, r.Fenced...)
	return r
}

func (s *State) detachOverlay(c DetachOverlay) Result {
	n, err := s.overlay(c.Volume, c.Name)
	if err != nil {
		return fail(err)
	}
	if err := s.noSnapshots(n); err != nil {
		return fail(err)
	}
	return Result{Fenced: s.dropVolume(n)}
}

// noSnapshots refuses to drop overlay n while it has snapshots.
func (s *State) noSnapshots(n *inode) error {
	if snaps, _ := s.VolumeSnapshots(n.name); len(snaps) > 0 {
		return errorf(ErrNotEmpty, "overlay %q has %d snapshots (catena volume snapshot rm)", n.name, len(snaps))
	}
	return nil
}

// dropVolume deletes volume n and releases its chunks, which move to a
// new epoch first: its writer's next write is refused, not landed in a
// chunk about to be deleted. It returns those chunks.
func (s *State) dropVolume(n *inode) []ChunkRef {
	fenced := s.fenceAll(n)
	s.dropChunks(n, 0)
	delete(s.inodes, n.id)
	delete(s.volumes, n.name)
	return fenced
}

// fenceAll moves every chunk of n to a new epoch and returns them.
func (s *State) fenceAll(n *inode) []ChunkRef {
	var out []ChunkRef
	for _, idx := range slices.Sorted(maps.Keys(n.chunks)) {
		ch := s.chunks[n.chunks[idx]]
		ch.Epoch++
		out = append(out, chunkRef(0, ch))
	}
	return out
}

func (s *State) promoteOverlay(c PromoteOverlay) Result {
	ov, err := s.overlay(c.Volume, c.Name)
	if err != nil {
		return fail(err)
	}
	v, err := s.baseVolume(c.Volume)
	if err != nil {
		return fail(err)
	}
	if err := s.noSnapshots(ov); err != nil {
		return fail(err)
	}
	fenced := s.dropVolume(v)
	delete(s.volumes, ov.name)
	s.volumes[c.Volume] = ov.id
	ov.name, ov.mtime = c.Volume, c.Time
	ov.att.Of, ov.att.Lease, ov.att.Attached = "", 0, 0
	if ov.att.empty() {
		ov.att = nil
	}
	return Result{Info: s.volumeInfo(ov), Fenced: fenced}
}

func (s *State) setWriter(c SetWriter) Result {
	n, err := s.volume(c.Volume)
	if err != nil {
		return fail(err)
	}
	if n.ro {
		return fail(errorf(ErrReadOnly, "volume %q is a snapshot", c.Volume))
	}
	cur := ""
	if n.att != nil {
		cur = n.att.Writer
	}
	if c.Prev != "" && cur != c.Prev {
		return fail(errorf(ErrEpochMismatch, "volume %q: writer session changed", c.Volume))
	}
	if cur == c.Session && c.Session != "" {
		return Result{Info: s.volumeInfo(n)}
	}
	var fenced []ChunkRef
	if cur != "" && c.Session != "" {
		fenced = s.fenceAll(n)
	}
	if n.att == nil {
		n.att = &volAttach{}
	}
	n.att.Writer, n.att.Owner = c.Session, c.Owner
	if c.Session == "" {
		n.att.Owner = ""
	}
	if n.att.empty() {
		n.att = nil
	}
	return Result{Info: s.volumeInfo(n), Fenced: fenced}
}

// Overlays returns the overlays of volume vol (their volume info, with
// OverlayOf set), sorted by name.
func (s *State) Overlays(vol string) ([]FileInfo, error) {
	if _, err := s.volume(vol); err != nil {
		return nil, err
	}
	var out []FileInfo
	prefix := vol + VolumeOverlaySep
	for name, id := range s.volumes {
		n := s.inodes[id]
		if strings.HasPrefix(name, prefix) && n.att != nil && n.att.Of == vol {
			out = append(out, s.volumeInfo(n))
		}
	}
	slices.SortFunc(out, func(a, b FileInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// VolumeOwner is the writer identity holding inode ino's session ("":
// none).
func (s *State) VolumeOwner(ino uint64) string {
	if n := s.inodes[ino]; n != nil && n.att != nil {
		return n.att.Owner
	}
	return ""
}

// VolumeWriter is a volume inode's writer session, and for an overlay
// its lease (ns) and attach time; ok is false for an inode that is not
// a volume.
func (s *State) VolumeWriter(ino uint64) (session string, overlayOf string, lease, attached int64, ok bool) {
	n := s.inodes[ino]
	if n == nil || n.parent != 0 || n.orphan || n.dir || s.volumes[n.name] != ino {
		return "", "", 0, 0, false
	}
	if n.att == nil {
		return "", "", 0, 0, true
	}
	return n.att.Writer, n.att.Of, n.att.Lease, n.att.Attached, true
}

// AttachedVolumes returns the inodes of the volumes and overlays that
// have a writer session or are overlays (the leader tracks their leases).
func (s *State) AttachedVolumes() []uint64 {
	var out []uint64
	for _, id := range s.volumes {
		if n := s.inodes[id]; n != nil && n.att != nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
