package cluster_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// Failure tests: one per case of the "Survive failures" issue. Each writes
// acknowledged data before and during the fault, then reads every
// acknowledged byte back; the cleanup (clustertest.New) then waits for
// every chain to have its replication factor again and checks that all
// replicas are byte-identical.

// failTimeout bounds each wait for the cluster to react to a fault.
const failTimeout = 30 * time.Second

// failureConfig has short leases so failures are detected within a second.
func failureConfig(servers int) cluster.Config {
	return cluster.Config{
		Chunkservers:      servers,
		HeartbeatInterval: 50 * time.Millisecond,
		Lease:             400 * time.Millisecond,
		DriftMargin:       100 * time.Millisecond,
		RepairInterval:    50 * time.Millisecond,
		ScrubInterval:     200 * time.Millisecond,
	}
}

// failFileSize is the size of the file the failure tests write: two chunks.
const failFileSize = 2 * chunkSize

// writer writes random pieces into one file, one at a time, and keeps the
// reference of what was acknowledged. A write that fails is retried with
// the same bytes until it succeeds, so the reference stays exact.
type writer struct {
	f   *client.File
	r   *rand.Rand
	ref []byte

	acked  atomic.Int64
	maxLat atomic.Int64 // longest acknowledged write, nanoseconds
	stop   chan struct{}
	done   chan error
}

// newWriter creates path with replication 3 and fills it with random bytes.
func newWriter(t *testing.T, cl *client.Client, path string, r *rand.Rand) *writer {
	t.Helper()
	f := create(t, cl, path)
	w := &writer{f: f, r: r, ref: randBytes(r, failFileSize)}
	writeAt(t, f, w.ref, 0)
	if err := f.Sync(); err != nil {
		t.Fatalf("sync %s: %v", path, err)
	}
	return w
}

// start runs the writer in the background until finish.
func (w *writer) start() {
	w.stop = make(chan struct{})
	w.done = make(chan error, 1)
	go func() { w.done <- w.loop() }()
}

func (w *writer) loop() error {
	for {
		select {
		case <-w.stop:
			return nil
		default:
		}
		off := w.r.IntN(len(w.ref))
		n := 1 + w.r.IntN(min(len(w.ref)-off, 16*kib))
		p := randBytes(w.r, n)
		deadline := time.Now().Add(failTimeout)
		begin := time.Now()
		for {
			_, err := w.f.WriteAt(p, int64(off))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("write %d bytes at %d: still failing after %v: %w", n, off, failTimeout, err)
			}
		}
		if lat := time.Since(begin); int64(lat) > w.maxLat.Load() {
			w.maxLat.Store(int64(lat))
		}
		copy(w.ref[off:], p)
		w.acked.Add(1)
	}
}

// finish stops the writer and fails the test if a write never succeeded.
func (w *writer) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	if err := <-w.done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if err := w.f.Sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	t.Logf("writer: %d writes acknowledged, longest %v", w.acked.Load(), time.Duration(w.maxLat.Load()))
}

// awaitWrites waits until the writer has n more acknowledged writes.
func (w *writer) awaitWrites(t *testing.T, n int64) {
	t.Helper()
	target := w.acked.Load() + n
	clustertest.Eventually(t, failTimeout, func() error {
		select {
		case err := <-w.done:
			w.done <- err
			return fmt.Errorf("writer stopped: %v", err)
		default:
		}
		if got := w.acked.Load(); got < target {
			return fmt.Errorf("%d writes acknowledged, waiting for %d", got, target)
		}
		return nil
	})
}

// chainOf returns the chain of chunk index of path as chunkserver slots.
func chainOf(t *testing.T, c *cluster.Cluster, cl *client.Client, path string, index int64) (handle uint64, slots []int) {
	t.Helper()
	_, chunks, err := cl.StatChunks(t.Context(), path)
	if err != nil {
		t.Fatalf("StatChunks %s: %v", path, err)
	}
	for _, ch := range chunks {
		if ch.Index != index {
			continue
		}
		for _, s := range ch.Chain {
			i := c.ChunkserverIndex(s.ID)
			if i < 0 {
				t.Fatalf("chain member %d is no chunkserver of the cluster", s.ID)
			}
			slots = append(slots, i)
		}
		return ch.Handle, slots
	}
	t.Fatalf("%s has no chunk %d", path, index)
	return 0, nil
}

