package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/catena-io/catena/internal/cluster"
	"github.com/catena-io/catena/internal/cluster/clustertest"
)

// TestMultipartChunkserverStopped: a chunkserver stops in the middle of
// a multipart upload; the upload completes and the object is exactly
// the parts (the cleanup's replica scan and fsck then check the
// cluster, the stopped server restarted). An in-process stop, not the
// SIGKILL of a real process that issue 19 names: tests/crash has the
// real-process harness.
func TestMultipartChunkserverStopped(t *testing.T) {
	t.Parallel()
	const partSize = 2 << 20
	// Four chunkservers: with one stopped, new chunks still find their
	// three replicas.
	e := newEnvWith(t, partSize, cluster.Config{Chunkservers: 4})
	ctx := context.Background()
	core := e.core()
	must(t, "make bucket", e.mc.MakeBucket(ctx, "crash", minio.MakeBucketOptions{}))
	id, err := core.NewMultipartUpload(ctx, "crash", "obj", minio.PutObjectOptions{})
	must(t, "create upload", err)
	var parts []minio.CompletePart
	var all []byte
	for n := 1; n <= 6; n++ {
		if n == 3 {
			must(t, "stop chunkserver", e.c.StopChunkserver(1))
		}
		data := pattern(partSize, byte(n))
		p, err := core.PutObjectPart(ctx, "crash", "obj", id, n, bytes.NewReader(data), int64(len(data)), minio.PutObjectPartOptions{})
		must(t, "upload part", err)
		parts = append(parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
		all = append(all, data...)
	}
	info, err := core.CompleteMultipartUpload(ctx, "crash", "obj", id, parts, minio.PutObjectOptions{})
	must(t, "complete", err)
	if info.ETag != multipartETag(splitParts(all, partSize)...) {
		t.Fatalf("ETag %s", info.ETag)
	}
	got, err := e.get("crash", "obj", minio.GetObjectOptions{})
	must(t, "get", err)
	if sha256.Sum256(got) != sha256.Sum256(all) {
		t.Fatalf("the object (%d bytes) is not its parts (%d bytes)", len(got), len(all))
	}
	must(t, "restart chunkserver", e.c.RestartChunkserver(ctx, 1))
}

func splitParts(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(size, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// TestInterruptedPut: a client that goes away in the middle of a PUT's
// body leaves no object and no temporary file, and the key keeps its
// old object.
func TestInterruptedPut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 0)
	ctx := context.Background()
	must(t, "make bucket", e.mc.MakeBucket(ctx, "cut", minio.MakeBucketOptions{}))
	e.put("cut", "old", []byte("the old object"), minio.PutObjectOptions{})
	for _, key := range []string{"new", "old"} {
		req, _ := http.NewRequest("PUT", "http://"+e.addr+"/cut/"+key, nil)
		req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		req.ContentLength = 20 << 20
		signed := signer.SignV4(*req, e.key.AccessKeyID, e.key.SecretAccessKey, "", "us-east-1")
		conn, err := net.Dial("tcp", e.addr)
		must(t, "dial", err)
		var head bytes.Buffer
		signed.Header.Set("Content-Length", strconv.Itoa(20<<20))
		fmt.Fprintf(&head, "PUT /cut/%s HTTP/1.1\r\nHost: %s\r\n", key, e.addr)
		signed.Header.Write(&head)
		head.WriteString("\r\n")
		conn.Write(head.Bytes())
		conn.Write(pattern(9<<20, 7)) // more than one of the gateway's writes
		conn.Close()
	}
	clustertest.Eventually(t, 30*time.Second, func() error {
		ents, err := e.admin.ReadDir(ctx, "/s3/cut/.s3-uploads")
		if err != nil {
			return err
		}
		if len(ents) != 0 {
			return fmt.Errorf("temporary files left: %d", len(ents))
		}
		return nil
	})
	if _, err := e.mc.StatObject(ctx, "cut", "new", minio.StatObjectOptions{}); code(err) != "NoSuchKey" {
		t.Fatalf("an interrupted PUT made an object: %v", err)
	}
	got, err := e.get("cut", "old", minio.GetObjectOptions{})
	if err != nil || string(got) != "the old object" {
		t.Fatalf("the old object after an interrupted PUT over it: %q %v", got, err)
	}
}
