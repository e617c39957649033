package s3

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/catena-io/catena/client"
)

// Multipart uploads. Upload U of bucket B is the directory
// B/.s3-uploads/mp-U holding "info" (the key, its metadata, when it
// began) and one file per part, "part-NNNNN", with the part's MD5 in
// metaXattr. Each part file's chunk size is the largest power of two
// that divides the part's size (partChunkSize). Complete assembles the parts
// into one temporary file, by moving their chunks into it (Concat, when
// every part but the last fills its chunks: concat.go), else by reading
// and writing them inside the cluster, then commits it like a PUT and
// removes the upload. An upload whose directory has not changed for
// MultipartExpiry is removed by the sweeper.

// maxParts is S3's highest part number.
const maxParts = 10000

type uploadInfo struct {
	Key       string            `json:"key"`
	Headers   map[string]string `json:"headers,omitempty"`
	Initiated time.Time         `json:"initiated"`
	UID       uint32            `json:"uid"`
}

// uploadPath is the directory of upload id of bucket b.
func (s *Server) uploadPath(b, id string) string {
	return path.Join(s.uploadsPath(b), "mp-"+id)
}

// validUploadID reports whether id can name an upload directory.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func partName(n int) string { return fmt.Sprintf("part-%05d", n) }

type initiateResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

func (s *Server) createUpload(rq *request) error {
	ctx := rq.ctx
	if strings.HasSuffix(rq.object, "/") {
		return withMsg(ErrInvalidArgument, "a key ending in '/' names a directory and holds no data")
	}
	headers, err := headersOf(rq.r.Header)
	if err != nil {
		return err
	}
	if _, err := s.uploads(ctx, rq.bucket); err != nil {
		return err
	}
	id := randomHex(16)
	dir := s.uploadPath(rq.bucket, id)
	if err := s.c.Mkdir(ctx, dir, 0o755); err != nil {
		return err
	}
	info := uploadInfo{Key: rq.object, Headers: headers, Initiated: s.clock.Now().UTC(), UID: rq.key.UID}
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	f, err := s.c.Create(ctx, path.Join(dir, "info"), client.CreateOptions{Mode: 0o644})
	if err == nil {
		_, err = f.WriteAtContext(ctx, b, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		s.c.RemoveAll(context.WithoutCancel(ctx), dir)
		return err
	}
	return writeXML(rq.w, initiateResult{NS: s3NS, Bucket: rq.bucket, Key: rq.object, UploadID: id})
}

// upload reads the info of upload id of bucket b for key k.
func (s *Server) upload(ctx context.Context, b, k, id string) (*uploadInfo, error) {
	if !validUploadID(id) {
		return nil, ErrNoSuchUpload
	}
	f, err := s.c.Open(ctx, path.Join(s.uploadPath(b, id), "info"))
	if err != nil {
		if errors.Is(err, client.ErrNotFound) {
			if berr := s.checkBucket(ctx, b); berr != nil {
				return nil, berr
			}
			return nil, ErrNoSuchUpload
		}
		return nil, err
	}
	defer f.Close()
	if f.Size() > 1<<20 {
		return nil, fmt.Errorf("s3: upload %s: info too large", id)
	}
	buf := make([]byte, f.Size())
	if err := readFull(ctx, f, buf, 0); err != nil {
		return nil, err
	}
	var info uploadInfo
	if err := json.Unmarshal(buf, &info); err != nil {
		return nil, fmt.Errorf("s3: upload %s: %w", id, err)
	}
	if k != "" && info.Key != k {
		return nil, ErrNoSuchUpload
	}
	return &info, nil
}

// partNumber parses ?partNumber.
func partNumber(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxParts {
		return 0, ErrTooManyParts
	}
	return n, nil
}

func (s *Server) uploadPart(rq *request) error {
	ctx, r := rq.ctx, rq.r
	q := r.URL.Query()
	n, err := partNumber(q.Get("partNumber"))
	if err != nil {
		return err
	}
	id := q.Get("uploadId")
	length := contentLength(r)
	if length < 0 && r.Header.Get("X-Amz-Content-Sha256") != streamingUnsignedTrailer {
		return ErrMissingContentLength
	}
	md := r.Header.Get("Content-Md5")
	if md != "" {
		if b, err := base64.StdEncoding.DecodeString(md); err != nil || len(b) != 16 {
			return ErrInvalidDigest
		}
	}
	if _, err := s.upload(ctx, rq.bucket, rq.object, id); err != nil {
		return err
	}
	dir := s.uploadPath(rq.bucket, id)
	st, err := s.stage(ctx, rq.bucket, dir, rq.body, length, s.partFileChunk(ctx, dir, n, length))
	if err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return ErrNoSuchUpload // aborted meanwhile
		}
		return err
	}
	if md != "" {
		if err := checkMD5(md, st.md5); err != nil {
			s.discard(ctx, st)
			return err
		}
	}
	etag := hex.EncodeToString(st.md5)
	m, _ := json.Marshal(objMeta{ETag: etag, Size: st.size})
	if err := s.c.SetXattr(ctx, st.ino, metaXattr, m, client.XattrAny); err != nil {
		s.discard(ctx, st)
		return err
	}
	if err := s.c.RenameAt(ctx, st.dir, st.name, st.dir, partName(n), false); err != nil {
		s.discard(ctx, st)
		return err
	}
	rq.w.Header().Set("ETag", `"`+etag+`"`)
	rq.w.WriteHeader(http.StatusOK)
	return nil
}