// awaitLeft waits until no chain of path holds chunkserver slot i.
func awaitLeft(t *testing.T, c *cluster.Cluster, cl *client.Client, path string, i int) {
	t.Helper()
	id := c.ChunkserverID(i)
	clustertest.Eventually(t, failTimeout, func() error {
		_, chunks, err := cl.StatChunks(t.Context(), path)
		if err != nil {
			return err
		}
		for _, ch := range chunks {
			for _, s := range ch.Chain {
				if s.ID == id {
					return fmt.Errorf("chunk %d: chain still holds server %d (slot %d), epoch %d", ch.Index, id, i, ch.Epoch)
				}
			}
		}
		return nil
	})
}

// awaitRepaired waits for every chain to be whole again.
func awaitRepaired(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failTimeout)
	defer cancel()
	if err := c.AwaitRepaired(ctx); err != nil {
		t.Fatal(err)
	}
}

func chunkStats(t *testing.T, c *cluster.Cluster) *api.ChunkStats {
	t.Helper()
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st.GetChunks()
}

// verify reads path back through a fresh client and compares it with ref.
func verify(t *testing.T, c *cluster.Cluster, path string, ref []byte) {
	t.Helper()
	cl := clustertest.Client(t, c)
	assertContent(t, cl, path, ref)
}

// killMember kills the chain member at position pos of chunk 0 while a
// writer runs, and checks that writes go on, the chain drops the member
// and is repaired from the spare chunkserver.
func killMember(t *testing.T, positions ...int) {
	c := clustertest.New(t, failureConfig(3+len(positions)))
	cl := clustertest.Client(t, c)
	w := newWriter(t, cl, "/f", newRand(t))
	_, chain := chainOf(t, c, cl, "/f", 0)
	w.start()
	w.awaitWrites(t, 20)
	var victims []int
	for _, pos := range positions {
		victims = append(victims, chain[pos])
		if err := c.Kill(chain[pos]); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range victims {
		awaitLeft(t, c, cl, "/f", v)
	}
	w.awaitWrites(t, 50) // writes flow through the shortened chain
	awaitRepaired(t, c)
	w.awaitWrites(t, 20) // and through the repaired one
	w.finish(t)
	verify(t, c, "/f", w.ref)
	_, after := chainOf(t, c, cl, "/f", 0)
	if len(after) != 3 {
		t.Fatalf("chain after repair %v, want 3 members", after)
	}
	for _, v := range victims {
		if slices.Contains(after, v) {
			t.Fatalf("chain after repair %v holds dead slot %d", after, v)
		}
	}
}

func TestHeadDies(t *testing.T)   { killMember(t, 0) }
func TestMiddleDies(t *testing.T) { killMember(t, 1) }
func TestTailDies(t *testing.T)   { killMember(t, 2) }

// TestTwoOfThreeDie: head and middle die at once; the tail alone carries
// the chunk until two spares have joined.
func TestTwoOfThreeDie(t *testing.T) { killMember(t, 0, 1) }

// TestBackupDiesDuringRecovery: a member dies, returns and dies again
// while it is being resynced (its copy is slowed by the repair rate
// limit); it returns once more and the repair completes.
func TestBackupDiesDuringRecovery(t *testing.T) {
	cfg := failureConfig(3) // no spare: the returning server is the only target
	cfg.RepairBytesPerSec = 256 * kib
	c := clustertest.New(t, cfg)
	cl := clustertest.Client(t, c)
	w := newWriter(t, cl, "/f", newRand(t))
	_, chain := chainOf(t, c, cl, "/f", 0)
	backup := chain[1]
	w.start()
	w.awaitWrites(t, 20)
	if err := c.Kill(backup); err != nil {
		t.Fatal(err)
	}
	awaitLeft(t, c, cl, "/f", backup)
	w.awaitWrites(t, 50)
	// Wiped, so its recovery is a full copy: seconds at the rate limit.
	if err := c.WipeChunkserver(backup); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(t.Context(), backup); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, failTimeout, func() error {
		if st := chunkStats(t, c); st.GetReReplicating() == 0 {
			return fmt.Errorf("no repair in progress (%d done)", st.GetRepairsDone())
		}
		return nil
	})
	if err := c.Kill(backup); err != nil {
		t.Fatal(err)
	}
	w.awaitWrites(t, 50) // the two survivors keep serving
	if err := c.Restart(t.Context(), backup); err != nil {
		t.Fatal(err)
	}
	awaitRepaired(t, c)
	w.finish(t)
	verify(t, c, "/f", w.ref)
	if _, after := chainOf(t, c, cl, "/f", 0); !slices.Contains(after, backup) || len(after) != 3 {
		t.Fatalf("chain after recovery %v, want 3 members with slot %d", after, backup)
	}
}

