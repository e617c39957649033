package s3

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/clock"
)

// Config configures a Server.
type Config struct {
	// Client talks to the cluster. On a cluster with TLS it must hold
	// an admin certificate: the gateway reads the access keys (root's)
	// and acts as each key's user.
	Client *client.Client
	// Keys is the access key store; nil: NewKeys(Client, Clock).
	Keys *Keys
	// Root is the directory whose subdirectories are the buckets
	// (default /s3). The first CreateBucket makes it, mode 1777 (as
	// /tmp: anyone may make a bucket, only its owner remove it), when
	// missing.
	Root string
	// Region is what GetBucketLocation answers (default us-east-1).
	// Requests signed for any region are accepted.
	Region string
	// MultipartExpiry is how long a multipart upload (or a single PUT's
	// temporary file) may go untouched before it is removed (default
	// 24h).
	MultipartExpiry time.Duration
	// MinPartSize is the least size of a multipart upload's parts but
	// the last (default 5 MiB, S3's).
	MinPartSize int64
	// KeepAlive is how often a CompleteMultipartUpload still assembling
	// sends a space to keep its client waiting (default 10 s).
	KeepAlive time.Duration
	// WriteConcurrency bounds the writes of copyBuf bytes the gateway
	// has in flight at once, over all requests (default 4).
	WriteConcurrency int
	// Clock; nil means the real one.
	Clock clock.Clock
	// Logger; nil discards.
	Logger *slog.Logger
	// BeforeAssemble, when set, is called by CompleteMultipartUpload
	// once it has checked the parts listed against those uploaded and
	// before it assembles them: tests use it to change the upload in
	// between.
	BeforeAssemble func(bucket, key, uploadID string)
}

// Server is the S3 gateway: an http.Handler. Safe for concurrent use.
type Server struct {
	cfg   Config
	c     *client.Client
	keys  *Keys
	clock clock.Clock
	log   *slog.Logger
	reqID atomic.Uint64
	// writes holds a token per write in flight (WriteConcurrency).
	writes chan struct{}
	holds  holder // hold.go
}

// mdActAs is the gRPC metadata key of internal/master's MDActAs (the
// wire contract; a test checks the two agree).
const mdActAs = "catena-act-as"

// uploadsDir is the hidden directory of each bucket holding temporary
// files and multipart uploads; it is no object and never listed.
const uploadsDir = ".s3-uploads"

// s3NS is the XML namespace of S3's answers.
const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

// New returns a gateway over cfg.Client; Init prepares the root.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("s3: Config.Client is required")
	}
	if cfg.Root == "" {
		cfg.Root = "/s3"
	}
	cfg.Root = path.Clean("/" + cfg.Root)
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.MultipartExpiry <= 0 {
		cfg.MultipartExpiry = 24 * time.Hour
	}
	if cfg.MinPartSize <= 0 {
		cfg.MinPartSize = 5 << 20
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 10 * time.Second
	}
	if cfg.WriteConcurrency <= 0 {
		cfg.WriteConcurrency = 4
	}
	clk := clock.Or(cfg.Clock)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	keys := cfg.Keys
	if keys == nil {
		keys = NewKeys(cfg.Client, clk)
	}
	return &Server{cfg: cfg, c: cfg.Client, keys: keys, clock: clk, log: log, writes: make(chan struct{}, cfg.WriteConcurrency)}, nil
}

// Init checks that the root, if it exists, is a directory, and that the
// gateway may read the access keys. The root is made by the first
// CreateBucket (ensureRoot), so that a cluster nobody uses through S3
// has no /s3.
func (s *Server) Init(ctx context.Context) error {
	fi, err := s.c.Stat(ctx, s.cfg.Root)
	switch {
	case errors.Is(err, client.ErrNotFound):
	case err != nil:
		return fmt.Errorf("s3: root %s: %w", s.cfg.Root, err)
	case !fi.IsDir:
		return fmt.Errorf("s3: root %s is not a directory", s.cfg.Root)
	}
	if _, err := s.keys.List(ctx); err != nil {
		return fmt.Errorf("s3: cannot read the access keys in %s (the gateway needs an admin certificate): %w", KeysDir, err)
	}
	return nil
}

