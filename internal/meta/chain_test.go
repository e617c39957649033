package meta

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// chainFixture: servers 1..4, file /f (repl 3, 1 MiB chunks) with chunk 1
// on chain [1 2 3] at epoch 1.
func chainFixture(t *testing.T) *State {
	t.Helper()
	s := New()
	for id := ServerID(1); id <= 4; id++ {
		mustApply(t, s, RegisterServer{ID: id, Addr: "cs:1"})
	}
	r := mustApply(t, s, Create{Path: "/f", ChunkSize: 1 << 20})
	mustApply(t, s, AllocateChunk{Inode: r.Info.Inode, Index: 0, Chain: []ServerID{1, 2, 3}})
	return s
}

func mustApply(t *testing.T, s *State, c Command) Result {
	t.Helper()
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	r := s.Apply(dc)
	if r.Err != nil {
		t.Fatalf("apply %T: %v", c, r.Err)
	}
	return r
}

func TestSetChain(t *testing.T) {
	tests := []struct {
		name      string
		cmd       SetChain
		wantErr   error
		wantEpoch uint64
		wantChain []ServerID
	}{
		{"remove middle", SetChain{Handle: 1, Epoch: 2, Chain: []ServerID{1, 3}}, nil, 2, []ServerID{1, 3}},
		{"add at tail", SetChain{Handle: 1, Epoch: 2, Chain: []ServerID{1, 2, 3, 4}}, nil, 2, []ServerID{1, 2, 3, 4}},
		{"same epoch", SetChain{Handle: 1, Epoch: 1, Chain: []ServerID{1, 3}}, ErrEpochMismatch, 1, []ServerID{1, 2, 3}},
		{"skips an epoch", SetChain{Handle: 1, Epoch: 3, Chain: []ServerID{1, 3}}, ErrEpochMismatch, 1, []ServerID{1, 2, 3}},
		{"empty chain", SetChain{Handle: 1, Epoch: 2}, ErrInvalid, 1, []ServerID{1, 2, 3}},
		{"duplicate", SetChain{Handle: 1, Epoch: 2, Chain: []ServerID{1, 1}}, ErrInvalid, 1, []ServerID{1, 2, 3}},
		{"unregistered", SetChain{Handle: 1, Epoch: 2, Chain: []ServerID{1, 9}}, ErrInvalid, 1, []ServerID{1, 2, 3}},
		{"unknown chunk", SetChain{Handle: 7, Epoch: 2, Chain: []ServerID{1}}, ErrNotFound, 1, []ServerID{1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := chainFixture(t)
			b, _ := Encode(tt.cmd)
			c, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			r := s.Apply(c)
			if !errors.Is(r.Err, tt.wantErr) || (tt.wantErr == nil) != (r.Err == nil) {
				t.Fatalf("err %v, want %v", r.Err, tt.wantErr)
			}
			ch, _ := s.Chunk(1)
			if ch.Epoch != tt.wantEpoch || !slices.Equal(ch.Chain, tt.wantChain) || ch.ChunkSize != 1<<20 {
				t.Fatalf("chunk after: %+v", ch)
			}
			if r.Err == nil && (r.Chunk.Epoch != tt.wantEpoch || !slices.Equal(r.Chunk.Chain, tt.wantChain)) {
				t.Fatalf("result chunk %+v", r.Chunk)
			}
			checkRoundTrip(t, s)
		})
	}
}

// TestRestoreFillsChunkSize: a checkpoint written before Chunk.ChunkSize
// existed restores with the chunk size of the file.
func TestRestoreFillsChunkSize(t *testing.T) {
	s := chainFixture(t)
	b, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	chunks := raw["Chunks"].([]any)
	delete(chunks[0].(map[string]any), "ChunkSize")
	old, _ := json.Marshal(raw)
	r, err := RestoreCheckpoint(old)
	if err != nil {
		t.Fatal(err)
	}
	if ch, _ := r.Chunk(1); ch.ChunkSize != 1<<20 {
		t.Fatalf("chunk size after restore: %d", ch.ChunkSize)
	}
}

// TestPathsOfChunks: status names a damaged chunk's holders: a file by
// path, a volume by name.
func TestPathsOfChunks(t *testing.T) {
	s := chainFixture(t) // /f holds chunk 1
	v := mustApply(t, s, CreateVolume{Name: "vm1", Size: 1 << 20, ChunkSize: 1 << 20})
	a := mustApply(t, s, AllocateChunk{Inode: v.Info.Inode, Index: 0, Chain: []ServerID{1, 2, 3}})
	h := a.Chunk.Handle
	got := s.PathsOfChunks(map[uint64]bool{1: true, h: true})
	if !slices.Equal(got[1], []string{"/f"}) || !slices.Equal(got[h], []string{"volume vm1"}) {
		t.Fatalf("paths %v; want /f for chunk 1 and volume vm1 for chunk %d", got, h)
	}
	if len(s.PathsOfChunks(nil)) != 0 {
		t.Fatal("no handle wanted, some named")
	}
}

