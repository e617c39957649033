package crash

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/proctest"
)

// The overlay tests: a volume's writer and two copiers (overlays a and
// b), each through the real "catena nbd" process, checked against a model
// of each view: the writer's is the volume plus the writer's writes, a
// copier's is the volume as of its attach plus the copier's writes.

const (
	ovVolume     = "ovol"
	ovVolumeSize = 16 << 20 // 16 chunks of 1 MiB
	ovWriterID   = "overlay-test"
	ovGroup      = 16 // blocks of a 64 KiB group, the unit a connection owns
	ovConns      = 3  // connections per view
)

// ovViews are the exports: the writer's and the copiers'.
var ovViews = []string{ovVolume, ovVolume + "+a", ovVolume + "+b"}

// ovModel is what each block of each view must hold.
type ovModel struct {
	mu sync.Mutex
	// want[view][blk]: the values the block may hold (more than one after
	// a write with no answer).
	want map[string][][]writeID
}

func newOVModel(initial writeID) *ovModel {
	m := &ovModel{want: map[string][][]writeID{}}
	for _, v := range ovViews {
		bs := make([][]writeID, ovVolumeSize/volBlock)
		for i := range bs {
			bs[i] = []writeID{initial}
		}
		m.want[v] = bs
	}
	return m
}

// wrote records a write of blocks [first, first+n) of view; acked false:
// it may or may not have happened.
func (m *ovModel) wrote(view string, id writeID, first, n int64, acked bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for b := first; b < first+n; b++ {
		if acked {
			m.want[view][b] = []writeID{id}
		} else {
			m.want[view][b] = append(m.want[view][b], id)
		}
	}
}

// check compares buf, blocks [first, ...) of view, with the model; it
// returns the problems.
func (m *ovModel) check(view string, first int64, buf []byte) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for i := int64(0); i < int64(len(buf))/volBlock; i++ {
		b := first + i
		got, err := decodeBlock(buf[i*volBlock:(i+1)*volBlock], b)
		if err != nil {
			out = append(out, fmt.Sprintf("%s block %d: %v", view, b, err))
			continue
		}
		if w := m.want[view][b]; !slices.Contains(w, got) {
			out = append(out, fmt.Sprintf("%s block %d: holds %v, want one of %v", view, b, got, w))
		}
	}
	return out
}

