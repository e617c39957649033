package mirror

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
)

// A directory tree's checkpoint (Config.Volume a path, IsTree). The order
// of events for checkpoint N of tree DIR, each durable before the next:
//
//  1. snapshot DIR/.snapshot/mirror-N at A (the checkpoint);
//  2. B's record: Pending N;
//  3. the stage: a clone of B's DIR (at N-1; no data copied) at
//     stagePath(DIR), its inode in B's record (Stage);
//  4. PlanTree's operations applied to the stage, B's record's Done
//     advanced (the last operation done);
//  5. the stage and B's DIR exchanged (RENAME_EXCHANGE, one Raft entry
//     at B: the activation record): B's DIR is N;
//  6. the old tree, now at the stage's path, removed; B's record:
//     Applied N;
//  7. A's DIR/.snapshot/mirror-(N-1) released.
//
// A crash before 5 leaves B's DIR at N-1; a restart applies the
// operations after Done to the same stage (PlanTree is a function of
// A's two snapshots, so the list is the same), or stages anew when the
// stage is gone. A crash between 5 and 6 is found by B's DIR's inode
// being Stage: the restart does 6 and 7 only. A reader of B's DIR that
// resolves it once (a path lookup, an open directory) sees one
// checkpoint's tree; a walk of it by path across an activation may see
// two (the record's Applied tells; the tests' sampler checks it).

// treeRecordBatch is how many operations that ship no data may pass
// between two writes of B's record (Done): a restart repeats at most
// that many, none of which ship data.
const treeRecordBatch = 32

// targetTree prepares B's side of tree dir the first time: its record,
// then the empty directory (with its parents).
func (m *Mirror) targetTree(ctx context.Context, rec *Record) error {
	dir := m.cfg.Volume
	if _, err := m.b.Stat(ctx, dir); err == nil {
		return fmt.Errorf("%w: directory %s exists at %s without a mirror record", ErrNotMirror, dir, m.masters(m.cfg.To))
	} else if !errors.Is(err, client.ErrNotFound) {
		return err
	}
	fi, err := m.a.Stat(ctx, dir)
	if err != nil {
		return err
	}
	if !fi.IsDir {
		return fmt.Errorf("mirror: %s at %s is not a directory", dir, m.masters(m.cfg.From))
	}
	if err := WriteRecord(ctx, m.b, m.stamp(rec)); err != nil {
		return err
	}
	if err := m.b.MkdirAll(ctx, dir, 0o755); err != nil && !errors.Is(err, client.ErrExist) {
		return err
	}
	m.log.Info("mirror: target directory created")
	return nil
}

// checkpointRoot is the path of tree dir's checkpoint n at A.
func checkpointRoot(dir string, n uint64) string {
	return path.Join(dir, client.SnapshotDir, CheckpointName(n))
}

