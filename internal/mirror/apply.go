package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/rpcerr"
)

// slotWork is a planned step with the byte ranges (relative to the
// chunk) it ships, known before any data moves.
type slotWork struct {
	Step
	ranges []Range // Diff: the changed blocks
	length int64   // the slot's length within the volume
	// grown (a tree's file): blocks past the base's size that the file's
	// size now shows (addGrown), shipped but for blocks of zeros.
	grown []Range
}

// apply ships checkpoint rec.Pending to B and activates it (Step's
// events 3 to 7). full: A no longer holds the checkpoint B is at, so
// every slot is shipped (or zeroed) whole.
func (m *Mirror) apply(ctx context.Context, rec *Record, full bool) error {
	vol, n := m.cfg.Volume, rec.Pending
	bvi, err := m.b.VolumeInfo(ctx, vol)
	if err != nil {
		return err
	}
	if rec.Stage != 0 && bvi.Inode == rec.Stage {
		// Promoted before the crash: only the bookkeeping is left.
		return m.finish(ctx, rec)
	}
	snapName := vol + "@" + CheckpointName(n)
	src, err := m.a.OpenVolume(ctx, snapName)
	if err != nil {
		return err
	}
	defer src.Close()
	size, cs := src.Size(), src.Info().ChunkSize
	if bvi.Size < size {
		if _, err := m.b.ResizeVolume(ctx, vol, size); err != nil {
			return err
		}
	}
	stage, err := m.openStage(ctx, rec, size)
	if err != nil {
		return err
	}
	promoted := false
	defer func() {
		if !promoted {
			stage.Close()
		}
	}()

	cur, curInfo, err := m.chunkMap(ctx, snapName)
	if err != nil {
		return err
	}
	var steps []Step
	var prevInfo map[int64]*api.ChunkInfo
	switch {
	case rec.Applied == 0:
		steps = Plan(nil, cur)
	case full:
		steps = PlanFull(cur, (size+cs-1)/cs)
	default:
		var prev []ChunkRef
		if prev, prevInfo, err = m.chunkMap(ctx, vol+"@"+CheckpointName(rec.Applied)); err != nil {
			return err
		}
		steps = Plan(prev, cur)
	}
	refresh := func() (map[int64]*api.ChunkInfo, map[int64]*api.ChunkInfo, error) {
		_, ci, err := m.chunkMap(ctx, snapName)
		if err != nil || prevInfo == nil {
			return nil, ci, err
		}
		_, pi, err := m.chunkMap(ctx, vol+"@"+CheckpointName(rec.Applied))
		return pi, ci, err
	}
	work, err := m.diffs(ctx, rec, steps, prevInfo, curInfo, refresh, size, cs)
	if err != nil {
		return err
	}
	return m.ship(ctx, rec, work, src, stage, &promoted)
}

// openStage opens B's staging overlay for rec.Pending as its writer: the
// one recorded in rec.Stage when it is still there (and of size bytes at
// least: A's volume may have grown since), else a new one.
func (m *Mirror) openStage(ctx context.Context, rec *Record, size int64) (*client.Volume, error) {
	vol := m.cfg.Volume
	name := client.OverlayName(vol, StageName)
	if rec.Stage != 0 {
		if vi, err := m.b.VolumeInfo(ctx, name); err == nil && vi.Inode == rec.Stage && vi.Size >= size {
			v, err := m.b.OpenVolumeWriter(ctx, name, client.WriterOptions{Owner: m.cfg.Owner, Lease: m.cfg.StageLease, TakeOver: true, Keep: true})
			if err == nil {
				m.log.Info("mirror: resuming the staged checkpoint", "checkpoint", rec.Pending, "done", rec.Done)
				return v, nil
			}
			m.log.Warn("mirror: cannot reopen the staged checkpoint; staging again", "err", err)
		} else {
			m.log.Info("mirror: the staged checkpoint is gone; staging again", "checkpoint", rec.Pending)
		}
		rec.Stage, rec.Done, rec.PendingShipped, rec.PendingFallbacks = 0, -1, 0, 0
	}
	vi, err := m.b.ReattachOverlay(ctx, vol, StageName, m.cfg.StageLease)
	if err != nil {
		return nil, err
	}
	rec.Stage, rec.Done = vi.Inode, -1
	if err := WriteRecord(ctx, m.b, m.stamp(rec)); err != nil {
		return nil, err
	}
	return m.b.OpenVolumeWriter(ctx, name, client.WriterOptions{Owner: m.cfg.Owner, Lease: m.cfg.StageLease, TakeOver: true, Keep: true})
}

