package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// divergeAfter is how long masters may show different states at one
// applied index before CheckMetadata calls it a divergence: Raft counts
// an entry applied when it hands it to the state machine, which applies
// it a moment later.
const divergeAfter = 2 * time.Second

// masterState is what CheckMetadata reads of a master (*master.Master).
type masterState interface {
	CheckState() error
	AppliedIndex() uint64
	Snapshot() ([]byte, error)
}

// CheckMetadata is the metadata half of the cleanup invariants: it runs
// the metadata fsck (meta.State.Check) on every running master's live
// state, then waits (bounded by ctx) until the running masters have
// applied the same Raft index and compares their states there: their
// checkpoints must be the same bytes. It returns an error wrapping
// meta.ErrInconsistent naming the master, ErrMastersDiffer naming the
// first difference, or nil.
func (c *Cluster) CheckMetadata(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	var ids []int
	var ms []masterState
	for i, n := range c.masters {
		if n.m != nil {
			ids, ms = append(ids, i), append(ms, n.m)
		}
	}
	c.mu.Unlock()
	return checkMasters(ctx, ids, ms, divergeAfter)
}

// checkMasters is CheckMetadata on masters ids[i] = ms[i].
func checkMasters(ctx context.Context, ids []int, ms []masterState, divergeAfter time.Duration) error {
	var errs []error
	for i, m := range ms {
		if err := m.CheckState(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: master %d: %w", ids[i], err))
		}
	}
	if len(errs) > 0 || len(ms) < 2 {
		return errors.Join(errs...)
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	var (
		diffAt    uint64    // applied index of the last difference seen
		diffSince time.Time // when it was first seen at that index
		last      string    // what kept the masters apart
	)
	for {
		index, together, diff, err := compareMasters(ids, ms)
		switch {
		case err != nil:
			return err
		case together && diff == "":
			return nil
		case diff != "":
			if index != diffAt {
				diffAt, diffSince = index, time.Now()
			} else if time.Since(diffSince) >= divergeAfter {
				return fmt.Errorf("%w: at applied index %d: %s", ErrMastersDiffer, index, diff)
			}
			last = fmt.Sprintf("at applied index %d: %s", index, diff)
		default:
			last = "applied indexes " + appliedIndexes(ids, ms)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: not the same state before the deadline (%s): %w", ErrMastersDiffer, last, ctx.Err())
		case <-t.C:
		}
	}
}

// compareMasters reads every master's state at one applied index.
// together is false when the masters are not at one index (or one moved
// on while they were read); else diff is "" when their states are the
// same, or their first difference.
func compareMasters(ids []int, ms []masterState) (index uint64, together bool, diff string, err error) {
	before := make([]uint64, len(ms))
	for i, m := range ms {
		before[i] = m.AppliedIndex()
		if before[i] != before[0] {
			return 0, false, "", nil
		}
	}
	snaps := make([][]byte, len(ms))
	for i, m := range ms {
		if snaps[i], err = m.Snapshot(); err != nil {
			return 0, false, "", fmt.Errorf("cluster: master %d: checkpoint: %w", ids[i], err)
		}
	}
	for i, m := range ms {
		if m.AppliedIndex() != before[i] {
			return 0, false, "", nil
		}
	}
	for i := 1; i < len(ms); i++ {
		if !bytes.Equal(snaps[0], snaps[i]) {
			return before[0], true, fmt.Sprintf("master %d and master %d: %s", ids[0], ids[i], checkpointDiff(snaps[0], snaps[i])), nil
		}
	}
	return before[0], true, "", nil
}

func appliedIndexes(ids []int, ms []masterState) string {
	var out []string
	for i, m := range ms {
		out = append(out, fmt.Sprintf("master %d: %d", ids[i], m.AppliedIndex()))
	}
	return strings.Join(out, ", ")
}

// checkpointDiff names the top-level fields in which two checkpoints
// (meta's JSON encoding) differ, and shows the first difference.
func checkpointDiff(a, b []byte) string {
	var ma, mb map[string]json.RawMessage
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return excerpts(a, b)
	}
	var fields []string
	for _, k := range slices.Sorted(maps.Keys(ma)) {
		if !bytes.Equal(ma[k], mb[k]) {
			fields = append(fields, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(mb)) {
		if _, ok := ma[k]; !ok {
			fields = append(fields, k)
		}
	}
	if len(fields) == 0 {
		return excerpts(a, b)
	}
	return fmt.Sprintf("%s differ; %s: %s", strings.Join(fields, ", "), fields[0], excerpts(ma[fields[0]], mb[fields[0]]))
}

// excerpts shows a and b around their first difference.
func excerpts(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	cut := func(x []byte) string {
		lo, hi := max(0, i-60), min(len(x), i+60)
		return string(x[lo:hi])
	}
	return fmt.Sprintf("at byte %d: %q vs %q", i, cut(a), cut(b))
}
