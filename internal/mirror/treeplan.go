package mirror

import (
	"slices"
	"strings"
	"time"

	"github.com/catena-io/catena/client"
)

// Mirroring a directory tree. A tree's checkpoint N is directory snapshot
// DIR/.snapshot/mirror-N at A. PlanTree compares the trees of checkpoints
// N-1 and N, as A's snapshots hold them, by path, and lists the
// operations that turn B's copy of N-1 (a clone of B's DIR, the stage)
// into N. It is a pure function of the two trees, so a restarted mirror
// computes the same list and resumes after the last operation its record
// says done.
//
// A file's content is planned as a volume's is, per chunk slot (Plan):
// the same handle in both checkpoints is unchanged, a changed handle is
// diffed, a new slot shipped. A file keeps its chunks when renamed, so a
// file at a new path whose chunks an N-1 file shares (a rename, or a
// rename and a write) starts as a clone of that file at B, no data
// shipped, and only its changed slots travel. A file sharing no chunk
// with any N-1 file starts from the file at its path, if any (all its
// chunks written since), else is new: created at B, its blocks that are
// not zeros shipped.

// TreeEntry is one node of a checkpoint's tree at A.
type TreeEntry struct {
	// Path is relative to the tree's root, "/"-separated; "" is the root.
	Path        string
	Type        client.NodeType
	Mode        uint32 // permission bits
	Uid, Gid    uint32
	Size        int64
	Mtime       time.Time
	Target      string // symlinks
	Rdev        uint32 // devices
	Ino         uint64 // at A, in the snapshot
	ChunkSize   int64
	Replication int
	// Chunks: a file's allocated slots.
	Chunks []ChunkRef
}

// TreeOpKind is what a TreeOp does to the stage.
type TreeOpKind int

const (
	// OpRemove removes Path and everything below it.
	OpRemove TreeOpKind = iota
	// OpMkdir makes directory Path.
	OpMkdir
	// OpSymlink makes symlink Path.
	OpSymlink
	// OpMknod makes special file Path (metadata only).
	OpMknod
	// OpFile brings regular file Path to checkpoint N: from Base's
	// content at N-1 (Base == Path: in place; another path: cloned from
	// B's copy of it; "": a new empty file), then its slots planned
	// against Base's.
	OpFile
	// OpAttr sets Path's mode and owner (and a file's modification time).
	OpAttr
)

func (k TreeOpKind) String() string {
	switch k {
	case OpRemove:
		return "remove"
	case OpMkdir:
		return "mkdir"
	case OpSymlink:
		return "symlink"
	case OpMknod:
		return "mknod"
	case OpFile:
		return "file"
	case OpAttr:
		return "attr"
	}
	return "op?"
}

// TreeOp is one step of a tree's checkpoint.
type TreeOp struct {
	Kind TreeOpKind
	Path string
	// Base (OpFile): the N-1 file the content starts from ("" none).
	Base string
	// Cur: Path's entry at N (nil for OpRemove); Prev: Base's entry at
	// N-1 (OpFile with a Base), or Path's (OpAttr).
	Cur, Prev *TreeEntry
}

// PlanTree returns the operations that turn tree prev (checkpoint N-1,
// nil for none: B's copy is empty) into tree cur (checkpoint N): first
// the removals (paths gone, of another type, or a file whose content
// comes from elsewhere), parents before children and nothing below a
// path removed; then, in path order (parents first), what is new or
// changed. Unchanged entries cost nothing.
func PlanTree(prev, cur map[string]*TreeEntry) []TreeOp {
	base := fileBases(prev, cur)
	var ops []TreeOp
	removed := map[string]bool{}
	for _, p := range sortedPaths(prev) {
		if p == "" || under(p, removed) {
			continue
		}
		a, b := prev[p], cur[p]
		gone := b == nil || b.Type != a.Type ||
			a.Type == client.TypeSymlink && a.Target != b.Target ||
			a.Type >= client.TypeFifo && a.Rdev != b.Rdev ||
			a.Type == client.TypeFile && base[p] != p
		if gone {
			ops = append(ops, TreeOp{Kind: OpRemove, Path: p})
			removed[p] = true
		}
	}
	for _, p := range sortedPaths(cur) {
		b := cur[p]
		a := prev[p]
		if a != nil && (a.Type != b.Type || under(p, removed)) {
			a = nil // removed above: made anew
		}
		switch b.Type {
		case client.TypeDir:
			switch {
			case a == nil && p != "":
				ops = append(ops, TreeOp{Kind: OpMkdir, Path: p, Cur: b})
			case a == nil || !sameAttrs(a, b, false):
				ops = append(ops, TreeOp{Kind: OpAttr, Path: p, Cur: b, Prev: a})
			}
		case client.TypeSymlink:
			switch {
			case a == nil:
				ops = append(ops, TreeOp{Kind: OpSymlink, Path: p, Cur: b})
			case a.Uid != b.Uid || a.Gid != b.Gid:
				ops = append(ops, TreeOp{Kind: OpAttr, Path: p, Cur: b, Prev: a})
			}
		case client.TypeFile:
			q := base[p]
			switch {
			case q == "":
				ops = append(ops, TreeOp{Kind: OpFile, Path: p, Cur: b})
			case q != p:
				ops = append(ops, TreeOp{Kind: OpFile, Path: p, Base: q, Cur: b, Prev: prev[q]})
			case !sameContent(a, b):
				ops = append(ops, TreeOp{Kind: OpFile, Path: p, Base: p, Cur: b, Prev: a})
			case !sameAttrs(a, b, true):
				ops = append(ops, TreeOp{Kind: OpAttr, Path: p, Cur: b, Prev: a})
			}
		default:
			switch {
			case a == nil:
				ops = append(ops, TreeOp{Kind: OpMknod, Path: p, Cur: b})
			case !sameAttrs(a, b, false):
				ops = append(ops, TreeOp{Kind: OpAttr, Path: p, Cur: b, Prev: a})
			}
		}
	}
	return ops
}