type copyPartResult struct {
	XMLName      xml.Name `xml:"CopyPartResult"`
	NS           string   `xml:"xmlns,attr"`
	LastModified string   `xml:"LastModified"`
	ETag         string   `xml:"ETag"`
}

// uploadPartCopy makes a part of (a range of) an existing object, as
// aws s3 cp does between keys of S3 for objects it copies in parts. The
// bytes are copied inside the cluster (a part must have its own MD5).
func (s *Server) uploadPartCopy(rq *request) error {
	ctx, r := rq.ctx, rq.r
	q := r.URL.Query()
	n, err := partNumber(q.Get("partNumber"))
	if err != nil {
		return err
	}
	id := q.Get("uploadId")
	sb, sk, err := copySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	if _, err := s.upload(ctx, rq.bucket, rq.object, id); err != nil {
		return err
	}
	src, err := s.lookupObject(ctx, sb, sk)
	if err != nil {
		return err
	}
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
	start, end := int64(0), src.size-1
	if h := r.Header.Get("X-Amz-Copy-Source-Range"); h != "" {
		var ok bool
		if start, end, ok, err = parseRange(h, src.size); err != nil || !ok || strings.HasPrefix(h, "bytes=-") {
			return withMsg(ErrInvalidArgument, "x-amz-copy-source-range must be bytes=FIRST-LAST within the source")
		}
	}
	sf, err := s.c.OpenInode(ctx, src.ino, s.objectPath(sb, sk))
	if err != nil {
		return s.notFound(ctx, sb, err)
	}
	defer sf.Close()
	dir := s.uploadPath(rq.bucket, id)
	body := &partsReader{s: s, ctx: ctx, parts: []part{{size: end - start + 1}}, f: sf, off: 0}
	body.base = start
	st, err := s.stage(ctx, rq.bucket, dir, body, end-start+1, s.partFileChunk(ctx, dir, n, end-start+1))
	if err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return ErrNoSuchUpload
		}
		return err
	}
	etag := hex.EncodeToString(st.md5)
	m, _ := json.Marshal(objMeta{ETag: etag, Size: st.size})
	if err := s.c.SetXattr(ctx, st.ino, metaXattr, m, client.XattrAny); err != nil {
		s.discard(ctx, st)
		return err
	}
	if err := s.c.RenameAt(ctx, st.dir, st.name, st.dir, partName(n), false); err != nil {
		s.discard(ctx, st)
		return err
	}
	return writeXML(rq.w, copyPartResult{NS: s3NS, LastModified: s.clock.Now().UTC().Format(isoFormat), ETag: `"` + etag + `"`})
}

// part is an uploaded part.
type part struct {
	number    int
	etag      string
	size      int64
	chunkSize int64 // its file's
	inode     uint64
	mtime     time.Time
}

