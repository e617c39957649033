package fuse

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	"github.com/catena-io/catena/internal/fusefs"
)

func needs(t *testing.T, progs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed", p)
		}
	}
}

// mounts starts one cluster and mounts it n times.
func mounts(t *testing.T, n int) []string {
	t.Helper()
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	var dirs []string
	for range n {
		cl := clustertest.Client(t, c)
		dir := t.TempDir()
		srv, err := fusefs.Mount(dir, fusefs.Config{Client: cl, ChunkSize: 4 << 20, Logger: clustertest.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := srv.Unmount(); err != nil {
				t.Errorf("unmount: %v", err)
			}
		})
		dirs = append(dirs, dir)
	}
	return dirs
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t", "HOME="+dir)
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
	run(t, d, "git", "init", "-q", "repo")
	repo := filepath.Join(d, "repo")
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(repo, "f"+string(rune('a'+i))), bytes.Repeat([]byte{byte(i)}, 1000*i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, repo, "git", "add", ".")
	run(t, repo, "git", "commit", "-q", "-m", "first")
	run(t, repo, "git", "fsck", "--full")
	if out := run(t, repo, "git", "log", "--oneline"); !strings.Contains(out, "first") {
		t.Fatalf("git log: %q", out)
	}
}

func TestTarDiff(t *testing.T) {
	needs(t, "tar", "diff")
	// Known issue: tar -x on the mount hangs (under investigation).
	if os.Getenv("CATENA_FUSE_TAR") == "" {
		t.Skip("tar extraction hangs on the mount; set CATENA_FUSE_TAR=1 to run")
	}
	d := mounts(t, 1)[0]
	src, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "src.tar")
	run(t, src, "tar", "-cf", tarball, "--exclude=.git", "--exclude=./catena", "client", "docs")
	orig := t.TempDir()
	run(t, orig, "tar", "-xf", tarball)
	run(t, d, "tar", "-xf", tarball)
	run(t, d, "diff", "-r", orig, d)
}

func TestFio(t *testing.T) {
	needs(t, "fio")
	d := mounts(t, 1)[0]
	run(t, d, "fio", "--name=verify", "--filename="+filepath.Join(d, "fio.dat"), "--size=32m", "--bs=64k",
		"--rw=randwrite", "--ioengine=psync", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1")
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
}