// fileBases chooses, for every regular file of cur, the file of prev its
// content starts from: the one sharing the most chunk slots with it
// (same index, same handle), the file at the same path winning ties;
// when none shares a chunk, the file at the same path if there is one
// of the same chunk size, else none ("": new).
func fileBases(prev, cur map[string]*TreeEntry) map[string]string {
	type slot struct {
		idx    int64
		handle uint64
	}
	holders := map[slot][]string{}
	for _, p := range sortedPaths(prev) {
		if e := prev[p]; e.Type == client.TypeFile {
			for _, c := range e.Chunks {
				s := slot{c.Index, c.Handle}
				holders[s] = append(holders[s], p)
			}
		}
	}
	out := map[string]string{}
	for p, e := range cur {
		if e.Type != client.TypeFile {
			continue
		}
		counts := map[string]int{}
		for _, c := range e.Chunks {
			for _, q := range holders[slot{c.Index, c.Handle}] {
				counts[q]++
			}
		}
		best, n := "", 0
		for q, k := range counts {
			switch {
			case k > n, k == n && q == p, k == n && best != p && q < best:
				best, n = q, k
			}
		}
		if n == 0 {
			if a := prev[p]; a != nil && a.Type == client.TypeFile && a.ChunkSize == e.ChunkSize {
				// Every chunk written since (forked), or the file made
				// anew at the same path: in place, each slot diffed
				// (the chunk engine's Diff lists the blocks written in
				// either of two unrelated chunks, a superset).
				best = p
			}
		}
		out[p] = best
	}
	return out
}

// sameContent: files a and b hold the same bytes (the same size and the
// same chunk in every slot).
func sameContent(a, b *TreeEntry) bool {
	if a == nil || a.Size != b.Size || len(a.Chunks) != len(b.Chunks) {
		return false
	}
	m := byIndex(a.Chunks)
	for _, c := range b.Chunks {
		if x, ok := m[c.Index]; !ok || x.Handle != c.Handle {
			return false
		}
	}
	return true
}

// sameAttrs: the same mode and owner (and modification time, for files:
// withMtime).
func sameAttrs(a, b *TreeEntry, withMtime bool) bool {
	return a.Mode == b.Mode && a.Uid == b.Uid && a.Gid == b.Gid && (!withMtime || a.Mtime.Equal(b.Mtime))
}

// under reports whether p or one of its ancestors is in set.
func under(p string, set map[string]bool) bool {
	for len(set) > 0 {
		if set[p] {
			return true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return false
		}
		p = p[:i]
	}
	return false
}

// sortedPaths is t's paths in order; a parent sorts before its
// children, since its path is their prefix.
func sortedPaths(t map[string]*TreeEntry) []string {
	out := make([]string, 0, len(t))
	for p := range t {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// treeOpBytes is an upper bound of what op ships (every changed slot
// whole): the status's bytes pending before the diffs are asked.
func treeOpBytes(op TreeOp) int64 {
	if op.Kind != OpFile {
		return 0
	}
	var prev []ChunkRef
	if op.Base != "" && op.Prev != nil {
		prev = op.Prev.Chunks
	}
	var n int64
	for _, st := range Plan(prev, op.Cur.Chunks) {
		if st.Action == Diff || st.Action == Whole {
			n += max(min(op.Cur.ChunkSize, op.Cur.Size-st.Index*op.Cur.ChunkSize), 0)
		}
	}
	return n
}