// ensureRoot makes the root directory, mode 1777 (as /tmp: anyone may
// make a bucket, only its owner remove it), when missing. It acts as the
// gateway's own identity, not the request's user.
func (s *Server) ensureRoot(ctx context.Context) error {
	ctx = metadata.NewOutgoingContext(ctx, nil) // drop the request's identity
	if _, err := s.c.Stat(ctx, s.cfg.Root); !errors.Is(err, client.ErrNotFound) {
		return err
	}
	if err := s.c.MkdirAll(ctx, s.cfg.Root, 0o777); err != nil {
		return fmt.Errorf("s3: root %s: %w", s.cfg.Root, err)
	}
	fi, err := s.c.Stat(ctx, s.cfg.Root)
	if err != nil {
		return fmt.Errorf("s3: root %s: %w", s.cfg.Root, err)
	}
	if fi.Mode.Perm() == 0o777 {
		mode := uint32(0o1777)
		if _, err := s.c.SetAttr(ctx, fi.Inode, client.SetAttrIn{Mode: &mode}); err != nil {
			return fmt.Errorf("s3: root %s: %w", s.cfg.Root, err)
		}
	}
	return nil
}

// Run removes abandoned uploads every so often, and keeps the
// gateway's mount session (hold.go) alive, until ctx ends; then it ends
// the session.
func (s *Server) Run(ctx context.Context) {
	every := min(s.cfg.MultipartExpiry/4, time.Hour)
	every = max(every, time.Second)
	t := s.clock.NewTicker(every)
	defer t.Stop()
	renew := s.clock.NewTicker(holdTTL / 3)
	defer renew.Stop()
	defer func() {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		s.endSession(ectx)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C():
			s.renewSession(ctx)
		case <-t.C():
			if n, err := s.SweepUploads(ctx); err != nil {
				s.log.Warn("s3: sweeping abandoned uploads", "err", err)
			} else if n > 0 {
				s.log.Info("s3: removed abandoned uploads", "count", n)
			}
		}
	}
}

// request is one request being served.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	id     string
	ctx    context.Context // acts as the key's user
	key    *Key
	bucket string
	object string
	body   io.Reader // the payload, decoded and checked as it is read
	// bodyErr reports a failed payload check once body hit EOF
	// (x-amz-content-sha256 mismatch).
	sha    hash.Hash
	shaHex string
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rq := &request{w: w, r: r, id: fmt.Sprintf("%016X", s.reqID.Add(1))}
	w.Header().Set("x-amz-request-id", rq.id)
	w.Header().Set("Server", "Catena")
	if err := s.authenticate(rq); err != nil {
		s.writeError(rq, err)
		return
	}
	if err := s.route(rq); err != nil {
		s.writeError(rq, err)
	}
}

// authenticate checks the request's SigV4 signature, sets its identity
// and wraps its body in the payload checks its signature names.
func (s *Server) authenticate(rq *request) error {
	r := rq.r
	var sr *sigRequest
	var aerr *APIError
	payload := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case r.Header.Get("Authorization") != "":
		sr, aerr = parseAuthHeader(r.Header.Get("Authorization"))
		if aerr != nil {
			return aerr
		}
		d := r.Header.Get("X-Amz-Date")
		if d == "" {
			return withMsg(ErrMissingSecurityHeader, "x-amz-date is required")
		}
		t, err := time.Parse(amzDateFormat, d)
		if err != nil {
			return withMsg(ErrAuthorizationMalformed, "malformed x-amz-date")
		}
		sr.AmzDate = t
		if skew := s.clock.Now().Sub(t); skew > maxSkew || skew < -maxSkew {
			return ErrRequestTimeTooSkewed
		}
		if payload == "" {
			return withMsg(ErrMissingSecurityHeader, "x-amz-content-sha256 is required")
		}
	case r.URL.Query().Get("X-Amz-Algorithm") != "":
		sr, aerr = parsePresigned(r.URL.Query())
		if aerr != nil {
			return aerr
		}
		now := s.clock.Now()
		if now.Before(sr.AmzDate.Add(-maxSkew)) {
			return withMsg(ErrAccessDenied, "Request is not valid yet.")
		}
		if now.After(sr.AmzDate.Add(sr.Expires)) {
			return ErrExpiredPresign
		}
		if payload == "" {
			payload = unsignedPayload
		}
	default:
		return withMsg(ErrAccessDenied, "Anonymous access is not allowed: sign requests with an access key (catena admin s3 key create).")
	}
	if sr.AmzDate.UTC().Format(scopeDateFormat) != sr.Date {
		return withMsg(ErrSignatureDoesNotMatch, "the credential's date is not the request's")
	}
	key, err := s.keys.Lookup(r.Context(), sr.AccessKey)
	if errors.Is(err, ErrNoSuchAccessKey) {
		return ErrInvalidAccessKeyID
	}
	if err != nil {
		s.log.Warn("s3: looking up an access key", "err", err)
		return ErrInternal
	}
	sk := signingKey(key.SecretAccessKey, sr.Date, sr.Region, sr.Service)
	want := signature(sk, stringToSign(sr.AmzDate, sr.scope(), canonicalRequest(r, sr.SignedHeaders, payload)))
	if !sigEqual(want, sr.Signature) {
		return ErrSignatureDoesNotMatch
	}
	rq.key = key
	rq.ctx = metadata.AppendToOutgoingContext(r.Context(), mdActAs, fmt.Sprintf("%d:%d", key.UID, key.GID))
	switch {
	case payload == unsignedPayload:
		rq.body = r.Body
	case payload == streamingPayload:
		if r.Header.Get("X-Amz-Decoded-Content-Length") == "" {
			return withMsg(ErrMissingContentLength, "x-amz-decoded-content-length is required")
		}
		rq.body = newChunkedReader(r.Body, &chunkSigner{key: sk, amzDate: sr.AmzDate, scope: sr.scope(), prev: sr.Signature}, false)
	case payload == streamingTrailer:
		if r.Header.Get("X-Amz-Decoded-Content-Length") == "" {
			return withMsg(ErrMissingContentLength, "x-amz-decoded-content-length is required")
		}
		rq.body = newChunkedReader(r.Body, &chunkSigner{key: sk, amzDate: sr.AmzDate, scope: sr.scope(), prev: sr.Signature}, true)
	case payload == streamingUnsignedTrailer:
		rq.body = newChunkedReader(r.Body, nil, true)
	case len(payload) == 64 && isHex(payload):
		rq.sha = sha256.New()
		rq.shaHex = strings.ToLower(payload)
		rq.body = &shaCheckReader{r: r.Body, h: rq.sha, want: rq.shaHex}
	default:
		return withMsg(ErrInvalidArgument, "unsupported x-amz-content-sha256 %q", payload)
	}
	return nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// shaCheckReader fails at EOF when the body's SHA-256 is not want.
