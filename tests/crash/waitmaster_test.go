package crash

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/proctest"
	"github.com/catena-io/catena/internal/testtools"
)

// waitLine is what a front end prints once while its master is away.
const waitLine = "waiting for master at "

// TestFrontEndsWaitForMaster: "catena nbd" and "catena mount" started
// before any master exist wait for it (saying so once) instead of exiting,
// and serve once the master and chunkservers come up.
func TestFrontEndsWaitForMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	certs := issueCerts(t, dir, 3)
	master, nbdAddr := freeAddr(t), freeAddr(t)
	nbdProc := proctest.Spawn(t, catenaBin, "nbd", proctest.Options{},
		"nbd", "--tls-dir", certs.admin, "--master", master, "--listen", nbdAddr)
	if err := nbdProc.AwaitStderr(waitLine+master, readyTimeout); err != nil {
		t.Fatal(err)
	}
	mnt := ""
	var mountProc *proctest.Proc
	if canMount() {
		mnt = filepath.Join(dir, "mnt")
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		mountProc = proctest.Spawn(t, catenaBin, "mount", proctest.Options{}, "mount", "--tls-dir", certs.admin, "--master", master, mnt)
		t.Cleanup(func() { exec.Command("fusermount3", "-u", "-z", mnt).Run() })
		if err := mountProc.AwaitStderr(waitLine+master, readyTimeout); err != nil {
			t.Fatal(err)
		}
	} else if testtools.CI() {
		t.Fatal("tests/crash: no FUSE here (needs root, /dev/fuse and fusermount3): CI must test catena mount")
	} else {
		t.Log("tests/crash: no FUSE here (needs root, /dev/fuse and fusermount3): catena mount not tested")
	}

	// Now the cluster.
	start(t, "master", "catena master: listening on",
		"master", "--tls-dir", certs.master, "--dir", filepath.Join(dir, "master"), "--listen", master, "--raft-addr", freeAddr(t))
	for i := range 3 {
		start(t, fmt.Sprintf("cs%d", i+1), "catena chunkserver: id", "chunkserver", "--tls-dir", certs.cs[i], "--master", master,
			"--dir", filepath.Join(dir, fmt.Sprintf("cs%d", i+1)), "--listen", freeAddr(t))
	}
	// A chunkserver says it started before it registered: await all three.
	conn, err := grpc.NewClient(master, certs.dialOption(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	(&crashCluster{t: t, master: master, mc: api.NewMasterClient(conn)}).await("3 chunkservers alive", func(st *api.StatusResponse) error {
		return aliveOf(st, 3)
	})
	cl, err := client.New(client.Config{Masters: []string{master}, TLSDir: certs.admin})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := t.Context()
	if _, err := cl.CreateVolume(ctx, "vol", 4<<20, client.VolumeOptions{ChunkSize: chunkSize}); err != nil {
		t.Fatal(err)
	}
	f, err := cl.Create(ctx, "/hello", client.CreateOptions{ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello\n"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// nbd serves: a raw NBD session writes and reads back a block.
	if err := nbdProc.AwaitReady("catena nbd: serving on", readyTimeout); err != nil {
		t.Fatal(err)
	}
	nc, err := dialNBD(nbdAddr, "vol")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.size != 4<<20 {
		t.Fatalf("export size %d, want %d", nc.size, 4<<20)
	}
	block := bytes.Repeat([]byte("catena!\n"), 512)
	if err := nc.WriteAt(block, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(block))
	if err := nc.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, block) {
		t.Fatalf("read back through catena nbd differs")
	}
	if n := strings.Count(nbdProc.Stderr(), waitLine); n != 1 {
		t.Errorf("nbd said %q %d times, want once; stderr:\n%s", waitLine, n, nbdProc.Stderr())
	}

	if mountProc != nil {
		if err := mountProc.AwaitReady("catena mount: "+mnt+" mounted", readyTimeout); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(mnt, "hello"))
		if err != nil || string(b) != "hello\n" {
			t.Fatalf("read hello through the mount: %q, %v", b, err)
		}
		if n := strings.Count(mountProc.Stderr(), waitLine); n != 1 {
			t.Errorf("mount said %q %d times, want once; stderr:\n%s", waitLine, n, mountProc.Stderr())
		}
		mountProc.Stop(t, 30*time.Second)
	}
	nc.Close()
	nbdProc.Stop(t, 30*time.Second)
}

// TestFrontEndStopsWhileWaiting: SIGTERM stops a front end that is still
// waiting for its master, with a clean exit.
func TestFrontEndStopsWhileWaiting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	master := freeAddr(t)
	p := proctest.Spawn(t, catenaBin, "nbd", proctest.Options{}, "nbd", "--master", master, "--listen", freeAddr(t))
	if err := p.AwaitStderr(waitLine+master, readyTimeout); err != nil {
		t.Fatal(err)
	}
	p.Stop(t, 10*time.Second)
	if canMount() {
		mnt := t.TempDir()
		m := proctest.Spawn(t, catenaBin, "mount", proctest.Options{}, "mount", "--master", master, mnt)
		t.Cleanup(func() { exec.Command("fusermount3", "-u", "-z", mnt).Run() })
		if err := m.AwaitStderr(waitLine+master, readyTimeout); err != nil {
			t.Fatal(err)
		}
		m.Stop(t, 10*time.Second)
	}
}

// canMount reports whether FUSE mounts work here: root, /dev/fuse and
// fusermount3.
func canMount() bool {
	if os.Geteuid() != 0 {
		return false
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return false
	}
	_, err := exec.LookPath("fusermount3")
	return err == nil
}
