package master

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/hashicorp/raft"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/console"
	"github.com/catena-io/catena/internal/master/decide"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
)

// server implements api.MasterServer: it translates wire messages into
// meta commands and queries at the edge.
type server struct {
	api.UnimplementedMasterServer
	m *Master
}

var _ api.MasterServer = (*server)(nil)

const (
	defaultFileMode = 0o644
	defaultDirMode  = 0o755
)

// checkLeader returns NOT_LEADER unless this node serves RPCs. It
// confirms leadership with a quorum (read-index, ha.go) so that a deposed
// leader cut off from the others never answers a read from stale state.
func (s *server) checkLeader() error {
	if !s.m.IsLeader() || !s.m.verifyLeader() {
		return rpcerr.NotLeader(s.m.leaderAddr())
	}
	return nil
}

// propose commits a command through Raft and returns its result; meta
// errors are translated to rpcerr codes. A user's call proposes it with
// the permission checks it passed (guarded).
func (s *server) propose(ctx context.Context, c meta.Command) (meta.Result, error) {
	b, err := meta.Encode(guarded(ctx, c))
	if err != nil {
		return meta.Result{}, rpcerr.New(api.ErrorCode_INVALID, "%v", err)
	}
	f := s.m.raft.Apply(b, applyTimeout)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return meta.Result{}, rpcerr.NotLeader(s.m.leaderAddr())
		}
		return meta.Result{}, rpcerr.New(api.ErrorCode_UNAVAILABLE, "raft apply: %v", err)
	}
	r, ok := f.Response().(meta.Result)
	if !ok {
		return meta.Result{}, rpcerr.New(api.ErrorCode_UNAVAILABLE, "raft apply: unexpected response %T", f.Response())
	}
	if r.Err != nil {
		return r, metaErr(r.Err)
	}
	return r, nil
}

// metaErr maps a meta error to its rpcerr code, classified with
// errors.Is; the message is the error's own text.
func metaErr(err error) error {
	codes := []struct {
		err  error
		code api.ErrorCode
	}{
		{meta.ErrNotFound, api.ErrorCode_NOT_FOUND},
		{meta.ErrExists, api.ErrorCode_EXISTS},
		{meta.ErrNotDir, api.ErrorCode_NOT_DIR},
		{meta.ErrIsDir, api.ErrorCode_IS_DIR},
		{meta.ErrNotEmpty, api.ErrorCode_NOT_EMPTY},
		{meta.ErrNameTooLong, api.ErrorCode_NAME_TOO_LONG}, // wraps ErrInvalid: first
		{meta.ErrInvalid, api.ErrorCode_INVALID},
		{meta.ErrEpochMismatch, api.ErrorCode_STALE_EPOCH},
		{meta.ErrPermission, api.ErrorCode_PERMISSION_DENIED},
		{meta.ErrReadOnly, api.ErrorCode_READ_ONLY},
	}
	// The code says the kind; the message is the detail alone when meta
	// kept it apart (the client shows "invalid argument: <detail>").
	msg := err.Error()
	if me := (*meta.Error)(nil); errors.As(err, &me) {
		msg = me.Detail
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return rpcerr.New(c.code, "%s", msg)
		}
	}
	return rpcerr.New(api.ErrorCode_UNAVAILABLE, "%v", err)
}

// listPage is the most entries one List or Readdir answer carries.
var listPage = 4096

// listLimit is the page size for a request's limit (0: the page).
func listLimit(limit uint32) int {
	if limit == 0 || limit > uint32(listPage) {
		return listPage
	}
	return int(limit)
}

// certName is the name in the caller's certificate ("" on a master
// without TLS).
func (s *server) certName(ctx context.Context) string {
	if s.m.cfg.TLS == nil {
		return ""
	}
	_, name, _ := auth.PeerIdentity(ctx)
	return name
}

