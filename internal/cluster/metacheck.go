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

// masterState is what CheckMetadata reads of a master (*master.Master).
type masterState interface {
	CheckState() error
	// StateAt returns the master's checkpoint and the index of the last
	// Raft entry in it.
	StateAt() (uint64, []byte, error)
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
	return checkMasters(ctx, ids, ms)
}

// checkMasters is CheckMetadata on masters ids[i] = ms[i].
func checkMasters(ctx context.Context, ids []int, ms []masterState) error {
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
	for {
		indexes, snaps, err := readMasters(ids, ms)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(indexes, func(i uint64) bool { return i != indexes[0] }) {
			for i := 1; i < len(ms); i++ {
				if !bytes.Equal(snaps[0], snaps[i]) {
					return fmt.Errorf("%w: at applied index %d: master %d and master %d: %s",
						ErrMastersDiffer, indexes[0], ids[0], ids[i], checkpointDiff(snaps[0], snaps[i]))
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			var out []string
			for i := range ms {
				out = append(out, fmt.Sprintf("master %d: %d", ids[i], indexes[i]))
			}
			return fmt.Errorf("%w: not at one applied index before the deadline (%s): %w",
				ErrMastersDiffer, strings.Join(out, ", "), ctx.Err())
		case <-t.C:
		}
	}
}

// readMasters reads every master's state and its applied index.
func readMasters(ids []int, ms []masterState) ([]uint64, [][]byte, error) {
	indexes := make([]uint64, len(ms))
	snaps := make([][]byte, len(ms))
	for i, m := range ms {
		var err error
		if indexes[i], snaps[i], err = m.StateAt(); err != nil {
			return nil, nil, fmt.Errorf("cluster: master %d: checkpoint: %w", ids[i], err)
		}
	}
	return indexes, snaps, nil
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
