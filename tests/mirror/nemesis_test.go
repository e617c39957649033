package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/mirror"
	"github.com/catena-io/catena/internal/proctest"
	"github.com/catena-io/catena/internal/testtools"
)

// The nemesis run (issue 13's first required test): two clusters of real
// processes on this machine, B inside a network namespace of its own;
// fio writes random 4 KiB blocks on a volume at A through catena nbd for a
// minute while catena mirror run ships checkpoints to B and a seeded
// nemesis SIGKILLs the mirror, B's chunkservers and B's master and cuts
// A<->B with iptables. B is sampled throughout, through NBD (its
// read-only checkpoint snapshot VOL@mirror-N, copied with nbdcopy) and
// through the library (its volume itself); each sample must equal the
// checkpoint of A's it claims to be, block by block (A's checkpoints are
// kept with --keep-source-checkpoints and read with the library at the
// end). A sample that fails (a fault is active, the snapshot it reads was
// released by the next checkpoint, the read met an activation) is void,
// not an error. After each step's faults are healed the mirror must apply
// a checkpoint (it resumed by itself); at the end B must equal A's final
// content.
//
// The volume is 16 MiB in 1 MiB chunks; fio writes 100 IOPS (zipf 1.2):
// on a 2-core machine the mirror then applies a checkpoint a second when
// no fault is active (faster writes make each checkpoint ship most of the
// volume and take seconds, and the run sees fewer of them).
//
//	CATENA_MIRROR_NEMESIS=1 go test -count=1 -run TestMirrorNemesis -v ./tests/mirror
//
// Knobs: CATENA_MIRROR_NEMESIS_DURATION (fio's run, default 60s),
// CATENA_MIRROR_NEMESIS_SEED (the nemesis schedule's seed, default random,
// always logged), CATENA_MIRROR_NEMESIS_KEEP=1 (keep the processes' logs
// and data directories, as a failure does).
const (
	nemVol      = "nem"
	nemVolSize  = 16 << 20
	nemBlocks   = nemVolSize / mirror.BlockSize
	nemPkg      = "tests/mirror"
	nemInterval = time.Second
	// nemResume bounds the wait for a checkpoint applied after the faults
	// of a step are healed: longer is "the mirror does not resume".
	nemResume = 2 * time.Minute
	// B's fixed ports on the namespace's address (the namespace is new:
	// nothing else listens there).
	nemBMasterPort = 7070
	nemBRaftPort   = 7071
	nemBCSPort     = 7080
	nemBNBD        = "127.0.0.1:10809" // inside the namespace
	nemBChunksrvs  = 4
	// nemSamplePause separates two reads of B by the same sampler.
	nemSamplePause = 200 * time.Millisecond
	nemAChunksrvs  = 3
)

// The fault kinds of the nemesis.
const (
	faultMirror = "kill mirror"
	faultCS     = "kill B chunkserver"
	faultMaster = "kill B master"
	faultCut    = "cut A<->B"
)

var faultKinds = []string{faultMirror, faultCS, faultMaster, faultCut}

// blockHashes is an image of the volume as the SHA-256 of each 64 KiB
// block.
type blockHashes [][sha256.Size]byte