// applyTree ships checkpoint rec.Pending of the tree to B and activates
// it (events 3 to 7). full: A no longer holds the checkpoint B is at, so
// the stage starts empty and everything is shipped.
func (m *Mirror) applyTree(ctx context.Context, rec *Record, full bool) error {
	dir, n := m.cfg.Volume, rec.Pending
	bfi, err := m.b.Stat(ctx, dir)
	if err != nil {
		return err
	}
	if rec.Stage != 0 && bfi.Inode == rec.Stage {
		return m.finish(ctx, rec) // exchanged before the crash
	}
	cur, err := m.walk(ctx, n)
	if err != nil {
		return err
	}
	var prev map[string]*TreeEntry
	fresh := rec.Applied == 0 || full
	if !fresh {
		if prev, err = m.walk(ctx, rec.Applied); err != nil {
			return err
		}
	}
	if full && rec.Stage != 0 {
		// Staged against the base A no longer holds: Done counts
		// operations of another list. Stage again, from nothing.
		m.log.Warn("mirror: the source lost the checkpoint the target is at; staging the whole tree", "checkpoint", rec.Pending)
		rec.Stage, rec.Done, rec.PendingShipped, rec.PendingFallbacks = 0, -1, 0, 0
	}
	ops := PlanTree(prev, cur)
	if len(ops) == 0 {
		// Nothing changed: B's DIR is checkpoint N already.
		return m.finish(ctx, rec)
	}
	if err := m.openTreeStage(ctx, rec, fresh); err != nil {
		return err
	}
	rec.PendingBytes = 0
	for _, op := range ops[min(int(rec.Done+1), len(ops)):] {
		rec.PendingBytes += treeOpBytes(op)
	}
	sinceRecord := 0
	for i := int(rec.Done + 1); i < len(ops); i++ {
		op := ops[i]
		m.log.Debug("mirror: tree", "op", op.Kind, "path", op.Path, "base", op.Base)
		shipped, fallbacks, err := m.treeOp(ctx, op, n)
		rec.PendingShipped += shipped
		if err != nil {
			return fmt.Errorf("%s %s: %w", op.Kind, op.Path, err)
		}
		rec.Done = int64(i)
		rec.PendingFallbacks += fallbacks
		rec.PendingBytes = max(rec.PendingBytes-treeOpBytes(op), 0)
		if sinceRecord++; shipped > 0 || sinceRecord >= treeRecordBatch || i == len(ops)-1 {
			if err := WriteRecord(ctx, m.b, m.stamp(rec)); err != nil {
				return err
			}
			sinceRecord = 0
		}
	}
	// The activation: one Raft entry at B. A promote (catena mirror
	// promote) ordered before it must win: read the record again.
	now, err := ReadRecord(ctx, m.b, dir)
	if err != nil {
		return err
	}
	if now.Promoted {
		return fmt.Errorf("%w: directory %s", ErrPromoted, dir)
	}
	rd, err := m.b.Stat(ctx, RecordDir)
	if err != nil {
		return err
	}
	pd, err := m.b.Stat(ctx, path.Dir(dir))
	if err != nil {
		return err
	}
	if err := m.b.ExchangeAt(ctx, rd.Inode, path.Base(stagePath(dir)), pd.Inode, path.Base(dir)); err != nil {
		return err
	}
	return m.finish(ctx, rec)
}

// openTreeStage makes sure B's stage for rec.Pending is there: the one
// recorded in rec.Stage, else a new one (a clone of B's DIR, or an
// empty directory when fresh), recorded before anything is applied.
func (m *Mirror) openTreeStage(ctx context.Context, rec *Record, fresh bool) error {
	dir := m.cfg.Volume
	sp := stagePath(dir)
	if rec.Stage != 0 {
		if fi, err := m.b.Stat(ctx, sp); err == nil && fi.Inode == rec.Stage {
			m.log.Info("mirror: resuming the staged checkpoint", "checkpoint", rec.Pending, "done", rec.Done)
			return nil
		}
		m.log.Info("mirror: the staged checkpoint is gone; staging again", "checkpoint", rec.Pending)
		rec.Stage, rec.Done, rec.PendingShipped, rec.PendingFallbacks = 0, -1, 0, 0
	}
	if err := removeTree(ctx, m.b, sp); err != nil {
		return err
	}
	if err := m.b.MkdirAll(ctx, RecordDir, 0o755); err != nil && !errors.Is(err, client.ErrExist) {
		return err
	}
	var err error
	if fresh {
		err = m.b.Mkdir(ctx, sp, 0o755)
	} else {
		_, err = m.b.Clone(ctx, dir, sp)
	}
	if err != nil {
		return err
	}
	fi, err := m.b.Stat(ctx, sp)
	if err != nil {
		return err
	}
	rec.Stage, rec.Done = fi.Inode, -1
	return WriteRecord(ctx, m.b, m.stamp(rec))
}