// TestSyncingMembers: a member that joins through a copy is syncing until
// CaughtUp at the chunk's epoch; no chain may have a syncing head, so the
// last members holding every acknowledged update cannot all leave.
func TestSyncingMembers(t *testing.T) {
	s := chainFixture(t) // chunk 1: [1 2 3] at epoch 1
	apply := func(c Command) error {
		t.Helper()
		b, _ := Encode(c)
		dc, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Apply(dc).Err
		if err := s.Check(); err != nil {
			t.Fatalf("after %T: %v", c, err)
		}
		return err
	}
	want := func(epoch uint64, chain, syncing []ServerID) {
		t.Helper()
		ch, _ := s.Chunk(1)
		if ch.Epoch != epoch || !slices.Equal(ch.Chain, chain) || !slices.Equal(ch.Syncing, syncing) {
			t.Fatalf("chunk: epoch %d chain %v syncing %v, want %d %v %v", ch.Epoch, ch.Chain, ch.Syncing, epoch, chain, syncing)
		}
		checkRoundTrip(t, s)
	}
	if err := apply(SetChain{Handle: 1, Epoch: 2, Chain: []ServerID{1, 2}}); err != nil {
		t.Fatal(err)
	}
	if err := apply(SetChain{Handle: 1, Epoch: 3, Chain: []ServerID{1, 2, 4}, Joined: []ServerID{3}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("joining a non-member: %v, want ErrInvalid", err)
	}
	if err := apply(SetChain{Handle: 1, Epoch: 3, Chain: []ServerID{1, 2, 4}, Joined: []ServerID{4}}); err != nil {
		t.Fatal(err)
	}
	want(3, []ServerID{1, 2, 4}, []ServerID{4})
	// A removal keeps the joiner syncing; one that would make it the head
	// is refused, whatever else the chain holds.
	if err := apply(SetChain{Handle: 1, Epoch: 4, Chain: []ServerID{2, 4}}); err != nil {
		t.Fatal(err)
	}
	want(4, []ServerID{2, 4}, []ServerID{4})
	for _, c := range [][]ServerID{{4}, {4, 2}} {
		if err := apply(SetChain{Handle: 1, Epoch: 5, Chain: c}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("chain %v with a syncing head: %v, want ErrInvalid", c, err)
		}
	}
	if err := apply(SetChain{Handle: 1, Epoch: 5, Chain: []ServerID{3, 2}, Joined: []ServerID{3}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a joining head: %v, want ErrInvalid", err)
	}
	want(4, []ServerID{2, 4}, []ServerID{4})
	// CaughtUp at an outdated epoch, for another server or chunk: nothing.
	if err := apply(CaughtUp{Members: []CaughtUpMember{{Handle: 1, Epoch: 3, Server: 4}, {Handle: 1, Epoch: 4, Server: 2}, {Handle: 9, Epoch: 4, Server: 4}}}); err != nil {
		t.Fatal(err)
	}
	want(4, []ServerID{2, 4}, []ServerID{4})
	if err := apply(CaughtUp{Members: []CaughtUpMember{{Handle: 1, Epoch: 4, Server: 4}}}); err != nil {
		t.Fatal(err)
	}
	want(4, []ServerID{2, 4}, nil)
	if err := apply(SetChain{Handle: 1, Epoch: 5, Chain: []ServerID{4}}); err != nil {
		t.Fatal(err)
	}
	want(5, []ServerID{4}, nil)
}

// TestServerBoundToCertificate: a server registered under a certificate
// name is registered again only under it; one registered without takes
// the first name it registers with.
func TestServerBoundToCertificate(t *testing.T) {
	s := New()
	mustApply(t, s, RegisterServer{ID: 7, Addr: "a:1"})
	mustApply(t, s, RegisterServer{ID: 7, Addr: "a:1", CertName: "cs7"})
	if r := s.Apply(RegisterServer{ID: 7, Addr: "evil:1", CertName: "mallory"}); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("re-register under another certificate: %v, want ErrExists", r.Err)
	}
	if r := s.Apply(RegisterServer{ID: 7, Addr: "evil:1"}); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("re-register without a certificate: %v, want ErrExists", r.Err)
	}
	mustApply(t, s, RegisterServer{ID: 7, Addr: "b:1", CertName: "cs7"})
	if sv, _ := s.Server(7); sv.Addr != "b:1" || sv.CertName != "cs7" {
		t.Fatalf("server after the re-registrations: %+v", sv)
	}
	checkRoundTrip(t, s)
}

// TestServerNames: a name is unique among the registered servers; a
// taker (the master found the holder dead) leaves the holder nameless;
// bad names are refused and change nothing.
func TestServerNames(t *testing.T) {
	s := New()
	mustApply(t, s, RegisterServer{ID: 1, Addr: "a:1", Name: "db7-disk1"})
	mustApply(t, s, RegisterServer{ID: 1, Addr: "a:1", Name: "db7-disk1"}) // again: its own name
	if r := s.Apply(RegisterServer{ID: 2, Addr: "b:1", Name: "db7-disk1"}); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("a second server under a taken name: %v, want ErrExists", r.Err)
	}
	if _, ok := s.Server(2); ok {
		t.Fatal("the refused server was registered")
	}
	for _, bad := range []string{"-x", "a b", "x\ny", "é", strings.Repeat("a", MaxServerNameLen+1)} {
		if r := s.Apply(RegisterServer{ID: 3, Addr: "c:1", Name: bad}); !errors.Is(r.Err, ErrInvalid) {
			t.Fatalf("name %q: %v, want ErrInvalid", bad, r.Err)
		}
	}
	mustApply(t, s, RegisterServer{ID: 2, Addr: "b:1", Name: "db7-disk1", TakeName: true})
	if a, _ := s.Server(1); a.Name != "" {
		t.Fatalf("the old holder kept its name: %+v", a)
	}
	if b, _ := s.Server(2); b.Name != "db7-disk1" {
		t.Fatalf("the taker: %+v", b)
	}
	checkRoundTrip(t, s)
}
