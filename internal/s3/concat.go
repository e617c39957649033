package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/catena-io/catena/client"
)

// Completing a multipart upload without copying its data. A file's
// chunk i covers [i*cs, (i+1)*cs), so the master can make one file of
// others' chunks (client.Concat) only when each but the last ends on a
// chunk boundary of one common chunk size. A part's file therefore gets
// the largest power-of-two chunk size that divides its size (of those a
// file may have), so that it fills its chunks exactly: awscli's 8 MiB
// parts get 8 MiB chunks, minio-go's 16 MiB 16 MiB, rclone's 5 MiB and
// s3cmd's 15 MiB 1 MiB chunks. A part whose size is no multiple of the
// smallest (1 MiB) gets the smallest power of two that holds it (one
// chunk; a last part, usually). At completion, when every part but the
// last has the chunk size cs of the first and a size that is a
// multiple of it, the parts are moved into the object file; a last
// part of another chunk size is copied first into a file of chunk size
// cs: at most one part's bytes are copied. Parts of sizes that are no
// multiple of 1 MiB (5,000,000 bytes, say), or of different chunk
// sizes, are copied.
//
// The parts moved are the files the completion listed: Concat names
// each with its inode, so a part re-uploaded (renamed over) meanwhile
// is refused rather than moved, and the copy reads parts by inode.

// File chunk sizes: powers of two in [minFileChunk, maxFileChunk]
// (meta.CheckFileParams).
const (
	minFileChunk = 1 << 20
	maxFileChunk = 1 << 30
)

// partChunkSize is the chunk size of a part file of n bytes: the
// largest power of two in [minFileChunk, maxFileChunk] that divides n
// (n > 0), else the smallest power of two that holds n, within those
// bounds; 0 (the default) when n is not known beforehand.
func partChunkSize(n int64) int64 {
	if n < 0 {
		return 0
	}
	if n > 0 && n%minFileChunk == 0 {
		cs := int64(minFileChunk)
		for cs < maxFileChunk && n%(cs<<1) == 0 {
			cs <<= 1
		}
		return cs
	}
	cs := int64(minFileChunk)
	for cs < n && cs < maxFileChunk {
		cs <<= 1
	}
	return cs
}

// partFileChunk is the chunk size of the file of part n, of size bytes,
// of the upload in dir: partChunkSize, unless the upload's part 1 is
// there already, fills its chunks and is at least as large: then part
// 1's chunk size, which a last part smaller than the others needs to
// be moved with them rather than copied (awscli's 5 MiB last part
// after 8 MiB parts). One lookup; a part 1 not there yet (parts sent
// in parallel) costs only that copy of the last part at completion.
func (s *Server) partFileChunk(ctx context.Context, dir string, n int, size int64) int64 {
	cs := partChunkSize(size)
	if n == 1 || size < 0 {
		return cs
	}
	fi, err := s.c.Stat(ctx, path.Join(dir, partName(1)))
	if err != nil || fi.ChunkSize == 0 || fi.Size < size || fi.Size%fi.ChunkSize != 0 {
		return cs
	}
	return fi.ChunkSize
}

// movable reports whether parts can be moved whole into one file, and
// with what chunk size; copyLast: the last part must be copied into a
// file of that chunk size first.
func movable(use []part) (cs int64, copyLast, ok bool) {
	cs = use[0].chunkSize
	if cs == 0 {
		return 0, false, false
	}
	for _, p := range use[:len(use)-1] {
		if p.chunkSize != cs || p.size%cs != 0 {
			return 0, false, false
		}
	}
	return cs, use[len(use)-1].chunkSize != cs, true
}

// errNotMovable: the parts cannot be moved into one file; copy them.
var errNotMovable = errors.New("s3: parts not movable")

