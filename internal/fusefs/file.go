package fusefs

import (
	"context"
	"io"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/catena-io/catena/client"
)

var (
	_ fs.NodeOpener    = (*node)(nil)
	_ fs.NodeReader    = (*node)(nil)
	_ fs.NodeWriter    = (*node)(nil)
	_ fs.NodeFlusher   = (*node)(nil)
	_ fs.NodeFsyncer   = (*node)(nil)
	_ fs.NodeReleaser  = (*node)(nil)
	_ fs.NodeAllocater = (*node)(nil)
)

// handle is one open(2) of a file; the data state is the node's openFile.
type handle struct {
	append bool
}

// openFile is a file's I/O state while any handle is open. Guarded by the
// node's mu; I/O runs under it, so one file's operations are serialised.
type openFile struct {
	f    *client.File
	refs int
	// buf holds unflushed bytes for [bufOff, bufOff+len(buf)).
	buf    []byte
	bufOff int64
	// ra holds read-ahead bytes for [raOff, raOff+len(ra)).
	ra      []byte
	raOff   int64
	lastEnd int64 // end of the previous read, to detect sequential access
	dirty   bool  // written since the last flush: mtime to update
	err     error // a failed write-back, reported by the next flush/fsync
}

func (o *openFile) sizeLocked() int64 {
	return max(o.f.Size(), o.bufOff+int64(len(o.buf)))
}

func (n *node) open(ctx context.Context, flags uint32) (fs.FileHandle, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.of == nil {
		f, err := n.fsys.c.OpenInode(ctx, n.ino, "")
		if err != nil {
			return nil, errno(err)
		}
		n.of = &openFile{f: f}
	}
	n.of.refs++
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		n.of.buf, n.of.ra = nil, nil
		if err := n.of.f.Truncate(ctx, 0); err != nil {
			n.releaseLocked(ctx)
			return nil, errno(err)
		}
	}
	return &handle{append: flags&syscall.O_APPEND != 0}, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	h, e := n.open(ctx, flags)
	return h, 0, e
}

// flushLocked writes the buffer back.
func (n *node) flushLocked(ctx context.Context) error {
	o := n.of
	if len(o.buf) > 0 {
		_, err := o.f.WriteAtContext(ctx, o.buf, o.bufOff)
		o.buf = o.buf[:0]
		if err != nil {
			n.fsys.log.Warn("fusefs: write-back failed", "inode", n.ino, "err", err)
			o.err = err
		}
	}
	err := o.err
	o.err = nil
	return err
}

func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.of
	if o == nil {
		return 0, syscall.EBADF
	}
	if h, ok := f.(*handle); ok && h.append {
		off = o.sizeLocked()
	}
	o.dirty = true
	if o.ra != nil && off < o.raOff+int64(len(o.ra)) && off+int64(len(data)) > o.raOff {
		o.ra = nil
	}
	max := int64(n.fsys.cfg.WriteBuffer)
	end := o.bufOff + int64(len(o.buf))
	// Extend or overwrite inside the buffer; anything else flushes first.
	if len(o.buf) == 0 || off < o.bufOff || off > end || off+int64(len(data))-o.bufOff > max {
		if err := n.flushLocked(ctx); err != nil {
			return 0, errno(err)
		}
		o.bufOff = off
		end = off
	}
	rel := off - o.bufOff
	if need := rel + int64(len(data)); need > int64(len(o.buf)) {
		if need > int64(cap(o.buf)) {
			nb := make([]byte, need, min(max, 2*need))
			copy(nb, o.buf)
			o.buf = nb
		} else {
			o.buf = o.buf[:need]
		}
	}
	copy(o.buf[rel:], data)
	if int64(len(o.buf)) >= max {
		if err := n.flushLocked(ctx); err != nil {
			return 0, errno(err)
		}
	}
	return uint32(len(data)), 0
}

func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.of
	if o == nil {
		return nil, syscall.EBADF
	}
	size := o.sizeLocked()
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	want := int(min(int64(len(dest)), size-off))
	out := dest[:want]
	if err := n.readBackLocked(ctx, out, off); err != nil {
		return nil, errno(err)
	}
	// Unflushed bytes win over what the replicas hold.
	if len(o.buf) > 0 {
		lo, hi := max(off, o.bufOff), min(off+int64(want), o.bufOff+int64(len(o.buf)))
		if lo < hi {
			copy(out[lo-off:hi-off], o.buf[lo-o.bufOff:hi-o.bufOff])
		}
	}
	o.lastEnd = off + int64(want)
	return fuse.ReadResultData(out), 0
}

