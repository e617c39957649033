package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/catena-io/catena/client"
)

// How objects are kept. An object is the file Root/BUCKET/KEY; its S3
// metadata (ETag, content headers, x-amz-meta-*) is the JSON extended
// attribute metaXattr, which records the size and modification time it
// describes: a file changed since by another front end (catena put, the
// FUSE mount) no longer matches it, and gets a synthesized ETag instead.
//
// A PUT writes a temporary file in the bucket's hidden upload directory,
// sets its metadata, and renames it over the key in one master command
// (RenameAt, which replaces as rename(2) does): a reader sees the old
// object or the new one, never a part, and a gateway that dies
// mid-upload leaves only a temporary file, which the sweeper removes
// after MultipartExpiry.

// metaXattr holds an object's S3 metadata.
const metaXattr = "user.s3"

// maxUserMeta bounds the x-amz-meta-* headers of an object (S3: 2 KiB).
const maxUserMeta = 2 << 10

// copyBuf is the size of the reads and writes of a transfer.
const copyBuf = 8 << 20

// objMeta is an object's S3 metadata.
type objMeta struct {
	ETag    string            `json:"etag"`
	Size    int64             `json:"size"`
	Mtime   int64             `json:"mtime"`             // unix ns of the file this describes
	Headers map[string]string `json:"headers,omitempty"` // Content-Type, ..., x-amz-meta-*
}

// object is an object as a GET, HEAD or listing shows it.
type object struct {
	ino     uint64
	size    int64
	mtime   time.Time
	etag    string // without quotes
	headers map[string]string
}

// syntheticETag is the ETag of a file without (valid) S3 metadata: not
// an MD5 (a "-0" suffix, as a multipart ETag's, tells clients not to
// compare it with one), but it changes with the file.
func syntheticETag(ino uint64, size int64, mtime time.Time) string {
	sum := md5.Sum(fmt.Appendf(nil, "%d/%d/%d", ino, size, mtime.UnixNano()))
	return hex.EncodeToString(sum[:]) + "-0"
}

// describe returns the object of file fi.
func (s *Server) describe(ctx context.Context, fi *client.FileInfo) *object {
	o := &object{ino: fi.Inode, size: fi.Size, mtime: fi.ModTime}
	raw, err := s.c.GetXattr(ctx, fi.Inode, metaXattr)
	var m objMeta
	if err == nil && json.Unmarshal(raw, &m) == nil && m.Size == fi.Size && m.Mtime == fi.ModTime.UnixNano() && m.ETag != "" {
		o.etag, o.headers = m.ETag, m.Headers
	} else {
		o.etag = syntheticETag(fi.Inode, fi.Size, fi.ModTime)
	}
	return o
}

// uploads returns the inode of bucket b's upload directory, making it
// (mode 1777) when missing; NoSuchBucket when b does not exist.
func (s *Server) uploads(ctx context.Context, b string) (uint64, error) {
	fi, err := s.c.Stat(ctx, s.uploadsPath(b))
	if err == nil {
		return fi.Inode, nil
	}
	if !errors.Is(err, client.ErrNotFound) {
		return 0, err
	}
	if err := s.checkBucket(ctx, b); err != nil {
		return 0, err
	}
	if err := s.c.Mkdir(ctx, s.uploadsPath(b), 0o777); err != nil && !errors.Is(err, client.ErrExist) {
		return 0, err
	}
	fi, err = s.c.Stat(ctx, s.uploadsPath(b))
	if err != nil {
		return 0, err
	}
	if fi.Mode.Perm() == 0o777 {
		mode := uint32(0o1777)
		if _, err := s.c.SetAttr(ctx, fi.Inode, client.SetAttrIn{Mode: &mode}); err != nil && !errors.Is(err, client.ErrPermission) {
			return 0, err
		}
	}
	return fi.Inode, nil
}

// checkBucket returns NoSuchBucket when b is not a bucket.
func (s *Server) checkBucket(ctx context.Context, b string) error {
	fi, err := s.c.Stat(ctx, s.bucketPath(b))
	if errors.Is(err, client.ErrNotFound) || err == nil && !fi.IsDir {
		return ErrNoSuchBucket
	}
	return err
}

