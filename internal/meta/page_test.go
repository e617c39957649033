package meta

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestListPagesRandomized: List and ReadDirInode read page by page (random
// limits, start_after the last name), with files created and removed
// between pages, against a model of the directory: names strictly
// ascending, each one present when its page was read, and every name
// present from the first page to the last listed exactly once.
func TestListPagesRandomized(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		s := New()
		dir := mustApply(t, s, Mkdir{Path: "/d"}).Info.Inode
		live := map[string]bool{}
		name := func() string { return fmt.Sprintf("f%03d", r.IntN(300)) }
		for range 50 + r.IntN(100) {
			n := name()
			if !live[n] {
				mustApply(t, s, Create{Path: "/d/" + n})
				live[n] = true
			}
		}
		always := map[string]bool{} // present from the start, not removed yet
		for n := range live {
			always[n] = true
		}
		byInode := r.IntN(2) == 0
		var got []string
		for after := ""; ; {
			limit := 1 + r.IntN(20)
			var names []string
			var more bool
			if byInode {
				ents, m, err := s.ReadDirInode(dir, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					names = append(names, e.Name)
				}
				more = m
			} else {
				fis, m, err := s.List("/d", after, limit)
				if err != nil {
					t.Fatal(err)
				}
				for _, fi := range fis {
					names = append(names, fi.Name)
				}
				more = m
			}
			if len(names) > limit {
				t.Fatalf("seed %d: page of %d names, limit %d", seed, len(names), limit)
			}
			for _, n := range names {
				if !live[n] || (after != "" && n <= after) || (len(got) > 0 && n <= got[len(got)-1]) {
					t.Fatalf("seed %d: %q listed after %q (present %v)", seed, n, after, live[n])
				}
				got = append(got, n)
			}
			if !more {
				break
			}
			after = names[len(names)-1]
			// The directory changes between pages.
			for range r.IntN(4) {
				n := name()
				if live[n] {
					mustApply(t, s, Remove{Path: "/d/" + n})
					delete(live, n)
					delete(always, n)
				} else {
					mustApply(t, s, Create{Path: "/d/" + n})
					live[n] = true
				}
			}
		}
		for n := range always {
			if c := count(got, n); c != 1 {
				t.Fatalf("seed %d: %q, present throughout, listed %d times", seed, n, c)
			}
		}
	}
}

func count(xs []string, x string) int {
	return len(slices.DeleteFunc(slices.Clone(xs), func(y string) bool { return y != x }))
}
