package fusefs_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/fusefs"
	"github.com/catena-io/catena/internal/testtools"
)

// mount starts a cluster and mounts it; it skips without /dev/fuse or root.
func mount(t *testing.T) string {
	t.Helper()
	return mountConfig(t, fusefs.Config{})
}

// mountConfig mounts with cfg (Client, AllowOther, ChunkSize and Logger
// are set here).
func mountConfig(t *testing.T, cfg fusefs.Config) string {
	t.Helper()
	testtools.RootAndFUSE(t, "internal/fusefs")
	testtools.Programs(t, "internal/fusefs", "fusermount3")
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	dir := t.TempDir()
	// The unprivileged helper of the EACCES test must reach the mount.
	must(t, os.Chmod(filepath.Dir(dir), 0o755))
	cfg.Client, cfg.AllowOther, cfg.ChunkSize, cfg.Logger = cl, true, 1<<20, clustertest.Logger()
	srv, err := fusefs.Mount(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dir
}

func wantErrno(t *testing.T, err error, want syscall.Errno) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOperations(t *testing.T) {
	d := mount(t)
	p := func(s string) string { return filepath.Join(d, s) }

	// create, write, read, getattr of an open file, close, reopen.
	data := make([]byte, 3<<20+123)
	rand.Read(data)
	f, err := os.OpenFile(p("a"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	must(t, err)
	_, err = f.Write(data)
	must(t, err)
	st, err := os.Stat(p("a"))
	must(t, err)
	if st.Size() != int64(len(data)) {
		t.Fatalf("size of open file %d, want %d", st.Size(), len(data))
	}
	must(t, f.Sync())
	must(t, f.Close())
	got, err := os.ReadFile(p("a"))
	must(t, err)
	if !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	_, err = os.OpenFile(p("a"), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	wantErrno(t, err, syscall.EEXIST)
	_, err = os.Stat(p("missing"))
	wantErrno(t, err, syscall.ENOENT)

	// O_APPEND.
	f, err = os.OpenFile(p("a"), os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.Write([]byte("tail"))
	must(t, err)
	must(t, f.Close())
	got, _ = os.ReadFile(p("a"))
	if !bytes.Equal(got, append(data, "tail"...)) {
		t.Fatal("append: content differs")
	}

	// setattr: chmod, chown, truncate, utimens.
	must(t, os.Chmod(p("a"), 0o600))
	must(t, os.Chown(p("a"), 1000, 1001))
	must(t, os.Truncate(p("a"), 10))
	must(t, unix.UtimesNano(p("a"), []unix.Timespec{{Sec: 1000}, {Sec: 2000, Nsec: 5}}))
	var s unix.Stat_t
	must(t, unix.Stat(p("a"), &s))
	if s.Mode&0o7777 != 0o600 || s.Uid != 1000 || s.Gid != 1001 || s.Size != 10 || s.Mtim.Sec != 2000 || s.Mtim.Nsec != 5 || s.Atim.Sec != 1000 {
		t.Fatalf("attrs after setattr: %+v", s)
	}
	got, _ = os.ReadFile(p("a"))
	if !bytes.Equal(got, data[:10]) {
		t.Fatal("truncate: content differs")
	}

	// sparse file beyond 4 GiB.
	f, err = os.Create(p("sparse"))
	must(t, err)
	_, err = f.WriteAt([]byte("far"), 5<<30)
	must(t, err)
	must(t, f.Close())
	f, err = os.Open(p("sparse"))
	must(t, err)
	buf := make([]byte, 6)
	_, err = f.ReadAt(buf, 5<<30-3)
	must(t, err)
	f.Close()
	if string(buf) != "\x00\x00\x00far" {
		t.Fatalf("sparse read %q", buf)
	}

	// fallocate: extend, punch.
	f, err = os.OpenFile(p("sparse"), os.O_RDWR, 0)
	must(t, err)
	must(t, unix.Fallocate(int(f.Fd()), 0, 0, 6<<30))
	must(t, unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 5<<30, 3))
	fi, _ := f.Stat()
	f.ReadAt(buf[:3], 5<<30)
	f.Close()
	if fi.Size() != 6<<30 || string(buf[:3]) != "\x00\x00\x00" {
		t.Fatalf("fallocate: size %d, bytes %q", fi.Size(), buf[:3])
	}

	// directories.
	must(t, os.Mkdir(p("d"), 0o755))
	wantErrno(t, os.Mkdir(p("d"), 0o755), syscall.EEXIST)
	must(t, os.WriteFile(p("d/x"), []byte("x"), 0o644))
	wantErrno(t, os.Remove(p("d")), syscall.ENOTEMPTY)
	wantErrno(t, unix.Rmdir(p("a")), syscall.ENOTDIR)
	wantErrno(t, unix.Unlink(p("d")), syscall.EISDIR)
	_, err = os.Stat(p("a/b"))
	wantErrno(t, err, syscall.ENOTDIR)
	ents, err := os.ReadDir(d)
	must(t, err)
	if len(ents) != 3 || ents[0].Name() != "a" || !ents[1].IsDir() {
		t.Fatalf("readdir: %v", ents)
	}

	// rename: onto an existing file, NOREPLACE, into own subtree.
	must(t, os.WriteFile(p("b"), []byte("bee"), 0o644))
	must(t, os.Rename(p("b"), p("d/x")))
	got, _ = os.ReadFile(p("d/x"))
	if string(got) != "bee" {
		t.Fatalf("rename over: %q", got)
	}
	wantErrno(t, unix.Renameat2(unix.AT_FDCWD, p("a"), unix.AT_FDCWD, p("d/x"), unix.RENAME_NOREPLACE), syscall.EEXIST)
	must(t, os.Mkdir(p("d/sub"), 0o755))
	wantErrno(t, os.Rename(p("d"), p("d/sub/d")), syscall.EINVAL)
	wantErrno(t, unix.Rename(p("a"), p("d/sub")), syscall.EISDIR) // os.Rename answers EEXIST itself

	// symlink, readlink, hard links.
	must(t, os.Symlink("d/x", p("sl")))
	tgt, err := os.Readlink(p("sl"))
	must(t, err)
	got, _ = os.ReadFile(p("sl"))
	if tgt != "d/x" || string(got) != "bee" {
		t.Fatalf("symlink: %q %q", tgt, got)
	}
	must(t, os.Link(p("d/x"), p("hl")))
	must(t, unix.Stat(p("hl"), &s))
	if s.Nlink != 2 {
		t.Fatalf("nlink %d", s.Nlink)
	}
	must(t, os.Remove(p("d/x")))
	got, err = os.ReadFile(p("hl"))
	must(t, err)
	if string(got) != "bee" {
		t.Fatalf("hard link after unlink: %q", got)
	}

	// xattrs.
	must(t, unix.Setxattr(p("hl"), "user.k", []byte("v1"), 0))
	wantErrno(t, unix.Setxattr(p("hl"), "user.k", []byte("v2"), unix.XATTR_CREATE), syscall.EEXIST)
	xb := make([]byte, 64)
	n, err := unix.Getxattr(p("hl"), "user.k", xb)
	must(t, err)
	if string(xb[:n]) != "v1" {
		t.Fatalf("getxattr %q", xb[:n])
	}
	n, err = unix.Listxattr(p("hl"), xb)
	must(t, err)
	if string(xb[:n]) != "user.k\x00" {
		t.Fatalf("listxattr %q", xb[:n])
	}
	must(t, unix.Removexattr(p("hl"), "user.k"))
	_, err = unix.Getxattr(p("hl"), "user.k", xb)
	wantErrno(t, err, syscall.ENODATA)

	// statfs reports the cluster's capacity.
	var sf unix.Statfs_t
	must(t, unix.Statfs(d, &sf))
	if sf.Blocks == 0 {
		t.Fatal("statfs: no capacity")
	}

	// permissions: an unprivileged user cannot write a 0644 root file.
	must(t, os.Chmod(d, 0o755))
	must(t, os.WriteFile(p("rootfile"), []byte("r"), 0o644))
	cmd := exec.Command("sh", "-c", "echo x > "+p("rootfile"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(out, []byte("Permission denied")) {
		t.Fatalf("unprivileged write: err %v, output %q", err, out)
	}
	cmd = exec.Command("sh", "-c", "cat "+p("rootfile"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "r" {
		t.Fatalf("unprivileged read: err %v, output %q", err, out)
	}
}
