package crash

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/proctest"
)

// The power-cut test: every process of a cluster (master, three
// chunkservers, "catena nbd") is SIGKILLed in the same instant, with one
// kill(2) of their shared process group, during a storm of volume writes
// (through the real nbd process and through the client library), file
// puts and metadata operations; then all restart together in a seeded
// random order (so nbd often starts before its master) on the same
// directories. Each cycle checks that everything acknowledged survived and
// that the cluster heals by itself.

const (
	pcChunkservers = 3
	pcVolume       = "pcvol"
	pcWriterID     = "powercut" // the volume's writer identity (nbd and the library writers)
	pcVolumeSize   = 16 << 20   // 16 chunks of 1 MiB
	pcNBDWriters   = 3          // through the catena nbd process
	pcLibWriters   = 1          // through the client library's volume API
	pcMaxWrite     = 16         // blocks of 4 KiB per write
	pcMaxFile      = 5 << 19    // 2.5 MiB
	pcMaxFiles     = 10         // above this, metadata ops favour rm
	// pcHealTimeout bounds each wait for the cluster to serve and heal
	// after a restart (a deadline on awaiting an event, not a sleep).
	pcHealTimeout = time.Minute
	// pcOpTimeout is the test client's patience for one operation.
	pcOpTimeout = pcHealTimeout
	// pcStormOpTimeout bounds an operation of the storm: one cut off by
	// the power cut must give up soon (File.Close takes no context).
	pcStormOpTimeout = 5 * time.Second
	pcDefaultCycles  = 20
)

// pcConfig is the test's knobs, from the environment.
type pcConfig struct {
	seed   uint64
	cycles int
	keep   string // CATENA_POWERCUT_KEEP: keep data and logs here
}

func powercutConfig(t *testing.T) pcConfig {
	c := pcConfig{seed: uint64(time.Now().UnixNano()), cycles: pcDefaultCycles, keep: os.Getenv("CATENA_POWERCUT_KEEP")}
	if s := os.Getenv("CATENA_POWERCUT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CATENA_POWERCUT_SEED: %v", err)
		}
		c.seed = v
	}
	if s := os.Getenv("CATENA_POWERCUT_CYCLES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("CATENA_POWERCUT_CYCLES: %q", s)
		}
		c.cycles = v
	}
	return c
}

// pcProc is how to run one of the cluster's processes.
type pcProc struct {
	name, ready string
	args        []string
	dir         string // its data directory ("" for nbd)
}

// powercut is the cluster under test and the model of what it acknowledged.
type powercut struct {
	t      *testing.T
	cfg    pcConfig
	rng    *rand.Rand
	dir    string
	logDir string
	master string
	nbd    string
	certs  *testCerts
	specs  []pcProc
	group  *proctest.Group
	procs  []*proctest.Proc
	cycle  int

	cl     *client.Client // the test's client for checks, new after every restart
	scl    *client.Client // the storm's client: short timeouts, so the load stops soon after the cut
	vol    *volModel
	ns     *nsModel
	volIno uint64
	nextW  uint32 // writer ids, unique over the whole run
}

// fatalf fails the test with the seed and cycle in the message.
func (p *powercut) fatalf(format string, a ...any) {
	p.t.Helper()
	p.t.Fatalf("seed %d (replay: CATENA_POWERCUT_SEED=%d), cycle %d: %s", p.cfg.seed, p.cfg.seed, p.cycle, fmt.Sprintf(format, a...))
}

func TestPowerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a whole cluster of real processes many times")
	}
	p := newPowercut(t, pcChunkservers, pcWriterID)
	cfg := p.cfg
	t.Logf("%d cycles", cfg.cycles)

	// First start in the usual order, then the data set.
	p.startAll([]int{0, 1, 2, 3, 4})
	ctx := t.Context()
	vi, err := p.cl.CreateVolume(ctx, pcVolume, pcVolumeSize, client.VolumeOptions{ChunkSize: chunkSize})
	if err != nil {
		p.fatalf("create volume: %v", err)
	}
	p.volIno = vi.Inode
	for _, d := range []string{"/files", "/dirs"} {
		if err := p.cl.Mkdir(ctx, d, 0o755); err != nil {
			p.fatalf("mkdir %s: %v", d, err)
		}
	}
	p.vol = newVolModel(pcVolumeSize / volBlock)
	p.ns = newNSModel()
	p.awaitHealthy()

	start := time.Now()
	var acked, pending, flushed, puts, metaOps int
	for p.cycle = 1; p.cycle <= cfg.cycles; p.cycle++ {
		storm := time.Duration(1000+p.rng.IntN(1000)) * time.Millisecond
		st := p.storm(storm)
		a, pe, f := p.vol.counts()
		acked, pending, flushed = acked+a, pending+pe, flushed+f
		puts += st.puts
		metaOps += st.meta
		order := p.rng.Perm(len(p.specs))
		names := make([]string, len(order))
		for i, o := range order {
			names[i] = p.specs[o].name
		}
		t0 := time.Now()
		p.startAll(order)
		t1 := time.Now()
		p.verify()
		t2 := time.Now()
		p.awaitHealthy()
		t3 := time.Now()
		t.Logf("cycle %d: storm %v: %d volume writes acknowledged (%d flushed), %d unanswered; %d puts, %d metadata ops acknowledged; restarted %v: ready in %v, read back in %v, healthy in %v",
			p.cycle, storm, a, f, pe, st.puts, st.meta, names, t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), t3.Sub(t2).Round(time.Millisecond))
	}
	t.Logf("%d cycles in %v: %d volume writes acknowledged (%d flushed), %d unanswered, %d file puts and %d metadata ops acknowledged; every one read back",
		cfg.cycles, time.Since(start).Round(time.Second), acked, flushed, pending, puts, metaOps)
	// Flushes come only through the catena nbd process: none would mean
	// the front end under test took no part.
	if acked < cfg.cycles || flushed == 0 || metaOps == 0 || puts < cfg.cycles/2 {
		p.fatalf("too little load to mean anything: %d writes (%d flushed through nbd), %d puts, %d metadata ops acknowledged", acked, flushed, puts, metaOps)
	}
}