// checkBound refuses a call speaking for server id from a caller whose
// certificate is not the one id registered with.
func (s *server) checkBound(ctx context.Context, id uint64) error {
	var known meta.Server
	var ok bool
	s.m.fsm.view(func(st *meta.State) { known, ok = st.Server(id) })
	if name := s.certName(ctx); ok && known.CertName != "" && known.CertName != name {
		return errNotBound(id, known.CertName, name)
	}
	return nil
}

func errNotBound(id uint64, bound, name string) error {
	return rpcerr.New(api.ErrorCode_PERMISSION_DENIED, "server %d is bound to certificate %q, not %q", id, bound, name)
}

// errFileTooBig refuses a size or offset past meta.MaxFileSize.
func errFileTooBig(size int64) error {
	return rpcerr.New(api.ErrorCode_FILE_TOO_BIG, "%d bytes is past the maximum file size of %d (1 PiB)", size, int64(meta.MaxFileSize))
}

func checkPath(p string) error {
	if err := meta.CheckPath(p); err != nil {
		return metaErr(err)
	}
	return nil
}

// checkNewPath is checkPath for a path whose last elements are about to
// be created or renamed to (meta.CheckNewPath: no control characters).
func checkNewPath(p string, parents ...bool) error {
	if err := meta.CheckNewPath(p, parents...); err != nil {
		return metaErr(err)
	}
	return nil
}

// checkNewName is meta.CheckNewName as an RPC error.
func checkNewName(name string) error {
	if err := meta.CheckNewName(name); err != nil {
		return metaErr(err)
	}
	return nil
}

func (s *server) now() int64 { return s.m.cfg.Clock.Now().UnixNano() }

func fileInfo(fi meta.FileInfo) *api.FileInfo {
	t := api.FileType_FILE
	if fi.IsDir {
		t = api.FileType_DIRECTORY
	}
	return &api.FileInfo{
		Inode: fi.Inode, Name: fi.Name, Path: fi.Path, Type: t, Mode: fi.Mode, Size: fi.Size,
		MtimeUnixNano: fi.MTime, Replication: uint32(fi.Replication), ChunkSize: fi.ChunkSize,
		Uid: fi.Uid, Gid: fi.Gid, ReadOnly: fi.ReadOnly,
	}
}

// chunkInfo resolves chain server ids to addresses and signs the
// capability g grants; st must be read-locked.
func chunkInfo(st *meta.State, r meta.ChunkRef, g grant) *api.ChunkInfo {
	ci := &api.ChunkInfo{Index: r.Index, Handle: r.Handle, Epoch: r.Epoch, Shared: r.Shared}
	if r.Shared {
		g.rights &^= auth.RightWrite // a write forks it first (AllocateChunk)
	}
	if ch, ok := st.Chunk(r.Handle); ok {
		ci.ChunkSize = ch.ChunkSize
	}
	for _, id := range r.Chain {
		sv, _ := st.Server(id)
		ci.Chain = append(ci.Chain, &api.ServerRef{Id: id, Addr: sv.Addr, Name: sv.Name})
	}
	g.sign(ci)
	return ci
}

func (s *server) Mkdir(ctx context.Context, req *api.MkdirRequest) (*api.MkdirResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkNewPath(req.Path, req.Parents); err != nil {
		return nil, err
	}
	mode := req.Mode
	if mode == 0 {
		mode = defaultDirMode
	}
	uid, gid := s.m.owner(ctx)
	r, err := s.proposeOnce(ctx, meta.Mkdir{Path: req.Path, Parents: req.Parents, Mode: mode, Time: s.now(), Uid: uid, Gid: gid})
	if err != nil {
		return nil, err
	}
	return &api.MkdirResponse{Info: fileInfo(r.Info)}, nil
}

