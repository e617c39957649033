package client

import (
	"context"
	"errors"
	"fmt"
	"google.golang.org/grpc"
	"os"
	"time"

	"github.com/catena-io/catena/api"
	"github.com/catena-io/catena/internal/rpcerr"
)

// Inode-based namespace calls for the FUSE mount (the FS service). Every
// call follows the master leader and retries like the path-based calls,
// within OpTimeout.

// ErrNoAttr: the extended attribute is not set (ENODATA).
var ErrNoAttr = errors.New("no such attribute")

// NodeType is the kind of an inode.
type NodeType int

const (
	TypeFile NodeType = iota
	TypeDir
	TypeSymlink
	// Special files (MknodAt): metadata only.
	TypeFifo
	TypeCharDevice
	TypeBlockDevice
	TypeSocket
)

// Attr are an inode's POSIX attributes.
type Attr struct {
	Ino                 uint64
	Type                NodeType
	Mode                uint32 // permission bits (07777)
	Uid, Gid            uint32
	Nlink               uint32
	Size                int64
	Atime, Mtime, Ctime time.Time
	Replication         int
	ChunkSize           int64
	Target              string // symlinks
	Rdev                uint32 // devices: the device number (Linux encoding)
	ReadOnly            bool   // in a snapshot: every change fails with ErrReadOnly
}

// DirEntry is one entry of ReadDirInode.
type DirEntry struct {
	Name string
	Attr Attr
}

// SetAttrIn says which attributes SetAttr changes (size goes through
// File.Truncate).
type SetAttrIn struct {
	Mode, Uid, Gid *uint32
	Atime, Mtime   *time.Time
}

// Xattr modes of SetXattr.
const (
	XattrAny     = 0
	XattrCreate  = 1
	XattrReplace = 2
)

// StatFS is the cluster's capacity as the live chunkservers report it.
type StatFS struct {
	CapacityBytes, FreeBytes int64
	Files, Directories       uint64
}

func attrFromAPI(a *api.Attr) Attr {
	return Attr{Ino: a.GetInode(), Type: NodeType(a.GetType()), Mode: a.GetMode(), Uid: a.GetUid(), Gid: a.GetGid(),
		Nlink: a.GetNlink(), Size: a.GetSize(), Atime: time.Unix(0, a.GetAtimeUnixNano()),
		Mtime: time.Unix(0, a.GetMtimeUnixNano()), Ctime: time.Unix(0, a.GetCtimeUnixNano()),
		Replication: int(a.GetReplication()), ChunkSize: a.GetChunkSize(), Target: a.GetTarget(), Rdev: a.GetRdev(),
		ReadOnly: a.GetReadOnly()}
}

// callFS is callMaster for the FS service.
func callFS[T any](ctx context.Context, c *Client, fn func(context.Context, api.FSClient) (T, error)) (T, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	return callLeader(ctx, c, func(ctx context.Context, cc *grpc.ClientConn) (T, error) {
		return fn(ctx, api.NewFSClient(cc))
	})
}

func attrCall(ctx context.Context, c *Client, op string, fn func(context.Context, api.FSClient) (*api.AttrResponse, error)) (*Attr, error) {
	resp, err := callFS(ctx, c, fn)
	if err != nil {
		return nil, opError(op, "", err)
	}
	a := attrFromAPI(resp.GetAttr())
	return &a, nil
}

// LookupChild returns the attributes of entry name of directory parent.
func (c *Client) LookupChild(ctx context.Context, parent uint64, name string) (*Attr, error) {
	return attrCall(ctx, c, "lookup "+name, func(ctx context.Context, f api.FSClient) (*api.AttrResponse, error) {
		return f.LookupChild(ctx, &api.LookupChildRequest{Parent: parent, Name: name})
	})
}

// GetAttr returns an inode's attributes.
func (c *Client) GetAttr(ctx context.Context, ino uint64) (*Attr, error) {
	return attrCall(ctx, c, "getattr", func(ctx context.Context, f api.FSClient) (*api.AttrResponse, error) {
		return f.Getattr(ctx, &api.GetattrRequest{Inode: ino})
	})
}

// SetAttr changes mode, owner and times.
func (c *Client) SetAttr(ctx context.Context, ino uint64, in SetAttrIn) (*Attr, error) {
	req := &api.SetattrRequest{Inode: ino}
	if in.Mode != nil {
		req.Set |= uint32(api.SetattrField_SETATTR_MODE)
		req.Mode = *in.Mode
	}
	if in.Uid != nil {
		req.Set |= uint32(api.SetattrField_SETATTR_UID)
		req.Uid = *in.Uid
	}
	if in.Gid != nil {
		req.Set |= uint32(api.SetattrField_SETATTR_GID)
		req.Gid = *in.Gid
	}
	if in.Atime != nil {
		req.Set |= uint32(api.SetattrField_SETATTR_ATIME)
		req.AtimeUnixNano = in.Atime.UnixNano()
	}
	if in.Mtime != nil {
		req.Set |= uint32(api.SetattrField_SETATTR_MTIME)
		req.MtimeUnixNano = in.Mtime.UnixNano()
	}
	return attrCall(ctx, c, "setattr", func(ctx context.Context, f api.FSClient) (*api.AttrResponse, error) {
		return f.Setattr(ctx, req)
	})
}

