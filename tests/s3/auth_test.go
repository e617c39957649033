package s3

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/catena-io/catena/client"
)

// TestAuth: signatures, keys, presigned URLs and the identity a key
// acts as.
func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ctx := context.Background()
	must(t, "make bucket", e.mc.MakeBucket(ctx, "root-bucket", minio.MakeBucketOptions{}))
	e.put("root-bucket", "secret.txt", []byte("root's"), minio.PutObjectOptions{})

	t.Run("wrong secret", func(t *testing.T) {
		bad := e.minio(e.key.AccessKeyID, e.key.SecretAccessKey+"x")
		_, err := bad.ListBuckets(ctx)
		wantCode(t, "list buckets", err, "SignatureDoesNotMatch")
		_, err = bad.PutObject(ctx, "root-bucket", "forged", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
		wantCode(t, "put", err, "SignatureDoesNotMatch")
		if _, err := e.admin.Stat(ctx, "/s3/root-bucket/forged"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("a forged PUT left an object: %v", err)
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		_, err := e.minio("CKNOSUCHKEY0000000000", "whatever").ListBuckets(ctx)
		wantCode(t, "list buckets", err, "InvalidAccessKeyId")
	})

	t.Run("anonymous", func(t *testing.T) {
		r := e.doAs(t, "", "", "GET", "/root-bucket/secret.txt", nil, nil)
		if r.StatusCode != http.StatusForbidden || errCode(t, r) != "AccessDenied" {
			t.Fatalf("anonymous GET: %d %s", r.StatusCode, r.body)
		}
	})

	t.Run("tampered request", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+e.addr+"/root-bucket/secret.txt", nil)
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		req = signer.SignV4(*req, e.key.AccessKeyID, e.key.SecretAccessKey, "", "us-east-1")
		req.URL.Path = "/root-bucket/other.txt" // after signing
		if r := send(t, req); errCode(t, r) != "SignatureDoesNotMatch" {
			t.Fatalf("GET of another path than signed: %d %s", r.StatusCode, r.body)
		}
		// A payload whose SHA-256 is not the signed one.
		body := []byte("payload")
		req, _ = http.NewRequest("PUT", "http://"+e.addr+"/root-bucket/sha", bytes.NewReader(body))
		req.Header.Set("X-Amz-Content-Sha256", strings.Repeat("ab", 32))
		req = signer.SignV4(*req, e.key.AccessKeyID, e.key.SecretAccessKey, "", "us-east-1")
		if r := send(t, req); errCode(t, r) != "XAmzContentSHA256Mismatch" {
			t.Fatalf("PUT with a wrong x-amz-content-sha256: %d %s", r.StatusCode, r.body)
		}
		if _, err := e.admin.Stat(ctx, "/s3/root-bucket/sha"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("a PUT refused for its payload hash left an object: %v", err)
		}
	})

	t.Run("streaming chunk tampered", func(t *testing.T) {
		data := bytes.Repeat([]byte("s"), 100<<10)
		req, _ := http.NewRequest("PUT", "http://"+e.addr+"/root-bucket/streamed", bytes.NewReader(data))
		req = signer.StreamingSignV4(req, e.key.AccessKeyID, e.key.SecretAccessKey, "", "us-east-1", int64(len(data)), time.Now().UTC(), hasher())
		if r := send(t, req); r.StatusCode != http.StatusOK {
			t.Fatalf("streaming PUT: %d %s", r.StatusCode, r.body)
		}
		got, err := e.readFile("/s3/root-bucket/streamed")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("streamed object: %d bytes, %v", len(got), err)
		}
		req, _ = http.NewRequest("PUT", "http://"+e.addr+"/root-bucket/streamed", bytes.NewReader(data))
		req = signer.StreamingSignV4(req, e.key.AccessKeyID, e.key.SecretAccessKey, "", "us-east-1", int64(len(data)), time.Now().UTC(), hasher())
		req.Body = &flipper{r: req.Body, at: 80 << 10}
		if r := send(t, req); errCode(t, r) != "SignatureDoesNotMatch" {
			t.Fatalf("streaming PUT with a changed byte: %d %s", r.StatusCode, r.body)
		}
		got, err = e.readFile("/s3/root-bucket/streamed")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("the object changed by a refused streaming PUT: %d bytes, %v", len(got), err)
		}
	})

	t.Run("presigned", func(t *testing.T) {
		u, err := e.mc.PresignedGetObject(ctx, "root-bucket", "secret.txt", time.Minute, nil)
		must(t, "presign", err)
		resp, err := http.Get(u.String())
		must(t, "GET presigned", err)
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || b.String() != "root's" {
			t.Fatalf("presigned GET: %d %q", resp.StatusCode, b.String())
		}
		pu, err := e.mc.PresignedPutObject(ctx, "root-bucket", "uploaded", time.Minute)
		must(t, "presign put", err)
		req, _ := http.NewRequest("PUT", pu.String(), strings.NewReader("via a presigned PUT"))
		if r := send(t, req); r.StatusCode != 200 {
			t.Fatalf("presigned PUT: %d %s", r.StatusCode, r.body)
		}
		if got, err := e.readFile("/s3/root-bucket/uploaded"); err != nil || string(got) != "via a presigned PUT" {
			t.Fatalf("presigned PUT stored %q, %v", got, err)
		}
		// Tampered: another key with the same signature.
		bad := strings.Replace(u.String(), "secret.txt", "uploaded", 1)
		req, _ = http.NewRequest("GET", bad, nil)
		if r := send(t, req); errCode(t, r) != "SignatureDoesNotMatch" {
			t.Fatalf("presigned URL for another key: %d %s", r.StatusCode, r.body)
		}
		// Expired: the gateway's clock moves past the expiry.
		short, err := e.mc.PresignedGetObject(ctx, "root-bucket", "secret.txt", time.Second, nil)
		must(t, "presign", err)
		e.clock.advance(2 * time.Second)
		defer e.clock.advance(-2 * time.Second)
		req, _ = http.NewRequest("GET", short.String(), nil)
		r := send(t, req)
		if r.StatusCode != http.StatusForbidden || errCode(t, r) != "AccessDenied" || !strings.Contains(string(r.body), "expired") {
			t.Fatalf("expired presigned GET: %d %s", r.StatusCode, r.body)
		}
	})

	t.Run("clock skew", func(t *testing.T) {
		e.clock.advance(time.Hour)
		defer e.clock.advance(-time.Hour)
		_, err := e.mc.ListBuckets(ctx)
		wantCode(t, "a request an hour old", err, "RequestTimeTooSkewed")
	})

	t.Run("a user's key", func(t *testing.T) {
		uk := e.newKey("alice", 1000, 1000)
		alice := e.minio(uk.AccessKeyID, uk.SecretAccessKey)
		_, err := alice.PutObject(ctx, "root-bucket", "intrusion", bytes.NewReader([]byte("x")), 1, minio.PutObjectOptions{})
		wantCode(t, "alice writes root's bucket", err, "AccessDenied")
		must(t, "alice makes a bucket", alice.MakeBucket(ctx, "alice-bucket", minio.MakeBucketOptions{}))
		_, err = alice.PutObject(ctx, "alice-bucket", "dir/mine", bytes.NewReader([]byte("alice's")), 7, minio.PutObjectOptions{})
		must(t, "alice puts", err)
		fi, err := e.admin.Stat(ctx, "/s3/alice-bucket/dir/mine")
		if err != nil || fi.Uid != 1000 || fi.Gid != 1000 {
			t.Fatalf("alice's object: %+v, %v; want it owned by 1000:1000", fi, err)
		}
		// Root may read alice's; alice may not remove root's bucket.
		if got, err := e.get("alice-bucket", "dir/mine", minio.GetObjectOptions{}); err != nil || string(got) != "alice's" {
			t.Fatalf("root reads alice's object: %q %v", got, err)
		}
		must(t, "remove root's object", e.mc.RemoveObject(ctx, "root-bucket", "uploaded", minio.RemoveObjectOptions{}))
		must(t, "remove root's object", e.mc.RemoveObject(ctx, "root-bucket", "secret.txt", minio.RemoveObjectOptions{}))
		must(t, "remove root's object", e.mc.RemoveObject(ctx, "root-bucket", "streamed", minio.RemoveObjectOptions{}))
		wantCode(t, "alice removes root's bucket", alice.RemoveBucket(ctx, "root-bucket"), "AccessDenied")
		// A root-only directory stays closed to her.
		ctxRoot := context.Background()
		must(t, "mkdir", e.admin.Mkdir(ctxRoot, "/s3/root-bucket/private", 0o700))
		e.writeFile("/s3/root-bucket/private/p", []byte("p"))
		_, err = alice.StatObject(ctx, "root-bucket", "private/p", minio.StatObjectOptions{})
		wantCode(t, "alice reads a root-only directory", err, "AccessDenied")

		// Removing the key: refused once the gateway's cache lapses.
		if _, err := e.keys.Remove(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		e.clock.advance(3 * time.Second)
		defer e.clock.advance(-3 * time.Second)
		_, err = alice.ListBuckets(ctx)
		wantCode(t, "a removed key", err, "InvalidAccessKeyId")
	})
}

// flipper changes the byte at offset at of what it reads.
type flipper struct {
	r   interface{ Read([]byte) (int, error) }
	off int
	at  int
}

func (f *flipper) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+n {
		p[f.at-f.off] ^= 1
	}
	f.off += n
	return n, err
}

func (f *flipper) Close() error { return nil }