// diffs asks for the changed blocks of every Diff step not yet done and
// sets rec.PendingBytes; a Diff that no server answers becomes Whole. A
// snapshot's chunk moves to a new epoch when the live volume forks it
// (its first write after the checkpoint), so a diff refused for its
// epoch is asked again once with the chunk maps reloaded (refresh).
func (m *Mirror) diffs(ctx context.Context, rec *Record, steps []Step, prevInfo, curInfo map[int64]*api.ChunkInfo,
	refresh func() (map[int64]*api.ChunkInfo, map[int64]*api.ChunkInfo, error), size, cs int64) ([]slotWork, error) {
	var out []slotWork
	var pending int64
	for _, st := range steps {
		if st.Index <= rec.Done || st.Action == Skip {
			continue
		}
		m.log.Debug("mirror: plan", "slot", st.Index, "action", st.Action, "prev", st.Prev.Handle, "cur", st.Cur.Handle, "server", st.Server)
		w := slotWork{Step: st, length: min(cs, size-st.Index*cs)}
		if w.length <= 0 {
			continue
		}
		if st.Action == Diff {
			// The planned server first, then the other members of both
			// chains.
			ask := func() (blocks []int64, err error) {
				for _, srv := range CommonServers(chainIDs(prevInfo[st.Index]), chainIDs(curInfo[st.Index])) {
					if blocks, err = m.ra.diff(ctx, serverAddr(curInfo[st.Index], srv), prevInfo[st.Index], curInfo[st.Index]); err == nil {
						return blocks, nil
					}
					if ctx.Err() != nil {
						return nil, ctx.Err()
					}
				}
				if err == nil {
					err = errors.New("no server in both chains")
				}
				return nil, err
			}
			blocks, err := ask()
			if err != nil && rpcerr.Code(err) == api.ErrorCode_STALE_EPOCH && ctx.Err() == nil {
				var rerr error
				if prevInfo, curInfo, rerr = refresh(); rerr != nil {
					return nil, rerr
				}
				if prevInfo[st.Index].GetHandle() == st.Prev.Handle && curInfo[st.Index].GetHandle() == st.Cur.Handle {
					blocks, err = ask()
				}
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				m.log.Warn("mirror: no diff; shipping the chunk whole", "slot", st.Index, "err", err)
				w.Action, w.NoCommonServer = Whole, true
			} else {
				w.ranges = Runs(blocks, w.length)
			}
		}
		switch w.Action {
		case Diff:
			pending += RangesBytes(w.ranges)
		case Whole:
			pending += w.length
		}
		out = append(out, w)
	}
	rec.PendingBytes = pending
	return out, nil
}

// chainIDs is the server ids of ci's chain, head first.
func chainIDs(ci *api.ChunkInfo) []uint64 {
	var out []uint64
	for _, s := range ci.GetChain() {
		out = append(out, s.GetId())
	}
	return out
}