// newOverlayRig is a master, n chunkservers and catena nbd (writer
// identity ovWriterID) as processes in one group, started, with volume
// ovVolume filled with the blocks of write initial and overlays a and b
// attached.
func newOverlayRig(t *testing.T, n int, initial writeID) *powercut {
	p := newPowercut(t, n, ovWriterID)
	order := make([]int, len(p.specs))
	for i := range order {
		order[i] = i
	}
	p.startAll(order)
	ctx := t.Context()
	if _, err := p.cl.CreateVolume(ctx, ovVolume, ovVolumeSize, client.VolumeOptions{ChunkSize: chunkSize, Replication: 3}); err != nil {
		t.Fatal(err)
	}
	p.awaitHealthy()
	nc, err := p.dialView(ovVolume)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, chunkSize)
	for off := int64(0); off < ovVolumeSize; off += chunkSize {
		for b := range int64(chunkSize / volBlock) {
			fillBlock(buf[b*volBlock:], initial, off/volBlock+b)
		}
		if err := nc.WriteAt(buf, off); err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
	nc.Close()
	for _, name := range []string{"a", "b"} {
		if _, err := p.cl.AttachOverlay(ctx, ovVolume, name, 0); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// dialView connects to export view of the nbd process, retrying while it
// cannot open it yet (after a restart).
func (p *powercut) dialView(view string) (*nbdConn, error) {
	deadline := time.Now().Add(pcHealTimeout)
	for {
		nc, err := dialNBD(p.nbd, view)
		if err == nil || time.Now().After(deadline) {
			return nc, err
		}
		if err := p.await(200 * time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// verifyViews reads every view whole through new connections and checks
// it against the model.
func (p *powercut) verifyViews(m *ovModel) {
	p.t.Helper()
	var problems []string
	buf := make([]byte, chunkSize)
	for _, view := range ovViews {
		nc, err := p.dialView(view)
		if err != nil {
			p.fatalf("connect to %s: %v\nnbd log:\n%s", view, err, p.logTail("nbd", 20))
		}
		for off := int64(0); off < ovVolumeSize; off += chunkSize {
			if err := p.readNBDView(&nc, view, buf, off); err != nil {
				p.fatalf("read %s at %d: %v\nnbd log:\n%s", view, off, err, p.logTail("nbd", 20))
			}
			problems = append(problems, m.check(view, off/volBlock, buf)...)
		}
		nc.Close()
	}
	if len(problems) > 0 {
		p.fatalf("%d blocks differ from their view's model:\n%s", len(problems), strings.Join(problems[:min(len(problems), 20)], "\n"))
	}
}

// readNBDView is readNBDRetry for export view.
func (p *powercut) readNBDView(nc **nbdConn, view string, buf []byte, off int64) error {
	deadline := time.Now().Add(pcHealTimeout)
	for {
		err := (*nc).ReadAt(buf, off)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if werr := p.await(time.Second); werr != nil {
			return fmt.Errorf("%v, then %v", err, werr)
		}
		if !errors.Is(err, errNBD) {
			(*nc).Close()
			c, derr := p.dialView(view)
			if derr != nil {
				return fmt.Errorf("%v, then %v", err, derr)
			}
			*nc = c
		}
	}
}

// TestOverlayStableBeforeWrite: right after the writer's write of a block
// is acknowledged, every process is SIGKILLed at once; after the restart
// each copier still reads that block as it was (the old value, or its
// own write), and the writer reads the new one. Each cycle writes a block
// of another random chunk (first writes fork a shared chunk; later ones
// hit chunks forked before), the copiers write too, and all three views
// are checked whole.
func TestOverlayStableBeforeWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a whole cluster of real processes")
	}
	initial := writeID{writer: 1000, seq: 1}
	p := newOverlayRig(t, 3, initial)
	m := newOVModel(initial)
	cycles := min(p.cfg.cycles, 8)
	if os.Getenv("CATENA_POWERCUT_CYCLES") == "" {
		cycles = 6
	}
	buf := make([]byte, volBlock)
	for p.cycle = 1; p.cycle <= cycles; p.cycle++ {
		seq := uint64(p.cycle)
		// Each copier writes a block of its own first.
		for i, view := range ovViews[1:] {
			id := writeID{writer: uint32(2 + i), seq: seq}
			blk := p.rng.Int64N(ovVolumeSize / volBlock)
			fillBlock(buf, id, blk)
			nc, err := p.dialView(view)
			if err != nil {
				p.fatalf("connect to %s: %v", view, err)
			}
			if err := nc.WriteAt(buf, blk*volBlock); err != nil {
				p.fatalf("%s: write block %d: %v", view, blk, err)
			}
			m.wrote(view, id, blk, 1, true)
			nc.Close()
		}
		// Then the writer; the power goes the moment it is acknowledged.
		id := writeID{writer: 1, seq: seq}
		blk := p.rng.Int64N(ovVolumeSize / volBlock)
		fillBlock(buf, id, blk)
		nc, err := p.dialView(ovVolume)
		if err != nil {
			p.fatalf("connect to %s: %v", ovVolume, err)
		}
		if err := nc.WriteAt(buf, blk*volBlock); err != nil {
			p.fatalf("writer: write block %d: %v", blk, err)
		}
		p.killAll()
		m.wrote(ovVolume, id, blk, 1, true)
		nc.Close()
		order := p.rng.Perm(len(p.specs))
		p.startAll(order)
		p.verifyViews(m)
		t.Logf("cycle %d: writer wrote block %d (chunk %d), killed everything on its ack, restarted; every view as its model", p.cycle, blk, blk*volBlock/chunkSize)
	}
}

// TestOverlayWorkloadUnderKills: the writer and two copiers write and read
// their views at once, three NBD connections each (each connection owns
// every third 64 KiB group of its view, so the model is exact), while
// chunkservers are SIGKILLed and restarted one at a time; every read
// equals its view's model, and so does each view read whole at the end.
// CATENA_CRASH_DURATION lengthens the load (default 15 s).
func TestOverlayWorkloadUnderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes for a while")
	}
	initial := writeID{writer: 1000, seq: 1}
	p := newOverlayRig(t, 4, initial)
	m := newOVModel(initial)
	d := 15 * time.Second
	if s := os.Getenv("CATENA_CRASH_DURATION"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CATENA_CRASH_DURATION: %v", err)
		}
		d = v
	}
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var problems []string
	writes, reads := 0, 0
	groups := int64(ovVolumeSize / volBlock / ovGroup)
	for vi, view := range ovViews {
		for c := range ovConns {
			writer := uint32(10*(vi+1) + c)
			seed := p.rng.Uint64()
			wg.Go(func() {
				r := rand.New(rand.NewPCG(seed, uint64(writer)))
				nc, err := p.dialView(view)
				if err != nil {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%s conn %d: %v", view, c, err))
					mu.Unlock()
					return
				}
				defer nc.Close()
				buf := make([]byte, ovGroup*volBlock)
				for seq := uint64(1); ctx.Err() == nil; seq++ {
					g := int64(c) + ovConns*r.Int64N((groups-int64(c)+ovConns-1)/ovConns)
					first := g*ovGroup + r.Int64N(ovGroup)
					n := 1 + r.Int64N(g*ovGroup+ovGroup-first)
					b := buf[:n*volBlock]
					if r.IntN(3) == 0 {
						if err := nc.ReadAt(b, first*volBlock); err != nil {
							mu.Lock()
							problems = append(problems, fmt.Sprintf("%s conn %d: read: %v", view, c, err))
							mu.Unlock()
							return
						}
						ps := m.check(view, first, b)
						mu.Lock()
						problems = append(problems, ps...)
						reads++
						mu.Unlock()
						continue
					}
					id := writeID{writer: writer, seq: seq}
					for i := range n {
						fillBlock(b[i*volBlock:], id, first+i)
					}
					err := nc.WriteAt(b, first*volBlock)
					m.wrote(view, id, first, n, err == nil)
					if err != nil && !errors.Is(err, errNBD) {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("%s conn %d: write: %v", view, c, err))
						mu.Unlock()
						return
					}
					mu.Lock()
					writes++
					mu.Unlock()
				}
			})
		}
	}
	// The nemesis: one chunkserver down at a time.
	kills := 0
	for ctx.Err() == nil {
		t0 := time.NewTimer(time.Duration(1000+p.rng.IntN(1500)) * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t0.C:
		}
		if ctx.Err() != nil {
			break
		}
		i := 1 + p.rng.IntN(len(p.specs)-2) // a chunkserver
		p.procs[i].Kill()
		<-p.procs[i].Done()
		kills++
		if err := p.await(time.Duration(300+p.rng.IntN(1200)) * time.Millisecond); err != nil && !strings.Contains(err.Error(), p.specs[i].name) {
			t.Fatal(err)
		}
		p.restartOne(i)
	}
	wg.Wait()
	if len(problems) > 0 {
		p.fatalf("%d problems during the load:\n%s", len(problems), strings.Join(problems[:min(len(problems), 20)], "\n"))
	}
	t.Logf("%v: %d writes, %d reads checked, %d chunkservers killed", d, writes, reads, kills)
	if writes < 3*ovConns || reads == 0 || kills == 0 {
		t.Fatalf("too little load to mean anything: %d writes, %d reads, %d kills", writes, reads, kills)
	}
	p.awaitHealthy()
	p.verifyViews(m)
}