func (s *server) Create(ctx context.Context, req *api.CreateRequest) (*api.CreateResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkNewPath(req.Path); err != nil {
		return nil, err
	}
	if req.Replication > meta.MaxReplication {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "replication %d not in [1, %d]", req.Replication, meta.MaxReplication)
	}
	if _, _, err := meta.CheckFileParams(int(req.Replication), req.ChunkSize); err != nil {
		return nil, metaErr(err)
	}
	mode := req.Mode
	if mode == 0 {
		mode = defaultFileMode
	}
	uid, gid := s.m.owner(ctx)
	r, err := s.proposeOnce(ctx, meta.Create{Path: req.Path, Mode: mode, Replication: int(req.Replication), Uid: uid, Gid: gid,
		ChunkSize: req.ChunkSize, Overwrite: req.Overwrite, Time: s.now()})
	if err != nil {
		return nil, err
	}
	return &api.CreateResponse{Info: fileInfo(r.Info)}, nil
}

func (s *server) Lookup(ctx context.Context, req *api.LookupRequest) (*api.LookupResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkPath(req.Path); err != nil {
		return nil, err
	}
	var resp api.LookupResponse
	var err error
	s.m.fsm.view(func(st *meta.State) {
		var fi meta.FileInfo
		if fi, err = st.Lookup(req.Path); err != nil {
			return
		}
		resp.Info = fileInfo(fi)
		if req.WithChunks && !fi.IsDir {
			var refs []meta.ChunkRef
			if _, refs, err = st.FileChunks(fi.Inode, 0, 0); err != nil {
				return
			}
			g := s.grantFor(ctx, st, fi.Inode)
			for _, r := range refs {
				resp.Chunks = append(resp.Chunks, chunkInfo(st, r, g))
			}
		}
	})
	if err != nil {
		return nil, metaErr(err)
	}
	return &resp, nil
}

func (s *server) List(ctx context.Context, req *api.ListRequest) (*api.ListResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkPath(req.Path); err != nil {
		return nil, err
	}
	var entries []meta.FileInfo
	var more bool
	var err error
	s.m.fsm.view(func(st *meta.State) { entries, more, err = st.List(req.Path, req.StartAfter, listLimit(req.Limit)) })
	if err != nil {
		return nil, metaErr(err)
	}
	resp := &api.ListResponse{Entries: make([]*api.FileInfo, 0, len(entries)), More: more}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, fileInfo(e))
	}
	return resp, nil
}

func (s *server) Rename(ctx context.Context, req *api.RenameRequest) (*api.RenameResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkPath(req.Src); err != nil {
		return nil, err
	}
	if err := checkNewPath(req.Dst); err != nil {
		return nil, err
	}
	if _, err := s.proposeOnce(ctx, meta.Rename{Src: req.Src, Dst: req.Dst, Time: s.now()}); err != nil {
		return nil, err
	}
	return &api.RenameResponse{}, nil
}

func (s *server) Remove(ctx context.Context, req *api.RemoveRequest) (*api.RemoveResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if err := checkPath(req.Path); err != nil {
		return nil, err
	}
	if _, err := s.proposeOnce(ctx, meta.Remove{Path: req.Path, Recursive: req.Recursive, Time: s.now()}); err != nil {
		return nil, err
	}
	return &api.RemoveResponse{}, nil
}

func (s *server) SetSize(ctx context.Context, req *api.SetSizeRequest) (*api.SetSizeResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if req.Size < 0 {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "negative size %d", req.Size)
	}
	if req.Size > meta.MaxFileSize {
		return nil, errFileTooBig(req.Size)
	}
	var mode meta.SizeMode
	switch req.Mode {
	case api.SetSizeMode_EXTEND:
		mode = meta.SizeExtend
	case api.SetSizeMode_EXACT:
		mode = meta.SizeExact
	default:
		return nil, rpcerr.New(api.ErrorCode_INVALID, "set size mode %v: want EXTEND or EXACT", req.Mode)
	}
	r, err := s.propose(ctx, meta.SetSize{Inode: req.Inode, Size: req.Size, Mode: mode, Time: s.now()})
	if err != nil {
		return nil, err
	}
	return &api.SetSizeResponse{Info: fileInfo(r.Info)}, nil
}

