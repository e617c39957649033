package bench

// Failure figures of docs/benchmarks.md ("Failures and repair"), measured
// on real `catena` processes killed with SIGKILL. Reproduce:
//
//	go test ./internal/bench -run '^$' -bench BenchmarkKillStall -benchtime 1x -timeout 30m -v
//	go test ./internal/bench -run '^$' -bench BenchmarkRepair1GiB -benchtime 1x -timeout 30m -v
//	go test ./internal/bench -run '^$' -bench BenchmarkResyncDelta -benchtime 1x -timeout 30m -v
//
// They are benchmarks, not tests: nothing here asserts a figure, but a
// run fails when the cluster does not recover.

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/master"
)

var (
	benchKillRuns = flag.Int("catena.bench.killruns", 10,
		"kills per chain position BenchmarkKillStall measures")
	benchKillWindow = flag.Duration("catena.bench.killwindow", 4*time.Second,
		"how long after a kill BenchmarkKillStall looks for gaps between acknowledged writes")
	benchRepairSize = flag.Int64("catena.bench.repairsize", 1<<30,
		"bytes of file data BenchmarkRepair1GiB writes before the kill")
	benchResyncRuns = flag.Int("catena.bench.resyncruns", 3,
		"absences BenchmarkResyncDelta measures")
	benchResyncAway = flag.Duration("catena.bench.resyncaway", 10*time.Second,
		"how long BenchmarkResyncDelta keeps a replica away while writing")
)

// ackWriter writes 4 KiB synchronously (acknowledged once durable on every
// replica), one at a time, at random 4 KiB-aligned offsets below span, and
// records the time of every acknowledgement.
type ackWriter struct {
	mu     sync.Mutex
	acks   []time.Time
	blocks map[int64]bool // offsets written since resetBlocks
	errs   int
	lastEr error
	stop   chan struct{}
	done   chan struct{}
}

func startAckWriter(f *client.File, span int64, seed uint64) *ackWriter {
	w := &ackWriter{blocks: map[int64]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	r := rand.New(rand.NewPCG(seed, 7))
	buf := make([]byte, smallIO)
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			off := r.Int64N(span/smallIO) * smallIO
			buf[0], buf[1] = byte(i), byte(i>>8)
			_, err := f.WriteAtContext(context.Background(), buf, off)
			now := time.Now()
			w.mu.Lock()
			if err != nil {
				w.errs++
				w.lastEr = err
			} else {
				w.acks = append(w.acks, now)
				w.blocks[off] = true
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *ackWriter) close() {
	close(w.stop)
	<-w.done
}

// ackedAfter reports whether a write was acknowledged after t.
func (w *ackWriter) ackedAfter(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks) > 0 && w.acks[len(w.acks)-1].After(t)
}

// awaitAck waits for an acknowledgement after t.
func (w *ackWriter) awaitAck(b *testing.B, t time.Time, limit time.Duration) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !w.ackedAfter(t) {
		if time.Now().After(deadline) {
			w.mu.Lock()
			defer w.mu.Unlock()
			b.Fatalf("no write acknowledged within %v after %v (%d errors, last %v)", limit, t.Format(time.StampMilli), w.errs, w.lastEr)
		}
		time.Sleep(5 * time.Millisecond) // polling the writer
	}
}

// gaps returns, for acknowledgements around a kill at k: the largest gap
// between consecutive acks from the last ack before k until the first ack
// after k+window, when it started relative to k, and the number of acks
// in that interval.
func (w *ackWriter) gaps(k time.Time, window time.Duration) (maxGap, startAfterKill time.Duration, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := sortSearchTime(w.acks, k) // first ack after k
	if i == 0 || i == len(w.acks) {
		return 0, 0, 0
	}
	end := k.Add(window)
	for j := i; j < len(w.acks); j++ {
		if g := w.acks[j].Sub(w.acks[j-1]); g > maxGap {
			maxGap, startAfterKill = g, w.acks[j-1].Sub(k)
		}
		n++
		if w.acks[j].After(end) {
			break
		}
	}
	return maxGap, startAfterKill, n
}

func sortSearchTime(ts []time.Time, t time.Time) int {
	i, _ := slices.BinarySearchFunc(ts, t, func(a, t time.Time) int {
		if a.After(t) {
			return 1
		}
		return -1
	})
	return i
}

