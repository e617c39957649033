package master

import (
	"context"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/meta"
)

// Concat proposes meta.Concat: dst gains the chunks of srcs, which go.
// The chunks that only a source named moved to a new epoch in the same
// command (a writer of the removed source must not write into dst): the
// leader tells their members before it answers, as after a snapshot. A
// retry answered from its request record fences nothing again: the
// first attempt did, or the members learn the epoch from heartbeats.
func (s *server) Concat(ctx context.Context, req *api.ConcatRequest) (*api.ConcatResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	r, err := s.proposeOnce(ctx, meta.Concat{Dst: req.Dst, Srcs: req.Srcs, Inodes: req.SrcInodes, Time: s.now()})
	if err != nil {
		return nil, err
	}
	if err := s.m.fence(ctx, r.Fenced); err != nil {
		return nil, err
	}
	return &api.ConcatResponse{Info: fileInfo(r.Info)}, nil
}

// concatChecks: write permission on dst and on the directory of dst and
// of every source (whose entry goes), read permission on every source
// (its data becomes dst's, which the caller may read).
func concatChecks(r *api.ConcatRequest) []meta.Check {
	checks := []meta.Check{
		{Op: meta.CheckOpEntryPath, Path: r.Dst},
		{Op: meta.CheckOpPath, Path: r.Dst, Want: meta.MayWrite},
	}
	for _, p := range r.Srcs {
		checks = append(checks,
			meta.Check{Op: meta.CheckOpEntryPath, Path: p, Remove: true},
			meta.Check{Op: meta.CheckOpPath, Path: p, Want: meta.MayRead})
	}
	return checks
}