// assembleMoved makes a new temporary file in the upload directory dir
// (inode dino) of the parts' chunks, moved, or fails with errNotMovable
// having changed nothing (the parts are all still there).
//
// The object file carries the upload's ETag and size in metaXattr from
// before the move, so that a retry of a completion that died between
// the move and the rename finds it (movedAssembly).
func (s *Server) assembleMoved(ctx context.Context, dir string, dino uint64, use []part, want int64, etag string) (*staged, error) {
	cs, copyLast, ok := movable(use)
	if !ok {
		return nil, errNotMovable
	}
	st := &staged{dir: dino, name: "assembly-" + randomHex(8)}
	dst := path.Join(dir, st.name)
	f, err := s.c.Create(ctx, dst, client.CreateOptions{Mode: 0o644, ChunkSize: cs})
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.discard(ctx, st)
		return nil, err
	}
	st.ino = fi.Inode
	m, _ := json.Marshal(objMeta{ETag: etag, Size: want})
	if err := s.c.SetXattr(ctx, st.ino, metaXattr, m, client.XattrAny); err != nil {
		s.discard(ctx, st)
		return nil, err
	}
	srcs := make([]string, len(use))
	inodes := make([]uint64, len(use))
	for i, p := range use {
		srcs[i], inodes[i] = path.Join(dir, partName(p.number)), p.inode
	}
	var last *staged
	if copyLast {
		if last, err = s.copyPart(ctx, dir, dino, use[len(use)-1], cs); err != nil {
			s.discard(ctx, st)
			return nil, err
		}
		srcs[len(srcs)-1], inodes[len(srcs)-1] = path.Join(dir, last.name), last.ino
	}
	info, err := s.c.Concat(ctx, dst, srcs, inodes)
	if err != nil {
		// The call's outcome may be unknown (the master failed over
		// and the retries ran out): the object file says.
		if fi, serr := s.c.Stat(context.WithoutCancel(ctx), dst); serr == nil && fi.Size == want && !errors.Is(err, client.ErrInvalid) {
			info, err = fi, nil
		}
	}
	if err != nil {
		refused := errors.Is(err, client.ErrInvalid) || errors.Is(err, client.ErrNotFound)
		if !refused {
			// Perhaps moved after all: the object file stays, for a
			// retry to find (movedAssembly) or the sweeper to remove.
			return nil, err
		}
		s.discard(ctx, st)
		if last != nil {
			s.discard(ctx, last)
		}
		if errors.Is(err, client.ErrNotFound) {
			return nil, ErrNoSuchUpload // completed or aborted meanwhile
		}
		// A part replaced meanwhile by one of another size, say.
		s.log.Info("s3: parts not moved, copying them", "dir", dir, "err", err)
		return nil, errNotMovable
	}
	if info.Size != want {
		return nil, fmt.Errorf("s3: upload %s: parts of %d bytes moved as %d", path.Base(dir), want, info.Size)
	}
	st.size, st.keep = info.Size, true
	return st, nil
}

// copyPart copies part p of the upload in dir (inode dino) into a new
// file there of chunk size cs.
func (s *Server) copyPart(ctx context.Context, dir string, dino uint64, p part, cs int64) (*staged, error) {
	st := &staged{dir: dino, name: "last-" + randomHex(8)}
	f, err := s.c.Create(ctx, path.Join(dir, st.name), client.CreateOptions{Mode: 0o644, ChunkSize: cs})
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	var n int64
	if err == nil {
		st.ino = fi.Inode
		n, err = s.copyTo(ctx, f, 0, &partsReader{s: s, ctx: ctx, dir: dir, parts: []part{p}})
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != p.size {
		err = fmt.Errorf("s3: upload %s: part %d of %d bytes read as %d", path.Base(dir), p.number, p.size, n)
	}
	if err != nil {
		s.discard(ctx, st)
		return nil, err
	}
	return st, nil
}

// requestETag is the ETag of the object a CompleteMultipartUpload
// request asks for, computed from the parts' ETags it lists ("" when one
// is no MD5).
func requestETag(parts []struct {
	PartNumber int    `xml:"PartNumber"`
	ETag       string `xml:"ETag"`
}) string {
	h := md5.New()
	for _, p := range parts {
		sum, err := hex.DecodeString(strings.Trim(strings.TrimSpace(p.ETag), `"`))
		if err != nil || len(sum) != md5.Size {
			return ""
		}
		h.Write(sum)
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts))
}

// movedAssembly finds, in the directory of upload id of bucket b, the
// object file of an earlier completion of the same parts (ETag etag)
// whose parts were moved into it but which was not renamed into place
// (the gateway died, or the client's connection did, in between); nil
// when there is none.
func (s *Server) movedAssembly(ctx context.Context, b, id, etag string) *staged {
	if etag == "" {
		return nil
	}
	dir := s.uploadPath(b, id)
	dfi, err := s.c.Stat(ctx, dir)
	if err != nil {
		return nil
	}
	ents, err := s.c.ReadDir(ctx, dir)
	if err != nil {
		return nil
	}
	for _, e := range ents {
		if e.IsDir || !strings.HasPrefix(e.Name, "assembly-") {
			continue
		}
		raw, err := s.c.GetXattr(ctx, e.Inode, metaXattr)
		if err != nil {
			continue
		}
		var m objMeta
		if json.Unmarshal(raw, &m) != nil || m.ETag != etag || m.Size != e.Size {
			continue
		}
		return &staged{dir: dfi.Inode, name: e.Name, ino: e.Inode, size: e.Size, keep: true}
	}
	return nil
}
