package mirror

import (
	"context"
	"fmt"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/clock"
)

// WaitApplied returns once every write to volume vol at A (a) that was
// acknowledged before the call is in the checkpoint B (b) is at: the
// barrier under a flush with output buffering (Remus). A checkpoint
// taken after the call holds those writes, and every checkpoint A holds
// now (applied or in flight) may have been taken before them, so it
// waits for B's record to pass the newest of them. It returns the
// checkpoint B reached. It polls B's record every poll (a mirror must be
// running; ctx bounds the wait).
func WaitApplied(ctx context.Context, a, b *client.Client, vol string, clk clock.Clock, poll time.Duration) (uint64, error) {
	snaps, err := a.VolumeSnapshots(ctx, vol)
	if err != nil {
		return 0, err
	}
	var newest uint64
	for _, s := range snaps {
		if id, ok := ParseCheckpoint(s.Name); ok {
			newest = max(newest, id)
		}
	}
	// A's record may name a checkpoint in flight whose snapshot a
	// concurrent release has just removed: count it too.
	if r, err := ReadRecord(ctx, a, vol); err == nil {
		newest = max(newest, r.Applied, r.Pending)
	}
	clk = clock.Or(clk)
	for {
		r, err := ReadRecord(ctx, b, vol)
		if err != nil {
			return 0, err
		}
		switch {
		case r.Promoted:
			return 0, fmt.Errorf("%w: volume %s", ErrPromoted, vol)
		case r.Applied > newest:
			return r.Applied, nil
		}
		if !clock.Sleep(ctx, clk, poll) {
			return 0, ctx.Err()
		}
	}
}
