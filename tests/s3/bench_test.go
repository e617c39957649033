package s3

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// prngReader yields n bytes of a PCG stream seeded with seed, so that a
// large object is made (and made again, to check it) without holding it.
type prngReader struct {
	r *rand.PCG
	n int64
	w uint64 // bytes of the current word not yet given
	v uint64
}

func newPRNG(seed uint64, n int64) *prngReader {
	return &prngReader{r: rand.NewPCG(seed, 0x5eed), n: n}
}

func (p *prngReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	for i := range b {
		if p.w == 0 {
			p.v, p.w = p.r.Uint64(), 8
		}
		b[i] = byte(p.v)
		p.v >>= 8
		p.w--
	}
	p.n -= int64(len(b))
	return len(b), nil
}

// writePRNGFile writes n bytes of seed's stream to a new file in dir.
func writePRNGFile(t testing.TB, dir string, seed uint64, n int64) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "data-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, newPRNG(seed, n)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// BenchmarkCompleteMultipart: the time CompleteMultipartUpload takes
// for an object of CATENA_S3_BENCH_SIZE bytes (1 GiB by default) sent
// in parts of awscli's 8 MiB (chunks moved, docs/s3.md), minio-go's
// 16 MiB and rclone's 5 MiB (1 MiB chunks; moved too). Only the completion is timed; the parts are
// uploaded before each, two at a time. Run one at a time:
//
//	go test -run '^$' -bench CompleteMultipart -benchtime 1x ./tests/s3
func BenchmarkCompleteMultipart(b *testing.B) {
	size := int64(1 << 30)
	if v := os.Getenv("CATENA_S3_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	for _, part := range []int64{8 << 20, 16 << 20, 5 << 20} {
		b.Run(fmt.Sprintf("parts=%dMiB", part>>20), func(b *testing.B) {
			e := newEnv(b, 0)
			ctx := context.Background()
			must(b, "make bucket", e.mc.MakeBucket(ctx, "bench", minio.MakeBucketOptions{}))
			core := minio.Core{Client: e.mc}
			b.SetBytes(size)
			var uploading time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				began := time.Now()
				id, parts := uploadParts(b, core, "bench", "obj", uint64(i), size, part)
				uploading += time.Since(began)
				b.StartTimer()
				_, err := core.CompleteMultipartUpload(ctx, "bench", "obj", id, parts, minio.PutObjectOptions{})
				must(b, "complete", err)
			}
			b.StopTimer()
			// The parts' upload, untimed: its pace with the part's chunk
			// size (1 MiB for 5 MiB parts), for docs/benchmarks.md.
			b.ReportMetric(float64(size*int64(b.N))/uploading.Seconds()/(1<<20), "upload-MiB/s")
			st, err := e.mc.StatObject(ctx, "bench", "obj", minio.StatObjectOptions{})
			if err != nil || st.Size != size {
				b.Fatalf("the object: %d bytes, %v; want %d", st.Size, err, size)
			}
		})
	}
}

// uploadParts starts an upload of key and sends size bytes of seed's
// stream in parts of part bytes, two at a time.
func uploadParts(t testing.TB, core minio.Core, bucket, key string, seed uint64, size, part int64) (string, []minio.CompletePart) {
	t.Helper()
	ctx := context.Background()
	id, err := core.NewMultipartUpload(ctx, bucket, key, minio.PutObjectOptions{})
	must(t, "new upload", err)
	n := int((size + part - 1) / part)
	parts := make([]minio.CompletePart, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 2)
	src := newPRNG(seed, size)
	for i := range n {
		l := min(part, size-int64(i)*part)
		buf := make([]byte, l)
		_, err := io.ReadFull(src, buf)
		must(t, "data", err)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p, err := core.PutObjectPart(ctx, bucket, key, id, i+1, bytes.NewReader(buf), l, minio.PutObjectPartOptions{})
			if err != nil {
				errs <- fmt.Errorf("part %d: %w", i+1, err)
				return
			}
			parts[i] = minio.CompletePart{PartNumber: i + 1, ETag: p.ETag}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return id, parts
}