func (w *ackWriter) resetBlocks() {
	w.mu.Lock()
	w.blocks = map[int64]bool{}
	w.mu.Unlock()
}

func (w *ackWriter) counts() (acks, blocks int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks), len(w.blocks)
}

// chainOf returns the chain of the first chunk of path, head first.
func (c *procCluster) chainOf(ctx context.Context, path string) []client.Server {
	c.b.Helper()
	_, chunks, err := c.cl.StatChunks(ctx, path)
	if err != nil {
		c.b.Fatal(err)
	}
	if len(chunks) == 0 {
		c.b.Fatalf("%s has no chunks", path)
	}
	return chunks[0].Chain
}

// BenchmarkKillStall: a writer does 4 KiB synchronous writes to one chunk
// back to back; SIGKILL the head, a middle or the tail of its chain (master
// + 4 chunkservers as processes) and measure the longest gap between two
// acknowledged writes. After each kill the server is restarted and the
// chain repaired (to 3 members) before the next kill.
func BenchmarkKillStall(b *testing.B) {
	for range b.N {
		c := startProcCluster(b, procClusterConfig{Chunkservers: 4})
		ctx := context.Background()
		f, err := c.cl.Create(ctx, "/stall", client.CreateOptions{Replication: 3})
		if err != nil {
			b.Fatal(err)
		}
		const span = 1 << 20
		if err := writeSeq(ctx, f, span, span, 1); err != nil {
			b.Fatal(err)
		}
		w := startAckWriter(f, span, uint64(time.Now().UnixNano()))
		b.Cleanup(w.close)
		roles := []string{"head", "middle", "tail"}
		stalls := map[string][]time.Duration{}
		for run := range *benchKillRuns {
			for pos, role := range roles {
				chain := c.chainOf(ctx, "/stall")
				if len(chain) != 3 {
					b.Fatalf("chain %v, want 3 members", chain)
				}
				v := c.index(chain[pos].Addr)
				if v < 0 {
					b.Fatalf("no process listens on %s", chain[pos].Addr)
				}
				// The writer is flowing on this chain before the kill.
				w.awaitAck(b, time.Now(), time.Minute)
				w.awaitAck(b, time.Now(), time.Minute)
				k := time.Now()
				c.cs[v].Kill() // returns once the process has exited
				w.awaitAck(b, k.Add(*benchKillWindow), *benchKillWindow+2*time.Minute)
				g, at, n := w.gaps(k, *benchKillWindow)
				stalls[role] = append(stalls[role], g)
				b.Logf("run %d: killed %s (cs%d %s): longest gap %v, starting %v after the kill (%d acks in the %v after it)",
					run, role, v+1, chain[pos].Addr, g.Round(time.Millisecond), at.Round(time.Millisecond), n, *benchKillWindow)
				c.startChunkserver(v)
				c.await("repair", c.repaired)
				c.await("chain of 3", func(*client.Status) error {
					if ch := c.chainOf(ctx, "/stall"); len(ch) != 3 {
						return fmt.Errorf("chain %v", ch)
					}
					return nil
				})
			}
		}
		w.mu.Lock()
		b.Logf("%d writes acknowledged, %d failed attempts (last: %v)", len(w.acks), w.errs, w.lastEr)
		w.mu.Unlock()
		for _, role := range roles {
			s := stalls[role]
			slices.Sort(s)
			b.Logf("%s: stalls %v", role, roundAll(s))
			b.ReportMetric(ms(Percentile(s, 50)), role+"-p50-stall-ms")
			b.ReportMetric(ms(s[len(s)-1]), role+"-max-stall-ms")
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// BenchmarkRepair1GiB: write a file of -catena.bench.repairsize (1 GiB,
// 64 MiB chunks, replication 3) on 4 chunkservers, SIGKILL the one with
// the most replicas for good, and time from the kill until Status shows
// no under-replicated and no re-replicating chunk. The master runs in this
// process because the repair rate limit (master.Config.RepairBytesPerSec)
// has no CLI flag; chunkservers are processes.
func BenchmarkRepair1GiB(b *testing.B) {
	for _, lim := range []struct {
		name string
		rate int64
	}{{"limit=64MiBps", 0}, {"limit=none", -1}} {
		b.Run(lim.name, func(b *testing.B) {
			for range b.N {
				benchRepairOnce(b, lim.rate)
			}
		})
	}
}

func benchRepairOnce(b *testing.B, rate int64) {
	c := startProcCluster(b, procClusterConfig{Chunkservers: 4,
		InProcessMaster: &master.Config{RepairBytesPerSec: rate}})
	ctx := context.Background()
	f, err := c.cl.Create(ctx, "/repair", client.CreateOptions{Replication: 3})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := writeSeq(ctx, f, *benchRepairSize, DefaultBlock, 4); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %s in %v", ByteSize(*benchRepairSize), time.Since(t0).Round(time.Millisecond))
	st := c.await("repair before the kill", c.repaired)
	victim, most := -1, uint64(0)
	for _, s := range st.Chunkservers {
		if i := c.index(s.Addr); i >= 0 && s.Replicas > most {
			victim, most = i, s.Replicas
		}
	}
	if victim < 0 {
		b.Fatal("no chunkserver holds a replica")
	}
	before := st
	k := time.Now()
	c.cs[victim].Kill()
	var detected time.Time
	end := c.await("repair after the kill", func(st *client.Status) error {
		if detected.IsZero() && (st.ChunksUnderReplicated > 0 || st.ChunksReReplicating > 0) {
			detected = time.Now()
		}
		if detected.IsZero() {
			return fmt.Errorf("kill not noticed yet")
		}
		alive := 0
		for _, s := range st.Chunkservers {
			if s.Alive {
				alive++
			}
		}
		if alive != 3 || st.ChunksUnderReplicated != 0 || st.ChunksReReplicating != 0 || st.ChunksLost != 0 {
			return fmt.Errorf("%d alive, %d under-replicated, %d re-replicating, %d lost", alive,
				st.ChunksUnderReplicated, st.ChunksReReplicating, st.ChunksLost)
		}
		return nil
	})
	done := time.Now()
	bytes := end.RepairedBytes - before.RepairedBytes
	total := done.Sub(k)
	copying := done.Sub(detected)
	b.Logf("killed cs%d (%d replicas): repaired %d chunks, %s, in %v from the kill (%v from the first under-replicated status): %.0f MB/s from the kill, %.0f MB/s from detection",
		victim+1, most, end.RepairsDone-before.RepairsDone, ByteSize(bytes), total.Round(time.Millisecond),
		copying.Round(time.Millisecond), float64(bytes)/total.Seconds()/1e6, float64(bytes)/copying.Seconds()/1e6)
	b.ReportMetric(total.Seconds(), "repair-s")
	b.ReportMetric(float64(bytes)/1e6, "repaired-MB")
	b.ReportMetric(float64(bytes)/total.Seconds()/1e6, "MB/s")
}

// joinedRE matches the master's log line for a finished re-replication.
var joinedRE = regexp.MustCompile(`replica joined chain.*bytes=(\d+) full=(true|false)`)

// BenchmarkResyncDelta: master + 3 chunkservers (processes), one 64 MiB
// chunk written in full; SIGKILL a chain member (the tail), keep writing
// 4 KiB synchronous writes for -catena.bench.resyncaway (10 s) from the
// kill, restart it and measure the bytes its resync copied (Status
// repaired_bytes delta; full or delta from the master's log) against the
// chunk's size. With 3 chunkservers the returning server is the only
// candidate, so the repair is its resync.
func BenchmarkResyncDelta(b *testing.B) {
	for range b.N {
		c := startProcCluster(b, procClusterConfig{Chunkservers: 3, MasterArgs: []string{"-v"}})
		ctx := context.Background()
		const chunk = 64 << 20
		f, err := c.cl.Create(ctx, "/resync", client.CreateOptions{Replication: 3, ChunkSize: chunk})
		if err != nil {
			b.Fatal(err)
		}
		if err := writeSeq(ctx, f, chunk, DefaultBlock, 4); err != nil {
			b.Fatal(err)
		}
		w := startAckWriter(f, chunk, uint64(time.Now().UnixNano()))
		b.Cleanup(w.close)
		for run := range *benchResyncRuns {
			st := c.await("repaired", c.repaired)
			chain := c.chainOf(ctx, "/resync")
			v := c.index(chain[len(chain)-1].Addr)
			w.awaitAck(b, time.Now(), time.Minute)
			acks0, _ := w.counts()
			w.resetBlocks()
			k := time.Now()
			c.cs[v].Kill()
			c.await("kill noticed", func(st *client.Status) error {
				if st.ChunksUnderReplicated == 0 {
					return fmt.Errorf("not under-replicated yet")
				}
				return nil
			})
			time.Sleep(time.Until(k.Add(*benchResyncAway))) // the absence is the fault itself
			acks1, blocks := w.counts()
			t1 := time.Now()
			c.startChunkserver(v)
			end := c.await("resync", func(s *client.Status) error {
				if s.RepairsDone == st.RepairsDone {
					return fmt.Errorf("no repair finished yet")
				}
				return c.repaired(s)
			})
			bytes := end.RepairedBytes - st.RepairedBytes
			full := "?"
			if m := lastMatch(c.dir+"/master.log", joinedRE); m != nil {
				full = "full=" + m[2]
				if n, _ := strconv.ParseInt(m[1], 10, 64); n != bytes {
					full += fmt.Sprintf(" (log bytes=%d)", n)
				}
			}
			b.Logf("run %d: tail cs%d away %v, %d writes acknowledged meanwhile to %d distinct 4 KiB blocks (%s); resync copied %s (%s) = %.2f %% of the %s chunk, %d repairs, done %v after restart",
				run, v+1, t1.Sub(k).Round(time.Millisecond), acks1-acks0, blocks, ByteSize(int64(blocks)*smallIO),
				ByteSize(bytes), full, 100*float64(bytes)/chunk, ByteSize(chunk), end.RepairsDone-st.RepairsDone,
				time.Since(t1).Round(time.Millisecond))
			b.ReportMetric(float64(bytes)/1e6, fmt.Sprintf("run%d-resync-MB", run))
		}
	}
}

// lastMatch returns the submatches of the last line of path matching re.
func lastMatch(path string, re *regexp.Regexp) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var last []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			last = m
		}
	}
	return last
}