// notFound turns a missing object into NoSuchKey, or NoSuchBucket when
// its bucket is missing.
func (s *Server) notFound(ctx context.Context, b string, err error) error {
	if !errors.Is(err, client.ErrNotFound) {
		return err
	}
	if berr := s.checkBucket(ctx, b); berr != nil {
		return berr
	}
	return ErrNoSuchKey
}

// staged is a temporary file in a bucket's upload directory.
type staged struct {
	dir  uint64 // the upload directory's inode
	name string
	ino  uint64
	size int64
	md5  []byte
	// keep: the file holds a multipart upload's moved parts, their only
	// copy: a failure leaves it for a retry (movedAssembly), an abort
	// or the sweeper.
	keep bool
}

// discard removes the temporary file, unless it is to be kept.
func (s *Server) discard(ctx context.Context, st *staged) {
	if st.keep {
		return
	}
	if err := s.c.UnlinkAt(context.WithoutCancel(ctx), st.dir, st.name); err != nil && !errors.Is(err, client.ErrNotFound) {
		s.log.Warn("s3: removing a temporary file", "name", st.name, "err", err)
	}
}

// stage writes what src yields to a new temporary file of bucket b in
// directory dir (an upload directory or one of its multipart
// directories), of chunk size cs (0: the default), checking its length
// against want (-1: any).
func (s *Server) stage(ctx context.Context, b string, dir string, src io.Reader, want, cs int64) (*staged, error) {
	if _, err := s.uploads(ctx, b); err != nil {
		return nil, err
	}
	dfi, err := s.c.Stat(ctx, dir)
	if err != nil {
		return nil, err
	}
	st := &staged{dir: dfi.Inode, name: "tmp-" + randomHex(12)}
	f, err := s.c.Create(ctx, path.Join(dir, st.name), client.CreateOptions{Mode: 0o644, ChunkSize: cs})
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		s.discard(ctx, st)
		return nil, err
	}
	st.ino = fi.Inode
	h := md5.New()
	n, err := s.copyTo(ctx, f, 0, io.TeeReader(src, h))
	cerr := f.Close()
	if err == nil {
		err = cerr
	}
	if err == nil && want >= 0 && n != want {
		err = withMsg(ErrIncompleteBody, "received %d bytes of %d", n, want)
	}
	if err != nil {
		s.discard(ctx, st)
		return nil, err
	}
	st.size, st.md5 = n, h.Sum(nil)
	return st, nil
}

// copyTo writes what src yields to f from offset off, in pieces of
// copyBuf, and returns the bytes written. Reading the next piece
// overlaps writing the last; copyTo returns only once it reads src no
// more (a request body must not be read after its handler returned).
func (s *Server) copyTo(ctx context.Context, f *client.File, off int64, src io.Reader) (int64, error) {
	type block struct {
		buf []byte
		n   int
		err error
	}
	free := make(chan []byte, 2)
	free <- make([]byte, copyBuf)
	free <- make([]byte, copyBuf)
	// Two buffers: the reader never has more than two blocks to hand
	// over, so sending on full never blocks.
	full := make(chan block, 2)
	stop := make(chan struct{})
	go func() {
		defer close(full)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			m, err := io.ReadFull(src, buf)
			full <- block{buf, m, err}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		for range full {
		}
	}()
	var n int64
	for b := range full {
		if b.n > 0 {
			if err := s.write(ctx, f, b.buf[:b.n], off+n); err != nil {
				return n, err
			}
			n += int64(b.n)
		}
		switch {
		case b.err == io.EOF || b.err == io.ErrUnexpectedEOF:
			return n, nil
		case b.err != nil:
			return n, readErr(b.err)
		}
		free <- b.buf
	}
	return n, nil
}

