package crash

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/proctest"
)

// catenaBin is the binary under test, built once by TestMain.
var catenaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "catena-crash-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if catenaBin, err = proctest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	chunkservers = 4
	chunkSize    = 1 << 20
	fileSize     = 4 * chunkSize
	// readyTimeout bounds a process start and each wait for the cluster.
	readyTimeout = 60 * time.Second
	// writeTimeout bounds the retries of one write; the client retries
	// within it while chains are reconfigured.
	writeTimeout = 30 * time.Second
)

// faultDuration is how long chunkservers are killed and restarted.
func faultDuration(t *testing.T) time.Duration {
	if s := os.Getenv("CATENA_CRASH_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("CATENA_CRASH_DURATION: %v", err)
		}
		return d
	}
	return 12 * time.Second
}

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CATENA_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CATENA_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with CATENA_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func freeAddr(t *testing.T) string { return proctest.FreeAddr(t) }

// start runs "catena args..." and waits for a stdout line starting with
// ready.
func start(t *testing.T, name, ready string, args ...string) *proctest.Proc {
	t.Helper()
	var stderr io.Writer
	if logDir := os.Getenv("CATENA_CRASH_LOGS"); logDir != "" {
		// Each process's log, kept across restarts (and --verbose).
		f, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		stderr = f
		args = append([]string{"--verbose"}, args...)
	}
	return proctest.Start(t, catenaBin, name, ready, stderr, args...)
}

// crashCluster is a master and its chunkservers as processes.
type crashCluster struct {
	t      *testing.T
	dir    string
	master string
	certs  *testCerts
	mc     api.MasterClient
	cs     []*proctest.Proc
	csArgs [][]string
}