// ReadDirInode lists directory ino, sorted by name.
func (c *Client) ReadDirInode(ctx context.Context, ino uint64) ([]DirEntry, error) {
	var out []DirEntry
	for after := ""; ; {
		resp, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.ReaddirResponse, error) {
			return f.Readdir(ctx, &api.ReaddirRequest{Inode: ino, StartAfter: after})
		})
		if err != nil {
			return nil, opError("readdir", "", err)
		}
		for _, e := range resp.GetEntries() {
			out = append(out, DirEntry{Name: e.GetName(), Attr: attrFromAPI(e.GetAttr())})
		}
		if !resp.GetMore() || len(resp.GetEntries()) == 0 {
			return out, nil
		}
		after = out[len(out)-1].Name
	}
}

// CreateAt creates an empty file; ErrExist when the name is taken. Its
// mode is mode less umask's bits, unless the directory has a default
// ACL, which governs instead (as on a local file system).
func (c *Client) CreateAt(ctx context.Context, parent uint64, name string, mode, umask, uid, gid uint32, o CreateOptions) (*Attr, error) {
	return attrCall(ctx, c, "create "+name, func(ctx context.Context, f api.FSClient) (*api.AttrResponse, error) {
		return f.Create(ctx, &api.CreateAtRequest{Parent: parent, Name: name, Mode: mode, Umask: umask, Uid: uid, Gid: gid,
			Replication: uint32(max(o.Replication, 0)), ChunkSize: o.ChunkSize})
	})
}

// MkdirAt creates a directory (umask as CreateAt's).
func (c *Client) MkdirAt(ctx context.Context, parent uint64, name string, mode, umask, uid, gid uint32) (*Attr, error) {
	return attrCall(ctx, c, "mkdir "+name, func(ctx context.Context, f api.FSClient) (*api.AttrResponse, error) {
		return f.Mkdir(ctx, &api.MkdirAtRequest{Parent: parent, Name: name, Mode: mode, Umask: umask, Uid: uid, Gid: gid})
	})
}

// SymlinkAt creates a symbolic link name -> target.
func (c *Client) SymlinkAt(ctx context.Context, parent uint64, name, target string, uid, gid uint32) (*Attr, error) {
	return attrCall(ctx, c, "symlink "+name, func(ctx context.Context, f api.FSClient) (*api.AttrResponse, error) {
		return f.Symlink(ctx, &api.SymlinkRequest{Parent: parent, Name: name, Target: target, Uid: uid, Gid: gid})
	})
}

// MknodAt creates a special file: t is TypeFifo, TypeCharDevice,
// TypeBlockDevice or TypeSocket; rdev counts for devices only (umask as
// CreateAt's).
func (c *Client) MknodAt(ctx context.Context, parent uint64, name string, t NodeType, mode, umask, rdev, uid, gid uint32) (*Attr, error) {
	return attrCall(ctx, c, "mknod "+name, func(ctx context.Context, f api.FSClient) (*api.AttrResponse, error) {
		return f.Mknod(ctx, &api.MknodRequest{Parent: parent, Name: name, Type: api.NodeType(t), Mode: mode, Umask: umask, Rdev: rdev,
			Uid: uid, Gid: gid})
	})
}

// LinkAt gives file ino the extra name name in directory parent.
func (c *Client) LinkAt(ctx context.Context, ino, parent uint64, name string) (*Attr, error) {
	return attrCall(ctx, c, "link "+name, func(ctx context.Context, f api.FSClient) (*api.AttrResponse, error) {
		return f.Link(ctx, &api.LinkRequest{Inode: ino, Parent: parent, Name: name})
	})
}

// UnlinkAt removes a non-directory entry (ErrIsDir on a directory).
func (c *Client) UnlinkAt(ctx context.Context, parent uint64, name string) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.UnlinkResponse, error) {
		return f.Unlink(ctx, &api.UnlinkRequest{Parent: parent, Name: name})
	})
	return opError("unlink", name, err)
}

// RmdirAt removes an empty directory.
func (c *Client) RmdirAt(ctx context.Context, parent uint64, name string) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.UnlinkResponse, error) {
		return f.Rmdir(ctx, &api.UnlinkRequest{Parent: parent, Name: name})
	})
	return opError("rmdir", name, err)
}

// RenameAt renames an entry, replacing the destination unless noReplace.
func (c *Client) RenameAt(ctx context.Context, srcParent uint64, srcName string, dstParent uint64, dstName string, noReplace bool) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.RenameAtResponse, error) {
		return f.Rename(ctx, &api.RenameAtRequest{SrcParent: srcParent, SrcName: srcName, DstParent: dstParent,
			DstName: dstName, NoReplace: noReplace})
	})
	return opError("rename", srcName, err)
}