// absent kills a member of chunk 0's chain, waits until it has left every
// chain, writes while it is away, optionally wipes it, and brings it back;
// it returns the bytes the master counted for the repair.
func absent(t *testing.T, wipe bool) (repaired int64, w *writer, c *cluster.Cluster) {
	c = clustertest.New(t, failureConfig(3)) // the returning server is the only target
	cl := clustertest.Client(t, c)
	w = newWriter(t, cl, "/f", newRand(t))
	_, chain := chainOf(t, c, cl, "/f", 0)
	victim := chain[2]
	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	awaitLeft(t, c, cl, "/f", victim)
	// A few small writes while it is away.
	r := newRand(t)
	for range 10 {
		off := r.IntN(failFileSize - 4*kib)
		p := randBytes(r, 4*kib)
		writeAt(t, w.f, p, int64(off))
		copy(w.ref[off:], p)
	}
	if wipe {
		if err := c.WipeChunkserver(victim); err != nil {
			t.Fatal(err)
		}
	}
	before := chunkStats(t, c)
	if err := c.Restart(t.Context(), victim); err != nil {
		t.Fatal(err)
	}
	awaitRepaired(t, c)
	after := chunkStats(t, c)
	if after.GetRepairsDone() < before.GetRepairsDone()+2 {
		t.Fatalf("repairs done %d -> %d, want both chunks repaired", before.GetRepairsDone(), after.GetRepairsDone())
	}
	if _, ch := chainOf(t, c, cl, "/f", 0); !slices.Contains(ch, victim) {
		t.Fatalf("chain %v does not hold the returning slot %d", ch, victim)
	}
	w.start()
	w.awaitWrites(t, 20)
	w.finish(t)
	verify(t, c, "/f", w.ref)
	return after.GetRepairedBytes() - before.GetRepairedBytes(), w, c
}

// TestReturnAfterShortAbsenceDeltaResync: a server that missed a few
// writes gets only what changed, far less than its chunks.
func TestReturnAfterShortAbsenceDeltaResync(t *testing.T) {
	n, _, _ := absent(t, false)
	t.Logf("delta resync copied %d bytes", n)
	// 10 writes of 4 KiB, rounded to 64 KiB blocks at worst.
	if n <= 0 || n > 10*64*kib {
		t.Fatalf("resync copied %d bytes, want a delta (0 < n <= %d of %d)", n, 10*64*kib, failFileSize)
	}
}

// TestReturnAfterDataDeletedFullCopy: a server that returns with an empty
// disk gets full copies.
func TestReturnAfterDataDeletedFullCopy(t *testing.T) {
	n, _, _ := absent(t, true)
	t.Logf("full copy copied %d bytes", n)
	if n < failFileSize {
		t.Fatalf("resync copied %d bytes, want full copies (>= %d)", n, failFileSize)
	}
}

