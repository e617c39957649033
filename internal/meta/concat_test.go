package meta

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

const mib = 1 << 20

// concatFixture: servers 1..3, directory /u, and a file per spec
// (path, chunk size, size, allocated indexes).
type fileSpec struct {
	path   string
	cs     int64
	size   int64
	chunks []int64
}

func concatFixture(t *testing.T, files ...fileSpec) *State {
	t.Helper()
	s := New()
	for _, c := range []Command{
		RegisterServer{ID: 1, Addr: "a:1"}, RegisterServer{ID: 2, Addr: "b:1"}, RegisterServer{ID: 3, Addr: "c:1"},
		Mkdir{Path: "/u", Mode: 0o755, Time: 1},
	} {
		applyChecked(t, s, c)
	}
	for _, f := range files {
		addFile(t, s, f)
	}
	return s
}

func addFile(t *testing.T, s *State, f fileSpec) uint64 {
	t.Helper()
	fi := applyChecked(t, s, Create{Path: f.path, Mode: 0o644, ChunkSize: f.cs, Time: 2}).Info
	for _, idx := range f.chunks {
		applyChecked(t, s, AllocateChunk{Inode: fi.Inode, Index: idx, Chain: []ServerID{1, 2, 3}, Time: 3})
	}
	applyChecked(t, s, SetSize{Inode: fi.Inode, Size: f.size, Mode: SizeExtend, Time: 4})
	return fi.Inode
}

// chunkMap is the file at p's index -> handle.
func chunkMap(t *testing.T, s *State, p string) map[int64]uint64 {
	t.Helper()
	fi, err := s.Lookup(p)
	if err != nil {
		t.Fatal(err)
	}
	_, refs, err := s.FileChunks(fi.Inode, 0, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	m := map[int64]uint64{}
	for _, r := range refs {
		m[r.Index] = r.Handle
	}
	return m
}

func TestConcatMovesChunksAndRemovesSources(t *testing.T) {
	s := concatFixture(t,
		fileSpec{"/u/dst", mib, mib, []int64{0}},       // one full chunk already
		fileSpec{"/u/p1", mib, 2 * mib, []int64{0, 1}}, // two full chunks
		fileSpec{"/u/p2", mib, 3 * mib, []int64{0, 2}}, // a hole at index 1
		fileSpec{"/u/p3", mib, mib / 2, []int64{0}},    // the last ends inside its chunk
	)
	d0, p1, p2, p3 := chunkMap(t, s, "/u/dst"), chunkMap(t, s, "/u/p1"), chunkMap(t, s, "/u/p2"), chunkMap(t, s, "/u/p3")
	chunksBefore := s.Chunks()

	r := applyChecked(t, s, Concat{Dst: "/u/dst", Srcs: []string{"/u/p1", "/u/p2", "/u/p3"}, Time: 10})
	if r.Info.Size != mib+2*mib+3*mib+mib/2 || r.Info.MTime != 10 {
		t.Fatalf("dst after concat: %+v", r.Info)
	}
	want := map[int64]uint64{0: d0[0], 1: p1[0], 2: p1[1], 3: p2[0], 5: p2[2], 6: p3[0]}
	if got := chunkMap(t, s, "/u/dst"); !maps.Equal(got, want) {
		t.Fatalf("dst chunks %v, want %v", got, want)
	}
	for _, p := range []string{"/u/p1", "/u/p2", "/u/p3"} {
		if _, err := s.Lookup(p); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s after concat: %v", p, err)
		}
	}
	// The same chunks, each with its one reference; those moved at the
	// next epoch and fenced, in handle order; dst's own unchanged.
	after := s.Chunks()
	if len(after) != len(chunksBefore) {
		t.Fatalf("%d chunks after, %d before", len(after), len(chunksBefore))
	}
	var wantFenced []uint64
	for i, ch := range after {
		b := chunksBefore[i]
		moved := ch.Handle != d0[0]
		if ch.Handle != b.Handle || ch.Refs != 1 || (moved && ch.Epoch != b.Epoch+1) || (!moved && ch.Epoch != b.Epoch) {
			t.Fatalf("chunk %d: before %+v, after %+v", ch.Handle, b, ch)
		}
		if moved {
			wantFenced = append(wantFenced, ch.Handle)
		}
	}
	var fenced []uint64
	for _, f := range r.Fenced {
		if ch, _ := s.Chunk(f.Handle); f.Epoch != ch.Epoch {
			t.Fatalf("fenced %+v, the chunk is at epoch %d", f, ch.Epoch)
		}
		fenced = append(fenced, f.Handle)
	}
	if !slices.Equal(fenced, wantFenced) {
		t.Fatalf("fenced %v, want %v", fenced, wantFenced)
	}
	checkpointRoundTrip(t, s)
}

