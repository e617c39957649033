package master

import (
	"context"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/meta"
)

// TestGuardedCommandsCheckAtCommit: a user's call checked by the leader
// proposes its command with the checks it passed, and the command is
// refused where it lands in the log if a command that committed in
// between took the right away (a chmod that returned first wins). It
// replays the interleaving the interceptor cannot prevent: the check,
// then root's chmod, then the call's commit; by path, with a request id
// (the Request wrapper), and by inode (the FUSE calls).
func TestGuardedCommandsCheckAtCommit(t *testing.T) {
	m, mc := startMaster(t, t.TempDir(), newClock())
	fs := fsClient(t, m)
	ctx := context.Background()
	s := &server{m: m}
	alice := meta.User{UID: 1000, GID: 1000}

	mk, err := mc.Mkdir(ctx, &api.MkdirRequest{Path: "/shared", Mode: 0o777})
	if err != nil {
		t.Fatal(err)
	}
	shared := mk.Info.Inode
	chmod := func(mode uint32) {
		t.Helper()
		if _, err := fs.Setattr(ctx, &api.SetattrRequest{Inode: shared, Set: uint32(api.SetattrField_SETATTR_MODE), Mode: mode}); err != nil {
			t.Fatal(err)
		}
	}
	// as is the call's context once the interceptor has checked it.
	as := func(method string, req any, seq int) context.Context {
		t.Helper()
		checks := checksFor(method, req)
		if len(checks) == 0 {
			t.Fatalf("%s: no checks", method)
		}
		var err error
		m.fsm.view(func(st *meta.State) { err = st.Allow(alice, checks) })
		if err != nil {
			t.Fatalf("%s: the leader's check: %v", method, err)
		}
		c := context.WithValue(ctx, guardKey{}, &guard{user: alice, checks: checks})
		if seq > 0 {
			c = metadata.NewIncomingContext(c, metadata.Pairs(MDClientID, "77", MDRequestID, string(rune('0'+seq))))
		}
		return c
	}

	mkdir := &api.MkdirRequest{Path: "/shared/a", Mode: 0o755}
	cctx := as(api.Master_Mkdir_FullMethodName, mkdir, 1)
	chmod(0o755)
	_, err = s.Mkdir(cctx, mkdir)
	wantCode(t, "Mkdir after the chmod", err, api.ErrorCode_PERMISSION_DENIED)
	_, err = mc.Lookup(ctx, &api.LookupRequest{Path: "/shared/a"})
	wantCode(t, "the refused directory", err, api.ErrorCode_NOT_FOUND)

	create := &api.CreateAtRequest{Parent: shared, Name: "f", Mode: 0o644, Uid: 1000, Gid: 1000}
	chmod(0o777)
	cctx = as(api.FS_Create_FullMethodName, create, 0)
	chmod(0o755)
	_, err = (&fsServer{s: s}).Create(cctx, create)
	wantCode(t, "Create after the chmod", err, api.ErrorCode_PERMISSION_DENIED)
	_, err = fs.LookupChild(ctx, &api.LookupChildRequest{Parent: shared, Name: "f"})
	wantCode(t, "the refused file", err, api.ErrorCode_NOT_FOUND)

	// With the right in place the same calls apply, owned by her.
	chmod(0o777)
	mkdir.Path = "/shared/b"
	r, err := s.Mkdir(as(api.Master_Mkdir_FullMethodName, mkdir, 2), mkdir)
	if err != nil || r.Info.Uid != 0 {
		// ownNew (the interceptor) sets the owner; here the request
		// carries none, so root's 0 stays.
		t.Fatalf("Mkdir with the right: %v, %v", r, err)
	}
	if _, err := (&fsServer{s: s}).Create(as(api.FS_Create_FullMethodName, create, 0), create); err != nil {
		t.Fatalf("Create with the right: %v", err)
	}
}
