package mirror

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// BlockSize is the unit of change the chunk engine tracks and a mirror
// ships: 64 KiB (chunkstore.BlockSize).
const BlockSize = 64 << 10

// checkpointPrefix starts the name of a checkpoint snapshot, at A and at
// B: volume VOL's checkpoint N is snapshot VOL@mirror-N.
const checkpointPrefix = "mirror-"

// CheckpointName is the snapshot name of checkpoint n.
func CheckpointName(n uint64) string { return checkpointPrefix + strconv.FormatUint(n, 10) }

// ParseCheckpoint returns the checkpoint a snapshot name ("mirror-N", or
// a full volume snapshot name "VOL@mirror-N") stands for.
func ParseCheckpoint(name string) (uint64, bool) {
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name = name[i+1:]
	}
	rest, ok := strings.CutPrefix(name, checkpointPrefix)
	if !ok || rest == "" || rest[0] == '0' || rest[0] == '+' {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// ChunkRef is one chunk slot of a checkpoint: the chunk's handle and
// epoch as A's master maps them, and the server ids of its chain, head
// first.
type ChunkRef struct {
	Index  int64
	Handle uint64
	Epoch  uint64
	Chain  []uint64
}

// Action is what a slot needs to reach checkpoint N at B.
type Action int

const (
	// Skip: the slot names the same chunk at N-1 and N: unchanged.
	Skip Action = iota
	// Diff: ask a server in both chunks' chains (Step.Server) which
	// blocks differ, and ship those.
	Diff
	// Whole: read the whole chunk at N and ship its blocks (all of them,
	// or only those that are not zeros when the slot is zeros at B).
	Whole
	// Zero: the slot has no chunk at N (a hole): zero it at B.
	Zero
)

func (a Action) String() string {
	switch a {
	case Skip:
		return "skip"
	case Diff:
		return "diff"
	case Whole:
		return "whole"
	case Zero:
		return "zero"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Step is the plan for one slot.
type Step struct {
	Index  int64
	Action Action
	// SkipZeros (Whole): the slot reads as zeros at B, so blocks of zeros
	// need not travel.
	SkipZeros bool
	// NoCommonServer (Whole): the slot changed chunk but no server is in
	// both chains, so no Diff could be asked: the whole chunk goes.
	NoCommonServer bool
	// Server (Diff): the server to ask, a member of both chains: the
	// current chunk's tail when it can, else the member nearest it.
	Server    uint64
	Prev, Cur ChunkRef
}

// Plan returns the steps that take B from checkpoint N-1 (prev, the
// chunk map of A's snapshot N-1, as B holds it) to checkpoint N (cur),
// ascending by slot, one per slot that is allocated in either. Both lists
// hold allocated slots only, each slot once. A slot that names the same
// chunk in both is unchanged (a snapshot shares it; the first write
// after the snapshot forks it under a new handle), so it costs nothing:
// no full scan of the volume.
func Plan(prev, cur []ChunkRef) []Step {
	p := byIndex(prev)
	c := byIndex(cur)
	var out []Step
	for _, idx := range unionIndexes(p, c) {
		a, inPrev := p[idx]
		b, inCur := c[idx]
		st := Step{Index: idx, Prev: a, Cur: b}
		switch {
		case !inCur:
			st.Action = Zero
		case !inPrev:
			st.Action, st.SkipZeros = Whole, true
		case a.Handle == b.Handle:
			st.Action = Skip
		case commonServer(a.Chain, b.Chain) != 0:
			st.Action, st.Server = Diff, commonServer(a.Chain, b.Chain)
		default:
			st.Action, st.NoCommonServer = Whole, true
		}
		out = append(out, st)
	}
	return out
}

// PlanFull returns the steps that make any content of B's volume, whose
// chunk map at B is unknown to A, checkpoint cur: every allocated slot
// whole, every other slot of the volume's slots zeroed. For a first
// checkpoint onto a volume B just created (zeros) use Plan(nil, cur).
func PlanFull(cur []ChunkRef, slots int64) []Step {
	c := byIndex(cur)
	var out []Step
	for idx := int64(0); idx < slots; idx++ {
		if b, ok := c[idx]; ok {
			out = append(out, Step{Index: idx, Action: Whole, Cur: b})
		} else {
			out = append(out, Step{Index: idx, Action: Zero})
		}
	}
	return out
}

// commonServer is the member of cur nearest its tail that prev also
// has (0: none).
func commonServer(prev, cur []uint64) uint64 {
	if c := CommonServers(prev, cur); len(c) > 0 {
		return c[0]
	}
	return 0
}

// CommonServers lists the members of chain cur that chain prev also has,
// from cur's tail towards its head: the servers that may be asked for a
// diff, in order of preference.
func CommonServers(prev, cur []uint64) []uint64 {
	var out []uint64
	for i := len(cur) - 1; i >= 0; i-- {
		if cur[i] != 0 && slices.Contains(prev, cur[i]) && !slices.Contains(out, cur[i]) {
			out = append(out, cur[i])
		}
	}
	return out
}

func byIndex(refs []ChunkRef) map[int64]ChunkRef {
	m := make(map[int64]ChunkRef, len(refs))
	for _, r := range refs {
		m[r.Index] = r
	}
	return m
}

func unionIndexes(a, b map[int64]ChunkRef) []int64 {
	out := make([]int64, 0, len(a)+len(b))
	for i := range a {
		out = append(out, i)
	}
	for i := range b {
		if _, ok := a[i]; !ok {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// Range is a byte range of a chunk.
type Range struct{ Off, Len int64 }

// Runs turns sorted block indexes into the byte ranges they cover,
// adjacent blocks merged, clipped to [0, limit) (the chunk's length
// within the volume). Indexes out of order or repeated are ignored.
func Runs(blocks []int64, limit int64) []Range {
	var out []Range
	last := int64(-1)
	for _, b := range blocks {
		if b <= last || b < 0 {
			continue
		}
		last = b
		off := b * BlockSize
		if off >= limit {
			break
		}
		n := min(int64(BlockSize), limit-off)
		if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len == off {
			out[k].Len += n
			continue
		}
		out = append(out, Range{Off: off, Len: n})
	}
	return out
}

// RangesBytes is the total length of rs.
func RangesBytes(rs []Range) int64 {
	var n int64
	for _, r := range rs {
		n += r.Len
	}
	return n
}

// NonZeroRuns returns the ranges of data (a chunk's bytes from off) made
// of 64 KiB blocks not all zeros, adjacent ones merged, as offsets
// relative to the chunk. off is block aligned.
func NonZeroRuns(data []byte, off int64) []Range {
	var out []Range
	for i := 0; i < len(data); i += BlockSize {
		blk := data[i:min(i+BlockSize, len(data))]
		if allZero(blk) {
			continue
		}
		o, n := off+int64(i), int64(len(blk))
		if k := len(out) - 1; k >= 0 && out[k].Off+out[k].Len == o {
			out[k].Len += n
			continue
		}
		out = append(out, Range{Off: o, Len: n})
	}
	return out
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
