package mirror

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/catena-io/catena/client"
)

// Trees for PlanTree's tests: dir, file and symlink build entries.
func dir(p string) *TreeEntry { return &TreeEntry{Path: p, Type: client.TypeDir, Mode: 0o755} }

func file(p string, size int64, handles ...uint64) *TreeEntry {
	e := &TreeEntry{Path: p, Type: client.TypeFile, Mode: 0o644, Size: size, ChunkSize: 1 << 20, Mtime: time.Unix(1, 0)}
	for i, h := range handles {
		if h != 0 {
			e.Chunks = append(e.Chunks, ChunkRef{Index: int64(i), Handle: h})
		}
	}
	return e
}

func symlink(p, target string) *TreeEntry {
	return &TreeEntry{Path: p, Type: client.TypeSymlink, Mode: 0o777, Target: target}
}

func treeOf(es ...*TreeEntry) map[string]*TreeEntry {
	t := map[string]*TreeEntry{"": dir("")}
	for _, e := range es {
		t[e.Path] = e
	}
	return t
}

// opsString is ops as "kind path[<base]" lines.
func opsString(ops []TreeOp) string {
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "%s %s", op.Kind, op.Path)
		if op.Kind == OpFile {
			fmt.Fprintf(&b, " <%q", op.Base)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestPlanTree(t *testing.T) {
	chmod := file("f", 10, 1)
	chmod.Mode = 0o600
	touched := file("f", 10, 1)
	touched.Mtime = time.Unix(2, 0)
	cases := []struct {
		name       string
		prev, cur  map[string]*TreeEntry
		want       string
		wantNilPrv bool
	}{
		{"the first checkpoint", nil, treeOf(dir("d"), file("d/f", 5, 1), symlink("l", "d/f"), file("e", 0)),
			"attr \nmkdir d\nfile d/f <\"\"\nfile e <\"\"\nsymlink l\n", false},
		{"unchanged", treeOf(dir("d"), file("d/f", 5, 1)), treeOf(dir("d"), file("d/f", 5, 1)), "", false},
		{"a slot written (forked)", treeOf(file("f", 3<<20, 1, 2, 3)), treeOf(file("f", 3<<20, 1, 9, 3)), "file f <\"f\"\n", false},
		{"extended without a new chunk", treeOf(file("f", 10, 1)), treeOf(file("f", 20, 1)), "file f <\"f\"\n", false},
		{"renamed", treeOf(file("a", 10, 1)), treeOf(file("b", 10, 1)), "remove a\nfile b <\"a\"\n", false},
		{"renamed and written", treeOf(file("a", 2<<20, 1, 2)), treeOf(file("b", 2<<20, 1, 7)), "remove a\nfile b <\"a\"\n", false},
		{"renamed over another", treeOf(file("a", 10, 1), file("b", 10, 2)), treeOf(file("b", 10, 1)),
			"remove a\nremove b\nfile b <\"a\"\n", false},
		{"a directory renamed", treeOf(dir("d"), file("d/x", 1, 1), dir("d/s"), file("d/s/y", 1, 2)),
			treeOf(dir("e"), file("e/x", 1, 1), dir("e/s"), file("e/s/y", 1, 2)),
			"remove d\nmkdir e\nmkdir e/s\nfile e/s/y <\"d/s/y\"\nfile e/x <\"d/x\"\n", false},
		{"every chunk written (no chunk shared)", treeOf(file("f", 10, 1)), treeOf(file("f", 10, 5)), "file f <\"f\"\n", false},
		{"a new file in place of a renamed one", treeOf(file("a", 10, 1), file("b", 10, 2)), treeOf(file("a", 10, 7), file("c", 10, 2)),
			"remove b\nfile a <\"a\"\nfile c <\"b\"\n", false},
		{"a file became a directory", treeOf(file("f", 10, 1)), treeOf(dir("f"), file("f/g", 10, 1)),
			"remove f\nmkdir f\nfile f/g <\"f\"\n", false},
		{"a symlink retargeted", treeOf(symlink("l", "a")), treeOf(symlink("l", "b")), "remove l\nsymlink l\n", false},
		{"chmod", treeOf(file("f", 10, 1)), treeOf(chmod), "attr f\n", false},
		{"touched", treeOf(file("f", 10, 1)), treeOf(touched), "attr f\n", false},
		{"a tree removed: its root only", treeOf(dir("d"), dir("d/e"), file("d/e/f", 1, 1), file("g", 1, 2)), treeOf(file("g", 1, 2)),
			"remove d\n", false},
		{"a copy (two files share chunks)", treeOf(file("a", 10, 1)), treeOf(file("a", 10, 1), file("b", 10, 1)), "file b <\"a\"\n", false},
	}
	for _, c := range cases {
		ops := PlanTree(c.prev, c.cur)
		if got := opsString(ops); got != c.want {
			t.Errorf("%s:\n got:\n%s want:\n%s", c.name, got, c.want)
		}
		checkPlanTree(t, c.name, c.prev, c.cur, ops)
	}
}

// checkPlanTree runs ops on a model of B's stage, a copy of prev, and
// checks that each is possible there (a parent exists, a name is free
// for what is made, a base is a file of prev) and that the stage ends
// equal to cur.
func checkPlanTree(t *testing.T, name string, prev, cur map[string]*TreeEntry, ops []TreeOp) {
	t.Helper()
	stage := map[string]*TreeEntry{"": dir("")}
	for p, e := range prev {
		cp := *e
		stage[p] = &cp
	}
	fail := func(op TreeOp, f string, args ...any) {
		t.Helper()
		t.Fatalf("%s: %s %s: %s\nops:\n%s", name, op.Kind, op.Path, fmt.Sprintf(f, args...), opsString(ops))
	}
	for _, op := range ops {
		parent := path.Dir(op.Path)
		if parent == "." {
			parent = ""
		}
		if op.Kind != OpRemove && op.Kind != OpAttr {
			if d := stage[parent]; d == nil || d.Type != client.TypeDir {
				fail(op, "no directory %q", parent)
			}
		}
		switch op.Kind {
		case OpRemove:
			if stage[op.Path] == nil {
				fail(op, "nothing to remove")
			}
			for p := range stage {
				if p == op.Path || strings.HasPrefix(p, op.Path+"/") {
					delete(stage, p)
				}
			}
		case OpMkdir, OpSymlink, OpMknod:
			if stage[op.Path] != nil {
				fail(op, "the name is taken")
			}
			cp := *op.Cur
			stage[op.Path] = &cp
		case OpFile:
			switch {
			case op.Base == op.Path:
				if e := stage[op.Path]; e == nil || e.Type != client.TypeFile {
					fail(op, "in place, but no file there")
				}
			case stage[op.Path] != nil:
				fail(op, "the name is taken")
			case op.Base != "" && (prev[op.Base] == nil || prev[op.Base].Type != client.TypeFile):
				fail(op, "base %q is no file of the previous checkpoint", op.Base)
			}
			cp := *op.Cur
			stage[op.Path] = &cp
		case OpAttr:
			e := stage[op.Path]
			if e == nil || e.Type != op.Cur.Type {
				fail(op, "no %v there", op.Cur.Type)
			}
			e.Mode, e.Uid, e.Gid, e.Mtime = op.Cur.Mode, op.Cur.Uid, op.Cur.Gid, op.Cur.Mtime
		}
	}
	for _, p := range sortedPaths(cur) {
		got, want := stage[p], cur[p]
		switch {
		case got == nil:
			t.Fatalf("%s: %s missing after the plan\nops:\n%s", name, p, opsString(ops))
		case got.Type != want.Type || got.Mode != want.Mode || got.Uid != want.Uid || got.Gid != want.Gid ||
			got.Target != want.Target || got.Type == client.TypeFile && (!sameContent(got, want) || !got.Mtime.Equal(want.Mtime)):
			t.Fatalf("%s: %s is %+v after the plan, want %+v\nops:\n%s", name, p, got, want, opsString(ops))
		}
	}
	for p := range stage {
		if cur[p] == nil {
			t.Fatalf("%s: %s left after the plan\nops:\n%s", name, p, opsString(ops))
		}
	}
}

// TestPlanTreeRandom: random trees changed by random creates, writes,
// renames (of files and directories), removes, type changes and chmods;
// the plan must be possible step by step on B's copy and end equal to
// the new tree, and a file renamed without a write must start from its
// old self (no data shipped).
func TestPlanTreeRandom(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		handles := uint64(0)
		newHandle := func() uint64 { handles++; return handles }
		prev := treeOf()
		names := []string{"a", "b", "c", "d"}
		randPath := func(t map[string]*TreeEntry) string {
			dirs := []string{}
			for p, e := range t {
				if e.Type == client.TypeDir {
					dirs = append(dirs, p)
				}
			}
			slices.Sort(dirs)
			d := dirs[rng.IntN(len(dirs))]
			return strings.TrimPrefix(d+"/"+names[rng.IntN(len(names))], "/")
		}
		mutate := func(t map[string]*TreeEntry, n int) (renamed map[string]string) {
			renamed = map[string]string{}
			for range n {
				p := randPath(t)
				e := t[p]
				switch r := rng.IntN(8); {
				case e == nil && r < 4:
					f := file(p, int64(rng.IntN(3<<20)))
					for i := int64(0); i*(1<<20) < f.Size; i++ {
						if rng.IntN(3) > 0 {
							f.Chunks = append(f.Chunks, ChunkRef{Index: i, Handle: newHandle()})
						}
					}
					t[p] = f
				case e == nil && r < 6:
					t[p] = dir(p)
				case e == nil:
					t[p] = symlink(p, names[rng.IntN(len(names))])
				case r == 0 && e.Type == client.TypeFile && len(e.Chunks) > 0:
					cp := *e
					cp.Chunks = slices.Clone(e.Chunks)
					cp.Chunks[rng.IntN(len(cp.Chunks))].Handle = newHandle()
					t[p] = &cp
				case r <= 2:
					q := randPath(t)
					if t[q] != nil || q == p || strings.HasPrefix(q, p+"/") {
						continue
					}
					for _, x := range sortedPaths(t) {
						if x == p || strings.HasPrefix(x, p+"/") {
							y := q + strings.TrimPrefix(x, p)
							cp := *t[x]
							cp.Path = y
							delete(t, x)
							t[y] = &cp
							renamed[y] = x
						}
					}
				case r == 3 && e.Type != client.TypeSymlink: // a symlink's mode means nothing
					cp := *e
					cp.Mode ^= 0o022
					t[p] = &cp
				default:
					for _, x := range sortedPaths(t) {
						if x == p || strings.HasPrefix(x, p+"/") {
							delete(t, x)
						}
					}
				}
			}
			return renamed
		}
		mutate(prev, 30)
		cur := maps.Clone(prev)
		renamed := mutate(cur, 10)
		ops := PlanTree(prev, cur)
		checkPlanTree(t, fmt.Sprintf("seed %d", seed), prev, cur, ops)
		for _, op := range ops {
			old, ok := renamed[op.Path]
			if op.Kind == OpFile && ok && prev[old] != nil && len(prev[old].Chunks) > 0 && sameContent(prev[old], op.Cur) && op.Base == "" {
				t.Fatalf("seed %d: %s, renamed from %s unchanged, is shipped anew", seed, op.Path, old)
			}
		}
	}
}
