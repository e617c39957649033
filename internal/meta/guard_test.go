package meta

import (
	"bytes"
	"errors"
	"testing"
)

// TestAsChecksWhereItApplies: a command made by a user applies only if
// the user passes its checks in the state it meets in the log. A chmod
// that commits between the leader's check and the command wins; the
// refused command changes nothing; a retried Request answers what the
// first attempt got (a refusal included, across a checkpoint), without
// checking again.
func TestAsChecksWhereItApplies(t *testing.T) {
	s := New()
	alice := User{UID: 1000, GID: 1000}
	shared := applyOK(t, s, Mkdir{Path: "/shared", Mode: 0o777, Time: 1}).Info
	mkdir := As{User: alice, Checks: []Check{{Op: CheckOpEntryPath, Path: "/shared/a"}},
		Cmd: Mkdir{Path: "/shared/a", Mode: 0o755, Uid: 1000, Gid: 1000, Time: 2}}

	// The leader's check passes in the state it sees...
	if err := s.Allow(mkdir.User, mkdir.Checks); err != nil {
		t.Fatalf("allowed before the chmod: %v", err)
	}
	// ... then root's chmod commits first.
	applyOK(t, s, Setattr{Inode: shared.Inode, Set: SetMode, Mode: 0o755, Time: 3})
	before, _ := s.Checkpoint()
	r := mustDecodeApply(t, s, mkdir)
	if !errors.Is(r.Err, ErrPermission) {
		t.Fatalf("mkdir after the chmod: %v, want ErrPermission", r.Err)
	}
	if after, _ := s.Checkpoint(); !bytes.Equal(before, after) {
		t.Fatal("a refused command changed the state")
	}
	if r := mustDecodeApply(t, s, Request{Client: 7, Seq: 1, Time: 4, Cmd: mkdir}); !errors.Is(r.Err, ErrPermission) {
		t.Fatalf("mkdir in a Request after the chmod: %v, want ErrPermission", r.Err)
	}

	// The retry of the refused request answers the refusal, also after a
	// checkpoint and once the right is back.
	b, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if s, err = RestoreCheckpoint(b); err != nil {
		t.Fatal(err)
	}
	applyOK(t, s, Setattr{Inode: shared.Inode, Set: SetMode, Mode: 0o777, Time: 5})
	if r := mustDecodeApply(t, s, Request{Client: 7, Seq: 1, Time: 6, Cmd: mkdir}); !errors.Is(r.Err, ErrPermission) {
		t.Fatalf("retry: %v, want the recorded ErrPermission", r.Err)
	}
	// A new request is checked afresh and applies; its retry answers the
	// success even once the right is gone again.
	r = mustDecodeApply(t, s, Request{Client: 7, Seq: 2, Time: 7, Cmd: mkdir})
	if r.Err != nil || r.Info.Uid != 1000 {
		t.Fatalf("mkdir with the right back: %+v", r)
	}
	applyOK(t, s, Setattr{Inode: shared.Inode, Set: SetMode, Mode: 0o755, Time: 8})
	if r2 := mustDecodeApply(t, s, Request{Client: 7, Seq: 2, Time: 9, Cmd: mkdir}); r2.Err != nil || r2.Info.Inode != r.Info.Inode {
		t.Fatalf("retry of the applied mkdir: %+v", r2)
	}

	// Every rule, refused and allowed, through the log.
	secret := applyOK(t, s, Create{Path: "/shared/secret", Mode: 0o600, Time: 10}).Info
	bobs := applyOK(t, s, Create{Path: "/shared/bobs", Mode: 0o644, Uid: 1001, Gid: 1001, Time: 10}).Info
	for _, c := range []struct {
		name  string
		check Check
		ok    bool
	}{
		{"read root's 0600", Check{Op: CheckOpPath, Path: "/shared/secret", Want: MayRead}, false},
		{"reach it", Check{Op: CheckOpPath, Path: "/shared/secret"}, true},
		{"write it by inode", Check{Op: CheckOpInode, Inode: secret.Inode, Want: MayWrite}, false},
		{"reach it by inode", Check{Op: CheckOpReach, Inode: secret.Inode}, true},
		{"open it", Check{Op: CheckOpOpen, Inode: secret.Inode}, false},
		{"open bob's 0644", Check{Op: CheckOpOpen, Inode: bobs.Inode}, true},
		{"add to /shared (0755 root)", Check{Op: CheckOpEntry, Inode: shared.Inode, Name: "x"}, false},
		{"add to her own dir", Check{Op: CheckOpEntryPath, Path: "/shared/a/x"}, true},
		{"chmod root's", Check{Op: CheckOpOwner, Inode: secret.Inode}, false},
		{"chmod her own", Check{Op: CheckOpOwner, Inode: r.Info.Inode}, true},
		{"chown bob's to her", Check{Op: CheckOpChown, Inode: bobs.Inode, SetUID: true, UID: 1000}, false},
		{"chgrp her own to hers", Check{Op: CheckOpChown, Inode: r.Info.Inode, SetGID: true, GID: 1000}, true},
		{"chgrp her own to 50", Check{Op: CheckOpChown, Inode: r.Info.Inode, SetGID: true, GID: 50}, false},
		{"rm -r her dir", Check{Op: CheckOpTree, Path: "/shared/a"}, true},
		{"root's only", Check{Op: CheckOpRoot, Name: "CreateVolume"}, false},
	} {
		res := mustDecodeApply(t, s, As{User: alice, Checks: []Check{c.check}, Cmd: Mkdir{Path: "/shared/a/p", Parents: true, Time: 11}})
		if got := res.Err == nil; got != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, res.Err, c.ok)
		}
		if res.Err != nil && !errors.Is(res.Err, ErrPermission) {
			t.Errorf("%s: %v is not ErrPermission", c.name, res.Err)
		}
		if !c.ok {
			if _, err := s.Lookup("/shared/a/p"); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: refused, but /shared/a/p: %v", c.name, err)
			}
		}
		mustDecodeApply(t, s, Remove{Path: "/shared/a/p", Time: 12})
	}
	if r := s.Apply(As{User: alice, Checks: []Check{{Op: "bogus"}}, Cmd: Mkdir{Path: "/z"}}); !errors.Is(r.Err, ErrInvalid) {
		t.Errorf("an unknown check: %v, want ErrInvalid", r.Err)
	}
	if _, err := Encode(As{User: alice, Cmd: As{User: alice, Cmd: Mkdir{Path: "/z"}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an As in an As encodes: %v", err)
	}
}