// TestPartitionBetweenChainMembers: head and middle cannot talk for a
// while (writes stall, then go on once healed); then the head loses the
// master one way: its lease runs out, it stops serving and the master
// replaces it while it still runs.
func TestPartitionBetweenChainMembers(t *testing.T) {
	c := clustertest.New(t, failureConfig(4))
	cl := clustertest.Client(t, c)
	w := newWriter(t, cl, "/f", newRand(t))
	_, chain := chainOf(t, c, cl, "/f", 0)
	head, middle := c.ChunkserverNode(chain[0]), c.ChunkserverNode(chain[1])
	w.start()
	w.awaitWrites(t, 20)

	c.Partition(head, middle)
	acked := w.acked.Load()
	// Long enough for the chain to notice: several leases.
	timer := time.NewTimer(time.Second)
	<-timer.C
	t.Logf("%d writes acknowledged during the partition", w.acked.Load()-acked)
	c.Heal()
	w.awaitWrites(t, 50)

	c.PartitionOneWay(head, cluster.MasterNode)
	awaitLeft(t, c, cl, "/f", chain[0])
	w.awaitWrites(t, 50)
	awaitRepaired(t, c)
	w.finish(t)
	verify(t, c, "/f", w.ref)
}

// TestCorruptedBlock: the tail's copy of a block rots; a read still
// returns good bytes, the bad replica leaves the chain and is rebuilt. A
// rotten middle replica is found by the scrubber.
func TestCorruptedBlock(t *testing.T) {
	c := clustertest.New(t, failureConfig(4))
	cl := clustertest.Client(t, c)
	w := newWriter(t, cl, "/f", newRand(t))
	h, chain := chainOf(t, c, cl, "/f", 0)
	before := chunkStats(t, c)

	if err := c.CorruptReplica(h, chain[2]); err != nil {
		t.Fatal(err)
	}
	verify(t, c, "/f", w.ref) // the read hits the bad block at the tail
	clustertest.Eventually(t, failTimeout, func() error {
		if st := chunkStats(t, c); st.GetRepairsDone() <= before.GetRepairsDone() {
			return fmt.Errorf("no repair yet after a corrupt read (%d done)", st.GetRepairsDone())
		}
		return nil
	})
	awaitRepaired(t, c)

	// Nobody reads from the middle: the scrubber must find it.
	before = chunkStats(t, c)
	h, chain = chainOf(t, c, cl, "/f", 0)
	if err := c.CorruptReplicaAt(h, chain[1], 100*kib); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, failTimeout, func() error {
		if st := chunkStats(t, c); st.GetRepairsDone() <= before.GetRepairsDone() {
			return fmt.Errorf("scrubber has not reported the corrupt replica (%d repairs done)", st.GetRepairsDone())
		}
		return nil
	})
	awaitRepaired(t, c)
	w.start()
	w.awaitWrites(t, 20)
	w.finish(t)
	verify(t, c, "/f", w.ref)
}

// TestBadBlocksOnEveryReplica: each replica of a chunk rots in a
// different block, so no member is clean and none can just be replaced.
// The master keeps one member, restores its bad block from the others
// (RestoreBlocks), and brings them back by delta resync with their own
// bad blocks re-sent: every byte reads back and the replicas agree.
func TestBadBlocksOnEveryReplica(t *testing.T) {
	c := clustertest.New(t, failureConfig(3)) // no spare: the members must come back
	cl := clustertest.Client(t, c)
	w := newWriter(t, cl, "/f", newRand(t))
	h, chain := chainOf(t, c, cl, "/f", 0)
	for i, member := range chain {
		if err := c.CorruptReplicaAt(h, member, int64(i)*200*kib+5); err != nil {
			t.Fatal(err)
		}
	}
	// The scrubber finds every bad block; nothing is lost, so the reads
	// come back whole once the blocks are combined.
	clustertest.Eventually(t, failTimeout, func() error {
		got := make([]byte, len(w.ref))
		if _, err := w.f.ReadAt(got, 0); err != nil {
			return err
		}
		if !bytes.Equal(got, w.ref) {
			return fmt.Errorf("read back differs")
		}
		return nil
	})
	awaitRepaired(t, c)
	w.start()
	w.awaitWrites(t, 20)
	w.finish(t)
	verify(t, c, "/f", w.ref)
	// A rotten block nobody read is found by the scrubber, then repaired:
	// every replica verifies and agrees in the end.
	clustertest.Eventually(t, failTimeout, func() error {
		awaitRepaired(t, c)
		return c.CheckReplicas(t.Context())
	})
}

