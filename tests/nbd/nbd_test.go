package nbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/lincheck"
	"github.com/catena-io/catena/internal/nbd"
	"github.com/catena-io/catena/internal/testtools"
)

type env struct {
	c    *cluster.Cluster
	cl   *client.Client
	addr string
}

func (e *env) uri(vol string) string { return "nbd://" + e.addr + "/" + vol }

// start runs a cluster of n chunkservers and an NBD server serving every
// volume on 127.0.0.1:0.
func start(t *testing.T, n int) *env {
	t.Helper()
	c := clustertest.New(t, cluster.Config{Chunkservers: n})
	cl := clustertest.Client(t, c)
	return &env{c: c, cl: cl, addr: serve(t, cl)}
}

// serve runs an NBD server of every volume cl may see on 127.0.0.1:0
// until the test ends, and returns its address.
func serve(t *testing.T, cl *client.Client) string {
	t.Helper()
	return serveExports(t, nbd.NewVolumeExports(cl, nil))
}

// serveExports serves exports on 127.0.0.1:0 until the test ends, and
// returns the address.
func serveExports(t *testing.T, exports *nbd.VolumeExports) string {
	t.Helper()
	srv, err := nbd.NewServer(nbd.Config{Exports: exports, Logger: clustertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); exports.Close() })
	return l.Addr().String()
}

func (e *env) volume(t *testing.T, name string, size int64, repl int) {
	t.Helper()
	if _, err := e.cl.CreateVolume(context.Background(), name, size, client.VolumeOptions{Replication: repl, ChunkSize: 16 << 20}); err != nil {
		t.Fatal(err)
	}
}

// run runs a tool, failing the test when it fails; a missing tool skips
// the test (fails it in CI, see internal/testtools).
func run(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	testtools.Programs(t, "tests/nbd", name)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestNbdinfo(t *testing.T) {
	e := start(t, 3)
	e.volume(t, "alpha", 64<<20, 3)
	e.volume(t, "beta", 1<<30, 1)
	var list struct {
		Exports []struct {
			Name string `json:"export-name"`
			Size int64  `json:"export-size"`
		} `json:"exports"`
	}
	out := run(t, time.Minute, "nbdinfo", "--list", "--json", "nbd://"+e.addr)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("nbdinfo --list: %v\n%s", err, out)
	}
	got := map[string]int64{}
	for _, x := range list.Exports {
		got[x.Name] = x.Size
	}
	if len(got) != 2 || got["alpha"] != 64<<20 || got["beta"] != 1<<30 {
		t.Fatalf("exports %v\n%s", got, out)
	}
	var info struct {
		Exports []map[string]any `json:"exports"`
	}
	out = run(t, time.Minute, "nbdinfo", "--json", e.uri("alpha"))
	if err := json.Unmarshal([]byte(out), &info); err != nil || len(info.Exports) != 1 {
		t.Fatalf("nbdinfo: %v\n%s", err, out)
	}
	x := info.Exports[0]
	for k, want := range map[string]any{"is_read_only": false, "can_flush": true, "can_fua": true, "can_trim": true,
		"can_zero": true, "can_multi_conn": true, "export-size": float64(64 << 20), "block_size_minimum": float64(1)} {
		if x[k] != want {
			t.Errorf("nbdinfo %s = %v, want %v", k, x[k], want)
		}
	}
}

func sha(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestNbdcopyAndQemuCompare(t *testing.T) {
	e := start(t, 3)
	const size = 256 << 20
	e.volume(t, "img", size, 3)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.raw"), filepath.Join(dir, "out.raw")
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, 2*time.Minute, "nbdcopy", in, e.uri("img"))
	run(t, 2*time.Minute, "nbdcopy", e.uri("img"), out)
	if sha(t, in) != sha(t, out) {
		t.Fatal("sha256 of the copy out differs from the image copied in")
	}
	run(t, 2*time.Minute, "qemu-img", "compare", "-f", "raw", "-F", "raw", in, e.uri("img"))
}

func TestQemuIOUnaligned(t *testing.T) {
	e := start(t, 3)
	e.volume(t, "q", 64<<20, 3)
	out := run(t, time.Minute, "qemu-io", "-f", "raw",
		"-c", "write -P 0xab 1000 5000",
		"-c", "write -P 0xcd 16777000 1000", // across the 16 MiB chunk boundary
		"-c", "read -P 0xab 1000 5000",
		"-c", "read -P 0xcd 16777000 1000",
		"-c", "read -P 0 0 1000",
		"-c", "read -P 0 6000 100000",
		"-c", "write -z 1500 10",
		"-c", "read -P 0 1500 10",
		"-c", "read -P 0xab 1510 4490",
		"-c", "flush",
		e.uri("q"))
	if strings.Contains(out, "failed") || strings.Contains(out, "error") {
		t.Fatalf("qemu-io:\n%s", out)
	}
	if n := strings.Count(out, "read "); n != 6 {
		t.Fatalf("qemu-io: %d reads reported, want 6\n%s", n, out)
	}
	// Past the end is refused, not a crash.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, _ := exec.CommandContext(ctx, "qemu-io", "-f", "raw", "-c", "read 67108000 1000", e.uri("q")).CombinedOutput()
	if !strings.Contains(string(b), "error") && !strings.Contains(string(b), "Input/output") && !strings.Contains(string(b), "Invalid") {
		t.Fatalf("read past end did not fail:\n%s", b)
	}
}

