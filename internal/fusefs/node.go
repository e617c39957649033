package fusefs

import (
	"context"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/catena-io/catena/client"
)

// node is one Catena inode.
type node struct {
	fs.Inode
	fsys *fsys
	ino  uint64

	mu sync.Mutex
	of *openFile // non-nil while a handle is open
	// noCap remembers, while the file is open, that it has no
	// security.capability: the kernel asks before every write.
	noCap bool
}

var (
	_ fs.NodeLookuper      = (*node)(nil)
	_ fs.NodeGetattrer     = (*node)(nil)
	_ fs.NodeSetattrer     = (*node)(nil)
	_ fs.NodeReaddirer     = (*node)(nil)
	_ fs.NodeMkdirer       = (*node)(nil)
	_ fs.NodeCreater       = (*node)(nil)
	_ fs.NodeUnlinker      = (*node)(nil)
	_ fs.NodeRmdirer       = (*node)(nil)
	_ fs.NodeRenamer       = (*node)(nil)
	_ fs.NodeSymlinker     = (*node)(nil)
	_ fs.NodeReadlinker    = (*node)(nil)
	_ fs.NodeLinker        = (*node)(nil)
	_ fs.NodeMknoder       = (*node)(nil)
	_ fs.NodeStatfser      = (*node)(nil)
	_ fs.NodeGetxattrer    = (*node)(nil)
	_ fs.NodeSetxattrer    = (*node)(nil)
	_ fs.NodeListxattrer   = (*node)(nil)
	_ fs.NodeRemovexattrer = (*node)(nil)
)

// child returns the kernel inode for a, creating its node if new.
func (n *node) child(ctx context.Context, a *client.Attr, out *fuse.EntryOut) *fs.Inode {
	fillAttr(a, &out.Attr)
	out.SetEntryTimeout(n.fsys.cfg.EntryTimeout)
	out.SetAttrTimeout(n.fsys.cfg.AttrTimeout)
	c := &node{fsys: n.fsys, ino: a.Ino}
	return n.NewInode(ctx, c, fs.StableAttr{Mode: typeBits(a.Type), Ino: a.Ino})
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := nameErr(name); e != 0 {
		return nil, e
	}
	ctx = uninterruptible(ctx)
	a, err := n.fsys.c.LookupChild(ctx, n.ino, name)
	if err != nil {
		return nil, errno(err)
	}
	ch := n.child(ctx, a, out)
	if on := n.fsys.openNode(a.Ino); on != nil {
		on.openSize(&out.Attr)
	}
	return ch, 0
}

// openSize replaces the master's size by this mount's while the file is open.
func (n *node) openSize(out *fuse.Attr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.of != nil {
		out.Size = uint64(n.of.sizeLocked())
		out.Blocks = (out.Size + 511) / 512
	}
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	a, err := n.fsys.c.GetAttr(ctx, n.ino)
	if err != nil {
		return errno(err)
	}
	fillAttr(a, &out.Attr)
	n.openSize(&out.Attr)
	out.SetTimeout(n.fsys.cfg.AttrTimeout)
	return 0
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	if size, ok := in.GetSize(); ok {
		if err := n.truncate(ctx, int64(size)); err != nil {
			return errno(err)
		}
	}
	var sa client.SetAttrIn
	if m, ok := in.GetMode(); ok {
		m &= 0o7777
		sa.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		sa.Uid = &u
	}
	if g, ok := in.GetGID(); ok {
		sa.Gid = &g
	}
	if t, ok := in.GetATime(); ok {
		sa.Atime = &t
	}
	if t, ok := in.GetMTime(); ok {
		sa.Mtime = &t
		// tar, cp -p and rsync set the mtime before close: write the
		// buffered data and size first, so neither the write-back nor
		// the close bumps the mtime they set.
		if err := n.settleForMtime(ctx); err != nil {
			return errno(err)
		}
	}
	var a *client.Attr
	var err error
	if sa == (client.SetAttrIn{}) {
		a, err = n.fsys.c.GetAttr(ctx, n.ino)
	} else {
		a, err = n.fsys.c.SetAttr(ctx, n.ino, sa)
	}
	if err != nil {
		return errno(err)
	}
	fillAttr(a, &out.Attr)
	n.openSize(&out.Attr)
	out.SetTimeout(n.fsys.cfg.AttrTimeout)
	return 0
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ctx = uninterruptible(ctx)
	ents, err := n.fsys.c.ReadDirInode(ctx, n.ino)
	if err != nil {
		return nil, errno(err)
	}
	list := make([]fuse.DirEntry, 0, len(ents))
	for _, e := range ents {
		list = append(list, fuse.DirEntry{Name: e.Name, Ino: e.Attr.Ino, Mode: typeBits(e.Attr.Type)})
	}
	return fs.NewListDirStream(list), 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := nameErr(name); e != 0 {
		return nil, e
	}
	ctx = uninterruptible(ctx)
	uid, gid := caller(ctx)
	a, err := n.fsys.c.MkdirAt(ctx, n.ino, name, mode&0o7777, umask(ctx), uid, gid)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if e := nameErr(name); e != 0 {
		return nil, nil, 0, e
	}
	ctx = uninterruptible(ctx)
	uid, gid := caller(ctx)
	a, err := n.fsys.c.CreateAt(ctx, n.ino, name, mode&0o7777, umask(ctx), uid, gid,
		client.CreateOptions{Replication: n.fsys.cfg.Replication, ChunkSize: n.fsys.cfg.ChunkSize})
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	ch := n.child(ctx, a, out)
	cn := ch.Operations().(*node)
	h, errn := cn.open(ctx, flags)
	if errn != 0 {
		return nil, nil, 0, errn
	}
	return ch, h, 0, 0
}