// TestDiskFull: the middle's disk fills up under load; it leaves the chain,
// a spare takes its place, and writes go on.
func TestDiskFull(t *testing.T) {
	c := clustertest.New(t, failureConfig(4))
	cl := clustertest.Client(t, c)
	w := newWriter(t, cl, "/f", newRand(t))
	_, chain := chainOf(t, c, cl, "/f", 0)
	w.start()
	w.awaitWrites(t, 20)
	if err := c.DiskFull(chain[1], true); err != nil {
		t.Fatal(err)
	}
	awaitLeft(t, c, cl, "/f", chain[1])
	w.awaitWrites(t, 50)
	awaitRepaired(t, c)
	if _, after := chainOf(t, c, cl, "/f", 0); slices.Contains(after, chain[1]) {
		t.Fatalf("chain %v holds slot %d whose disk is full", after, chain[1])
	}
	w.finish(t)
	if err := c.DiskFull(chain[1], false); err != nil {
		t.Fatal(err)
	}
	verify(t, c, "/f", w.ref)
}

// TestFaultHarness checks the harness's own faults against the cluster
// core: a paused chunkserver stops reaching the master; a slow disk slows
// writes without breaking them; the errors of bad slots.
func TestFaultHarness(t *testing.T) {
	c := clustertest.New(t, cluster.Config{HeartbeatInterval: 50 * time.Millisecond})
	ctx := t.Context()
	if err := c.Pause(7); !errors.Is(err, cluster.ErrNoSuchChunkserver) {
		t.Errorf("Pause(7): %v, want ErrNoSuchChunkserver", err)
	}
	if err := c.WipeChunkserver(0); !errors.Is(err, cluster.ErrRunning) {
		t.Errorf("wipe of a running server: %v, want ErrRunning", err)
	}
	if err := c.Pause(0); err != nil {
		t.Fatal(err)
	}
	last := func() int64 {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st.GetChunkservers() {
			if s.GetId() == c.ChunkserverID(0) {
				return s.GetLastHeartbeatUnixNano()
			}
		}
		t.Fatal("chunkserver 0 not in status")
		return 0
	}
	// Heartbeats stop: the last one stays put for many intervals.
	hb := last()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if l := last(); l != hb {
			hb = l // one may have been in flight
			return errors.New("heartbeats still arrive")
		}
		if time.Since(time.Unix(0, hb)) < 500*time.Millisecond {
			return errors.New("not silent for long yet")
		}
		return nil
	})
	if err := c.Resume(0); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if last() == hb {
			return errors.New("no heartbeat after Resume")
		}
		return nil
	})

	cl := clustertest.Client(t, c)
	if err := c.SlowDisk(1, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	f := create(t, cl, "/slow")
	p := randBytes(newRand(t), 10*kib)
	begin := time.Now()
	writeAt(t, f, p, 0)
	if d := time.Since(begin); d < 20*time.Millisecond {
		t.Errorf("write on a slow disk took %v, want >= 20ms", d)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, cl, "/slow", p)
}

