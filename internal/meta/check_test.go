package meta

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/catena-io/catena/internal/invariants"
)

// checkFixture holds one of everything Check looks at:
//
//	1 /            3 /d/e        5 orphan (was /d/p), chunk 2, held by mount 9
//	2 /d           4 /d/f = /d/h (chunk 1)   6 /d/s -> d/f   7 /d/n (fifo)
//	8 volume v (chunk 3); master m1; client session 7 with one result.
func checkFixture(t *testing.T) *State {
	t.Helper()
	s, d, _, _, p := posixFixture(t)
	applyOK(t, s, Mknod{Parent: d.Inode, Name: "n", Type: TypeFifo, Mode: 0o644, Time: 13})
	applyOK(t, s, AllocateChunk{Inode: p.Inode, Index: 0, Chain: []ServerID{2, 3}, Time: 14})
	v := applyOK(t, s, CreateVolume{Name: "v", Size: 1 << 20, ChunkSize: 1 << 20, Time: 15}).Info
	applyOK(t, s, AllocateChunk{Inode: v.Inode, Index: 0, Chain: []ServerID{3}, Time: 16})
	applyOK(t, s, RenewMount{Session: 9, TTL: 100, Time: 17})
	applyOK(t, s, Hold{Session: 9, Inode: p.Inode, Time: 17})
	applyOK(t, s, Unlink{Parent: d.Inode, Name: "p", Time: 18})
	applyOK(t, s, SetMaster{ID: "m1", Addr: "m:1"})
	applyOK(t, s, Request{Client: 7, Seq: 1, Time: 19, Cmd: Mkdir{Path: "/d/e", Parents: true}})
	if got := s.Orphans(); !slices.Equal(got, []uint64{5}) || v.Inode != 8 || len(s.Chunks()) != 3 {
		t.Fatalf("fixture: orphans %v, volume inode %d, %d chunks", got, v.Inode, len(s.Chunks()))
	}
	return s
}

