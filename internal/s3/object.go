package s3

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/catena-io/catena/client"
)

// checkMD5 compares a Content-MD5 header (base64) with sum.
func checkMD5(header string, sum []byte) error {
	want, err := base64.StdEncoding.DecodeString(header)
	if err != nil || len(want) != 16 {
		return ErrInvalidDigest
	}
	if string(want) != string(sum) {
		return ErrBadDigest
	}
	return nil
}

func (s *Server) putObject(rq *request) error {
	ctx, r := rq.ctx, rq.r
	length := contentLength(r)
	if length < 0 && r.Header.Get("X-Amz-Content-Sha256") != streamingUnsignedTrailer {
		return ErrMissingContentLength
	}
	if length > client.MaxFileSize {
		return ErrEntityTooLarge
	}
	md := r.Header.Get("Content-Md5")
	if md != "" {
		if b, err := base64.StdEncoding.DecodeString(md); err != nil || len(b) != 16 {
			return ErrInvalidDigest
		}
	}
	headers, err := headersOf(r.Header)
	if err != nil {
		return err
	}
	if strings.HasSuffix(rq.object, "/") {
		return s.putDirMarker(rq, length)
	}
	st, err := s.stage(ctx, rq.bucket, s.uploadsPath(rq.bucket), rq.body, length, 0)
	if err != nil {
		return err
	}
	if md != "" {
		if err := checkMD5(md, st.md5); err != nil {
			s.discard(ctx, st)
			return err
		}
	}
	o, err := s.commit(ctx, rq.bucket, rq.object, st, hex.EncodeToString(st.md5), headers)
	if err != nil {
		return err
	}
	rq.w.Header().Set("ETag", `"`+o.etag+`"`)
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

// putDirMarker makes the directory of a key ending in "/" (an empty
// "folder" object as consoles create them).
func (s *Server) putDirMarker(rq *request, length int64) error {
	if n, _ := io.Copy(io.Discard, io.LimitReader(rq.body, 1)); n > 0 || length > 0 {
		return withMsg(ErrInvalidArgument, "a key ending in '/' names a directory and holds no data")
	}
	if err := s.checkBucket(rq.ctx, rq.bucket); err != nil {
		return err
	}
	if err := s.c.MkdirAll(rq.ctx, s.objectPath(rq.bucket, rq.object), 0o755); err != nil {
		return err
	}
	rq.w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

// lookupObject returns key k of bucket b.
func (s *Server) lookupObject(ctx context.Context, b, k string) (*object, error) {
	fi, err := s.c.Stat(ctx, s.objectPath(b, k))
	if err != nil {
		return nil, s.notFound(ctx, b, err)
	}
	if fi.IsDir {
		if strings.HasSuffix(k, "/") {
			return &object{ino: fi.Inode, mtime: fi.ModTime, etag: "d41d8cd98f00b204e9800998ecf8427e"}, nil
		}
		return nil, ErrNoSuchKey
	}
	if strings.HasSuffix(k, "/") {
		return nil, ErrNoSuchKey
	}
	return s.describe(ctx, fi), nil
}

// etagMatch reports whether an If-Match / If-None-Match list matches etag.
func etagMatch(list, etag string) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		e = strings.TrimPrefix(e, "W/")
		if e == "*" || strings.Trim(e, `"`) == etag {
			return true
		}
	}
	return false
}

// preconditions evaluates the conditional headers of a GET or HEAD (as
// S3 does: If-Match over If-Unmodified-Since, If-None-Match over
// If-Modified-Since); notModified asks for 304.
func preconditions(h http.Header, o *object) (notModified bool, err error) {
	mtime := o.mtime.Truncate(time.Second)
	im, inm := h.Get("If-Match"), h.Get("If-None-Match")
	if im != "" {
		if !etagMatch(im, o.etag) {
			return false, ErrPreconditionFailed
		}
	} else if v := h.Get("If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && mtime.After(t) {
			return false, ErrPreconditionFailed
		}
	}
	if inm != "" {
		if etagMatch(inm, o.etag) {
			return true, nil
		}
	} else if v := h.Get("If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !mtime.After(t) {
			return true, nil
		}
	}
	return false, nil
}

// parseRange parses a single "bytes=" range against size; ok false
// means no (usable) range: the whole object.
func parseRange(h string, size int64) (start, end int64, ok bool, err error) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	switch {
	case a == "" && b == "":
		return 0, 0, false, nil
	case a == "":
		n, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || n < 0 {
			return 0, 0, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, ErrInvalidRange
		}
		return max(size-n, 0), size - 1, true, nil
	default:
		s, perr := strconv.ParseInt(a, 10, 64)
		if perr != nil || s < 0 {
			return 0, 0, false, nil
		}
		e := size - 1
		if b != "" {
			if e, perr = strconv.ParseInt(b, 10, 64); perr != nil || e < s {
				return 0, 0, false, nil
			}
		}
		if s >= size {
			return 0, 0, false, ErrInvalidRange
		}
		return s, min(e, size-1), true, nil
	}
}