func (s *server) GetChunks(ctx context.Context, req *api.GetChunksRequest) (*api.GetChunksResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if req.FirstIndex < 0 || req.Count < 0 {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "negative first_index or count")
	}
	for attempt := 0; ; attempt++ {
		var resp api.GetChunksResponse
		var err error
		var forks []uint64
		s.m.fsm.view(func(st *meta.State) {
			var fi meta.FileInfo
			var refs []meta.ChunkRef
			if fi, refs, err = st.FileChunks(req.Inode, req.FirstIndex, req.Count); err != nil {
				return
			}
			resp.Info = fileInfo(fi)
			g := s.grantFor(ctx, st, fi.Inode)
			for _, r := range refs {
				if r.Fork != 0 {
					forks = append(forks, r.Fork)
				}
				resp.Chunks = append(resp.Chunks, chunkInfo(st, r, g))
			}
		})
		if err != nil {
			return nil, metaErr(err)
		}
		if len(forks) == 0 {
			return &resp, nil
		}
		// A fork under way is finished first: a reader given its origin
		// now could keep reading the origin's old data after the first
		// write to the fork (snapshot.go).
		if attempt >= changeAttempts {
			return nil, rpcerr.New(api.ErrorCode_UNAVAILABLE, "chunks %v are being forked; retry", forks)
		}
		for _, h := range forks {
			if err := s.m.finishFork(ctx, h); err != nil {
				return nil, err
			}
		}
	}
}

func (s *server) AllocateChunk(ctx context.Context, req *api.AllocateChunkRequest) (*api.AllocateChunkResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if req.Index < 0 {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "negative chunk index %d", req.Index)
	}
	var (
		ref       meta.ChunkRef
		exists    bool
		fi        meta.FileInfo
		err       error
		cands     []meta.Server
		placeFrom []decide.Candidate
	)
	s.m.fsm.view(func(st *meta.State) {
		if otherWriter(ctx, st, req.Inode) {
			err = errOtherWriter(req.Inode)
			return
		}
		if ref, exists, err = st.FileChunk(req.Inode, req.Index); err != nil || exists {
			return
		}
		fi, err = st.Stat(req.Inode)
		cands = st.Servers()
	})
	if rpcerr.Code(err) == api.ErrorCode_FENCED {
		return nil, err
	}
	if err != nil {
		return nil, metaErr(err)
	}
	if !exists && fi.ChunkSize > 0 && req.Index >= meta.MaxFileSize/fi.ChunkSize {
		return nil, errFileTooBig(req.Index * fi.ChunkSize)
	}
	if !exists {
		now := s.m.cfg.Clock.Now()
		learning := false // some server's liveness is not known yet
		for _, sv := range cands {
			soft, ok := s.m.soft.get(sv.ID)
			if sv.Draining {
				continue // leaving: nothing new goes there
			}
			if ok && s.m.soft.alive(sv.ID, now, s.m.cfg.deadAfter()) {
				placeFrom = append(placeFrom, decide.Candidate{ID: sv.ID, Free: soft.free, Labels: sv.Labels})
			} else if s.m.soft.liveness(sv.ID, now, s.m.cfg.deadAfter()) == decide.Unknown {
				learning = true
			}
		}
		chain, err := decide.Place(placeFrom, fi.Replication, decide.DefaultDomainKey)
		var short *decide.ShortageError
		switch {
		case errors.As(err, &short) && learning:
			// A master that just took office has not heard every
			// chunkserver yet: that is a wait, not a verdict.
			return nil, rpcerr.New(api.ErrorCode_UNAVAILABLE,
				"learning which chunkservers are alive: need %d chunkservers, %d alive so far", short.Need, short.Alive)
		case errors.As(err, &short):
			return nil, rpcerr.New(api.ErrorCode_NO_CHUNKSERVERS, "need %d chunkservers, %d alive", short.Need, short.Alive)
		case err != nil:
			return nil, rpcerr.New(api.ErrorCode_INVALID, "%v", err)
		}
		chain = decide.RotateHead(chain, s.m.placements.Add(1)-1)
		r, err := s.propose(ctx, meta.AllocateChunk{Inode: req.Inode, Index: req.Index, Chain: chain, Time: now.UnixNano()})
		if err != nil {
			return nil, err
		}
		ref = r.Chunk
	}
	if exists && ref.Shared {
		if ref, err = s.forkSlot(ctx, req.Inode, req.Index, ref); err != nil {
			return nil, err
		}
	}
	// No replica is created here: the client's first write carries the
	// chunk size and chain, and every member creates its replica from it
	// (internal/chunkserver's doc.go, "Creation").
	var ci *api.ChunkInfo
	s.m.fsm.view(func(st *meta.State) { ci = chunkInfo(st, ref, s.grantFor(ctx, st, req.Inode)) })
	return &api.AllocateChunkResponse{Chunk: ci}, nil
}

