package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/clock"
)

// StageName is the overlay of B's volume that a checkpoint is shipped
// into: VOL+mirror.
const StageName = "mirror"

// Endpoint names a cluster: its master addresses and the TLS directory
// of a client or admin certificate of its CA ("" for plain TCP).
type Endpoint struct {
	Masters []string
	TLSDir  string
}

// Config configures a Mirror.
type Config struct {
	Volume string
	// From is cluster A (the source), To cluster B (the target).
	From, To Endpoint
	// Interval is the period of checkpoints (default 1 s): a checkpoint
	// starts Interval after the previous one started, or at once when
	// that one took longer.
	Interval time.Duration
	// StageLease is the lease of the staging overlay at B and of the
	// writer session the mirror holds on B's volume (default 10 min): a
	// mirror restarted within it resumes the checkpoint it was shipping
	// without shipping its blocks again, and nobody else writes B's
	// volume meanwhile.
	StageLease time.Duration
	// Owner is the writer identity at B (default mirror@HOST/VOL): a
	// restarted mirror with the same identity takes its sessions back.
	Owner string
	// KeepSource keeps every checkpoint snapshot at A instead of
	// releasing each once the next is applied at B (audits, tests).
	KeepSource bool
	// MaxIOSize bounds one read at A or write at B (default 1 MiB).
	MaxIOSize int64
	// ShipConcurrency is how many pieces of MaxIOSize a checkpoint has
	// in flight at once within a chunk slot (a file, for a tree),
	// default 4: each is a read at A and a durable write at B.
	ShipConcurrency int
	Clock           clock.Clock
	Logger          *slog.Logger
	// Metrics, when set, receives the mirror's collectors (metrics.go).
	Metrics prometheus.Registerer
	// OnApplied, when set, is called after each checkpoint is applied
	// at B with B's record.
	OnApplied func(Record)
	// SyncFlush: output buffering, as in Remus. The records say so, a
	// flush of the volume at A through a client with FlushBarrier
	// (catena nbd's), or a Sync of a file of the tree opened by its
	// path, returns only once a checkpoint taken after it is applied at
	// B, and the mirror starts a checkpoint as soon as a flush asks for
	// one instead of waiting out Interval.
	SyncFlush bool
}

// Mirror ships checkpoints of one volume from cluster A to cluster B.
// Step and Run must not be called concurrently.
type Mirror struct {
	cfg  Config
	clk  clock.Clock
	log  *slog.Logger
	a, b *client.Client
	ra   *rpcs
	mets *mirrorMetrics
	// held: the writer session on B's volume, which the last promote
	// left to the mirror; kept until the next promote replaces it.
	held *client.Volume
	// recordIno: the inode of A's record file, looked up once for the
	// flush requests polled between checkpoints (flushAsked).
	recordIno uint64
	// trees: the last two checkpoint trees walked at A (a tree's
	// mirror), by checkpoint number modulo 2.
	trees [2]treeCache
}