// Mknod makes fifos, device nodes and sockets (bind(2) of a unix socket
// comes here): metadata only, the kernel serves their opens and I/O. A
// regular file (mknod(2) with S_IFREG) is an empty created file.
func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := nameErr(name); e != 0 {
		return nil, e
	}
	ctx = uninterruptible(ctx)
	uid, gid := caller(ctx)
	var a *client.Attr
	var err error
	if t, ok := specialType(mode); ok {
		a, err = n.fsys.c.MknodAt(ctx, n.ino, name, t, mode&0o7777, umask(ctx), dev, uid, gid)
	} else if mode&syscall.S_IFMT == syscall.S_IFREG || mode&syscall.S_IFMT == 0 {
		a, err = n.fsys.c.CreateAt(ctx, n.ino, name, mode&0o7777, umask(ctx), uid, gid,
			client.CreateOptions{Replication: n.fsys.cfg.Replication, ChunkSize: n.fsys.cfg.ChunkSize})
	} else {
		return nil, syscall.EINVAL
	}
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := nameErr(name); e != 0 {
		return e
	}
	ctx = uninterruptible(ctx)
	return errno(n.fsys.c.UnlinkAt(ctx, n.ino, name))
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := nameErr(name); e != 0 {
		return e
	}
	ctx = uninterruptible(ctx)
	return errno(n.fsys.c.RmdirAt(ctx, n.ino, name))
}

// Rename supports RENAME_NOREPLACE and RENAME_EXCHANGE (one master
// command, so the swap is atomic); RENAME_WHITEOUT is EINVAL.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	const noReplace = 0x1 // RENAME_NOREPLACE
	if flags&^(noReplace|fs.RENAME_EXCHANGE) != 0 || flags == noReplace|fs.RENAME_EXCHANGE {
		return syscall.EINVAL
	}
	ctx = uninterruptible(ctx)
	if e := nameErr(name, newName); e != 0 {
		return e
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags&fs.RENAME_EXCHANGE != 0 {
		return errno(n.fsys.c.ExchangeAt(ctx, n.ino, name, np.ino, newName))
	}
	return errno(n.fsys.c.RenameAt(ctx, n.ino, name, np.ino, newName, flags&noReplace != 0))
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := nameErr(name); e != 0 {
		return nil, e
	}
	ctx = uninterruptible(ctx)
	uid, gid := caller(ctx)
	a, err := n.fsys.c.SymlinkAt(ctx, n.ino, name, target, uid, gid)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	ctx = uninterruptible(ctx)
	t, err := n.fsys.c.Readlink(ctx, n.ino)
	if err != nil {
		return nil, errno(err)
	}
	return []byte(t), 0
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := nameErr(name); e != 0 {
		return nil, e
	}
	ctx = uninterruptible(ctx)
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	a, err := n.fsys.c.LinkAt(ctx, t.ino, n.ino, name)
	if err != nil {
		return nil, errno(err)
	}
	return n.child(ctx, a, out), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	ctx = uninterruptible(ctx)
	st, err := n.fsys.c.StatFS(ctx)
	if err != nil {
		return errno(err)
	}
	const bs = 4096
	out.Bsize, out.Frsize, out.NameLen = bs, bs, maxName
	out.Blocks = uint64(st.CapacityBytes / bs)
	out.Bfree = uint64(st.FreeBytes / bs)
	out.Bavail = out.Bfree
	out.Files = st.Files + st.Directories + 1<<32
	out.Ffree = 1 << 32
	return 0
}

const capName = "security.capability"

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	if attr == capName {
		n.mu.Lock()
		no := n.noCap && n.of != nil
		n.mu.Unlock()
		if no {
			return 0, syscall.ENODATA
		}
	}
	v, err := n.fsys.c.GetXattr(ctx, n.ino, attr)
	if err != nil {
		if attr == capName && errno(err) == syscall.ENODATA {
			n.mu.Lock()
			n.noCap = n.of != nil
			n.mu.Unlock()
		}
		return 0, errno(err)
	}
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	n.mu.Lock()
	n.noCap = false
	n.mu.Unlock()
	return errno(n.fsys.c.SetXattr(ctx, n.ino, attr, data, int(flags&3)))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	ctx = uninterruptible(ctx)
	return errno(n.fsys.c.RemoveXattr(ctx, n.ino, attr))
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	names, err := n.fsys.c.ListXattr(ctx, n.ino)
	if err != nil {
		return 0, errno(err)
	}
	var b strings.Builder
	for _, nm := range names {
		b.WriteString(nm)
		b.WriteByte(0)
	}
	if len(dest) == 0 {
		return uint32(b.Len()), 0
	}
	if len(dest) < b.Len() {
		return uint32(b.Len()), syscall.ERANGE
	}
	return uint32(copy(dest, b.String())), 0
}