func (s *server) Register(ctx context.Context, req *api.RegisterRequest) (*api.RegisterResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if req.ServerId == 0 || req.Addr == "" {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "register: server_id must be non-zero and addr non-empty")
	}
	var known meta.Server
	var ok bool
	s.m.fsm.view(func(st *meta.State) { known, ok = st.Server(req.ServerId) })
	name := s.certName(ctx)
	if ok && known.CertName != "" && known.CertName != name {
		return nil, errNotBound(req.ServerId, known.CertName, name)
	}
	var holder uint64 // another server holding req.Name
	if req.Name != "" {
		if err := meta.ValidServerName(req.Name); err != nil {
			return nil, rpcerr.New(api.ErrorCode_INVALID, "register: %v", err)
		}
		s.m.fsm.view(func(st *meta.State) {
			for _, sv := range st.Servers() {
				if sv.ID != req.ServerId && sv.Name == req.Name {
					holder = sv.ID
				}
			}
		})
	}
	// A dead holder gives its name up (a server started anew, e.g. on a
	// replaced disk, under the same name); a live one keeps it.
	takeName := holder != 0 && !s.m.soft.alive(holder, s.m.cfg.Clock.Now(), s.m.cfg.deadAfter())
	if holder != 0 && !takeName {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "register: chunkserver name %q is taken by server %d, which is alive: give each server its own --name", req.Name, holder)
	}
	if !ok || known.Addr != req.Addr || !maps.Equal(known.Labels, req.Labels) || known.CertName != name || known.Name != req.Name {
		if _, err := s.propose(ctx, meta.RegisterServer{ID: req.ServerId, Addr: req.Addr, Labels: req.Labels,
			Name: req.Name, TakeName: takeName, CertName: name}); err != nil {
			return nil, err
		}
		s.m.log.Info("master: chunkserver registered", "id", req.ServerId, "name", req.Name, "addr", req.Addr, "labels", req.Labels)
		s.m.event(console.EventRegistered, "chunkserver %d %q registered at %s (labels %s)", req.ServerId, req.GetName(), req.Addr, labelList(req.Labels))
	}
	s.m.soft.heard(req.ServerId, s.m.cfg.Clock.Now(), req.CapacityBytes, req.FreeBytes, 0, nil, nil, 0, 0)
	// Read after the server opened its store (it registers after): every
	// chunk at or above it is one the server never held before.
	resp := &api.RegisterResponse{PagedReports: true}
	s.m.fsm.view(func(st *meta.State) { resp.NextHandle, resp.CapabilityKeys = st.NextHandle(), capabilityKeys(st) })
	return resp, nil
}