// TestCorruptReplicaDetected: CorruptReplica changes the bytes on disk so
// that CheckReplicas sees the divergence (and a read is refused: tested in
// TestCorruptedBlock).
func TestCorruptReplicaDetected(t *testing.T) {
	c, err := cluster.Start(t.Context(), cluster.Config{Dir: t.TempDir(), Logger: clustertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := c.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	f := create(t, cl, "/c")
	writeAt(t, f, randBytes(newRand(t), 1000), 0)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	h, chain := chainOf(t, c, cl, "/c", 0)
	if err := c.CorruptReplicaAt(h, chain[1], 10); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckReplicas(t.Context()); !errors.Is(err, cluster.ErrReplicasDiffer) {
		t.Fatalf("CheckReplicas after corruption: %v, want ErrReplicasDiffer", err)
	}
	if err := c.CorruptReplicaAt(h, chain[1], 10); err != nil { // flip back
		t.Fatal(err)
	}
	if err := c.CheckReplicas(t.Context()); err != nil {
		t.Fatalf("CheckReplicas after repair by hand: %v", err)
	}
}

// TestHeadRestartsQuickly: the head of a chain is killed and restarted
// before the master could declare it dead. Its reloaded replica lost the
// head's request-id memory and may number updates its successor already
// holds, so it must not act in the chain again until it rejoined (by
// delta resync, at a new epoch). Writers on disjoint blocks write unique
// values with retries throughout; at the end every block holds its last
// acknowledged value (nothing lost, no retry applied twice after it).
func TestHeadRestartsQuickly(t *testing.T) {
	cfg := failureConfig(3) // no spare: the restarted server must rejoin
	cfg.Lease, cfg.DriftMargin = 2*time.Second, 500*time.Millisecond
	c := clustertest.New(t, cfg)
	cl := clustertest.Client(t, c)
	const (
		block   = 4 * kib
		blocks  = 48 // all in chunk 0
		writers = 3
	)
	f := create(t, cl, "/f")
	writeAt(t, f, make([]byte, blocks*block), 0)
	_, chain := chainOf(t, c, cl, "/f", 0)
	head := chain[0]
	epoch0 := epochOf(t, cl, "/f", 0)

	// last[b] is the tag of block b's last acknowledged write; a writer
	// owns the blocks b with b%writers == its index.
	var last [blocks]uint64
	var acked atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, writers)
	for wi := range writers {
		go func() {
			for n := uint64(1); ; n++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				b := wi + writers*int(n%uint64(blocks/writers))
				tag := uint64(wi)<<32 | n
				p := bytes.Repeat(binary.BigEndian.AppendUint64(nil, tag), block/8)
				deadline := time.Now().Add(failTimeout)
				for {
					_, err := f.WriteAt(p, int64(b*block))
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("writer %d: block %d still failing after %v: %w", wi, b, failTimeout, err)
						return
					}
				}
				last[b] = tag // only this writer touches block b
				acked.Add(1)
			}
		}()
	}
	awaitAcked := func(n int64) {
		t.Helper()
		target := acked.Load() + n
		clustertest.Eventually(t, failTimeout, func() error {
			if got := acked.Load(); got < target {
				return fmt.Errorf("%d writes acknowledged, waiting for %d", got, target)
			}
			return nil
		})
	}
	awaitAcked(30)
	killed := time.Now()
	if err := c.Kill(head); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(t.Context(), head); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(killed); d >= cfg.Lease {
		t.Fatalf("restart took %v, not before the master could declare the head dead", d)
	}
	awaitAcked(50)
	awaitRepaired(t, c)
	awaitAcked(30) // through the repaired chain
	close(stop)
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	t.Logf("%d writes acknowledged", acked.Load())

	want := make([]byte, blocks*block)
	for b, tag := range last {
		if tag != 0 {
			copy(want[b*block:], bytes.Repeat(binary.BigEndian.AppendUint64(nil, tag), block/8))
		}
	}
	got := readAll(t, clustertest.Client(t, c), "/f")
	for b := range blocks {
		if g, w := got[b*block:(b+1)*block], want[b*block:(b+1)*block]; !bytes.Equal(g, w) {
			t.Fatalf("block %d holds tag %x, last acknowledged %x", b, g[:8], w[:8])
		}
	}
	if _, after := chainOf(t, c, cl, "/f", 0); len(after) != 3 || !slices.Contains(after, head) {
		t.Fatalf("chain after repair %v, want 3 members with the restarted slot %d", after, head)
	}
	// Left the chain (fenced) and rejoined: two new configurations at least.
	if e := epochOf(t, cl, "/f", 0); e < epoch0+2 {
		t.Fatalf("chunk 0 at epoch %d, was %d: the restarted head never left its chain", e, epoch0)
	}
}

func epochOf(t *testing.T, cl *client.Client, path string, index int64) uint64 {
	t.Helper()
	_, chunks, err := cl.StatChunks(t.Context(), path)
	if err != nil {
		t.Fatalf("StatChunks %s: %v", path, err)
	}
	for _, ch := range chunks {
		if ch.Index == index {
			return ch.Epoch
		}
	}
	t.Fatalf("%s has no chunk %d", path, index)
	return 0
}
