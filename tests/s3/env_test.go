package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/catena-io/catena/client"
	"github.com/catena-io/catena/internal/clock"
	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
	s3gw "github.com/catena-io/catena/internal/s3"
)

// offsetClock is the real clock moved by an offset a test sets, so that
// presigned URLs expire and caches lapse without waiting.
type offsetClock struct {
	clock.Real
	off atomic.Int64
}

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

func (c *offsetClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// env is a cluster, a gateway serving it, and a root access key.
type env struct {
	t       testing.TB
	c       *cluster.Cluster
	admin   *client.Client // root
	gw      *s3gw.Server
	keys    *s3gw.Keys
	clock   *offsetClock
	addr    string // host:port of the gateway
	key     *s3gw.Key
	mc      *minio.Client // signed with key
	minPart int64
}

// newEnv starts a cluster with TLS and a gateway whose parts but the
// last must have at least minPart bytes (S3's 5 MiB when 0).
func newEnv(t testing.TB, minPart int64) *env {
	t.Helper()
	return newEnvWith(t, minPart, cluster.Config{})
}

// newEnvWith is newEnv on a cluster configured by cfg; gwOpts, when
// given, change the gateway's configuration.
func newEnvWith(t testing.TB, minPart int64, cfg cluster.Config, gwOpts ...func(*s3gw.Config)) *env {
	t.Helper()
	c := clustertest.New(t, cfg)
	admin := clustertest.Client(t, c)
	clk := &offsetClock{}
	keys := s3gw.NewKeys(admin, clk)
	gcfg := s3gw.Config{Client: admin, Keys: keys, Clock: clk, MinPartSize: minPart, MultipartExpiry: time.Hour, Logger: clustertest.Logger().With("proc", "s3")}
	for _, o := range gwOpts {
		o(&gcfg)
	}
	gw, err := s3gw.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := gw.Init(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw}
	go srv.Serve(l)
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); gw.Run(runCtx) }()
	t.Cleanup(func() { srv.Close(); stop(); <-ran })
	e := &env{t: t, c: c, admin: admin, gw: gw, keys: keys, clock: clk, addr: l.Addr().String(), minPart: minPart}
	e.key = e.newKey("root", 0, 0)
	e.mc = e.minio(e.key.AccessKeyID, e.key.SecretAccessKey)
	return e
}

func (e *env) newKey(name string, uid, gid uint32) *s3gw.Key {
	e.t.Helper()
	k, err := e.keys.Create(context.Background(), name, uid, gid)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// minio returns a minio-go client signing with the given key.
func (e *env) minio(id, secret string) *minio.Client {
	e.t.Helper()
	mc, err := minio.New(e.addr, &minio.Options{Creds: credentials.NewStaticV4(id, secret, ""), Region: "us-east-1"})
	if err != nil {
		e.t.Fatal(err)
	}
	return mc
}

// code is the S3 error code of err ("" for none).
func code(err error) string {
	if err == nil {
		return ""
	}
	return minio.ToErrorResponse(err).Code
}

func wantCode(t testing.TB, what string, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("%s: error code %q (%v), want %q", what, got, err, want)
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// put puts data as key and returns its ETag.
func (e *env) put(bucket, key string, data []byte, opts minio.PutObjectOptions) string {
	e.t.Helper()
	info, err := e.mc.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	must(e.t, "put "+bucket+"/"+key, err)
	return info.ETag
}

// get reads key whole.
func (e *env) get(bucket, key string, opts minio.GetObjectOptions) ([]byte, error) {
	o, err := e.mc.GetObject(context.Background(), bucket, key, opts)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

// readFile reads a file of the namespace through the client library.
func (e *env) readFile(path string) ([]byte, error) {
	f, err := e.admin.Open(context.Background(), path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, f.Size())
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// writeFile writes a file of the namespace through the client library.
func (e *env) writeFile(path string, data []byte) {
	e.t.Helper()
	ctx := context.Background()
	f, err := e.admin.Create(ctx, path, client.CreateOptions{Overwrite: true})
	must(e.t, "create "+path, err)
	_, err = f.WriteAt(data, 0)
	must(e.t, "write "+path, err)
	must(e.t, "close "+path, f.Close())
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

// pattern is n bytes that differ with seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i/4096) ^ seed
	}
	return b
}