// New returns a mirror; it connects lazily.
func New(cfg Config) (*Mirror, error) {
	if cfg.Volume == "" || len(cfg.From.Masters) == 0 || len(cfg.To.Masters) == 0 {
		return nil, fmt.Errorf("mirror: a volume, a source and a target are required")
	}
	if IsTree(cfg.Volume) {
		clean := path.Clean(cfg.Volume)
		switch {
		case clean != cfg.Volume:
			return nil, fmt.Errorf("mirror: directory %q: give it as %q", cfg.Volume, clean)
		case clean == "/" || clean == RecordDir || strings.HasPrefix(clean, RecordDir+"/"):
			return nil, fmt.Errorf("mirror: directory %s cannot be mirrored (the root, or the mirrors' own records)", clean)
		}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.StageLease <= 0 {
		cfg.StageLease = 10 * time.Minute
	}
	if cfg.MaxIOSize <= 0 {
		cfg.MaxIOSize = 1 << 20
	}
	cfg.MaxIOSize = max(cfg.MaxIOSize/BlockSize, 1) * BlockSize
	if cfg.ShipConcurrency <= 0 {
		cfg.ShipConcurrency = 4
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = "mirror@" + host + "/" + cfg.Volume
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	clk := clock.Or(cfg.Clock)
	a, err := client.New(client.Config{Masters: cfg.From.Masters, TLSDir: cfg.From.TLSDir, Clock: cfg.Clock})
	if err != nil {
		return nil, err
	}
	b, err := client.New(client.Config{Masters: cfg.To.Masters, TLSDir: cfg.To.TLSDir, Clock: cfg.Clock})
	if err != nil {
		a.Close()
		return nil, err
	}
	ra, err := newRPCs(cfg.From.Masters, cfg.From.TLSDir, clk)
	if err != nil {
		a.Close()
		b.Close()
		return nil, err
	}
	return &Mirror{cfg: cfg, clk: clk, log: cfg.Logger.With("volume", cfg.Volume), a: a, b: b, ra: ra,
		mets: newMetrics(cfg.Metrics, cfg.Volume, clk)}, nil
}

// Close releases the connections. The writer session on B's volume is
// left to lapse (or to a restarted mirror of the same Owner).
func (m *Mirror) Close() error {
	if m.held != nil {
		m.held.Close()
	}
	m.ra.close()
	return errors.Join(m.a.Close(), m.b.Close())
}

// Run takes and ships checkpoints every Interval until ctx ends (nil)
// or B's volume is promoted or is no mirror of A (ErrPromoted,
// ErrNotMirror). Other errors are logged and the checkpoint retried.
func (m *Mirror) Run(ctx context.Context) error {
	if m.cfg.SyncFlush {
		defer m.endSyncFlush()
	}
	for fails := 0; ; {
		start := m.clk.Now()
		asked := m.flushAsked(ctx)
		_, err := m.Step(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrPromoted), errors.Is(err, ErrNotMirror):
			return err
		case err != nil:
			fails++
			m.log.Warn("mirror: checkpoint failed; retrying", "err", err, "failures", fails)
		default:
			fails = 0
		}
		wait := m.cfg.Interval - m.clk.Now().Sub(start)
		if err != nil {
			wait = max(wait, min(time.Duration(fails)*100*time.Millisecond, 2*time.Second))
			if !clock.Sleep(ctx, m.clk, wait) {
				return nil
			}
			continue
		}
		if !m.waitNext(ctx, wait, asked) {
			return nil
		}
	}
}

// flushPoll is how often a --sync-flush mirror looks for a flush asking
// for a checkpoint while it waits for the next one.
const flushPoll = 10 * time.Millisecond

// waitNext waits wait for the next checkpoint, or less when a flush at A
// asked for one since the last began (asked: the request then); false
// when ctx ended.
func (m *Mirror) waitNext(ctx context.Context, wait time.Duration, asked string) bool {
	if !m.cfg.SyncFlush {
		return wait <= 0 || clock.Sleep(ctx, m.clk, wait)
	}
	end := m.clk.Now().Add(wait)
	for {
		left := end.Sub(m.clk.Now())
		if left <= 0 || m.flushAsked(ctx) != asked {
			return ctx.Err() == nil
		}
		if !clock.Sleep(ctx, m.clk, min(left, flushPoll)) {
			return false
		}
	}
}

// flushAsked returns A's latest request for a checkpoint by a flush
// (FlushAttr; "" when none or unreadable).
func (m *Mirror) flushAsked(ctx context.Context) string {
	if !m.cfg.SyncFlush {
		return ""
	}
	if m.recordIno == 0 {
		fi, err := m.a.Stat(ctx, RecordPath(m.cfg.Volume))
		if err != nil {
			return ""
		}
		m.recordIno = fi.Inode
	}
	b, err := m.a.GetXattr(ctx, m.recordIno, FlushAttr)
	if errors.Is(err, client.ErrNotFound) {
		m.recordIno = 0 // the record's file was made again: look it up
	}
	if err != nil {
		return ""
	}
	return string(b)
}

// endSyncFlush clears SyncFlush in A's record when the mirror stops, so
// that flushes at A stop waiting for checkpoints nobody takes (a mirror
// killed leaves it set: flushes at A then wait FlushBarrier.Timeout and
// fail).
func (m *Mirror) endSyncFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rec, err := ReadRecord(ctx, m.a, m.cfg.Volume)
	if err != nil || !rec.SyncFlush {
		return
	}
	rec.SyncFlush = false
	if err := WriteRecord(ctx, m.a, rec); err != nil {
		m.log.Warn("mirror: clearing sync-flush at the source", "err", err)
	}
}