// setObjectHeaders sets the headers of a GET or HEAD answer.
func setObjectHeaders(h http.Header, o *object) {
	h.Set("ETag", `"`+o.etag+`"`)
	h.Set("Last-Modified", o.mtime.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", "binary/octet-stream")
	for k, v := range o.headers {
		h.Set(k, v)
	}
}

func (s *Server) getObject(rq *request, head bool) error {
	ctx, r, w := rq.ctx, rq.r, rq.w
	o, release, err := s.lookupHeld(ctx, rq.bucket, rq.object, head)
	if err != nil {
		return err
	}
	defer release()
	notModified, err := preconditions(r.Header, o)
	if err != nil {
		return err
	}
	if notModified {
		w.Header().Set("ETag", `"`+o.etag+`"`)
		w.Header().Set("Last-Modified", o.mtime.UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	start, end, ranged, err := parseRange(r.Header.Get("Range"), o.size)
	if err != nil {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", o.size))
		return err
	}
	if !ranged {
		start, end = 0, o.size-1
	}
	h := w.Header()
	setObjectHeaders(h, o)
	q := r.URL.Query()
	for _, p := range [][2]string{{"response-content-type", "Content-Type"}, {"response-content-language", "Content-Language"},
		{"response-expires", "Expires"}, {"response-cache-control", "Cache-Control"},
		{"response-content-disposition", "Content-Disposition"}, {"response-content-encoding", "Content-Encoding"}} {
		if v := q.Get(p[0]); v != "" {
			h.Set(p[1], v)
		}
	}
	h.Set("Content-Length", strconv.FormatInt(end-start+1, 10))
	status := http.StatusOK
	if ranged {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, o.size))
		status = http.StatusPartialContent
	}
	if head || o.size == 0 {
		w.WriteHeader(status)
		return nil
	}
	f, err := s.c.OpenInode(ctx, o.ino, s.objectPath(rq.bucket, rq.object))
	if err != nil {
		return s.notFound(ctx, rq.bucket, err)
	}
	defer f.Close()
	// The first read decides the status: an error before any byte is
	// sent is still an S3 error answer.
	first := min(end-start+1, copyBuf)
	buf := make([]byte, first)
	if err := readFull(ctx, f, buf, start); err != nil {
		return err
	}
	w.WriteHeader(status)
	if _, err := w.Write(buf); err != nil {
		return nil // the client went away
	}
	for off := start + first; off <= end; {
		n := min(end-off+1, copyBuf)
		if err := readFull(ctx, f, buf[:n], off); err != nil {
			s.log.Warn("s3: GET failed after its answer began", "path", r.URL.Path, "err", err)
			panic(http.ErrAbortHandler) // cut the connection: the client sees a short body
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return nil
		}
		off += n
	}
	return nil
}

// readFull reads len(p) bytes at off; bytes past the file's end (a file
// truncated meanwhile) read as an error.
func readFull(ctx context.Context, f *client.File, p []byte, off int64) error {
	n, err := f.ReadAtContext(ctx, p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("s3: object shrank while read (%d of %d bytes at %d)", n, len(p), off)
	}
	return err
}

func (s *Server) deleteObject(rq *request) error {
	if err := s.removeObject(rq.ctx, rq.bucket, rq.object); err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

// removeObject removes key k of bucket b; a missing key is no error (S3).
func (s *Server) removeObject(ctx context.Context, b, k string) error {
	if err := checkKey(k); err != nil {
		return err
	}
	p := s.objectPath(b, k)
	fi, err := s.c.Stat(ctx, p)
	if err != nil {
		if errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrNotDir) {
			return s.checkBucket(ctx, b)
		}
		return err
	}
	if fi.IsDir != strings.HasSuffix(k, "/") {
		return nil // a directory is no object (and a marker no file)
	}
	if err := s.c.Remove(ctx, p); err != nil && !errors.Is(err, client.ErrNotFound) {
		if errors.Is(err, client.ErrNotEmpty) {
			return nil // a marker of a directory with objects: keep it
		}
		return err
	}
	s.removeEmptyParents(ctx, b, strings.TrimSuffix(k, "/"))
	return nil
}

type deleteRequest struct {
	Quiet   bool `xml:"Quiet"`
	Objects []struct {
		Key string `xml:"Key"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name        `xml:"DeleteResult"`
	NS      string          `xml:"xmlns,attr"`
	Deleted []deletedObject `xml:"Deleted"`
	Errors  []deleteError   `xml:"Error"`
}

type deletedObject struct {
	Key string `xml:"Key"`
}

type deleteError struct {
	Key     string `xml:"Key"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func (s *Server) deleteObjects(rq *request) error {
	var req deleteRequest
	if err := readXML(rq, &req, 2<<20); err != nil {
		return err
	}
	if len(req.Objects) > 1000 {
		return withMsg(ErrMalformedXML, "at most 1000 keys per request")
	}
	if err := s.checkBucket(rq.ctx, rq.bucket); err != nil {
		return err
	}
	res := deleteResult{NS: s3NS}
	for _, o := range req.Objects {
		if err := s.removeObject(rq.ctx, rq.bucket, o.Key); err != nil {
			ae, ok := fromClient(err)
			if !ok {
				ae = ErrInternal
			}
			res.Errors = append(res.Errors, deleteError{Key: o.Key, Code: ae.Code, Message: ae.Message})
			continue
		}
		if !req.Quiet {
			res.Deleted = append(res.Deleted, deletedObject{Key: o.Key})
		}
	}
	return writeXML(rq.w, res)
}

type copyResult struct {
	XMLName      xml.Name `xml:"CopyObjectResult"`
	NS           string   `xml:"xmlns,attr"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// copySource parses x-amz-copy-source ("/bucket/key" or "bucket/key",
// URL-encoded).
func copySource(h string) (bucket, key string, err error) {
	src, uerr := url.PathUnescape(h)
	if uerr != nil {
		return "", "", withMsg(ErrInvalidArgument, "malformed x-amz-copy-source")
	}
	if i := strings.Index(src, "?versionId="); i >= 0 {
		src = src[:i]
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(src, "/"), "/")
	if !ok || bucket == "" || key == "" {
		return "", "", withMsg(ErrInvalidArgument, "x-amz-copy-source must be BUCKET/KEY")
	}
	if err := checkBucketName(bucket, false); err != nil {
		return "", "", err
	}
	if err := checkKey(key); err != nil {
		return "", "", err
	}
	return bucket, key, nil
}

// copyObject copies an object as a clone: the master copies the file's
// chunk references, no data moves (O(metadata), whatever the size).
func (s *Server) copyObject(rq *request) error {
	ctx, r := rq.ctx, rq.r
	sb, sk, err := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	src, err := s.lookupObject(ctx, sb, sk)
	if err != nil {
		return err
	}
	if strings.HasSuffix(sk, "/") {
		return withMsg(ErrInvalidArgument, "cannot copy a directory marker")
	}
	// x-amz-copy-source-if-* preconditions.
	ch := http.Header{}
	for _, p := range [][2]string{{"X-Amz-Copy-Source-If-Match", "If-Match"}, {"X-Amz-Copy-Source-If-None-Match", "If-None-Match"},
		{"X-Amz-Copy-Source-If-Modified-Since", "If-Modified-Since"}, {"X-Amz-Copy-Source-If-Unmodified-Since", "If-Unmodified-Since"}} {
		if v := r.Header.Get(p[0]); v != "" {
			ch.Set(p[1], v)
		}
	}
	if nm, err := preconditions(ch, src); err != nil || nm {
		return ErrPreconditionFailed
	}
	headers := src.headers
	if strings.EqualFold(r.Header.Get("X-Amz-Metadata-Directive"), "REPLACE") {
		if headers, err = headersOf(r.Header); err != nil {
			return err
		}
	} else if sb == rq.bucket && sk == rq.object {
		return withMsg(ErrInvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata.")
	}
	dir, err := s.uploads(ctx, rq.bucket)
	if err != nil {
		return err
	}
	st := &staged{dir: dir, name: "tmp-" + randomHex(12)}
	fi, err := s.c.Clone(ctx, s.objectPath(sb, sk), path.Join(s.uploadsPath(rq.bucket), st.name))
	if err != nil {
		return s.notFound(ctx, sb, err)
	}
	st.ino, st.size = fi.Inode, fi.Size
	if fi.Size != src.size {
		s.discard(ctx, st)
		return withMsg(ErrPreconditionFailed, "the source changed during the copy")
	}
	now := s.clock.Now()
	if _, err := s.c.SetAttr(ctx, st.ino, client.SetAttrIn{Mtime: &now}); err != nil {
		s.discard(ctx, st)
		return err
	}
	o, err := s.commit(ctx, rq.bucket, rq.object, st, src.etag, headers)
	if err != nil {
		return err
	}
	return writeXML(rq.w, copyResult{NS: s3NS, LastModified: o.mtime.UTC().Format(isoFormat), ETag: `"` + o.etag + `"`})
}

// isoFormat is the time format of S3's XML answers.
const isoFormat = "2006-01-02T15:04:05.000Z"