// newPowercut lays out a master, n chunkservers and catena nbd (writer
// identity writerID) as processes to start (startAll), with their
// certificates, data directories and logs; they are killed at the end.
func newPowercut(t *testing.T, n int, writerID string) *powercut {
	cfg := powercutConfig(t)
	t.Logf("seed %d (replay with CATENA_POWERCUT_SEED=%d)", cfg.seed, cfg.seed)
	p := &powercut{t: t, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15))}
	p.dir = t.TempDir()
	if cfg.keep != "" {
		p.dir = cfg.keep
		if err := os.MkdirAll(p.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("data and logs kept in %s", p.dir)
	}
	p.logDir = filepath.Join(p.dir, "logs")
	if err := os.MkdirAll(p.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	p.master, p.nbd = freeAddr(t), freeAddr(t)
	p.certs = issueCerts(t, p.dir, n)
	p.specs = append(p.specs, pcProc{name: "master", ready: "catena master: listening on", dir: filepath.Join(p.dir, "master"),
		args: []string{"master", "--tls-dir", p.certs.master, "--dir", filepath.Join(p.dir, "master"), "--listen", p.master, "--raft-addr", freeAddr(t)}})
	for i := range n {
		d := filepath.Join(p.dir, fmt.Sprintf("cs%d", i+1))
		p.specs = append(p.specs, pcProc{name: fmt.Sprintf("cs%d", i+1), ready: "catena chunkserver: id", dir: d,
			args: []string{"chunkserver", "--tls-dir", p.certs.cs[i], "--master", p.master, "--dir", d, "--listen", freeAddr(t)}})
	}
	p.specs = append(p.specs, pcProc{name: "nbd", ready: "catena nbd: serving on",
		args: []string{"nbd", "--tls-dir", p.certs.admin, "--master", p.master, "--listen", p.nbd, "--writer-id", writerID}})
	t.Cleanup(p.killAll)
	return p
}

// startAll starts every process in the given order without waiting in
// between (so a front end may come up before its master), all in one new
// process group, then waits for each to be ready and connects a fresh
// client.
func (p *powercut) startAll(order []int) {
	p.t.Helper()
	p.group = &proctest.Group{}
	p.procs = make([]*proctest.Proc, len(p.specs))
	for _, i := range order {
		s := p.specs[i]
		log, err := os.OpenFile(filepath.Join(p.logDir, s.name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			p.t.Fatal(err)
		}
		fmt.Fprintf(log, "==== cycle %d: start\n", p.cycle)
		p.procs[i] = proctest.Spawn(p.t, catenaBin, s.name, proctest.Options{Stderr: log, Group: p.group}, s.args...)
		log.Close() // the child has its own descriptor
	}
	for i, pr := range p.procs {
		if err := pr.AwaitReady(p.specs[i].ready, pcHealTimeout); err != nil {
			p.fatalf("%v\n%s", err, p.logTail(p.specs[i].name, 30))
		}
	}
	if p.cl != nil {
		p.cl.Close()
		p.scl.Close()
	}
	var err error
	if p.cl, err = client.New(client.Config{Masters: []string{p.master}, OpTimeout: pcOpTimeout, TLSDir: p.certs.admin}); err != nil {
		p.t.Fatal(err)
	}
	if p.scl, err = client.New(client.Config{Masters: []string{p.master}, OpTimeout: pcStormOpTimeout, TLSDir: p.certs.admin}); err != nil {
		p.t.Fatal(err)
	}
}

// killAll is the power cut: SIGKILL to every process at once.
func (p *powercut) killAll() {
	if p.group == nil {
		return
	}
	if err := p.group.Kill(); err != nil {
		p.t.Errorf("kill the process group: %v", err)
	}
	for _, pr := range p.procs {
		if pr != nil {
			<-pr.Done()
		}
	}
}

// stormStats counts what a storm got acknowledged besides volume writes.
type stormStats struct{ puts, meta int }

// storm runs the load for d, then cuts the power while it is still
// running, then stops the load.
func (p *powercut) storm(d time.Duration) stormStats {
	p.t.Helper()
	ctx, cancel := context.WithCancel(p.t.Context())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var st stormStats
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for i := range pcNBDWriters + pcLibWriters {
		p.nextW++
		id := p.nextW
		seed := p.rng.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < pcNBDWriters {
				p.nbdWriter(ctx, id, seed)
			} else if err := p.libWriter(ctx, id, seed); err != nil {
				fail(err)
			}
		}()
	}
	nsSeed := p.rng.Uint64()
	wg.Add(1)
	go func() {
		defer wg.Done()
		n, m := p.ns.storm(ctx, p.scl, p.cycle, nsSeed)
		mu.Lock()
		st.puts, st.meta = n, m
		mu.Unlock()
	}()
	// The storm's length is the fault schedule itself: no event to await.
	timer := time.NewTimer(d)
	<-timer.C
	p.killAll()
	cancel()
	wg.Wait()
	if len(errs) > 0 {
		p.fatalf("storm: %v", errors.Join(errs...))
	}
	return st
}

// nbdWriter writes through the catena nbd process until its connection
// breaks (the power cut) or ctx ends, flushing now and then.
func (p *powercut) nbdWriter(ctx context.Context, id uint32, seed uint64) {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	nc, err := dialNBD(p.nbd, pcVolume)
	if err != nil {
		return // nbd is not serving (yet): nothing was sent, nothing to check
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.c.Close() })
	defer stop()
	var since []*volWrite // acknowledged since the last flush
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		wid := writeID{writer: id, seq: seq}
		first, n := randomExtent(r)
		buf := make([]byte, n*volBlock)
		for b := range n {
			fillBlock(buf[b*volBlock:], wid, first+b)
		}
		w := p.vol.begin(wid, fmt.Sprintf("nbd/w%d", id), first, n)
		err := nc.WriteAt(buf, first*volBlock)
		if errors.Is(err, errNBD) {
			continue // EIO: outcome unknown, the connection lives on
		}
		if err != nil {
			return // connection gone: the power cut
		}
		p.vol.acked(w)
		since = append(since, w)
		if r.IntN(4) == 0 {
			if err := nc.Flush(); err != nil {
				if errors.Is(err, errNBD) {
					continue
				}
				return
			}
			p.vol.flushed(since)
			since = since[:0]
		}
	}
}