// parts lists the parts of upload id of bucket b, by number.
func (s *Server) parts(ctx context.Context, b, id string) ([]part, error) {
	ents, err := s.c.ReadDir(ctx, s.uploadPath(b, id))
	if err != nil {
		if errors.Is(err, client.ErrNotFound) {
			return nil, ErrNoSuchUpload
		}
		return nil, err
	}
	var out []part
	for _, e := range ents {
		num, ok := strings.CutPrefix(e.Name, "part-")
		if !ok || e.IsDir {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		raw, err := s.c.GetXattr(ctx, e.Inode, metaXattr)
		if errors.Is(err, client.ErrNotFound) {
			continue // replaced meanwhile
		}
		if err != nil {
			return nil, err
		}
		var m objMeta
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("s3: upload %s %s: %w", id, e.Name, err)
		}
		out = append(out, part{number: n, etag: m.ETag, size: e.Size, chunkSize: e.ChunkSize, inode: e.Inode, mtime: e.ModTime})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	return out, nil
}

type completeRequest struct {
	Parts []struct {
		PartNumber int    `xml:"PartNumber"`
		ETag       string `xml:"ETag"`
	} `xml:"Part"`
}

type completeResult struct {
	XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

func (s *Server) completeUpload(rq *request) error {
	ctx := rq.ctx
	id := rq.r.URL.Query().Get("uploadId")
	var req completeRequest
	if err := readXML(rq, &req, 4<<20); err != nil {
		return err
	}
	if len(req.Parts) == 0 {
		return withMsg(ErrMalformedXML, "no parts")
	}
	info, err := s.upload(ctx, rq.bucket, rq.object, id)
	if err != nil {
		return err
	}
	have, err := s.parts(ctx, rq.bucket, id)
	if err != nil {
		return err
	}
	byNum := map[int]part{}
	for _, p := range have {
		byNum[p.number] = p
	}
	// A completion that moved the parts and died before the rename
	// left its object file, which a retry of it commits.
	var moved *staged
	var use []part
	var total int64
	sums := md5.New()
	for _, p := range req.Parts {
		if _, ok := byNum[p.PartNumber]; !ok {
			moved = s.movedAssembly(ctx, rq.bucket, id, requestETag(req.Parts))
			break
		}
	}
	for i, p := range req.Parts {
		if moved != nil {
			break
		}
		if i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber {
			return ErrInvalidPartOrder
		}
		got, ok := byNum[p.PartNumber]
		if !ok || strings.Trim(strings.TrimSpace(p.ETag), `"`) != got.etag {
			return withMsg(ErrInvalidPart, "part %d was not uploaded or its ETag differs", p.PartNumber)
		}
		if i < len(req.Parts)-1 && got.size < s.cfg.MinPartSize {
			return withMsg(ErrEntityTooSmall, "part %d has %d bytes, less than %d", p.PartNumber, got.size, s.cfg.MinPartSize)
		}
		sum, _ := hex.DecodeString(got.etag)
		sums.Write(sum)
		use = append(use, got)
		total += got.size
	}
	etag := fmt.Sprintf("%s-%d", hex.EncodeToString(sums.Sum(nil)), len(use))
	if moved != nil {
		etag = requestETag(req.Parts)
	}

	// From here the answer is 200 with spaces until the result (or an
	// error in the body), as S3 does, so that a long assembly does not
	// time the client out.
	w := rq.w
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, xml.Header)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := s.clock.NewTicker(s.cfg.KeepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C():
				io.WriteString(w, " ")
				flush()
			}
		}
	}()
	if s.cfg.BeforeAssemble != nil {
		s.cfg.BeforeAssemble(rq.bucket, rq.object, id)
	}
	var o *object
	if moved != nil {
		o, err = s.finish(ctx, rq.bucket, rq.object, id, moved, etag, info.Headers)
	} else {
		o, err = s.assemble(ctx, rq.bucket, rq.object, id, use, etag, info.Headers)
	}
	close(done)
	wg.Wait() // the writer is the handler's alone again
	if err != nil {
		ae, ok := fromClient(err)
		if !ok {
			s.log.Warn("s3: completing an upload", "bucket", rq.bucket, "key", rq.object, "err", err)
			ae = ErrInternal
		}
		xml.NewEncoder(w).Encode(errorBody{Code: ae.Code, Message: ae.Message, Resource: rq.r.URL.Path, RequestID: rq.id})
		return nil
	}
	xml.NewEncoder(w).Encode(completeResult{NS: s3NS, Location: "/" + rq.bucket + "/" + rq.object, Bucket: rq.bucket, Key: rq.object, ETag: `"` + o.etag + `"`})
	return nil
}