// walk returns the tree of A's checkpoint n, from a cache when it is the
// last one walked (a snapshot never changes).
func (m *Mirror) walk(ctx context.Context, n uint64) (map[string]*TreeEntry, error) {
	for _, c := range m.trees {
		if c.n == n && c.t != nil {
			return c.t, nil
		}
	}
	root := checkpointRoot(m.cfg.Volume, n)
	fi, err := m.a.Stat(ctx, root)
	if err != nil {
		return nil, err
	}
	ra, err := m.a.GetAttr(ctx, fi.Inode)
	if err != nil {
		return nil, err
	}
	t := map[string]*TreeEntry{"": entryOf("", ra)}
	todo := []string{""}
	inos := map[string]uint64{"": fi.Inode}
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		ents, err := m.a.ReadDirInode(ctx, inos[p])
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path.Join(root, p), err)
		}
		for _, e := range ents {
			q := strings.TrimPrefix(p+"/"+e.Name, "/")
			te := entryOf(q, &e.Attr)
			switch te.Type {
			case client.TypeDir:
				todo = append(todo, q)
				inos[q] = e.Attr.Ino
			case client.TypeSymlink:
				if te.Target == "" {
					if te.Target, err = m.a.Readlink(ctx, e.Attr.Ino); err != nil {
						return nil, err
					}
				}
			case client.TypeFile:
				cis, err := m.ra.chunks(ctx, e.Attr.Ino)
				if err != nil {
					return nil, fmt.Errorf("chunks of %s: %w", path.Join(root, q), err)
				}
				for _, ci := range cis {
					te.Chunks = append(te.Chunks, ChunkRef{Index: ci.GetIndex(), Handle: ci.GetHandle(), Epoch: ci.GetEpoch(), Chain: chainIDs(ci)})
				}
			}
			t[q] = te
		}
	}
	m.trees[n%2] = treeCache{n: n, t: t}
	return t, nil
}

// treeCache holds a checkpoint's tree as walked.
type treeCache struct {
	n uint64
	t map[string]*TreeEntry
}

func entryOf(p string, a *client.Attr) *TreeEntry {
	return &TreeEntry{Path: p, Type: a.Type, Mode: a.Mode & 0o7777, Uid: a.Uid, Gid: a.Gid, Size: a.Size, Mtime: a.Mtime,
		Target: a.Target, Rdev: a.Rdev, Ino: a.Ino, ChunkSize: a.ChunkSize, Replication: a.Replication}
}

// treeOp applies op to B's stage; it returns the bytes shipped and the
// slots shipped whole for want of a diff.
func (m *Mirror) treeOp(ctx context.Context, op TreeOp, n uint64) (shipped, fallbacks int64, err error) {
	dir := m.cfg.Volume
	sp := path.Join(stagePath(dir), op.Path)
	cur := op.Cur
	removeAny := func() error {
		if err := m.b.RemoveAll(ctx, sp); err != nil && !errors.Is(err, client.ErrNotFound) {
			return err
		}
		return nil
	}
	parent := func() (uint64, error) {
		fi, err := m.b.Stat(ctx, path.Dir(sp))
		if err != nil {
			return 0, err
		}
		return fi.Inode, nil
	}
	switch op.Kind {
	case OpRemove:
		return 0, 0, removeAny()
	case OpMkdir:
		pino, err := parent()
		if err != nil {
			return 0, 0, err
		}
		if _, err := m.b.MkdirAt(ctx, pino, path.Base(sp), cur.Mode, 0, cur.Uid, cur.Gid); errors.Is(err, client.ErrExist) {
			return 0, 0, m.setAttrs(ctx, sp, cur) // made by a run before a restart
		} else if err != nil {
			return 0, 0, err
		}
		return 0, 0, nil
	case OpSymlink, OpMknod:
		if err := removeAny(); err != nil { // made by a run before a restart
			return 0, 0, err
		}
		pino, err := parent()
		if err != nil {
			return 0, 0, err
		}
		if op.Kind == OpSymlink {
			_, err = m.b.SymlinkAt(ctx, pino, path.Base(sp), cur.Target, cur.Uid, cur.Gid)
		} else {
			_, err = m.b.MknodAt(ctx, pino, path.Base(sp), cur.Type, cur.Mode, 0, cur.Rdev, cur.Uid, cur.Gid)
		}
		return 0, 0, err
	case OpAttr:
		return 0, 0, m.setAttrs(ctx, sp, cur)
	case OpFile:
		return m.treeFile(ctx, op, sp, n)
	}
	return 0, 0, fmt.Errorf("mirror: unknown tree operation %v", op.Kind)
}

