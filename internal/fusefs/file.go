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

// uninterruptible detaches an operation from the kernel's interrupt.
// Go sends its threads signals all the time (goroutine preemption), and
// the kernel turns a signal that arrives while a request is pending into
// FUSE_INTERRUPT: honoured, it fails a write, fsync or fallocate half done
// with EINTR, which no local file system returns for a regular file.
// A lost cluster still ends the operation after the client's OpTimeout.
func uninterruptible(ctx context.Context) context.Context {
	return context.WithoutCancel(ctx)
}

// handle is one open(2) of a file; the data state is the node's openFile.
// It carries nothing: even O_APPEND is the kernel's business (it sends
// the end of file as the offset).
type handle struct{}

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

// sizeLocked is the file's size as this mount knows it: the replicas'
// size after this mount's writes and truncates, extended by the buffer.
// An empty buffer says nothing: its offset is left from the last write.
func (o *openFile) sizeLocked() int64 {
	if len(o.buf) == 0 {
		return o.f.Size()
	}
	return max(o.f.Size(), o.bufOff+int64(len(o.buf)))
}

func (n *node) open(ctx context.Context, flags uint32) (fs.FileHandle, syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// A snapshot's file refuses write access at open, as a read-only
	// file system does (not at the first write or at close).
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if n.of != nil && write && n.of.f.ReadOnly() {
		return nil, syscall.EROFS
	}
	if n.of == nil {
		f, err := n.fsys.c.OpenInode(ctx, n.ino, "")
		if err != nil {
			return nil, errno(err)
		}
		if write && f.ReadOnly() {
			f.Close()
			return nil, syscall.EROFS
		}
		// The master keeps the file, as an orphan, if it loses its last
		// name while this mount holds it (doc.go). Registered as open
		// before the Hold, so that an Unhold still pending for the inode
		// (fsys.unhold) sees it and is not sent after the Hold.
		n.fsys.mu.Lock()
		n.fsys.open[n.ino] = n
		n.fsys.mu.Unlock()
		if err := n.fsys.hold(ctx, n.ino); err != nil {
			n.fsys.mu.Lock()
			if n.fsys.open[n.ino] == n {
				delete(n.fsys.open, n.ino)
			}
			n.fsys.mu.Unlock()
			f.Close()
			return nil, errno(err)
		}
		n.of = &openFile{f: f}
	} else if len(n.of.buf) == 0 && !n.of.dirty {
		// Close-to-open while the file stays open here: what another
		// mount published by its close must show after this open. The
		// kernel drops its page cache at every open (no KEEP_CACHE).
		n.of.ra = nil
		if err := n.of.f.Reload(ctx); err != nil {
			return nil, errno(err)
		}
	}
	n.of.refs++
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		n.of.buf, n.of.ra = nil, nil
		if err := n.of.f.Truncate(ctx, 0); err != nil {
			n.releaseLocked(ctx)
			return nil, errno(err)
		}
	}
	return &handle{}, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	h, e := n.open(ctx, flags)
	return h, 0, e
}

// flushLocked writes the buffer back. The read-ahead caches the replicas
// and may have been filled while the buffer held newer bytes: they are
// copied into it, so it stays equal to the replicas after the write-back.
func (n *node) flushLocked(ctx context.Context) error {
	o := n.of
	if len(o.buf) > 0 {
		if o.ra != nil {
			lo := max(o.bufOff, o.raOff)
			hi := min(o.bufOff+int64(len(o.buf)), o.raOff+int64(len(o.ra)))
			if lo < hi {
				copy(o.ra[lo-o.raOff:hi-o.raOff], o.buf[lo-o.bufOff:hi-o.bufOff])
			}
		}
		_, err := o.f.WriteAtContext(ctx, o.buf, o.bufOff)
		o.buf = o.buf[:0]
		if err != nil {
			n.fsys.log.Warn("fusefs: write-back failed", "inode", n.ino, "err", err)
			o.err = err
			o.ra = nil
		}
	}
	err := o.err
	o.err = nil
	return err
}

func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	ctx = uninterruptible(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.of
	if o == nil {
		return 0, syscall.EBADF
	}
	if off < 0 || off > client.MaxFileSize-int64(len(data)) {
		return 0, syscall.EFBIG // before it is buffered: the write itself fails
	}
	// off is the kernel's: for O_APPEND it is the kernel's size, which
	// equals sizeLocked (see doc.go). It is never moved here: the kernel
	// also writes back mmap pages through any writable handle, an
	// O_APPEND one included, at the pages' own offsets.
	o.dirty = true
	if o.ra != nil && off < o.raOff+int64(len(o.ra)) && off+int64(len(data)) > o.raOff {
		o.ra = nil
	}
	max := int64(n.fsys.cfg.WriteBuffer)
	end := o.bufOff + int64(len(o.buf))
	// Extend or overwrite inside the buffer; anything else flushes first.
	if len(o.buf) == 0 || off < o.bufOff || off > end || off+int64(len(data))-o.bufOff > max || int64(len(data)) >= max {
		if err := n.flushLocked(ctx); err != nil {
			return 0, errno(err)
		}
		o.bufOff = off
		end = off
	}
	if int64(len(data)) >= max {
		// Larger than the buffer (flushed above): straight to the replicas.
		if _, err := o.f.WriteAtContext(ctx, data, off); err != nil {
			return 0, errno(err)
		}
		return uint32(len(data)), 0
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
	ctx = uninterruptible(ctx)
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
	ctx = uninterruptible(ctx)
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
	ctx = uninterruptible(ctx)
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
	n.fsys.mu.Lock()
	if n.fsys.open[n.ino] == n {
		delete(n.fsys.open, n.ino)
	}
	n.fsys.mu.Unlock()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	n.fsys.unhold(ctx, n.ino, false)
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

// Allocate supports what maps onto a holey file (space is never
// reserved): mode 0 extends the size, KEEP_SIZE does nothing,
// PUNCH_HOLE|KEEP_SIZE zeroes the range inside the file, ZERO_RANGE zeroes
// it and, without KEEP_SIZE, extends the size to its end.
func (n *node) Allocate(ctx context.Context, f fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	ctx = uninterruptible(ctx)
	const keepSize, punchHole, zeroRange = 0x1, 0x2, 0x10
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.of
	if o == nil {
		return syscall.EBADF
	}
	end := int64(off + size)
	switch mode {
	case 0, keepSize, keepSize | punchHole, zeroRange, zeroRange | keepSize:
	default:
		return syscall.EOPNOTSUPP
	}
	if mode == keepSize {
		return 0
	}
	if err := n.flushLocked(ctx); err != nil {
		return errno(err)
	}
	cur := o.f.Size()
	if mode&(punchHole|zeroRange) != 0 {
		if hi := min(end, cur); int64(off) < hi {
			o.ra = nil
			o.dirty = true
			if err := o.f.PunchHole(ctx, int64(off), hi-int64(off)); err != nil {
				return errno(err)
			}
		}
	}
	if mode&keepSize == 0 && end > cur {
		// Grows by a hole: reads as zeros, as the range must.
		o.dirty = true
		return errno(o.f.Truncate(ctx, end))
	}
	return 0
}
