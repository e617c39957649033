package fuse

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/fusefs"
)

// The fsx exerciser: a seeded random mix of file operations on one file of
// the real mount, through several descriptors, mmap and a second process,
// checked after every operation against an in-memory model of the file.
//
// The operations run in a worker process (TestFSXWorker, see fsxRun) that
// starts a second one for some of them (TestFSXChild); the last quarter
// runs on an orphan (the file unlinked while open).
//
// CATENA_FSX_SEED runs one seed (as printed by a failure), CATENA_FSX_OPS
// sets the operations per seed (default 2000; 1500 with the chunkserver
// kill), CATENA_FSX_SEEDS the number of seeds (default 6, from the clock),
// CATENA_FSX_DEBUG logs every FUSE request.

const (
	fsxMaxLen    = 3 << 20 // the file stays below this
	fsxMaxIO     = 300 << 10
	fsxChunk     = 1 << 20 // so operations cross chunk boundaries
	fsxChildEnv  = "CATENA_FSX_CHILD"
	fsxWorkerEnv = "CATENA_FSX_WORKER"
)

func envInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// fsxMount mounts cl with small buffers, so the write-back buffer, the
// read-ahead and the chunk boundaries all come into play at fsx sizes.
func fsxMount(t *testing.T, cl *client.Client) string {
	t.Helper()
	dir := t.TempDir()
	srv, err := fusefs.Mount(dir, fusefs.Config{
		Client: cl, ChunkSize: fsxChunk, WriteBuffer: 256 << 10, ReadAhead: 512 << 10,
		Logger: clustertest.Logger(), Debug: os.Getenv("CATENA_FSX_DEBUG") != "",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			out, lerr := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
			t.Errorf("unmount: %v (lazy unmount: %v %s)", err, lerr, out)
		}
	})
	return dir
}

func TestFSX(t *testing.T) {
	needs(t)
	ops := envInt(t, "CATENA_FSX_OPS", 2000)
	seeds := []uint64{}
	if s := os.Getenv("CATENA_FSX_SEED"); s != "" {
		seeds = append(seeds, uint64(envInt(t, "CATENA_FSX_SEED", 0)))
	} else {
		n := envInt(t, "CATENA_FSX_SEEDS", 6)
		base := uint64(time.Now().UnixNano())
		for i := range n {
			seeds = append(seeds, base+uint64(i))
		}
	}
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	d := fsxMount(t, cl)
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			fsxRun(t, cl, filepath.Join(d, fmt.Sprintf("fsx-%d", seed)), seed, ops, -1, nil)
		})
	}
}

// TestFSXChunkserverKilled runs the exerciser while a chunkserver dies a
// third of the way through: the mount must ride over it.
func TestFSXChunkserverKilled(t *testing.T) {
	needs(t)
	ops := envInt(t, "CATENA_FSX_OPS", 1500)
	seed := uint64(envInt(t, "CATENA_FSX_SEED", time.Now().UnixNano()))
	c := clustertest.New(t, cluster.Config{
		Chunkservers:      4,
		HeartbeatInterval: 50 * time.Millisecond,
		Lease:             400 * time.Millisecond,
		DriftMargin:       100 * time.Millisecond,
		RepairInterval:    50 * time.Millisecond,
	})
	cl, err := c.NewClientConfig(client.Config{OpTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	d := fsxMount(t, cl)
	fsxRun(t, cl, filepath.Join(d, "fsx"), seed, ops, ops/3, func() {
		if err := c.Kill(0); err != nil {
			t.Fatal(err)
		}
	})
}

// fsxRun runs the exerciser in a child process: the process serving a
// mount must not touch an mmap of it (a page fault on the mount holds the
// thread's P, and the next stop-the-world garbage collection waits for it
// forever while the server goroutines are stopped), nor leave descriptors
// on it to be closed at its own exit. Before operation pauseAt the child
// stops until the parent has run pause. The worker ends on an orphan: its
// inode must be gone from the master once the worker has closed it.
func fsxRun(t *testing.T, cl *client.Client, path string, seed uint64, ops, pauseAt int64, pause func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFSXWorker$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d %d", fsxWorkerEnv, path, seed, ops, pauseAt))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var ino uint64
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, fsxInodeLine); ok {
			ino, _ = strconv.ParseUint(v, 10, 64)
			continue
		}
		if line == fsxPauseLine {
			pause()
			fmt.Fprintln(stdin, "go")
			continue
		}
		out.WriteString(line + "\n")
	}
	err = cmd.Wait()
	out.WriteString(errOut.String())
	if err != nil {
		t.Fatalf("fsx seed %d: %v\n%s", seed, err, out.String())
	}
	if !strings.Contains(out.String(), "--- PASS: TestFSXWorker") {
		t.Fatalf("fsx seed %d: the worker did not pass\n%s", seed, out.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "operations in") {
			t.Log(strings.TrimSpace(l))
		}
	}
	if ops >= 100 {
		if ino == 0 {
			t.Fatalf("fsx seed %d: the worker did not report its inode", seed)
		}
		gone(t, cl, ino)
	}
}