// setAttrs gives the stage's node at sp e's mode and owner (and a file's
// modification time).
func (m *Mirror) setAttrs(ctx context.Context, sp string, e *TreeEntry) error {
	fi, err := m.b.Stat(ctx, sp)
	if err != nil {
		return err
	}
	in := client.SetAttrIn{Uid: &e.Uid, Gid: &e.Gid}
	if e.Type != client.TypeSymlink {
		in.Mode = &e.Mode
	}
	if e.Type == client.TypeFile {
		in.Mtime = &e.Mtime
	}
	_, err = m.b.SetAttr(ctx, fi.Inode, in)
	return err
}

// treeFile brings the stage's file at sp to op.Cur: from its base (in
// place, cloned from B's DIR, or a new file), then the slots Plan finds
// changed, shipped from A's checkpoint n.
func (m *Mirror) treeFile(ctx context.Context, op TreeOp, sp string, n uint64) (shipped, fallbacks int64, err error) {
	dir, cur := m.cfg.Volume, op.Cur
	var prevRefs []ChunkRef
	if op.Base != "" {
		prevRefs = op.Prev.Chunks
	}
	if op.Base != op.Path {
		if err := m.b.RemoveAll(ctx, sp); err != nil && !errors.Is(err, client.ErrNotFound) {
			return 0, 0, err
		}
	}
	if op.Base != "" && op.Base != op.Path {
		// B's DIR is at N-1 until the activation: its copy of the base.
		if _, err := m.b.Clone(ctx, path.Join(dir, op.Base), sp); errors.Is(err, client.ErrNotFound) {
			m.log.Warn("mirror: the base of a file is gone at the target; shipping it whole", "path", op.Path, "base", op.Base)
			prevRefs = nil
		} else if err != nil {
			return 0, 0, err
		}
	}
	var ino uint64
	if op.Base == "" || prevRefs == nil && op.Base != op.Path {
		pfi, err := m.b.Stat(ctx, path.Dir(sp))
		if err != nil {
			return 0, 0, err
		}
		a, err := m.b.CreateAt(ctx, pfi.Inode, path.Base(sp), cur.Mode, 0, cur.Uid, cur.Gid,
			client.CreateOptions{ChunkSize: cur.ChunkSize, Replication: cur.Replication})
		if err != nil {
			return 0, 0, err
		}
		ino = a.Ino
	} else {
		fi, err := m.b.Stat(ctx, sp)
		if err != nil {
			return 0, 0, err
		}
		ino = fi.Inode
	}
	f, err := m.b.OpenInode(ctx, ino, sp)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()

	steps := Plan(prevRefs, cur.Chunks)
	var prevInfo, curInfo map[int64]*api.ChunkInfo
	needDiff := false
	for _, st := range steps {
		needDiff = needDiff || st.Action == Diff
	}
	refresh := func() (map[int64]*api.ChunkInfo, map[int64]*api.ChunkInfo, error) {
		ci, err := m.chunkInfos(ctx, cur.Ino)
		if err != nil {
			return nil, nil, err
		}
		pi, err := m.chunkInfos(ctx, op.Prev.Ino)
		return pi, ci, err
	}
	if needDiff {
		if prevInfo, curInfo, err = refresh(); err != nil {
			return 0, 0, err
		}
	}
	scratch := &Record{Done: -1}
	work, err := m.diffs(ctx, scratch, steps, prevInfo, curInfo, refresh, cur.Size, cur.ChunkSize)
	if err != nil {
		return 0, 0, err
	}
	if prevRefs != nil {
		work = addGrown(work, cur, op.Prev.Size)
	}
	src, err := m.a.OpenInode(ctx, cur.Ino, path.Join(checkpointRoot(dir, n), op.Path))
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	// The size first: the slots below are all within it.
	if err := f.Truncate(ctx, cur.Size); err != nil {
		return 0, 0, err
	}
	cs := cur.ChunkSize
	for _, w := range work {
		base := w.Index * cs
		k, err := m.copyRanges(ctx, src, f, shifted(w.grown, base), true)
		shipped += k
		if err != nil {
			return shipped, fallbacks, err
		}
		switch w.Action {
		case Zero:
			if err := f.PunchHole(ctx, base, w.length); err != nil {
				return shipped, fallbacks, fmt.Errorf("zero slot %d at the target: %w", w.Index, err)
			}
		case Diff:
			k, err := m.copyRanges(ctx, src, f, shifted(w.ranges, base), false)
			shipped += k
			if err != nil {
				return shipped, fallbacks, err
			}
		case Whole:
			k, err := m.copyRanges(ctx, src, f, []Range{{Off: base, Len: w.length}}, w.SkipZeros)
			shipped += k
			if err != nil {
				return shipped, fallbacks, err
			}
			if w.NoCommonServer {
				fallbacks++
			}
		}
	}
	if err := f.Close(); err != nil {
		return shipped, fallbacks, err
	}
	return shipped, fallbacks, m.setAttrs(ctx, sp, cur)
}