// TestConcatSharedChunkKeepsEpoch: a source chunk that a snapshot shares
// is written by nobody: it moves with its references and epoch as they
// are, and the snapshot still reads it.
func TestConcatSharedChunkKeepsEpoch(t *testing.T) {
	s := concatFixture(t, fileSpec{"/u/dst", mib, 0, nil}, fileSpec{"/u/p1", mib, mib, []int64{0}})
	applyChecked(t, s, Snapshot{Path: "/u", Name: "s", Time: 5})
	h := chunkMap(t, s, "/u/p1")[0]
	before, _ := s.Chunk(h)
	r := applyChecked(t, s, Concat{Dst: "/u/dst", Srcs: []string{"/u/p1"}, Time: 6})
	after, _ := s.Chunk(h)
	if len(r.Fenced) != 0 || after.Epoch != before.Epoch || after.Refs != 2 {
		t.Fatalf("shared chunk before %+v after %+v, fenced %v", before, after, r.Fenced)
	}
	if got := chunkMap(t, s, "/u/.snapshot/s/p1"); got[0] != h {
		t.Fatalf("the snapshot's p1 names %v, want chunk %d", got, h)
	}
	if got := chunkMap(t, s, "/u/dst"); got[0] != h {
		t.Fatalf("dst names %v, want chunk %d", got, h)
	}
}

// TestConcatRefusals: each bad concat fails with its error and changes
// nothing (the checkpoint is the same bytes).
func TestConcatRefusals(t *testing.T) {
	base := []fileSpec{
		{"/u/dst", mib, 0, nil},
		{"/u/a", mib, 2 * mib, []int64{0, 1}},
		{"/u/b", mib, mib + 5, []int64{0, 1}},
		{"/u/big", 2 * mib, 2 * mib, []int64{0}},
		{"/u/odd", mib, 3, []int64{0}},
		{"/u/past", mib, mib, []int64{0, 1}}, // a chunk past its size: a writer not done
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, s *State)
		cmd   Concat
		want  error
		msg   string
	}{
		{"no sources", nil, Concat{Dst: "/u/dst"}, ErrInvalid, "0 sources"},
		{"a source not a multiple", nil, Concat{Dst: "/u/dst", Srcs: []string{"/u/b", "/u/a"}}, ErrInvalid, "not a multiple"},
		{"dst not a multiple", nil, Concat{Dst: "/u/odd", Srcs: []string{"/u/a"}}, ErrInvalid, "not a multiple"},
		{"another chunk size", nil, Concat{Dst: "/u/dst", Srcs: []string{"/u/a", "/u/big"}}, ErrInvalid, "chunk size"},
		{"another replication", func(t *testing.T, s *State) {
			fi, _ := s.Lookup("/u/a")
			applyChecked(t, s, SetReplication{Inode: fi.Inode, Replication: 2})
		}, Concat{Dst: "/u/dst", Srcs: []string{"/u/a"}}, ErrInvalid, "replication"},
		{"dst as a source", nil, Concat{Dst: "/u/dst", Srcs: []string{"/u/dst"}}, ErrInvalid, "destination or a source"},
		{"a source twice", nil, Concat{Dst: "/u/dst", Srcs: []string{"/u/a", "/u/a"}}, ErrInvalid, "destination or a source"},
		{"a missing source", nil, Concat{Dst: "/u/dst", Srcs: []string{"/u/a", "/u/nope"}}, ErrNotFound, "/u/nope"},
		{"a missing dst", nil, Concat{Dst: "/u/nope", Srcs: []string{"/u/a"}}, ErrNotFound, "/u/nope"},
		{"a directory", nil, Concat{Dst: "/u/dst", Srcs: []string{"/u"}}, ErrIsDir, "/u"},
		{"a bad path", nil, Concat{Dst: "/u/dst", Srcs: []string{"u/a"}}, ErrInvalid, ""},
		{"a chunk past the size", nil, Concat{Dst: "/u/dst", Srcs: []string{"/u/past"}}, ErrInvalid, "past its"},
		{"a symlink", func(t *testing.T, s *State) {
			d, _ := s.Lookup("/u")
			applyChecked(t, s, Symlink{Parent: d.Inode, Name: "l", Target: "a", Time: 5})
		}, Concat{Dst: "/u/dst", Srcs: []string{"/u/l"}}, ErrInvalid, "not a regular file"},
		{"a hard-linked source", func(t *testing.T, s *State) {
			d, _ := s.Lookup("/u")
			a, _ := s.Lookup("/u/a")
			applyChecked(t, s, Link{Inode: a.Inode, Parent: d.Inode, Name: "a2", Time: 5})
		}, Concat{Dst: "/u/dst", Srcs: []string{"/u/a"}}, ErrInvalid, "hard links"},
		{"a source held open", func(t *testing.T, s *State) {
			a, _ := s.Lookup("/u/a")
			applyChecked(t, s, RenewMount{Session: 9, TTL: 100, Time: 5})
			applyChecked(t, s, Hold{Session: 9, Inode: a.Inode, Time: 5})
		}, Concat{Dst: "/u/dst", Srcs: []string{"/u/a"}}, ErrInvalid, "held open"},
		{"a fork in progress", func(t *testing.T, s *State) {
			applyChecked(t, s, Snapshot{Path: "/u", Name: "s", Time: 5})
			a, _ := s.Lookup("/u/a")
			ref, _, _ := s.FileChunk(a.Inode, 0)
			applyChecked(t, s, ForkChunk{Inode: a.Inode, Index: 0, Source: ref.Handle, Epoch: ref.Epoch})
		}, Concat{Dst: "/u/dst", Srcs: []string{"/u/a"}}, ErrInvalid, "being forked"},
		{"a file of a snapshot", func(t *testing.T, s *State) {
			applyChecked(t, s, Snapshot{Path: "/u", Name: "s", Time: 5})
		}, Concat{Dst: "/u/dst", Srcs: []string{"/u/.snapshot/s/a"}}, ErrReadOnly, "snapshot"},
		{"a result too large", func(t *testing.T, s *State) {
			for _, p := range []string{"/u/h1", "/u/h2"} {
				fi := applyChecked(t, s, Create{Path: p, ChunkSize: mib, Time: 5}).Info
				applyChecked(t, s, SetSize{Inode: fi.Inode, Size: math.MaxInt64 / mib / 2 * mib, Mode: SizeExact, Time: 5})
			}
		}, Concat{Dst: "/u/dst", Srcs: []string{"/u/h1", "/u/h2", "/u/a"}}, ErrInvalid, "too large"},
		{"too many sources", nil, Concat{Dst: "/u/dst", Srcs: make([]string, MaxConcatSources+1)}, ErrInvalid, "10001 sources"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := concatFixture(t, base...)
			if tc.setup != nil {
				tc.setup(t, s)
			}
			before, _ := s.Checkpoint()
			r := s.Apply(tc.cmd)
			if !errors.Is(r.Err, tc.want) || !strings.Contains(fmt.Sprint(r.Err), tc.msg) {
				t.Fatalf("error %v, want %v with %q", r.Err, tc.want, tc.msg)
			}
			if after, _ := s.Checkpoint(); !bytes.Equal(before, after) {
				t.Fatal("a refused concat changed the state")
			}
		})
	}
}

