package meta

import (
	"bytes"
	"errors"
	"testing"
)

func TestRequestDedupe(t *testing.T) {
	s := New()
	req := func(seq uint64, at int64, c Command) Result {
		t.Helper()
		return mustDecodeApply(t, s, Request{Client: 7, Seq: seq, Time: at, Cmd: c})
	}
	r1 := req(1, 1, Create{Path: "/a", Mode: 0o644})
	if r1.Err != nil {
		t.Fatal(r1.Err)
	}
	// The retry returns the first result; a plain second create fails.
	if r := req(1, 2, Create{Path: "/a", Mode: 0o644}); r.Err != nil || r.Info.Inode != r1.Info.Inode {
		t.Fatalf("retry: %+v", r)
	}
	if r := req(2, 3, Create{Path: "/a", Mode: 0o644}); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("new request: %v", r.Err)
	}
	// A recorded error survives a checkpoint with its sentinel.
	b, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if s, err = RestoreCheckpoint(b); err != nil {
		t.Fatal(err)
	}
	if r := req(2, 4, Rename{Src: "/a", Dst: "/b"}); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("restored retry: %v", r.Err)
	}
	if r := req(3, 5, Rename{Src: "/a", Dst: "/b"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := req(3, 6, Rename{Src: "/a", Dst: "/b"}); r.Err != nil {
		t.Fatalf("renamed twice: %v", r.Err)
	}
	// Bounded: old results are evicted, their retries expire.
	for i := uint64(10); i < 10+MaxSessionResults+5; i++ {
		req(i, 7, Mkdir{Path: "/d", Parents: true})
	}
	if r := req(3, 8, Rename{Src: "/a", Dst: "/b"}); !errors.Is(r.Err, ErrRequestExpired) {
		t.Fatalf("evicted: %v", r.Err)
	}
	// Idle clients are dropped by command time, deterministically.
	s.Apply(Request{Client: 9, Seq: 1, Time: 9 + SessionIdle + 1, Cmd: Mkdir{Path: "/e", Parents: true}})
	if s.Sessions() != 1 {
		t.Fatalf("sessions after idle: %d", s.Sessions())
	}
}

func TestSetMaster(t *testing.T) {
	s := New()
	s.Apply(SetMaster{ID: "m1", Addr: "a:1"})
	s.Apply(SetMaster{ID: "m2", Addr: "b:1"})
	s.Apply(SetMaster{ID: "m2"})
	b, _ := s.Checkpoint()
	r, err := RestoreCheckpoint(b)
	if err != nil || r.MasterAddr("m1") != "a:1" || r.MasterAddr("m2") != "" {
		t.Fatalf("restored masters %v %v", r.Masters(), err)
	}
	// An emptied address book encodes as none (fuzz-found: "HA":{}).
	e := New()
	e.Apply(SetMaster{ID: "m1", Addr: "a:1"})
	e.Apply(SetMaster{ID: "m1"})
	if b1, _ := e.Checkpoint(); string(b1) != string(mustSnap(t, New())) {
		t.Fatalf("empty masters checkpoint %s", b1)
	}
	if res := s.Apply(SetMaster{}); !errors.Is(res.Err, ErrInvalid) {
		t.Fatalf("empty id: %v", res.Err)
	}
}

func mustSnap(t *testing.T, s *State) []byte {
	t.Helper()
	b, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCapabilityKeys(t *testing.T) {
	s := New()
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, CapabilityKeySize) }
	for _, c := range []struct {
		cmd  AddCapabilityKey
		want error
	}{
		{AddCapabilityKey{ID: 1, Secret: key(1), Time: 10}, nil},
		{AddCapabilityKey{ID: 2, Secret: key(2)[:16], Time: 11}, ErrInvalid},
		{AddCapabilityKey{ID: 1, Secret: key(2), Time: 11}, ErrExists},
		{AddCapabilityKey{ID: 2, Secret: key(2), Time: 12}, nil},
		{AddCapabilityKey{ID: 5, Secret: key(5), Time: 13}, nil},
	} {
		r := mustDecodeApply(t, s, c.cmd)
		if !errors.Is(r.Err, c.want) || (c.want == nil) != (r.Err == nil) {
			t.Fatalf("%+v: %v, want %v", c.cmd, r.Err, c.want)
		}
	}
	got := s.CapabilityKeys()
	if len(got) != MaxCapabilityKeys || got[0].ID != 2 || got[1].ID != 5 || !bytes.Equal(got[1].Secret, key(5)) || got[1].Time != 13 {
		t.Fatalf("keys %+v, want 2 and 5", got)
	}
	if k, ok := s.SigningKey(13+99, 100); !ok || k.ID != 2 {
		t.Fatalf("signing key before key 5 warmed up: %d %v, want 2", k.ID, ok)
	}
	if k, ok := s.SigningKey(13+100, 100); !ok || k.ID != 5 {
		t.Fatalf("signing key once key 5 warmed up: %d %v, want 5", k.ID, ok)
	}
	if _, ok := New().SigningKey(1, 100); ok {
		t.Fatal("a signing key without keys")
	}
	got[1].Secret[0] = 9 // a copy
	if s.CapabilityKeys()[1].Secret[0] != 5 {
		t.Fatal("CapabilityKeys shares its secrets with the state")
	}
	checkRoundTrip(t, s)
}

// mustDecodeApply applies c after an encode and decode, as Raft does.
func mustDecodeApply(t *testing.T, s *State, c Command) Result {
	t.Helper()
	return s.Apply(reencode(t, c))
}

// reencode is c encoded and decoded.
func reencode(t *testing.T, c Command) Command {
	t.Helper()
	b, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