// addGrown adds to work the blocks a file's size now shows that its
// base's (of baseSize bytes) did not, in slots allocated at N: a write
// whose data reached a chunk before checkpoint N-1 and whose size came
// after it leaves the same chunk in both checkpoints (Plan: Skip), its
// bytes past the old size unseen by N-1. At B they read as zeros (the
// size grown first), so blocks of zeros need not travel. Blocks a Diff
// ships already, or a Whole slot, are not added again.
func addGrown(work []slotWork, cur *TreeEntry, baseSize int64) []slotWork {
	if cur.Size <= baseSize {
		return work
	}
	cs := cur.ChunkSize
	from := baseSize / BlockSize * BlockSize
	at := map[int64]int{}
	for i, w := range work {
		at[w.Index] = i
	}
	for _, c := range cur.Chunks {
		lo, hi := max(from, c.Index*cs), min((c.Index+1)*cs, cur.Size)
		if lo >= hi {
			continue
		}
		i, ok := at[c.Index]
		if !ok {
			work = append(work, slotWork{Step: Step{Index: c.Index, Action: Skip, Cur: c}, length: min(cs, cur.Size-c.Index*cs)})
			i = len(work) - 1
			at[c.Index] = i
		}
		w := &work[i]
		if w.Action == Whole || w.Action == Zero {
			continue
		}
		have := map[int64]bool{}
		for _, r := range w.ranges {
			for b := r.Off / BlockSize; b*BlockSize < r.Off+r.Len; b++ {
				have[b] = true
			}
		}
		var blocks []int64
		for b := (lo - c.Index*cs) / BlockSize; b*BlockSize < hi-c.Index*cs; b++ {
			if !have[b] {
				blocks = append(blocks, b)
			}
		}
		w.grown = Runs(blocks, w.length)
	}
	slices.SortFunc(work, func(a, b slotWork) int { return cmp.Compare(a.Index, b.Index) })
	return work
}

// chunkInfos returns the allocated chunks of inode ino at A by slot,
// with their capabilities.
func (m *Mirror) chunkInfos(ctx context.Context, ino uint64) (map[int64]*api.ChunkInfo, error) {
	cis, err := m.ra.chunks(ctx, ino)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*api.ChunkInfo, len(cis))
	for _, ci := range cis {
		out[ci.GetIndex()] = ci
	}
	return out, nil
}