// TestConcatRandom: files of random chunk sizes, sizes and allocated
// chunks, concatenated in random selections, against a model: a
// concat the rules allow maps exactly the sources' chunks at their
// shifted indexes and keeps every invariant (Check); one they refuse
// is ErrInvalid and changes nothing.
func TestConcatRandom(t *testing.T) {
	var allowed, refused int
	for seed := uint64(1); seed <= 200; seed++ {
		rnd := rand.New(rand.NewPCG(seed, 42))
		var files []fileSpec
		for i := range 2 + rnd.IntN(4) {
			cs := int64(mib)
			if rnd.IntN(8) == 0 {
				cs = 2 * mib
			}
			var size int64
			switch rnd.IntN(6) {
			case 0, 1, 2, 3:
				size = cs * int64(rnd.IntN(4))
			case 4:
				size = int64(rnd.IntN(int(4 * cs)))
			default:
				size = cs*int64(rnd.IntN(3)) + 1
			}
			var chunks []int64
			for idx := int64(0); idx*cs < size; idx++ {
				if rnd.IntN(4) > 0 {
					chunks = append(chunks, idx)
				}
			}
			files = append(files, fileSpec{fmt.Sprintf("/u/f%d", i), cs, size, chunks})
		}
		s := concatFixture(t, files...)
		perm := rnd.Perm(len(files))
		dst, srcs := files[perm[0]], perm[1:1+rnd.IntN(len(files)-1)+1]
		ok := dst.size%dst.cs == 0
		want := chunkMap(t, s, dst.path)
		base, end := dst.size/dst.cs, dst.size
		var paths []string
		for i, j := range srcs {
			f := files[j]
			paths = append(paths, f.path)
			if f.cs != dst.cs || (i < len(srcs)-1 && f.size%f.cs != 0) {
				ok = false
			}
			for idx, h := range chunkMap(t, s, f.path) {
				want[base+idx] = h
			}
			base += (f.size + f.cs - 1) / f.cs
			end += f.size
		}
		before, _ := s.Checkpoint()
		r := s.Apply(Concat{Dst: dst.path, Srcs: paths, Time: 9})
		if !ok {
			if !errors.Is(r.Err, ErrInvalid) {
				t.Fatalf("seed %d: concat %s <- %v allowed (%v); the rules refuse it", seed, dst.path, paths, r.Err)
			}
			if after, _ := s.Checkpoint(); !bytes.Equal(before, after) {
				t.Fatalf("seed %d: a refused concat changed the state", seed)
			}
			refused++
			continue
		}
		if r.Err != nil {
			t.Fatalf("seed %d: concat %s <- %v: %v", seed, dst.path, paths, r.Err)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if got := chunkMap(t, s, dst.path); !maps.Equal(got, want) || r.Info.Size != end {
			t.Fatalf("seed %d: dst size %d chunks %v, want %d %v", seed, r.Info.Size, got, end, want)
		}
		checkpointRoundTrip(t, s)
		allowed++
	}
	// Both outcomes must be common, or the model checks little.
	t.Logf("%d concats allowed, %d refused", allowed, refused)
	if allowed < 40 || refused < 40 {
		t.Fatalf("%d concats allowed, %d refused: the generator explores too little", allowed, refused)
	}
}
