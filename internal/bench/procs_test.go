package bench

// A cluster of real `catena` processes for the failure benchmarks: the
// built binary, every process in its own process group, killed by PID
// (SIGKILL) on cleanup; data under b.TempDir().

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/master"
	"github.com/catena-io/catena/internal/proctest"
)

// procReadyTimeout bounds a process start and each wait for the cluster.
const procReadyTimeout = 2 * time.Minute

// buildCatena builds the catena binary into a temp dir of b.
func buildCatena(b *testing.B) string {
	b.Helper()
	bin, err := proctest.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

func freeTCPAddr(b *testing.B) string { return proctest.FreeAddr(b) }

// startProc runs bin args..., stderr appended to logPath, and waits for a
// stdout line starting with ready. Cleanup SIGKILLs it.
func startProc(b *testing.B, bin, logPath, ready string, args ...string) *proctest.Proc {
	b.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close() // the child holds its own descriptor
	return proctest.Start(b, bin, filepath.Base(logPath), ready, logf, args...)
}

// procCluster is a master and chunkservers; the master is a process, or
// in-process when the benchmark needs a master.Config knob the CLI lacks.
type procCluster struct {
	b      *testing.B
	bin    string
	dir    string
	master string
	cs     []*proctest.Proc
	csArgs [][]string
	csAddr []string
	cl     *client.Client
}

// procClusterConfig configures startProcCluster.
type procClusterConfig struct {
	Chunkservers int
	// MasterArgs are extra `catena master` flags (e.g. -v).
	MasterArgs []string
	// InProcessMaster, when set, runs the master in the benchmark process
	// with this configuration (Dir and ListenAddr are filled in).
	InProcessMaster *master.Config
	// ChunkserverArgs are extra `catena chunkserver` flags (e.g.
	// --capacity).
	ChunkserverArgs []string
}

func startProcCluster(b *testing.B, cfg procClusterConfig) *procCluster {
	b.Helper()
	c := &procCluster{b: b, bin: buildCatena(b), dir: b.TempDir()}
	if cfg.InProcessMaster != nil {
		mc := *cfg.InProcessMaster
		mc.Dir = filepath.Join(c.dir, "master")
		mc.ListenAddr = "127.0.0.1:0"
		if mc.Logger == nil {
			mc.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		if err := os.MkdirAll(mc.Dir, 0o755); err != nil {
			b.Fatal(err)
		}
		m, err := master.Start(context.Background(), mc)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		c.master = m.Addr()
	} else {
		c.master = freeTCPAddr(b)
		args := append([]string{"master", "--insecure", "--dir", filepath.Join(c.dir, "master"),
			"--listen", c.master, "--raft-addr", freeTCPAddr(b)}, cfg.MasterArgs...)
		startProc(b, c.bin, filepath.Join(c.dir, "master.log"), "catena master: listening on", args...)
	}
	for range cfg.Chunkservers {
		c.addChunkserver(cfg.ChunkserverArgs...)
	}
	cl, err := client.New(client.Config{Masters: []string{c.master}, OpTimeout: 5 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cl.Close() })
	c.cl = cl
	c.await("every chunkserver alive", func(st *client.Status) error { return c.allAlive(st) })
	return c
}

// addChunkserver starts one more chunkserver process with extra flags;
// it returns its index.
func (c *procCluster) addChunkserver(extra ...string) int {
	i := len(c.cs)
	addr := freeTCPAddr(c.b)
	c.csAddr = append(c.csAddr, addr)
	c.csArgs = append(c.csArgs, append([]string{"chunkserver", "--insecure", "--master", c.master,
		"--dir", filepath.Join(c.dir, fmt.Sprintf("cs%d", i+1)), "--listen", addr}, extra...))
	c.cs = append(c.cs, nil)
	c.startChunkserver(i)
	return i
}

func (c *procCluster) startChunkserver(i int) {
	c.cs[i] = startProc(c.b, c.bin, filepath.Join(c.dir, fmt.Sprintf("cs%d.log", i+1)),
		"catena chunkserver: id", c.csArgs[i]...)
}

// index returns the chunkserver process listening on addr, or -1.
func (c *procCluster) index(addr string) int {
	for i, a := range c.csAddr {
		if a == addr {
			return i
		}
	}
	return -1
}

func (c *procCluster) allAlive(st *client.Status) error {
	alive := 0
	for _, s := range st.Chunkservers {
		if s.Alive {
			alive++
		}
	}
	if alive != len(c.cs) {
		return fmt.Errorf("%d of %d chunkservers alive", alive, len(c.cs))
	}
	return nil
}

// repaired: every chunkserver alive and no chunk short of its replicas.
func (c *procCluster) repaired(st *client.Status) error {
	if err := c.allAlive(st); err != nil {
		return err
	}
	if st.ChunksUnderReplicated != 0 || st.ChunksReReplicating != 0 || st.ChunksLost != 0 {
		return fmt.Errorf("%d under-replicated, %d re-replicating, %d lost",
			st.ChunksUnderReplicated, st.ChunksReReplicating, st.ChunksLost)
	}
	return nil
}

// await polls Status every 20 ms until cond holds; it returns that Status.
func (c *procCluster) await(what string, cond func(*client.Status) error) *client.Status {
	c.b.Helper()
	return c.awaitWithin(what, procReadyTimeout, cond)
}

// awaitWithin is await with a deadline of d.
func (c *procCluster) awaitWithin(what string, d time.Duration, cond func(*client.Status) error) *client.Status {
	c.b.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := c.cl.Status(ctx)
		cancel()
		if err == nil {
			if last = cond(st); last == nil {
				return st
			}
		} else {
			last = err
		}
		time.Sleep(20 * time.Millisecond) // polling a remote condition
	}
	c.b.Fatalf("waiting for %s: %v", what, last)
	return nil
}
