package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/catena-io/catena/internal/cluster"
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