func fioArgs(uri string) []string {
	return []string{"--name=verify", "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite", "--bs=4k",
		"--size=8m", "--offset_increment=8m", "--numjobs=4", "--iodepth=8", "--verify=crc32c",
		"--verify_fatal=1", "--do_verify=1", "--verify_state_save=0", "--group_reporting"}
}

func TestFioVerify(t *testing.T) {
	e := start(t, 3)
	e.volume(t, "f", 64<<20, 3)
	out := run(t, 2*time.Minute, "fio", fioArgs(e.uri("f"))...)
	if strings.Contains(out, "verify:") && strings.Contains(out, "bad") {
		t.Fatalf("fio verify errors:\n%s", out)
	}
	if !strings.Contains(out, "err= 0") {
		t.Fatalf("fio reported errors:\n%s", out)
	}
}

func TestFioChunkserverKilled(t *testing.T) {
	e := start(t, 4)
	e.volume(t, "k", 64<<20, 3)
	testtools.Programs(t, "tests/nbd", "fio")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "fio", append(fioArgs(e.uri("k")), "--rate_iops=500")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill a chunkserver once the volume has data on it.
	clustertest.Eventually(t, time.Minute, func() error {
		v, err := e.cl.VolumeInfo(ctx, "k")
		if err != nil || v.AllocatedChunks < 2 {
			return fmt.Errorf("volume not written yet (%v)", err)
		}
		return nil
	})
	if err := e.c.StopChunkserver(1); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("fio with a chunkserver killed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "err= 0") {
		t.Fatalf("fio reported errors:\n%s", out.String())
	}
}

