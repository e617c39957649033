package fuse

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/fusefs"
)

// The errno tests of POSIX suites (pjdfstest's cases for create, open,
// link, unlink, rename, mkdir, rmdir, symlink, chmod, chown, truncate,
// utimensat and mknod), on a real mount, as root and as uid 65534.
//
// Each case builds its own objects under its own directory, once for the
// root run and once for the unprivileged run, then runs one system call.
// The unprivileged calls run in a child process: this test binary, copied
// where uid 65534 can execute it, re-run with posixChildEnv set and the
// credentials of 65534:65534. The child gets only paths, never a working
// directory on the mount (docs/fuse.md: the vfork pitfall).

const (
	posixChildEnv = "CATENA_POSIX_CHILD"
	nobody        = 65534
)

// sysOp is one system call on a path, run by the parent or the child.
type sysOp struct {
	Op          string
	Path, Path2 string
	Mode        uint32
	Uid, Gid    int
	Size        int64
	Flags       int
}

// do runs o and returns its errno (0 on success).
func (o sysOp) do() syscall.Errno {
	var err error
	switch o.Op {
	case "open":
		var fd int
		if fd, err = unix.Open(o.Path, o.Flags, o.Mode); err == nil {
			unix.Close(fd)
		}
	case "create":
		var fd int
		if fd, err = unix.Open(o.Path, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY, o.Mode); err == nil {
			unix.Close(fd)
		}
	case "write": // one byte at the end
		var fd int
		if fd, err = unix.Open(o.Path, unix.O_WRONLY|unix.O_APPEND, 0); err == nil {
			_, err = unix.Write(fd, []byte("w"))
			if cerr := unix.Close(fd); err == nil {
				err = cerr
			}
		}
	case "stat":
		var st unix.Stat_t
		err = unix.Lstat(o.Path, &st)
	case "mkdir":
		err = unix.Mkdir(o.Path, o.Mode)
	case "rmdir":
		err = unix.Rmdir(o.Path)
	case "unlink":
		err = unix.Unlink(o.Path)
	case "rename":
		err = unix.Renameat2(unix.AT_FDCWD, o.Path, unix.AT_FDCWD, o.Path2, uint(o.Flags))
	case "link":
		err = unix.Link(o.Path, o.Path2)
	case "symlink":
		err = unix.Symlink(o.Path2, o.Path)
	case "mknod":
		err = unix.Mknod(o.Path, o.Mode, o.Flags)
	case "chmod":
		err = unix.Chmod(o.Path, o.Mode)
	case "chown":
		err = unix.Lchown(o.Path, o.Uid, o.Gid)
	case "truncate":
		err = unix.Truncate(o.Path, o.Size)
	case "utimes-now":
		err = unix.UtimesNanoAt(unix.AT_FDCWD, o.Path, nil, 0)
	case "utimes":
		err = unix.UtimesNanoAt(unix.AT_FDCWD, o.Path, []unix.Timespec{{Sec: 1}, {Sec: 2}}, 0)
	default:
		return syscall.ENOSYS
	}
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		return syscall.EIO
	}
	return e
}

// TestPosixChild is the unprivileged side of TestPosixErrnos: without
// posixChildEnv it does nothing. It reads ops as JSON on stdin and writes
// their errnos as JSON on stdout.
func TestPosixChild(t *testing.T) {
	if os.Getenv(posixChildEnv) == "" {
		t.Skip("the child of TestPosixErrnos")
	}
	var ops []sysOp
	if err := json.NewDecoder(os.Stdin).Decode(&ops); err != nil {
		t.Fatal(err)
	}
	out := make([]syscall.Errno, len(ops))
	for i, o := range ops {
		out[i] = o.do()
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		t.Fatal(err)
	}
}

// runAsNobody runs ops as uid and gid 65534 in a child process.
func runAsNobody(t *testing.T, ops []sysOp) []syscall.Errno {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// go test builds the binary in a directory only root can enter.
	dir := publicDir(t)
	bin := filepath.Join(dir, "posix-child")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestPosixChild$", "-test.count=1")
	cmd.Dir = dir // never a directory on the mount
	cmd.Env = append(os.Environ(), posixChildEnv+"=1")
	cmd.Stdin = strings.NewReader(string(in))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// The JSON line comes before go test's PASS.
	line, _, _ := strings.Cut(string(out), "\n")
	var res []syscall.Errno
	if err := json.Unmarshal([]byte(line), &res); err != nil || len(res) != len(ops) {
		t.Fatalf("child output %q: %v", out, err)
	}
	return res
}

