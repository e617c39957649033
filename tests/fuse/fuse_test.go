package fuse

import (
	"bytes"
	"crypto/rand"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/fusefs"
	"github.com/catena-io/catena/internal/testtools"
)

func needs(t *testing.T, progs ...string) {
	t.Helper()
	testtools.RootAndFUSE(t, "tests/fuse")
	// go-fuse mounts through fusermount3.
	testtools.Programs(t, "tests/fuse", append([]string{"fusermount3"}, progs...)...)
}

// mounts starts one cluster and mounts it n times.
func mounts(t *testing.T, n int) []string {
	t.Helper()
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	var dirs []string
	for range n {
		dirs = append(dirs, mount(t, clustertest.Client(t, c)))
	}
	return dirs
}

// mount mounts cl's cluster on a fresh directory until the test ends.
func mount(t *testing.T, cl *client.Client) string {
	t.Helper()
	dir := t.TempDir()
	srv, err := fusefs.Mount(dir, fusefs.Config{Client: cl, ChunkSize: 4 << 20, Logger: clustertest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			// Never leave a mount behind: a stale one hangs later
			// directory walks. Detach it lazily and still fail.
			out, lerr := exec.Command("fusermount3", "-u", "-z", dir).CombinedOutput()
			t.Errorf("unmount: %v (lazy unmount: %v %s)", err, lerr, out)
		}
	})
	return dir
}

// run runs a program with the test's working directory; paths on the mount
// go in its arguments (tar -C, git -C). Never give a child a working
// directory (or binary) on a mount that this process serves: Go forks with
// vfork and the forking thread holds its P until exec, so a child blocked
// in chdir on the mount before exec deadlocks the server at the next
// garbage collection (it stops the world and waits for that P forever).
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@t", "HOME="+t.TempDir(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestSQLite(t *testing.T) {
	needs(t, "sqlite3")
	d := mounts(t, 1)[0]
	var sql strings.Builder
	sql.WriteString("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n")
	for i := range 100 {
		sql.WriteString("BEGIN;\n")
		for j := range 100 {
			sql.WriteString("INSERT INTO t(v) VALUES('row " + string(rune('a'+i%26)) + string(rune('a'+j%26)) + "');\n")
		}
		sql.WriteString("COMMIT;\n")
	}
	sql.WriteString("SELECT count(*) FROM t;\nPRAGMA integrity_check;\n")
	cmd := exec.Command("sqlite3", filepath.Join(d, "db.sqlite"))
	cmd.Stdin = strings.NewReader(sql.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "10000\nok" {
		t.Fatalf("sqlite3 output %q", got)
	}
}

func TestGit(t *testing.T) {
	needs(t, "git")
	d := mounts(t, 1)[0]
	repo := filepath.Join(d, "repo")
	run(t, "git", "init", "-q", repo)
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(repo, "f"+string(rune('a'+i))), bytes.Repeat([]byte{byte(i)}, 1000*i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "git", "-C", repo, "add", ".")
	run(t, "git", "-C", repo, "commit", "-q", "-m", "first")
	run(t, "git", "-C", repo, "fsck", "--full")
	if out := run(t, "git", "-C", repo, "log", "--oneline"); !strings.Contains(out, "first") {
		t.Fatalf("git log: %q", out)
	}
}

// TestTarDiff extracts this repository's source onto the mount: the tree
// must equal a local extraction (diff -r) and tar's own comparison of
// contents, modes, owners and mtimes (tar -d) must find no difference.
func TestTarDiff(t *testing.T) {
	needs(t, "tar", "diff")
	d := mounts(t, 1)[0]
	src, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "src.tar")
	run(t, "tar", "-C", src, "-cf", tarball, "--exclude=.git", "--exclude=./catena", "--exclude=*-data",
		"api", "client", "cmd", "docs", "internal", "tests")
	orig := t.TempDir()
	run(t, "tar", "-C", orig, "-xf", tarball)
	dst := filepath.Join(d, "src")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "tar", "-C", dst, "-xf", tarball)
	run(t, "diff", "-r", "--no-dereference", orig, dst)
	run(t, "tar", "-C", dst, "-df", tarball)
	// Extracting again over the existing tree replaces every file.
	run(t, "tar", "-C", dst, "-xf", tarball)
	run(t, "diff", "-r", "--no-dereference", orig, dst)
}

func TestFio(t *testing.T) {
	needs(t, "fio")
	d := mounts(t, 1)[0]
	run(t, "fio", "--name=verify", "--filename="+filepath.Join(d, "fio.dat"), "--size=32m", "--bs=64k",
		"--rw=randwrite", "--ioengine=psync", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--verify_state_save=0")
}

func TestTwoMounts(t *testing.T) {
	needs(t)
	ds := mounts(t, 2)
	data := make([]byte, 5<<20+7)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(ds[0], "shared"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(ds[1], "shared"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("second mount read %d bytes, differ from %d written", len(got), len(data))
	}
	// Overwrite and shrink on the second; the first sees it after open.
	if err := os.WriteFile(filepath.Join(ds[1], "shared"), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = os.ReadFile(filepath.Join(ds[0], "shared"))
	if err != nil || string(got) != "short" {
		t.Fatalf("first mount after overwrite: %q, %v", got, err)
	}

	// Rounds of writes and truncates, alternating between the mounts,
	// while each mount also holds the file open (so its open file state
	// lives on between the rounds): after the writer's close, an open on
	// the other mount reads exactly the last version, never a mix.
	for _, d := range ds {
		h, err := os.Open(filepath.Join(d, "shared"))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
	}
	prev := []byte("short")
	for i := range 24 {
		w, r := filepath.Join(ds[i%2], "shared"), filepath.Join(ds[(i+1)%2], "shared")
		next := make([]byte, mrand.IntN(3<<20))
		rand.Read(next)
		f, err := os.OpenFile(w, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 0: // shrink or grow first, then write
			err = f.Truncate(int64(len(next)))
			if err == nil {
				_, err = f.WriteAt(next, 0)
			}
		case 1: // write, then cut what is left of the previous version
			_, err = f.WriteAt(next, 0)
			if err == nil {
				err = f.Truncate(int64(len(next)))
			}
		case 2: // a truncate to zero and appends
			err = f.Truncate(0)
			for off := 0; err == nil && off < len(next); off += 100 << 10 {
				_, err = f.Write(next[off:min(off+100<<10, len(next))])
			}
		}
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if err := f.Close(); err != nil {
			t.Fatalf("round %d: close: %v", i, err)
		}
		got, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, next) {
			what := "neither version"
			if bytes.Equal(got, prev) {
				what = "the previous version"
			}
			t.Fatalf("round %d: the other mount read %d bytes, %s; want the %d just written", i, len(got), what, len(next))
		}
		prev = next
	}
}
