package chunkstore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"sync/atomic"
	"testing"
)

// legacyDir writes three format-3 replicas into /d/chunks of a MemFS: one
// clean, one with a bad block, one whose last write was never synced (a
// crash that kept the page: an ahead block). It returns the crashed FS
// and each replica's expected bytes.
func legacyDir(t *testing.T) (*MemFS, map[Handle][]byte) {
	t.Helper()
	mem := NewMemFS()
	old, err := openFileStoreConfig(Config{FS: mem, Dir: "/d", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	const size = 4 * BlockSize
	want := make(map[Handle][]byte)
	for h := Handle(1); h <= 3; h++ {
		r, err := old.Create(Meta{Handle: h, Epoch: 2, ChunkSize: size, Chain: []uint64{7, 8}})
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, size)
		for i := range BlockSize * 2 { // blocks 0 and 1; 2 and 3 stay holes
			data[i] = byte(int(h)*31 + i)
		}
		if err := r.WriteAt(data[:2*BlockSize], 0); err != nil {
			t.Fatal(err)
		}
		r.SetAppliedAt(2, 10)
		if err := r.Sync(); err != nil {
			t.Fatal(err)
		}
		want[h] = data
	}
	// Replica 2's block 1 rots on disk after it was synced.
	f, err := mem.OpenFile("/d/chunks/"+fileName(2), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x5a}, DataOffset+BlockSize+10); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r3, _ := old.Get(3)
	late := bytes.Repeat([]byte{0xab}, BlockSize)
	if err := r3.WriteAt(late, 3*BlockSize); err != nil { // never synced
		t.Fatal(err)
	}
	copy(want[3][3*BlockSize:], late)
	r1, _ := old.Get(1)
	if err := r1.Zero(100, 1000); err != nil { // never synced either
		t.Fatal(err)
	}
	clear(want[1][100:1100])
	crashed := mem.CrashCloneKeeping(func(string, int64) bool { return true }) // SIGKILL: the page cache survives
	old.Close()
	return crashed, want
}

func TestOpenConvertsFormat3(t *testing.T) {
	mem, want := legacyDir(t)
	s, err := OpenConfig(Config{FS: mem, Dir: "/d", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	checkConverted(t, s, want)
	if _, err := mem.Stat("/d/chunks"); err == nil {
		t.Fatal("the emptied format-3 directory is still there")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Converted once: a reopen finds the same replicas in the engine.
	s, err = OpenConfig(Config{FS: mem, Dir: "/d", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	checkConverted(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// And after a crash (no checkpoint at Close): the log says the same.
	s, err = OpenConfig(Config{FS: mem, Dir: "/d", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s2, err := OpenConfig(Config{FS: mem.CrashClone(), Dir: "/d", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	checkConverted(t, s2, want)
}

// checkConverted compares every converted replica with its expected bytes,
// metadata, bad and ahead blocks.
func checkConverted(t *testing.T, s *Store, want map[Handle][]byte) {
	t.Helper()
	for h, data := range want {
		r, err := s.Get(h)
		if err != nil {
			t.Fatalf("replica %d: %v", h, err)
		}
		m := r.Meta()
		if m.Epoch != 2 || m.AppliedSeq != 10 || m.AppliedEpoch != 2 || !slices.Equal(m.Chain, []uint64{7, 8}) || m.ChunkSize != int64(len(data)) {
			t.Fatalf("replica %d: meta %+v", h, m)
		}
		for b := int64(0); b < int64(len(data))/BlockSize; b++ {
			buf := make([]byte, BlockSize)
			_, err := r.ReadAt(buf, b*BlockSize)
			if h == 2 && b == 1 {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("replica 2's bad block 1 reads %v, want ErrCorrupt", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("replica %d block %d: %v", h, b, err)
			}
			if !bytes.Equal(buf, data[b*BlockSize:(b+1)*BlockSize]) {
				t.Fatalf("replica %d block %d differs after conversion", h, b)
			}
		}
		wantAhead := map[Handle][]int64{1: {0}, 3: {3}}[h]
		if got := r.AheadBlocks(); !slices.Equal(got, wantAhead) {
			t.Fatalf("replica %d: ahead %v, want %v", h, got, wantAhead)
		}
		if wantBad := h == 2; slices.Contains(r.BadBlocks(), 1) != wantBad {
			t.Fatalf("replica %d: bad blocks %v", h, r.BadBlocks())
		}
	}
	if err := s.check(); err != nil {
		t.Fatal(err)
	}
}

// TestConvertCrash cuts the power at random points of a conversion: the
// next Open converts what is left, and no replica is lost or changed.
func TestConvertCrash(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		mem, want := legacyDir(t)
		rng := rand.New(rand.NewPCG(seed, seed))
		// Count the file operations of a whole conversion on a copy, then
		// crash a second copy after a random number of them.
		probe := mem.CrashCloneKeeping(func(string, int64) bool { return true })
		var n atomic.Int64
		counting := &ErrorFS{FS: probe, Inject: func(Op, string, int64) error { n.Add(1); return nil }}
		s, err := OpenConfig(Config{FS: counting, Dir: "/d", Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		stop := rng.Int64N(n.Load())
		victim := mem.CrashCloneKeeping(func(string, int64) bool { return true })
		var done atomic.Int64
		failing := &ErrorFS{FS: victim, Inject: func(Op, string, int64) error {
			if done.Add(1) > stop {
				return errors.New("power cut")
			}
			return nil
		}}
		if s, err := OpenConfig(Config{FS: failing, Dir: "/d", Logger: quietLogger()}); err == nil {
			s.Close()
		}
		after := victim.CrashCloneKeeping(func(string, int64) bool { return rng.IntN(2) == 0 })
		s, err = OpenConfig(Config{FS: after, Dir: "/d", Logger: quietLogger()})
		if err != nil {
			t.Fatalf("seed %d (cut after %d of %d operations): reopen: %v", seed, stop, n.Load(), err)
		}
		checkConverted(t, s, want)
		s.Close()
	}
}