func (s *server) Heartbeat(ctx context.Context, req *api.HeartbeatRequest) (*api.HeartbeatResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if err := s.checkBound(ctx, req.ServerId); err != nil {
		return nil, err
	}
	resp := &api.HeartbeatResponse{}
	var known meta.Server
	var ok bool
	// Read the repairs in flight before the chunk map. Otherwise:
	// (1) we read the map: the joining server T is not in the chain yet;
	// (2) the repair commits SetChain (T at the tail) and clears its mark;
	// (3) we read the marks: T is not joining either, so T's fresh
	// replica looks stale and would be deleted. In this order a cleared
	// mark implies a map that already has T in the chain.
	targets := s.m.soft.repairTargets()
	// The server's inventory: the whole of it in a full report, else the
	// one this master holds as of the report's base, changed by it (in
	// place: a server may hold a million replicas).
	full := req.ReportGen == 0 || req.Full
	handles := make([]uint64, len(req.Replicas))
	evs := make([]decide.Evidence, len(req.Replicas))
	for i, r := range req.Replicas {
		handles[i] = r.Handle
		evs[i] = decide.Evidence{Epoch: r.Epoch, AppliedEpoch: r.AppliedEpoch, AppliedSeq: r.AppliedSeq, UsedBytes: r.UsedBytes,
			Fenced: r.Fenced, BadBlocks: len(r.BadBlocks), Verified: r.Verified, Bad: r.BadBlocks, CatchingUp: r.CatchingUp}
	}
	var inv map[uint64]uint64
	var ev map[uint64]decide.Evidence
	var reps []decide.Replica
	if full && (req.Page > 0 || req.More) {
		// A page of a full report: nothing is decided before the last.
		var ok bool
		inv, ev, ok = s.m.soft.applyPage(req.ServerId, req.Page, req.BaseGen, req.ReportGen, handles, evs, req.Removed, req.More)
		if !ok {
			resp.FullReport = true
			return resp, nil
		}
		if req.More {
			// Alive (a large server's pages must not get it declared
			// dead), with no lease and no decision before the last.
			s.m.fsm.view(func(st *meta.State) { known, ok = st.Server(req.ServerId) })
			if !ok || (req.Addr != "" && req.Addr != known.Addr) {
				resp.Reregister = true
			} else {
				s.m.soft.heard(req.ServerId, s.m.cfg.Clock.Now(), req.CapacityBytes, req.FreeBytes, 0, nil, nil, 0, 0)
			}
			return resp, nil
		}
		reps = make([]decide.Replica, 0, len(inv))
		for h, epoch := range inv {
			reps = append(reps, decide.Replica{Handle: h, Epoch: epoch})
		}
	} else if full {
		inv = make(map[uint64]uint64, len(req.Replicas))
		ev = make(map[uint64]decide.Evidence, len(req.Replicas))
		reps = make([]decide.Replica, 0, len(req.Replicas))
		for i, h := range handles {
			if _, dup := inv[h]; !dup {
				reps = append(reps, decide.Replica{Handle: h, Epoch: evs[i].Epoch})
			}
			inv[h], ev[h] = evs[i].Epoch, evs[i]
		}
	} else if reps = s.m.soft.applyReport(req.ServerId, req.BaseGen, req.ReportGen, handles, evs, req.Removed); reps == nil {
		// Not the inventory the delta is based on: no decision and no
		// lease from it; the server sends a full report at once.
		resp.FullReport = true
		return resp, nil
	}
	s.m.fsm.view(func(st *meta.State) {
		known, ok = st.Server(req.ServerId)
		deletes, missed := decide.Reconcile(st, req.ServerId, reps, targets)
		if s.m.gcAllowed(req.ServerId, s.m.cfg.Clock.Now()) {
			resp.DeleteHandles = deletes // else still learning locations (ha.go)
		}
		for _, ch := range missed {
			resp.Configs = append(resp.Configs, reconfigureRequest(st, ch))
		}
		for _, ch := range decide.Fenced(st, req.ServerId, reps) {
			resp.Fenced = append(resp.Fenced, &api.FencedReplica{Handle: ch.Handle, Epoch: ch.Epoch})
		}
		for _, sv := range st.Servers() {
			resp.Servers = append(resp.Servers, &api.ServerRef{Id: sv.ID, Addr: sv.Addr, CertName: sv.CertName})
		}
		resp.CapabilityKeys = capabilityKeys(st)
	})
	if !ok || (req.Addr != "" && req.Addr != known.Addr) {
		// Unknown (or moved) servers get no liveness until they register,
		// so placement never picks a server missing from the registry.
		resp.Reregister = true
		return resp, nil
	}
	if full {
		s.m.soft.heard(req.ServerId, s.m.cfg.Clock.Now(), req.CapacityBytes, req.FreeBytes, req.UsedBytes, inv, ev, req.NeverHeldFrom, req.ReportGen)
	} else { // the inventory was merged by applyReport
		s.m.soft.heardReport(req.ServerId, s.m.cfg.Clock.Now(), req.CapacityBytes, req.FreeBytes, req.UsedBytes, req.NeverHeldFrom)
	}
	s.m.soft.heardIO(req.ServerId, req.Io)
	// The server counts the lease from when it sent this heartbeat; we
	// count deadAfter from now, later, so its lease runs out first.
	resp.LeaseMillis = s.m.cfg.Lease.Milliseconds()
	return resp, nil
}

