package fuse

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/fusefs"
)

func inodeOf(t *testing.T, f *os.File) (ino uint64, nlink uint64, size int64) {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatalf("fstat: %v", err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return sys.Ino, uint64(sys.Nlink), st.Size()
}

// gone waits until the master has deleted inode ino.
func gone(t *testing.T, cl *client.Client, ino uint64) {
	t.Helper()
	clustertest.Eventually(t, 30*time.Second, func() error {
		_, err := cl.GetAttr(t.Context(), ino)
		if errors.Is(err, client.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("inode %d still exists (%v)", ino, err)
	})
}

// An open file that is unlinked, or renamed over, stays usable through its
// descriptors, on this mount and on another; its space is freed at the
// last close.
func TestOrphanStaysUsable(t *testing.T) {
	needs(t)
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	d := mount(t, cl)
	p := filepath.Join(d, "f")
	data := make([]byte, 5<<20+3)
	rand.Read(data)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p, data, 0o644))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(err)
	g, err := os.Open(p)
	must(err)
	ino, _, _ := inodeOf(t, f)
	// Unflushed bytes at the time of the unlink must not be lost either.
	_, err = f.WriteAt([]byte("before"), 10)
	must(err)
	copy(data[10:], "before")
	must(os.Remove(p))
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat after unlink: %v", err)
	}
	if _, nlink, size := inodeOf(t, f); nlink != 0 || size != int64(len(data)) {
		t.Fatalf("fstat after unlink: nlink %d size %d", nlink, size)
	}
	_, err = f.WriteAt([]byte("after"), 4<<20)
	must(err)
	copy(data[4<<20:], "after")
	must(f.Sync())
	must(f.Truncate(int64(len(data) - 100)))
	data = data[:len(data)-100]
	got := make([]byte, len(data)+10)
	n, _ := g.ReadAt(got, 0)
	if !bytes.Equal(got[:n], data) {
		t.Fatalf("read of the unlinked file through another descriptor: %d bytes, differ", n)
	}
	if _, err := cl.GetAttr(t.Context(), ino); err != nil {
		t.Fatalf("orphan gone while open: %v", err)
	}
	must(f.Close())
	if _, err := cl.GetAttr(t.Context(), ino); err != nil {
		t.Fatalf("orphan gone while still open through a second descriptor: %v", err)
	}
	must(g.Close())
	gone(t, cl, ino)

	// Renamed over.
	must(os.WriteFile(p, []byte("old contents"), 0o644))
	must(os.WriteFile(p+".new", []byte("new"), 0o644))
	f, err = os.Open(p)
	must(err)
	ino, _, _ = inodeOf(t, f)
	must(os.Rename(p+".new", p))
	b := make([]byte, 100)
	if n, _ := f.ReadAt(b, 0); string(b[:n]) != "old contents" {
		t.Fatalf("replaced file read %q", b[:n])
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != "new" {
		t.Fatalf("new file %q, %v", got, err)
	}
	must(f.Close())
	gone(t, cl, ino)

	// Open on another mount, unlinked on this one: the other mount's
	// descriptor keeps working until it closes.
	d2 := mount(t, clustertest.Client(t, c))
	must(os.WriteFile(p, []byte("shared contents"), 0o644))
	f, err = os.OpenFile(filepath.Join(d2, "f"), os.O_RDWR, 0)
	must(err)
	ino, _, _ = inodeOf(t, f)
	must(os.Remove(p))
	if _, err := f.WriteAt([]byte("!"), 6); err != nil {
		t.Fatalf("write on the other mount after the unlink: %v", err)
	}
	if n, _ := f.ReadAt(b, 0); string(b[:n]) != "shared!contents" {
		t.Fatalf("read on the other mount after the unlink: %q", b[:n])
	}
	if _, nlink, _ := inodeOf(t, f); nlink != 0 {
		t.Fatalf("nlink %d on the other mount", nlink)
	}
	must(f.Close())
	gone(t, cl, ino)
}

// A mount that dies with an orphan open leaves it to the master, which
// reclaims it when the mount's session expires; a master restart in
// between keeps the orphan (it is replicated state) and the open file
// usable.
func TestOrphanReclaimedAfterCrash(t *testing.T) {
	needs(t)
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	check := clustertest.Client(t, c)
	// The mount's own connection, closed to play its crash.
	cl, err := c.NewClientConfig(client.Config{OpTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := fusefs.Mount(dir, fusefs.Config{Client: cl, ChunkSize: 4 << 20, SessionTTL: time.Second,
		Logger: clustertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	ino, _, _ := inodeOf(t, f)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := c.KillMaster(0); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartMaster(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("across the restart"), 100); err != nil {
		t.Fatalf("write to the orphan across a master restart: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync of the orphan across a master restart: %v", err)
	}
	if _, err := check.GetAttr(t.Context(), ino); err != nil {
		t.Fatalf("orphan lost in the master restart: %v", err)
	}
	// The crash: the mount loses the cluster, then the kernel the mount.
	cl.Close()
	abortFuse(t, dir)
	f.Close()
	_ = srv.Unmount()
	gone(t, check, ino)
}

// abortFuse aborts the kernel's FUSE connection of the mount at dir, as
// when its server process dies.
func abortFuse(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		fs := strings.Fields(l)
		if len(fs) > 4 && fs[4] == dir {
			_, minor, _ := strings.Cut(fs[2], ":")
			if _, err := os.Stat("/sys/fs/fuse/connections/" + minor); err != nil {
				if out, err := exec.Command("mount", "-t", "fusectl", "none", "/sys/fs/fuse/connections").CombinedOutput(); err != nil {
					t.Skipf("no fusectl: %v %s", err, out)
				}
			}
			if err := os.WriteFile("/sys/fs/fuse/connections/"+minor+"/abort", []byte("1"), 0); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput(); err != nil {
				t.Fatalf("lazy unmount: %v %s", err, out)
			}
			return
		}
	}
	t.Fatalf("%s not mounted", dir)
}
