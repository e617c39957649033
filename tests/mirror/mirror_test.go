package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/mirror"
)

const (
	volName   = "vm"
	volSize   = 8 << 20
	chunkSize = 1 << 20
	// waitLong bounds a wait for an event (a checkpoint applied); it is
	// no timing assertion, only a guard against a hang.
	waitLong = 3 * time.Minute
)

// twoClusters starts A and B (with bcfg) with a volume at A and
// returns clients.
func twoClusters(t *testing.T, bcfg cluster.Config) (a, b *cluster.Cluster, ca, cb *client.Client) {
	t.Helper()
	a = clustertest.New(t, cluster.Config{})
	b = clustertest.New(t, bcfg)
	ca, cb = clustertest.Client(t, a), clustertest.Client(t, b)
	if _, err := ca.CreateVolume(t.Context(), volName, volSize, client.VolumeOptions{ChunkSize: chunkSize}); err != nil {
		t.Fatal(err)
	}
	return a, b, ca, cb
}

func endpoint(c *cluster.Cluster) mirror.Endpoint {
	return mirror.Endpoint{Masters: []string{c.MasterAddr()}, TLSDir: c.TLSDir()}
}

// writer writes 4 KiB blocks of random bytes at random offsets of the
// volume at A until stop, as fast as it can; it returns the number of
// writes once stopped.
type writer struct {
	stop  chan struct{}
	done  chan struct{}
	count atomic.Int64
	err   error
}

func startWriter(t *testing.T, c *client.Client, seed uint64) *writer {
	t.Helper()
	v, err := c.OpenVolume(t.Context(), volName)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer v.Close()
		rng := rand.New(rand.NewPCG(seed, seed))
		buf := make([]byte, 4096)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			// Most writes in the first half: some chunks change, others
			// stay shared with the previous checkpoint.
			blocks := int64(volSize / 4096)
			if rng.IntN(4) != 0 {
				blocks /= 2
			}
			if _, err := v.WriteAt(buf, rng.Int64N(blocks)*4096); err != nil {
				w.err = err
				return
			}
			w.count.Add(1)
		}
	}()
	return w
}

func (w *writer) halt(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatalf("writer at A: %v", w.err)
	}
}

// image reads the whole of volume name; an error means the sample is
// void (a promote at B fenced the chunks the read had mapped).
func image(ctx context.Context, c *client.Client, name string) ([]byte, error) {
	v, err := c.OpenVolume(ctx, name)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	buf := make([]byte, v.Size())
	if _, err := v.ReadAtContext(ctx, buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// sampler reads B's volume over and over until stopped and keeps the
// hash of every read that succeeded.
type sampler struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples [][sha256.Size]byte
	voided  int
}

func startSampler(c *client.Client) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			img, err := image(ctx, c, volName)
			cancel()
			s.mu.Lock()
			if err != nil {
				s.voided++
			} else {
				s.samples = append(s.samples, sha256.Sum256(img))
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sampler) halt() ([][sha256.Size]byte, int) {
	close(s.stop)
	<-s.done
	return s.samples, s.voided
}

// checkpoints reads every checkpoint snapshot A holds, by id.
func checkpoints(t *testing.T, c *client.Client) map[uint64][]byte {
	t.Helper()
	snaps, err := c.VolumeSnapshots(t.Context(), volName)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64][]byte{}
	for _, s := range snaps {
		id, ok := mirror.ParseCheckpoint(s.Name)
		if !ok {
			continue
		}
		img, err := image(t.Context(), c, s.Name)
		if err != nil {
			t.Fatalf("read checkpoint %s at A: %v", s.Name, err)
		}
		out[id] = img
	}
	return out
}

// changedBytes is the bytes of the 64 KiB blocks that differ between
// consecutive checkpoints 1..last (checkpoint 0: zeros), by content.
func changedBytes(ckpts map[uint64][]byte, last uint64) int64 {
	prev := make([]byte, volSize)
	var n int64
	for id := uint64(1); id <= last; id++ {
		n += blocksDiffer(prev, ckpts[id])
		prev = ckpts[id]
	}
	return n
}

// blocksDiffer is the bytes of the 64 KiB blocks that differ between two
// images of the volume.
func blocksDiffer(a, b []byte) int64 {
	var n int64
	for off := 0; off < volSize; off += mirror.BlockSize {
		if !bytes.Equal(a[off:off+mirror.BlockSize], b[off:off+mirror.BlockSize]) {
			n += mirror.BlockSize
		}
	}
	return n
}

// checkSamples fails unless every sample equals exactly one checkpoint
// (or the zeros B's volume starts with).
func checkSamples(t *testing.T, samples [][sha256.Size]byte, ckpts map[uint64][]byte) map[uint64]int {
	t.Helper()
	byHash := map[[sha256.Size]byte]uint64{sha256.Sum256(make([]byte, volSize)): 0}
	for id, img := range ckpts {
		byHash[sha256.Sum256(img)] = id
	}
	seen := map[uint64]int{}
	for i, h := range samples {
		id, ok := byHash[h]
		if !ok {
			t.Fatalf("sample %d of B's volume equals no checkpoint of A's (%d checkpoints)", i, len(ckpts))
		}
		seen[id]++
	}
	return seen
}

// awaitApplied waits for n more checkpoints from ch.
func awaitApplied(t *testing.T, ch <-chan mirror.Record, n int) mirror.Record {
	t.Helper()
	var r mirror.Record
	timeout := time.NewTimer(waitLong)
	defer timeout.Stop()
	for i := 0; i < n; i++ {
		select {
		case r = <-ch:
		case <-timeout.C:
			t.Fatalf("no checkpoint applied in %s (%d of %d)", waitLong, i, n)
		}
	}
	return r
}

