package master

import (
	"context"

	"google.golang.org/grpc"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/auth"
	"github.com/catena-io/catena/internal/meta"
)

// Who may do what to the namespace and volumes: the caller is the
// identity its certificate proves (auth.PeerUser), never a field of the
// request. Without TLS every caller is root (an insecure cluster has no
// security); an admin certificate is root; a client or reader
// certificate is the user it names (catena admin cert issue --uid), or
// meta.Nobody when it names none. Before a call reaches its handler the
// leader checks it against the state it holds (meta/access.go): search
// permission on the way, read or write permission on what is used, write
// permission on a directory whose entries change (and the sticky bit),
// ownership for chmod and times, root for chown to another user and for
// volumes' creation, resizing and removal. A user's new files and
// directories are its own. The commands a call proposes carry its
// checks, which Apply evaluates again (meta.As): a permission changed by
// a command that commits first applies already.

// caller is who makes the call on ctx.
func (m *Master) caller(ctx context.Context) meta.User {
	if m.cfg.TLS == nil {
		return meta.User{Root: true}
	}
	role, _, ok := auth.PeerIdentity(ctx)
	if !ok {
		return meta.Nobody
	}
	if role == auth.RoleAdmin {
		if u, ok := actAs(ctx); ok {
			return u // actas.go: root acting as a user (the S3 gateway)
		}
	}
	if role == auth.RoleAdmin || role == auth.RoleMaster {
		return meta.User{Root: true}
	}
	u, named := auth.PeerUser(ctx)
	if !named {
		return meta.Nobody
	}
	return meta.User{UID: u.UID, GID: u.GID, Groups: u.Groups, Root: u.UID == 0}
}

// sessionOwner is whose mount session the caller on ctx may renew, end
// or hold files with: the role and name its certificate proves ("" on an
// insecure cluster, where anyone is anyone). See meta's mount sessions.
func (m *Master) sessionOwner(ctx context.Context) string {
	if m.cfg.TLS == nil {
		return ""
	}
	role, name, ok := auth.PeerIdentity(ctx)
	if !ok {
		return "unauthenticated" // never "": that is an insecure session, anyone's to take
	}
	return string(role) + ":" + name
}

// owner is who owns what the caller on ctx creates by path: root (0:0)
// for root, else the user.
func (m *Master) owner(ctx context.Context) (uid, gid uint32) {
	if u := m.caller(ctx); !u.Root {
		return u.UID, u.GID
	}
	return 0, 0
}

// authorize is the gRPC interceptor that checks each namespace, FS and
// volume call against the caller's permissions, and makes a user's new
// inodes its own. The checks go with the call's context to propose,
// which wraps the command in a meta.As carrying them: Apply checks
// them again where the command lands in the log, so a permission taken
// away by a command that committed first is never used after it.
func (m *Master) authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	u := m.caller(ctx)
	if u.Root || !m.IsLeader() {
		return h(ctx, req) // a follower answers NOT_LEADER
	}
	ownNew(u, req)
	checks := checksFor(info.FullMethod, req)
	if len(checks) == 0 {
		return h(ctx, req)
	}
	var err error
	m.fsm.view(func(st *meta.State) { err = st.Allow(u, checks) })
	if err != nil {
		return nil, metaErr(err)
	}
	return h(context.WithValue(ctx, guardKey{}, &guard{user: u, checks: checks}), req)
}

// guard is a call's caller and the checks it passed, on its context.
type guard struct {
	user   meta.User
	checks []meta.Check
}

type guardKey struct{}

// guarded is c as the call on ctx proposes it: in a meta.As with the
// call's checks when it has any.
func guarded(ctx context.Context, c meta.Command) meta.Command {
	if g, ok := ctx.Value(guardKey{}).(*guard); ok && g != nil {
		return meta.As{User: g.user, Checks: g.checks, Cmd: c}
	}
	return c
}

// ownNew makes the owner of what a request creates the caller, and its
// group the one asked for when the caller is in it, else the caller's.
func ownNew(u meta.User, req any) {
	group := func(asked uint32) uint32 {
		if u.InGroup(asked) {
			return asked
		}
		return u.GID
	}
	switch r := req.(type) {
	case *api.CreateAtRequest:
		r.Uid, r.Gid = u.UID, group(r.Gid)
	case *api.MkdirAtRequest:
		r.Uid, r.Gid = u.UID, group(r.Gid)
	case *api.SymlinkRequest:
		r.Uid, r.Gid = u.UID, group(r.Gid)
	case *api.MknodRequest:
		r.Uid, r.Gid = u.UID, group(r.Gid)
	}
}

