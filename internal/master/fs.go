package master

import (
	"context"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/meta"
	"github.com/catena-io/catena/internal/rpcerr"
)

// fsServer implements api.FSServer, the inode-based namespace of the FUSE
// mount, over the same leader and Raft glue as server. Reads are served
// from the leader's state (like Lookup); changes go through Raft.
type fsServer struct {
	api.UnimplementedFSServer
	s *server
}

var _ api.FSServer = (*fsServer)(nil)

func attrOf(fi meta.FileInfo) *api.Attr {
	t := api.NodeType_NODE_FILE
	switch {
	case fi.IsDir:
		t = api.NodeType_NODE_DIRECTORY
	case fi.Symlink:
		t = api.NodeType_NODE_SYMLINK
	case fi.Special != 0:
		t = specialTypes[fi.Special]
	}
	return &api.Attr{Inode: fi.Inode, Type: t, Mode: fi.Mode, Uid: fi.Uid, Gid: fi.Gid, Nlink: fi.Nlink,
		Size: fi.Size, AtimeUnixNano: fi.ATime, MtimeUnixNano: fi.MTime, CtimeUnixNano: fi.CTime,
		Replication: uint32(fi.Replication), ChunkSize: fi.ChunkSize, Target: fi.Target, Rdev: fi.Rdev,
		ReadOnly: fi.ReadOnly}
}

// specialTypes maps meta's special file types to the wire's node types.
var specialTypes = map[uint32]api.NodeType{
	meta.TypeFifo:   api.NodeType_NODE_FIFO,
	meta.TypeChar:   api.NodeType_NODE_CHAR_DEVICE,
	meta.TypeBlock:  api.NodeType_NODE_BLOCK_DEVICE,
	meta.TypeSocket: api.NodeType_NODE_SOCKET,
}

// query runs fn on the state under the read lock, on the leader only.
func (f *fsServer) query(fn func(st *meta.State) error) error {
	if err := f.s.checkLeader(); err != nil {
		return err
	}
	var err error
	f.s.m.fsm.view(func(st *meta.State) { err = fn(st) })
	if err != nil {
		return metaErr(err)
	}
	return nil
}

// change proposes c on the leader and returns the attributes it reports.
func (f *fsServer) change(ctx context.Context, c meta.Command) (*api.AttrResponse, error) {
	if err := f.s.checkLeader(); err != nil {
		return nil, err
	}
	r, err := f.s.proposeOnce(ctx, c)
	if err != nil {
		return nil, err
	}
	return &api.AttrResponse{Attr: attrOf(r.Info)}, nil
}