// assemble makes one temporary file of the parts, by moving their
// chunks when they allow it (concat.go), else by copying their data;
// commits it as key k and removes the upload.
func (s *Server) assemble(ctx context.Context, b, k, id string, use []part, etag string, headers map[string]string) (*object, error) {
	dir := s.uploadPath(b, id)
	dfi, err := s.c.Stat(ctx, dir)
	if err != nil {
		return nil, s.notFound(ctx, b, err)
	}
	var want int64
	for _, p := range use {
		want += p.size
	}
	st, err := s.assembleMoved(ctx, dir, dfi.Inode, use, want, etag)
	if errors.Is(err, errNotMovable) {
		st, err = s.assembleCopied(ctx, dir, dfi.Inode, use, want)
	}
	if err != nil {
		return nil, err
	}
	return s.finish(ctx, b, k, id, st, etag, headers)
}

// finish commits the assembled file st of upload id as key k and
// removes the upload.
func (s *Server) finish(ctx context.Context, b, k, id string, st *staged, etag string, headers map[string]string) (*object, error) {
	dir := s.uploadPath(b, id)
	o, err := s.commit(ctx, b, k, st, etag, headers)
	if err != nil {
		return nil, err
	}
	if err := s.c.RemoveAll(ctx, dir); err != nil {
		s.log.Warn("s3: removing a completed upload", "dir", dir, "err", err)
	}
	return o, nil
}

// assembleCopied copies the parts of the upload in dir (inode dino), of
// want bytes in all, into a new temporary file there.
func (s *Server) assembleCopied(ctx context.Context, dir string, dino uint64, use []part, want int64) (*staged, error) {
	st := &staged{dir: dino, name: "assembly-" + randomHex(8)}
	f, err := s.c.Create(ctx, path.Join(dir, st.name), client.CreateOptions{Mode: 0o644})
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	st.ino = fi.Inode
	off, err := s.copyTo(ctx, f, 0, &partsReader{s: s, ctx: ctx, dir: dir, parts: use})
	if err == nil && off != want {
		err = fmt.Errorf("s3: upload %s: parts of %d bytes read as %d", path.Base(dir), want, off)
	}
	if err != nil {
		f.Close()
		s.discard(ctx, st)
		return nil, err
	}
	if err := f.Close(); err != nil {
		s.discard(ctx, st)
		return nil, err
	}
	st.size = off
	return st, nil
}

func (s *Server) abortUpload(rq *request) error {
	id := rq.r.URL.Query().Get("uploadId")
	if _, err := s.upload(rq.ctx, rq.bucket, rq.object, id); err != nil {
		return err
	}
	if err := s.c.RemoveAll(rq.ctx, s.uploadPath(rq.bucket, id)); err != nil {
		return err
	}
	rq.w.WriteHeader(http.StatusNoContent)
	return nil
}