// TestMirrorCheckpoints: writes at A while the mirror runs in process;
// every read of B's volume equals exactly one of A's checkpoints; once
// the writes stop B converges to A; the bytes shipped are the bytes of
// the 64 KiB blocks changed between checkpoints.
func TestMirrorCheckpoints(t *testing.T) {
	t.Parallel()
	a, b, ca, cb := twoClusters(t, cluster.Config{})
	applied := make(chan mirror.Record, 1024)
	reg := prometheus.NewRegistry()
	m, err := mirror.New(mirror.Config{Volume: volName, From: endpoint(a), To: endpoint(b),
		Interval: 50 * time.Millisecond, KeepSource: true, Logger: clustertest.Logger(), Metrics: reg,
		OnApplied: func(r mirror.Record) { applied <- r }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- m.Run(ctx) }()

	w := startWriter(t, ca, 1)
	s := startSampler(cb)
	awaitApplied(t, applied, 4)
	w.halt(t)
	// Two more: the second began after the last write.
	awaitApplied(t, applied, 2)
	// A flush barrier: a write at A, then WaitApplied; B holds it after.
	marker := []byte("flushed before the barrier")
	mv, err := ca.OpenVolume(t.Context(), volName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mv.WriteAt(marker, volSize-4096); err != nil {
		t.Fatal(err)
	}
	mv.Close()
	start := time.Now()
	at, err := mirror.WaitApplied(t.Context(), ca, cb, volName, nil, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WaitApplied after a write: checkpoint %d at B after %s", at, time.Since(start).Round(time.Millisecond))
	// A read that meets an activation fails (the volume's inode went):
	// read again; any read that succeeds must hold the write.
	clustertest.Eventually(t, waitLong, func() error {
		img, err := image(t.Context(), cb, volName)
		if err != nil {
			return err
		}
		if !bytes.Equal(img[volSize-4096:volSize-4096+len(marker)], marker) {
			t.Fatal("B after WaitApplied lacks the write made before it")
		}
		return nil
	})
	samples, voided := s.halt()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatalf("mirror run: %v", err)
	}
	last, err := mirror.ReadRecord(t.Context(), cb, volName)
	if err != nil {
		t.Fatal(err)
	}
	// The metrics show the record the mirror last wrote at B.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gauges := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			gauges[mf.GetName()] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		}
	}
	if gauges["catena_mirror_applied_checkpoint"] != float64(last.Applied) ||
		gauges["catena_mirror_shipped_bytes_total"] != float64(last.ShippedBytes) ||
		gauges["catena_mirror_checkpoints_total"] != float64(last.Checkpoints) {
		t.Fatalf("metrics %v; want applied %d, shipped %d, checkpoints %d", gauges, last.Applied, last.ShippedBytes, last.Checkpoints)
	}

	ckpts := checkpoints(t, ca)
	for id := uint64(1); id <= last.Applied; id++ {
		if ckpts[id] == nil {
			t.Fatalf("checkpoint %d missing at A (kept: %d)", id, len(ckpts))
		}
	}
	seen := checkSamples(t, samples, ckpts)
	final, err := image(t.Context(), cb, volName)
	if err != nil {
		t.Fatal(err)
	}
	live, err := image(t.Context(), ca, volName)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(final, ckpts[last.Applied]) || !bytes.Equal(final, live) {
		t.Fatalf("B's volume after the last checkpoint %d differs from A's", last.Applied)
	}
	// Per checkpoint: at least the changed blocks were shipped (fewer
	// would leave B, at that checkpoint, with an old block).
	var perCkpt []mirror.Record
	for len(applied) > 0 {
		perCkpt = append(perCkpt, <-applied)
	}
	for _, r := range perCkpt {
		if r.Applied < 2 || ckpts[r.Applied-1] == nil {
			continue
		}
		c := blocksDiffer(ckpts[r.Applied-1], ckpts[r.Applied])
		if r.LastShipped < c {
			t.Errorf("checkpoint %d: shipped %d bytes, but %d changed since %d", r.Applied, r.LastShipped, c, r.Applied-1)
		}
	}
	changed := changedBytes(ckpts, last.Applied)
	ratio := float64(last.ShippedBytes) / float64(changed)
	t.Logf("%d writes at A, %d checkpoints; %d samples of B (%d void) saw %d distinct checkpoints; shipped %d bytes for %d changed (%.3f), %d fallbacks",
		w.count.Load(), last.Applied, len(samples), voided, len(seen), last.ShippedBytes, changed, ratio, last.Fallbacks)
	if last.Fallbacks == 0 && ratio > 1.1 {
		t.Fatalf("shipped %d bytes for %d changed: ratio %.3f above 1.1 with no fallback", last.ShippedBytes, changed, ratio)
	}
	// B keeps its current checkpoint's snapshot, and the next one's when
	// the mirror stopped between its snapshot and its record; or only the
	// next one's when it stopped after removing the older ones and before
	// the record (finish: snapshot N, remove those before N, record N;
	// B's volume is at N from the promote on, and a restart finishes the
	// record).
	snaps, err := cb.VolumeSnapshots(t.Context(), volName)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, sn := range snaps {
		id, _ := mirror.ParseCheckpoint(sn.Name)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	okIDs := slices.Equal(ids, []uint64{last.Applied}) || slices.Equal(ids, []uint64{last.Applied, last.Applied + 1}) ||
		slices.Equal(ids, []uint64{last.Applied + 1})
	if !okIDs {
		t.Fatalf("B's checkpoint snapshots %v; want %d, %d and %d, or %d", ids, last.Applied, last.Applied, last.Applied+1, last.Applied+1)
	}
}
