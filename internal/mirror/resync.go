package mirror

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/catena-io/catena/client"
)

// Resync prepares a failback: this mirror's source (From) is the old
// target, promoted, and its target (To) the old source, returned. They
// last agreed at the newest checkpoint both still hold as a snapshot
// VOL@mirror-N (B keeps the checkpoint it is at; A keeps it until the
// next is applied). Resync rolls the target's volume back to that
// checkpoint (its writes after it are discarded: they were lost with the
// site, as far as the promoted side knows) and records it as the
// checkpoint the target is at, so the next Step ships only the blocks
// the source changed since: its own snapshot VOL@mirror-N shares chunks
// with its volume, and Plan diffs them as for any checkpoint.
//
// It needs the source's record to say promoted and a common checkpoint;
// without one it fails (remove the target's volume and mirror anew). It
// returns the checkpoint the target is at.
func (m *Mirror) Resync(ctx context.Context) (uint64, error) {
	vol := m.cfg.Volume
	if IsTree(vol) {
		return 0, fmt.Errorf("resync: failing back a directory tree (%s) is not supported yet: remove the tree at %s and mirror it anew", vol, m.masters(m.cfg.To))
	}
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
	there, err := m.b.VolumeSnapshots(ctx, vol)
	if err != nil {
		return 0, err
	}
	var common uint64
	var targetIDs []uint64
	for _, s := range there {
		if id, ok := ParseCheckpoint(s.Name); ok {
			targetIDs = append(targetIDs, id)
			if slices.Contains(held, id) && id > common {
				common = id
			}
		}
	}
	if common == 0 {
		return 0, fmt.Errorf("resync: no checkpoint of volume %s held at both %s %v and %s %v: remove it at %s and mirror anew",
			vol, m.masters(m.cfg.From), held, m.masters(m.cfg.To), targetIDs, m.masters(m.cfg.To))
	}
	// The target's volume: nobody's staging overlay, then checkpoint
	// common again (a rollback fences its writers' chunks).
	if err := m.b.DetachOverlay(ctx, vol, StageName); err != nil && !errors.Is(err, client.ErrNotFound) {
		return 0, err
	}
	if _, err := m.b.RollbackVolume(ctx, vol, CheckpointName(common)); err != nil {
		return 0, err
	}
	for _, id := range targetIDs {
		if id != common {
			if err := m.b.RemoveVolumeSnapshot(ctx, vol, CheckpointName(id)); err != nil && !errors.Is(err, client.ErrNotFound) {
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
