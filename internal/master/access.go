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
// directories are its own. The check and the command's commit are not
// one step: a permission changed in between applies from the next call.

// caller is who makes the call on ctx.
func (m *Master) caller(ctx context.Context) meta.User {
	if m.cfg.TLS == nil {
		return meta.User{Root: true}
	}
	role, _, ok := auth.PeerIdentity(ctx)
	if !ok {
		return meta.Nobody
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
// inodes its own.
func (m *Master) authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	u := m.caller(ctx)
	if u.Root || !m.IsLeader() {
		return h(ctx, req) // a follower answers NOT_LEADER
	}
	ownNew(u, req)
	var err error
	m.fsm.view(func(st *meta.State) { err = checkCall(st, u, info.FullMethod, req) })
	if err != nil {
		return nil, metaErr(err)
	}
	return h(ctx, req)
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

// checkCall is nil when u may make the call; st is read-locked.
func checkCall(st *meta.State, u meta.User, method string, req any) error {
	switch method {
	// The namespace by path.
	case api.Master_Mkdir_FullMethodName:
		return st.CheckEntryPath(u, req.(*api.MkdirRequest).Path, false)
	case api.Master_Create_FullMethodName:
		r := req.(*api.CreateRequest)
		if err := st.CheckEntryPath(u, r.Path, false); err != nil || !r.Overwrite {
			return err
		}
		return st.CheckPath(u, r.Path, meta.MayWrite)
	case api.Master_Lookup_FullMethodName:
		return st.CheckPath(u, req.(*api.LookupRequest).Path, 0)
	case api.Master_List_FullMethodName:
		return st.CheckPath(u, req.(*api.ListRequest).Path, meta.MayRead)
	case api.Master_Rename_FullMethodName:
		r := req.(*api.RenameRequest)
		if err := st.CheckEntryPath(u, r.Src, true); err != nil {
			return err
		}
		return st.CheckEntryPath(u, r.Dst, true)
	case api.Master_Remove_FullMethodName:
		r := req.(*api.RemoveRequest)
		if err := st.CheckEntryPath(u, r.Path, true); err != nil || !r.Recursive {
			return err
		}
		return st.CheckTree(u, r.Path)
	case api.Master_SetSize_FullMethodName:
		return st.CheckInode(u, req.(*api.SetSizeRequest).Inode, meta.MayWrite)
	case api.Master_AllocateChunk_FullMethodName:
		return st.CheckInode(u, req.(*api.AllocateChunkRequest).Inode, meta.MayWrite)
	case api.Master_GetChunks_FullMethodName:
		return checkOpen(st, u, req.(*api.GetChunksRequest).Inode)

	// The namespace by inode (the FUSE mount).
	case api.FS_Getattr_FullMethodName, api.FS_Readlink_FullMethodName:
		return st.CheckInode(u, req.(*api.GetattrRequest).Inode, 0)
	case api.FS_LookupChild_FullMethodName:
		return st.CheckInode(u, req.(*api.LookupChildRequest).Parent, meta.MayExec)
	case api.FS_Readdir_FullMethodName:
		return st.CheckInode(u, req.(*api.ReaddirRequest).Inode, meta.MayRead)
	case api.FS_Setattr_FullMethodName:
		r := req.(*api.SetattrRequest)
		if err := st.CheckReach(u, r.Inode); err != nil {
			return err
		}
		set := api.SetattrField(r.Set)
		if set&(api.SetattrField_SETATTR_UID|api.SetattrField_SETATTR_GID) != 0 {
			fi, err := st.Stat(r.Inode)
			if err != nil {
				return nil // the handler says so
			}
			uid, gid := fi.Uid, fi.Gid
			if set&api.SetattrField_SETATTR_UID != 0 {
				uid = r.Uid
			}
			if set&api.SetattrField_SETATTR_GID != 0 {
				gid = r.Gid
			}
			if err := st.CheckChown(u, r.Inode, uid, gid); err != nil {
				return err
			}
		}
		if set&(api.SetattrField_SETATTR_MODE|api.SetattrField_SETATTR_ATIME|api.SetattrField_SETATTR_MTIME) != 0 {
			return st.CheckOwner(u, r.Inode)
		}
		return nil
	case api.FS_Create_FullMethodName:
		r := req.(*api.CreateAtRequest)
		return st.CheckEntry(u, r.Parent, r.Name, false)
	case api.FS_Mkdir_FullMethodName:
		r := req.(*api.MkdirAtRequest)
		return st.CheckEntry(u, r.Parent, r.Name, false)
	case api.FS_Symlink_FullMethodName:
		r := req.(*api.SymlinkRequest)
		return st.CheckEntry(u, r.Parent, r.Name, false)
	case api.FS_Mknod_FullMethodName:
		r := req.(*api.MknodRequest)
		return st.CheckEntry(u, r.Parent, r.Name, false)
	case api.FS_Link_FullMethodName:
		r := req.(*api.LinkRequest)
		return st.CheckEntry(u, r.Parent, r.Name, false)
	case api.FS_Unlink_FullMethodName, api.FS_Rmdir_FullMethodName:
		r := req.(*api.UnlinkRequest)
		return st.CheckEntry(u, r.Parent, r.Name, true)
	case api.FS_Rename_FullMethodName:
		r := req.(*api.RenameAtRequest)
		if err := st.CheckEntry(u, r.SrcParent, r.SrcName, true); err != nil {
			return err
		}
		return st.CheckEntry(u, r.DstParent, r.DstName, true)
	case api.FS_Hold_FullMethodName:
		// Holding a file open keeps it (and its space) after its last
		// name goes: only for one the caller could open.
		return checkOpen(st, u, req.(*api.HoldRequest).Inode)
	case api.FS_GetXattr_FullMethodName:
		return st.CheckInode(u, req.(*api.GetXattrRequest).Inode, meta.MayRead)
	case api.FS_ListXattr_FullMethodName:
		return st.CheckInode(u, req.(*api.GetattrRequest).Inode, meta.MayRead)
	case api.FS_SetXattr_FullMethodName:
		r := req.(*api.SetXattrRequest)
		return checkXattrChange(st, u, r.Inode, r.Name)
	case api.FS_RemoveXattr_FullMethodName:
		r := req.(*api.GetXattrRequest)
		return checkXattrChange(st, u, r.Inode, r.Name)

	// Volumes are root's to make, resize and remove.
	case api.Volumes_CreateVolume_FullMethodName, api.Volumes_ResizeVolume_FullMethodName, api.Volumes_RemoveVolume_FullMethodName:
		return denyNonRoot(method)
	}
	// Statfs, Status, the mount session calls, Unhold, volume listings:
	// nothing to check.
	return nil
}

// checkOpen: u could open inode ino, to read or to write.
func checkOpen(st *meta.State, u meta.User, ino uint64) error {
	if err := st.CheckReach(u, ino); err != nil {
		return err
	}
	if read, write := st.Rights(u, ino); read || write {
		return nil
	}
	return st.CheckInode(u, ino, meta.MayRead)
}

// checkXattrChange: an ACL is the owner's to change (as chmod), other
// xattrs anyone's who may write the inode.
func checkXattrChange(st *meta.State, u meta.User, ino uint64, name string) error {
	if name == meta.ACLAccessXattr || name == meta.ACLDefaultXattr {
		if err := st.CheckReach(u, ino); err != nil {
			return err
		}
		return st.CheckOwner(u, ino)
	}
	return st.CheckInode(u, ino, meta.MayWrite)
}

func denyNonRoot(method string) error {
	return &meta.Error{Kind: meta.ErrPermission, Detail: method + " is root's (an admin certificate's)"}
}