// libWriter writes through the client library's volume API.
func (p *powercut) libWriter(ctx context.Context, id uint32, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	// The same writer identity as the nbd process: one writer of the
	// volume, two processes.
	v, err := p.scl.OpenVolumeWriter(ctx, pcVolume, client.WriterOptions{Owner: pcWriterID, Keep: true})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("open volume: %w", err)
	}
	defer v.Close()
	for seq := uint64(1); ctx.Err() == nil; seq++ {
		wid := writeID{writer: id, seq: seq}
		first, n := randomExtent(r)
		buf := make([]byte, n*volBlock)
		for b := range n {
			fillBlock(buf[b*volBlock:], wid, first+b)
		}
		w := p.vol.begin(wid, fmt.Sprintf("lib/w%d", id), first, n)
		if _, err := v.WriteAtContext(ctx, buf, first*volBlock); err != nil {
			continue // outcome unknown
		}
		p.vol.acked(w)
	}
	return nil
}

// randomExtent picks blocks [first, first+n) of the volume.
func randomExtent(r *rand.Rand) (first, n int64) {
	blocks := int64(pcVolumeSize / volBlock)
	n = 1 + r.Int64N(pcMaxWrite)
	first = r.Int64N(blocks - n + 1)
	return first, n
}

// verify reads back everything acknowledged, through the restarted nbd
// process for the volume and a fresh client for files.
func (p *powercut) verify() {
	p.t.Helper()
	blocks := int64(pcVolumeSize / volBlock)
	observed := make([]writeID, blocks)
	var problems []*blockProblem
	buf := make([]byte, chunkSize)
	nc, err := p.dialNBDRetry()
	if err != nil {
		p.fail(nil, "connect to the restarted nbd: %v", err)
	}
	defer nc.Close()
	for off := int64(0); off < pcVolumeSize; off += chunkSize {
		if err := p.readNBDRetry(&nc, buf, off); err != nil {
			p.fail([]int64{off / chunkSize}, "read volume chunk %d through nbd: %v\nnbd log:\n%s", off/chunkSize, err, p.logTail("nbd", 20))
		}
		for i := int64(0); i < chunkSize/volBlock; i++ {
			blk := off/volBlock + i
			id, derr := decodeBlock(buf[i*volBlock:(i+1)*volBlock], blk)
			observed[blk] = id
			if pr := p.vol.check(blk, id, derr); pr != nil {
				problems = append(problems, pr)
			}
		}
	}
	if len(problems) > 0 {
		var msgs []string
		chunks := map[int64]bool{}
		for i, pr := range problems {
			chunks[pr.block*volBlock/chunkSize] = true
			if i < 12 {
				msgs = append(msgs, fmt.Sprintf("block %d (chunk %d): %s", pr.block, pr.block*volBlock/chunkSize, pr.msg))
			}
		}
		var idx []int64
		for c := range chunks {
			idx = append(idx, c)
		}
		sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
		p.fail(idx, "%d volume blocks read back wrong, in chunks %v:\n%s", len(problems), idx, strings.Join(msgs, "\n"))
	}
	p.vol.settle(observed)
	if err := p.ns.verify(p.t.Context(), p.cl); err != nil {
		p.fail(nil, "%v", err)
	}
}

// dialNBDRetry connects to nbd; it serves (it printed its ready line),
// but opening the volume needs the master to answer.
func (p *powercut) dialNBDRetry() (*nbdConn, error) {
	deadline := time.Now().Add(pcHealTimeout)
	for {
		nc, err := dialNBD(p.nbd, pcVolume)
		if err == nil || time.Now().After(deadline) {
			return nc, err
		}
		if err := p.await(time.Second); err != nil {
			return nil, err
		}
	}
}

