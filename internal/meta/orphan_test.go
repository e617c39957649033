package meta

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestOrphans walks the orphan rules of orphan.go as a transcript: each
// step applies a command and states what must hold after it.
func TestOrphans(t *testing.T) {
	s, d, _, f, p := posixFixture(t)
	const a, b = 7, 9 // two mounts
	chunks := len(s.Chunks())
	// A second file, replaced later by a rename over it.
	q := applyOK(t, s, CreateAt{Parent: d.Inode, Name: "q", Mode: 0o600, Time: 13}).Info

	exists := func(ino uint64) bool { _, err := s.Stat(ino); return err == nil }
	named := func(name string) bool { _, err := s.LookupChild(d.Inode, name); return err == nil }
	orphans := func(want ...uint64) func() string {
		return func() string {
			if got := s.Orphans(); !slices.Equal(got, want) {
				return "orphans " + fmt.Sprint(got) + ", want " + fmt.Sprint(want)
			}
			return ""
		}
	}

	steps := []struct {
		name  string
		cmd   Command
		err   error
		check func() string
	}{
		{"a session needs an id and a ttl", RenewMount{Session: 0, TTL: 100, Time: 1000}, ErrInvalid, nil},
		{"hold needs a session", Hold{Session: a, Inode: f.Inode, Time: 1000}, ErrNotFound, nil},
		{"open session a", RenewMount{Session: a, TTL: 100, Time: 1000}, nil, orphans()},
		{"open session b", RenewMount{Session: b, TTL: 100, Time: 1000}, nil, nil},
		{"hold needs a file", Hold{Session: a, Inode: d.Inode, Time: 1000}, ErrIsDir, nil},
		{"a file nobody holds is deleted with its last name", Unlink{Parent: d.Inode, Name: "p", Time: 1001}, nil,
			func() string {
				if exists(p.Inode) {
					return "p still exists"
				}
				return orphans()()
			}},
		{"a holds f", Hold{Session: a, Inode: f.Inode, Time: 1002}, nil, nil},
		{"a holds f once, however often", Hold{Session: a, Inode: f.Inode, Time: 1002}, nil, nil},
		{"b holds f", Hold{Session: b, Inode: f.Inode, Time: 1002}, nil, nil},
		{"unlink of a name that is not the last keeps the file named", Unlink{Parent: d.Inode, Name: "f", Time: 1003}, nil,
			func() string {
				if fi, err := s.Stat(f.Inode); err != nil || fi.Nlink != 1 || !named("h") {
					return "f lost with its first name"
				}
				return orphans()()
			}},
		{"unlink of the last name of a held file makes an orphan", Unlink{Parent: d.Inode, Name: "h", Time: 1004}, nil,
			func() string {
				fi, err := s.Stat(f.Inode)
				if err != nil || fi.Nlink != 0 || named("h") {
					return "orphan not kept nameless"
				}
				if len(s.Chunks()) != chunks {
					return "the orphan lost its chunk"
				}
				return orphans(f.Inode)()
			}},
		{"an orphan has no name to link (ENOENT, as Linux)", Link{Inode: f.Inode, Parent: d.Inode, Name: "back", Time: 1004}, ErrNotFound, nil},
		{"a session's ttl is bounded", RenewMount{Session: b, TTL: MaxSessionTTL + 1, Time: 1004}, ErrInvalid, nil},
		{"an orphan is resized by inode", SetSize{Inode: f.Inode, Size: 5 << 20, Mode: SizeExact, Time: 1005}, nil,
			func() string {
				if fi, _ := s.Stat(f.Inode); fi.Size != 5<<20 {
					return "size not set"
				}
				return ""
			}},
		{"an orphan gets chunks by inode", AllocateChunk{Inode: f.Inode, Index: 1, Chain: []ServerID{1, 2, 3}, Time: 1006}, nil, nil},
		{"b holds q", Hold{Session: b, Inode: q.Inode, Time: 1007}, nil, nil},
		{"rename over a held file makes an orphan",
			RenameAt{SrcParent: d.Inode, SrcName: "s", DstParent: d.Inode, DstName: "q", Time: 1008}, nil,
			orphans(f.Inode, q.Inode)},
		{"unhold by a session that does not hold it does nothing", Unhold{Session: a, Inode: q.Inode, Time: 1009}, nil,
			orphans(f.Inode, q.Inode)},
		{"f stays while b still holds it", Unhold{Session: a, Inode: f.Inode, Time: 1010}, nil,
			orphans(f.Inode, q.Inode)},
		{"the last unhold deletes the orphan and its chunks", Unhold{Session: b, Inode: f.Inode, Time: 1011}, nil,
			func() string {
				if exists(f.Inode) || len(s.Chunks()) != chunks-1 {
					return "orphan or its chunks left"
				}
				return orphans(q.Inode)()
			}},
		{"not expired at its renewal + ttl - 1", ExpireMounts{Time: 1099, LeaderSince: 0}, nil, orphans(q.Inode)},
		{"a new leader waits a ttl before expiring", ExpireMounts{Time: 1120, LeaderSince: 1050}, nil, orphans(q.Inode)},
		{"renewing an expired, not ended session keeps its holds", RenewMount{Session: b, TTL: 100, Time: 1130}, nil, orphans(q.Inode)},
		{"a's expiry ends a (it holds nothing)", ExpireMounts{Time: 1160, LeaderSince: 1050}, nil,
			func() string {
				if s.Held(b) == nil {
					return "b ended"
				}
				return orphans(q.Inode)()
			}},
		{"expiry after b's renewal + ttl reclaims its orphans", ExpireMounts{Time: 1230, LeaderSince: 1050}, nil,
			func() string {
				if exists(q.Inode) {
					return "q leaked"
				}
				return orphans()()
			}},
		{"renewing an ended session starts it afresh", RenewMount{Session: a, TTL: 100, Time: 1300}, nil,
			func() string {
				if s.Held(a) != nil {
					return "a still holds files"
				}
				return ""
			}},
		{"a file in a directory", CreateAt{Parent: d.Inode, Name: "r", Mode: 0o600, Time: 1301}, nil, nil},
	}
	for _, st := range steps {
		r := s.Apply(st.cmd)
		if !errors.Is(r.Err, st.err) || (st.err == nil) != (r.Err == nil) {
			t.Fatalf("%s: %#v: error %v, want %v", st.name, st.cmd, r.Err, st.err)
		}
		checkRoundTrip(t, s)
		if st.check != nil {
			if msg := st.check(); msg != "" {
				t.Fatalf("%s: %s", st.name, msg)
			}
		}
	}
	// A held file in a directory removed recursively (path API) is kept
	// too, and a clean unmount lets go of it.
	rr, err := s.LookupChild(d.Inode, "r")
	if err != nil {
		t.Fatal(err)
	}
	applyOK(t, s, Hold{Session: a, Inode: rr.Inode, Time: 1302})
	applyOK(t, s, Remove{Path: "/d", Recursive: true, Time: 1303})
	if got := s.Orphans(); !slices.Equal(got, []uint64{rr.Inode}) {
		t.Fatalf("orphans %v", got)
	}
	applyOK(t, s, EndMount{Session: a, Time: 1304})
	if _, err := s.Stat(rr.Inode); err == nil || s.Orphans() != nil || s.Held(a) != nil {
		t.Fatal("a clean unmount left its orphan")
	}
}