type shaCheckReader struct {
	r    io.Reader
	h    hash.Hash
	want string
}

func (c *shaCheckReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(c.h.Sum(nil)) != c.want {
		return n, ErrContentSHA256Mismatch
	}
	return n, err
}

// contentLength is the payload's length as the request declares it
// (x-amz-decoded-content-length for aws-chunked bodies); -1 unknown.
func contentLength(r *http.Request) int64 {
	if d := r.Header.Get("X-Amz-Decoded-Content-Length"); d != "" {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	return r.ContentLength
}

// route dispatches on the method, the path and the subresources.
func (s *Server) route(rq *request) error {
	r := rq.r
	p := strings.TrimPrefix(r.URL.Path, "/")
	bucket, object, _ := strings.Cut(p, "/")
	rq.bucket, rq.object = bucket, object
	q := r.URL.Query()
	for _, sub := range []string{"acl", "policy", "tagging", "lifecycle", "cors", "website", "replication", "encryption", "object-lock", "retention", "legal-hold", "notification", "torrent", "restore", "select", "accelerate", "logging", "requestPayment", "analytics", "metrics", "inventory", "intelligent-tiering", "ownershipControls", "publicAccessBlock", "attributes"} {
		if q.Has(sub) {
			return withMsg(ErrNotImplemented, "?%s is not implemented", sub)
		}
	}
	if bucket == "" {
		if r.Method == http.MethodGet {
			return s.listBuckets(rq)
		}
		return ErrMethodNotAllowed
	}
	if err := checkBucketName(bucket, r.Method == http.MethodPut && object == ""); err != nil {
		return err
	}
	if object == "" {
		switch r.Method {
		case http.MethodPut:
			if q.Has("versioning") {
				return withMsg(ErrNotImplemented, "versioning is not implemented")
			}
			return s.createBucket(rq)
		case http.MethodDelete:
			return s.deleteBucket(rq)
		case http.MethodHead:
			return s.headBucket(rq)
		case http.MethodGet:
			switch {
			case q.Has("location"):
				return s.bucketLocation(rq)
			case q.Has("versioning"):
				return s.bucketVersioning(rq)
			case q.Has("uploads"):
				return s.listUploads(rq)
			case q.Has("versions"):
				return withMsg(ErrNotImplemented, "versions are not implemented")
			case q.Get("list-type") == "2":
				return s.listObjects(rq, true)
			default:
				return s.listObjects(rq, false)
			}
		case http.MethodPost:
			if q.Has("delete") {
				return s.deleteObjects(rq)
			}
		}
		return ErrMethodNotAllowed
	}
	if err := checkKey(object); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodPut:
		switch {
		case q.Has("uploadId") && r.Header.Get("X-Amz-Copy-Source") != "":
			return s.uploadPartCopy(rq)
		case q.Has("uploadId"):
			return s.uploadPart(rq)
		case r.Header.Get("X-Amz-Copy-Source") != "":
			return s.copyObject(rq)
		default:
			return s.putObject(rq)
		}
	case http.MethodGet:
		if q.Has("uploadId") {
			return s.listParts(rq)
		}
		return s.getObject(rq, false)
	case http.MethodHead:
		return s.getObject(rq, true)
	case http.MethodDelete:
		if q.Has("uploadId") {
			return s.abortUpload(rq)
		}
		return s.deleteObject(rq)
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return s.createUpload(rq)
		case q.Has("uploadId"):
			return s.completeUpload(rq)
		}
	}
	return ErrMethodNotAllowed
}