// digest identifies the whole image.
func (b blockHashes) digest() [sha256.Size]byte {
	h := sha256.New()
	for _, x := range b {
		h.Write(x[:])
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// differ lists the blocks in which a and b differ.
func (b blockHashes) differ(o blockHashes) []int {
	var out []int
	for i := range b {
		if i >= len(o) || b[i] != o[i] {
			out = append(out, i)
		}
	}
	return out
}

// hashBlocks reads exactly one volume image from r.
func hashBlocks(r io.Reader) (blockHashes, error) {
	buf := make([]byte, mirror.BlockSize)
	out := make(blockHashes, 0, nemBlocks)
	for range nemBlocks {
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, fmt.Errorf("after %d blocks: %w", len(out), err)
		}
		out = append(out, sha256.Sum256(buf))
	}
	if n, _ := io.Copy(io.Discard, r); n != 0 {
		return nil, fmt.Errorf("%d bytes beyond the volume's %d", n, nemVolSize)
	}
	return out, nil
}

// netNS is cluster B's network namespace: a veth pair, host side hostIP,
// namespace side nsIP.
type netNS struct {
	name, hostIf, nsIf, hostIP, nsIP string
}

// nemRun runs a command (as root), returning its combined output in the
// error when it fails.
func nemRun(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// newNetNS creates the namespace and its veth pair in a 10.X.Y.0/24 no
// interface or route of the host uses; cleanup deletes both.
func newNetNS(t *testing.T) *netNS {
	t.Helper()
	ctx := context.Background()
	tag := fmt.Sprintf("%06x", mrand.IntN(1<<24))
	n := &netNS{name: "catena-mn-" + tag, hostIf: "cmn" + tag + "h", nsIf: "cmn" + tag + "b"}
	addrs, err := nemRun(ctx, "ip", "-o", "addr")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := nemRun(ctx, "ip", "route")
	if err != nil {
		t.Fatal(err)
	}
	for {
		prefix := fmt.Sprintf("10.%d.%d.", 100+mrand.IntN(150), mrand.IntN(256))
		if !strings.Contains(addrs, prefix) && !strings.Contains(routes, prefix) {
			n.hostIP, n.nsIP = prefix+"1", prefix+"2"
			break
		}
	}
	if _, err := nemRun(ctx, "ip", "netns", "add", n.name); err != nil {
		t.Fatal(err)
	}
	// Deleting the namespace deletes its end of the pair, and with it
	// the host's; the link delete is for a failure half way.
	t.Cleanup(func() {
		if _, err := nemRun(context.Background(), "ip", "netns", "del", n.name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		nemRun(context.Background(), "ip", "link", "del", n.hostIf)
	})
	for _, c := range [][]string{
		{"ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsIf},
		{"ip", "link", "set", n.nsIf, "netns", n.name},
		{"ip", "addr", "add", n.hostIP + "/24", "dev", n.hostIf},
		{"ip", "link", "set", n.hostIf, "up"},
		{"ip", "netns", "exec", n.name, "ip", "addr", "add", n.nsIP + "/24", "dev", n.nsIf},
		{"ip", "netns", "exec", n.name, "ip", "link", "set", n.nsIf, "up"},
		{"ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up"},
	} {
		if _, err := nemRun(ctx, c[0], c[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// exec returns the arguments of ip that run name args... inside the
// namespace.
func (n *netNS) exec(name string, args ...string) []string {
	return append([]string{"netns", "exec", n.name, name}, args...)
}

// cut drops every packet on the namespace's veth, both ways.
func (n *netNS) cut(ctx context.Context) error {
	if _, err := nemRun(ctx, "ip", n.exec("iptables", "-A", "INPUT", "-i", n.nsIf, "-j", "DROP")...); err != nil {
		return err
	}
	_, err := nemRun(ctx, "ip", n.exec("iptables", "-A", "OUTPUT", "-o", n.nsIf, "-j", "DROP")...)
	return err
}

// heal removes the cut.
func (n *netNS) heal(ctx context.Context) error {
	_, err := nemRun(ctx, "ip", n.exec("iptables", "-F")...)
	return err
}

// nemSample is one read of B: through NBD, of the snapshot of the
// checkpoint B's record said was applied (claimed); or through the
// library, of B's volume itself, between two reads of B's record (before
// and after).
type nemSample struct {
	nbd           bool
	claimed       uint64
	before, after uint64
	at            time.Duration
	blocks        blockHashes
}

// nemEnv is the run: the processes, the namespace, the clients.
type nemEnv struct {
	t       *testing.T
	start   time.Time
	dir     string // data directories
	logDir  string
	logs    map[string]*os.File
	ns      *netNS
	aMaster string
	bMaster string
	aNBD    string
	ca, cb  *client.Client
	// source is what is mirrored: a volume's name or a tree's path.
	source string

	bMasterProc *proctest.Proc
	bCS         []*proctest.Proc
	bNBDProc    *proctest.Proc
	aNBDProc    *proctest.Proc
	mirrorProc  *proctest.Proc
	mirrors     int // mirror processes started
}

// log returns the log file of a process (kept across its restarts).
func (e *nemEnv) log(name string) *os.File {
	if f := e.logs[name]; f != nil {
		return f
	}
	f, err := os.OpenFile(filepath.Join(e.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	e.logs[name] = f
	return f
}

// tail returns the end of a process's log.
func (e *nemEnv) tail(name string, n int) string {
	b, _ := os.ReadFile(filepath.Join(e.logDir, name+".log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// spawn runs catena args... (inside B's namespace when inNS), waiting
// for its ready line when ready is not empty.
func (e *nemEnv) spawn(name, ready string, inNS bool, args ...string) *proctest.Proc {
	e.t.Helper()
	bin := catenaBin
	if inNS {
		bin, args = "ip", e.ns.exec(catenaBin, args...)
	}
	p := proctest.Spawn(e.t, bin, name, proctest.Options{Stderr: e.log(name)}, args...)
	if ready != "" {
		if err := p.AwaitReady(ready, proctest.ReadyTimeout); err != nil {
			e.t.Fatalf("%v\n%s log:\n%s", err, name, e.tail(name, 30))
		}
	}
	return p
}

func (e *nemEnv) startBMaster() {
	e.bMasterProc = e.spawn("b-master", "catena master: listening on", true,
		"master", "--insecure", "--dir", filepath.Join(e.dir, "b-master"),
		"--listen", e.bMaster, "--raft-addr", net.JoinHostPort(e.ns.nsIP, strconv.Itoa(nemBRaftPort)))
}

func (e *nemEnv) startBCS(i int) {
	e.bCS[i] = e.spawn(fmt.Sprintf("b-cs%d", i), "catena chunkserver: id", true,
		"chunkserver", "--insecure", "--master", e.bMaster, "--dir", filepath.Join(e.dir, fmt.Sprintf("b-cs%d", i)),
		"--listen", net.JoinHostPort(e.ns.nsIP, strconv.Itoa(nemBCSPort+i)))
}

func (e *nemEnv) startMirror() {
	e.mirrors++
	e.mirrorProc = e.spawn("mirror", "", false, "mirror", "run", "--from", e.aMaster, "--to", e.bMaster,
		"--interval", nemInterval.String(), "--keep-source-checkpoints", "--log-level", "info", e.source)
}

// record reads B's record from the host (through the veth: it fails
// while A<->B is cut).
func (e *nemEnv) record(d time.Duration) (*mirror.Record, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return mirror.ReadRecord(ctx, e.cb, e.source)
}

// awaitApplied waits until B's record says a checkpoint after n is
// applied; the mirror process exiting meanwhile fails the test (it
// runs until killed).
func (e *nemEnv) awaitApplied(n uint64, d time.Duration, why string) *mirror.Record {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if r, err := e.record(5 * time.Second); err == nil && r.Applied > n {
			return r
		}
		select {
		case <-e.mirrorProc.Done():
			e.t.Fatalf("the mirror process exited by itself (%v) awaiting a checkpoint after %d (%s); log:\n%s",
				e.mirrorProc.Err(), n, why, e.tail("mirror", 40))
		case <-time.After(20 * time.Millisecond):
		}
	}
	e.t.Fatalf("no checkpoint after %d applied at B within %s (%s): the mirror did not resume; mirror log:\n%s",
		n, d, why, e.tail("mirror", 40))
	return nil
}

// nbdImage copies export name of B's catena nbd (inside the namespace,
// so a cut of A<->B does not stop it) with nbdcopy and hashes it.
func (e *nemEnv) nbdImage(ctx context.Context, name string) (blockHashes, error) {
	cmd := exec.CommandContext(ctx, "ip", e.ns.exec("nbdcopy", "nbd://"+nemBNBD+"/"+name, "-")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	blocks, herr := hashBlocks(out)
	if herr != nil {
		io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("nbdcopy %s: %v: %s", name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	if herr != nil {
		return nil, fmt.Errorf("nbdcopy %s: %v", name, herr)
	}
	return blocks, nil
}

// nsApplied asks catena mirror status, inside the namespace, for the
// checkpoint B's record says is applied.
func (e *nemEnv) nsApplied(ctx context.Context) (uint64, error) {
	out, err := nemRun(ctx, "ip", e.ns.exec(catenaBin, "mirror", "status", "--to", e.bMaster, "--json", nemVol)...)
	if err != nil {
		return 0, err
	}
	var st struct {
		Applied uint64 `json:"applied"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return 0, fmt.Errorf("mirror status --json: %v: %s", err, out)
	}
	return st.Applied, nil
}

// libImage reads volume name of cluster c with the library and hashes it.
func libImage(ctx context.Context, c *client.Client, name string) (blockHashes, error) {
	img, err := image(ctx, c, name)
	if err != nil {
		return nil, err
	}
	if len(img) != nemVolSize {
		return nil, fmt.Errorf("%s: %d bytes, want %d", name, len(img), nemVolSize)
	}
	return hashBlocks(bytes.NewReader(img))
}

// nemSampler reads B over and over (two goroutines: NBD and library)
// until halted.
type nemSampler struct {
	stop     chan struct{}
	once     sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	samples  []nemSample
	void     map[string]int // failed samples, by path
	lastErrs map[string]string
}

func (e *nemEnv) startSampling() *nemSampler {
	s := &nemSampler{stop: make(chan struct{}), void: map[string]int{}, lastErrs: map[string]string{}}
	loop := func(path string, one func(ctx context.Context) (nemSample, error)) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-s.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				smp, err := one(ctx)
				cancel()
				s.mu.Lock()
				if err != nil {
					s.void[path]++
					s.lastErrs[path] = err.Error()
				} else {
					s.samples = append(s.samples, smp)
				}
				s.mu.Unlock()
				// A pause, so that the samplers leave B's servers (and
				// this machine's cores) to the mirror most of the time.
				pause := nemSamplePause
				if err != nil {
					pause = 100 * time.Millisecond
				}
				select {
				case <-s.stop:
					return
				case <-time.After(pause):
				}
			}
		}()
	}
	loop("nbd", func(ctx context.Context) (nemSample, error) {
		n, err := e.nsApplied(ctx)
		if err != nil {
			return nemSample{}, err
		}
		if n == 0 {
			return nemSample{}, errors.New("no checkpoint applied yet")
		}
		at := time.Since(e.start)
		blocks, err := e.nbdImage(ctx, nemVol+"@"+mirror.CheckpointName(n))
		if err != nil {
			return nemSample{}, err
		}
		return nemSample{nbd: true, claimed: n, at: at, blocks: blocks}, nil
	})
	loop("library", func(ctx context.Context) (nemSample, error) {
		r1, err := mirror.ReadRecord(ctx, e.cb, nemVol)
		if err != nil {
			return nemSample{}, err
		}
		at := time.Since(e.start)
		blocks, err := libImage(ctx, e.cb, nemVol)
		if err != nil {
			return nemSample{}, err
		}
		r2, err := mirror.ReadRecord(ctx, e.cb, nemVol)
		if err != nil {
			return nemSample{}, err
		}
		return nemSample{before: r1.Applied, after: r2.Applied, at: at, blocks: blocks}, nil
	})
	return s
}

// halt stops the samplers (at once; again is a no-op) and returns the
// samples.
func (s *nemSampler) halt() []nemSample {
	s.once.Do(func() { close(s.stop) })
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// nemDuration is fio's run: CATENA_MIRROR_NEMESIS_DURATION or a minute.
func nemDuration(t *testing.T) time.Duration {
	v := os.Getenv("CATENA_MIRROR_NEMESIS_DURATION")
	if v == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 5*time.Second {
		t.Fatalf("CATENA_MIRROR_NEMESIS_DURATION=%q: want a duration of at least 5s", v)
	}
	return d
}

// nemSeed is the nemesis's seed: CATENA_MIRROR_NEMESIS_SEED or random.
func nemSeed(t *testing.T) uint64 {
	if v := os.Getenv("CATENA_MIRROR_NEMESIS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CATENA_MIRROR_NEMESIS_SEED=%q: %v", v, err)
		}
		return s
	}
	return mrand.Uint64() >> 1
}

// TestMirrorNemesis: see the comment at the top of this file.
// nemesisGate skips test name unless CATENA_MIRROR_NEMESIS=1 (hint: how
// to run it), and unless this machine can run it (root, ip, iptables;
// under CI=true their lack fails it).
func nemesisGate(t *testing.T, name, hint string) {
	t.Helper()
	if os.Getenv("CATENA_MIRROR_NEMESIS") != "1" {
		t.Skip("tests/mirror: skipped: " + hint + "; run it as root with CATENA_MIRROR_NEMESIS=1 go test -count=1 -run '" + name + "$' -v ./tests/mirror")
	}
	if os.Geteuid() != 0 {
		testtools.Lacking(t, nemPkg, name+" needs root (network namespaces, iptables)")
	}
	for prog, deb := range map[string]string{"ip": "iproute2", "iptables": "iptables"} {
		if _, err := exec.LookPath(prog); err != nil {
			testtools.Lacking(t, nemPkg, fmt.Sprintf("%s not installed (Debian: apt-get install %s)", prog, deb))
		}
	}
}

// newNemEnv starts the nemesis run's clusters of real processes,
// mirroring source: A (a master and nemAChunksrvs chunkservers) on the
// host's loopback, B (a master and nemBChunksrvs chunkservers) in a
// network namespace of its own, every chunkserver alive, a library
// client of each. Logs and data are kept when the test fails (or with
// CATENA_MIRROR_NEMESIS_KEEP=1).
func newNemEnv(t *testing.T, source string, seed uint64) *nemEnv {
	t.Helper()
	top, err := os.MkdirTemp("", "catena-nemesis-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after every process is killed.
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CATENA_MIRROR_NEMESIS_KEEP") == "1" {
			t.Logf("logs and data kept in %s (seed %d)", top, seed)
			return
		}
		os.RemoveAll(top)
	})
	logDir := filepath.Join(top, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &nemEnv{t: t, start: time.Now(), dir: top, logDir: logDir, logs: map[string]*os.File{}, source: source}
	e.ns = newNetNS(t)
	e.bMaster = net.JoinHostPort(e.ns.nsIP, strconv.Itoa(nemBMasterPort))
	t.Logf("B in namespace %s at %s (veth %s/%s), logs in %s", e.ns.name, e.bMaster, e.ns.hostIf, e.ns.nsIf, logDir)

	// Cluster A on the host's loopback.
	e.aMaster = proctest.FreeAddr(t)
	e.spawn("a-master", "catena master: listening on", false, "master", "--insecure", "--dir", filepath.Join(top, "a-master"),
		"--listen", e.aMaster, "--raft-addr", proctest.FreeAddr(t))
	for i := range nemAChunksrvs {
		e.spawn(fmt.Sprintf("a-cs%d", i), "catena chunkserver: id", false, "chunkserver", "--insecure", "--master", e.aMaster,
			"--dir", filepath.Join(top, fmt.Sprintf("a-cs%d", i)), "--listen", proctest.FreeAddr(t))
	}
	// Cluster B in the namespace.
	e.startBMaster()
	e.bCS = make([]*proctest.Proc, nemBChunksrvs)
	for i := range nemBChunksrvs {
		e.startBCS(i)
	}
	if e.ca, err = client.New(client.Config{Masters: []string{e.aMaster}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.ca.Close() })
	if e.cb, err = client.New(client.Config{Masters: []string{e.bMaster}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cb.Close() })
	alive := func(c *client.Client, n int) func() error {
		return func() error {
			st, err := c.Status(t.Context())
			if err != nil {
				return err
			}
			got := 0
			for _, s := range st.Chunkservers {
				if s.Alive {
					got++
				}
			}
			if got != n {
				return fmt.Errorf("%d chunkservers alive, want %d", got, n)
			}
			return nil
		}
	}
	clustertest.Eventually(t, time.Minute, alive(e.ca, nemAChunksrvs))
	clustertest.Eventually(t, time.Minute, alive(e.cb, nemBChunksrvs))
	return e
}

// nemesisHooks adapt the nemesis schedule to a run.
type nemesisHooks struct {
	// more reports whether to take another step, steps taken so far.
	more func(steps int) bool
	// pause waits d between two steps (or less: the load ended).
	pause func(d time.Duration)
	// beforeStep and afterHeal, when set, see B's record at the start
	// of a step (every fault healed) and once a checkpoint was applied
	// after the step's heal.
	beforeStep, afterHeal func(r *mirror.Record)
}

// nemesis runs the schedule while h.more says so: rounds of the four
// fault kinds in a random order, each step one fault or two at once
// (half the time once B's record shows a checkpoint half applied), held
// 1 to 4 s, healed in dependency order, then a checkpoint awaited (the
// mirror resumed: nemResume bounds it) and a pause. It returns the
// faults injected by kind and the steps taken.
func (e *nemEnv) nemesis(rng *mrand.Rand, h nemesisHooks) (faults map[string]int, steps int) {
	faults = map[string]int{}
	var round []int
	ctx := context.Background()
	for h.more(steps) {
		if len(round) == 0 {
			round = rng.Perm(len(faultKinds))
		}
		kinds := []string{faultKinds[round[0]]}
		round = round[1:]
		if rng.IntN(3) == 0 {
			other := faultKinds[rng.IntN(len(faultKinds))]
			if other != kinds[0] {
				kinds = append(kinds, other)
			}
		}
		r, err := e.record(10 * time.Second)
		if err != nil {
			e.t.Fatalf("step %d: B's record with every fault healed: %v", steps, err)
		}
		if h.beforeStep != nil {
			h.beforeStep(r)
		}
		before := r.Applied
		var what []string
		// Half the time the faults start once B's record shows a
		// checkpoint half applied (a stage at B).
		if rng.IntN(2) == 0 {
			for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if r, err := e.record(time.Second); err == nil && r.Stage != 0 {
					what = append(what, fmt.Sprintf("checkpoint %d half applied (%d done):", r.Pending, r.Done))
					break
				}
			}
		}
		cs := -1
		for _, k := range kinds {
			switch k {
			case faultMirror:
				select {
				case <-e.mirrorProc.Done():
					e.t.Fatalf("the mirror process exited by itself (%v); log:\n%s", e.mirrorProc.Err(), e.tail("mirror", 40))
				default:
				}
				e.mirrorProc.Kill()
				what = append(what, "killed mirror")
			case faultCS:
				cs = rng.IntN(nemBChunksrvs)
				e.bCS[cs].Kill()
				what = append(what, fmt.Sprintf("killed B chunkserver %d", cs))
			case faultMaster:
				e.bMasterProc.Kill()
				what = append(what, "killed B master")
			case faultCut:
				if err := e.ns.cut(ctx); err != nil {
					e.t.Fatal(err)
				}
				// The cut is real: B's master no longer answers the host.
				if c, err := net.DialTimeout("tcp", e.bMaster, 300*time.Millisecond); err == nil {
					c.Close()
					e.t.Fatalf("A<->B cut, yet the host connected to B's master at %s", e.bMaster)
				}
				what = append(what, "cut A<->B")
			}
			faults[k]++
			if len(kinds) > 1 {
				time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
			}
		}
		hold := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
		desc := strings.Replace(strings.Join(what, " + "), ": + ", ": ", 1)
		e.t.Logf("%6.1fs step %d: %s; held %s (B at checkpoint %d)", time.Since(e.start).Seconds(), steps, desc, hold, before)
		time.Sleep(hold)
		// Heal in dependency order: network, master, chunkserver, mirror.
		if slices.Contains(kinds, faultCut) {
			if err := e.ns.heal(ctx); err != nil {
				e.t.Fatal(err)
			}
		}
		if slices.Contains(kinds, faultMaster) {
			e.startBMaster()
		}
		if cs >= 0 {
			e.startBCS(cs)
		}
		if slices.Contains(kinds, faultMirror) {
			e.startMirror()
		}
		healed := time.Now()
		r = e.awaitApplied(before, nemResume, desc+", healed")
		if h.afterHeal != nil {
			h.afterHeal(r)
		}
		e.t.Logf("%6.1fs         healed; checkpoint %d applied %s later", time.Since(e.start).Seconds(), r.Applied,
			time.Since(healed).Round(time.Millisecond))
		steps++
		h.pause(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
	}
	return faults, steps
}

func TestMirrorNemesis(t *testing.T) {
	nemesisGate(t, "TestMirrorNemesis", "the mirror's nemesis run takes over a minute")
	testtools.Programs(t, nemPkg, "fio", "nbdcopy")
	dur := nemDuration(t)
	seed := nemSeed(t)
	t.Logf("nemesis seed %d (CATENA_MIRROR_NEMESIS_SEED=%d reproduces the schedule), fio for %s", seed, seed, dur)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x6e656d65))
	e := newNemEnv(t, nemVol, seed)
	logDir := e.logDir

	if _, err := catena(t, "--master", e.aMaster, "volume", "create", nemVol, "16M", // nemVolSize
		"--chunk-size", "1M", "--replication", "3"); err != nil {
		t.Fatal(err)
	}
	e.aNBD = proctest.FreeAddr(t)
	e.aNBDProc = e.spawn("a-nbd", "catena nbd: serving on", false, "--master", e.aMaster, "nbd", "--listen", e.aNBD, "--volume", nemVol)
	e.bNBDProc = e.spawn("b-nbd", "catena nbd: serving on", true, "--master", e.bMaster, "nbd", "--listen", nemBNBD)

	// fio at A through NBD.
	fioOut := filepath.Join(logDir, "fio.json")
	fioCtx, fioCancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer fioCancel()
	fio := exec.CommandContext(fioCtx, "fio", "--name=nemesis", "--ioengine=nbd", "--uri=nbd://"+e.aNBD+"/"+nemVol,
		"--thread", // one process: the context's SIGKILL stops the job too
		"--rw=randwrite", "--bs=4k", "--iodepth=4", "--size="+strconv.Itoa(nemVolSize),
		"--random_distribution=zipf:1.2", "--rate_iops=100", "--refill_buffers",
		fmt.Sprintf("--randseed=%d", seed), "--time_based", fmt.Sprintf("--runtime=%ds", int(dur.Seconds())),
		"--end_fsync=1", "--output-format=json", "--output="+fioOut)
	fio.Stdout, fio.Stderr = e.log("fio"), e.log("fio")
	if err := fio.Start(); err != nil {
		t.Fatal(err)
	}
	fioDone := make(chan struct{})
	var fioErr error
	go func() { fioErr = fio.Wait(); close(fioDone) }()
	t.Cleanup(func() { fioCancel(); <-fioDone })
	fioStart := time.Now()

	e.startMirror()
	first := e.awaitApplied(0, nemResume, "the first checkpoint")
	t.Logf("checkpoint %d applied at B %s after fio started", first.Applied, time.Since(fioStart).Round(time.Millisecond))
	smp := e.startSampling()
	t.Cleanup(func() { smp.halt() }) // before the processes are killed

	fioRunning := true
	faults, steps := e.nemesis(rng, nemesisHooks{
		more: func(int) bool { return fioRunning },
		pause: func(d time.Duration) {
			select {
			case <-fioDone:
				fioRunning = false
			case <-time.After(d):
			}
		},
	})
	if fioErr != nil {
		t.Fatalf("fio at A (the nemesis never touches A): %v\n%s", fioErr, e.tail("fio", 30))
	}
	var fioRes struct {
		Jobs []struct {
			Write struct {
				TotalIOs int64   `json:"total_ios"`
				IOPS     float64 `json:"iops"`
			} `json:"write"`
			Error int `json:"error"`
		} `json:"jobs"`
	}
	if b, err := os.ReadFile(fioOut); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b[bytes.IndexByte(b, '{'):], &fioRes); err != nil || len(fioRes.Jobs) != 1 {
		t.Fatalf("fio's JSON output: %v\n%s", err, b)
	}
	if fioRes.Jobs[0].Error != 0 || fioRes.Jobs[0].Write.TotalIOs == 0 {
		t.Fatalf("fio: error %d, %d writes", fioRes.Jobs[0].Error, fioRes.Jobs[0].Write.TotalIOs)
	}
	// Every write fio made is acknowledged; catena nbd stopped cleanly.
	e.aNBDProc.Stop(t, time.Minute)

	// The end: faults healed, the writes over, the mirror running: the
	// flush barrier, then the mirror stopped cleanly and B compared with
	// A's final content.
	out, err := catena(t, "mirror", "sync", "--from", e.aMaster, "--to", e.bMaster, "--timeout", "2m", nemVol)
	if err != nil {
		t.Fatalf("mirror sync after the writes: %v; mirror log:\n%s", err, e.tail("mirror", 40))
	}
	t.Logf("mirror sync: %s", strings.TrimSpace(out))
	r, err := e.record(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e.awaitApplied(r.Applied, nemResume, "one more checkpoint after the sync")
	samples := smp.halt()
	e.mirrorProc.Stop(t, time.Minute)
	last, err := e.record(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}

	// A's checkpoints, kept by --keep-source-checkpoints, read with the
	// library.
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer rcancel()
	snaps, err := e.ca.VolumeSnapshots(rctx, nemVol)
	if err != nil {
		t.Fatal(err)
	}
	ckpts := map[uint64]blockHashes{}
	for _, s := range snaps {
		id, ok := mirror.ParseCheckpoint(s.Name)
		if !ok {
			continue
		}
		b, err := libImage(rctx, e.ca, s.Name)
		if err != nil {
			t.Fatalf("read checkpoint %s at A: %v", s.Name, err)
		}
		ckpts[id] = b
	}
	for id := uint64(1); id <= last.Applied; id++ {
		if ckpts[id] == nil {
			t.Fatalf("checkpoint %d of %d missing at A despite --keep-source-checkpoints", id, last.Applied)
		}
	}
	zeros, _ := hashBlocks(bytes.NewReader(make([]byte, nemVolSize)))
	byDigest := map[[sha256.Size]byte][]uint64{zeros.digest(): {0}}
	for id, b := range ckpts {
		byDigest[b.digest()] = append(byDigest[b.digest()], id)
	}
	name := func(ids []uint64) string {
		if len(ids) == 0 {
			return "no checkpoint"
		}
		slices.Sort(ids)
		return fmt.Sprintf("checkpoint(s) %v", ids)
	}

	// Every sample: NBD ones equal the checkpoint they claim, block by
	// block; library ones equal a checkpoint between B's record before
	// the read and one after B's record after it.
	seen := map[uint64]bool{}
	var nbdOK, libOK int
	for i, s := range samples {
		ids := byDigest[s.blocks.digest()]
		if s.nbd {
			nbdOK++
			want := ckpts[s.claimed]
			if want == nil {
				t.Fatalf("sample %d at %.1fs: B's snapshot %s@%s read through NBD, but A holds no such checkpoint",
					i, s.at.Seconds(), nemVol, mirror.CheckpointName(s.claimed))
			}
			if d := s.blocks.differ(want); len(d) > 0 {
				t.Fatalf("sample %d at %.1fs: B's snapshot %s@%s read through NBD differs from A's checkpoint %d in %d of %d blocks (first %v); it equals %s",
					i, s.at.Seconds(), nemVol, mirror.CheckpointName(s.claimed), s.claimed, len(d), nemBlocks, d[:min(len(d), 8)], name(ids))
			}
			seen[s.claimed] = true
			continue
		}
		libOK++
		ok := false
		for _, id := range ids {
			if id >= s.before && id <= s.after+1 {
				ok = true
				seen[id] = true
			}
		}
		if !ok {
			t.Fatalf("sample %d at %.1fs: B's volume read with the library equals %s; B's record said %d before the read and %d after",
				i, s.at.Seconds(), name(ids), s.before, s.after)
		}
	}

	// B at the end equals A's final content: the live volume at A, A's
	// last checkpoint, B's volume and B's checkpoint snapshot through NBD.
	final, err := libImage(rctx, e.ca, nemVol)
	if err != nil {
		t.Fatal(err)
	}
	if d := final.differ(ckpts[last.Applied]); len(d) > 0 {
		t.Fatalf("A's checkpoint %d, taken after the writes stopped, differs from A's volume in %d blocks", last.Applied, len(d))
	}
	bLive, err := libImage(rctx, e.cb, nemVol)
	if err != nil {
		t.Fatal(err)
	}
	if d := bLive.differ(final); len(d) > 0 {
		t.Fatalf("B's volume at checkpoint %d differs from A's final content in %d blocks; it equals %s",
			last.Applied, len(d), name(byDigest[bLive.digest()]))
	}
	bSnap, err := e.nbdImage(rctx, nemVol+"@"+mirror.CheckpointName(last.Applied))
	if err != nil {
		t.Fatal(err)
	}
	if d := bSnap.differ(final); len(d) > 0 {
		t.Fatalf("B's snapshot %s@%s through NBD differs from A's final content in %d blocks", nemVol, mirror.CheckpointName(last.Applied), len(d))
	}

	status, err := catena(t, "mirror", "status", "--to", e.bMaster, nemVol)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, k := range faultKinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, faults[k]))
	}
	t.Logf("nemesis: %d steps over %s (seed %d): %s; %d mirror processes",
		steps, time.Since(fioStart).Round(time.Second), seed, strings.Join(kinds, ", "), e.mirrors)
	t.Logf("fio: %d writes of 4 KiB at A (%.0f IOPS)", fioRes.Jobs[0].Write.TotalIOs, fioRes.Jobs[0].Write.IOPS)
	t.Logf("samples of B: %d through NBD (%d void), %d through the library (%d void); %d distinct checkpoints seen",
		nbdOK, smp.void["nbd"], libOK, smp.void["library"], len(seen))
	t.Logf("checkpoints: B at %d (%d applied by the record's count), %d held at A; shipped %d bytes, %d fallbacks",
		last.Applied, last.Checkpoints, len(ckpts), last.ShippedBytes, last.Fallbacks)
	t.Logf("catena mirror status --to B:\n%s", status)
	for k, v := range smp.lastErrs {
		t.Logf("last void %s sample: %s", k, v)
	}
	// Enough of everything for the run to mean something.
	minSamples := max(3, int(dur/(3*time.Second)))
	if nbdOK < minSamples || libOK < minSamples {
		t.Fatalf("%d samples through NBD and %d through the library: want at least %d of each", nbdOK, libOK, minSamples)
	}
	if steps >= len(faultKinds) {
		for _, k := range faultKinds {
			if faults[k] == 0 {
				t.Fatalf("no %q fault in %d steps", k, steps)
			}
		}
	}
	if len(seen) < 2 {
		t.Fatalf("the samples saw %d distinct checkpoints: want at least 2", len(seen))
	}
}