func TestTrimZerosAndFreesSpace(t *testing.T) {
	e := start(t, 3)
	e.volume(t, "t", 64<<20, 3)
	run(t, time.Minute, "qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 32M", e.uri("t"))
	before := e.c.DiskBytes()
	if before < 3*32<<20 {
		t.Fatalf("disk usage %d after writing 32 MiB x3", before)
	}
	out := run(t, time.Minute, "qemu-io", "-f", "raw", "-c", "discard 0 24M", "-c", "read -P 0 0 24M",
		"-c", "read -P 0x5a 24M 8M", e.uri("t"))
	if strings.Contains(out, "failed") || strings.Contains(out, "error") {
		t.Fatalf("qemu-io:\n%s", out)
	}
	// The chunk engine punches trimmed bytes out of its log once a
	// checkpoint (started by the trim, in the background) covers them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		after := e.c.DiskBytes()
		if after <= before-3*20<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("disk usage %d -> %d: trim of 24 MiB x3 freed too little", before, after)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFioDuringReplicaChanges: fio writes and verifies through NBD, run
// after run, while the volume's replication goes 3 -> 5 -> 2 and then a
// chunkserver drains: every fio run verifies, the chains end at exactly
// two members, none on the drained server, which holds nothing.
func TestFioDuringReplicaChanges(t *testing.T) {
	testtools.Programs(t, "tests/nbd", "fio")
	c := clustertest.New(t, cluster.Config{Chunkservers: 6, RepairInterval: 50 * time.Millisecond})
	cl := clustertest.Client(t, c)
	e := &env{c: c, cl: cl, addr: serve(t, cl)}
	e.volume(t, "r", 64<<20, 3)
	ctx := context.Background()

	done := make(chan struct{})
	fioErr := make(chan error, 1)
	runs := 0
	go func() {
		defer close(fioErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			out, err := exec.CommandContext(fctx, "fio", append(fioArgs(e.uri("r")), "--rate_iops=1000")...).CombinedOutput()
			cancel()
			if err != nil || !strings.Contains(string(out), "err= 0") {
				fioErr <- fmt.Errorf("fio run %d: %v\n%s", runs+1, err, out)
				return
			}
			runs++
		}
	}()
	// A porcupine register test in the volume's other half (fio uses
	// the first 32 MiB), on the same changing chains.
	regCtx, regStop := context.WithCancel(ctx)
	defer regStop()
	h := lincheck.NewHistory()
	wl := lincheck.Workload{Blocks: 8, Base: 32 << 20, Stride: 4 << 20, Workers: 4, OpTimeout: 10 * time.Second}
	var regs sync.WaitGroup
	torn := make(chan error, wl.Workers)
	for w := range wl.Workers {
		v, err := clustertest.Client(t, c).OpenVolume(ctx, "r")
		if err != nil {
			t.Fatal(err)
		}
		r := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
		regs.Go(func() {
			if err := wl.Run(regCtx, w, v, r, h); err != nil {
				torn <- err
			}
		})
	}
	settled := func(want int) {
		t.Helper()
		clustertest.Eventually(t, 90*time.Second, func() error {
			st, err := cl.Status(ctx)
			if err != nil {
				return err
			}
			var members uint64
			for _, s := range st.Chunkservers {
				members += s.Chains
			}
			if st.ChunksUnderReplicated+st.ChunksOverReplicated != 0 || st.ChunksTotal == 0 || members != uint64(want)*st.ChunksTotal {
				return fmt.Errorf("%d chunks, %d memberships (want %d each), %d under-, %d over-replicated",
					st.ChunksTotal, members, want, st.ChunksUnderReplicated, st.ChunksOverReplicated)
			}
			return nil
		})
	}
	// Some data first, so that there are chains to change.
	clustertest.Eventually(t, time.Minute, func() error {
		if v, err := cl.VolumeInfo(ctx, "r"); err != nil || v.AllocatedChunks < 2 {
			return fmt.Errorf("volume not written yet (%v)", err)
		}
		return nil
	})
	for _, n := range []int{5, 2} {
		if _, err := cl.SetVolumeReplication(ctx, "r", n); err != nil {
			t.Fatal(err)
		}
		settled(n)
	}
	st, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var drained uint64
	for _, s := range st.Chunkservers {
		if s.Chains > 0 && (drained == 0 || s.ID < drained) {
			drained = s.ID
		}
	}
	conn, err := grpc.NewClient(c.MasterAddr(), c.DialOption(auth.RoleMaster))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := api.NewAdminClient(conn).DrainChunkserver(ctx, &api.DrainChunkserverRequest{Id: drained}); err != nil {
		t.Fatal(err)
	}
	settled(2)
	clustertest.Eventually(t, time.Minute, func() error {
		held, err := c.ReplicaHandles(c.ChunkserverIndex(drained))
		if err != nil {
			return err
		}
		if len(held) != 0 {
			return fmt.Errorf("the drained server still holds %v", held)
		}
		return nil
	})
	close(done)
	regStop()
	regs.Wait()
	close(torn)
	for err := range torn {
		t.Error(err)
	}
	if err := <-fioErr; err != nil {
		t.Fatal(err)
	}
	if runs == 0 {
		t.Fatal("no fio run completed during the changes")
	}
	lincheck.Check(t, h, 10)
	st, err = cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Chunkservers {
		if s.ID == drained && s.Chains != 0 {
			t.Fatalf("the drained server is in %d chains", s.Chains)
		}
	}
	t.Logf("%d fio runs verified while replication went 3 -> 5 -> 2 and server %d drained", runs, drained)
}

// TestExportDeniedToOtherUser: a volume is root's (mode 0600); `catena
// nbd` running with a client certificate of another user refuses the
// export at the handshake, saying why (NBD_REP_ERR_POLICY), instead of
// failing every read and write with EIO; an admin's serves it.
func TestExportDeniedToOtherUser(t *testing.T) {
	testtools.Programs(t, "tests/nbd", "nbdinfo")
	e := start(t, 3)
	e.volume(t, "private", 16<<20, 3)
	userDir := filepath.Join(t.TempDir(), "bob")
	if err := auth.IssueUser(filepath.Join(e.c.Dir(), "tls", "ca"), auth.RoleClient, "bob", &auth.User{UID: 1001, GID: 1001}, nil, userDir); err != nil {
		t.Fatal(err)
	}
	bob, err := client.New(client.Config{Masters: []string{e.c.MasterAddr()}, TLSDir: userDir})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, err := bob.OpenVolume(context.Background(), "private"); !errors.Is(err, client.ErrPermission) {
		t.Fatalf("bob opens root's volume: %v, want ErrPermission", err)
	}
	bobAddr := serve(t, bob)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nbdinfo", "nbd://"+bobAddr+"/private")
	cmd.Env = append(os.Environ(), "LIBNBD_DEBUG=1") // the server's reason is in the debug log
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "may not use it") {
		t.Fatalf("nbdinfo through bob's server: %v\n%s", err, out)
	}
	// The admin's server serves it.
	if out := run(t, time.Minute, "nbdinfo", e.uri("private")); !strings.Contains(out, "16777216") {
		t.Fatalf("nbdinfo through the admin's server:\n%s", out)
	}
}