// checksFor is what a caller must pass to make the call: none for the
// calls anyone may make (Statfs, Status, the mount session calls,
// Unhold, volume listings).
func checksFor(method string, req any) []meta.Check {
	path := func(p string, want uint32) meta.Check {
		return meta.Check{Op: meta.CheckOpPath, Path: p, Want: want}
	}
	entryPath := func(p string, remove bool) meta.Check {
		return meta.Check{Op: meta.CheckOpEntryPath, Path: p, Remove: remove}
	}
	inode := func(ino uint64, want uint32) meta.Check {
		return meta.Check{Op: meta.CheckOpInode, Inode: ino, Want: want}
	}
	entry := func(dir uint64, name string, remove bool) meta.Check {
		return meta.Check{Op: meta.CheckOpEntry, Inode: dir, Name: name, Remove: remove}
	}
	open := func(ino uint64) meta.Check { return meta.Check{Op: meta.CheckOpOpen, Inode: ino} }
	reach := func(ino uint64) meta.Check { return meta.Check{Op: meta.CheckOpReach, Inode: ino} }
	owner := func(ino uint64) meta.Check { return meta.Check{Op: meta.CheckOpOwner, Inode: ino} }
	// An ACL is the owner's to change (as chmod), other xattrs anyone's
	// who may write the inode.
	xattr := func(ino uint64, name string) []meta.Check {
		if name == meta.ACLAccessXattr || name == meta.ACLDefaultXattr {
			return []meta.Check{reach(ino), owner(ino)}
		}
		return []meta.Check{inode(ino, meta.MayWrite)}
	}

	switch method {
	// The namespace by path.
	case api.Master_Mkdir_FullMethodName:
		return []meta.Check{entryPath(req.(*api.MkdirRequest).Path, false)}
	case api.Master_Create_FullMethodName:
		r := req.(*api.CreateRequest)
		if !r.Overwrite {
			return []meta.Check{entryPath(r.Path, false)}
		}
		return []meta.Check{entryPath(r.Path, false), path(r.Path, meta.MayWrite)}
	case api.Master_Lookup_FullMethodName:
		return []meta.Check{path(req.(*api.LookupRequest).Path, 0)}
	case api.Master_List_FullMethodName:
		return []meta.Check{path(req.(*api.ListRequest).Path, meta.MayRead)}
	case api.Master_Rename_FullMethodName:
		r := req.(*api.RenameRequest)
		return []meta.Check{entryPath(r.Src, true), entryPath(r.Dst, true),
			{Op: meta.CheckOpMovePath, Path: r.Src, Dst: r.Dst}}
	case api.Master_Remove_FullMethodName:
		r := req.(*api.RemoveRequest)
		if !r.Recursive {
			return []meta.Check{entryPath(r.Path, true)}
		}
		return []meta.Check{entryPath(r.Path, true), {Op: meta.CheckOpTree, Path: r.Path}}
	case api.Master_SetSize_FullMethodName:
		return []meta.Check{inode(req.(*api.SetSizeRequest).Inode, meta.MayWrite)}
	case api.Master_AllocateChunk_FullMethodName:
		return []meta.Check{inode(req.(*api.AllocateChunkRequest).Inode, meta.MayWrite)}
	case api.Master_SetReplication_FullMethodName:
		// A file's factor is for who may write it (as HDFS's setrep), a
		// volume's for root (as its size).
		if r := req.(*api.SetReplicationRequest); r.Volume == "" {
			return []meta.Check{path(r.Path, meta.MayWrite)}
		}
		return []meta.Check{{Op: meta.CheckOpRoot, Name: method}}
	case api.Master_Snapshot_FullMethodName:
		return []meta.Check{path(req.(*api.SnapshotRequest).Path, meta.MayWrite)}
	case api.Master_RemoveSnapshot_FullMethodName:
		return []meta.Check{path(req.(*api.RemoveSnapshotRequest).Path, meta.MayWrite)}
	case api.Master_ListSnapshots_FullMethodName:
		return []meta.Check{path(req.(*api.ListSnapshotsRequest).Path, 0)}
	case api.Master_Clone_FullMethodName:
		// A clone is the caller's: only of what it may read, all of it.
		r := req.(*api.CloneRequest)
		return []meta.Check{{Op: meta.CheckOpReadTree, Path: r.Src}, entryPath(r.Dst, false)}
	case api.Master_GetChunks_FullMethodName:
		return []meta.Check{open(req.(*api.GetChunksRequest).Inode)}
	case api.Master_Concat_FullMethodName:
		return concatChecks(req.(*api.ConcatRequest))

	// The namespace by inode (the FUSE mount).
	case api.FS_Getattr_FullMethodName, api.FS_Readlink_FullMethodName:
		return []meta.Check{inode(req.(*api.GetattrRequest).Inode, 0)}
	case api.FS_LookupChild_FullMethodName:
		return []meta.Check{inode(req.(*api.LookupChildRequest).Parent, meta.MayExec)}
	case api.FS_Readdir_FullMethodName:
		return []meta.Check{inode(req.(*api.ReaddirRequest).Inode, meta.MayRead)}
	case api.FS_Setattr_FullMethodName:
		r := req.(*api.SetattrRequest)
		checks := []meta.Check{reach(r.Inode)}
		set := api.SetattrField(r.Set)
		if set&(api.SetattrField_SETATTR_UID|api.SetattrField_SETATTR_GID) != 0 {
			checks = append(checks, meta.Check{Op: meta.CheckOpChown, Inode: r.Inode,
				SetUID: set&api.SetattrField_SETATTR_UID != 0, UID: r.Uid,
				SetGID: set&api.SetattrField_SETATTR_GID != 0, GID: r.Gid})
		}
		if set&(api.SetattrField_SETATTR_MODE|api.SetattrField_SETATTR_ATIME|api.SetattrField_SETATTR_MTIME) != 0 {
			checks = append(checks, owner(r.Inode))
		}
		return checks
	case api.FS_Create_FullMethodName:
		r := req.(*api.CreateAtRequest)
		return []meta.Check{entry(r.Parent, r.Name, false)}
	case api.FS_Mkdir_FullMethodName:
		r := req.(*api.MkdirAtRequest)
		return []meta.Check{entry(r.Parent, r.Name, false)}
	case api.FS_Symlink_FullMethodName:
		r := req.(*api.SymlinkRequest)
		return []meta.Check{entry(r.Parent, r.Name, false)}
	case api.FS_Mknod_FullMethodName:
		r := req.(*api.MknodRequest)
		return []meta.Check{entry(r.Parent, r.Name, false)}
	case api.FS_Link_FullMethodName:
		r := req.(*api.LinkRequest)
		return []meta.Check{{Op: meta.CheckOpLinkSource, Inode: r.Inode}, entry(r.Parent, r.Name, false)}
	case api.FS_Unlink_FullMethodName, api.FS_Rmdir_FullMethodName:
		r := req.(*api.UnlinkRequest)
		return []meta.Check{entry(r.Parent, r.Name, true)}
	case api.FS_Rename_FullMethodName:
		r := req.(*api.RenameAtRequest)
		checks := []meta.Check{entry(r.SrcParent, r.SrcName, true), entry(r.DstParent, r.DstName, true),
			{Op: meta.CheckOpMove, Inode: r.SrcParent, Name: r.SrcName, DstInode: r.DstParent}}
		if r.Exchange { // the other entry moves too
			checks = append(checks, meta.Check{Op: meta.CheckOpMove, Inode: r.DstParent, Name: r.DstName, DstInode: r.SrcParent})
		}
		return checks
	case api.FS_Hold_FullMethodName:
		// Holding a file open keeps it (and its space) after its last
		// name goes: only for one the caller could open.
		return []meta.Check{open(req.(*api.HoldRequest).Inode)}
	case api.FS_GetXattr_FullMethodName:
		return []meta.Check{inode(req.(*api.GetXattrRequest).Inode, meta.MayRead)}
	case api.FS_ListXattr_FullMethodName:
		return []meta.Check{inode(req.(*api.GetattrRequest).Inode, meta.MayRead)}
	case api.FS_SetXattr_FullMethodName:
		r := req.(*api.SetXattrRequest)
		return xattr(r.Inode, r.Name)
	case api.FS_RemoveXattr_FullMethodName:
		r := req.(*api.GetXattrRequest)
		return xattr(r.Inode, r.Name)

	// Volumes are root's to make, resize and remove.
	case api.Volumes_CreateVolume_FullMethodName, api.Volumes_ResizeVolume_FullMethodName, api.Volumes_RemoveVolume_FullMethodName,
		api.Volumes_SnapshotVolume_FullMethodName, api.Volumes_RemoveVolumeSnapshot_FullMethodName,
		api.Volumes_CloneVolume_FullMethodName, api.Volumes_RollbackVolume_FullMethodName,
		api.Volumes_AttachOverlay_FullMethodName, api.Volumes_DetachOverlay_FullMethodName, api.Volumes_PromoteOverlay_FullMethodName,
		api.Volumes_AttachWriter_FullMethodName, api.Volumes_RenewWriter_FullMethodName, api.Volumes_ReleaseWriter_FullMethodName:
		return []meta.Check{{Op: meta.CheckOpRoot, Name: method}}
	}
	return nil
}