func (s *server) Status(ctx context.Context, req *api.StatusRequest) (*api.StatusResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	resp := &api.StatusResponse{Chunks: &api.ChunkStats{}}
	if f := s.m.raft.GetConfiguration(); f.Error() == nil {
		_, leader := s.m.raft.LeaderWithID()
		for _, srv := range f.Configuration().Servers {
			resp.Masters = append(resp.Masters, &api.MasterStatus{
				Id: string(srv.ID), Addr: s.m.masterAddr(srv.ID), Leader: srv.ID == leader,
			})
		}
	}
	now := s.m.cfg.Clock.Now()
	var servers []meta.Server
	var chunks []meta.Chunk
	s.m.fsm.view(func(st *meta.State) {
		servers, chunks = st.Servers(), st.Chunks()
		resp.Files, resp.Directories = st.Counts()
	})
	alive := map[uint64]bool{}
	ev := map[uint64]map[uint64]decide.Evidence{}
	memberships := map[uint64]uint64{}
	for _, ch := range chunks {
		for _, id := range ch.Chain {
			memberships[id]++
		}
	}
	for _, sv := range servers {
		cs := &api.ChunkserverStatus{Id: sv.ID, Name: sv.Name, Addr: sv.Addr, Labels: sv.Labels, Draining: sv.Draining, Chains: memberships[sv.ID]}
		if soft, ok := s.m.soft.get(sv.ID); ok {
			ev[sv.ID] = soft.evidence
			alive[sv.ID] = s.m.soft.alive(sv.ID, now, s.m.cfg.deadAfter())
			cs.Alive = alive[sv.ID]
			cs.CapacityBytes, cs.FreeBytes, cs.UsedBytes = soft.capacity, soft.free, soft.used
			cs.Replicas = uint64(len(soft.replicas))
			cs.LastHeartbeatUnixNano = soft.lastHeartbeat.UnixNano()
			cs.Io = soft.io
		}
		resp.Chunkservers = append(resp.Chunkservers, cs)
	}
	resp.Chunks.Total = uint64(len(chunks))
	for _, ch := range chunks {
		if n := chunkBytes(ev, ch); ch.Refs > 1 {
			resp.Chunks.SharedBytes += n
		} else {
			resp.Chunks.ExclusiveBytes += n
		}
		// A member that reports the chunk fenced at its current epoch (a
		// restarted server's replica that has not rejoined) serves
		// nothing until the repair loop has taken it out and back in
		// (decide.PlanRemovals): the chunk is short of it meanwhile, but
		// not lost. A syncing member (joined, not yet known to have
		// caught up) does not count either; when no live member holds
		// every acknowledged update, the chunk is unavailable.
		live, serving := 0, 0
		for _, id := range ch.Chain {
			if !alive[id] || ch.IsSyncing(id) {
				continue
			}
			live++
			if e, ok := ev[id][ch.Handle]; !ok || !e.Fenced || e.Epoch != ch.Epoch {
				serving++
			}
		}
		if serving < ch.Replication {
			resp.Chunks.UnderReplicated++
		}
		if len(ch.Chain) > ch.Replication {
			resp.Chunks.OverReplicated++
		}
		if live == 0 {
			resp.Chunks.Lost++
			if len(ch.Syncing) > 0 && len(resp.Chunks.Problems) < maxProblems {
				resp.Chunks.Problems = append(resp.Chunks.Problems, &api.ChunkProblem{Handle: ch.Handle,
					Reason: fmt.Sprintf("members %v have not caught up; waiting for a member holding every acknowledged update to return", ch.Syncing)})
				continue
			}
		}
		if len(resp.Chunks.Problems) >= maxProblems {
			continue
		}
		var stuck uint64
		var stuckFor time.Duration
		for _, id := range ch.Syncing {
			if d := s.m.soft.syncingFor(id, ch.Handle, now); d >= syncingStuck {
				stuck, stuckFor = id, d
			}
		}
		if lost := decide.LostBlocks(ch.Handle, alive, ev); lost != nil {
			resp.Chunks.Problems = append(resp.Chunks.Problems, &api.ChunkProblem{Handle: ch.Handle,
				Reason: fmt.Sprintf("%d blocks (64 KiB) verify on no live replica", len(lost)), LostBlocks: lost})
		} else if stuck != 0 {
			resp.Chunks.Problems = append(resp.Chunks.Problems, &api.ChunkProblem{Handle: ch.Handle,
				Reason: fmt.Sprintf("server %d joined the chain %s ago and has not caught up with its predecessor; the chunk is not repaired further until it does",
					stuck, stuckFor.Round(time.Second))})
		} else if why := s.m.soft.repairFailure(ch.Handle); why != "" && live < ch.Replication {
			resp.Chunks.Problems = append(resp.Chunks.Problems, &api.ChunkProblem{Handle: ch.Handle,
				Reason: "repair failing: " + why})
		}
	}
	if len(resp.Chunks.Problems) > 0 {
		want := map[uint64]bool{}
		for _, p := range resp.Chunks.Problems {
			want[p.Handle] = true
		}
		s.m.fsm.view(func(st *meta.State) {
			paths := st.PathsOfChunks(want)
			for _, p := range resp.Chunks.Problems {
				p.Paths = paths[p.Handle]
			}
		})
	}
	resp.Chunks.ReReplicating, resp.Chunks.RepairsDone, resp.Chunks.RepairedBytes = s.m.soft.repairStats()
	return resp, nil
}