func (m *Mirror) masters(e Endpoint) string { return strings.Join(e.Masters, ",") }

// Step brings B's volume to a new checkpoint of A's, or finishes the
// checkpoint a previous run left in flight, and returns B's record.
//
// The order of events for checkpoint N, each durable before the next:
//  1. snapshot VOL@mirror-N at A (the checkpoint);
//  2. B's record: Pending N;
//  3. overlay VOL+mirror at B (a clone of B's volume, at N-1), its inode
//     in B's record (Stage);
//  4. the changed blocks written into the overlay, B's record's Done
//     advanced after each chunk slot;
//  5. the overlay promoted: B's volume is N (one Raft entry at B: the
//     activation record);
//  6. snapshot VOL@mirror-N at B, and B's record: Applied N;
//  7. A's VOL@mirror-(N-1) released.
//
// A crash before 5 leaves B's volume at N-1; a restart ships the slots
// after Done into the same overlay when it is still there (its lease has
// not lapsed), else into a new one. A crash between 5 and 6 is found by
// B's volume's inode being Stage: the restart does 6 and 7 only.
func (m *Mirror) Step(ctx context.Context) (*Record, error) {
	vol := m.cfg.Volume
	rec, err := m.targetRecord(ctx)
	if err != nil {
		return nil, err
	}
	held, err := m.sourceCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range held {
		if id < rec.Applied && !m.cfg.KeepSource || id > rec.Applied && id != rec.Pending {
			if err := m.releaseCheckpoint(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	has := func(id uint64) bool {
		for _, h := range held {
			if h == id {
				return true
			}
		}
		return false
	}
	if rec.Pending != 0 && !has(rec.Pending) {
		m.log.Warn("mirror: the pending checkpoint is gone at the source; taking a new one", "checkpoint", rec.Pending)
		m.dropPending(rec)
	}
	if rec.Pending == 0 {
		n := rec.Applied + 1
		// The checkpoint's time is taken before the snapshot: it holds
		// every write acknowledged before the call began (and perhaps
		// some after), so B holds at least all writes older than its
		// AppliedAt (the recovery point never looks fresher than it is).
		at := m.clk.Now()
		var err error
		if IsTree(vol) {
			_, err = m.a.Snapshot(ctx, vol, CheckpointName(n))
		} else {
			_, err = m.a.SnapshotVolume(ctx, vol, CheckpointName(n))
		}
		if err != nil && !errors.Is(err, client.ErrExist) {
			return nil, err
		}
		rec.Pending, rec.PendingAt, rec.Done = n, at.UnixNano(), -1
		if err := m.writeBoth(ctx, rec); err != nil {
			return nil, err
		}
	}
	apply := m.apply
	if IsTree(vol) {
		apply = m.applyTree
	}
	if err := apply(ctx, rec, rec.Applied != 0 && !has(rec.Applied)); err != nil {
		return nil, err
	}
	return rec, nil
}

// releaseCheckpoint removes checkpoint id's snapshot at A.
func (m *Mirror) releaseCheckpoint(ctx context.Context, id uint64) error {
	return removeCheckpoint(ctx, m.a, m.cfg.Volume, id)
}

// targetRecord returns B's record, creating B's volume and its record
// the first time.
func (m *Mirror) targetRecord(ctx context.Context) (*Record, error) {
	vol := m.cfg.Volume
	rec, err := ReadRecord(ctx, m.b, vol)
	if err == nil {
		switch {
		case rec.Side != SideTarget:
			return nil, fmt.Errorf("%w: volume %s at %s is the source of a mirror (to fail back onto it: --resync)", ErrNotMirror, vol, m.masters(m.cfg.To))
		case rec.Promoted:
			return nil, fmt.Errorf("%w: volume %s at %s", ErrPromoted, vol, m.masters(m.cfg.To))
		}
		return rec, nil
	}
	if !errors.Is(err, ErrNoRecord) {
		return nil, err
	}
	if IsTree(vol) {
		rec = &Record{Version: recordVersion, Volume: vol, Side: SideTarget, Source: m.masters(m.cfg.From), Target: m.masters(m.cfg.To), Done: -1}
		if err := m.targetTree(ctx, rec); err != nil {
			return nil, err
		}
		return rec, nil
	}
	if _, err := m.b.VolumeInfo(ctx, vol); err == nil {
		return nil, fmt.Errorf("%w: volume %s exists at %s without a mirror record", ErrNotMirror, vol, m.masters(m.cfg.To))
	} else if !errors.Is(err, client.ErrNotFound) {
		return nil, err
	}
	vi, err := m.a.VolumeInfo(ctx, vol)
	if err != nil {
		return nil, err
	}
	rec = &Record{Version: recordVersion, Volume: vol, Side: SideTarget, Source: m.masters(m.cfg.From), Target: m.masters(m.cfg.To), Done: -1}
	// The record first: a volume without one is refused as no mirror.
	if err := WriteRecord(ctx, m.b, m.stamp(rec)); err != nil {
		return nil, err
	}
	if _, err := m.b.CreateVolume(ctx, vol, vi.Size, client.VolumeOptions{Replication: vi.Replication, ChunkSize: vi.ChunkSize}); err != nil && !errors.Is(err, client.ErrExist) {
		return nil, err
	}
	m.log.Info("mirror: target volume created", "size", vi.Size)
	return rec, nil
}

// sourceCheckpoints lists the checkpoints A holds, ascending.
func (m *Mirror) sourceCheckpoints(ctx context.Context) ([]uint64, error) {
	return Checkpoints(ctx, m.a, m.cfg.Volume)
}

// Checkpoints lists the checkpoint snapshots of volume (or tree) vol on
// the cluster c talks to, ascending.
func Checkpoints(ctx context.Context, c *client.Client, vol string) ([]uint64, error) {
	var names []string
	if IsTree(vol) {
		fis, err := c.Snapshots(ctx, vol)
		if err != nil {
			return nil, err
		}
		for _, fi := range fis {
			names = append(names, fi.Name)
		}
	} else {
		vis, err := c.VolumeSnapshots(ctx, vol)
		if err != nil {
			return nil, err
		}
		for _, vi := range vis {
			names = append(names, vi.Name)
		}
	}
	var out []uint64
	for _, name := range names {
		if id, ok := ParseCheckpoint(name); ok {
			out = append(out, id)
		}
	}
	return sortIDs(out), nil
}

func sortIDs(ids []uint64) []uint64 {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

func (m *Mirror) dropPending(rec *Record) {
	rec.Pending, rec.PendingAt, rec.Stage, rec.Done = 0, 0, 0, -1
	rec.PendingBytes, rec.PendingShipped, rec.PendingFallbacks = 0, 0, 0
}

// stamp dates rec before it is written at the target (and shows it in
// the metrics).
func (m *Mirror) stamp(rec *Record) *Record {
	rec.Updated = m.clk.Now().UnixNano()
	rec.SyncFlush = m.cfg.SyncFlush
	m.mets.saw(rec)
	return rec
}

// writeBoth stores rec at B, then its copy at A (for status there).
func (m *Mirror) writeBoth(ctx context.Context, rec *Record) error {
	if err := WriteRecord(ctx, m.b, m.stamp(rec)); err != nil {
		return err
	}
	cp := *rec
	cp.Side = SideSource
	return WriteRecord(ctx, m.a, &cp)
}

// chunkMap returns the chunk refs of volume name at A, with the chunk
// infos (capabilities, chains) by slot.
func (m *Mirror) chunkMap(ctx context.Context, name string) ([]ChunkRef, map[int64]*api.ChunkInfo, error) {
	vi, err := m.a.VolumeInfo(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	cis, err := m.ra.chunks(ctx, vi.Inode)
	if err != nil {
		return nil, nil, err
	}
	refs := make([]ChunkRef, 0, len(cis))
	infos := make(map[int64]*api.ChunkInfo, len(cis))
	for _, ci := range cis {
		r := ChunkRef{Index: ci.GetIndex(), Handle: ci.GetHandle(), Epoch: ci.GetEpoch()}
		for _, s := range ci.GetChain() {
			r.Chain = append(r.Chain, s.GetId())
		}
		refs = append(refs, r)
		infos[r.Index] = ci
	}
	return refs, infos, nil
}

// serverAddr is the address of server id in ci's chain ("" if absent).
func serverAddr(ci *api.ChunkInfo, id uint64) string {
	for _, s := range ci.GetChain() {
		if s.GetId() == id {
			return s.GetAddr()
		}
	}
	return ""
}