// ship writes the planned slots into the stage, then promotes it.
func (m *Mirror) ship(ctx context.Context, rec *Record, work []slotWork, src, stage *client.Volume, promoted *bool) error {
	cs := src.Info().ChunkSize
	for _, w := range work {
		base := w.Index * cs
		var shipped, planned int64
		switch w.Action {
		case Zero:
			if err := stage.ZeroContext(ctx, base, w.length); err != nil {
				return fmt.Errorf("zero slot %d at the target: %w", w.Index, err)
			}
		case Diff:
			planned = RangesBytes(w.ranges)
			n, err := m.copyRanges(ctx, src, stage, shifted(w.ranges, base), false)
			shipped += n
			if err != nil {
				return err
			}
		case Whole:
			planned = w.length
			n, err := m.copyRanges(ctx, src, stage, []Range{{Off: base, Len: w.length}}, w.SkipZeros)
			shipped += n
			if err != nil {
				return err
			}
			if w.NoCommonServer {
				rec.PendingFallbacks++
			}
		}
		rec.Done = w.Index
		rec.PendingShipped += shipped
		rec.PendingBytes = max(rec.PendingBytes-planned, 0)
		if err := WriteRecord(ctx, m.b, m.stamp(rec)); err != nil {
			return err
		}
	}
	// The activation: one Raft entry at B. A promote of our own overlay
	// ordered after a promote of the mirror (catena mirror promote) must
	// not happen: read the record again just before.
	cur, err := ReadRecord(ctx, m.b, m.cfg.Volume)
	if err != nil {
		return err
	}
	if cur.Promoted {
		return fmt.Errorf("%w: volume %s", ErrPromoted, m.cfg.Volume)
	}
	if _, err := m.b.PromoteOverlay(ctx, m.cfg.Volume, StageName); err != nil {
		return err
	}
	*promoted = true
	if m.held != nil {
		m.held.Close() // its inode went with the promote
	}
	m.held = stage
	return m.finish(ctx, rec)
}

// readerAtContext and writerAtContext: a volume or a file.
type (
	readerAtContext interface {
		ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
	}
	writerAtContext interface {
		WriteAtContext(ctx context.Context, p []byte, off int64) (int, error)
	}
)

// shifted is rs moved by base (a slot's ranges, made the volume's or
// the file's).
func shifted(rs []Range, base int64) []Range {
	out := make([]Range, len(rs))
	for i, r := range rs {
		out[i] = Range{Off: base + r.Off, Len: r.Len}
	}
	return out
}