// readErr is the S3 error of a failed read of a request body.
func readErr(err error) error {
	var ae *APIError
	var se sourceError
	switch {
	case errors.As(err, &se):
		return se.err
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, errChunkSignature):
		return ErrSignatureDoesNotMatch
	case errors.Is(err, errChunkFormat), errors.Is(err, errChunkTooLarge):
		return withMsg(ErrInvalidRequest, "%v", err)
	}
	return withMsg(ErrIncompleteBody, "reading the body: %v", err)
}

// commit gives the staged file its metadata and renames it to key k of
// bucket b, replacing what was there.
func (s *Server) commit(ctx context.Context, b, k string, st *staged, etag string, headers map[string]string) (*object, error) {
	attr, err := s.c.GetAttr(ctx, st.ino)
	if err != nil {
		s.discard(ctx, st)
		return nil, err
	}
	m := objMeta{ETag: etag, Size: attr.Size, Mtime: attr.Mtime.UnixNano(), Headers: headers}
	raw, err := json.Marshal(m)
	if err != nil {
		s.discard(ctx, st)
		return nil, err
	}
	if err := s.c.SetXattr(ctx, st.ino, metaXattr, raw, client.XattrAny); err != nil {
		s.discard(ctx, st)
		return nil, err
	}
	dst := s.objectPath(b, k)
	for attempt := 0; ; attempt++ {
		err = s.renameInto(ctx, st, dst)
		// A concurrent delete may have removed an empty parent
		// directory between MkdirAll and the rename: once more.
		if err == nil || !errors.Is(err, client.ErrNotFound) || attempt == 3 {
			break
		}
	}
	if err != nil {
		s.discard(ctx, st)
		if errors.Is(err, client.ErrIsDir) || errors.Is(err, client.ErrNotEmpty) || errors.Is(err, client.ErrNotDir) || errors.Is(err, client.ErrExist) {
			return nil, ErrObjectConflict
		}
		return nil, err
	}
	return &object{ino: st.ino, size: attr.Size, mtime: attr.Mtime, etag: etag, headers: headers}, nil
}

// renameInto makes dst's parents and renames the staged file to dst.
func (s *Server) renameInto(ctx context.Context, st *staged, dst string) error {
	parent := path.Dir(dst)
	pfi, err := s.c.Stat(ctx, parent)
	if errors.Is(err, client.ErrNotFound) {
		if err := s.c.MkdirAll(ctx, parent, 0o755); err != nil {
			return err
		}
		pfi, err = s.c.Stat(ctx, parent)
	}
	if err != nil {
		return err
	}
	if !pfi.IsDir {
		return client.ErrNotDir
	}
	return s.c.RenameAt(ctx, st.dir, st.name, pfi.Inode, path.Base(dst), false)
}

// removeEmptyParents removes the directories of key k's path that are
// now empty, up to the bucket, so that no empty prefix lingers.
func (s *Server) removeEmptyParents(ctx context.Context, b, k string) {
	for dir := path.Dir(k); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if err := s.c.Remove(ctx, s.objectPath(b, dir)); err != nil {
			return // not empty, gone, or not ours: stop
		}
	}
}

// metaHeaders are the request headers an object keeps.
var metaHeaders = []string{"Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language", "Cache-Control", "Expires"}

// headersOf returns the headers of the request that an object keeps.
func headersOf(h map[string][]string) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range metaHeaders {
		if v := h[k]; len(v) > 0 {
			out[k] = v[0]
		}
	}
	size := 0
	for k, v := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-meta-") && len(v) > 0 {
			out[lk] = strings.Join(v, ",")
			size += len(lk) + len(out[lk])
		}
	}
	if size > maxUserMeta {
		return nil, &APIError{"MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size."}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// write writes p at off of f, at most WriteConcurrency such writes at
// once in the gateway: each already keeps the client library's
// IOConcurrency pieces in flight, and with many more at once (aws-cli
// sends 10 parts at a time) the writes only queued on the chunkservers,
// each part's first write to its new chunk taking seconds.
func (s *Server) write(ctx context.Context, f *client.File, p []byte, off int64) error {
	select {
	case s.writes <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.writes }()
	_, err := f.WriteAtContext(ctx, p, off)
	return err
}
