// Command s3load puts and then gets objects of one size through an S3
// endpoint from many clients at once, and prints one JSON line with the
// rates and latencies of each phase (bench/s3-vs-seaweedfs.sh runs it
// against both gateways).
//
//	go run ./bench/s3load -endpoint 127.0.0.1:9000 -access ID -secret KEY \
//	    -bucket b -size 4096 -objects 2000 -clients 16
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

type phase struct {
	Ops      int     `json:"ops"`
	Seconds  float64 `json:"seconds"`
	OpsPerS  float64 `json:"ops_per_s"`
	MiBPerS  float64 `json:"mib_per_s"`
	P50Micro int64   `json:"p50_us"`
	P99Micro int64   `json:"p99_us"`
}

func main() {
	endpoint := flag.String("endpoint", "127.0.0.1:9000", "S3 endpoint host:port (plain HTTP)")
	access := flag.String("access", "", "access key id")
	secret := flag.String("secret", "", "secret access key")
	bucket := flag.String("bucket", "bench", "bucket (made if missing)")
	size := flag.Int("size", 4096, "object size in bytes")
	objects := flag.Int("objects", 1000, "objects put, then got")
	clients := flag.Int("clients", 16, "concurrent clients")
	label := flag.String("label", "", "label printed with the result")
	flag.Parse()
	if err := run(*endpoint, *access, *secret, *bucket, *size, *objects, *clients, *label); err != nil {
		fmt.Fprintln(os.Stderr, "s3load:", err)
		os.Exit(1)
	}
}

func run(endpoint, access, secret, bucket string, size, objects, clients int, label string) error {
	ctx := context.Background()
	cl, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(access, secret, ""), Region: "us-east-1"})
	if err != nil {
		return err
	}
	if ok, err := cl.BucketExists(ctx, bucket); err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	} else if !ok {
		if err := cl.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
			return fmt.Errorf("make bucket %s: %w", bucket, err)
		}
	}
	data := make([]byte, size)
	rand.Read(data)
	prefix := fmt.Sprintf("s3load-%d-%d/", size, time.Now().UnixNano())
	key := func(i int) string { return fmt.Sprintf("%s%06d", prefix, i) }

	each := func(op func(i int) error) (phase, error) {
		var next atomic.Int64
		lat := make([][]time.Duration, clients)
		errs := make(chan error, clients)
		var wg sync.WaitGroup
		start := time.Now()
		for c := range clients {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= objects {
						return
					}
					t0 := time.Now()
					if err := op(i); err != nil {
						errs <- err
						return
					}
					lat[c] = append(lat[c], time.Since(t0))
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		close(errs)
		if err := <-errs; err != nil {
			return phase{}, err
		}
		all := slices.Concat(lat...)
		slices.Sort(all)
		p := func(q float64) int64 { return all[int(q*float64(len(all)-1))].Microseconds() }
		return phase{Ops: len(all), Seconds: took.Seconds(), OpsPerS: float64(len(all)) / took.Seconds(),
			MiBPerS: float64(len(all)) * float64(size) / (1 << 20) / took.Seconds(), P50Micro: p(0.5), P99Micro: p(0.99)}, nil
	}
	put, err := each(func(i int) error {
		_, err := cl.PutObject(ctx, bucket, key(i), bytes.NewReader(data), int64(size), minio.PutObjectOptions{DisableMultipart: true})
		if err != nil {
			return fmt.Errorf("put %s: %w", key(i), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Gets in another order than the puts.
	perm := make([]int, objects)
	for i := range perm {
		perm[i] = (i*7919 + 13) % objects
	}
	get, err := each(func(i int) error {
		o, err := cl.GetObject(ctx, bucket, key(perm[i]), minio.GetObjectOptions{})
		if err != nil {
			return fmt.Errorf("get %s: %w", key(perm[i]), err)
		}
		defer o.Close()
		n, err := io.Copy(io.Discard, o)
		if err != nil {
			return fmt.Errorf("get %s: %w", key(perm[i]), err)
		}
		if n != int64(size) {
			return fmt.Errorf("get %s: %d bytes, want %d", key(perm[i]), n, size)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"label": label, "size": size, "clients": clients, "put": put, "get": get})
}