func startCluster(t *testing.T) *crashCluster {
	dir := t.TempDir()
	c := &crashCluster{t: t, dir: dir, master: freeAddr(t), certs: issueCerts(t, dir, chunkservers)}
	start(t, "master", "catena master: listening on",
		"master", "--tls-dir", c.certs.master, "--dir", filepath.Join(dir, "master"), "--listen", c.master, "--raft-addr", freeAddr(t))
	conn, err := grpc.NewClient(c.master, c.certs.dialOption(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.mc = api.NewMasterClient(conn)
	for i := range chunkservers {
		args := []string{"chunkserver", "--tls-dir", c.certs.cs[i], "--master", c.master,
			"--dir", filepath.Join(dir, fmt.Sprintf("cs%d", i+1)), "--listen", freeAddr(t)}
		c.csArgs = append(c.csArgs, args)
		c.cs = append(c.cs, start(t, fmt.Sprintf("cs%d", i+1), "catena chunkserver: id", args...))
	}
	c.await("every chunkserver alive", func(st *api.StatusResponse) error {
		return allAlive(st)
	})
	return c
}

func allAlive(st *api.StatusResponse) error { return aliveOf(st, chunkservers) }

// aliveOf reports whether n chunkservers are alive.
func aliveOf(st *api.StatusResponse, n int) error {
	alive := 0
	for _, s := range st.GetChunkservers() {
		if s.GetAlive() {
			alive++
		}
	}
	if alive != n {
		return fmt.Errorf("%d of %d chunkservers alive", alive, n)
	}
	return nil
}

// await polls the master's Status until cond returns nil.
func (c *crashCluster) await(what string, cond func(*api.StatusResponse) error) {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := c.mc.Status(ctx, &api.StatusRequest{})
		cancel()
		if err == nil {
			if last = cond(st); last == nil {
				return
			}
		} else {
			last = err
		}
		<-tick.C
	}
	c.t.Fatalf("waiting for %s: %v", what, last)
}

func (c *crashCluster) restart(i int) {
	c.t.Helper()
	c.cs[i] = start(c.t, fmt.Sprintf("cs%d", i+1), "catena chunkserver: id", c.csArgs[i]...)
}

// TestCrashChunkservers: SIGKILL random chunkservers under a write load,
// restart them, and read back every acknowledged write.
func TestCrashChunkservers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes for a while")
	}
	c := startCluster(t)
	r := newRand(t)
	cl, err := client.New(client.Config{Masters: []string{c.master}, OpTimeout: writeTimeout, TLSDir: c.certs.admin})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	f, err := cl.Create(ctx, "/crash", client.CreateOptions{ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]byte, fileSize)
	for i := range ref {
		ref[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(ref, 0); err != nil {
		t.Fatal(err)
	}
	initial := bytes.Clone(ref)
	hist := &writeHistory{}

	// The writer: one write at a time; a failed write is retried with the
	// same bytes until acknowledged, so ref is exactly what must be read.
	var acked atomic.Int64
	stop := make(chan struct{})
	werr := make(chan error, 1)
	wr := rand.New(rand.NewPCG(r.Uint64(), 1))
	go func() {
		for {
			select {
			case <-stop:
				werr <- nil
				return
			default:
			}
			off := wr.IntN(fileSize)
			n := 1 + wr.IntN(min(fileSize-off, 64<<10))
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(wr.Uint32())
			}
			deadline := time.Now().Add(2 * writeTimeout)
			for {
				k := hist.add(off, p)
				_, err := f.WriteAt(p, int64(off))
				if err == nil {
					hist.ack(k)
					break
				}
				if time.Now().After(deadline) {
					werr <- fmt.Errorf("write of %d bytes at %d never acknowledged: %w", n, off, err)
					return
				}
			}
			copy(ref[off:], p)
			acked.Add(1)
		}
	}()

	// Faults: kill one or two chunkservers, let the load run, restart.
	end := time.Now().Add(faultDuration(t))
	kills := 0
	for time.Now().Before(end) {
		victims := []int{r.IntN(chunkservers)}
		if r.IntN(3) == 0 {
			if v := r.IntN(chunkservers); v != victims[0] {
				victims = append(victims, v)
			}
		}
		before := acked.Load()
		for _, v := range victims {
			c.cs[v].Kill()
			kills++
		}
		// Down for a random while: the fault itself, no event to await.
		down := time.NewTimer(time.Duration(300+r.IntN(1700)) * time.Millisecond)
		<-down.C
		for _, v := range victims {
			c.restart(v)
		}
		t.Logf("killed %v: %d writes acknowledged while down", victims, acked.Load()-before)
	}
	close(stop)
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d SIGKILLs, %d writes acknowledged", kills, acked.Load())
	if acked.Load() < 10 {
		t.Fatalf("only %d writes acknowledged under faults", acked.Load())
	}

	c.await("repair", func(st *api.StatusResponse) error {
		if err := allAlive(st); err != nil {
			return err
		}
		cs := st.GetChunks()
		if cs.GetUnderReplicated() != 0 || cs.GetReReplicating() != 0 {
			return fmt.Errorf("%d chunks under-replicated, %d re-replicating", cs.GetUnderReplicated(), cs.GetReReplicating())
		}
		return nil
	})
	_, chunks, err := cl.StatChunks(ctx, "/crash")
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chunks {
		if len(ch.Chain) != 3 {
			t.Errorf("chunk %d: chain %v after repair, want 3 members", ch.Index, ch.Chain)
		}
	}

	// Read back through a fresh client.
	cl2, err := client.New(client.Config{Masters: []string{c.master}, TLSDir: c.certs.admin})
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	g, err := cl2.Open(ctx, "/crash")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	got := make([]byte, fileSize)
	if n, err := g.ReadAt(got, 0); n != fileSize || (err != nil && err != io.EOF) {
		t.Fatalf("read back: %d of %d bytes, %v", n, fileSize, err)
	}
	if !bytes.Equal(got, ref) {
		t.Fatalf("acknowledged data differs:\n%s", c.diagnoseCrash(chunks, got, ref, initial, hist))
	}
}