// readBackLocked fills p from the replicas (zeros past their size), through
// the read-ahead when access is sequential.
func (n *node) readBackLocked(ctx context.Context, p []byte, off int64) error {
	o := n.of
	clear(p)
	fsize := o.f.Size()
	if off >= fsize {
		return nil
	}
	end := off + int64(len(p))
	if o.ra != nil && off >= o.raOff && end <= o.raOff+int64(len(o.ra)) {
		copy(p, o.ra[off-o.raOff:])
		return nil
	}
	if off == o.lastEnd && len(p) < n.fsys.cfg.ReadAhead {
		ra := make([]byte, min(int64(n.fsys.cfg.ReadAhead), fsize-off))
		k, err := o.f.ReadAtContext(ctx, ra, off)
		if err != nil && err != io.EOF {
			return err
		}
		o.ra, o.raOff = ra[:k], off
		copy(p, o.ra)
		return nil
	}
	k := min(int64(len(p)), fsize-off)
	_, err := o.f.ReadAtContext(ctx, p[:k], off)
	if err == io.EOF {
		err = nil
	}
	return err
}

// syncLocked flushes the buffer and commits the size (and the mtime of a
// written file) to the master.
func (n *node) syncLocked(ctx context.Context) error {
	o := n.of
	if err := n.flushLocked(ctx); err != nil {
		return err
	}
	if err := o.f.Sync(); err != nil {
		return err
	}
	if o.dirty {
		o.dirty = false
		now := time.Now()
		if _, err := n.fsys.c.SetAttr(ctx, n.ino, client.SetAttrIn{Mtime: &now}); err != nil {
			return err
		}
	}
	return nil
}

// settleForMtime, before an explicit mtime, writes back an open file's
// buffer and size and forgets that it was written.
func (n *node) settleForMtime(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.of
	if o == nil {
		return nil
	}
	if err := n.flushLocked(ctx); err != nil {
		return err
	}
	if err := o.f.Sync(); err != nil {
		return err
	}
	o.dirty = false
	return nil
}

func (n *node) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.of == nil {
		return 0
	}
	return errno(n.syncLocked(ctx))
}

func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	return n.Flush(ctx, f)
}

func (n *node) Release(ctx context.Context, f fs.FileHandle) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	return errno(n.releaseLocked(ctx))
}

func (n *node) releaseLocked(ctx context.Context) error {
	o := n.of
	if o == nil {
		return nil
	}
	if o.refs--; o.refs > 0 {
		return nil
	}
	err := n.flushLocked(ctx)
	n.of, n.noCap = nil, false
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// truncate sets the size, through the open file when there is one.
func (n *node) truncate(ctx context.Context, size int64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.of != nil {
		if err := n.flushLocked(ctx); err != nil {
			return err
		}
		n.of.ra = nil
		return n.of.f.Truncate(ctx, size)
	}
	f, err := n.fsys.c.OpenInode(ctx, n.ino, "")
	if err != nil {
		return err
	}
	err = f.Truncate(ctx, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Allocate supports what maps onto a holey file: mode 0 extends the size
// (space is not reserved), KEEP_SIZE does nothing, PUNCH_HOLE|KEEP_SIZE
// zeroes the range.
func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	const keepSize, punchHole = 0x1, 0x2
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.of
	if o == nil {
		return syscall.EBADF
	}
	switch mode {
	case 0:
		end := int64(off + size)
		if end <= o.sizeLocked() {
			return 0
		}
		if err := n.flushLocked(ctx); err != nil {
			return errno(err)
		}
		return errno(o.f.Truncate(ctx, end))
	case keepSize:
		return 0
	case keepSize | punchHole:
		if err := n.flushLocked(ctx); err != nil {
			return errno(err)
		}
		o.ra = nil
		end := min(int64(off+size), o.f.Size())
		if int64(off) >= end {
			return 0
		}
		return errno(o.f.PunchHole(ctx, int64(off), end-int64(off)))
	}
	return syscall.EOPNOTSUPP
}