func TestOrphanCommandsEncode(t *testing.T) {
	for _, c := range []Command{
		RenewMount{Session: 1, TTL: 2, Time: 3}, EndMount{Session: 1, Time: 2},
		Hold{Session: 1, Inode: 2, Time: 3}, Unhold{Session: 1, Inode: 2, Time: 3},
		RenewMount{Session: 1, TTL: 2, Time: 3, Owner: "client:a"}, EndMount{Session: 1, Time: 2, Owner: "client:a"},
		Hold{Session: 1, Inode: 2, Time: 3, Owner: "client:a"}, Unhold{Session: 1, Inode: 2, Time: 3, Owner: "client:a"},
		ExpireMounts{Time: 1, LeaderSince: 2},
	} {
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil || got != c {
			t.Fatalf("%#v decoded as %#v, %v", c, got, err)
		}
	}
}

// TestHoldOfVolumeRefused: a volume is not a mount's to hold (no mount can
// open it by a name); a hold of one outlived RemoveVolume as a hold of a
// missing inode, and no checkpoint of that state restored.
func TestHoldOfVolumeRefused(t *testing.T) {
	s := New()
	v := applyOK(t, s, CreateVolume{Name: "v", Size: 1 << 20, Time: 1}).Info
	applyOK(t, s, RenewMount{Session: 1, TTL: 10, Time: 1})
	if r := s.Apply(Hold{Session: 1, Inode: v.Inode, Time: 2}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("hold of a volume: %v, want ErrInvalid", r.Err)
	}
	applyOK(t, s, RemoveVolume{Name: "v", Time: 3})
}

