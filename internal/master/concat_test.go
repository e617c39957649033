package master

import (
	"context"
	"errors"
	"testing"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/meta"
)

// TestConcat: the RPC moves the sources' (holey) extents into dst and
// removes them; a concat the rules refuse answers INVALID and leaves
// every file; and the checks a user's call must pass: write permission
// on dst and on the directories of dst and the sources, read permission
// on the sources.
func TestConcat(t *testing.T) {
	m, mc := startMaster(t, t.TempDir(), newClock())
	ctx := context.Background()
	s := &server{m: m}
	file := func(p string, mode uint32, size int64) uint64 {
		t.Helper()
		r, err := mc.Create(ctx, &api.CreateRequest{Path: p, Mode: mode, ChunkSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mc.SetSize(ctx, &api.SetSizeRequest{Inode: r.Info.Inode, Size: size, Mode: api.SetSizeMode_EXTEND}); err != nil {
			t.Fatal(err)
		}
		return r.Info.Inode
	}
	if _, err := mc.Mkdir(ctx, &api.MkdirRequest{Path: "/u", Mode: 0o777}); err != nil {
		t.Fatal(err)
	}
	file("/u/dst", 0o666, 0)
	file("/u/p1", 0o644, 2<<20)
	file("/u/p2", 0o644, 10)
	r, err := s.Concat(ctx, &api.ConcatRequest{Dst: "/u/dst", Srcs: []string{"/u/p1", "/u/p2"}})
	if err != nil || r.Info.Size != 2<<20+10 {
		t.Fatalf("concat: %v, %v", r, err)
	}
	for _, p := range []string{"/u/p1", "/u/p2"} {
		_, err := mc.Lookup(ctx, &api.LookupRequest{Path: p})
		wantCode(t, "a source after the concat", err, api.ErrorCode_NOT_FOUND)
	}

	file("/u/p3", 0o644, 1<<20)
	_, err = s.Concat(ctx, &api.ConcatRequest{Dst: "/u/dst", Srcs: []string{"/u/p3"}})
	wantCode(t, "concat onto a dst that ends inside a chunk", err, api.ErrorCode_INVALID)

	// A source named with the inode the caller found there, and with
	// another (a part replaced since the caller listed it).
	p4 := file("/u/p4", 0o644, 1<<20)
	file("/u/d4", 0o666, 0)
	_, err = s.Concat(ctx, &api.ConcatRequest{Dst: "/u/d4", Srcs: []string{"/u/p4"}, SrcInodes: []uint64{p4 + 1}})
	wantCode(t, "concat of a source that is not the inode named", err, api.ErrorCode_INVALID)
	if r, err := s.Concat(ctx, &api.ConcatRequest{Dst: "/u/d4", Srcs: []string{"/u/p4"}, SrcInodes: []uint64{p4}}); err != nil || r.Info.Size != 1<<20 {
		t.Fatalf("concat of the inode named: %v, %v", r, err)
	}
	if l, err := mc.Lookup(ctx, &api.LookupRequest{Path: "/u/p3"}); err != nil || l.Info.Size != 1<<20 {
		t.Fatalf("the refused source: %v, %v", l, err)
	}

	// Permissions, as the interceptor checks them for alice.
	alice := meta.User{UID: 1000, GID: 1000}
	if _, err := mc.Mkdir(ctx, &api.MkdirRequest{Path: "/ro", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	file("/ro/x", 0o666, 0)
	file("/u/secret", 0o600, 0)
	file("/u/d2", 0o666, 0)
	file("/u/d3", 0o644, 0)
	cases := []struct {
		name string
		req  *api.ConcatRequest
		ok   bool
	}{
		{"her directory, files she may read and write", &api.ConcatRequest{Dst: "/u/d2", Srcs: []string{"/u/p3"}}, true},
		{"a source in a directory she may not write", &api.ConcatRequest{Dst: "/u/d2", Srcs: []string{"/ro/x"}}, false},
		{"dst in a directory she may not write", &api.ConcatRequest{Dst: "/ro/x", Srcs: []string{"/u/p3"}}, false},
		{"a source she may not read", &api.ConcatRequest{Dst: "/u/d2", Srcs: []string{"/u/secret"}}, false},
		{"dst she may not write", &api.ConcatRequest{Dst: "/u/d3", Srcs: []string{"/u/p3"}}, false},
	}
	for _, tc := range cases {
		checks := checksFor(api.Master_Concat_FullMethodName, tc.req)
		var err error
		m.fsm.view(func(st *meta.State) { err = st.Allow(alice, checks) })
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, meta.ErrPermission)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