// restartOne starts process i again (after Kill) and waits until it is
// ready.
func (p *powercut) restartOne(i int) {
	p.t.Helper()
	s := p.specs[i]
	log, err := os.OpenFile(filepath.Join(p.logDir, s.name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	p.procs[i] = proctest.Spawn(p.t, catenaBin, s.name, proctest.Options{Stderr: log, Group: p.group}, s.args...)
	log.Close()
	if err := p.procs[i].AwaitReady(s.ready, pcHealTimeout); err != nil {
		p.fatalf("%v\n%s", err, p.logTail(s.name, 30))
	}
}

// TestOverlayCopierKilled: a copier's own catena nbd process (another
// writer identity) serves its overlay, with a 2 s lease, and is SIGKILLed
// while the writer writes 4 KiB blocks through the cluster's nbd: the
// writer never fails, and the dead copier's overlay is detached once its
// lease lapses. The writer's latencies before, while the copier is dead
// and after its detach are logged (docs/benchmarks.md has the figures).
func TestOverlayCopierKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	initial := writeID{writer: 1000, seq: 1}
	p := newOverlayRig(t, 3, initial)
	ctx := t.Context()
	const lease = 2 * time.Second
	if _, err := p.cl.AttachOverlay(ctx, ovVolume, "k", lease); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	copier := start(t, "copier-nbd", "catena nbd: serving on",
		"nbd", "--tls-dir", p.certs.admin, "--master", p.master, "--listen", addr, "--writer-id", "copier")
	cn, err := dialNBD(addr, ovVolume+"+k")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, volBlock)
	for blk := range int64(64) {
		fillBlock(buf, writeID{writer: 7, seq: 1}, blk)
		if err := cn.WriteAt(buf, blk*volBlock); err != nil {
			t.Fatalf("copier write: %v", err)
		}
	}
	if ovs, err := p.cl.ListOverlays(ctx, ovVolume); err != nil || len(ovs) != 3 || !ovs[2].Writer || ovs[2].Owner != "copier" {
		t.Fatalf("overlays with the copier serving k: %+v %v", ovs, err)
	}
	wn, err := p.dialView(ovVolume)
	if err != nil {
		t.Fatal(err)
	}
	defer wn.Close()
	r := rand.New(rand.NewPCG(p.cfg.seed, 3))
	seq := uint64(0)
	write := func() time.Duration {
		t.Helper()
		seq++
		blk := r.Int64N(ovVolumeSize / volBlock)
		fillBlock(buf, writeID{writer: 1, seq: seq}, blk)
		t0 := time.Now()
		if err := wn.WriteAt(buf, blk*volBlock); err != nil {
			t.Fatalf("writer write %d: %v", seq, err)
		}
		return time.Since(t0)
	}
	var alive, dead, after []time.Duration
	for range 300 {
		alive = append(alive, write())
	}
	copier.Kill()
	died := time.Now()
	var detachAfter time.Duration
	for detachAfter == 0 {
		for range 20 {
			dead = append(dead, write())
		}
		ovs, err := p.cl.ListOverlays(ctx, ovVolume)
		if err != nil {
			t.Fatal(err)
		}
		if len(ovs) == 2 {
			detachAfter = time.Since(died)
		} else if time.Since(died) > lease+pcHealTimeout {
			t.Fatalf("the dead copier's overlay is still attached %v after its death: %+v", time.Since(died), ovs)
		}
	}
	for range 300 {
		after = append(after, write())
	}
	p50 := func(d []time.Duration) time.Duration { s := slices.Clone(d); slices.Sort(s); return s[len(s)/2] }
	p99 := func(d []time.Duration) time.Duration { s := slices.Clone(d); slices.Sort(s); return s[len(s)*99/100] }
	t.Logf("writer 4 KiB through nbd, p50/p99: copier alive %v/%v, dead %v/%v (%d writes), detached %v/%v; detached %v after the kill (lease %v)",
		p50(alive), p99(alive), p50(dead), p99(dead), len(dead), p50(after), p99(after), detachAfter.Round(time.Millisecond), lease)
}