type partEntry struct {
	PartNumber   int    `xml:"PartNumber"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
}

type listPartsResult struct {
	XMLName              xml.Name    `xml:"ListPartsResult"`
	NS                   string      `xml:"xmlns,attr"`
	Bucket               string      `xml:"Bucket"`
	Key                  string      `xml:"Key"`
	UploadID             string      `xml:"UploadId"`
	Initiator            owner       `xml:"Initiator"`
	Owner                owner       `xml:"Owner"`
	StorageClass         string      `xml:"StorageClass"`
	PartNumberMarker     int         `xml:"PartNumberMarker"`
	NextPartNumberMarker int         `xml:"NextPartNumberMarker"`
	MaxParts             int         `xml:"MaxParts"`
	IsTruncated          bool        `xml:"IsTruncated"`
	Parts                []partEntry `xml:"Part"`
}

func (s *Server) listParts(rq *request) error {
	q := rq.r.URL.Query()
	id := q.Get("uploadId")
	info, err := s.upload(rq.ctx, rq.bucket, rq.object, id)
	if err != nil {
		return err
	}
	maxParts := 1000
	if v := q.Get("max-parts"); v != "" {
		if maxParts, err = strconv.Atoi(v); err != nil || maxParts < 0 {
			return withMsg(ErrInvalidArgument, "max-parts must be a non-negative integer")
		}
		maxParts = min(maxParts, 1000)
	}
	marker := 0
	if v := q.Get("part-number-marker"); v != "" {
		if marker, err = strconv.Atoi(v); err != nil || marker < 0 {
			return withMsg(ErrInvalidArgument, "part-number-marker must be a non-negative integer")
		}
	}
	ps, err := s.parts(rq.ctx, rq.bucket, id)
	if err != nil {
		return err
	}
	res := listPartsResult{NS: s3NS, Bucket: rq.bucket, Key: rq.object, UploadID: id, Initiator: ownerOf(info.UID), Owner: ownerOf(info.UID),
		StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: maxParts}
	for _, p := range ps {
		if p.number <= marker {
			continue
		}
		if len(res.Parts) == maxParts {
			res.IsTruncated = true
			break
		}
		res.Parts = append(res.Parts, partEntry{PartNumber: p.number, LastModified: p.mtime.UTC().Format(isoFormat), ETag: `"` + p.etag + `"`, Size: p.size})
		res.NextPartNumberMarker = p.number
	}
	return writeXML(rq.w, res)
}

type uploadEntry struct {
	Key          string `xml:"Key"`
	UploadID     string `xml:"UploadId"`
	Initiator    owner  `xml:"Initiator"`
	Owner        owner  `xml:"Owner"`
	StorageClass string `xml:"StorageClass"`
	Initiated    string `xml:"Initiated"`
}

type listUploadsResult struct {
	XMLName            xml.Name       `xml:"ListMultipartUploadsResult"`
	NS                 string         `xml:"xmlns,attr"`
	Bucket             string         `xml:"Bucket"`
	KeyMarker          string         `xml:"KeyMarker"`
	UploadIDMarker     string         `xml:"UploadIdMarker"`
	NextKeyMarker      string         `xml:"NextKeyMarker"`
	NextUploadIDMarker string         `xml:"NextUploadIdMarker"`
	Prefix             string         `xml:"Prefix"`
	Delimiter          string         `xml:"Delimiter,omitempty"`
	MaxUploads         int            `xml:"MaxUploads"`
	IsTruncated        bool           `xml:"IsTruncated"`
	Uploads            []uploadEntry  `xml:"Upload"`
	CommonPrefixes     []commonPrefix `xml:"CommonPrefixes"`
}

func (s *Server) listUploads(rq *request) error {
	ctx := rq.ctx
	q := rq.r.URL.Query()
	if err := s.checkBucket(ctx, rq.bucket); err != nil {
		return err
	}
	maxUploads := 1000
	if v := q.Get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return withMsg(ErrInvalidArgument, "max-uploads must be a non-negative integer")
		}
		maxUploads = min(n, 1000)
	}
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	keyMarker, idMarker := q.Get("key-marker"), q.Get("upload-id-marker")
	res := listUploadsResult{NS: s3NS, Bucket: rq.bucket, KeyMarker: keyMarker, UploadIDMarker: idMarker, Prefix: prefix, Delimiter: delim, MaxUploads: maxUploads}
	ents, err := s.c.ReadDir(ctx, s.uploadsPath(rq.bucket))
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		return err
	}
	type up struct {
		id   string
		info *uploadInfo
	}
	var ups []up
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name, "mp-")
		if !ok || !e.IsDir || !validUploadID(id) {
			continue
		}
		info, err := s.upload(ctx, rq.bucket, "", id)
		if err != nil {
			continue // being created, completed or aborted
		}
		if strings.HasPrefix(info.Key, prefix) {
			ups = append(ups, up{id, info})
		}
	}
	sort.Slice(ups, func(i, j int) bool {
		if ups[i].info.Key != ups[j].info.Key {
			return ups[i].info.Key < ups[j].info.Key
		}
		if !ups[i].info.Initiated.Equal(ups[j].info.Initiated) {
			return ups[i].info.Initiated.Before(ups[j].info.Initiated)
		}
		return ups[i].id < ups[j].id
	})
	seen := map[string]bool{}
	for _, u := range ups {
		k := u.info.Key
		if keyMarker != "" && (k < keyMarker || k == keyMarker && (idMarker == "" || u.id <= idMarker)) {
			continue
		}
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if !seen[cp] {
					seen[cp] = true
					res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{Prefix: cp})
				}
				continue
			}
		}
		if len(res.Uploads) == maxUploads {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, uploadEntry{Key: k, UploadID: u.id, Initiator: ownerOf(u.info.UID), Owner: ownerOf(u.info.UID),
			StorageClass: "STANDARD", Initiated: u.info.Initiated.Format(isoFormat)})
		res.NextKeyMarker, res.NextUploadIDMarker = k, u.id
	}
	return writeXML(rq.w, res)
}

// SweepUploads removes, in every bucket, the multipart uploads and the
// temporary files of single PUTs that have not changed for
// MultipartExpiry; it returns how many it removed. It acts as the
// gateway's own identity (root with an admin certificate).
func (s *Server) SweepUploads(ctx context.Context) (int, error) {
	buckets, err := s.c.ReadDir(ctx, s.cfg.Root)
	if errors.Is(err, client.ErrNotFound) {
		return 0, nil // no root: no bucket yet
	}
	if err != nil {
		return 0, err
	}
	cutoff := s.clock.Now().Add(-s.cfg.MultipartExpiry)
	n := 0
	for _, b := range buckets {
		if !b.IsDir || strings.HasPrefix(b.Name, ".") {
			continue
		}
		ents, err := s.c.ReadDir(ctx, s.uploadsPath(b.Name))
		if err != nil {
			continue // no uploads, or the bucket went
		}
		for _, e := range ents {
			if !e.ModTime.Before(cutoff) {
				continue
			}
			if e.IsDir {
				// An upload: its latest part counts as activity.
				ps, err := s.parts(ctx, b.Name, strings.TrimPrefix(e.Name, "mp-"))
				if err == nil && slices.ContainsFunc(ps, func(p part) bool { return !p.mtime.Before(cutoff) }) {
					continue
				}
			}
			if err := s.c.RemoveAll(ctx, path.Join(s.uploadsPath(b.Name), e.Name)); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// partsReader reads an upload's parts one after the other, as the
// request's user.
type partsReader struct {
	s     *Server
	ctx   context.Context
	dir   string
	parts []part
	f     *client.File // the current part, nil between parts
	off   int64        // in the current part
	base  int64        // where the current part begins in f (a range of an object)
}

func (r *partsReader) Read(p []byte) (int, error) {
	for {
		if len(r.parts) == 0 {
			return 0, io.EOF
		}
		cur := r.parts[0]
		if r.f == nil {
			// The part listed, not one renamed over it since.
			f, err := r.s.c.OpenInode(r.ctx, cur.inode, path.Join(r.dir, partName(cur.number)))
			if errors.Is(err, client.ErrNotFound) {
				err = withMsg(ErrInvalidPart, "part %d was replaced or removed during the completion", cur.number)
			}
			if err != nil {
				return 0, sourceError{err}
			}
			r.f, r.off = f, 0
		}
		if r.off == cur.size {
			r.f.Close()
			r.f, r.parts, r.base = nil, r.parts[1:], 0
			continue
		}
		n := int(min(int64(len(p)), cur.size-r.off))
		if err := readFull(r.ctx, r.f, p[:n], r.base+r.off); err != nil {
			r.f.Close()
			r.f, r.parts = nil, nil
			return 0, sourceError{err}
		}
		r.off += int64(n)
		return n, nil
	}
}

// sourceError is a failure to read from the cluster, not from a
// client: copyTo returns it as it is.
type sourceError struct{ err error }

func (e sourceError) Error() string { return e.err.Error() }
func (e sourceError) Unwrap() error { return e.err }