// TestSessionsAreTheirOwners: a mount session is the client's that opened
// it; another client can neither renew it, end it, hold with it nor let
// go of what it holds (which would delete an open file with no name
// under the mount), and its refused commands change nothing, in the
// state or in a checkpoint of it.
func TestSessionsAreTheirOwners(t *testing.T) {
	s, d, _, f, _ := posixFixture(t)
	const a, evil = "client:alice", "client:mallory"
	applyOK(t, s, RenewMount{Session: 5, TTL: 100, Time: 1000, Owner: a})
	applyOK(t, s, Hold{Session: 5, Inode: f.Inode, Time: 1001, Owner: a})
	applyOK(t, s, Unlink{Parent: d.Inode, Name: "f", Time: 1002})
	applyOK(t, s, Unlink{Parent: d.Inode, Name: "h", Time: 1002})
	if got := s.Orphans(); !slices.Equal(got, []uint64{f.Inode}) {
		t.Fatalf("orphans %v, want [%d]", got, f.Inode)
	}
	before := checkpointOf(t, s)
	for _, c := range []Command{
		EndMount{Session: 5, Time: 1003, Owner: evil},
		Unhold{Session: 5, Inode: f.Inode, Time: 1003, Owner: evil},
		RenewMount{Session: 5, TTL: 1, Time: 1003, Owner: evil},
		Hold{Session: 5, Inode: f.Inode, Time: 1003, Owner: evil},
		EndMount{Session: 5, Time: 1003}, // no owner: an insecure caller
	} {
		if r := s.Apply(c); !errors.Is(r.Err, ErrPermission) {
			t.Errorf("%#v: %v, want ErrPermission", c, r.Err)
		}
	}
	if after := checkpointOf(t, s); after != before {
		t.Fatalf("refused session commands changed the state:\n%s\n%s", before, after)
	}
	// A session restored from a checkpoint keeps its owner.
	r := restoreOf(t, before)
	if res := r.Apply(EndMount{Session: 5, Time: 1003, Owner: evil}); !errors.Is(res.Err, ErrPermission) {
		t.Fatalf("restored: another's EndMount: %v", res.Err)
	}
	// Its owner lets go: the orphan goes.
	applyOK(t, s, Unhold{Session: 5, Inode: f.Inode, Time: 1004, Owner: a})
	if got := s.Orphans(); len(got) != 0 {
		t.Fatalf("orphans %v after the owner let go", got)
	}
	applyOK(t, s, EndMount{Session: 5, Time: 1005, Owner: a})
	// A session without an owner (an insecure cluster's, or opened before
	// sessions had owners) is taken by the first renewal naming one.
	applyOK(t, s, RenewMount{Session: 6, TTL: 100, Time: 1006})
	applyOK(t, s, RenewMount{Session: 6, TTL: 100, Time: 1007, Owner: a})
	if res := s.Apply(RenewMount{Session: 6, TTL: 100, Time: 1008, Owner: evil}); !errors.Is(res.Err, ErrPermission) {
		t.Fatalf("a taken session renewed by another: %v", res.Err)
	}
}

func checkpointOf(t *testing.T, s *State) string {
	t.Helper()
	b, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func restoreOf(t *testing.T, ckpt string) *State {
	t.Helper()
	s, err := RestoreCheckpoint([]byte(ckpt))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