// publicDir is a fresh directory that every user may enter.
func publicDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// posixMount mounts a fresh cluster for every user (allow_other) on a
// directory every user may enter.
func posixMount(t *testing.T) string {
	t.Helper()
	needs(t)
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	dir := publicDir(t)
	srv, err := fusefs.Mount(dir, fusefs.Config{Client: clustertest.Client(t, c), AllowOther: true, ChunkSize: 1 << 20,
		Logger: clustertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			out, lerr := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
			t.Errorf("unmount: %v (lazy unmount: %v %s)", err, lerr, out)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tree builds a case's objects as root under base.
type tree struct {
	t    *testing.T
	base string
}

func (b tree) p(name string) string { return filepath.Join(b.base, name) }

func (b tree) check(err error) {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
}

// dir makes directory name with mode, owned by uid:gid.
func (b tree) dir(name string, mode uint32, uid, gid int) {
	b.t.Helper()
	b.check(unix.Mkdir(b.p(name), 0o700))
	b.check(unix.Chown(b.p(name), uid, gid))
	b.check(unix.Chmod(b.p(name), mode))
}

// file makes file name with one byte, mode, owned by uid:gid.
func (b tree) file(name string, mode uint32, uid, gid int) {
	b.t.Helper()
	b.check(os.WriteFile(b.p(name), []byte("x"), 0o600))
	b.check(unix.Chown(b.p(name), uid, gid))
	b.check(unix.Chmod(b.p(name), mode))
}

func (b tree) stat(name string) unix.Stat_t {
	b.t.Helper()
	var st unix.Stat_t
	b.check(unix.Lstat(b.p(name), &st))
	return st
}

// posixCase is one system call with the errno root and uid 65534 get.
type posixCase struct {
	name       string
	setup      func(b tree)
	op         func(b tree) sysOp
	root, user syscall.Errno
	check      func(b tree, asRoot bool) // after the call; may be nil
}

func posixCases() []posixCase {
	e := syscall.Errno(0)
	const (
		eacces = syscall.EACCES
		eperm  = syscall.EPERM
	)
	// Common shapes: "d" a root directory with a root file "d/f".
	rootDir := func(mode uint32) func(b tree) {
		return func(b tree) {
			b.dir("d", mode, 0, 0)
			b.file("d/f", 0o644, 0, 0)
			b.dir("d/sub", 0o755, 0, 0)
		}
	}
	mine := func(b tree) { b.file("mine", 0o644, nobody, nobody) }
	op := func(o sysOp) func(b tree) sysOp {
		return func(b tree) sysOp {
			x := o
			x.Path = b.p(o.Path)
			if o.Op != "symlink" && o.Path2 != "" {
				x.Path2 = b.p(o.Path2)
			}
			return x
		}
	}
	mode := func(name string, want uint32) func(b tree, asRoot bool) {
		return func(b tree, asRoot bool) {
			b.t.Helper()
			if got := b.stat(name).Mode & 0o7777; got != want {
				b.t.Errorf("mode of %s %#o, want %#o", name, got, want)
			}
		}
	}
	return []posixCase{
		// EACCES: search permission on a path component.
		{"stat through a dir without x", rootDir(0o700), op(sysOp{Op: "stat", Path: "d/f"}), e, eacces, nil},
		{"open through a dir without x", rootDir(0o600), op(sysOp{Op: "open", Path: "d/f"}), e, eacces, nil},
		{"create through a dir without x", rootDir(0o766), op(sysOp{Op: "create", Path: "d/x", Mode: 0o644}), e, eacces, nil},
		{"chmod through a dir without x", rootDir(0o700), op(sysOp{Op: "chmod", Path: "d/f", Mode: 0o600}), e, eacces, nil},
		{"truncate through a dir without x", rootDir(0o700), op(sysOp{Op: "truncate", Path: "d/f"}), e, eacces, nil},
		// EACCES: write permission on the parent.
		{"create in a read-only dir", rootDir(0o755), op(sysOp{Op: "create", Path: "d/x", Mode: 0o644}), e, eacces, nil},
		{"mkdir in a read-only dir", rootDir(0o755), op(sysOp{Op: "mkdir", Path: "d/x", Mode: 0o755}), e, eacces, nil},
		{"unlink in a read-only dir", rootDir(0o755), op(sysOp{Op: "unlink", Path: "d/f"}), e, eacces, nil},
		{"rmdir in a read-only dir", rootDir(0o755), op(sysOp{Op: "rmdir", Path: "d/sub"}), e, eacces, nil},
		{"rename in a read-only dir", rootDir(0o755), op(sysOp{Op: "rename", Path: "d/f", Path2: "d/g"}), e, eacces, nil},
		{"rename into a read-only dir", func(b tree) { rootDir(0o755)(b); mine(b) },
			op(sysOp{Op: "rename", Path: "mine", Path2: "d/g"}), e, eacces, nil},
		{"link into a read-only dir", func(b tree) { rootDir(0o755)(b); mine(b) },
			op(sysOp{Op: "link", Path: "mine", Path2: "d/g"}), e, eacces, nil},
		{"symlink in a read-only dir", rootDir(0o755), op(sysOp{Op: "symlink", Path: "d/s", Path2: "target"}), e, eacces, nil},
		{"mkfifo in a read-only dir", rootDir(0o755), op(sysOp{Op: "mknod", Path: "d/p", Mode: unix.S_IFIFO | 0o644}), e, eacces, nil},
		// EACCES: permission on the file itself.
		{"read a 0600 root file", func(b tree) { b.file("f", 0o600, 0, 0) },
			op(sysOp{Op: "open", Path: "f", Flags: unix.O_RDONLY}), e, eacces, nil},
		{"write a 0644 root file", rootDir(0o755), op(sysOp{Op: "open", Path: "d/f", Flags: unix.O_WRONLY}), e, eacces, nil},
		{"truncate a 0644 root file", rootDir(0o755), op(sysOp{Op: "truncate", Path: "d/f"}), e, eacces, nil},
		{"read a 0000 file", func(b tree) { b.file("z", 0, 0, 0) }, op(sysOp{Op: "open", Path: "z"}), e, eacces, nil},
		{"read an own 0000 file", func(b tree) { b.file("z", 0, nobody, nobody) }, op(sysOp{Op: "open", Path: "z"}), e, eacces, mode("z", 0)},
		{"utimes now on a file not writable", rootDir(0o755), op(sysOp{Op: "utimes-now", Path: "d/f"}), e, eacces, nil},
		// EPERM.
		{"chown of a root file", rootDir(0o755), op(sysOp{Op: "chown", Path: "d/f", Uid: nobody, Gid: -1}), e, eperm, nil},
		{"chown of an own file to another user", mine, op(sysOp{Op: "chown", Path: "mine", Uid: 0, Gid: -1}), e, eperm, nil},
		{"chown of an own file to a foreign group", mine, op(sysOp{Op: "chown", Path: "mine", Uid: -1, Gid: 0}), e, eperm, nil},
		{"chmod of a root file", rootDir(0o777), op(sysOp{Op: "chmod", Path: "d/f", Mode: 0o777}), e, eperm, nil},
		{"utimes of a root file", rootDir(0o755), op(sysOp{Op: "utimes", Path: "d/f"}), e, eperm, nil},
		{"unlink in a sticky dir", func(b tree) { b.dir("t", 0o1777, 0, 0); b.file("t/f", 0o666, 0, 0) },
			op(sysOp{Op: "unlink", Path: "t/f"}), e, eperm, nil},
		{"rename out of a sticky dir", func(b tree) { b.dir("t", 0o1777, 0, 0); b.file("t/f", 0o666, 0, 0) },
			op(sysOp{Op: "rename", Path: "t/f", Path2: "t/g"}), e, eperm, nil},
		{"rmdir in a sticky dir", func(b tree) { b.dir("t", 0o1777, 0, 0); b.dir("t/s", 0o777, 0, 0) },
			op(sysOp{Op: "rmdir", Path: "t/s"}), e, eperm, nil},
		{"hard link to a foreign 0600 file", func(b tree) { b.dir("w", 0o777, 0, 0); b.file("w/f", 0o600, 0, 0) },
			op(sysOp{Op: "link", Path: "w/f", Path2: "w/g"}), e, eperm, nil},
		{"mknod of a char device", func(b tree) { b.dir("w", 0o777, 0, 0) },
			op(sysOp{Op: "mknod", Path: "w/c", Mode: unix.S_IFCHR | 0o644, Flags: 0x103}), e, eperm, nil},
		{"rename over a foreign file in a sticky dir", func(b tree) {
			b.dir("t", 0o1777, 0, 0)
			b.file("t/f", 0o666, 0, 0)
			b.file("t/mine", 0o644, nobody, nobody)
		}, op(sysOp{Op: "rename", Path: "t/mine", Path2: "t/f"}), e, eperm, nil},
		// More EACCES: a directory moved to another parent needs write
		// permission on itself (its ".." changes); an existing file opened
		// with O_CREAT still needs write permission; the owner too obeys
		// the mode.
		{"move a foreign directory to another parent", func(b tree) {
			b.dir("w", 0o777, 0, 0)
			b.dir("w/d", 0o755, 0, 0)
			b.dir("w/to", 0o777, 0, 0)
		}, op(sysOp{Op: "rename", Path: "w/d", Path2: "w/to/d"}), e, eacces, nil},
		{"open O_CREAT of a read-only file", rootDir(0o777),
			op(sysOp{Op: "open", Path: "d/f", Flags: unix.O_CREAT | unix.O_WRONLY, Mode: 0o644}), e, eacces, nil},
		{"truncate an own read-only file", func(b tree) { b.file("f", 0o444, nobody, nobody) },
			op(sysOp{Op: "truncate", Path: "f"}), e, eacces, nil},
		{"rmdir in a read-only dir of an own dir", func(b tree) { b.dir("d", 0o755, 0, 0); b.dir("d/mine", 0o755, nobody, nobody) },
			op(sysOp{Op: "rmdir", Path: "d/mine"}), e, eacces, nil},
		{"symlink through a dir without x", rootDir(0o766), op(sysOp{Op: "symlink", Path: "d/s", Path2: "t"}), e, eacces, nil},
		{"link from a dir without x", func(b tree) { rootDir(0o700)(b); b.dir("w", 0o777, 0, 0) },
			op(sysOp{Op: "link", Path: "d/f", Path2: "w/l"}), e, eacces, nil},
		{"exchange in a read-only dir", rootDir(0o755),
			op(sysOp{Op: "rename", Path: "d/f", Path2: "d/sub", Flags: unix.RENAME_EXCHANGE}), e, eacces, nil},
		// Allowed: utimensat to now on a foreign file open to writing,
		// unlink of a foreign file in a writable non-sticky directory.
		{"utimes now on a foreign writable file", func(b tree) { b.file("f", 0o666, 0, 0) },
			op(sysOp{Op: "utimes-now", Path: "f"}), e, e, nil},
		{"unlink of a foreign file in a writable dir", func(b tree) { b.dir("w", 0o777, 0, 0); b.file("w/f", 0o600, 0, 0) },
			op(sysOp{Op: "unlink", Path: "w/f"}), e, e, nil},
		// ELOOP and ENAMETOOLONG do not depend on the caller.
		{"open a symlink with O_NOFOLLOW", func(b tree) { b.check(os.Symlink("x", b.p("l"))) },
			op(sysOp{Op: "open", Path: "l", Flags: unix.O_RDONLY | unix.O_NOFOLLOW}), syscall.ELOOP, syscall.ELOOP, nil},
		{"create a 256-byte name", func(b tree) { b.dir("w", 0o777, 0, 0) },
			op(sysOp{Op: "create", Path: "w/" + strings.Repeat("n", 256), Mode: 0o644}), syscall.ENAMETOOLONG, syscall.ENAMETOOLONG, nil},
		{"mkfifo a 256-byte name", func(b tree) { b.dir("w", 0o777, 0, 0) },
			op(sysOp{Op: "mknod", Path: "w/" + strings.Repeat("n", 256), Mode: unix.S_IFIFO | 0o644}), syscall.ENAMETOOLONG, syscall.ENAMETOOLONG, nil},
		// Allowed to the owner in a sticky directory, and to anyone in a
		// writable one; the new file belongs to the caller.
		{"unlink of an own file in a sticky dir", func(b tree) { b.dir("t", 0o1777, 0, 0); b.file("t/f", 0o644, nobody, nobody) },
			op(sysOp{Op: "unlink", Path: "t/f"}), e, e, nil},
		{"create in a writable dir", func(b tree) { b.dir("w", 0o777, 0, 0) },
			op(sysOp{Op: "create", Path: "w/f", Mode: 0o640}), e, e, func(b tree, asRoot bool) {
				st := b.stat("w/f")
				want := uint32(nobody)
				if asRoot {
					want = 0
				}
				if st.Uid != want || st.Gid != want || st.Mode&0o7777 != 0o640 {
					b.t.Errorf("new file uid %d gid %d mode %#o", st.Uid, st.Gid, st.Mode&0o7777)
				}
			}},
		{"mkfifo in a writable dir", func(b tree) { b.dir("w", 0o777, 0, 0) },
			op(sysOp{Op: "mknod", Path: "w/p", Mode: unix.S_IFIFO | 0o600}), e, e, func(b tree, asRoot bool) {
				if st := b.stat("w/p"); st.Mode != unix.S_IFIFO|0o600 {
					b.t.Errorf("fifo mode %#o", st.Mode)
				}
			}},
		// setuid and setgid bits: a write or a chown by the owner clears
		// them (root keeps them on write, loses them on chown, as Linux).
		{"write clears setuid and setgid", func(b tree) { b.file("s", 0o6777, nobody, nobody) },
			op(sysOp{Op: "write", Path: "s"}), e, e, func(b tree, asRoot bool) {
				want := uint32(0o777)
				if asRoot {
					want = 0o6777
				}
				mode("s", want)(b, asRoot)
			}},
		{"truncate clears setuid", func(b tree) { b.file("s", 0o4777, nobody, nobody) },
			op(sysOp{Op: "truncate", Path: "s"}), e, e, func(b tree, asRoot bool) {
				want := uint32(0o777)
				if asRoot {
					want = 0o4777
				}
				mode("s", want)(b, asRoot)
			}},
		{"chown clears setuid and setgid", func(b tree) { b.file("s", 0o6755, nobody, nobody) },
			op(sysOp{Op: "chown", Path: "s", Uid: -1, Gid: nobody}), e, e, mode("s", 0o755)},
		{"chmod g+s of a file of a foreign group", func(b tree) { b.file("s", 0o644, nobody, 0) },
			op(sysOp{Op: "chmod", Path: "s", Mode: 0o2755}), e, e, func(b tree, asRoot bool) {
				want := uint32(0o755)
				if asRoot {
					want = 0o2755
				}
				mode("s", want)(b, asRoot)
			}},
		// A setgid directory hands its group to new entries.
		{"create in a setgid dir", func(b tree) { b.dir("g", 0o2777, 0, 50) },
			op(sysOp{Op: "mkdir", Path: "g/sub", Mode: 0o755}), e, e, func(b tree, asRoot bool) {
				if st := b.stat("g/sub"); st.Gid != 50 || st.Mode&0o7777 != 0o2755 {
					b.t.Errorf("dir in setgid dir: gid %d mode %#o", st.Gid, st.Mode&0o7777)
				}
			}},
	}
}

// TestPosixErrnos runs every case as root in this process and as uid
// 65534 in a child.
func TestPosixErrnos(t *testing.T) {
	d := posixMount(t)
	cases := posixCases()
	trees := func(who string) []tree {
		var out []tree
		for i, c := range cases {
			b := tree{t: t, base: filepath.Join(d, who, strings.ReplaceAll(c.name, " ", "-"))}
			if i == 0 {
				if err := os.Mkdir(filepath.Join(d, who), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Mkdir(b.base, 0o755); err != nil {
				t.Fatal(err)
			}
			c.setup(b)
			out = append(out, b)
		}
		return out
	}
	rootTrees, userTrees := trees("root"), trees("user")
	ops := make([]sysOp, len(cases))
	for i, c := range cases {
		ops[i] = c.op(userTrees[i])
	}
	userRes := runAsNobody(t, ops)
	for i, c := range cases {
		if got := c.op(rootTrees[i]).do(); got != c.root {
			t.Errorf("%s, as root: got %v (%d), want %v (%d)", c.name, got, got, c.root, c.root)
		} else if c.check != nil {
			c.check(rootTrees[i], true)
		}
		if got := userRes[i]; got != c.user {
			t.Errorf("%s, as %d: got %v (%d), want %v (%d)", c.name, nobody, got, got, c.user, c.user)
		} else if c.check != nil {
			c.check(userTrees[i], false)
		}
	}
}

// TestPosixCtime: on the mount, every change of an inode moves its ctime
// on (chmod, chown, link, unlink of another name, rename, truncate, write,
// O_TRUNC, xattrs, utimensat, and entries made or removed in a directory);
// reads, lookups and failed calls leave it.
func TestPosixCtime(t *testing.T) {
	d := posixMount(t)
	p := func(s string) string { return filepath.Join(d, s) }
	if err := os.WriteFile(p("f"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctime := func(name string) unix.Timespec {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(p(name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ctim
	}
	after := func(a, b unix.Timespec) bool { return a.Nano() > b.Nano() }
	write := func(name string, flags int) error {
		fd, err := unix.Open(p(name), unix.O_WRONLY|flags, 0)
		if err != nil {
			return err
		}
		_, err = unix.Write(fd, []byte("more"))
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		return err
	}
	for _, c := range []struct {
		name    string
		of      string // whose ctime, after the call
		was     string // its name before the call, if another
		call    func() error
		changes bool
	}{
		{"chmod", "f", "", func() error { return unix.Chmod(p("f"), 0o600) }, true},
		{"chown", "f", "", func() error { return unix.Chown(p("f"), 7, 8) }, true},
		{"link", "f", "", func() error { return unix.Link(p("f"), p("dir/f2")) }, true},
		{"unlink of another name", "f", "", func() error { return unix.Unlink(p("dir/f2")) }, true},
		{"rename", "g", "f", func() error { return unix.Rename(p("f"), p("g")) }, true},
		{"rename back", "f", "g", func() error { return unix.Rename(p("g"), p("f")) }, true},
		{"truncate", "f", "", func() error { return unix.Truncate(p("f"), 2) }, true},
		{"write and close", "f", "", func() error { return write("f", unix.O_APPEND) }, true},
		{"open O_TRUNC", "f", "", func() error {
			fd, err := unix.Open(p("f"), unix.O_WRONLY|unix.O_TRUNC, 0)
			if err != nil {
				return err
			}
			return unix.Close(fd)
		}, true},
		{"setxattr", "f", "", func() error { return unix.Setxattr(p("f"), "user.k", []byte("v"), 0) }, true},
		{"removexattr", "f", "", func() error { return unix.Removexattr(p("f"), "user.k") }, true},
		{"utimensat now", "f", "", func() error { return unix.UtimesNanoAt(unix.AT_FDCWD, p("f"), nil, 0) }, true},
		{"utimensat into the future", "f", "", func() error {
			return unix.UtimesNano(p("f"), []unix.Timespec{{Sec: 4e9}, {Sec: 4e9}})
		}, true},
		{"chmod after a future mtime", "f", "", func() error { return unix.Chmod(p("f"), 0o644) }, true},
		{"create in a directory", "dir", "", func() error { return os.WriteFile(p("dir/x"), nil, 0o644) }, true},
		{"mkfifo in a directory", "dir", "", func() error { return unix.Mkfifo(p("dir/fifo"), 0o644) }, true},
		{"unlink in a directory", "dir", "", func() error { return unix.Unlink(p("dir/x")) }, true},
		{"chmod of a fifo", "dir/fifo", "", func() error { return unix.Chmod(p("dir/fifo"), 0o600) }, true},
		{"chown -1 -1", "f", "", func() error { return unix.Chown(p("f"), -1, -1) }, false},
		{"read", "f", "", func() error { _, err := os.ReadFile(p("f")); return err }, false},
		{"readdir", "dir", "", func() error { _, err := os.ReadDir(p("dir")); return err }, false},
		{"failed link", "f", "", func() error {
			if err := unix.Link(p("f"), p("dir/fifo")); err != syscall.EEXIST {
				return err
			}
			return nil
		}, false},
		{"failed removexattr", "f", "", func() error {
			if err := unix.Removexattr(p("f"), "user.none"); err != syscall.ENODATA {
				return err
			}
			return nil
		}, false},
	} {
		was := c.was
		if was == "" {
			was = c.of
		}
		before := ctime(was)
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		now := ctime(c.of)
		if c.changes && !after(now, before) {
			t.Errorf("%s: ctime of %s %v, not after %v", c.name, c.of, now, before)
		}
		if !c.changes && now != before {
			t.Errorf("%s: ctime of %s changed from %v to %v", c.name, c.of, before, now)
		}
	}
}
