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
	const sess, other = 7, 9
	chunks := len(s.Chunks())
	// A second file, replaced later by a rename over it.
	q := applyOK(t, s, CreateAt{Parent: d.Inode, Name: "q", Mode: 0o600, Time: 13}).Info

	exists := func(ino uint64) bool { _, err := s.Stat(ino); return err == nil }
	named := func(name string) bool { _, err := s.LookupChild(d.Inode, name); return err == nil }
	orphans := func(want ...uint64) func() string {
		return func() string {
			if got := s.Orphans(sess); !slices.Equal(got, want) {
				return "orphans of the session " + fmtIDs(got) + ", want " + fmtIDs(want)
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
		{"open the session", RenewMount{Session: sess, TTL: 100, Time: 1000}, nil, orphans()},
		{"unlink with Keep of an unknown session deletes", Unlink{Parent: d.Inode, Name: "p", Keep: other, Time: 1001}, nil,
			func() string {
				if exists(p.Inode) {
					return "p still exists"
				}
				return ""
			}},
		{"unlink of a name that is not the last one keeps the file named", Unlink{Parent: d.Inode, Name: "f", Keep: sess, Time: 1002}, nil,
			func() string {
				if fi, err := s.Stat(f.Inode); err != nil || fi.Nlink != 1 || !named("h") {
					return "f lost with its first name"
				}
				return orphans()()
			}},
		{"unlink of the last name makes an orphan", Unlink{Parent: d.Inode, Name: "h", Keep: sess, Time: 1003}, nil,
			func() string {
				fi, err := s.Stat(f.Inode)
				if err != nil || fi.Nlink != 0 || fi.CTime != 1003 || named("h") {
					return "orphan not kept nameless"
				}
				if len(s.Chunks()) != chunks {
					return "the orphan lost its chunk"
				}
				return orphans(f.Inode)()
			}},
		{"an orphan is resized by inode", SetSize{Inode: f.Inode, Size: 5 << 20, Mode: SizeExact, Time: 1004}, nil,
			func() string {
				if fi, _ := s.Stat(f.Inode); fi.Size != 5<<20 {
					return "size not set"
				}
				return ""
			}},
		{"an orphan gets chunks by inode", AllocateChunk{Inode: f.Inode, Index: 1, Chain: []ServerID{1, 2, 3}, Time: 1005}, nil, nil},
		{"rename over a file held open makes an orphan",
			RenameAt{SrcParent: d.Inode, SrcName: "s", DstParent: d.Inode, DstName: "q", Keep: sess, Time: 1006}, nil,
			orphans(f.Inode, q.Inode)},
		{"release by another session does nothing", ReleaseOrphan{Session: other, Inode: f.Inode, Time: 1007}, nil,
			orphans(f.Inode, q.Inode)},
		{"release at the last close deletes the orphan and its chunks", ReleaseOrphan{Session: sess, Inode: f.Inode, Time: 1008}, nil,
			func() string {
				if exists(f.Inode) || len(s.Chunks()) != chunks-1 {
					return "orphan or its chunks left"
				}
				return orphans(q.Inode)()
			}},
		{"not expired at its renewal + ttl - 1", ExpireMounts{Time: 1099, LeaderSince: 0}, nil, orphans(q.Inode)},
		{"a new leader waits a ttl before expiring", ExpireMounts{Time: 1120, LeaderSince: 1050}, nil, orphans(q.Inode)},
		{"renewing an expired, unreclaimed session keeps its orphans", RenewMount{Session: sess, TTL: 100, Time: 1130}, nil, orphans(q.Inode)},
		{"expiry after the renewal + ttl reclaims the orphans", ExpireMounts{Time: 1230, LeaderSince: 1050}, nil,
			func() string {
				if exists(q.Inode) {
					return "q leaked"
				}
				return orphans()()
			}},
		{"renewing a reclaimed session starts it afresh", RenewMount{Session: sess, TTL: 100, Time: 1300}, nil, orphans()},
		{"a file of a session", CreateAt{Parent: d.Inode, Name: "r", Mode: 0o600, Time: 1301}, nil, nil},
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
	rr, err := s.LookupChild(d.Inode, "r")
	if err != nil {
		t.Fatal(err)
	}
	applyOK(t, s, Unlink{Parent: d.Inode, Name: "r", Keep: sess, Time: 1302})
	if got := s.Orphans(sess); !slices.Equal(got, []uint64{rr.Inode}) {
		t.Fatalf("orphans %v", got)
	}
	applyOK(t, s, EndMount{Session: sess, Time: 1303})
	if _, err := s.Stat(rr.Inode); err == nil || s.Orphans(sess) != nil {
		t.Fatal("a clean unmount left its orphan")
	}
}

func TestOrphanCommandsEncode(t *testing.T) {
	for _, c := range []Command{
		RenewMount{Session: 1, TTL: 2, Time: 3}, EndMount{Session: 1, Time: 2},
		ReleaseOrphan{Session: 1, Inode: 2, Time: 3}, ExpireMounts{Time: 1, LeaderSince: 2},
		Unlink{Parent: 1, Name: "x", Keep: 4, Time: 5},
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

func fmtIDs(ids []uint64) string { return fmt.Sprint(ids) }