// writeError answers with e as S3 does (an XML body but for HEAD).
func (s *Server) writeError(rq *request, err error) {
	ae, ok := fromClient(err)
	if !ok {
		s.log.Warn("s3: request failed", "method", rq.r.Method, "path", rq.r.URL.Path, "err", err)
		ae = ErrInternal
	}
	s.log.Debug("s3: error", "method", rq.r.Method, "path", rq.r.URL.Path, "code", ae.Code, "err", err)
	h := rq.w.Header()
	h.Set("Content-Type", "application/xml")
	rq.w.WriteHeader(ae.Status)
	if rq.r.Method == http.MethodHead {
		return
	}
	body := errorBody{Code: ae.Code, Message: ae.Message, Resource: rq.r.URL.Path, RequestID: rq.id}
	io.WriteString(rq.w, xml.Header)
	xml.NewEncoder(rq.w).Encode(body)
}

// writeXML answers 200 with v as XML.
func writeXML(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, xml.Header)
	return xml.NewEncoder(w).Encode(v)
}

// readXML decodes a small XML body into v.
func readXML(rq *request, v any, limit int64) error {
	b, err := io.ReadAll(io.LimitReader(rq.body, limit+1))
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			return ae
		}
		return withMsg(ErrIncompleteBody, "reading the body: %v", err)
	}
	if int64(len(b)) > limit {
		return withMsg(ErrMalformedXML, "body larger than %d bytes", limit)
	}
	if md := rq.r.Header.Get("Content-Md5"); md != "" {
		sum := md5.Sum(b)
		if err := checkMD5(md, sum[:]); err != nil {
			return err
		}
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return ErrMalformedXML
	}
	return nil
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	randomBytes(b)
	return hex.EncodeToString(b)
}

// randomBytes fills b from crypto/rand.
func randomBytes(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
}

// checkBucketName checks a bucket name: S3's rules for a new bucket;
// for an existing one any name a top-level directory can have that is
// not hidden.
func checkBucketName(b string, creating bool) error {
	if strings.HasPrefix(b, ".") || len(b) > 255 {
		return ErrInvalidBucketName
	}
	if !creating {
		return nil
	}
	if len(b) < 3 || len(b) > 63 {
		return withMsg(ErrInvalidBucketName, "bucket names have 3 to 63 characters")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return withMsg(ErrInvalidBucketName, "bucket names have lower-case letters, digits, '-' and '.'")
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) || strings.Contains(b, "..") {
		return withMsg(ErrInvalidBucketName, "bucket names begin and end with a letter or digit")
	}
	return nil
}

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// checkKey checks that an object key names a file: no empty, "." or
// ".." segment, not in the bucket's hidden upload directory, at most
// 1024 bytes. A key ending in "/" is a directory marker.
func checkKey(k string) error {
	if len(k) > 1024 {
		return ErrKeyTooLong
	}
	segs := strings.Split(strings.TrimSuffix(k, "/"), "/")
	for _, seg := range segs {
		if seg == "" || seg == "." || seg == ".." {
			return withMsg(ErrInvalidArgument, "keys with empty, '.' or '..' segments cannot be stored")
		}
		if len(seg) > 255 {
			return withMsg(ErrKeyTooLong, "a key's segments between '/' are at most 255 bytes")
		}
	}
	if segs[0] == uploadsDir {
		return withMsg(ErrInvalidArgument, "%s/ is reserved", uploadsDir)
	}
	return nil
}

// bucketPath is the directory of bucket b.
func (s *Server) bucketPath(b string) string { return path.Join(s.cfg.Root, b) }

// objectPath is the file of key k in bucket b.
func (s *Server) objectPath(b, k string) string { return path.Join(s.cfg.Root, b, k) }

// uploadsPath is bucket b's hidden upload directory.
func (s *Server) uploadsPath(b string) string { return path.Join(s.cfg.Root, b, uploadsDir) }
