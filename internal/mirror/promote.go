package mirror

import (
	"context"
	"errors"
	"fmt"

	"github.com/catena-io/catena/client"
)

// Promote makes B's mirror of volume vol writable (c talks to B), once A
// is gone or fenced: B's record says Promoted, so no mirror applies a
// checkpoint to the volume again; a checkpoint being staged is dropped
// (the volume stays at the last one applied); the writer session the
// mirror held on the volume is taken over and released, so a writer
// (catena nbd) may open it at once. For a directory tree (vol a path),
// the stage is removed; the tree stays at the last checkpoint applied.
// Promoting twice changes nothing.
func Promote(ctx context.Context, c *client.Client, vol string) (*Record, error) {
	rec, err := ReadRecord(ctx, c, vol)
	if err != nil {
		return nil, err
	}
	if rec.Side != SideTarget {
		return nil, fmt.Errorf("%w: volume %s here is the source of a mirror, not its target", ErrNotMirror, vol)
	}
	if !rec.Promoted {
		rec.Promoted = true
		rec.Pending, rec.PendingAt, rec.Stage, rec.Done = 0, 0, 0, -1
		rec.PendingBytes, rec.PendingShipped, rec.PendingFallbacks = 0, 0, 0
		if err := WriteRecord(ctx, c, rec); err != nil {
			return nil, err
		}
	}
	if IsTree(vol) {
		return rec, removeTree(ctx, c, stagePath(vol))
	}
	if err := c.DetachOverlay(ctx, vol, StageName); err != nil && !errors.Is(err, client.ErrNotFound) {
		return nil, err
	}
	v, err := c.OpenVolumeWriter(ctx, vol, client.WriterOptions{Owner: "mirror-promote", TakeOver: true})
	if err != nil {
		return nil, err
	}
	if err := v.Close(); err != nil {
		return nil, err
	}
	return rec, nil
}