// syncingStuck is how long a member may stay syncing before catena status
// names it (a catch-up normally takes a heartbeat or two).
const syncingStuck = time.Minute

// maxProblems bounds StatusResponse.chunks.problems.
const maxProblems = 100

func (s *server) SetReplication(ctx context.Context, req *api.SetReplicationRequest) (*api.SetReplicationResponse, error) {
	if err := s.checkLeader(); err != nil {
		return nil, err
	}
	if (req.Path == "") == (req.Volume == "") {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "set replication: name a path or a volume, not both")
	}
	if req.Replication < 1 || req.Replication > meta.MaxReplication {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "replication %d not in [1, %d]", req.Replication, meta.MaxReplication)
	}
	var fi meta.FileInfo
	var err error
	s.m.fsm.view(func(st *meta.State) {
		if req.Volume != "" {
			fi, err = st.Volume(req.Volume)
			return
		}
		if err = checkPath(req.Path); err == nil {
			fi, err = st.Lookup(req.Path)
		}
	})
	if err != nil {
		return nil, metaErr(err)
	}
	r, err := s.propose(ctx, meta.SetReplication{Inode: fi.Inode, Replication: int(req.Replication), Time: s.now()})
	if err != nil {
		return nil, err
	}
	s.m.kickRepair()
	return &api.SetReplicationResponse{Info: fileInfo(r.Info)}, nil
}
