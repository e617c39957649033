package meta

import (
	"maps"
	"slices"
	"strings"
)

// RootInode is the inode number of "/".
const RootInode uint64 = 1

// Defaults and bounds of per-file parameters.
const (
	DefaultReplication = 3
	MaxReplication     = 16
	DefaultChunkSize   = 64 << 20
	MinChunkSize       = 1 << 20
	MaxChunkSize       = 1 << 30
)

// ServerID identifies a chunkserver; chosen by the chunkserver, never 0.
type ServerID = uint64

// inode is a file or directory. Directories use children, files chunks.
type inode struct {
	id          uint64
	dir         bool
	parent      uint64 // 0 for the root
	name        string // "" for the root
	mode        uint32
	mtime       int64
	size        int64
	replication int
	chunkSize   int64
	chunks      map[int64]uint64  // file: chunk index -> handle (holes allowed)
	children    map[string]uint64 // directory: name -> inode
	posixAttrs                    // owner, times, symlink target, xattrs, extra links (posix.go)
	orphan      bool              // a nameless file that a mount holds open (orphan.go)
	ro          bool              // in a snapshot: nothing changes it (snapshot.go)
	hidden      bool              // a directory's SnapshotDirName: not one of its parent's entries
	snapdir     uint64            // directory: its hidden snapshot directory (0: none)
	att         *volAttach        // volume: its overlay and writer session (overlay.go)
}

// Chunk is an entry of the chunk map.
type Chunk struct {
	Handle uint64
	Epoch  uint64
	Chain  []ServerID // head first, tail last
	// Refs counts the (file, index) slots naming this chunk.
	Refs int
	// Replication is the replication factor the chunk should have (its
	// file's at allocation time).
	Replication int
	// ChunkSize is its file's chunk size, which chain members need to
	// create a replica (0 in checkpoints older than the field: Restore fills
	// it from the file).
	ChunkSize int64 `json:",omitempty"`
	// Syncing lists the chain members that joined through a copy and are
	// not yet known to have caught up with their predecessor: they may
	// lack acknowledged updates, so they are no source of the chunk's
	// data and never its head (SetChain, CaughtUp).
	Syncing []ServerID `json:",omitempty"`
	// Origin: a fork not done yet (snapshot.go): the shared chunk its
	// members clone; it holds one reference to it until ForkDone.
	Origin uint64 `json:",omitempty"`
}

func (c *Chunk) clone() Chunk {
	d := *c
	d.Chain = slices.Clone(c.Chain)
	d.Syncing = slices.Clone(c.Syncing)
	return d
}

// IsSyncing reports whether member id may lack acknowledged updates.
func (c *Chunk) IsSyncing(id ServerID) bool { return slices.Contains(c.Syncing, id) }

// Server is a registered chunkserver.
type Server struct {
	ID     ServerID
	Addr   string
	Labels map[string]string
	// Name is the server's human name (catena chunkserver --name),
	// unique among the registered servers ("" for servers that predate
	// names).
	Name string `json:",omitempty"`
	// CertName is the name in the certificate the server first
	// registered with over mutual TLS ("" without TLS): its id is bound
	// to it, and a caller with another certificate may not speak for it.
	CertName string `json:",omitempty"`
	// Draining: the server is leaving (catena admin chunkserver drain):
	// no new replica is placed on it, and each chain it is in gains a
	// member elsewhere before it leaves that chain (SetDraining).
	Draining bool `json:",omitempty"`
}

func (s *Server) clone() Server {
	d := *s
	d.Labels = maps.Clone(s.Labels)
	return d
}

// FileInfo describes a file or directory.
type FileInfo struct {
	Inode       uint64
	Name        string // last element; "" for the root
	Path        string
	IsDir       bool
	Mode        uint32
	Size        int64
	MTime       int64  // unix nanoseconds
	Replication int    // files only
	ChunkSize   int64  // files only
	ReadOnly    bool   // in a snapshot, or a volume snapshot (snapshot.go)
	OverlayOf   string `json:",omitempty"` // volume: an overlay of this volume (overlay.go)
	PosixInfo          // POSIX attributes (posix.go)
}

// ChunkRef is one allocated chunk of a file.
type ChunkRef struct {
	Index  int64
	Handle uint64
	Epoch  uint64
	Chain  []ServerID
	// Shared: more than one slot names the chunk, or its file is
	// read-only: nobody writes it (a write forks it first).
	Shared bool `json:",omitempty"`
	// Fork: the slot names a fork not done yet (this handle); Handle is
	// its origin, which readers use meanwhile.
	Fork uint64 `json:",omitempty"`
}

// State is the whole metadata state. The zero value is not usable; use New.
type State struct {
	inodes     map[uint64]*inode
	chunks     map[uint64]*Chunk
	servers    map[ServerID]*Server
	nextInode  uint64
	nextHandle uint64
	volumes    map[string]uint64        // volume name -> inode (volume.go)
	ha         haState                  // master addresses, request sessions (ha.go)
	mounts     map[uint64]*mountSession // mount sessions and what they hold open (orphan.go)
	holders    map[uint64]int           // inode -> sessions holding it open (derived, orphan.go)
}

// New returns a state holding only the root directory (mode 0755, mtime 0).
func New() *State {
	s := &State{
		inodes:     map[uint64]*inode{},
		chunks:     map[uint64]*Chunk{},
		servers:    map[ServerID]*Server{},
		volumes:    map[string]uint64{},
		nextInode:  RootInode + 1,
		nextHandle: 1,
	}
	s.inodes[RootInode] = &inode{id: RootInode, dir: true, mode: 0o755, children: map[string]uint64{}}
	return s
}

// pathOf rebuilds the path of an inode from its parent links.
func (s *State) pathOf(n *inode) string {
	if n.id == RootInode {
		return "/"
	}
	var elems []string
	for n != nil && n.id != RootInode {
		elems = append(elems, n.name)
		n = s.inodes[n.parent]
	}
	slices.Reverse(elems)
	return "/" + strings.Join(elems, "/")
}

func (s *State) info(n *inode) FileInfo {
	fi := FileInfo{
		Inode: n.id, Name: n.name, Path: s.pathOf(n), IsDir: n.dir,
		Mode: n.mode, Size: n.size, MTime: n.mtime, ReadOnly: n.ro,
	}
	if !n.dir {
		fi.Replication = n.replication
		fi.ChunkSize = n.chunkSize
	}
	fi.PosixInfo = s.posixInfo(n)
	return fi
}

// isAncestor reports whether a is d or one of d's ancestors.
func (s *State) isAncestor(a, d *inode) bool {
	for n := d; n != nil; n = s.inodes[n.parent] {
		if n.id == a.id {
			return true
		}
		if n.id == RootInode {
			break
		}
	}
	return false
}