func (f *fsServer) LookupChild(ctx context.Context, req *api.LookupChildRequest) (*api.AttrResponse, error) {
	var resp api.AttrResponse
	err := f.query(func(st *meta.State) error {
		fi, err := st.LookupChild(req.Parent, req.Name)
		resp.Attr = attrOf(fi)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

func (f *fsServer) Getattr(ctx context.Context, req *api.GetattrRequest) (*api.AttrResponse, error) {
	var resp api.AttrResponse
	err := f.query(func(st *meta.State) error {
		fi, err := st.Stat(req.Inode)
		resp.Attr = attrOf(fi)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

func (f *fsServer) Setattr(ctx context.Context, req *api.SetattrRequest) (*api.AttrResponse, error) {
	return f.change(ctx, meta.Setattr{Inode: req.Inode, Set: req.Set, Mode: req.Mode, Uid: req.Uid, Gid: req.Gid,
		ATime: req.AtimeUnixNano, MTime: req.MtimeUnixNano, Time: f.s.now()})
}

func (f *fsServer) Readdir(ctx context.Context, req *api.ReaddirRequest) (*api.ReaddirResponse, error) {
	var resp api.ReaddirResponse
	err := f.query(func(st *meta.State) error {
		ents, more, err := st.ReadDirInode(req.Inode, req.StartAfter, listLimit(req.Limit))
		resp.More = more
		for _, e := range ents {
			resp.Entries = append(resp.Entries, &api.DirEntry{Name: e.Name, Attr: attrOf(e.Info)})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

func (f *fsServer) Create(ctx context.Context, req *api.CreateAtRequest) (*api.AttrResponse, error) {
	if err := checkNewName(req.Name); err != nil {
		return nil, err
	}
	if req.Replication > meta.MaxReplication {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "replication %d not in [1, %d]", req.Replication, meta.MaxReplication)
	}
	return f.change(ctx, meta.CreateAt{Parent: req.Parent, Name: req.Name, Mode: req.Mode, Umask: req.Umask, Uid: req.Uid, Gid: req.Gid,
		Replication: int(req.Replication), ChunkSize: req.ChunkSize, Time: f.s.now()})
}

func (f *fsServer) Mkdir(ctx context.Context, req *api.MkdirAtRequest) (*api.AttrResponse, error) {
	if err := checkNewName(req.Name); err != nil {
		return nil, err
	}
	return f.change(ctx, meta.MkdirAt{Parent: req.Parent, Name: req.Name, Mode: req.Mode, Umask: req.Umask, Uid: req.Uid, Gid: req.Gid, Time: f.s.now()})
}

func (f *fsServer) Symlink(ctx context.Context, req *api.SymlinkRequest) (*api.AttrResponse, error) {
	if err := checkNewName(req.Name); err != nil {
		return nil, err
	}
	return f.change(ctx, meta.Symlink{Parent: req.Parent, Name: req.Name, Target: req.Target, Uid: req.Uid, Gid: req.Gid, Time: f.s.now()})
}

func (f *fsServer) Mknod(ctx context.Context, req *api.MknodRequest) (*api.AttrResponse, error) {
	if err := checkNewName(req.Name); err != nil {
		return nil, err
	}
	var typ uint32
	for t, nt := range specialTypes {
		if nt == req.Type {
			typ = t
		}
	}
	if typ == 0 {
		return nil, rpcerr.New(api.ErrorCode_INVALID, "mknod of node type %v", req.Type)
	}
	return f.change(ctx, meta.Mknod{Parent: req.Parent, Name: req.Name, Type: typ, Mode: req.Mode, Umask: req.Umask, Rdev: req.Rdev,
		Uid: req.Uid, Gid: req.Gid, Time: f.s.now()})
}

func (f *fsServer) Link(ctx context.Context, req *api.LinkRequest) (*api.AttrResponse, error) {
	if err := checkNewName(req.Name); err != nil {
		return nil, err
	}
	return f.change(ctx, meta.Link{Inode: req.Inode, Parent: req.Parent, Name: req.Name, Time: f.s.now()})
}

func (f *fsServer) Unlink(ctx context.Context, req *api.UnlinkRequest) (*api.UnlinkResponse, error) {
	if _, err := f.change(ctx, meta.Unlink{Parent: req.Parent, Name: req.Name, Time: f.s.now()}); err != nil {
		return nil, err
	}
	return &api.UnlinkResponse{}, nil
}

func (f *fsServer) Rmdir(ctx context.Context, req *api.UnlinkRequest) (*api.UnlinkResponse, error) {
	if _, err := f.change(ctx, meta.Unlink{Parent: req.Parent, Name: req.Name, Dir: true, Time: f.s.now()}); err != nil {
		return nil, err
	}
	return &api.UnlinkResponse{}, nil
}

func (f *fsServer) Rename(ctx context.Context, req *api.RenameAtRequest) (*api.RenameAtResponse, error) {
	if err := checkNewName(req.DstName); err != nil {
		return nil, err
	}
	if _, err := f.change(ctx, meta.RenameAt{SrcParent: req.SrcParent, SrcName: req.SrcName, DstParent: req.DstParent,
		DstName: req.DstName, NoReplace: req.NoReplace, Exchange: req.Exchange, Time: f.s.now()}); err != nil {
		return nil, err
	}
	return &api.RenameAtResponse{}, nil
}

func (f *fsServer) Readlink(ctx context.Context, req *api.GetattrRequest) (*api.ReadlinkResponse, error) {
	var resp api.ReadlinkResponse
	err := f.query(func(st *meta.State) error {
		fi, err := st.Stat(req.Inode)
		if err == nil && !fi.Symlink {
			return meta.ErrInvalid
		}
		resp.Target = fi.Target
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

func (f *fsServer) GetXattr(ctx context.Context, req *api.GetXattrRequest) (*api.GetXattrResponse, error) {
	var resp api.GetXattrResponse
	err := f.query(func(st *meta.State) error {
		v, err := st.Xattr(req.Inode, req.Name)
		resp.Value = v
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

func (f *fsServer) ListXattr(ctx context.Context, req *api.GetattrRequest) (*api.ListXattrResponse, error) {
	var resp api.ListXattrResponse
	err := f.query(func(st *meta.State) error {
		names, err := st.Xattrs(req.Inode)
		resp.Names = names
		return err
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

func (f *fsServer) SetXattr(ctx context.Context, req *api.SetXattrRequest) (*api.SetXattrResponse, error) {
	if err := meta.CheckACLXattr(req.Name, req.Value); err != nil {
		return nil, metaErr(err)
	}
	if _, err := f.change(ctx, meta.SetXattr{Inode: req.Inode, Name: req.Name, Value: req.Value,
		Mode: meta.XattrMode(min(req.Mode, 255)), Time: f.s.now()}); err != nil {
		return nil, err
	}
	return &api.SetXattrResponse{}, nil
}

func (f *fsServer) RemoveXattr(ctx context.Context, req *api.GetXattrRequest) (*api.SetXattrResponse, error) {
	if _, err := f.change(ctx, meta.RemoveXattr{Inode: req.Inode, Name: req.Name, Time: f.s.now()}); err != nil {
		return nil, err
	}
	return &api.SetXattrResponse{}, nil
}

func (f *fsServer) Statfs(ctx context.Context, req *api.StatfsRequest) (*api.StatfsResponse, error) {
	if err := f.s.checkLeader(); err != nil {
		return nil, err
	}
	resp := &api.StatfsResponse{}
	var servers []meta.Server
	f.s.m.fsm.view(func(st *meta.State) {
		servers = st.Servers()
		resp.Files, resp.Directories = st.Counts()
	})
	now := f.s.m.cfg.Clock.Now()
	for _, sv := range servers {
		soft, ok := f.s.m.soft.get(sv.ID)
		if ok && f.s.m.soft.alive(sv.ID, now, f.s.m.cfg.deadAfter()) {
			resp.CapacityBytes += soft.capacity
			resp.FreeBytes += soft.free
		}
	}
	return resp, nil
}

func (f *fsServer) RenewMount(ctx context.Context, req *api.RenewMountRequest) (*api.RenewMountResponse, error) {
	ttl := time.Duration(req.TtlMs) * time.Millisecond
	if _, err := f.change(ctx, meta.RenewMount{Session: req.Session, TTL: int64(ttl), Time: f.s.now(), Owner: f.s.m.sessionOwner(ctx)}); err != nil {
		return nil, err
	}
	return &api.RenewMountResponse{}, nil
}

func (f *fsServer) EndMount(ctx context.Context, req *api.EndMountRequest) (*api.EndMountResponse, error) {
	if _, err := f.change(ctx, meta.EndMount{Session: req.Session, Time: f.s.now(), Owner: f.s.m.sessionOwner(ctx)}); err != nil {
		return nil, err
	}
	return &api.EndMountResponse{}, nil
}

func (f *fsServer) Hold(ctx context.Context, req *api.HoldRequest) (*api.HoldResponse, error) {
	if _, err := f.change(ctx, meta.Hold{Session: req.Session, Inode: req.Inode, Time: f.s.now(), Owner: f.s.m.sessionOwner(ctx)}); err != nil {
		return nil, err
	}
	return &api.HoldResponse{}, nil
}

func (f *fsServer) Unhold(ctx context.Context, req *api.HoldRequest) (*api.HoldResponse, error) {
	if _, err := f.change(ctx, meta.Unhold{Session: req.Session, Inode: req.Inode, Time: f.s.now(), Owner: f.s.m.sessionOwner(ctx)}); err != nil {
		return nil, err
	}
	return &api.HoldResponse{}, nil
}

// expireMounts, on the leader's repair tick, ends the mount sessions that
// were not renewed in time (a mount that died), which reclaims orphans
// that only they held. The rule,
// including the grace a new leader gives, is meta's; this only proposes
// it when it would end a session.
func (m *Master) expireMounts(ctx context.Context, now time.Time) {
	m.soft.mu.Lock()
	since := m.soft.leaderSince
	m.soft.mu.Unlock()
	var expired []uint64
	m.fsm.view(func(st *meta.State) { expired = st.ExpiredMounts(now.UnixNano(), since.UnixNano()) })
	if len(expired) == 0 {
		return
	}
	s := &server{m: m}
	if _, err := s.propose(ctx, meta.ExpireMounts{Time: now.UnixNano(), LeaderSince: since.UnixNano()}); err != nil {
		m.log.Warn("master: expire mount sessions", "sessions", expired, "err", err)
		return
	}
	m.log.Info("master: mount sessions expired", "sessions", expired)
}
