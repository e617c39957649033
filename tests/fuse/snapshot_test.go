package fuse

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// TestSnapshotGitOnMount: a snapshot of a git repository on a real mount,
// taken through the client while the repository lives on, is a valid
// repository frozen at that point (git fsck, log, show and status run in
// DIR/.snapshot/s1 through the mount) while the live one goes on with
// in-place rewrites, new files, a deletion and a repack; every change
// under the snapshot fails with EROFS; .snapshot is hidden from readdir
// but found by lookup; and a removed snapshot disappears from the mount
// while the live repository stays whole.
func TestSnapshotGitOnMount(t *testing.T) {
	needs(t, "git")
	c := clustertest.New(t, cluster.Config{Chunkservers: 3})
	cl := clustertest.Client(t, c)
	d := mount(t, cl)
	ctx := t.Context()
	repo := filepath.Join(d, "repo")
	snapDir := filepath.Join(repo, client.SnapshotDir)
	snap := filepath.Join(snapDir, "s1")
	git := func(dir string, args ...string) string {
		t.Helper()
		return run(t, "git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// want is the live working tree (paths relative to repo, no .git).
	want := map[string][]byte{}
	put := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(repo, name)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, 0o644))
		want[name] = bytes.Clone(data)
	}
	// patch writes data at off in place: the same inode, no truncate, so
	// the chunks the snapshot shares with the live file are forked.
	patch := func(name string, off int, data []byte) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(repo, name), os.O_WRONLY, 0)
		must(err)
		_, err = f.WriteAt(data, int64(off))
		must(err)
		must(f.Close())
		cur := bytes.Clone(want[name]) // never in place: atSnap shares the old one
		if end := off + len(data); end > len(cur) {
			cur = append(cur, make([]byte, end-len(cur))...)
		}
		copy(cur[off:], data)
		want[name] = cur
	}
	commit := func(msg string) {
		t.Helper()
		git(repo, "add", "-A")
		git(repo, "commit", "-q", "-m", msg)
	}
	logCount := func(dir string) int {
		t.Helper()
		return strings.Count(git(dir, "log", "--oneline"), "\n")
	}
	// checkTree compares the working tree at root with files: the same
	// names (outside .git) and contents.
	checkTree := func(root string, files map[string][]byte) {
		t.Helper()
		got := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == ".git" {
				return filepath.SkipDir
			}
			if !e.IsDir() {
				rel, err := filepath.Rel(root, p)
				if err != nil {
					return err
				}
				if got[rel], err = os.ReadFile(p); err != nil {
					return err
				}
			}
			return nil
		})
		must(err)
		if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(files)); !slices.Equal(g, w) {
			t.Fatalf("%s holds %q, want %q", root, g, w)
		}
		for name, w := range files {
			if !bytes.Equal(got[name], w) {
				t.Fatalf("%s/%s: %d bytes, differ from the %d expected", root, name, len(got[name]), len(w))
			}
		}
	}

	// 1. A repository with three commits; big spans two 4 MiB chunks.
	must(os.Mkdir(repo, 0o755))
	git(repo, "init", "-q")
	big := make([]byte, 5<<20+123)
	rand.Read(big)
	put("README", []byte("catena snapshot test\n"))
	put("src/main.c", []byte("int main(void) { return 0; }\n"))
	put("notes.txt", []byte("to be deleted after the snapshot\n"))
	commit("first")
	put("big.bin", big)
	put("README", []byte("catena snapshot test, second version\n"))
	commit("second")
	put("data/a", bytes.Repeat([]byte("a"), 10000))
	put("src/main.c", []byte("#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n"))
	commit("third")
	const snapCommits = 3
	if n := logCount(repo); n != snapCommits {
		t.Fatalf("live log before the snapshot: %d commits, want %d", n, snapCommits)
	}
	snapHead := git(repo, "rev-parse", "HEAD")
	atSnap := maps.Clone(want)
	// An empty directory of the repository, for the rmdir below.
	if ents, err := os.ReadDir(filepath.Join(repo, ".git/refs/tags")); err != nil || len(ents) != 0 {
		t.Fatalf(".git/refs/tags: %v, %v; want an empty directory", ents, err)
	}

	// 2. The snapshot.
	fi, err := cl.Snapshot(ctx, "/repo", "s1")
	must(err)
	if fi.Path != "/repo/"+client.SnapshotDir+"/s1" || !fi.ReadOnly || !fi.IsDir {
		t.Fatalf("snapshot: %+v", fi)
	}

	// 3. The live repository goes on: in-place rewrites (chunk 0 and
	// chunk 1 of big.bin, the start of README), a new file, a deletion,
	// a truncating rewrite, then a repack (git gc), which deletes the live
	// loose objects the snapshot still holds.
	patch("big.bin", 100, []byte("live write in chunk 0"))
	patch("big.bin", 4<<20+10, []byte("live write in chunk 1"))
	patch("README", 0, []byte("CATENA"))
	commit("fourth")
	put("added.txt", []byte("added after the snapshot\n"))
	must(os.Remove(filepath.Join(repo, "notes.txt")))
	delete(want, "notes.txt")
	commit("fifth")
	put("src/main.c", []byte("int main(void) { return 1; }\n"))
	commit("sixth")
	git(repo, "gc", "-q")

	// 4. Both repositories are whole; the snapshot is as it was.
	checkLive := func() {
		t.Helper()
		git(repo, "fsck", "--full")
		if n := logCount(repo); n != snapCommits+3 {
			t.Fatalf("live log: %d commits, want %d", n, snapCommits+3)
		}
		if out := git(repo, "status", "--porcelain"); out != "" {
			t.Fatalf("live git status:\n%s", out)
		}
		checkTree(repo, want)
	}
	checkSnap := func() {
		t.Helper()
		git(snap, "fsck", "--full")
		if n := logCount(snap); n != snapCommits {
			t.Fatalf("snapshot log: %d commits, want %d", n, snapCommits)
		}
		if h := git(snap, "rev-parse", "HEAD"); h != snapHead {
			t.Fatalf("snapshot HEAD %q, want %q", h, snapHead)
		}
		checkTree(snap, atSnap)
		for name, w := range atSnap {
			if got := git(snap, "show", "HEAD:"+name); got != string(w) {
				t.Fatalf("git show HEAD:%s in the snapshot: %d bytes, differ from the %d at snapshot time", name, len(got), len(w))
			}
		}
		// The index's stat data names the live inodes: git status
		// rehashes every file (and cannot refresh the read-only index).
		if out := git(snap, "status", "--porcelain"); out != "" {
			t.Fatalf("snapshot git status:\n%s", out)
		}
	}
	checkLive()
	checkSnap()

	// 5. Every change under the snapshot fails with EROFS.
	sp := func(name string) string { return filepath.Join(snap, name) }
	openWrite := func(name string, flags int) error {
		f, err := os.OpenFile(sp(name), flags, 0)
		if err != nil {
			return err
		}
		_, werr := f.Write([]byte("x"))
		cerr := f.Close()
		return fmt.Errorf("open succeeded (write: %v, close: %v)", werr, cerr)
	}
	for _, tc := range []struct {
		what string
		op   func() error
	}{
		{"create", func() error {
			f, err := os.OpenFile(sp("new"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"open O_WRONLY", func() error { return openWrite("README", os.O_WRONLY) }},
		{"open O_RDWR", func() error { return openWrite("big.bin", os.O_RDWR) }},
		{"open O_WRONLY|O_TRUNC", func() error { return openWrite("src/main.c", os.O_WRONLY|os.O_TRUNC) }},
		{"open O_WRONLY|O_APPEND", func() error { return openWrite("data/a", os.O_WRONLY|os.O_APPEND) }},
		{"truncate", func() error { return os.Truncate(sp("README"), 1) }},
		{"mkdir", func() error { return os.Mkdir(sp("newdir"), 0o755) }},
		{"mkdir in .snapshot", func() error { return os.Mkdir(filepath.Join(snapDir, "s2"), 0o755) }},
		{"rm", func() error { return os.Remove(sp("notes.txt")) }},
		{"rmdir", func() error { return unix.Rmdir(sp(".git/refs/tags")) }},
		{"rename within", func() error { return os.Rename(sp("README"), sp("README2")) }},
		{"rename over", func() error { return os.Rename(sp("README"), sp("notes.txt")) }},
		{"rename out", func() error { return os.Rename(sp("README"), filepath.Join(repo, "stolen")) }},
		{"rename in", func() error { return os.Rename(filepath.Join(repo, "added.txt"), sp("added.txt")) }},
		{"rename the snapshot", func() error { return os.Rename(snap, filepath.Join(snapDir, "s2")) }},
		{"chmod", func() error { return os.Chmod(sp("README"), 0o600) }},
		{"chmod the snapshot", func() error { return os.Chmod(snap, 0o700) }},
		{"chown", func() error { return os.Lchown(sp("README"), 1, 1) }},
		{"utimes", func() error { return os.Chtimes(sp("README"), time.Unix(1, 0), time.Unix(2, 0)) }},
		{"symlink", func() error { return os.Symlink("README", sp("link")) }},
		{"hard link", func() error { return os.Link(sp("README"), sp("README.link")) }},
		{"setxattr", func() error { return unix.Setxattr(sp("README"), "user.x", []byte("1"), 0) }},
	} {
		if err := tc.op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s in the snapshot: %v, want EROFS", tc.what, err)
		}
	}
	// Nothing changed, on either side (even where a write got through).
	checkSnap()
	checkLive()

	// 6. .snapshot is found by lookup, never listed.
	ents, err := os.ReadDir(repo)
	must(err)
	for _, e := range ents {
		if e.Name() == client.SnapshotDir {
			t.Fatalf("%s listed in readdir of %s", client.SnapshotDir, repo)
		}
	}
	if st, err := os.Stat(snapDir); err != nil || !st.IsDir() {
		t.Fatalf("stat %s: %v, %v; want a directory", snapDir, st, err)
	}
	// ls DIR/.snapshot
	names := func() ([]string, error) {
		ents, err := os.ReadDir(snapDir)
		var ns []string
		for _, e := range ents {
			ns = append(ns, e.Name())
		}
		return ns, err
	}
	if ns, err := names(); err != nil || !slices.Equal(ns, []string{"s1"}) {
		t.Fatalf("readdir of %s: %q, %v; want [s1]", snapDir, ns, err)
	}
	if ss, err := cl.Snapshots(ctx, "/repo"); err != nil || len(ss) != 1 || ss[0].Name != "s1" {
		t.Fatalf("snapshots of /repo: %+v, %v", ss, err)
	}

	// 7. The snapshot goes; the kernel may keep its entry for the
	// mount's EntryTimeout (1s), so its absence is awaited. The master
	// drops .snapshot itself with the last snapshot: absent or empty.
	must(cl.RemoveSnapshot(ctx, "/repo", "s1"))
	clustertest.Eventually(t, 10*time.Second, func() error {
		if _, err := os.Stat(snap); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stat %s after the removal: %v", snap, err)
		}
		if _, err := os.Stat(sp("README")); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("stat %s after the removal: %v", sp("README"), err)
		}
		return nil
	})
	if ns, err := names(); len(ns) != 0 || (err != nil && !errors.Is(err, os.ErrNotExist)) {
		t.Fatalf("readdir of %s after the removal: %q, %v; want nothing", snapDir, ns, err)
	}
	if ss, err := cl.Snapshots(ctx, "/repo"); err != nil || len(ss) != 0 {
		t.Fatalf("snapshots of /repo after the removal: %+v, %v", ss, err)
	}
	checkLive()
}