// TestCheckFindsEachCorruption breaks one invariant at a time behind
// Apply's back and expects the check that owns it to say so. A corruption
// a checkpoint can carry must make RestoreCheckpoint fail through the same
// check; the others are of derived fields a checkpoint rebuilds.
func TestCheckFindsEachCorruption(t *testing.T) {
	cases := []struct {
		name    string
		check   string // the check that must fail
		want    string // in its message
		encoded bool   // a checkpoint carries it
		corrupt func(s *State)
	}{
		{"root is a file", "root", "inode 1 is not a directory", true, func(s *State) { s.inodes[1].dir = false }},
		{"inode counter", "counters", "inode 7 is not in [1, next inode 7)", true, func(s *State) { s.nextInode = 7 }},
		{"handle counter", "counters", "chunk 3 is not in [1, next handle 3)", true, func(s *State) { s.nextHandle = 3 }},
		{"server without address", "servers", "server 2: id 0 or no address", true, func(s *State) { s.servers[2].Addr = "" }},
		{"epoch 0", "chunks", "chunk 1: epoch 0", true, func(s *State) { s.chunks[1].Epoch = 0 }},
		{"empty chain", "chunks", "chunk 2: chain []", true, func(s *State) { s.chunks[2].Chain = nil }},
		{"server twice in a chain", "chunks", "server 1 twice in chain", true, func(s *State) { s.chunks[1].Chain = []ServerID{1, 1, 3} }},
		{"chain of an unregistered server", "chunks", "chain server 3 is not registered", true, func(s *State) { delete(s.servers, 3) }},
		{"bad chunk replication", "chunks", "chunk 3: replication 0", true, func(s *State) { s.chunks[3].Replication = 0 }},
		{"refcount too high", "refcounts", "chunk 1: refs 2, but 1 slots name it", true, func(s *State) { s.chunks[1].Refs = 2 }},
		{"unreferenced chunk", "refcounts", "chunk 1: refs 1, but 0 slots name it", true, func(s *State) { delete(s.inodes[4].chunks, 0) }},
		{"slot of a missing chunk", "refcounts", "inode 4 index 0: chunk 1 is not in the chunk map", true, func(s *State) { delete(s.chunks, 1) }},
		{"chunk size differs from the file's", "refcounts", "chunk 3 has chunk size 2097152, the file 1048576", true, func(s *State) { s.chunks[3].ChunkSize = 2 << 20 }},
		{"replication differs from the file's", "refcounts", "chunk 1 has replication 2, the file 3", true, func(s *State) { s.chunks[1].Replication = 2 }},
		{"directory with a size", "inodes", "directory 2: chunks or a size (5)", true, func(s *State) { s.inodes[2].size = 5 }},
		{"negative size", "inodes", "file 4: negative size -1", true, func(s *State) { s.inodes[4].size = -1 }},
		{"mode beyond permissions", "inodes", "inode 7: mode 0100644 beyond permission bits", true, func(s *State) { s.inodes[7].mode |= 0o100000 }},
		{"symlink without target", "inodes", "symlink 6: bad target", true, func(s *State) { s.inodes[6].target = "" }},
		{"special file with chunks", "inodes", "special file 7", true, func(s *State) {
			s.inodes[7].chunks[0] = 1
			s.chunks[1].Refs++
		}},
		{"file without chunk table", "inodes", "file 6: no chunk table", false, func(s *State) { s.inodes[6].chunks = nil }},
		{"invalid name", "names", "inode 3: meta: invalid argument: name contains '/'", true, func(s *State) {
			d := s.inodes[2]
			delete(d.children, "e")
			d.children["a/b"], s.inodes[3].name = 3, "a/b"
		}},
		{"no parent, no volume", "names", "inode 7: no parent, and neither a volume nor an orphan", true, func(s *State) {
			delete(s.inodes[2].children, "n")
			s.inodes[7].parent = 0
		}},
		{"name without entry", "names", `inode 4: directory 2 has no entry "h" for it`, false, func(s *State) { delete(s.inodes[2].children, "h") }},
		{"name twice", "names", `inode 4: named "h" in directory 2 twice`, true, func(s *State) {
			s.inodes[4].links = append(s.inodes[4].links, link{Parent: 2, Name: "h"})
		}},
		{"dangling entry", "entries", `directory 2: entry "ghost" names inode 99, which does not exist`, false, func(s *State) { s.inodes[2].children["ghost"] = 99 }},
		{"entry the inode does not know", "entries", `directory 3: entry "x" names inode 4, which has no such name`, false, func(s *State) { s.inodes[3].children["x"] = 4 }},
		{"entry of a volume", "entries", `directory 1: entry "v" names inode 8`, false, func(s *State) { s.inodes[1].children["v"] = 8 }},
		{"cycle", "tree", "inode 3: not reachable from the root", true, func(s *State) {
			delete(s.inodes[2].children, "e")
			e := s.inodes[3]
			e.parent, e.children["e"] = 3, 3
		}},
		{"volume of another name", "volumes", `volume "w": inode 8 is volume "v" too`, true, func(s *State) { s.volumes["w"] = 8 }},
		{"volume of a named file", "volumes", `volume "f": inode 4 is not a nameless regular file`, true, func(s *State) { s.volumes["f"] = 4 }},
		{"volume size", "volumes", `volume "v": meta: invalid argument: volume size 1000`, true, func(s *State) { s.inodes[8].size = 1000 }},
		{"holder count", "mounts", "inode 5: 2 holders recorded, held by 1 sessions", false, func(s *State) { s.holders[5] = 2 }},
		{"hold of a missing inode", "mounts", "mount session 9: holds inode 99, which is not a file", true, func(s *State) {
			s.mounts[9].held[99] = true
			s.holders[99] = 1
		}},
		{"leaked orphan", "mounts", "orphan 5: held by no session (leaked)", true, func(s *State) {
			delete(s.mounts[9].held, 5)
			delete(s.holders, 5)
		}},
		{"orphan with a name", "mounts", "orphan 5: a directory or has a name", true, func(s *State) { s.inodes[5].name = "p" }},
		{"session without ttl", "mounts", "mount session 9: missing, id 0 or ttl <= 0", true, func(s *State) { s.mounts[9].ttl = 0 }},
		{"master without address", "requests", `master "m1": empty id or address`, true, func(s *State) { s.ha.masters["m1"] = "" }},
		{"results below the floor", "requests", "client session 7: results out of order at request 1", true, func(s *State) { s.ha.sessions[7].floor = 1 }},
	}
	if err := checkFixture(t).Check(); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := checkFixture(t)
			c.corrupt(s)
			err := s.Check()
			if !errors.Is(err, ErrInconsistent) {
				t.Fatalf("Check = %v, want ErrInconsistent", err)
			}
			if !hasProblem(err, c.check, c.want) {
				t.Fatalf("Check = %v\nwant a line %q naming %q", err, c.check+": ", c.want)
			}
			if !c.encoded {
				return
			}
			b, err := s.Checkpoint()
			if err != nil {
				t.Fatal(err)
			}
			_, err = RestoreCheckpoint(b)
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrInconsistent) || !hasProblem(err, c.check, c.want) {
				t.Fatalf("RestoreCheckpoint = %v\nwant ErrCorrupt from check %q: %q", err, c.check, c.want)
			}
		})
	}
}

// hasProblem reports whether err has a line "check: ...want...".
func hasProblem(err error, check, want string) bool {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if i := strings.Index(line, check+": "); i >= 0 && strings.Contains(line[i:], want) {
			return true
		}
	}
	return false
}

// TestCheckReportsEveryFailedCheck: fsck lists every failed check, each
// with a bounded number of problems.
func TestCheckReportsEveryFailedCheck(t *testing.T) {
	s := checkFixture(t)
	s.chunks[1].Epoch = 0
	s.servers[1].Addr = ""
	for i := range 3 * maxProblems {
		s.inodes[2].children[strings.Repeat("g", i+1)] = 1000 + uint64(i)
	}
	err := s.Check()
	for _, c := range []string{"servers: ", "chunks: ", "entries: "} {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("no %q in %v", c, err)
		}
	}
	if !strings.Contains(err.Error(), "; and 16 more") {
		t.Errorf("problems not capped at %d: %v", maxProblems, err)
	}
}

// TestApplyAssertsInvariants: built with -tags invariants, a command on a
// state that breaks an invariant panics naming the command and the check;
// without the tag nothing is checked.
func TestApplyAssertsInvariants(t *testing.T) {
	s := checkFixture(t)
	s.chunks[1].Refs = 2
	defer func() {
		r := recover()
		if !invariants.Enabled {
			if r != nil {
				t.Fatalf("panic without the invariants tag: %v", r)
			}
			return
		}
		msg, _ := r.(string)
		if !strings.Contains(msg, "after meta.Mkdir") || !strings.Contains(msg, "refcounts: chunk 1: refs 2") {
			t.Fatalf("panic %q, want one naming the command and the refcount", msg)
		}
	}()
	s.Apply(Mkdir{Path: "/x", Time: 30})
}