// copyRanges copies the byte ranges rs of src to dst and returns the
// bytes written, skipping 64 KiB blocks of zeros when skipZeros. The
// ranges are cut into pieces of at most MaxIOSize, and up to
// ShipConcurrency pieces are in flight at once (each a read at A, then
// a durable write at B; one at a time, a checkpoint's shipping is a sum
// of round trips). The first error stops the others.
func (m *Mirror) copyRanges(ctx context.Context, src readerAtContext, dst writerAtContext, rs []Range, skipZeros bool) (int64, error) {
	var pieces []Range
	for _, r := range rs {
		for off := r.Off; off < r.Off+r.Len; off += m.cfg.MaxIOSize {
			pieces = append(pieces, Range{Off: off, Len: min(m.cfg.MaxIOSize, r.Off+r.Len-off)})
		}
	}
	if len(pieces) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan Range)
	var written atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range min(m.cfg.ShipConcurrency, len(pieces)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, m.cfg.MaxIOSize)
			for pc := range next {
				n, err := m.copyPiece(ctx, src, dst, buf[:pc.Len], pc.Off, skipZeros)
				written.Add(n)
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, pc := range pieces {
		select {
		case next <- pc:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return written.Load(), firstErr
}

// copyPiece copies len(p) bytes at off from src to dst through p.
func (m *Mirror) copyPiece(ctx context.Context, src readerAtContext, dst writerAtContext, p []byte, off int64, skipZeros bool) (int64, error) {
	if _, err := src.ReadAtContext(ctx, p, off); err != nil {
		return 0, fmt.Errorf("read %d bytes at %d at the source: %w", len(p), off, err)
	}
	runs := []Range{{Off: 0, Len: int64(len(p))}}
	if skipZeros {
		runs = NonZeroRuns(p, 0)
	}
	var written int64
	for _, r := range runs {
		if _, err := dst.WriteAtContext(ctx, p[r.Off:r.Off+r.Len], off+r.Off); err != nil {
			return written, fmt.Errorf("write %d bytes at %d at the target: %w", r.Len, off+r.Off, err)
		}
		written += r.Len
	}
	return written, nil
}

// snapshotTarget takes snapshot VOL@mirror-n of B's volume (or
// DIR/.snapshot/mirror-n of B's tree) and removes the older checkpoints'
// there: B keeps the checkpoint it is at, a stable view of it to read
// and the base of a failback (Resync).
func (m *Mirror) snapshotTarget(ctx context.Context, n uint64) error {
	vol := m.cfg.Volume
	var err error
	if IsTree(vol) {
		_, err = m.b.Snapshot(ctx, vol, CheckpointName(n))
	} else {
		_, err = m.b.SnapshotVolume(ctx, vol, CheckpointName(n))
	}
	if err != nil && !errors.Is(err, client.ErrExist) {
		return err
	}
	ids, err := Checkpoints(ctx, m.b, vol)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id < n {
			if err := removeCheckpoint(ctx, m.b, vol, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeCheckpoint removes checkpoint id's snapshot of volume (or tree)
// vol on the cluster c talks to; gone already is no error.
func removeCheckpoint(ctx context.Context, c *client.Client, vol string, id uint64) error {
	var err error
	if IsTree(vol) {
		err = c.RemoveSnapshot(ctx, vol, CheckpointName(id))
	} else {
		err = c.RemoveVolumeSnapshot(ctx, vol, CheckpointName(id))
	}
	if errors.Is(err, client.ErrNotFound) {
		return nil
	}
	return err
}

// removeTree removes the tree at p with the snapshots its root holds
// (a directory holding snapshots cannot be removed); gone already is
// no error.
func removeTree(ctx context.Context, c *client.Client, p string) error {
	snaps, err := c.Snapshots(ctx, p)
	if errors.Is(err, client.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if err := c.RemoveSnapshot(ctx, p, s.Name); err != nil && !errors.Is(err, client.ErrNotFound) {
			return err
		}
	}
	if err := c.RemoveAll(ctx, p); err != nil && !errors.Is(err, client.ErrNotFound) {
		return err
	}
	return nil
}

// finish records checkpoint rec.Pending as applied at B (after its
// snapshot there) and releases A's previous checkpoint.
func (m *Mirror) finish(ctx context.Context, rec *Record) error {
	vol, n := m.cfg.Volume, rec.Pending
	if IsTree(vol) {
		// The old tree, exchanged with the stage (and the snapshot of
		// the previous checkpoint it holds).
		if err := removeTree(ctx, m.b, stagePath(vol)); err != nil {
			return err
		}
	}
	if err := m.snapshotTarget(ctx, n); err != nil {
		return err
	}
	prev := rec.Applied
	now := m.clk.Now()
	rec.Applied, rec.AppliedAt = n, rec.PendingAt
	rec.Checkpoints++
	rec.ShippedBytes += rec.PendingShipped
	rec.Fallbacks += rec.PendingFallbacks
	rec.LastShipped, rec.LastFallbacks = rec.PendingShipped, rec.PendingFallbacks
	rec.LastDuration = int64(max(now.Sub(time.Unix(0, rec.PendingAt)), 0))
	m.dropPending(rec)
	if err := m.writeBoth(ctx, rec); err != nil {
		return err
	}
	if prev != 0 && !m.cfg.KeepSource {
		if err := m.releaseCheckpoint(ctx, prev); err != nil {
			return err
		}
	}
	m.mets.applied(time.Duration(rec.LastDuration))
	m.log.Info("mirror: checkpoint applied", "checkpoint", n, "shipped", rec.LastShipped, "took", time.Duration(rec.LastDuration))
	if m.cfg.OnApplied != nil {
		m.cfg.OnApplied(*rec)
	}
	return nil
}
