package fusefs_test

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/catena-io/catena/client"
)

// TestErrnos: the errno of each failing namespace call on the mount, as a
// kernel file system answers it (the cases of pjdfstest that do not need
// another user; tests/fuse runs them as uid 65534 too).
func TestErrnos(t *testing.T) {
	d := mount(t)
	p := func(s string) string { return filepath.Join(d, s) }
	must(t, os.WriteFile(p("file"), []byte("x"), 0o644))
	must(t, os.Mkdir(p("dir"), 0o755))
	must(t, os.Mkdir(p("dir/sub"), 0o755))
	must(t, os.Mkdir(p("full"), 0o755))
	must(t, os.WriteFile(p("full/x"), nil, 0o644))
	must(t, os.Mkdir(p("empty"), 0o755))
	must(t, os.Symlink("file", p("link")))
	must(t, os.Symlink("loop", p("loop")))
	must(t, unix.Mkfifo(p("pipe"), 0o644))
	long := strings.Repeat("n", 256)
	ok255 := strings.Repeat("n", 255)

	cases := []struct {
		name string
		call func() error
		want syscall.Errno
	}{
		// ENAMETOOLONG on every call that takes a name.
		{"create long", func() error { return create(p(long)) }, syscall.ENAMETOOLONG},
		{"open long", func() error { _, err := unix.Open(p(long), unix.O_RDONLY, 0); return err }, syscall.ENAMETOOLONG},
		{"stat long", func() error { var s unix.Stat_t; return unix.Lstat(p(long), &s) }, syscall.ENAMETOOLONG},
		{"mkdir long", func() error { return unix.Mkdir(p(long), 0o755) }, syscall.ENAMETOOLONG},
		{"rmdir long", func() error { return unix.Rmdir(p(long)) }, syscall.ENAMETOOLONG},
		{"unlink long", func() error { return unix.Unlink(p(long)) }, syscall.ENAMETOOLONG},
		{"link long", func() error { return unix.Link(p("file"), p(long)) }, syscall.ENAMETOOLONG},
		{"symlink long", func() error { return unix.Symlink("file", p(long)) }, syscall.ENAMETOOLONG},
		{"rename to long", func() error { return unix.Rename(p("file"), p(long)) }, syscall.ENAMETOOLONG},
		{"rename from long", func() error { return unix.Rename(p(long), p("x")) }, syscall.ENAMETOOLONG},
		{"mknod long", func() error { return unix.Mkfifo(p(long), 0o644) }, syscall.ENAMETOOLONG},
		{"chmod long", func() error { return unix.Chmod(p(long), 0o644) }, syscall.ENAMETOOLONG},
		{"truncate long", func() error { return unix.Truncate(p(long), 0) }, syscall.ENAMETOOLONG},
		// EEXIST.
		{"create excl", func() error { return create(p("file")) }, syscall.EEXIST},
		{"mkdir over file", func() error { return unix.Mkdir(p("file"), 0o755) }, syscall.EEXIST},
		{"mkdir over dir", func() error { return unix.Mkdir(p("dir"), 0o755) }, syscall.EEXIST},
		{"mkdir over symlink", func() error { return unix.Mkdir(p("link"), 0o755) }, syscall.EEXIST},
		{"link over file", func() error { return unix.Link(p("file"), p("dir")) }, syscall.EEXIST},
		{"symlink over file", func() error { return unix.Symlink("x", p("file")) }, syscall.EEXIST},
		{"mkfifo over file", func() error { return unix.Mkfifo(p("file"), 0o644) }, syscall.EEXIST},
		{"mknod over dir", func() error { return unix.Mknod(p("dir"), unix.S_IFCHR|0o644, 0x103) }, syscall.EEXIST},
		{"rename noreplace", func() error {
			return unix.Renameat2(unix.AT_FDCWD, p("file"), unix.AT_FDCWD, p("empty"), unix.RENAME_NOREPLACE)
		}, syscall.EEXIST},
		// ENOTEMPTY.
		{"rmdir non-empty", func() error { return unix.Rmdir(p("full")) }, syscall.ENOTEMPTY},
		{"rename over non-empty", func() error { return unix.Rename(p("empty"), p("full")) }, syscall.ENOTEMPTY},
		// ENOENT.
		{"open missing", func() error { _, err := unix.Open(p("nope"), unix.O_RDONLY, 0); return err }, syscall.ENOENT},
		{"create in missing dir", func() error { return create(p("nope/x")) }, syscall.ENOENT},
		{"mkdir in missing dir", func() error { return unix.Mkdir(p("nope/x"), 0o755) }, syscall.ENOENT},
		{"unlink missing", func() error { return unix.Unlink(p("nope")) }, syscall.ENOENT},
		{"rmdir missing", func() error { return unix.Rmdir(p("nope")) }, syscall.ENOENT},
		{"link from missing", func() error { return unix.Link(p("nope"), p("x")) }, syscall.ENOENT},
		{"rename missing", func() error { return unix.Rename(p("nope"), p("x")) }, syscall.ENOENT},
		{"exchange with missing", func() error {
			return unix.Renameat2(unix.AT_FDCWD, p("file"), unix.AT_FDCWD, p("nope"), unix.RENAME_EXCHANGE)
		}, syscall.ENOENT},
		{"chmod missing", func() error { return unix.Chmod(p("nope"), 0o644) }, syscall.ENOENT},
		{"chown missing", func() error { return unix.Chown(p("nope"), 1, 1) }, syscall.ENOENT},
		{"truncate missing", func() error { return unix.Truncate(p("nope"), 0) }, syscall.ENOENT},
		{"utimes missing", func() error { return unix.UtimesNano(p("nope"), make([]unix.Timespec, 2)) }, syscall.ENOENT},
		{"mkfifo in missing dir", func() error { return unix.Mkfifo(p("nope/x"), 0o644) }, syscall.ENOENT},
		{"symlink in missing dir", func() error { return unix.Symlink("x", p("nope/x")) }, syscall.ENOENT},
		// ENOTDIR.
		{"create under file", func() error { return create(p("file/x")) }, syscall.ENOTDIR},
		{"mkdir under file", func() error { return unix.Mkdir(p("file/x"), 0o755) }, syscall.ENOTDIR},
		{"rmdir file", func() error { return unix.Rmdir(p("file")) }, syscall.ENOTDIR},
		{"rename dir over file", func() error { return unix.Rename(p("empty"), p("file")) }, syscall.ENOTDIR},
		{"unlink under file", func() error { return unix.Unlink(p("file/x")) }, syscall.ENOTDIR},
		{"open O_DIRECTORY file", func() error {
			_, err := unix.Open(p("file"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
			return err
		}, syscall.ENOTDIR},
		{"mkfifo under file", func() error { return unix.Mkfifo(p("file/x"), 0o644) }, syscall.ENOTDIR},
		// EISDIR.
		{"unlink dir", func() error { return unix.Unlink(p("dir")) }, syscall.EISDIR},
		{"open dir for writing", func() error { _, err := unix.Open(p("dir"), unix.O_WRONLY, 0); return err }, syscall.EISDIR},
		{"rename file over dir", func() error { return unix.Rename(p("file"), p("empty")) }, syscall.EISDIR},
		{"truncate dir", func() error { return unix.Truncate(p("dir"), 0) }, syscall.EISDIR},
		// EINVAL.
		{"rename into own subtree", func() error { return unix.Rename(p("dir"), p("dir/sub/x")) }, syscall.EINVAL},
		{"exchange into own subtree", func() error {
			return unix.Renameat2(unix.AT_FDCWD, p("dir"), unix.AT_FDCWD, p("dir/sub"), unix.RENAME_EXCHANGE)
		}, syscall.EINVAL},
		{"exchange and noreplace", func() error {
			return unix.Renameat2(unix.AT_FDCWD, p("file"), unix.AT_FDCWD, p("dir"), unix.RENAME_EXCHANGE|unix.RENAME_NOREPLACE)
		}, syscall.EINVAL},
		{"rmdir dot", func() error { return unix.Rmdir(p("dir") + "/.") }, syscall.EINVAL},
		{"truncate negative", func() error { return unix.Truncate(p("file"), -1) }, syscall.EINVAL},
		{"truncate fifo", func() error { return unix.Truncate(p("pipe"), 0) }, syscall.EINVAL},
		// EINVAL: a control character in a new name.
		{"create with a newline", func() error { return create(p("a\nb")) }, syscall.EINVAL},
		{"mkdir with a tab", func() error { return unix.Mkdir(p("a\tb"), 0o755) }, syscall.EINVAL},
		{"symlink with ESC", func() error { return unix.Symlink("file", p("a\x1bb")) }, syscall.EINVAL},
		{"link with DEL", func() error { return unix.Link(p("file"), p("a\x7fb")) }, syscall.EINVAL},
		{"rename to a newline", func() error { return unix.Rename(p("file"), p("x\n")) }, syscall.EINVAL},
		{"mkfifo with a newline", func() error { return unix.Mkfifo(p("p\n"), 0o644) }, syscall.EINVAL},
		// EFBIG: past the maximum file size (1 PiB).
		{"truncate past 1 PiB", func() error { return unix.Truncate(p("file"), client.MaxFileSize+1) }, syscall.EFBIG},
		{"write past 1 PiB", func() error {
			fd, err := unix.Open(p("file"), unix.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			_, err = unix.Pwrite(fd, []byte("x"), client.MaxFileSize)
			return err
		}, syscall.EFBIG},
		// ELOOP and symlinks.
		{"open symlink O_NOFOLLOW", func() error {
			_, err := unix.Open(p("link"), unix.O_RDONLY|unix.O_NOFOLLOW, 0)
			return err
		}, syscall.ELOOP},
		{"open symlink loop", func() error { _, err := unix.Open(p("loop"), unix.O_RDONLY, 0); return err }, syscall.ELOOP},
		{"create through loop", func() error { return create(p("loop/x")) }, syscall.ELOOP},
		{"symlink target over PATH_MAX", func() error { return unix.Symlink(strings.Repeat("t", 4096), p("x")) }, syscall.ENAMETOOLONG},
		{"path over PATH_MAX", func() error { return create(p(strings.Repeat("a/", 2048))) }, syscall.ENAMETOOLONG},
		{"create over a dangling symlink", func() error {
			if err := os.Symlink("nowhere", p("dangling")); err != nil {
				return err
			}
			defer os.Remove(p("dangling"))
			return create(p("dangling"))
		}, syscall.EEXIST},
		// ENXIO: a fifo without reader opened for writing, non-blocking.
		{"open a fifo without reader", func() error {
			_, err := unix.Open(p("pipe"), unix.O_WRONLY|unix.O_NONBLOCK, 0)
			return err
		}, syscall.ENXIO},
		// EBUSY: the mount's root.
		{"rmdir of the mount root", func() error { return unix.Rmdir(d) }, syscall.EBUSY},
		// EPERM: link of a directory, mknod of a directory.
		{"link dir", func() error { return unix.Link(p("dir"), p("x")) }, syscall.EPERM},
		{"mknod S_IFDIR", func() error { return unix.Mknod(p("x"), unix.S_IFDIR|0o755, 0) }, syscall.EPERM},
	}
	for _, c := range cases {
		if err := c.call(); !errorIs(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	// A 255-byte name is fine, and nothing above created an entry.
	must(t, create(p(ok255)))
	ents, err := os.ReadDir(d)
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "dir,empty,file,full,link,loop,"+ok255+",pipe" {
		t.Fatalf("entries after the failures: %s", got)
	}
	if b, err := os.ReadFile(p("file")); err != nil || string(b) != "x" {
		t.Fatalf("file after the failures: %q, %v", b, err)
	}
}

func create(path string) error {
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, 0o644)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func errorIs(err error, want syscall.Errno) bool {
	e, ok := err.(syscall.Errno)
	return ok && e == want
}

// TestSpecialFiles: fifos, device nodes and sockets are made on the mount,
// keep their type and device number, and work as the kernel's: a fifo
// passes bytes between two opens, a unix socket bound on the mount accepts
// connections.
func TestSpecialFiles(t *testing.T) {
	d := mount(t)
	p := func(s string) string { return filepath.Join(d, s) }
	must(t, unix.Mkfifo(p("fifo"), 0o640))
	must(t, unix.Mknod(p("chr"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(p("blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(8, 257))))
	must(t, unix.Mknod(p("reg"), unix.S_IFREG|0o600, 0))
	for _, c := range []struct {
		name string
		typ  uint32
		rdev uint64
	}{
		{"fifo", unix.S_IFIFO, 0},
		{"chr", unix.S_IFCHR, unix.Mkdev(1, 3)},
		{"blk", unix.S_IFBLK, unix.Mkdev(8, 257)},
		{"reg", unix.S_IFREG, 0},
	} {
		var st unix.Stat_t
		must(t, unix.Lstat(p(c.name), &st))
		if st.Mode&unix.S_IFMT != c.typ || st.Rdev != c.rdev || st.Size != 0 || st.Nlink != 1 {
			t.Errorf("%s: mode %#o rdev %#x size %d nlink %d", c.name, st.Mode, st.Rdev, st.Size, st.Nlink)
		}
	}
	ents, err := os.ReadDir(d)
	must(t, err)
	types := map[string]os.FileMode{}
	for _, e := range ents {
		types[e.Name()] = e.Type()
	}
	if types["fifo"] != os.ModeNamedPipe || types["chr"] != os.ModeDevice|os.ModeCharDevice || types["blk"] != os.ModeDevice {
		t.Fatalf("readdir types: %v", types)
	}

	// The fifo: a writer and a reader meet in the kernel.
	done := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(p("fifo"), os.O_WRONLY, 0)
		if err == nil {
			_, err = w.Write([]byte("through the fifo"))
			w.Close()
		}
		done <- err
	}()
	r, err := os.Open(p("fifo"))
	must(t, err)
	got, err := readAll(r)
	r.Close()
	must(t, err)
	must(t, <-done)
	if string(got) != "through the fifo" {
		t.Fatalf("fifo read %q", got)
	}

	// A unix socket bound on the mount.
	l, err := net.Listen("unix", p("sock"))
	must(t, err)
	defer l.Close()
	var st unix.Stat_t
	must(t, unix.Lstat(p("sock"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Fatalf("socket mode %#o", st.Mode)
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", p("sock"))
	must(t, err)
	got, err = readAll(c)
	c.Close()
	must(t, err)
	if string(got) != "hello" {
		t.Fatalf("socket read %q", got)
	}

	// Hard links, renames and exchanges keep the type and device number.
	must(t, os.Link(p("blk"), p("blk2")))
	must(t, unix.Renameat2(unix.AT_FDCWD, p("chr"), unix.AT_FDCWD, p("fifo"), unix.RENAME_EXCHANGE))
	must(t, unix.Lstat(p("fifo"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Fatalf("after exchange, fifo: mode %#o rdev %#x", st.Mode, st.Rdev)
	}
	must(t, unix.Lstat(p("blk2"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Nlink != 2 {
		t.Fatalf("link of a device: mode %#o nlink %d", st.Mode, st.Nlink)
	}
}

func readAll(r interface{ Read([]byte) (int, error) }) ([]byte, error) {
	var b bytes.Buffer
	buf := make([]byte, 512)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			if err.Error() == "EOF" {
				return b.Bytes(), nil
			}
			return b.Bytes(), err
		}
	}
}

// TestRenameExchange: RENAME_EXCHANGE swaps a file and a directory across
// directories atomically; contents follow the names.
func TestRenameExchange(t *testing.T) {
	d := mount(t)
	p := func(s string) string { return filepath.Join(d, s) }
	must(t, os.Mkdir(p("a"), 0o755))
	must(t, os.Mkdir(p("b"), 0o755))
	must(t, os.WriteFile(p("a/x"), []byte("file x"), 0o644))
	must(t, os.Mkdir(p("b/y"), 0o700))
	must(t, os.WriteFile(p("b/y/inner"), []byte("inner"), 0o644))
	var before unix.Stat_t
	must(t, unix.Stat(p("a/x"), &before))
	must(t, unix.Renameat2(unix.AT_FDCWD, p("a/x"), unix.AT_FDCWD, p("b/y"), unix.RENAME_EXCHANGE))
	got, err := os.ReadFile(p("b/y"))
	must(t, err)
	inner, err := os.ReadFile(p("a/x/inner"))
	must(t, err)
	if string(got) != "file x" || string(inner) != "inner" {
		t.Fatalf("after exchange: b/y %q, a/x/inner %q", got, inner)
	}
	var st unix.Stat_t
	must(t, unix.Stat(p("b/y"), &st))
	if st.Ino != before.Ino || !ctimeAfter(st, before) {
		t.Fatalf("exchanged file: ino %d (was %d), ctime %v (was %v)", st.Ino, before.Ino, st.Ctim, before.Ctim)
	}
	// a gained a subdirectory, b lost one.
	var sa, sb unix.Stat_t
	must(t, unix.Stat(p("a"), &sa))
	must(t, unix.Stat(p("b"), &sb))
	if sa.Nlink != 3 || sb.Nlink != 2 {
		t.Fatalf("nlink a %d, b %d", sa.Nlink, sb.Nlink)
	}
	// NOREPLACE moves to a free name.
	must(t, unix.Renameat2(unix.AT_FDCWD, p("b/y"), unix.AT_FDCWD, p("b/z"), unix.RENAME_NOREPLACE))
	if _, err := os.Stat(p("b/y")); !os.IsNotExist(err) {
		t.Fatalf("b/y after move: %v", err)
	}
}

func ctimeAfter(a, b unix.Stat_t) bool {
	return time.Unix(a.Ctim.Unix()).After(time.Unix(b.Ctim.Unix()))
}

// TestZeroPermissions: mode 0000 is reported as 0000, not as 0644/0755.
func TestZeroPermissions(t *testing.T) {
	d := mount(t)
	p := func(s string) string { return filepath.Join(d, s) }
	fd, err := unix.Open(p("f"), unix.O_CREAT|unix.O_WRONLY, 0)
	must(t, err)
	unix.Close(fd)
	must(t, unix.Mkdir(p("d"), 0))
	must(t, os.WriteFile(p("g"), []byte("g"), 0o644))
	must(t, unix.Chmod(p("g"), 0))
	for _, n := range []string{"f", "d", "g"} {
		var st unix.Stat_t
		must(t, unix.Stat(p(n), &st))
		if st.Mode&0o7777 != 0 {
			t.Errorf("%s: mode %#o, want 0", n, st.Mode&0o7777)
		}
	}
}
