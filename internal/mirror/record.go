package mirror

import (
	"encoding/json"
	"fmt"
	"time"
)

// recordVersion is the version of the Record encoding.
const recordVersion = 1

// Record is a mirror's state as one side keeps it: at B it is the
// authority on which checkpoint B's volume is at (Applied) and on the
// checkpoint in flight (Pending); at A it is a copy for catena mirror
// status. It is stored as extended attribute RecordAttr of file
// RecordDir/VOL on each cluster: one Raft entry per update, so it is
// never seen half written.
type Record struct {
	Version int    `json:"version"`
	Volume  string `json:"volume"`
	// Side: SideTarget for B's record, SideSource for A's copy. A
	// mirror applies checkpoints only to a volume whose record is a
	// target's (a source's is turned into one by Resync).
	Side string `json:"side"`
	// Source and Target: the master addresses of A and B, as given.
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
	// Applied: the checkpoint B's volume is at (0: none yet), taken at A
	// at AppliedAt (unix ns): the recovery point.
	Applied   uint64 `json:"applied"`
	AppliedAt int64  `json:"applied_at,omitempty"`
	// Pending: the checkpoint being shipped (0: none), taken at
	// PendingAt; Stage is the inode of B's staging overlay once attached,
	// and Done the last slot fully shipped into it (-1: none).
	Pending   uint64 `json:"pending,omitempty"`
	PendingAt int64  `json:"pending_at,omitempty"`
	Stage     uint64 `json:"stage,omitempty"`
	Done      int64  `json:"done"`
	// PendingBytes: bytes of the pending checkpoint not yet shipped (an
	// upper bound: blocks of zeros a slot new at B needs are skipped);
	// PendingShipped and PendingFallbacks: what it shipped so far.
	PendingBytes     int64 `json:"pending_bytes"`
	PendingShipped   int64 `json:"pending_shipped,omitempty"`
	PendingFallbacks int64 `json:"pending_fallbacks,omitempty"`
	// Totals over the mirror's life: checkpoints applied, bytes shipped
	// (written at B), slots shipped whole because no server could list
	// their changed blocks.
	Checkpoints  uint64 `json:"checkpoints"`
	ShippedBytes int64  `json:"shipped_bytes"`
	Fallbacks    int64  `json:"fallbacks"`
	// The last checkpoint applied: its bytes shipped, how long from its
	// snapshot at A to its activation at B, and its fallbacks.
	LastShipped   int64 `json:"last_shipped"`
	LastDuration  int64 `json:"last_duration_ns"`
	LastFallbacks int64 `json:"last_fallbacks"`
	// Promoted: catena mirror promote made B's volume writable; no
	// checkpoint is applied to it any more.
	Promoted bool `json:"promoted,omitempty"`
	// SyncFlush: the mirror runs with --sync-flush: a flush of the
	// volume at A waits until a checkpoint taken after it is applied at
	// B (FlushBarrier). Cleared when the mirror stops.
	SyncFlush bool `json:"sync_flush,omitempty"`
	// Updated: when the record was written (unix ns).
	Updated int64 `json:"updated"`
}

// The sides a record is kept on.
const (
	SideTarget = "target"
	SideSource = "source"
)

// Encode returns r's stored form.
func (r *Record) Encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("mirror: encode record: %v", err)) // plain fields only: cannot fail
	}
	return b
}

// DecodeRecord parses a stored record and checks it.
func DecodeRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Check verifies r's invariants.
func (r *Record) Check() error {
	switch {
	case r.Version != recordVersion:
		return fmt.Errorf("%w: version %d, want %d", ErrBadRecord, r.Version, recordVersion)
	case r.Volume == "":
		return fmt.Errorf("%w: no volume", ErrBadRecord)
	case r.Side != SideTarget && r.Side != SideSource:
		return fmt.Errorf("%w: side %q", ErrBadRecord, r.Side)
	case r.Pending != 0 && r.Pending <= r.Applied:
		return fmt.Errorf("%w: pending checkpoint %d not after applied %d", ErrBadRecord, r.Pending, r.Applied)
	case r.Pending == 0 && (r.Stage != 0 || r.PendingBytes != 0 || r.PendingShipped != 0 || r.PendingFallbacks != 0):
		return fmt.Errorf("%w: a stage or pending bytes without a pending checkpoint", ErrBadRecord)
	case r.Done < -1:
		return fmt.Errorf("%w: done slot %d", ErrBadRecord, r.Done)
	case r.PendingBytes < 0 || r.PendingShipped < 0 || r.PendingFallbacks < 0 || r.ShippedBytes < 0 || r.Fallbacks < 0 ||
		r.LastShipped < 0 || r.LastDuration < 0 || r.LastFallbacks < 0:
		return fmt.Errorf("%w: negative counter", ErrBadRecord)
	}
	return nil
}

// Age is the age at now of the checkpoint B is at (the recovery point);
// 0 when none was applied.
func (r *Record) Age(now time.Time) time.Duration {
	if r.Applied == 0 || r.AppliedAt == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, r.AppliedAt))
}

// Throughput is the last checkpoint's bytes shipped per second of its
// duration (0 when unknown).
func (r *Record) Throughput() float64 {
	if r.LastDuration <= 0 {
		return 0
	}
	return float64(r.LastShipped) / time.Duration(r.LastDuration).Seconds()
}