const (
	fsxPauseLine = "FSX-PAUSE"
	fsxInodeLine = "FSX-INODE "
)

// TestFSXWorker is the exerciser's process; it does nothing unless started
// by fsxRun with CATENA_FSX_WORKER set.
func TestFSXWorker(t *testing.T) {
	spec := strings.Fields(os.Getenv(fsxWorkerEnv))
	if len(spec) != 4 {
		t.Skip("only as the exerciser's process")
	}
	seed, err := strconv.ParseUint(spec[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := strconv.Atoi(spec[2])
	pauseAt, _ := strconv.Atoi(spec[3])
	x := newFSX(t, seed, spec[0])
	st, err := x.fds[0].Stat()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%d\n", fsxInodeLine, st.Sys().(*syscall.Stat_t).Ino)
	defer x.close()
	x.run(ops, map[int]func(){pauseAt: func() {
		x.logf("pause (the parent kills a chunkserver)")
		fmt.Println(fsxPauseLine)
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}})
}

// TestFSXChild is the second process of the exerciser: it does nothing
// unless started by it with CATENA_FSX_CHILD set.
func TestFSXChild(t *testing.T) {
	spec := os.Getenv(fsxChildEnv)
	if spec == "" {
		t.Skip("only as the exerciser's child process")
	}
	if err := fsxChild(strings.Fields(spec)); err != nil {
		fmt.Fprintln(os.Stderr, "fsx child:", err)
		os.Exit(3)
	}
}

// fsxChild runs one operation: "write PATH OFF LEN SEED", "trunc PATH SIZE"
// or "read PATH OFF LEN" (prints the sha256 of the bytes read and their
// count), then closes the file, which publishes what it did.
func fsxChild(args []string) error {
	num := func(i int) int64 {
		v, _ := strconv.ParseInt(args[i], 10, 64)
		return v
	}
	f, err := os.OpenFile(args[1], os.O_RDWR, 0)
	if err != nil {
		return err
	}
	switch args[0] {
	case "write":
		seed, err := strconv.ParseUint(args[4], 10, 64)
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(fsxBytes(seed, int(num(3))), num(2)); err != nil {
			return err
		}
	case "trunc":
		if err := f.Truncate(num(2)); err != nil {
			return err
		}
	case "read":
		p := make([]byte, num(3))
		n, err := f.ReadAt(p, num(2))
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		sum := sha256.Sum256(p[:n])
		fmt.Printf("FSX %d %s\n", n, hex.EncodeToString(sum[:]))
	}
	return f.Close()
}

// fsxBytes is the data of a write, derived from a seed so the child can
// make the same bytes.
func fsxBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return p
}

type fsx struct {
	t     *testing.T
	seed  uint64
	r     *rand.Rand
	path  string
	model []byte
	// fds: 0 and 1 O_RDWR, 2 O_RDWR|O_APPEND, 3 O_RDONLY.
	fds  [4]*os.File
	log  []string
	op   int
	data uint64 // seeds of written data
	// childOut is the output of the last child process.
	childOut string
	// unlinked: the file has no name left, only the open descriptors.
	unlinked bool
}

func newFSX(t *testing.T, seed uint64, path string) *fsx {
	x := &fsx{t: t, seed: seed, r: rand.New(rand.NewPCG(seed, 1)), path: path}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	x.open()
	return x
}

func (x *fsx) open() {
	flags := [4]int{os.O_RDWR, os.O_RDWR, os.O_RDWR | os.O_APPEND, os.O_RDONLY}
	for i := range x.fds {
		f, err := os.OpenFile(x.path, flags[i], 0)
		if err != nil {
			x.fail("open fd %d: %v", i, err)
		}
		x.fds[i] = f
	}
}

func (x *fsx) close() {
	for i, f := range x.fds {
		if f != nil {
			if err := f.Close(); err != nil {
				x.fail("close fd %d: %v", i, err)
			}
			x.fds[i] = nil
		}
	}
}

func (x *fsx) logf(format string, args ...any) {
	s := fmt.Sprintf("%5d ", x.op) + fmt.Sprintf(format, args...)
	x.log = append(x.log, s)
	if len(x.log) > 40 {
		x.log = x.log[1:]
	}
}

func (x *fsx) fail(format string, args ...any) {
	x.t.Helper()
	x.t.Fatalf("fsx seed %d (rerun with CATENA_FSX_SEED=%d) op %d: %s\nlast operations:\n%s",
		x.seed, x.seed, x.op, fmt.Sprintf(format, args...), strings.Join(x.log, "\n"))
}

func (x *fsx) check(what string, err error) {
	x.t.Helper()
	if err != nil {
		x.fail("%s: %v", what, err)
	}
}

// run does ops random operations; at[i] runs before operation i.
func (x *fsx) run(ops int, at map[int]func()) {
	x.t.Helper()
	start := time.Now()
	for x.op = 0; x.op < ops; x.op++ {
		if f := at[x.op]; f != nil {
			f()
		}
		if x.op == ops*3/4 && ops >= 100 {
			// The last quarter runs on an orphan: unlinked while open,
			// it must stay fully usable through the descriptors.
			x.logf("unlink the open file")
			x.check("unlink", os.Remove(x.path))
			x.unlinked = true
		}
		x.step()
		x.checkSize()
		if x.op%64 == 63 {
			x.checkAll()
		}
	}
	x.checkAll()
	fmt.Printf("fsx seed %d: %d operations in %v, final size %d", x.seed, ops, time.Since(start).Round(time.Millisecond), len(x.model))
	fmt.Println()
}

// pick returns a range [off, off+n) with off+n <= limit (n may be 0).
func (x *fsx) pick(limit int) (off, n int) {
	if limit <= 0 {
		return 0, 0
	}
	off = x.r.IntN(limit)
	n = x.r.IntN(min(fsxMaxIO, limit-off) + 1)
	if x.r.IntN(4) == 0 { // small and unaligned
		n = min(n, x.r.IntN(100))
	}
	return off, n
}

func (x *fsx) setLen(n int) {
	if n <= len(x.model) {
		x.model = x.model[:n]
		return
	}
	x.model = append(x.model, make([]byte, n-len(x.model))...)
}

func (x *fsx) modelWrite(off int, p []byte) {
	if len(p) == 0 {
		return // a write of nothing does not extend the file
	}
	if off+len(p) > len(x.model) {
		x.setLen(off + len(p))
	}
	copy(x.model[off:], p)
}

func (x *fsx) step() {
	x.t.Helper()
	size := len(x.model)
	switch k := x.r.IntN(100); {
	case k < 22: // pwrite
		fd := x.r.IntN(2)
		off, n := x.pick(min(fsxMaxLen, size+fsxMaxIO))
		x.data++
		p := fsxBytes(x.seed<<20+x.data, n)
		x.logf("pwrite fd%d off %#x len %#x", fd, off, n)
		_, err := x.fds[fd].WriteAt(p, int64(off))
		x.check("pwrite", err)
		x.modelWrite(off, p)
		x.checkRange(off, n)
	case k < 28: // O_APPEND write
		_, n := x.pick(fsxMaxIO)
		if size+n > fsxMaxLen {
			return
		}
		x.data++
		p := fsxBytes(x.seed<<20+x.data, n)
		x.logf("append len %#x at %#x", n, size)
		_, err := x.fds[2].Write(p)
		x.check("append", err)
		x.modelWrite(size, p)
		x.checkRange(size, n)
	case k < 48: // pread
		fd := x.r.IntN(4)
		off, n := x.pick(size + 100)
		x.logf("pread fd%d off %#x len %#x", fd, off, n)
		x.readCheck(x.fds[fd], off, n)
	case k < 56: // ftruncate
		fd := x.r.IntN(2)
		var ns int
		if x.r.IntN(2) == 0 {
			ns = x.r.IntN(size + 1)
		} else {
			ns = size + x.r.IntN(min(fsxMaxLen-size, fsxMaxIO)+1)
		}
		x.logf("ftruncate fd%d %#x (from %#x)", fd, ns, size)
		x.check("ftruncate", x.fds[fd].Truncate(int64(ns)))
		x.setLen(ns)
	case k < 66: // fallocate
		x.fallocate()
	case k < 71: // copy_file_range within the file
		x.copyRange()
	case k < 79: // mmap read or write
		x.mmap()
	case k < 84:
		fd := x.r.IntN(3)
		x.logf("fsync fd%d", fd)
		x.check("fsync", x.fds[fd].Sync())
	case k < 91 && x.unlinked:
		// No name left: only the open descriptors reach the file.
		x.logf("fstat nlink")
		st, err := x.fds[x.r.IntN(4)].Stat()
		x.check("fstat", err)
		if n := st.Sys().(*syscall.Stat_t).Nlink; n != 0 {
			x.fail("nlink %d of the unlinked file", n)
		}
	case k < 86:
		x.logf("reopen")
		x.close()
		x.open()
	case k < 88:
		x.logf("stat")
		if st, err := os.Stat(x.path); err != nil || st.Size() != int64(size) {
			x.fail("stat: size %v, %v; model %d", st.Size(), err, size)
		}
	case k < 91: // the second process
		x.child()
	default: // read the whole file through a fresh descriptor
		x.logf("read whole file")
		x.checkAll()
	}
}

func (x *fsx) fallocate() {
	const (
		keep  = unix.FALLOC_FL_KEEP_SIZE
		punch = unix.FALLOC_FL_PUNCH_HOLE
		zero  = unix.FALLOC_FL_ZERO_RANGE
	)
	size := len(x.model)
	modes := []uint32{0, keep, punch | keep, zero, zero | keep}
	mode := modes[x.r.IntN(len(modes))]
	off, n := x.pick(min(fsxMaxLen, size+fsxMaxIO))
	if n == 0 {
		n = 1
	}
	fd := x.r.IntN(2)
	x.logf("fallocate fd%d mode %#x off %#x len %#x (size %#x)", fd, mode, off, n, size)
	x.check("fallocate", unix.Fallocate(int(x.fds[fd].Fd()), mode, int64(off), int64(n)))
	end := off + n
	if mode&keep == 0 && end > size {
		x.setLen(end)
	}
	if mode&(punch|zero) != 0 {
		clear(x.model[min(off, len(x.model)):min(end, len(x.model))])
	}
	x.checkRange(off, n)
}

func (x *fsx) copyRange() {
	size := len(x.model)
	if size == 0 {
		return
	}
	src, n := x.pick(size)
	// A destination that does not overlap the source.
	var dst int
	if x.r.IntN(2) == 0 && src >= n {
		dst = x.r.IntN(src - n + 1)
	} else {
		room := fsxMaxLen - (src + n) - n // where a copy after the source still fits
		if room < 0 {
			return
		}
		dst = src + n + x.r.IntN(min(room, fsxMaxIO)+1)
	}
	if dst+n > fsxMaxLen {
		return
	}
	in, out := x.r.IntN(4), x.r.IntN(2)
	x.logf("copy_file_range fd%d %#x -> fd%d %#x len %#x", in, src, out, dst, n)
	roff, woff := int64(src), int64(dst)
	done := 0
	for done < n {
		k, err := unix.CopyFileRange(int(x.fds[in].Fd()), &roff, int(x.fds[out].Fd()), &woff, n-done, 0)
		x.check("copy_file_range", err)
		if k == 0 {
			x.fail("copy_file_range copied 0 of %d bytes", n-done)
		}
		done += k
	}
	p := bytes.Clone(x.model[src : src+n])
	x.modelWrite(dst, p)
	x.checkRange(dst, n)
}

func (x *fsx) mmap() {
	size := len(x.model)
	if size == 0 {
		return
	}
	off, n := x.pick(size)
	if n == 0 {
		return
	}
	page := os.Getpagesize()
	moff := off / page * page
	length := off + n - moff
	write := x.r.IntN(2) == 0
	fd, prot := x.fds[3], unix.PROT_READ
	if write {
		fd, prot = x.fds[x.r.IntN(2)], unix.PROT_READ|unix.PROT_WRITE
	}
	m, err := unix.Mmap(int(fd.Fd()), int64(moff), length, prot, unix.MAP_SHARED)
	x.check("mmap", err)
	if write {
		x.data++
		p := fsxBytes(x.seed<<20+x.data, n)
		sync := x.r.IntN(2) == 0
		x.logf("mmap write off %#x len %#x msync %v", off, n, sync)
		copy(m[off-moff:], p)
		if sync {
			x.check("msync", unix.Msync(m, unix.MS_SYNC))
		}
		x.modelWrite(off, p)
	} else {
		x.logf("mmap read off %#x len %#x", off, n)
		if got := m[off-moff:]; !bytes.Equal(got, x.model[off:off+n]) {
			x.diff("mmap read", off, got)
		}
	}
	x.check("munmap", unix.Munmap(m))
	x.checkRange(off, n)
}

func (x *fsx) child() {
	size := len(x.model)
	var args []string
	switch x.r.IntN(3) {
	case 0:
		off, n := x.pick(min(fsxMaxLen, size+fsxMaxIO))
		x.data++
		seed := x.seed<<20 + x.data
		args = []string{"write", x.path, fmt.Sprint(off), fmt.Sprint(n), fmt.Sprint(seed)}
		defer x.modelWrite(off, fsxBytes(seed, n))
	case 1:
		ns := x.r.IntN(min(fsxMaxLen, size+fsxMaxIO) + 1)
		args = []string{"trunc", x.path, fmt.Sprint(ns)}
		defer x.setLen(ns)
	case 2:
		off, n := x.pick(size + 100)
		args = []string{"read", x.path, fmt.Sprint(off), fmt.Sprint(n)}
		defer func() {
			want := x.model[min(off, size):min(off+n, size)]
			sum := sha256.Sum256(want)
			if exp := fmt.Sprintf("FSX %d %s", len(want), hex.EncodeToString(sum[:])); !strings.Contains(x.childOut, exp) {
				x.fail("child read off %#x len %#x: got %q, want %q", off, n, x.childOut, exp)
			}
		}()
	}
	x.logf("child %s", strings.Join(args, " "))
	cmd := exec.Command(os.Args[0], "-test.run=^TestFSXChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fsxChildEnv+"="+strings.Join(args, " "))
	out, err := cmd.CombinedOutput()
	x.childOut = string(out)
	if err != nil {
		x.fail("child %v: %v\n%s", args, err, out)
	}
}

func (x *fsx) checkSize() {
	x.t.Helper()
	want := int64(len(x.model))
	for i, f := range x.fds {
		st, err := f.Stat()
		x.check("fstat", err)
		if st.Size() != want {
			x.fail("fstat fd%d: size %d, model %d", i, st.Size(), want)
		}
	}
	fd := x.fds[x.r.IntN(len(x.fds))]
	cur, err := fd.Seek(0, 1)
	x.check("lseek", err)
	end, err := fd.Seek(0, 2)
	x.check("lseek SEEK_END", err)
	if end != want {
		x.fail("lseek SEEK_END %d, model %d", end, want)
	}
	_, err = fd.Seek(cur, 0)
	x.check("lseek back", err)
}

func (x *fsx) checkRange(off, n int) {
	x.t.Helper()
	x.readCheck(x.fds[x.r.IntN(4)], off, n)
}

func (x *fsx) readCheck(f *os.File, off, n int) {
	x.t.Helper()
	p := make([]byte, n)
	k, err := f.ReadAt(p, int64(off))
	if err != nil && !errors.Is(err, io.EOF) {
		x.fail("pread off %#x len %#x: %v", off, n, err)
	}
	want := x.model[min(off, len(x.model)):min(off+n, len(x.model))]
	if k != len(want) {
		x.fail("pread off %#x len %#x: %d bytes, model %d", off, n, k, len(want))
	}
	if !bytes.Equal(p[:k], want) {
		x.diff("pread", off, p[:k])
	}
}

func (x *fsx) diff(what string, off int, got []byte) {
	x.t.Helper()
	want := x.model[off:]
	for i := range got {
		if i >= len(want) || got[i] != want[i] {
			j := i
			for j < len(got) && j < len(want) && got[j] != want[j] {
				j++
			}
			x.fail("%s at %#x: bytes differ from %#x for %#x bytes (got %x..., model %x...)",
				what, off, off+i, j-i, got[i:min(i+8, len(got))], want[i:min(i+8, len(want))])
		}
	}
}

func (x *fsx) checkAll() {
	x.t.Helper()
	var got []byte
	if x.unlinked {
		got = make([]byte, len(x.model)+1)
		n, err := x.fds[x.r.IntN(4)].ReadAt(got, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			x.fail("read the whole unlinked file: %v", err)
		}
		got = got[:n]
	} else {
		var err error
		got, err = os.ReadFile(x.path)
		x.check("read file", err)
	}
	if len(got) != len(x.model) {
		x.fail("whole file: %d bytes, model %d", len(got), len(x.model))
	}
	if !bytes.Equal(got, x.model) {
		x.diff("whole file", 0, got)
	}
}