// readNBDRetry reads through nbd, retrying an EIO (the nbd's own client
// gives up after 30 s) until pcHealTimeout.
func (p *powercut) readNBDRetry(nc **nbdConn, buf []byte, off int64) error {
	deadline := time.Now().Add(pcHealTimeout)
	for {
		err := (*nc).ReadAt(buf, off)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		if werr := p.await(time.Second); werr != nil {
			return fmt.Errorf("%v, then %v", err, werr)
		}
		if !errors.Is(err, errNBD) {
			(*nc).Close()
			c, derr := p.dialNBDRetry()
			if derr != nil {
				return fmt.Errorf("%v, then %v", err, derr)
			}
			*nc = c
		}
	}
}

// await pauses a retry loop for d, or fails when a process died.
func (p *powercut) await(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	done := make(chan string, len(p.procs))
	stop := make(chan struct{})
	defer close(stop)
	for _, pr := range p.procs {
		go func() {
			select {
			case <-pr.Done():
				done <- pr.Name
			case <-stop:
			}
		}()
	}
	select {
	case <-t.C:
		return nil
	case name := <-done:
		return fmt.Errorf("%s exited\n%s", name, p.logTail(name, 30))
	}
}

// statusJSON is the part of "catena status --json" the test reads.
type pcStatus struct {
	Chunkservers []struct {
		ID    uint64 `json:"id"`
		Alive bool   `json:"alive"`
	} `json:"chunkservers"`
	Chunks struct {
		Total           uint64 `json:"total"`
		UnderReplicated uint64 `json:"under_replicated"`
		ReReplicating   uint64 `json:"re_replicating"`
		Lost            uint64 `json:"lost"`
		Problems        []struct {
			Handle uint64 `json:"handle"`
			Reason string `json:"reason"`
		} `json:"problems"`
	} `json:"chunks"`
}

// status runs "catena status --json".
func (p *powercut) status() (*pcStatus, string, error) {
	ctx, cancel := context.WithTimeout(p.t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, catenaBin, "status", "--json", "--tls-dir", p.certs.admin, "--master", p.master)
	cmd.Env = append(os.Environ(), "CATENA_MASTER=")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, string(ee.Stderr), err
		}
		return nil, "", err
	}
	var st pcStatus
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, string(out), err
	}
	return &st, string(out), nil
}

func healthy(st *pcStatus, chunkservers int) error {
	alive := 0
	for _, s := range st.Chunkservers {
		if s.Alive {
			alive++
		}
	}
	c := st.Chunks
	if alive != chunkservers || c.UnderReplicated != 0 || c.ReReplicating != 0 || c.Lost != 0 || len(c.Problems) != 0 {
		return fmt.Errorf("%d of %d chunkservers alive; chunks: %d total, %d under-replicated, %d re-replicating, %d lost, problems %+v",
			alive, chunkservers, c.Total, c.UnderReplicated, c.ReReplicating, c.Lost, c.Problems)
	}
	return nil
}

// awaitHealthy polls "catena status --json" until the cluster reports
// every chunkserver alive, every chunk fully replicated and no chunk in
// trouble, within pcHealTimeout.
func (p *powercut) awaitHealthy() {
	p.t.Helper()
	deadline := time.Now().Add(pcHealTimeout)
	var last string
	for {
		st, out, err := p.status()
		if err == nil {
			if err = healthy(st, len(p.specs)-2); err == nil {
				break
			}
		}
		last = fmt.Sprintf("%v\n%s", err, out)
		if time.Now().After(deadline) {
			p.fail(nil, "cluster not healthy %v after restart and read-back: %s", pcHealTimeout, last)
		}
		if err := p.await(250 * time.Millisecond); err != nil {
			p.fail(nil, "waiting for health: %v", err)
		}
	}
}

// logTail returns the last n lines of a process's log.
func (p *powercut) logTail(name string, n int) string {
	b, err := os.ReadFile(filepath.Join(p.logDir, name+".log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// fileSHA is the digest the test keeps of a file it put.
type fileSHA [sha256.Size]byte

func shaOf(b []byte) fileSHA { return sha256.Sum256(b) }

// readAll reads a whole file through c.
func readAll(ctx context.Context, c *client.Client, path string) ([]byte, error) {
	f, err := c.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, f.Size())
	n, err := f.ReadAtContext(ctx, b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if n != len(b) {
		return nil, fmt.Errorf("read %d of %d bytes", n, len(b))
	}
	return b, nil
}