// ExchangeAt swaps two existing entries atomically (RENAME_EXCHANGE).
func (c *Client) ExchangeAt(ctx context.Context, srcParent uint64, srcName string, dstParent uint64, dstName string) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.RenameAtResponse, error) {
		return f.Rename(ctx, &api.RenameAtRequest{SrcParent: srcParent, SrcName: srcName, DstParent: dstParent,
			DstName: dstName, Exchange: true})
	})
	return opError("exchange", srcName, err)
}

// Readlink returns a symlink's target.
func (c *Client) Readlink(ctx context.Context, ino uint64) (string, error) {
	resp, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.ReadlinkResponse, error) {
		return f.Readlink(ctx, &api.GetattrRequest{Inode: ino})
	})
	if err != nil {
		return "", opError("readlink", "", err)
	}
	return resp.GetTarget(), nil
}

// GetXattr returns an extended attribute; ErrNoAttr when it is not set.
func (c *Client) GetXattr(ctx context.Context, ino uint64, name string) ([]byte, error) {
	resp, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.GetXattrResponse, error) {
		return f.GetXattr(ctx, &api.GetXattrRequest{Inode: ino, Name: name})
	})
	if err != nil {
		return nil, xattrError("getxattr", name, err)
	}
	return resp.GetValue(), nil
}

// ListXattr returns the names of an inode's extended attributes.
func (c *Client) ListXattr(ctx context.Context, ino uint64) ([]string, error) {
	resp, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.ListXattrResponse, error) {
		return f.ListXattr(ctx, &api.GetattrRequest{Inode: ino})
	})
	if err != nil {
		return nil, opError("listxattr", "", err)
	}
	return resp.GetNames(), nil
}

// SetXattr sets an extended attribute; mode is XattrAny, XattrCreate
// (ErrExist when set) or XattrReplace (ErrNoAttr when not set).
func (c *Client) SetXattr(ctx context.Context, ino uint64, name string, value []byte, mode int) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.SetXattrResponse, error) {
		return f.SetXattr(ctx, &api.SetXattrRequest{Inode: ino, Name: name, Value: value, Mode: uint32(mode)})
	})
	return xattrError("setxattr", name, err)
}

// RemoveXattr removes an extended attribute; ErrNoAttr when it is not set.
func (c *Client) RemoveXattr(ctx context.Context, ino uint64, name string) error {
	_, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.SetXattrResponse, error) {
		return f.RemoveXattr(ctx, &api.GetXattrRequest{Inode: ino, Name: name})
	})
	return xattrError("removexattr", name, err)
}

func xattrError(op, name string, err error) error {
	if err != nil && rpcerr.Code(err) == api.ErrorCode_NOT_FOUND {
		return fmt.Errorf("%s %s: %w", op, name, ErrNoAttr)
	}
	return opError(op, name, err)
}

// StatFS returns the cluster's capacity and counts.
func (c *Client) StatFS(ctx context.Context) (*StatFS, error) {
	resp, err := callFS(ctx, c, func(ctx context.Context, f api.FSClient) (*api.StatfsResponse, error) {
		return f.Statfs(ctx, &api.StatfsRequest{})
	})
	if err != nil {
		return nil, opError("statfs", "", err)
	}
	return &StatFS{CapacityBytes: resp.GetCapacityBytes(), FreeBytes: resp.GetFreeBytes(),
		Files: resp.GetFiles(), Directories: resp.GetDirectories()}, nil
}

// OpenInode opens file ino for I/O through the usual chunk path; name only
// labels errors. The size is the master's at open (close-to-open).
func (c *Client) OpenInode(ctx context.Context, ino uint64, name string) (*File, error) {
	a, err := c.GetAttr(ctx, ino)
	if err != nil {
		return nil, err
	}
	if a.Type != TypeFile {
		return nil, opError("open", name, ErrIsDir)
	}
	return newFile(c, name, FileInfo{Inode: ino, Name: name, Mode: os.FileMode(a.Mode & 0o777), Size: a.Size,
		ModTime: a.Mtime, Replication: a.Replication, ChunkSize: a.ChunkSize, ReadOnly: a.ReadOnly}), nil
}

// PunchHole makes [off, off+n) of f read as zeros, freeing whole chunks'
// space on the replicas; the size does not change. Same path as
// Volume.Zero.
func (f *File) PunchHole(ctx context.Context, off, n int64) error {
	if off < 0 || n < 0 {
		return opError("punch", f.path, ErrInvalid)
	}
	if n > MaxFileSize || off > MaxFileSize-n {
		return opError("punch", f.path, detailf(ErrFileTooBig, "%d bytes at %d end past %d", n, off, int64(MaxFileSize)))
	}
	v := &Volume{f: f, info: VolumeInfo{Size: max(off+n, f.Size())}}
	return v.ZeroContext(ctx, off, n)
}
