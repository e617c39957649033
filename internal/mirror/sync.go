package mirror

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"sync"
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
	newest, err := newestCheckpoint(ctx, a, vol)
	if err != nil {
		return 0, err
	}
	return waitPast(ctx, b, vol, newest, clk, poll)
}

// newestCheckpoint is the newest checkpoint of vol A holds or names in
// its record: one taken before the writes acknowledged so far, for all
// the caller knows.
func newestCheckpoint(ctx context.Context, a *client.Client, vol string) (uint64, error) {
	ids, err := Checkpoints(ctx, a, vol)
	if err != nil {
		return 0, err
	}
	var newest uint64
	if len(ids) > 0 {
		newest = ids[len(ids)-1]
	}
	// A's record may name a checkpoint in flight whose snapshot a
	// concurrent release has just removed: count it too.
	if r, err := ReadRecord(ctx, a, vol); err == nil {
		newest = max(newest, r.Applied, r.Pending)
	}
	return newest, nil
}

// waitPast polls c's record of vol every poll until it says a checkpoint
// after newest is applied, and returns it.
func waitPast(ctx context.Context, c *client.Client, vol string, newest uint64, clk clock.Clock, poll time.Duration) (uint64, error) {
	clk = clock.Or(clk)
	for {
		r, err := ReadRecord(ctx, c, vol)
		if err != nil {
			return 0, err
		}
		switch {
		case r.Promoted:
			return 0, fmt.Errorf("%w: volume %s", ErrPromoted, vol)
		case r.Applied > newest:
			return r.Applied, nil
		case r.Side == SideSource && !r.SyncFlush:
			return 0, fmt.Errorf("%w: volume %s", ErrSyncFlushOff, vol)
		}
		if !clock.Sleep(ctx, clk, poll) {
			return 0, ctx.Err()
		}
	}
}

// FlushBarrier is the client.FlushBarrier of a client of cluster A
// under a --sync-flush mirror: a flush of a volume whose record at A
// says SyncFlush returns only once a checkpoint taken after it is
// applied at B, read from A's copy of the record (which the mirror
// writes after B's, so it never runs ahead of B). It asks the mirror for
// a checkpoint at once (FlushAttr). A volume without such a record
// passes at once; whether it has one is looked up at most every
// RecordTTL. Use it as client.SetFlushBarrier(fb.Wait).
type FlushBarrier struct {
	c   *client.Client
	clk clock.Clock
	// Timeout bounds one flush's wait for its checkpoint, once the
	// record said sync-flush (default 60 s): a --sync-flush
	// mirror that was killed leaves its record saying so, and flushes
	// at A then fail (their data may not be at B) instead of hanging.
	Timeout time.Duration
	// Poll is how often A's record is read while waiting (default
	// 5 ms); RecordTTL how long a volume's "no sync-flush" is believed
	// (default 1 s).
	Poll, RecordTTL time.Duration

	mu   sync.Mutex
	seen map[string]time.Time // volumes without sync-flush, when last looked up
}

// NewFlushBarrier returns the barrier of client c (of cluster A).
func NewFlushBarrier(c *client.Client, clk clock.Clock) *FlushBarrier {
	return &FlushBarrier{c: c, clk: clock.Or(clk), Timeout: time.Minute, Poll: 5 * time.Millisecond,
		RecordTTL: time.Second, seen: map[string]time.Time{}}
}

// ErrSyncFlushOff: the mirror of the volume stopped running with
// --sync-flush while a flush waited.
var ErrSyncFlushOff = errors.New("mirror: sync-flush turned off")

// Wait is the barrier for a flush of volume name, or for a Sync of the
// file at path name (IsTree): that of the nearest directory above the
// file that is the source of a --sync-flush mirror (none: no wait).
func (f *FlushBarrier) Wait(ctx context.Context, name string) error {
	if !IsTree(name) {
		_, err := f.waitFor(ctx, name)
		return err
	}
	for dir := path.Dir(name); dir != "/" && dir != "."; dir = path.Dir(dir) {
		found, err := f.waitFor(ctx, dir)
		if err != nil || found {
			return err
		}
	}
	return nil
}

// waitFor is the barrier of volume (or tree) vol's own record: found
// reports whether vol is the source of a --sync-flush mirror, whose
// checkpoint it then waited for.
func (f *FlushBarrier) waitFor(ctx context.Context, vol string) (found bool, err error) {
	now := f.clk.Now()
	f.mu.Lock()
	at, off := f.seen[vol]
	f.mu.Unlock()
	if off && now.Sub(at) < f.RecordTTL {
		return false, nil
	}
	rec, err := ReadRecord(ctx, f.c, vol)
	switch {
	case errors.Is(err, ErrNoRecord):
	case err != nil:
		return false, fmt.Errorf("mirror sync-flush: %w", err)
	case rec.Side == SideSource && rec.SyncFlush:
		return true, f.wait(ctx, vol)
	}
	f.mu.Lock()
	f.seen[vol] = now
	f.mu.Unlock()
	return false, nil
}

func (f *FlushBarrier) wait(ctx context.Context, vol string) error {
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	attempt := func() error {
		newest, err := newestCheckpoint(ctx, f.c, vol)
		if err != nil {
			return err
		}
		fi, err := f.c.Stat(ctx, RecordPath(vol))
		if err != nil {
			return err
		}
		ask := strconv.FormatInt(f.clk.Now().UnixNano(), 10)
		if err := f.c.SetXattr(ctx, fi.Inode, FlushAttr, []byte(ask), 0); err != nil {
			return fmt.Errorf("asking for a checkpoint: %w", err)
		}
		_, err = waitPast(ctx, f.c, vol, newest, f.clk, f.Poll)
		return err
	}
	// A master slow to answer (a call's own deadline ran out) is tried
	// again while the barrier has time: the flush fails only when its
	// checkpoint is not applied within Timeout.
	var err error
	for {
		err = attempt()
		if err == nil || ctx.Err() != nil || !errors.Is(err, client.ErrMasterUnreachable) {
			break
		}
		if !clock.Sleep(ctx, f.clk, f.Poll) {
			break
		}
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("mirror sync-flush: volume %s: no checkpoint applied at the target within %v (is the mirror running?): %w", vol, f.Timeout, err)
	}
	return fmt.Errorf("mirror sync-flush: %w", err)
}
