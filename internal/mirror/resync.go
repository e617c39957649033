package mirror

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"

	"github.com/catena-io/catena/client"
)

// Resync prepares a failback: this mirror's source (From) is the old
// target, promoted, and its target (To) the old source, returned. They
// last agreed at the newest checkpoint both still hold as a snapshot
// VOL@mirror-N, or DIR/.snapshot/mirror-N for a tree (B keeps the
// checkpoint it is at; A keeps it until the next is applied). Resync
// rolls the target's volume (or tree) back to that checkpoint (its
// writes after it are discarded: they were lost with the site, as far
// as the promoted side knows) and records it as the checkpoint the
// target is at, so the next Step ships only the blocks the source
// changed since: its own snapshot of checkpoint N shares chunks with
// its volume (its files), and Plan (PlanTree) diffs them as for any
// checkpoint.
//
// It needs the source's record to say promoted and a common checkpoint;
// without one it fails (remove the target's volume and mirror anew). It
// returns the checkpoint the target is at.
func (m *Mirror) Resync(ctx context.Context) (uint64, error) {
	vol := m.cfg.Volume
	src, err := ReadRecord(ctx, m.a, vol)
	if err != nil {
		return 0, fmt.Errorf("resync: the source's record: %w", err)
	}
	if src.Side == SideTarget && !src.Promoted {
		return 0, fmt.Errorf("resync: volume %s at %s is a mirror target not promoted (catena mirror promote first)", vol, m.masters(m.cfg.From))
	}
	held, err := m.sourceCheckpoints(ctx)
	if err != nil {
		return 0, err
	}
	targetIDs, err := Checkpoints(ctx, m.b, vol)
	if err != nil {
		return 0, err
	}
	var common uint64
	for _, id := range targetIDs {
		if slices.Contains(held, id) && id > common {
			common = id
		}
	}
	if common == 0 {
		return 0, fmt.Errorf("resync: no checkpoint of %s held at both %s %v and %s %v: remove it at %s and mirror anew",
			vol, m.masters(m.cfg.From), held, m.masters(m.cfg.To), targetIDs, m.masters(m.cfg.To))
	}
	if IsTree(vol) {
		if err := m.rollbackTree(ctx, common); err != nil {
			return 0, err
		}
	} else {
		// The target's volume: nobody's staging overlay, then checkpoint
		// common again (a rollback fences its writers' chunks).
		if err := m.b.DetachOverlay(ctx, vol, StageName); err != nil && !errors.Is(err, client.ErrNotFound) {
			return 0, err
		}
		if _, err := m.b.RollbackVolume(ctx, vol, CheckpointName(common)); err != nil {
			return 0, err
		}
	}
	for _, id := range targetIDs {
		if id != common {
			if err := removeCheckpoint(ctx, m.b, vol, id); err != nil {
				return 0, err
			}
		}
	}
	rec := &Record{Version: recordVersion, Volume: vol, Side: SideTarget, Source: m.masters(m.cfg.From),
		Target: m.masters(m.cfg.To), Applied: common, Done: -1}
	if src.Applied == common {
		rec.AppliedAt = src.AppliedAt
	}
	if err := WriteRecord(ctx, m.b, m.stamp(rec)); err != nil {
		return 0, err
	}
	m.log.Info("mirror: resync: the target is at the last common checkpoint", "checkpoint", common)
	return common, nil
}

// rollbackTree makes the target's tree DIR checkpoint common again, from
// its snapshot DIR/.snapshot/mirror-common: a clone of it at the stage's
// path, given its own snapshot mirror-common, exchanged with DIR (one
// Raft entry: a reader sees the old tree or the checkpoint), then the
// old tree removed. Run again after a crash at any point, it finds the
// checkpoint's snapshot on DIR (old or new) and does it again.
func (m *Mirror) rollbackTree(ctx context.Context, common uint64) error {
	dir := m.cfg.Volume
	sp := stagePath(dir)
	if err := removeTree(ctx, m.b, sp); err != nil {
		return err
	}
	if err := m.b.MkdirAll(ctx, RecordDir, 0o755); err != nil && !errors.Is(err, client.ErrExist) {
		return err
	}
	if _, err := m.b.Clone(ctx, checkpointRoot(dir, common), sp); err != nil {
		return err
	}
	if _, err := m.b.Snapshot(ctx, sp, CheckpointName(common)); err != nil {
		return err
	}
	rd, err := m.b.Stat(ctx, RecordDir)
	if err != nil {
		return err
	}
	pd, err := m.b.Stat(ctx, path.Dir(dir))
	if err != nil {
		return err
	}
	if err := m.b.ExchangeAt(ctx, rd.Inode, path.Base(sp), pd.Inode, path.Base(dir)); err != nil {
		return err
	}
	return removeTree(ctx, m.b, sp)
}