var benchRejoinFiles = flag.Int("catena.bench.rejoinfiles", 1000,
	"small files (one chunk each) BenchmarkRejoin writes before the restart")

// BenchmarkRejoin measures how fast a restarted chunkserver's replicas
// rejoin their chains: N one-chunk files on 3 chunkservers, one killed
// (SIGKILL) until the master has taken it out of every chain, then
// restarted; the time until no chunk is under-replicated, and the
// replicas rejoined per second (each rejoin is one Replicate, a delta
// of nothing, at the master's repair concurrency). docs/benchmarks.md,
// "Rejoin after a restart".
//
//	go test ./internal/bench -run '^$' -bench BenchmarkRejoin -benchtime 1x -timeout 30m -v [-catena.bench.rejoinfiles 1000]
func BenchmarkRejoin(b *testing.B) {
	for range b.N {
		c := startProcCluster(b, procClusterConfig{Chunkservers: 3})
		ctx := context.Background()
		buf := make([]byte, smallIO)
		for i := range *benchRejoinFiles {
			f, err := c.cl.Create(ctx, fmt.Sprintf("/r%d", i), client.CreateOptions{Replication: 3})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.WriteAt(buf, 0); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
		c.await("repaired", c.repaired)
		c.cs[1].Kill()
		k := time.Now()
		// Out of every chain: the master counts a fenced member (a
		// restarted one that has not rejoined) as live, so a restart
		// before the removals would rejoin nothing it could count.
		down := c.awaitWithin("cs2 out of every chain", 10*time.Minute, func(st *client.Status) error {
			for i := range *benchRejoinFiles {
				for _, sv := range c.chainOf(ctx, fmt.Sprintf("/r%d", i)) {
					if sv.Addr == c.csAddr[1] {
						return fmt.Errorf("/r%d still has cs2 in its chain", i)
					}
				}
			}
			return nil
		})
		t0 := time.Now()
		c.startChunkserver(1)
		end := c.awaitWithin("rejoined", 30*time.Minute, c.repaired)
		took := time.Since(t0)
		n := end.RepairsDone - down.RepairsDone
		b.Logf("%d one-chunk files: cs2 out of every chain %v after the kill; after its restart %d replicas rejoined in %v: %.0f/s",
			*benchRejoinFiles, t0.Sub(k).Round(time.Millisecond), n, took.Round(time.Millisecond), float64(n)/took.Seconds())
		b.ReportMetric(float64(n)/took.Seconds(), "rejoins/s")
	}
}
